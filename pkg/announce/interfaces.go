package announce

import (
	"net/netip"
	"strings"
)

// Link is one interface of this node as observed.
type Link struct {
	Name      string
	Kind      string // netlink link type: "device", "veth", "vxlan", ...
	Prefixes  []netip.Prefix
	Running   bool // up with carrier
	CanAnswer bool // can carry ARP/NDP: Ethernet, not loopback, not NOARP
}

// virtualKinds never face the clients' LAN: pod veths, overlay tunnels,
// VPNs and dummies (kube-ipvs0 holds the Service addresses themselves).
var virtualKinds = map[string]bool{"veth": true, "vxlan": true, "geneve": true, "wireguard": true, "ipip": true,
	"gre": true, "gretap": true, "ip6gre": true, "ip6tnl": true, "sit": true, "tun": true, "tuntap": true, "dummy": true,
	"vti": true, "nlmon": true, "ifb": true}

// cniPrefixes name the devices CNI plugins and container runtimes create.
var cniPrefixes = []string{"veth", "cni", "cali", "cilium", "flannel", "lxc", "docker", "cbr", "kube-", "weave", "vxlan", "genev", "wg", "tunl", "nodelocaldns", "antrea", "ovn", "br-int", "kube-ipvs"}

// PhysicalLooking reports whether an interface may face the clients' LAN:
// not a virtual kind and not named like a CNI or runtime device.
func PhysicalLooking(l Link) bool {
	if virtualKinds[l.Kind] {
		return false
	}
	for _, p := range cniPrefixes {
		if strings.HasPrefix(l.Name, p) {
			return false
		}
	}
	return true
}

// DefaultInterfaces picks where to answer for addr when no L2Advertisement
// names interfaces: those holding an address in a subnet containing addr
// (host routes, /32 and /128, are not subnets); without one, the
// physical-looking interfaces that are up. Only interfaces that can carry
// ARP/NDP count. links are sorted by name; so is the result.
func DefaultInterfaces(links []Link, addr netip.Addr) []string {
	var inSubnet, physical []string
	for _, l := range links {
		if !l.CanAnswer {
			continue
		}
		for _, p := range l.Prefixes {
			if p.Bits() != p.Addr().BitLen() && p.Masked().Contains(addr) {
				inSubnet = append(inSubnet, l.Name)
				break
			}
		}
		if l.Running && PhysicalLooking(l) {
			physical = append(physical, l.Name)
		}
	}
	if len(inSubnet) > 0 {
		return inSubnet
	}
	return physical
}
