package controller

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/allocate"
)

// Annotation keys on Services (defined with the API). Herald writes only
// AnnotationAllocatedFromPool.
const (
	AnnotationAddressPool       = v1beta1.AnnotationAddressPool
	AnnotationLoadBalancerIPs   = v1beta1.AnnotationLoadBalancerIPs
	AnnotationAllowSharedIP     = v1beta1.AnnotationAllowSharedIP
	AnnotationAllocatedFromPool = v1beta1.AnnotationAllocatedFromPool
)

// annotation returns the value of a Herald annotation key, falling back to
// MetalLB's spellings of the same key.
func annotation(svc *corev1.Service, key string) (string, bool) {
	if v, ok := svc.Annotations[key]; ok {
		return v, true
	}
	suffix := strings.TrimPrefix(key, "lb.herald.dev/")
	for _, p := range v1beta1.LegacyAnnotationPrefixes {
		if v, ok := svc.Annotations[p+"/"+suffix]; ok {
			return v, true
		}
	}
	return "", false
}

// allocationInput turns a Service into the allocator's view of it. The only
// error is a malformed request (annotation or spec.loadBalancerIP), which the
// caller reports on the Service while keeping what it holds.
func allocationInput(svc *corev1.Service, nsLabels map[string]string) (allocate.Service, error) {
	in := allocate.Service{
		Key:             svc.Namespace + "/" + svc.Name,
		Namespace:       svc.Namespace,
		Labels:          svc.Labels,
		NamespaceLabels: nsLabels,
		Policy:          policyOf(svc),
	}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			in.Families = append(in.Families, allocate.IPv4)
		case corev1.IPv6Protocol:
			in.Families = append(in.Families, allocate.IPv6)
		}
	}
	if v, ok := annotation(svc, AnnotationAddressPool); ok {
		in.Pool = strings.TrimSpace(v)
	}
	if v, ok := annotation(svc, AnnotationAllowSharedIP); ok {
		in.SharingKey = v
		for _, p := range svc.Spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			in.Ports = append(in.Ports, allocate.Port{Protocol: string(proto), Port: p.Port})
		}
		if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			in.BackendKey = selectorKey(svc.Spec.Selector)
		}
	}
	if v, ok := annotation(svc, AnnotationLoadBalancerIPs); ok && strings.TrimSpace(v) != "" {
		ips, err := allocate.ParseRequestedIPs(v)
		if err != nil {
			return in, fmt.Errorf("annotation %s: %w", AnnotationLoadBalancerIPs, err)
		}
		in.Requested = ips
	} else if svc.Spec.LoadBalancerIP != "" {
		// The deprecated field counts only when no annotation asks for addresses.
		a, err := netip.ParseAddr(svc.Spec.LoadBalancerIP)
		if err != nil {
			return in, fmt.Errorf("spec.loadBalancerIP %q: not an IP address", svc.Spec.LoadBalancerIP)
		}
		in.Requested = []netip.Addr{a.Unmap()}
	}
	return in, nil
}

func policyOf(svc *corev1.Service) allocate.Policy {
	if svc.Spec.IPFamilyPolicy == nil {
		return allocate.SingleStack
	}
	switch *svc.Spec.IPFamilyPolicy {
	case corev1.IPFamilyPolicyPreferDualStack:
		return allocate.PreferDualStack
	case corev1.IPFamilyPolicyRequireDualStack:
		return allocate.RequireDualStack
	}
	return allocate.SingleStack
}

// selectorKey identifies a Service's backends: Services sharing an address
// under externalTrafficPolicy Local must select the same pods, or the
// announcing node could hold endpoints of one and not the other.
func selectorKey(sel map[string]string) string {
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(sel[k])
		b.WriteByte(',')
	}
	return b.String()
}
