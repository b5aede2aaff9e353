package layer2

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultInterfaces picks the interfaces to announce addr on when the
// configuration names none: those with an address in a subnet containing
// addr, or, when there is none, every interface that is up. Either way only
// interfaces that can carry ARP/NDP count: Ethernet-addressed, not loopback,
// not NOARP (which also rules out kube-proxy's kube-ipvs0 dummy, where the
// Service addresses themselves are assigned). Host routes (/32, /128) are
// not subnets and never match.
func DefaultInterfaces(addr netip.Addr) ([]string, error) {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return nil, fmt.Errorf("default interfaces: invalid address")
	}
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(nil, fam)
	if err != nil {
		return nil, fmt.Errorf("default interfaces for %s: list addresses: %w", addr, err)
	}
	// Look links up only for matching addresses: a Kubernetes node has
	// hundreds of pod veths that a full link dump would drag in.
	var inSubnet []string
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		ones, bits := a.Mask.Size()
		if !ok || ones == bits || !netip.PrefixFrom(ip.Unmap(), ones).Masked().Contains(addr) {
			continue
		}
		l, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil || !canAnswer(l.Attrs()) || slices.Contains(inSubnet, l.Attrs().Name) {
			continue
		}
		inSubnet = append(inSubnet, l.Attrs().Name)
	}
	if len(inSubnet) > 0 {
		slices.Sort(inSubnet)
		return inSubnet, nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("default interfaces for %s: list interfaces: %w", addr, err)
	}
	var allUp []string
	for _, l := range links {
		if at := l.Attrs(); canAnswer(at) && at.Flags&net.FlagUp != 0 {
			allUp = append(allUp, at.Name)
		}
	}
	slices.Sort(allUp)
	return allUp, nil
}

func canAnswer(at *netlink.LinkAttrs) bool {
	return at.Flags&net.FlagLoopback == 0 && at.RawFlags&unix.IFF_NOARP == 0 && usableUnicastMAC(at.HardwareAddr)
}
