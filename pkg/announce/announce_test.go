package announce

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

func mustConfig(t *testing.T, objs config.Objects) *config.Config {
	t.Helper()
	cfg, errs := config.Build(objs)
	if errs != nil {
		t.Fatal(errs)
	}
	return cfg
}

func pool(name string, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func l2adv(name string, sel map[string]string, pools ...string) v1beta1.L2Advertisement {
	a := v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: pools}}
	if sel != nil {
		a.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: sel}}
	}
	return a
}

func nodes(names ...string) []Node {
	var out []Node
	for _, n := range names {
		out = append(out, Node{Name: n, Alive: true, Labels: map[string]string{"kubernetes.io/hostname": n}})
	}
	return out
}

// slice builds an EndpointSlice with one endpoint per node; cond picks the
// endpoint conditions (nil pointers are kube-proxy's defaults).
func slice(fam discoveryv1.AddressType, cond discoveryv1.EndpointConditions, nodeNames ...string) discoveryv1.EndpointSlice {
	sl := discoveryv1.EndpointSlice{AddressType: fam}
	for i, n := range nodeNames {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{fmt.Sprintf("10.0.0.%d", i+1)}, NodeName: new(n), Conditions: cond,
		})
	}
	return sl
}

var ready = discoveryv1.EndpointConditions{}

func svc(key string, local bool, addrs []string, slices ...discoveryv1.EndpointSlice) Service {
	s := Service{Key: key, Local: local, Slices: slices}
	for _, a := range addrs {
		s.Addrs = append(s.Addrs, netip.MustParseAddr(a))
	}
	return s
}

// owners computes the plan on every node and returns, per address, the
// nodes that announce it by layer 2.
func owners(in Input) map[string][]string {
	out := map[string][]string{}
	for _, n := range in.Nodes {
		in.Self = n.Name
		for a := range Compute(in).L2 {
			out[a.String()] = append(out[a.String()], n.Name)
		}
	}
	return out
}

func TestEveryNodeAgreesOnExactlyOneLayer2Owner(t *testing.T) {
	cfg := mustConfig(t, config.Objects{
		Pools:            []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24", "2001:db8::/64")},
		L2Advertisements: []v1beta1.L2Advertisement{l2adv("all", nil)},
	})
	var svcs []Service
	for i := range 50 {
		svcs = append(svcs, svc(fmt.Sprintf("ns/s%d", i), false, []string{fmt.Sprintf("192.0.2.%d", i+1), fmt.Sprintf("2001:db8::%x", i+1)},
			slice(discoveryv1.AddressTypeIPv4, ready, "n1"), slice(discoveryv1.AddressTypeIPv6, ready, "n1")))
	}
	in := Input{Config: cfg, Nodes: nodes("n1", "n2", "n3"), Services: svcs}
	got := owners(in)
	perNode := map[string]int{}
	for _, s := range svcs {
		v4, v6 := got[s.Addrs[0].String()], got[s.Addrs[1].String()]
		if len(v4) != 1 || len(v6) != 1 {
			t.Fatalf("%s: owners v4 %v v6 %v, want exactly one each", s.Key, v4, v6)
		}
		if v4[0] != v6[0] {
			t.Errorf("%s: families split across nodes %s and %s", s.Key, v4[0], v6[0])
		}
		perNode[v4[0]]++
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if perNode[n] == 0 {
			t.Errorf("rendezvous hashing gave node %s nothing of 50 services: %v", n, perNode)
		}
	}
}

func TestLosingANodeMovesOnlyItsAddresses(t *testing.T) {
	cfg := mustConfig(t, config.Objects{
		Pools:            []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24")},
		L2Advertisements: []v1beta1.L2Advertisement{l2adv("all", nil)},
	})
	var svcs []Service
	for i := range 60 {
		svcs = append(svcs, svc(fmt.Sprintf("ns/s%d", i), false, []string{fmt.Sprintf("192.0.2.%d", i+1)}, slice(discoveryv1.AddressTypeIPv4, ready, "n1")))
	}
	in := Input{Config: cfg, Nodes: nodes("n1", "n2", "n3"), Services: svcs}
	before := owners(in)
	in.Nodes[1].Alive = false
	after := owners(in)
	for a, o := range before {
		switch {
		case o[0] == "n2" && after[a][0] == "n2":
			t.Errorf("%s still owned by the dead node", a)
		case o[0] != "n2" && after[a][0] != o[0]:
			t.Errorf("%s moved from live %s to %s", a, o[0], after[a][0])
		}
	}
}

