package speaker

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/herald-lb/herald/pkg/announce"
	"github.com/herald-lb/herald/pkg/bgp"
)

// A localPref towards an eBGP peer (or a BFD option GoBGP lacks) is applied
// with a warning; it must not fail the plan, which would retry it forever.
func TestWireWarningsDoNotFailThePlan(t *testing.T) {
	warn := bgp.Warnings{{Peer: "frr", Prefix: netip.MustParsePrefix("198.51.100.1/32"), Message: "localPref is not sent to an eBGP peer"}}
	for name, tc := range map[string]struct {
		err              error
		wantWarn, wantEr bool
	}{
		"warning": {warn, true, false},
		"failure": {errors.New("announce: boom"), false, true},
		"none":    {nil, false, false},
	} {
		w, err := splitWarnings(tc.err)
		if (len(w) > 0) != tc.wantWarn || (err != nil) != tc.wantEr {
			t.Errorf("%s: warnings %v error %v", name, w, err)
		}
	}
}

// ServiceBGPStatus lists the Service's addresses (the CRD accepts only
// addresses), also when the route is an aggregate covering several.
func TestBGPStatusListsAddressesNotPrefixes(t *testing.T) {
	a, b := netip.MustParseAddr("198.51.100.5"), netip.MustParseAddr("198.51.100.6")
	v6 := netip.MustParseAddr("2001:db8:200::5")
	svcs := []announce.Service{{Key: "default/a", Addrs: []netip.Addr{a, v6}}, {Key: "default/b", Addrs: []netip.Addr{b}}}
	plan := announce.Plan{BGP: []announce.Route{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Peers: []string{"frr"}, Services: []string{"default/a", "default/b"}},
		{Prefix: netip.PrefixFrom(v6, 128), Peers: []string{"frr"}, Services: []string{"default/a"}},
	}}
	_, got := wantStatus(plan, svcs)
	want := map[string][]string{"default/a": {"198.51.100.5", "2001:db8:200::5"}, "default/b": {"198.51.100.6"}}
	for svc, addrs := range want {
		if got[svc] == nil || !slices.Equal(sortedSet(got[svc].addrs), addrs) {
			t.Errorf("ServiceBGPStatus of %s lists %v, want %v", svc, got[svc], addrs)
		}
	}
}
