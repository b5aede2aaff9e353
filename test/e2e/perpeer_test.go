package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/test/netlab"
)

// Issue 12, per-peer attributes on the wire: two BGPAdvertisements of one
// pool, one to FRR with community 64500:401 and a large community, one to
// BIRD with 64500:402. Each router sees only its own attributes, for both
// families (the /128 travels over the IPv4 sessions), and changing FRR's
// advertisement changes what FRR holds while BIRD's paths stay as they were.
func TestBGPPerPeerCommunitiesReachOnlyTheirRouter(t *testing.T) {
	dumpOnFailure(t)
	r := routers(t)
	create(t, frrPeer(), birdPeer(),
		pool("bgp-perpeer", "198.51.100.104/30", "2001:db8:200::a0/126"),
		bgpAdv("bgp-perpeer-frr", []string{"bgp-perpeer"}, []string{"frr"}, func(s *v1beta1.BGPAdvertisementSpec) {
			s.Communities = []string{"64500:401", "large:64500:4:1"}
		}),
		bgpAdv("bgp-perpeer-bird", []string{"bgp-perpeer"}, []string{"bird"}, func(s *v1beta1.BGPAdvertisementSpec) {
			s.Communities = []string{"64500:402"}
		}))
	pfx := bgpService(t, "bgp-perpeer", corev1.IPFamilyPolicyRequireDualStack, 2, nodeNames)
	nodes4 := addrs4(nodeNames...)
	r.waitFRRUp(t, 20*time.Second, false, nodes4...)
	r.waitBIRDUp(t, 20*time.Second, nodeNames...)

	for _, p := range pfx {
		r.waitFRRWith(t, p, 20*time.Second, frrCommunities(p, "64500:401", "64500:4:1"), nodes4...)
		r.waitBIRDWith(t, p, 20*time.Second, birdCommunities(p, "(64500,402)", ""), nodeNames...)
	}

	// Only FRR's advertisement changes: FRR gets the new community, BIRD
	// keeps 64500:402 on the same routes.
	updateObj(t, bgpAdv("bgp-perpeer-frr", nil, nil), func(a *v1beta1.BGPAdvertisement) {
		a.Spec.Communities = []string{"64500:403"}
	})
	for _, p := range pfx {
		r.waitFRRWith(t, p, 20*time.Second, frrCommunities(p, "64500:403", ""), nodes4...)
		r.waitBIRDWith(t, p, time.Second, birdCommunities(p, "(64500,402)", ""), nodeNames...)
	}
}

// frrCommunities accepts FRR's paths for p when every one carries exactly
// the standard and large communities given (FRR's rendering; "" for none).
func frrCommunities(p netip.Prefix, std, large string) func([]netlab.FRRPath) error {
	return func(paths []netlab.FRRPath) error {
		for _, x := range paths {
			if x.Communities != std || x.LargeCommunities != large {
				return fmt.Errorf("FRR: %s from %s carries communities %q and large %q, want %q and %q",
					p, x.Peer, x.Communities, x.LargeCommunities, std, large)
			}
		}
		return nil
	}
}

// birdCommunities accepts BIRD's routes for p when every one carries
// exactly the standard and large communities given (BIRD's rendering; ""
// for none).
func birdCommunities(p netip.Prefix, std, large string) func([]netlab.BIRDRoute) error {
	return func(routes []netlab.BIRDRoute) error {
		for _, x := range routes {
			if c, l := x.Attrs["BGP.community"], x.Attrs["BGP.large_community"]; c != std || l != large {
				return fmt.Errorf("BIRD: %s from %s carries communities %q and large %q, want %q and %q",
					p, x.Protocol, c, l, std, large)
			}
		}
		return nil
	}
}