func TestLayer2Eligibility(t *testing.T) {
	base := config.Objects{
		Pools:            []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24", "2001:db8::/64"), pool("q", "198.51.100.0/24")},
		L2Advertisements: []v1beta1.L2Advertisement{l2adv("only-n3", map[string]string{"kubernetes.io/hostname": "n3"}, "p")},
	}
	terminating := discoveryv1.EndpointConditions{Ready: new(false), Serving: new(true), Terminating: new(true)}
	notReady := discoveryv1.EndpointConditions{Ready: new(false)}
	for _, tc := range []struct {
		name    string
		nodes   func([]Node) []Node
		svc     Service
		want    map[string][]string
		objects func(*config.Objects)
	}{
		{name: "node selector limits owners", svc: svc("ns/a", false, []string{"192.0.2.1"}, slice(discoveryv1.AddressTypeIPv4, ready, "n1")),
			want: map[string][]string{"192.0.2.1": {"n3"}}},
		{name: "excluded node never owns", svc: svc("ns/a", false, []string{"192.0.2.1"}, slice(discoveryv1.AddressTypeIPv4, ready, "n1")),
			nodes: func(ns []Node) []Node { ns[2].Labels[LabelExcludeFromLB] = ""; return ns }, want: map[string][]string{}},
		{name: "dead node never owns", svc: svc("ns/a", false, []string{"192.0.2.1"}, slice(discoveryv1.AddressTypeIPv4, ready, "n1")),
			nodes: func(ns []Node) []Node { ns[2].Alive = false; return ns }, want: map[string][]string{}},
		{name: "pool without advertisement is not announced", svc: svc("ns/a", false, []string{"198.51.100.1"}, slice(discoveryv1.AddressTypeIPv4, ready, "n1")),
			want: map[string][]string{}},
		{name: "address outside every pool is ignored", svc: svc("ns/a", false, []string{"203.0.113.1"}, slice(discoveryv1.AddressTypeIPv4, ready, "n1")),
			want: map[string][]string{}},
		{name: "no endpoint at all is not announced", svc: svc("ns/a", false, []string{"192.0.2.1"}), want: map[string][]string{}},
		{name: "not-ready endpoints do not count", svc: svc("ns/a", false, []string{"192.0.2.1"}, slice(discoveryv1.AddressTypeIPv4, notReady, "n1")),
			want: map[string][]string{}},
		{name: "local policy follows the endpoint's node", objects: func(o *config.Objects) { o.L2Advertisements = []v1beta1.L2Advertisement{l2adv("all", nil)} },
			svc: svc("ns/a", true, []string{"192.0.2.1"}, slice(discoveryv1.AddressTypeIPv4, ready, "n2")), want: map[string][]string{"192.0.2.1": {"n2"}}},
		{name: "local policy: ready beats serving-terminating", objects: func(o *config.Objects) { o.L2Advertisements = []v1beta1.L2Advertisement{l2adv("all", nil)} },
			svc:  svc("ns/a", true, []string{"192.0.2.1"}, slice(discoveryv1.AddressTypeIPv4, terminating, "n1"), slice(discoveryv1.AddressTypeIPv4, ready, "n3")),
			want: map[string][]string{"192.0.2.1": {"n3"}}},
		{name: "local policy: serving-terminating counts when nothing is ready", objects: func(o *config.Objects) { o.L2Advertisements = []v1beta1.L2Advertisement{l2adv("all", nil)} },
			svc:  svc("ns/a", true, []string{"192.0.2.1"}, slice(discoveryv1.AddressTypeIPv4, terminating, "n1")),
			want: map[string][]string{"192.0.2.1": {"n1"}}},
		{name: "endpoint slices match the address family", objects: func(o *config.Objects) { o.L2Advertisements = []v1beta1.L2Advertisement{l2adv("all", nil)} },
			svc:  svc("ns/a", true, []string{"192.0.2.1", "2001:db8::1"}, slice(discoveryv1.AddressTypeIPv6, ready, "n1")),
			want: map[string][]string{"2001:db8::1": {"n1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := base
			if tc.objects != nil {
				tc.objects(&objs)
			}
			ns := nodes("n1", "n2", "n3")
			if tc.nodes != nil {
				ns = tc.nodes(ns)
			}
			got := owners(Input{Config: mustConfig(t, objs), Nodes: ns, Services: []Service{tc.svc}})
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("owners %v, want %v", got, tc.want)
			}
		})
	}
}

