package bgp

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// resolveNextHop finds the node's address of the wanted family on the
// interface that leads to the peer: the interface owning p.Source when set,
// else the interface of the kernel's route to p.Address. This is the address
// a router on that link can reach us at, so it is the right next hop for
// routes of the family the session itself does not carry. It runs in the
// calling process's network namespace.
func resolveNextHop(p Peer, want4 bool) (netip.Addr, error) {
	link, err := linkTowards(p)
	if err != nil {
		return netip.Addr{}, err
	}
	family := netlink.FAMILY_V6
	if want4 {
		family = netlink.FAMILY_V4
	}
	addrs, err := netlink.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: link}}, family)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of interface %d: %w", link, err)
	}
	var best netip.Addr
	bestRank := 99
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() != want4 || !ip.IsGlobalUnicast() {
			continue
		}
		if a.Flags&(unix.IFA_F_DEPRECATED|unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		// Prefer an interface's primary subnet address over secondary or
		// temporary ones and over host routes (/32, /128), which are often
		// service addresses rather than the node's own.
		rank := 0
		if a.Flags&unix.IFA_F_SECONDARY != 0 { // == IFA_F_TEMPORARY for IPv6
			rank++
		}
		if ones, bits := a.Mask.Size(); ones == bits {
			rank += 2
		}
		if rank < bestRank {
			best, bestRank = ip, rank
		}
	}
	if !best.IsValid() {
		fam := "IPv6"
		if want4 {
			fam = "IPv4"
		}
		return netip.Addr{}, fmt.Errorf("no global %s address on interface %d towards %s", fam, link, p.Address)
	}
	return best, nil
}

func linkTowards(p Peer) (int, error) {
	if p.Source.IsValid() {
		addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return 0, fmt.Errorf("list addresses: %w", err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == p.Source.Unmap() {
				return a.LinkIndex, nil
			}
		}
		return 0, fmt.Errorf("source %s is not an address of this node", p.Source)
	}
	routes, err := netlink.RouteGet(p.Address.AsSlice())
	if err != nil {
		return 0, fmt.Errorf("route to %s: %w", p.Address, err)
	}
	if len(routes) == 0 || routes[0].LinkIndex == 0 {
		return 0, fmt.Errorf("no route to %s", p.Address)
	}
	return routes[0].LinkIndex, nil
}
