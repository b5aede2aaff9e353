package speaker

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/pkg/announce"
	"github.com/herald-lb/herald/pkg/bgp"
)

// fakeWire is a BGP wire whose calls return fixed errors.
type fakeWire struct{ peersErr, routesErr error }

func (f fakeWire) SetPeers([]bgp.Peer) error   { return f.peersErr }
func (f fakeWire) SetRoutes([]bgp.Route) error { return f.routesErr }
func (f fakeWire) Sessions() []bgp.Session     { return nil }

// A localPref towards an eBGP peer (or a BFD option GoBGP lacks) is applied
// with a warning; it must not fail the plan, which would retry it forever.
func TestWireWarningsDoNotFailThePlan(t *testing.T) {
	warn := bgp.Warnings{{Peer: "frr", Prefix: netip.MustParsePrefix("198.51.100.1/32"), Message: "localPref is not sent to an eBGP peer"}}
	for name, tc := range map[string]struct {
		wire    fakeWire
		wantErr bool
	}{
		"route warning": {fakeWire{routesErr: warn}, false},
		"peer warning":  {fakeWire{peersErr: warn}, false},
		"route failure": {fakeWire{routesErr: errors.New("announce: boom")}, true},
		"peer failure":  {fakeWire{peersErr: errors.New("add neighbor: boom")}, true},
	} {
		s := &Speaker{opts: Options{NodeName: "node1", BGP: tc.wire}}
		err := s.applyBGP(context.Background(), nil, []announce.Node{{Name: "node1"}}, announce.Plan{})
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: applyBGP = %v, want error %v", name, err, tc.wantErr)
		}
	}
}

// ServiceBGPStatus lists the Service's addresses (the CRD accepts only
// addresses), also when the route is an aggregate covering several.
func TestBGPStatusListsAddressesNotPrefixes(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithStatusSubresource(&v1beta1.ServiceBGPStatus{}).Build()
	s := &Speaker{client: c, opts: Options{NodeName: "node1", Namespace: "herald-system"}}
	a, b := netip.MustParseAddr("198.51.100.5"), netip.MustParseAddr("198.51.100.6")
	v6 := netip.MustParseAddr("2001:db8:200::5")
	svcs := []announce.Service{{Key: "default/a", Addrs: []netip.Addr{a, v6}}, {Key: "default/b", Addrs: []netip.Addr{b}}}
	plan := announce.Plan{BGP: []announce.Route{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Peers: []string{"frr"}, Services: []string{"default/a", "default/b"}},
		{Prefix: netip.PrefixFrom(v6, 128), Peers: []string{"frr"}, Services: []string{"default/a"}},
	}}
	if err := s.writeStatus(context.Background(), plan, svcs); err != nil {
		t.Fatal(err)
	}
	var list v1beta1.ServiceBGPStatusList
	if err := c.List(context.Background(), &list, client.InNamespace("herald-system")); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, o := range list.Items {
		got[o.Status.ServiceName] = o.Status.Addresses
	}
	want := map[string][]string{"a": {"198.51.100.5", "2001:db8:200::5"}, "b": {"198.51.100.6"}}
	for svc, addrs := range want {
		if !slices.Equal(got[svc], addrs) {
			t.Errorf("ServiceBGPStatus of %s lists %v, want %v", svc, got[svc], addrs)
		}
	}
}
