package allocate

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Range is an inclusive block of addresses of one family.
type Range struct{ First, Last netip.Addr }

// ParseRange reads one entry of an IPAddressPool's spec.addresses: a CIDR
// ("192.0.2.0/24", "2001:db8::/64") or an inclusive range
// ("192.0.2.10-192.0.2.20", spaces around the dash allowed).
//
// A CIDR with host bits set ("192.0.2.5/24") is rejected rather than masked:
// MetalLB silently widens it to the whole /24, which hands out addresses the
// user may never have meant to give away. Zones and IPv4-mapped IPv6
// addresses are rejected too, so every address has exactly one spelling and
// one family.
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Range{}, errors.New("empty address range")
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Range{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
		}
		if err := plainAddr(p.Addr()); err != nil {
			return Range{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
		}
		if m := p.Masked(); m != p {
			return Range{}, fmt.Errorf("invalid CIDR %q: host bits are set (the network is %s)", s, m)
		}
		return prefixRange(p), nil
	case strings.Contains(s, "-"):
		a, b, _ := strings.Cut(s, "-")
		first, err := parseAddr(strings.TrimSpace(a))
		if err != nil {
			return Range{}, fmt.Errorf("invalid range %q: first address: %w", s, err)
		}
		last, err := parseAddr(strings.TrimSpace(b))
		if err != nil {
			return Range{}, fmt.Errorf("invalid range %q: last address: %w", s, err)
		}
		r := Range{First: first, Last: last}
		if err := r.Valid(); err != nil {
			return Range{}, fmt.Errorf("invalid range %q: %w", s, err)
		}
		return r, nil
	}
	return Range{}, fmt.Errorf("invalid address range %q: want a CIDR (192.0.2.0/24) or a first-last range (192.0.2.10-192.0.2.20)", s)
}

func prefixRange(p netip.Prefix) Range {
	f := FamilyOf(p.Addr())
	first := u128Of(p.Addr())
	hostBits := p.Addr().BitLen() - p.Bits()
	last := first
	// Shifting a uint64 by 64 gives 0 in Go, so a /0 sets every bit.
	if hostBits >= 64 {
		last.lo = ^uint64(0)
		last.hi |= uint64(1)<<(hostBits-64) - 1
	} else {
		last.lo |= uint64(1)<<hostBits - 1
	}
	return Range{First: p.Addr(), Last: last.addr(f)}
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return a, plainAddr(a)
}

// plainAddr rejects spellings that give an address a second identity. An
// IPv4-mapped IPv6 address is a valid IPv6 address (a pool such as ::/80
// contains some), but a user who types one almost certainly means IPv4, so
// text input refuses it with a hint; zones never belong to a pool.
func plainAddr(a netip.Addr) error {
	if err := noZone(a); err != nil {
		return err
	}
	if a.Is4In6() {
		return fmt.Errorf("%s is an IPv4-mapped IPv6 address; write it as %s", a, a.Unmap())
	}
	return nil
}

func noZone(a netip.Addr) error {
	if a.Zone() != "" {
		return fmt.Errorf("%s has a zone; pools and requests take plain addresses", a)
	}
	return nil
}

// Valid reports why r cannot be used, or nil.
func (r Range) Valid() error {
	switch {
	case !r.First.IsValid() || !r.Last.IsValid():
		return errors.New("range is missing an address")
	case FamilyOf(r.First) != FamilyOf(r.Last):
		return fmt.Errorf("%s and %s are of different families", r.First, r.Last)
	}
	if err := noZone(r.First); err != nil {
		return err
	}
	if err := noZone(r.Last); err != nil {
		return err
	}
	if r.Last.Less(r.First) {
		return fmt.Errorf("first address %s is above last address %s", r.First, r.Last)
	}
	return nil
}

// Family returns the family of r's addresses.
func (r Range) Family() Family { return FamilyOf(r.First) }

// Contains reports whether a lies in r. An invalid range contains nothing.
func (r Range) Contains(a netip.Addr) bool {
	return a.IsValid() && a.Zone() == "" && r.Valid() == nil &&
		a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// String formats r as a CIDR when it is exactly one prefix, else as
// first-last, so that ParseRange(r.String()) == r.
func (r Range) String() string {
	if r.Valid() == nil {
		// Not hot: try every prefix length from the widest.
		for bits := 0; bits <= r.First.BitLen(); bits++ {
			p := netip.PrefixFrom(r.First, bits)
			if p.Masked() == p && prefixRange(p).Last == r.Last {
				return p.String()
			}
		}
	}
	return fmt.Sprintf("%s-%s", r.First, r.Last)
}

// ParseRequestedIPs reads the lb.herald.dev/loadBalancerIPs annotation:
// comma-separated addresses, at most one per family, spaces around commas
// allowed. An empty value requests nothing. Whether the addresses match the
// Service's families and lie in a pool is decided by Assign.
func ParseRequestedIPs(s string) ([]netip.Addr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("invalid requested addresses %q: at most one address per family (two in all), got %d entries", s, len(parts))
	}
	var out []netip.Addr
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("invalid requested addresses %q: entry %d is empty", s, i+1)
		}
		a, err := parseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("invalid requested addresses %q: %w", s, err)
		}
		if a.IsUnspecified() {
			return nil, fmt.Errorf("invalid requested addresses %q: %s is the unspecified address", s, a)
		}
		for _, b := range out {
			if FamilyOf(a) == FamilyOf(b) {
				return nil, fmt.Errorf("invalid requested addresses %q: %s and %s are both %s; at most one address per family", s, b, a, FamilyOf(a))
			}
		}
		out = append(out, a)
	}
	return out, nil
}
