package heraldctl

import (
	"cmp"
	"math"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/pkg/allocate"
	"github.com/herald-lb/herald/pkg/config"
)

// StatusInput is everything status reads from the cluster.
type StatusInput struct {
	Services    []corev1.Service
	L2Statuses  []v1beta1.ServiceL2Status
	BGPStatuses []v1beta1.ServiceBGPStatus
	Pools       []v1beta1.IPAddressPool
	// Config holds the other configuration objects (its Pools are ignored:
	// they are above), for the list of disabled objects.
	Config config.Objects
	// LBClass selects Services the way the controller's --lb-class does:
	// empty selects Services without a class, otherwise only that class.
	LBClass string
}

// Report is the output of heraldctl status. Its JSON form (also used for
// YAML) is a stable interface: fields are added, never renamed or removed,
// and lists are never null.
type Report struct {
	Services []ServiceReport `json:"services"`
	Pools    []PoolReport    `json:"pools"`
	// Disabled lists the configuration objects whose Valid condition is
	// False, with the controller's reason and message.
	Disabled []DisabledObject `json:"disabled"`
}

// DisabledObject is a configuration object not (fully) in force.
type DisabledObject struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// ServiceReport describes one LoadBalancer Service.
type ServiceReport struct {
	Namespace         string   `json:"namespace"`
	Name              string   `json:"name"`
	LoadBalancerClass string   `json:"loadBalancerClass,omitempty"`
	IPFamilyPolicy    string   `json:"ipFamilyPolicy"`
	IPFamilies        []string `json:"ipFamilies"`
	// Addresses are the Service's status.loadBalancer.ingress IPs.
	Addresses []string `json:"addresses"`
	// Pool is the controller's lb.herald.dev/ip-allocated-from-pool
	// annotation.
	Pool string `json:"pool,omitempty"`
	// State is the reason of the lb.herald.dev/AddressesComplete condition
	// (Complete, SingleStackFallback or Pending), or Unknown when the
	// Service has no such condition.
	State string `json:"state"`
	// Message is the condition's message: for an incomplete Service, the
	// allocator's explanation.
	Message string `json:"message,omitempty"`
	// Outdated says the condition was written for an older generation of
	// the Service, so the controller has not caught up with an edit.
	Outdated bool `json:"outdated,omitempty"`
	// MissingFamilies are the families of spec.ipFamilies without an
	// address.
	MissingFamilies []string          `json:"missingFamilies"`
	Layer2          []L2Announcement  `json:"layer2"`
	BGP             []BGPAnnouncement `json:"bgp"`
}

// L2Announcement is one node answering ARP/NDP for a Service.
type L2Announcement struct {
	Node       string   `json:"node"`
	Interfaces []string `json:"interfaces"`
	Addresses  []string `json:"addresses"`
}

// BGPAnnouncement is one node advertising a Service to BGP peers.
type BGPAnnouncement struct {
	Node      string   `json:"node"`
	Peers     []string `json:"peers"`
	Addresses []string `json:"addresses"`
}

// PoolReport describes one IPAddressPool.
type PoolReport struct {
	Name       string   `json:"name"`
	Addresses  []string `json:"addresses"`
	AutoAssign bool     `json:"autoAssign"`
	// IPv4 and IPv6 are the usage of each family the pool has addresses of.
	IPv4 *FamilyUsage `json:"ipv4,omitempty"`
	IPv6 *FamilyUsage `json:"ipv6,omitempty"`
	// Ready is the status of the Valid condition (the field keeps its
	// older name): True, False or Unknown.
	Ready      string      `json:"ready"`
	Conditions []Condition `json:"conditions"`
}

// FamilyUsage counts a pool's addresses of one family.
type FamilyUsage struct {
	Assigned  int64 `json:"assigned"`
	Available int64 `json:"available"`
	// AvailableSaturated says Available is the int64 maximum the controller
	// writes for "more than can be counted" (a /64 has 2^64 addresses).
	AvailableSaturated bool `json:"availableSaturated,omitempty"`
}

// Condition is a status condition without its timestamps.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// StateUnknown is a Service's State when it has no AddressesComplete
// condition: the controller has not handled it (yet).
const StateUnknown = "Unknown"

