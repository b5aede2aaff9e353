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

// attrKey names a route's attribute set; routes with the same key share a
// statement in the peer's export policy.
func attrKey(r Route) string {
	return fmt.Sprint(r.Communities, r.LargeCommunities, r.LocalPref)
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

// apiPath builds the local path: origin and an unspecified next hop (0.0.0.0
// or ::) only. GoBGP then uses the session's local address; each peer's
// export policy sets that peer's communities, large communities, local
// preference and (where the route's family differs from the session's) next
// hop, so the one path in GoBGP's RIB leaves differently for every peer.
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

// SetRoutes makes the announced routes exactly routes. A prefix may be
// listed several times with different attributes as long as each peer gets
// it at most once (the routes' Peers are disjoint; a route with empty Peers,
// meaning all peers, must be the prefix's only one). Each peer receives
// exactly its own routes with their own attributes.
//
// Only the difference to the previous call goes on the wire: a new prefix is
// advertised, a removed one withdrawn, an unchanged one not re-sent. When a
// prefix's attributes or targets change for some peers, only those peers get
// a soft reset out (GoBGP re-sends that one peer its routes; a router treats
// the repeats as duplicates and keeps them as they are).
func (s *Speaker) SetRoutes(routes []Route) error {
	desired := make(map[netip.Prefix][]Route, len(routes))
	var errs []error
	for _, r := range routes {
		if err := r.normalize(); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r.Prefix, err))
			continue
		}
		if err := disjoint(desired[r.Prefix], r); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r.Prefix, err))
			continue
		}
		desired[r.Prefix] = append(desired[r.Prefix], r)
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
	if s.srv == nil { // no peers: kept for the first one
		s.routes = desired
		return nil
	}

	var announce, withdraw []netip.Prefix
	fresh := map[netip.Prefix]bool{} // added or removed: AddPath/DeletePath reach the peers themselves
	for _, p := range sortedRouteKeys(desired) {
		if _, ok := s.routes[p]; !ok {
			fresh[p] = true
			announce = append(announce, p)
		}
	}
	for _, p := range sortedRouteKeys(s.routes) {
		if _, ok := desired[p]; !ok {
			fresh[p] = true
			withdraw = append(withdraw, p)
		}
	}

	// Place prefixes in the peers' policy before announcing, take them out
	// after withdrawing, so no peer misses an UPDATE or a withdrawal.
	shrink := map[*peerState][]netip.Prefix{}
	var resetOut []*peerState
	for _, name := range sortedKeys(s.peers) {
		ps := s.peers[name]
		view := ps.view(desired)
		place := map[netip.Prefix]Route{}
		var del []netip.Prefix
		moved := false
		for p, r := range view {
			if g, ok := ps.in[p]; !ok || g.key != attrKey(r) {
				place[p] = r
				moved = moved || !fresh[p]
			}
		}
		for _, p := range sortedPrefixes(ps.exported()) {
			if _, ok := view[p]; !ok {
				del = append(del, p)
				moved = moved || !fresh[p]
			}
		}
		if err := s.place(ctx, ps, place); err != nil {
			return err
		}
		shrink[ps] = del
		if moved {
			resetOut = append(resetOut, ps)
		}
	}

	if len(announce) > 0 {
		paths := make([]*apiutil.Path, 0, len(announce))
		for _, p := range announce {
			r := Route{Prefix: p}
			paths = append(paths, r.apiPath())
		}
		if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: paths}); err != nil {
			return fmt.Errorf("announce %d routes: %w", len(paths), err)
		}
		for _, p := range announce {
			s.routes[p] = desired[p]
			s.log.Info("BGP route announced", "prefix", p, "peers", routesPeers(desired[p]))
		}
	}
	if len(withdraw) > 0 {
		paths := make([]*apiutil.Path, 0, len(withdraw))
		for _, p := range withdraw {
			r := Route{Prefix: p}
			paths = append(paths, r.apiPath())
		}
		if err := s.deletePaths(paths); err != nil {
			return err
		}
		for _, p := range withdraw {
			delete(s.routes, p)
			s.log.Info("BGP route withdrawn", "prefix", p)
		}
	}
	for _, ps := range sortedPeerStates(shrink) {
		if err := s.unplace(ctx, ps, shrink[ps]); err != nil {
			return err
		}
	}
	for p, r := range desired {
		s.routes[p] = r // attribute- and target-only changes
	}
	for _, ps := range resetOut {
		if err := s.softResetOut(ctx, ps); err != nil {
			return err
		}
	}

	var warns Warnings
	for _, name := range sortedKeys(s.peers) {
		ps := s.peers[name]
		if ps.cfg.MyASN == ps.cfg.ASN {
			continue
		}
		view := ps.view(desired)
		for _, p := range sortedRouteKeys(view) {
			if view[p].LocalPref != 0 {
				warns = append(warns, Warning{Peer: name, Prefix: p, Message: "localPref is not sent to an eBGP peer"})
			}
		}
	}
	return warningsErr(warns)
}

// disjoint checks that r can be added to the routes already listed for its
// prefix: no peer may get the prefix twice.
func disjoint(have []Route, r Route) error {
	for _, h := range have {
		if len(h.Peers) == 0 || len(r.Peers) == 0 {
			return errors.New("listed twice and one of them goes to all peers (name the peers of each)")
		}
		for _, n := range r.Peers {
			if _, ok := slices.BinarySearch(h.Peers, n); ok {
				return fmt.Errorf("listed twice for peer %q (merge the attributes into one Route)", n)
			}
		}
	}
	return nil
}

// view is what this peer should receive: prefix -> its route.
func (ps *peerState) view(routes map[netip.Prefix][]Route) map[netip.Prefix]Route {
	out := map[netip.Prefix]Route{}
	for p, rs := range routes {
		for _, r := range rs {
			if ps.member(r) {
				out[p] = r
				break
			}
		}
	}
	return out
}

func routesPeers(rs []Route) any {
	var out []string
	for _, r := range rs {
		if len(r.Peers) == 0 {
			return "all"
		}
		out = append(out, r.Peers...)
	}
	slices.Sort(out)
	return out
}

func sortedRouteKeys[V any](m map[netip.Prefix]V) []netip.Prefix {
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
