package controller

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/allocate"
)

// ConditionAddressesComplete says whether a Service holds an address of every
// family it wants. False with reason SingleStackFallback is a degraded
// PreferDualStack Service; False with reason Pending holds nothing.
const ConditionAddressesComplete = v1beta1.ConditionAddressesComplete

// Condition reasons.
const (
	ReasonComplete            = "Complete"
	ReasonSingleStackFallback = "SingleStackFallback"
	ReasonPending             = "Pending"
)

// desiredIngress lists one entry per address in the Service's family order.
// ipMode is written explicitly so the apiserver's defaulting never makes the
// observed status differ from the desired one.
func desiredIngress(addrs []netip.Addr) []corev1.LoadBalancerIngress {
	if len(addrs) == 0 {
		return nil
	}
	out := make([]corev1.LoadBalancerIngress, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, corev1.LoadBalancerIngress{IP: a.String(), IPMode: new(corev1.LoadBalancerIPModeVIP)})
	}
	return out
}

func ingressEqual(a, b []corev1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.LoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname &&
			(x.IPMode == nil) == (y.IPMode == nil) && (x.IPMode == nil || *x.IPMode == *y.IPMode) &&
			len(x.Ports) == 0 && len(y.Ports) == 0
	})
}

// heldAddresses reads the addresses a Service's status says it holds: the
// truth a restarted controller rebuilds from.
func heldAddresses(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// completeCondition is the Service condition for an allocation result.
func completeCondition(res allocate.Result, generation int64) metav1.Condition {
	c := metav1.Condition{Type: ConditionAddressesComplete, ObservedGeneration: generation}
	switch res.State {
	case allocate.Complete:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonComplete, "every wanted family has an address"
	case allocate.SingleStackFallback:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonSingleStackFallback, res.Reason
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonPending, res.Reason
	}
	if c.Message == "" {
		c.Message = c.Reason
	}
	if res.Err != nil {
		// The request could not be honoured; what is held stays, and the
		// message says why so the failure is visible without reading Events.
		c.Message += "; request not applied: " + res.Err.Error()
	}
	return c
}

// conditionChanged reports whether setting c would change the stored
// condition (ignoring the transition time, which SetStatusCondition keeps).
func conditionChanged(conds []metav1.Condition, c metav1.Condition) bool {
	old := meta.FindStatusCondition(conds, c.Type)
	return old == nil || old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message || old.ObservedGeneration != c.ObservedGeneration
}