// BuildReport turns the listed objects into the report.
func BuildReport(in StatusInput) Report {
	r := Report{Services: []ServiceReport{}, Pools: []PoolReport{}, Disabled: []DisabledObject{}}
	index := map[[2]string]int{}
	for i := range in.Services {
		svc := &in.Services[i]
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || !classMatches(svc, in.LBClass) {
			continue
		}
		index[[2]string{svc.Namespace, svc.Name}] = len(r.Services)
		r.Services = append(r.Services, serviceReport(svc))
	}
	for _, s := range in.L2Statuses {
		if i, ok := index[[2]string{s.Status.ServiceNamespace, s.Status.ServiceName}]; ok {
			ifaces := []string{}
			for _, f := range s.Status.Interfaces {
				ifaces = append(ifaces, f.Name)
			}
			r.Services[i].Layer2 = append(r.Services[i].Layer2, L2Announcement{Node: s.Status.Node, Interfaces: ifaces, Addresses: nonNil(s.Status.Addresses)})
		}
	}
	for _, s := range in.BGPStatuses {
		if i, ok := index[[2]string{s.Status.ServiceNamespace, s.Status.ServiceName}]; ok {
			r.Services[i].BGP = append(r.Services[i].BGP, BGPAnnouncement{Node: s.Status.Node, Peers: sorted(s.Status.Peers), Addresses: nonNil(s.Status.Addresses)})
		}
	}
	for i := range r.Services {
		slices.SortFunc(r.Services[i].Layer2, func(a, b L2Announcement) int { return cmp.Compare(a.Node, b.Node) })
		slices.SortFunc(r.Services[i].BGP, func(a, b BGPAnnouncement) int { return cmp.Compare(a.Node, b.Node) })
	}
	slices.SortFunc(r.Services, func(a, b ServiceReport) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for i := range in.Pools {
		r.Pools = append(r.Pools, poolReport(&in.Pools[i]))
	}
	slices.SortFunc(r.Pools, func(a, b PoolReport) int { return cmp.Compare(a.Name, b.Name) })
	objs := in.Config
	objs.Pools = in.Pools
	objs.Each(func(kind string, o config.Object) {
		var conds []metav1.Condition
		if c := v1beta1.ConditionsOf(o); c != nil {
			conds = *c
		}
		if c := meta.FindStatusCondition(conds, v1beta1.ConditionValid); c != nil && c.Status == metav1.ConditionFalse {
			r.Disabled = append(r.Disabled, DisabledObject{Kind: kind, Name: o.GetName(), Reason: c.Reason, Message: c.Message})
		}
	})
	slices.SortFunc(r.Disabled, func(a, b DisabledObject) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name)) })
	return r
}

func classMatches(svc *corev1.Service, class string) bool {
	if svc.Spec.LoadBalancerClass == nil {
		return class == ""
	}
	return *svc.Spec.LoadBalancerClass == class
}

func serviceReport(svc *corev1.Service) ServiceReport {
	s := ServiceReport{
		Namespace: svc.Namespace, Name: svc.Name,
		IPFamilies: []string{}, Addresses: []string{}, MissingFamilies: []string{},
		Layer2: []L2Announcement{}, BGP: []BGPAnnouncement{},
		Pool: svc.Annotations[v1beta1.AnnotationAllocatedFromPool],
	}
	if svc.Spec.LoadBalancerClass != nil {
		s.LoadBalancerClass = *svc.Spec.LoadBalancerClass
	}
	if svc.Spec.IPFamilyPolicy != nil {
		s.IPFamilyPolicy = string(*svc.Spec.IPFamilyPolicy)
	}
	held := map[string]bool{}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP == "" {
			continue
		}
		s.Addresses = append(s.Addresses, in.IP)
		if a, err := netip.ParseAddr(in.IP); err == nil {
			held[familyName(a)] = true
		}
	}
	for _, f := range svc.Spec.IPFamilies {
		s.IPFamilies = append(s.IPFamilies, string(f))
		if !held[string(f)] {
			s.MissingFamilies = append(s.MissingFamilies, string(f))
		}
	}
	s.State = StateUnknown
	if c := meta.FindStatusCondition(svc.Status.Conditions, controller.ConditionAddressesComplete); c != nil {
		s.State, s.Message = c.Reason, c.Message
		s.Outdated = c.ObservedGeneration != 0 && c.ObservedGeneration < svc.Generation
	}
	return s
}

func familyName(a netip.Addr) string {
	if a.Unmap().Is4() {
		return string(corev1.IPv4Protocol)
	}
	return string(corev1.IPv6Protocol)
}

func poolReport(p *v1beta1.IPAddressPool) PoolReport {
	r := PoolReport{
		Name: p.Name, Addresses: nonNil(p.Spec.Addresses),
		AutoAssign: p.Spec.AutoAssign == nil || *p.Spec.AutoAssign,
		Ready:      string(metav1.ConditionUnknown), Conditions: []Condition{},
	}
	has4, has6 := false, false
	for _, s := range p.Spec.Addresses {
		if rg, err := allocate.ParseRange(s); err == nil {
			has4, has6 = has4 || rg.First.Is4(), has6 || rg.First.Is6()
		}
	}
	st := p.Status
	// A pool whose addresses do not parse still shows what the controller
	// counted.
	if has4 || st.AssignedIPv4 > 0 || st.AvailableIPv4 > 0 {
		r.IPv4 = usage(st.AssignedIPv4, st.AvailableIPv4)
	}
	if has6 || st.AssignedIPv6 > 0 || st.AvailableIPv6 > 0 {
		r.IPv6 = usage(st.AssignedIPv6, st.AvailableIPv6)
	}
	for _, c := range p.Status.Conditions {
		r.Conditions = append(r.Conditions, Condition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message})
		if c.Type == controller.ConditionValid {
			r.Ready = string(c.Status)
		}
	}
	slices.SortFunc(r.Conditions, func(a, b Condition) int { return cmp.Compare(a.Type, b.Type) })
	return r
}

func usage(assigned, available int64) *FamilyUsage {
	return &FamilyUsage{Assigned: assigned, Available: available, AvailableSaturated: available == math.MaxInt64}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func sorted(s []string) []string {
	out := nonNil(s)
	slices.Sort(out)
	return out
}
