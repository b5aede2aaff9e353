package heraldctl

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/pkg/config"
)

// svc builds a LoadBalancer Service; opts adjust it.
func svc(ns, name string, policy corev1.IPFamilyPolicy, families []corev1.IPFamily, ingress []string, opts ...func(*corev1.Service)) corev1.Service {
	s := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, IPFamilyPolicy: &policy, IPFamilies: families},
	}
	for _, ip := range ingress {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func withCondition(reason, message string, generation int64) func(*corev1.Service) {
	return func(s *corev1.Service) {
		status := metav1.ConditionFalse
		if reason == controller.ReasonComplete {
			status = metav1.ConditionTrue
		}
		s.Status.Conditions = append(s.Status.Conditions, metav1.Condition{
			Type: controller.ConditionAddressesComplete, Status: status, Reason: reason, Message: message, ObservedGeneration: generation,
		})
	}
}

func withPool(pool string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Annotations = map[string]string{v1beta1.AnnotationAllocatedFromPool: pool}
	}
}

func withClass(class string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &class }
}

var (
	v4   = []corev1.IPFamily{corev1.IPv4Protocol}
	dual = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
)

func TestBuildReportServices(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      StatusInput
		want    []ServiceReport
		compare func(t *testing.T, got []ServiceReport)
	}{
		{
			name: "only LoadBalancer Services without a class by default",
			in: StatusInput{Services: []corev1.Service{
				svc("b", "lb", corev1.IPFamilyPolicySingleStack, v4, nil),
				svc("a", "other-class", corev1.IPFamilyPolicySingleStack, v4, nil, withClass("example.com/other")),
				func() corev1.Service {
					s := svc("a", "cluster-ip", corev1.IPFamilyPolicySingleStack, v4, nil)
					s.Spec.Type = corev1.ServiceTypeClusterIP
					return s
				}(),
				svc("a", "lb", corev1.IPFamilyPolicySingleStack, v4, nil),
			}},
			compare: names("a/lb", "b/lb"),
		},
		{
			name: "with a class only Services of that class",
			in: StatusInput{LBClass: "lb.herald.dev/herald", Services: []corev1.Service{
				svc("a", "unclassed", corev1.IPFamilyPolicySingleStack, v4, nil),
				svc("a", "ours", corev1.IPFamilyPolicySingleStack, v4, nil, withClass("lb.herald.dev/herald")),
			}},
			compare: names("a/ours"),
		},
		{
			name: "complete dual-stack Service",
			in: StatusInput{Services: []corev1.Service{
				svc("web", "front", corev1.IPFamilyPolicyPreferDualStack, dual, []string{"192.0.2.10", "2001:db8::10"},
					withPool("pool-a"), withCondition(controller.ReasonComplete, "every wanted family has an address", 1)),
			}},
			want: []ServiceReport{{
				Namespace: "web", Name: "front", IPFamilyPolicy: "PreferDualStack", IPFamilies: []string{"IPv4", "IPv6"},
				Addresses: []string{"192.0.2.10", "2001:db8::10"}, Pool: "pool-a",
				State: "Complete", Message: "every wanted family has an address",
				MissingFamilies: []string{}, Layer2: []L2Announcement{}, BGP: []BGPAnnouncement{},
			}},
		},
		{
			name: "PreferDualStack fallback names the missing family and the allocator's reason",
			in: StatusInput{Services: []corev1.Service{
				svc("web", "api", corev1.IPFamilyPolicyPreferDualStack, dual, []string{"192.0.2.11"},
					withPool("v4-only"), withCondition(controller.ReasonSingleStackFallback, "no eligible pool has IPv6 addresses", 1)),
			}},
			want: []ServiceReport{{
				Namespace: "web", Name: "api", IPFamilyPolicy: "PreferDualStack", IPFamilies: []string{"IPv4", "IPv6"},
				Addresses: []string{"192.0.2.11"}, Pool: "v4-only",
				State: "SingleStackFallback", Message: "no eligible pool has IPv6 addresses",
				MissingFamilies: []string{"IPv6"}, Layer2: []L2Announcement{}, BGP: []BGPAnnouncement{},
			}},
		},
		{
			name: "pending Service misses every family",
			in: StatusInput{Services: []corev1.Service{
				svc("web", "db", corev1.IPFamilyPolicyRequireDualStack, dual, nil,
					withCondition(controller.ReasonPending, "no pool has both IPv4 and IPv6", 2), func(s *corev1.Service) { s.Generation = 3 }),
			}},
			want: []ServiceReport{{
				Namespace: "web", Name: "db", IPFamilyPolicy: "RequireDualStack", IPFamilies: []string{"IPv4", "IPv6"},
				Addresses: []string{}, State: "Pending", Message: "no pool has both IPv4 and IPv6", Outdated: true,
				MissingFamilies: []string{"IPv4", "IPv6"}, Layer2: []L2Announcement{}, BGP: []BGPAnnouncement{},
			}},
		},
		{
			name: "no condition is Unknown",
			in: StatusInput{Services: []corev1.Service{
				svc("web", "new", corev1.IPFamilyPolicySingleStack, v4, nil),
			}},
			compare: func(t *testing.T, got []ServiceReport) {
				if got[0].State != StateUnknown || !reflect.DeepEqual(got[0].MissingFamilies, []string{"IPv4"}) {
					t.Errorf("got %+v, want state Unknown missing IPv4", got[0])
				}
			},
		},
		{
			name: "announcements are matched to their Service and sorted by node",
			in: StatusInput{
				Services: []corev1.Service{
					svc("web", "front", corev1.IPFamilyPolicyPreferDualStack, dual, []string{"192.0.2.10", "2001:db8::10"}),
				},
				L2Statuses: []v1beta1.ServiceL2Status{
					l2Status("node-b", "web", "front", []string{"2001:db8::10"}, "eth1"),
					l2Status("node-a", "web", "front", []string{"192.0.2.10"}, "eth0", "eth2"),
					l2Status("node-a", "web", "gone", []string{"192.0.2.99"}, "eth0"),
				},
				BGPStatuses: []v1beta1.ServiceBGPStatus{
					bgpStatus("node-c", "web", "front", []string{"192.0.2.10", "2001:db8::10"}, "tor-b", "tor-a"),
					bgpStatus("node-c", "other", "front", nil, "tor-a"),
				},
			},
			compare: func(t *testing.T, got []ServiceReport) {
				wantL2 := []L2Announcement{
					{Node: "node-a", Interfaces: []string{"eth0", "eth2"}, Addresses: []string{"192.0.2.10"}},
					{Node: "node-b", Interfaces: []string{"eth1"}, Addresses: []string{"2001:db8::10"}},
				}
				wantBGP := []BGPAnnouncement{{Node: "node-c", Peers: []string{"tor-a", "tor-b"}, Addresses: []string{"192.0.2.10", "2001:db8::10"}}}
				if !reflect.DeepEqual(got[0].Layer2, wantL2) || !reflect.DeepEqual(got[0].BGP, wantBGP) {
					t.Errorf("layer2 %+v bgp %+v; want %+v %+v", got[0].Layer2, got[0].BGP, wantL2, wantBGP)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BuildReport(tc.in).Services
			if tc.compare != nil {
				tc.compare(t, got)
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("services:\ngot  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func names(want ...string) func(*testing.T, []ServiceReport) {
	return func(t *testing.T, got []ServiceReport) {
		t.Helper()
		var g []string
		for _, s := range got {
			g = append(g, s.Namespace+"/"+s.Name)
		}
		if !reflect.DeepEqual(g, want) {
			t.Errorf("services %v, want %v", g, want)
		}
	}
}

func l2Status(node, ns, name string, addrs []string, ifaces ...string) v1beta1.ServiceL2Status {
	s := v1beta1.ServiceL2Status{Status: v1beta1.ServiceL2StatusStatus{Node: node, ServiceNamespace: ns, ServiceName: name, Addresses: addrs}}
	for _, i := range ifaces {
		s.Status.Interfaces = append(s.Status.Interfaces, v1beta1.InterfaceInfo{Name: i})
	}
	return s
}

func bgpStatus(node, ns, name string, addrs []string, peers ...string) v1beta1.ServiceBGPStatus {
	return v1beta1.ServiceBGPStatus{Status: v1beta1.ServiceBGPStatusStatus{Node: node, ServiceNamespace: ns, ServiceName: name, Addresses: addrs, Peers: peers}}
}

func pool(name string, addrs []string, st v1beta1.IPAddressPoolStatus) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}, Status: st}
}

func TestBuildReportPools(t *testing.T) {
	overlap := metav1.Condition{Type: controller.ConditionValid, Status: metav1.ConditionFalse, Reason: controller.ReasonOverlapping, Message: `192.0.2.0/24 overlaps 192.0.2.0/25 of IPAddressPool "b"`}
	cidr := metav1.Condition{Type: controller.PoolConditionOverlapsServiceCIDR, Status: metav1.ConditionFalse, Reason: controller.ReasonNoOverlap, Message: "no address is inside a service CIDR"}
	for _, tc := range []struct {
		name string
		pool v1beta1.IPAddressPool
		want PoolReport
	}{
		{
			name: "dual-stack pool with a /64 counts the IPv6 side as saturated",
			pool: pool("dual", []string{"192.0.2.0/24", "2001:db8::/64"}, v1beta1.IPAddressPoolStatus{
				AssignedIPv4: 3, AvailableIPv4: 253, AssignedIPv6: 1, AvailableIPv6: math.MaxInt64,
				Conditions: []metav1.Condition{cidr, {Type: controller.ConditionValid, Status: metav1.ConditionTrue, Reason: controller.ReasonValid}},
			}),
			want: PoolReport{
				Name: "dual", Addresses: []string{"192.0.2.0/24", "2001:db8::/64"}, AutoAssign: true,
				IPv4: &FamilyUsage{Assigned: 3, Available: 253}, IPv6: &FamilyUsage{Assigned: 1, Available: math.MaxInt64, AvailableSaturated: true},
				Ready: "True",
				Conditions: []Condition{
					{Type: "OverlapsServiceCIDR", Status: "False", Reason: "NoOverlap", Message: "no address is inside a service CIDR"},
					{Type: "Valid", Status: "True", Reason: "Valid"},
				},
			},
		},
		{
			name: "IPv4-only pool has no IPv6 usage; overlap makes it not ready",
			pool: func() v1beta1.IPAddressPool {
				p := pool("v4", []string{"192.0.2.0/24"}, v1beta1.IPAddressPoolStatus{AvailableIPv4: 256, Conditions: []metav1.Condition{overlap}})
				p.Spec.AutoAssign = new(false)
				return p
			}(),
			want: PoolReport{
				Name: "v4", Addresses: []string{"192.0.2.0/24"}, AutoAssign: false,
				IPv4: &FamilyUsage{Available: 256}, Ready: "False",
				Conditions: []Condition{{Type: "Valid", Status: "False", Reason: "Overlapping", Message: overlap.Message}},
			},
		},
		{
			name: "a pool the controller has not counted yet",
			pool: pool("fresh", []string{"2001:db8::/120"}, v1beta1.IPAddressPoolStatus{}),
			want: PoolReport{Name: "fresh", Addresses: []string{"2001:db8::/120"}, AutoAssign: true, IPv6: &FamilyUsage{}, Ready: "Unknown", Conditions: []Condition{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BuildReport(StatusInput{Pools: []v1beta1.IPAddressPool{tc.pool}}).Pools
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Errorf("pools:\ngot  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func sampleReport() Report {
	return BuildReport(StatusInput{
		Services: []corev1.Service{
			svc("web", "front", corev1.IPFamilyPolicyPreferDualStack, dual, []string{"192.0.2.10", "2001:db8::10"},
				withPool("dual"), withCondition(controller.ReasonComplete, "every wanted family has an address", 1)),
			svc("web", "api", corev1.IPFamilyPolicyPreferDualStack, dual, []string{"192.0.2.11"},
				withPool("dual"), withCondition(controller.ReasonSingleStackFallback, "no IPv6 address is free in pool dual", 1)),
		},
		L2Statuses: []v1beta1.ServiceL2Status{
			l2Status("node-a", "web", "front", []string{"192.0.2.10"}, "eth0"),
			l2Status("node-b", "web", "front", []string{"2001:db8::10"}, "eth0"),
		},
		BGPStatuses: []v1beta1.ServiceBGPStatus{bgpStatus("node-c", "web", "api", []string{"192.0.2.11"}, "tor-a", "tor-b")},
		Pools: []v1beta1.IPAddressPool{pool("dual", []string{"192.0.2.0/24", "2001:db8::/64"}, v1beta1.IPAddressPoolStatus{
			AssignedIPv4: 3, AvailableIPv4: 253, AssignedIPv6: 1, AvailableIPv6: math.MaxInt64,
			Conditions: []metav1.Condition{{Type: controller.ConditionValid, Status: metav1.ConditionFalse, Reason: controller.ReasonOverlapping, Message: "overlaps pool b"}},
		})},
		Config: config.Objects{
			BGPAdvertisements: []v1beta1.BGPAdvertisement{
				{ObjectMeta: metav1.ObjectMeta{Name: "tagged"}, Status: v1beta1.ConfigStatus{Conditions: []metav1.Condition{{Type: v1beta1.ConditionValid, Status: metav1.ConditionFalse,
					Reason: v1beta1.ReasonMissingReference, Message: `spec.communities[0]: names community "gold", which no Community object defines`}}}},
				{ObjectMeta: metav1.ObjectMeta{Name: "fine"}, Status: v1beta1.ConfigStatus{Conditions: []metav1.Condition{{Type: v1beta1.ConditionValid, Status: metav1.ConditionTrue, Reason: v1beta1.ReasonValid}}}},
			},
			BGPPeers: []v1beta1.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Name: "new"}}}, // not yet seen by the controller
		},
	})
}

func TestTableIsAlignedAndExplainsIncompleteServices(t *testing.T) {
	var buf bytes.Buffer
	if err := printReport(&buf, sampleReport(), formatTable); err != nil {
		t.Fatal(err)
	}
	want := `NAMESPACE  NAME   POLICY           FAMILIES   ADDRESSES     POOL  ANNOUNCED BY                        STATE
web        api    PreferDualStack  IPv4,IPv6  192.0.2.11    dual  BGP node-c to tor-a,tor-b           SingleStackFallback (missing IPv6): no IPv6 address is free in pool dual
web        front  PreferDualStack  IPv4,IPv6  192.0.2.10    dual  L2 node-a on eth0 for 192.0.2.10    Complete
                                              2001:db8::10        L2 node-b on eth0 for 2001:db8::10

POOL  ADDRESSES      AUTO-ASSIGN  IPV4 ASSIGNED  IPV4 AVAILABLE  IPV6 ASSIGNED  IPV6 AVAILABLE  VALID                MESSAGE
dual  192.0.2.0/24   yes          3              253             1              >9.2e18         False (Overlapping)  overlaps pool b
      2001:db8::/64

DISABLED                 REASON            MESSAGE
BGPAdvertisement/tagged  MissingReference  spec.communities[0]: names community "gold", which no Community object defines
IPAddressPool/dual       Overlapping       overlaps pool b
`
	if got := buf.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestEmptyTableSaysSo(t *testing.T) {
	var buf bytes.Buffer
	if err := printReport(&buf, BuildReport(StatusInput{}), formatTable); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"(no LoadBalancer Services)", "(no IPAddressPools)"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("empty table lacks %q:\n%s", s, buf.String())
		}
	}
}

// TestMachineOutputSchema pins the JSON field names scripts rely on, and
// that YAML carries the same ones.
func TestMachineOutputSchema(t *testing.T) {
	var buf bytes.Buffer
	if err := printReport(&buf, sampleReport(), formatJSON); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	svcs := doc["services"].([]any)
	api := svcs[0].(map[string]any)
	for _, k := range []string{"namespace", "name", "ipFamilyPolicy", "ipFamilies", "addresses", "pool", "state", "message", "missingFamilies", "layer2", "bgp"} {
		if _, ok := api[k]; !ok {
			t.Errorf("service lacks %q: %v", k, api)
		}
	}
	if got := api["missingFamilies"].([]any); len(got) != 1 || got[0] != "IPv6" {
		t.Errorf("missingFamilies = %v", got)
	}
	front := svcs[1].(map[string]any)
	if got := front["missingFamilies"]; got == nil {
		t.Error("an empty list is written as null; want []")
	}
	p := doc["pools"].([]any)[0].(map[string]any)
	v6 := p["ipv6"].(map[string]any)
	if v6["availableSaturated"] != true || v6["available"].(float64) < 9e18 {
		t.Errorf("ipv6 usage = %v", v6)
	}
	for _, k := range []string{"name", "addresses", "autoAssign", "ipv4", "ready", "conditions"} {
		if _, ok := p[k]; !ok {
			t.Errorf("pool lacks %q: %v", k, p)
		}
	}
	d := doc["disabled"].([]any)[0].(map[string]any)
	for _, k := range []string{"kind", "name", "reason", "message"} {
		if _, ok := d[k]; !ok {
			t.Errorf("disabled object lacks %q: %v", k, d)
		}
	}

	buf.Reset()
	if err := printReport(&buf, sampleReport(), formatYAML); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"missingFamilies:", "availableSaturated: true", "ipFamilyPolicy: PreferDualStack"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("YAML lacks %q", s)
		}
	}
}
