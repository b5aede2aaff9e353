package announce

import (
	"fmt"
	"net/netip"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

// BenchmarkComputeAt1000NodesAnd10000Services is the full plan of a large
// cluster: 10 000 Services, half dual-stack, announced by layer 2 and BGP,
// every node alive, each Service with endpoints on three nodes.
func BenchmarkComputeAt1000NodesAnd10000Services(b *testing.B) {
	cfg, errs := config.Build(config.Objects{
		Pools:             []v1beta1.IPAddressPool{pool("p", "10.0.0.0/16", "2001:db8::/64")},
		L2Advertisements:  []v1beta1.L2Advertisement{l2adv("all", nil)},
		BGPPeers:          []v1beta1.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "192.0.2.254"}}},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}},
	})
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("node-%04d", i)
	}
	svcs := make([]Service, 0, 10000)
	for i := range 10000 {
		n1, n2, n3 := names[i%1000], names[(i+1)%1000], names[(i+2)%1000]
		s := Service{Key: fmt.Sprintf("ns%d/s%d", i%50, i), Local: i%4 == 0,
			Slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeIPv4, ready, n1, n2, n3)}}
		s.Addrs = []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}
		if i%2 == 0 {
			s.Addrs = append(s.Addrs, netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)))
			s.Slices = append(s.Slices, slice(discoveryv1.AddressTypeIPv6, ready, n1, n2, n3))
		}
		svcs = append(svcs, s)
	}
	in := Input{Config: cfg, Nodes: nodes(names...), Services: svcs, Self: names[0]}
	b.ReportAllocs()
	for b.Loop() {
		Compute(in)
	}
}
