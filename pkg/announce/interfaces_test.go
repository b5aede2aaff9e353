package announce

import (
	"net/netip"
	"slices"
	"testing"
)

func TestDefaultInterfacesPreferTheSubnetElseOnlyPhysicalLookingOnes(t *testing.T) {
	pfx := netip.MustParsePrefix
	links := []Link{
		{Name: "bond0", Kind: "bond", Running: true, CanAnswer: true},
		{Name: "cali12ab", Kind: "veth", Running: true, CanAnswer: true},
		{Name: "cilium_host", Kind: "veth", Running: true, CanAnswer: true},
		{Name: "cni0", Kind: "bridge", Running: true, CanAnswer: true, Prefixes: []netip.Prefix{pfx("10.244.0.1/24")}},
		{Name: "eth0", Kind: "device", Running: true, CanAnswer: true, Prefixes: []netip.Prefix{pfx("192.0.2.11/24"), pfx("2001:db8:100::11/64")}},
		{Name: "eth1", Kind: "device", Running: false, CanAnswer: true},
		{Name: "flannel.1", Kind: "vxlan", Running: true, CanAnswer: true},
		{Name: "genev_sys", Kind: "geneve", Running: true, CanAnswer: true},
		{Name: "kube-ipvs0", Kind: "dummy", Running: true, CanAnswer: false, Prefixes: []netip.Prefix{pfx("198.51.100.7/32")}},
		{Name: "lo", Kind: "device", Running: true, CanAnswer: false, Prefixes: []netip.Prefix{pfx("127.0.0.1/8")}},
		{Name: "lxc9f", Kind: "veth", Running: true, CanAnswer: true},
		{Name: "veth1", Kind: "veth", Running: true, CanAnswer: true},
		{Name: "vx0", Kind: "vxlan", Running: true, CanAnswer: true, Prefixes: []netip.Prefix{pfx("203.0.113.1/32")}},
		{Name: "wg0", Kind: "wireguard", Running: true, CanAnswer: true},
	}
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"192.0.2.200", []string{"eth0"}},
		{"2001:db8:100::200", []string{"eth0"}},
		{"198.51.100.7", []string{"bond0", "eth0"}}, // a host route is no subnet; eth1 has no carrier
		{"203.0.113.1", []string{"bond0", "eth0"}},
		{"10.244.0.9", []string{"cni0"}}, // an address in a CNI bridge's own subnet: asked for explicitly
	} {
		if got := DefaultInterfaces(links, netip.MustParseAddr(tc.addr)); !slices.Equal(got, tc.want) {
			t.Errorf("DefaultInterfaces(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
