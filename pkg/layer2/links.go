package layer2

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
)

// Link is one interface as the speaker's decision needs it.
type Link struct {
	Name string
	// Kind is netlink's link type: "device" for a NIC, else "veth",
	// "bridge", "vxlan", "bond", "vlan", ...
	Kind string
	// Prefixes are the interface's addresses with their subnets.
	Prefixes []netip.Prefix
	// Running is up with carrier: frames can leave (the same test the
	// announcer uses before sending).
	Running bool
	// CanAnswer: Ethernet-addressed, not loopback, not NOARP.
	CanAnswer bool
}

// Links owns the interfaces' state: Snapshot reads every link and address
// in one dump each, and Changes reports when a link or an address changed.
type Links struct {
	changes chan struct{}
}

// NewLinks follows link and address events until ctx ends.
func NewLinks(ctx context.Context) *Links {
	l := &Links{changes: make(chan struct{}, 1)}
	go l.follow(ctx)
	return l
}

// Changes delivers a notification (coalesced) after a link or address changed.
func (l *Links) Changes() <-chan struct{} { return l.changes }

func (l *Links) poke() {
	select {
	case l.changes <- struct{}{}:
	default:
	}
}

func (l *Links) follow(ctx context.Context) {
	for ctx.Err() == nil {
		done := make(chan struct{})
		lu, au := make(chan netlink.LinkUpdate, 64), make(chan netlink.AddrUpdate, 64)
		errLink := netlink.LinkSubscribe(lu, done)
		errAddr := netlink.AddrSubscribe(au, done)
		if errLink != nil || errAddr != nil {
			close(done)
			return // no events: the plan's own retries still pick changes up
		}
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case _, ok := <-lu:
				if !ok {
					break loop
				}
				l.poke()
			case _, ok := <-au:
				if !ok {
					break loop
				}
				l.poke()
			}
		}
		close(done)
		go func() {
			for range lu {
			}
		}()
		go func() {
			for range au {
			}
		}()
		l.poke() // events may have been lost
	}
}

// Snapshot lists every interface with its addresses and carrier.
func (l *Links) Snapshot() ([]Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	byIndex := map[int][]netip.Prefix{}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ok {
			byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], netip.PrefixFrom(ip.Unmap(), ones))
		}
	}
	out := make([]Link, 0, len(links))
	for _, nl := range links {
		at := nl.Attrs()
		out = append(out, Link{Name: at.Name, Kind: nl.Type(), Prefixes: byIndex[at.Index], Running: isRunning(at), CanAnswer: canAnswer(at)})
	}
	slices.SortFunc(out, func(a, b Link) int { return compareStrings(a.Name, b.Name) })
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
