package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Route is one prefix this node announces.
type Route struct {
	Prefix netip.Prefix
	// Peers names the peers (Peer.Name) the route is sent to; empty = all.
	// A name with no configured peer is kept and applies once that peer is
	// added.
	Peers            []string
	Communities      []uint32 // RFC 1997, as (asn<<16 | value)
	LargeCommunities [][3]uint32
	// LocalPref is sent to iBGP peers only (RFC 4271 forbids it on eBGP);
	// 0 = unset (routers assume 100). SetRoutes returns a Warning for each
	// eBGP peer a route with LocalPref goes to.
	LocalPref uint32
}

func (r *Route) normalize() error {
	if !r.Prefix.IsValid() {
		return errors.New("prefix is not set")
	}
	if r.Prefix.Addr().Zone() != "" {
		return fmt.Errorf("prefix %s: zones are not allowed", r.Prefix)
	}
	if r.Prefix.Addr().Is4In6() {
		r.Prefix = netip.PrefixFrom(r.Prefix.Addr().Unmap(), r.Prefix.Bits()-96)
	}
	if r.Prefix != r.Prefix.Masked() {
		return fmt.Errorf("prefix %s has host bits set (want %s)", r.Prefix, r.Prefix.Masked())
	}
	r.Peers = compactSorted(r.Peers, func(a, b string) int {
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	r.Communities = compactSorted(r.Communities, func(a, b uint32) int { return int(int64(a) - int64(b)) })
	r.LargeCommunities = compactSorted(r.LargeCommunities, func(a, b [3]uint32) int {
		for i := range a {
			if a[i] != b[i] {
				return int(int64(a[i]) - int64(b[i]))
			}
		}
		return 0
	})
	return nil
}

func compactSorted[T comparable](in []T, cmp func(a, b T) int) []T {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.SortFunc(out, cmp)
	return slices.Compact(out)
}

// sameAttributes reports whether a and b would produce the same UPDATE.
func sameAttributes(a, b Route) bool {
	return a.LocalPref == b.LocalPref && slices.Equal(a.Communities, b.Communities) &&
		slices.Equal(a.LargeCommunities, b.LargeCommunities)
}

// member reports whether route r goes to this peer.
func (ps *peerState) member(r Route) bool {
	if len(r.Peers) > 0 {
		if _, ok := slices.BinarySearch(r.Peers, ps.cfg.Name); !ok {
			return false
		}
	}
	if r.Prefix.Addr().Is4() {
		return ps.can4
	}
	return ps.can6
}

// apiPath builds the local path. The next hop is left unspecified (0.0.0.0
// or ::): GoBGP then uses the session's local address, and the per-peer
// export policy overrides it where the route's family differs from the
// session's.
func (r *Route) apiPath() *apiutil.Path {
	nlri, _ := bgp.NewIPAddrPrefix(r.Prefix) // cannot fail: the prefix is valid
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	family := bgp.RF_IPv4_UC
	if r.Prefix.Addr().Is4() {
		nh, _ := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		attrs = append(attrs, nh)
	} else {
		family = bgp.RF_IPv6_UC
		mp, _ := bgp.NewPathAttributeMpReachNLRI(family, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		attrs = append(attrs, mp)
	}
	if len(r.Communities) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(r.Communities))
	}
	if len(r.LargeCommunities) > 0 {
		l := make([]*bgp.LargeCommunity, 0, len(r.LargeCommunities))
		for _, c := range r.LargeCommunities {
			l = append(l, bgp.NewLargeCommunity(c[0], c[1], c[2]))
		}
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(l))
	}
	if r.LocalPref != 0 {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(r.LocalPref))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}
}

func (s *Speaker) deletePaths(paths []*apiutil.Path) error {
	if len(paths) == 0 {
		return nil
	}
	for _, p := range paths {
		p.Withdrawal = true
	}
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: paths}); err != nil {
		return fmt.Errorf("withdraw %d routes: %w", len(paths), err)
	}
	return nil
}