func TestServicesSharingAnAddressAgreeOnItsOwner(t *testing.T) {
	cfg := mustConfig(t, config.Objects{
		Pools:            []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24")},
		L2Advertisements: []v1beta1.L2Advertisement{l2adv("all", nil)},
	})
	for i := range 20 {
		a := fmt.Sprintf("192.0.2.%d", i+1)
		in := Input{Config: cfg, Nodes: nodes("n1", "n2", "n3"), Services: []Service{
			svc(fmt.Sprintf("ns/x%d", i), false, []string{a}, slice(discoveryv1.AddressTypeIPv4, ready, "n1")),
			svc(fmt.Sprintf("ns/y%d", i), false, []string{a}, slice(discoveryv1.AddressTypeIPv4, ready, "n2")),
		}}
		got := owners(in)
		if len(got[a]) != 1 {
			t.Fatalf("%s owners %v", a, got[a])
		}
		for _, n := range in.Nodes {
			in.Self = n.Name
			if e, ok := Compute(in).L2[netip.MustParseAddr(a)]; ok && len(e.Services) != 2 {
				t.Errorf("owner lists services %v, want both", e.Services)
			}
		}
	}
}

func TestBGPRoutes(t *testing.T) {
	peer := func(name string, asn uint32, addr string, sel map[string]string) v1beta1.BGPPeer {
		p := v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.BGPPeerSpec{MyASN: 64501, PeerASN: asn, PeerAddress: addr}}
		if sel != nil {
			p.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: sel}}
		}
		return p
	}
	objs := config.Objects{
		Pools:       []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24", "2001:db8::/64"), pool("agg", "198.51.100.0/24")},
		BGPPeers:    []v1beta1.BGPPeer{peer("frr", 64500, "192.0.2.254", nil), peer("bird", 64500, "192.0.2.253", map[string]string{"kubernetes.io/hostname": "n1"})},
		Communities: []v1beta1.Community{{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "no-export", Value: "65535:65281"}}}}},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{
			{ObjectMeta: metav1.ObjectMeta{Name: "host"}, Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}, Communities: []string{"65000:100", "no-export"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "only-frr"}, Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}, Peers: []string{"frr"}, Communities: []string{"large:1:2:3"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "aggregate"}, Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"agg"}, AggregationLength: new(int32(24))}},
		},
	}
	cfg := mustConfig(t, objs)
	svcs := []Service{
		svc("ns/dual", false, []string{"192.0.2.10", "2001:db8::10"}, slice(discoveryv1.AddressTypeIPv4, ready, "n3"), slice(discoveryv1.AddressTypeIPv6, ready, "n3")),
		svc("ns/local", true, []string{"192.0.2.11"}, slice(discoveryv1.AddressTypeIPv4, ready, "n2")),
		svc("ns/agg1", false, []string{"198.51.100.1"}, slice(discoveryv1.AddressTypeIPv4, ready, "n2")),
		svc("ns/agg2", false, []string{"198.51.100.2"}, slice(discoveryv1.AddressTypeIPv4, ready, "n2")),
	}
	ns := nodes("n1", "n2", "n3")
	ns[2].Labels[LabelExcludeFromLB] = "true"
	// plan indexes the routes by "prefix peer".
	plan := func(self string) map[string]Route {
		out := map[string]Route{}
		for _, r := range Compute(Input{Config: cfg, Nodes: ns, Services: svcs, Self: self}).BGP {
			for _, p := range r.Peers {
				out[r.Prefix.String()] = r
				out[r.Prefix.String()+" "+p] = r
			}
		}
		return out
	}
	n1, n2, n3 := plan("n1"), plan("n2"), plan("n3")
	if len(n3) != 0 {
		t.Errorf("excluded node advertises %v", n3)
	}
	toFRR, toBIRD := n1["192.0.2.10/32 frr"], n1["192.0.2.10/32 bird"]
	if !slices.Equal(toFRR.Communities, []uint32{65000<<16 | 100, 65535<<16 | 65281}) || len(toFRR.LargeCommunities) != 1 {
		t.Errorf("to frr: communities %v large %v: want the union of both advertisements", toFRR.Communities, toFRR.LargeCommunities)
	}
	if len(toBIRD.Peers) == 0 || len(toBIRD.LargeCommunities) != 0 {
		t.Errorf("to bird: %+v: want the /32 without the frr-only large community", toBIRD)
	}
	if _, ok := n1["2001:db8::10/128"]; !ok {
		t.Errorf("no /128 on n1: %v", n1)
	}
	if _, ok := n2["192.0.2.10/32 bird"]; ok {
		t.Error("n2 sends to bird, which selects only n1")
	}
	if _, ok := n2["192.0.2.10/32 frr"]; !ok {
		t.Error("n2 does not send the /32 to frr")
	}
	if _, ok := n1["192.0.2.11/32"]; ok {
		t.Error("local-policy service advertised from a node without its endpoint")
	}
	if _, ok := n2["192.0.2.11/32"]; !ok {
		t.Error("local-policy service not advertised from its endpoint's node")
	}
	agg, ok := n2["198.51.100.0/24"]
	if !ok || !slices.Equal(agg.Services, []string{"ns/agg1", "ns/agg2"}) {
		t.Errorf("aggregate route %v (ok %v), want one /24 for both services", agg, ok)
	}
}

