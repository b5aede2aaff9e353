package announce

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

// The plan's fast paths must decide exactly what the plain rules decide:
// owners are compared across speaker versions during a rolling upgrade.

func TestElectingOverSharedNamePrefixesPicksTheSameOwnerAsThePlainElection(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := []func(i int) string{
		func(i int) string { return fmt.Sprintf("node-%04d", i) },
		func(i int) string { return fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", i/250, i%250) },
		func(i int) string { return fmt.Sprintf("w%d", i) }, // "w1" is a prefix of "w10"
		func(i int) string { return fmt.Sprintf("%x", r.Uint64()>>uint(r.IntN(60))) },
	}
	for si, shape := range shapes {
		for _, count := range []int{1, 2, 3, 17, 300} {
			var names []string
			for i := range count {
				names = append(names, shape(i))
			}
			in := Input{Nodes: nodes(names...)}
			in.Config = mustConfig(t, config.Objects{
				Pools:            []v1beta1.IPAddressPool{pool("p", "10.0.0.0/16")},
				L2Advertisements: []v1beta1.L2Advertisement{l2adv("all", nil)},
			})
			lp := layer2Candidates(in, "p")
			for k := range 200 {
				key := netip.AddrFrom4([4]byte{10, 0, byte(k >> 8), byte(k)}).String()
				want, _ := elect(key, names)
				if got, _ := lp.electAll(key); got != want {
					t.Fatalf("shape %d, %d nodes, key %s: electAll chose %s, elect %s", si, count, key, got, want)
				}
			}
		}
	}
}

func TestMergingOnlyRepeatedPrefixesGivesTheFullMergesResult(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	peers := []string{"a", "b", "c"}
	for range 500 {
		var rs []Route
		for range 1 + r.IntN(12) {
			pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(6))}), 32)
			var ps []string
			for _, p := range peers {
				if r.IntN(2) == 0 {
					ps = append(ps, p)
				}
			}
			if ps == nil {
				ps = []string{"a"}
			}
			rt := Route{Prefix: pfx, Peers: ps, Services: []string{fmt.Sprintf("ns/s%d", r.IntN(3))}}
			if r.IntN(2) == 0 {
				rt.Communities = []uint32{uint32(r.IntN(3))}
			}
			if r.IntN(3) == 0 {
				rt.LocalPref, rt.HasLocalPref = uint32(100+r.IntN(3)), true
			}
			rs = append(rs, rt)
		}
		want := mergeSamePrefix(slices.Clone(rs))
		got := mergeRoutes(slices.Clone(rs))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("routes %v:\nmergeRoutes     %v\nmergeSamePrefix %v", rs, got, want)
		}
	}
}