// SetRoutes makes the announced routes exactly routes. Only the difference
// to the previous call goes on the wire: new routes are advertised, routes
// with changed attributes re-advertised, removed ones withdrawn; a route that
// did not change is not re-sent. When only a route's Peers change, the peers
// that gain or lose it get a soft reset out (GoBGP re-sends that one peer its
// routes; a router treats the repeats as duplicates and keeps them as they
// are).
func (s *Speaker) SetRoutes(routes []Route) error {
	desired := make(map[netip.Prefix]Route, len(routes))
	var errs []error
	for _, r := range routes {
		if err := r.normalize(); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r.Prefix, err))
			continue
		}
		if _, dup := desired[r.Prefix]; dup {
			errs = append(errs, fmt.Errorf("route %s: listed twice (merge the attributes into one Route)", r.Prefix))
			continue
		}
		desired[r.Prefix] = r
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	ctx := context.Background()

	var announce, withdraw []Route
	fresh := map[netip.Prefix]bool{} // added or removed: AddPath/DeletePath reach the peers themselves
	for _, p := range sortedRouteKeys(desired) {
		r := desired[p]
		old, ok := s.routes[p]
		if !ok {
			fresh[p] = true
			announce = append(announce, r)
		} else if !sameAttributes(old, r) {
			announce = append(announce, r)
		}
	}
	for _, p := range sortedRouteKeys(s.routes) {
		if _, ok := desired[p]; !ok {
			fresh[p] = true
			withdraw = append(withdraw, s.routes[p])
		}
	}

	// Grow the peers' prefix sets before announcing, shrink them after
	// withdrawing, so no peer misses an UPDATE or a withdrawal.
	shrink := map[*peerState][]netip.Prefix{}
	var resetOut []*peerState
	for _, name := range sortedKeys(s.peers) {
		ps := s.peers[name]
		var add, del []netip.Prefix
		moved := false
		for _, p := range sortedRouteKeys(desired) {
			if ps.member(desired[p]) && !ps.exported[p] {
				add = append(add, p)
				moved = moved || !fresh[p]
			}
		}
		for _, p := range sortedPrefixes(ps.exported) {
			if r, ok := desired[p]; !ok || !ps.member(r) {
				del = append(del, p)
				moved = moved || !fresh[p]
			}
		}
		if err := s.changeExported(ctx, ps, add, nil); err != nil {
			return err
		}
		shrink[ps] = del
		if moved {
			resetOut = append(resetOut, ps)
		}
	}

	if len(announce) > 0 {
		paths := make([]*apiutil.Path, 0, len(announce))
		for _, r := range announce {
			paths = append(paths, r.apiPath())
		}
		if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: paths}); err != nil {
			return fmt.Errorf("announce %d routes: %w", len(paths), err)
		}
		for _, r := range announce {
			s.routes[r.Prefix] = r
			s.log.Info("BGP route announced", "prefix", r.Prefix, "peers", peersLabel(r.Peers))
		}
	}
	if len(withdraw) > 0 {
		paths := make([]*apiutil.Path, 0, len(withdraw))
		for _, r := range withdraw {
			paths = append(paths, r.apiPath())
		}
		if err := s.deletePaths(paths); err != nil {
			return err
		}
		for _, r := range withdraw {
			delete(s.routes, r.Prefix)
			s.log.Info("BGP route withdrawn", "prefix", r.Prefix)
		}
	}
	for _, ps := range sortedPeerStates(shrink) {
		if err := s.changeExported(ctx, ps, nil, shrink[ps]); err != nil {
			return err
		}
	}
	for p, r := range desired {
		s.routes[p] = r // targets-only changes
	}
	for _, ps := range resetOut {
		if err := s.softResetOut(ctx, ps); err != nil {
			return err
		}
	}

	var warns Warnings
	for _, p := range sortedRouteKeys(desired) {
		r := desired[p]
		if r.LocalPref == 0 {
			continue
		}
		for _, name := range sortedKeys(s.peers) {
			ps := s.peers[name]
			if ps.member(r) && ps.cfg.MyASN != ps.cfg.ASN {
				warns = append(warns, Warning{Peer: name, Prefix: p, Message: "localPref is not sent to an eBGP peer"})
			}
		}
	}
	return warningsErr(warns)
}

func peersLabel(p []string) any {
	if len(p) == 0 {
		return "all"
	}
	return p
}

func sortedRouteKeys(m map[netip.Prefix]Route) []netip.Prefix {
	set := make(map[netip.Prefix]bool, len(m))
	for p := range m {
		set[p] = true
	}
	return sortedPrefixes(set)
}

func sortedPeerStates(m map[*peerState][]netip.Prefix) []*peerState {
	out := make([]*peerState, 0, len(m))
	for ps := range m {
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b *peerState) int { return a.id - b.id })
	return out
}