func TestNoConfigPlansNothing(t *testing.T) {
	p := Compute(Input{Nodes: nodes("n1"), Self: "n1", Services: []Service{svc("ns/a", false, []string{"192.0.2.1"})}})
	if len(p.L2) != 0 || len(p.BGP) != 0 {
		t.Fatalf("plan without config: %+v", p)
	}
}

// BenchmarkCompute5000Services is one full plan for a large cluster: the
// speaker recomputes it on every relevant change.
func BenchmarkCompute5000Services(b *testing.B) {
	cfg, errs := config.Build(config.Objects{
		Pools:             []v1beta1.IPAddressPool{pool("p", "198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24", "2001:db8::/64")},
		L2Advertisements:  []v1beta1.L2Advertisement{l2adv("all", nil)},
		BGPPeers:          []v1beta1.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "192.0.2.254"}}},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}},
	})
	if errs != nil {
		b.Fatal(errs)
	}
	var svcs []Service
	for i := range 5000 {
		s := Service{Key: fmt.Sprintf("ns/s%d", i), Slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv6, ready, "n1", "n2")}}
		s.Addrs = []netip.Addr{netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1))}
		svcs = append(svcs, s)
	}
	in := Input{Config: cfg, Nodes: nodes("n1", "n2", "n3"), Services: svcs, Self: "n1"}
	b.ReportAllocs()
	for b.Loop() {
		Compute(in)
	}
}

// A Service of a shared address scaled to zero does not black-hole its
// siblings; the address goes only when none has a usable endpoint.
func TestSharedAddressIsAnnouncedWhileAnySiblingHasAnEndpoint(t *testing.T) {
	cfg := mustConfig(t, config.Objects{
		Pools:            []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24")},
		L2Advertisements: []v1beta1.L2Advertisement{l2adv("all", nil)},
	})
	a := "192.0.2.7"
	empty := discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4}
	for _, tc := range []struct {
		name     string
		services []Service
		want     []string // the nodes that may own the address
	}{
		{"cluster sibling with an endpoint", []Service{
			svc("a/x", false, []string{a}, empty), svc("b/y", false, []string{a}, slice(discoveryv1.AddressTypeIPv4, ready, "n1"))},
			[]string{"n1", "n2", "n3"}},
		{"local sibling with an endpoint on n2", []Service{
			svc("a/x", true, []string{a}, empty), svc("b/y", true, []string{a}, slice(discoveryv1.AddressTypeIPv4, ready, "n2"))},
			[]string{"n2"}},
		{"two local siblings on different nodes", []Service{
			svc("a/x", true, []string{a}, slice(discoveryv1.AddressTypeIPv4, ready, "n1")), svc("b/y", true, []string{a}, slice(discoveryv1.AddressTypeIPv4, ready, "n3"))},
			[]string{"n1", "n3"}},
		{"none has an endpoint", []Service{svc("a/x", false, []string{a}, empty), svc("b/y", true, []string{a})}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Config: cfg, Nodes: nodes("n1", "n2", "n3"), Services: tc.services, Self: "n1"}
			plan := Compute(in)
			owner, ok := plan.Owners[netip.MustParseAddr(a)]
			if len(tc.want) == 0 {
				if ok || !slices.Equal(plan.WithoutOwner, []netip.Addr{netip.MustParseAddr(a)}) {
					t.Fatalf("owner %q, without owner %v; want no owner, listed without one", owner, plan.WithoutOwner)
				}
				return
			}
			if !slices.Contains(tc.want, owner) {
				t.Fatalf("owner %q, want one of %v", owner, tc.want)
			}
		})
	}
}
