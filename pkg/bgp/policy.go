package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v4/api"
)

// Routing policy layout. GoBGP keeps one RIB and applies one global export
// policy to every non-route-server peer, evaluating it with the destination
// peer's identity and on a per-peer copy of the path. So per-peer targets,
// attributes and next hops are built as:
//
//	global export, default REJECT
//	  policy herald-pN (one per peer)
//	    statement herald-pN-gK-v4: neighbor in herald-pN-nbr AND prefix in herald-pN-gK-v4
//	                               -> set communities, large communities, local pref, [next hop]; ACCEPT
//	    statement herald-pN-gK-v6: the same for IPv6
//
// with one group K per distinct attribute set the peer receives. A route
// reaches a peer only while its prefix is in one of that peer's group sets,
// and leaves with that group's attributes; the path in the RIB carries none.
// Per-neighbour export statements were chosen over per-peer paths because
// GoBGP keeps one local path per prefix in its global RIB (a second AddPath
// replaces the first) and route-server mode or one VRF per peer would change
// how sessions and next hops behave; policies also leave the prefix's single
// best path untouched, so adding a peer-specific attribute never disturbs
// another peer. A new group's statements are appended to the live policy
// (GoBGP's AddPolicy on an existing name appends), so no peer sees a moment
// without an accepting statement.
//
// GoBGP does not re-evaluate what it already sent when a set changes, so
// changes of an existing route's targets or attributes are followed by a soft
// reset out of the peers concerned; new routes are put into the sets before
// AddPath and removed ones taken out after DeletePath. Statement names are
// never reused: GoBGP keeps a removed statement's name reserved.
//
// Import: a global policy rejects every path learnt from a peer (route type
// internal or external) and accepts the rest, i.e. our own local paths. A
// default REJECT would also reject the local paths (LAB.md).

const (
	importPolicy = "herald-import"
	globalName   = "global"
)

func (ps *peerState) policyName() string { return fmt.Sprintf("herald-p%d", ps.id) }
func (ps *peerState) nbrSet() string     { return ps.policyName() + "-nbr" }
func (ps *peerState) groupSet(g *group, v4 bool) string {
	if v4 {
		return fmt.Sprintf("%s-g%d-v4", ps.policyName(), g.id)
	}
	return fmt.Sprintf("%s-g%d-v6", ps.policyName(), g.id)
}

// group is one attribute set a peer receives, with its prefixes.
type group struct {
	id    int
	key   string // attrKey
	attrs Route  // Communities, LargeCommunities, LocalPref
	n     int    // prefixes in the group
}

// exported is the set of prefixes the peer's policy accepts.
func (ps *peerState) exported() map[netip.Prefix]bool {
	out := make(map[netip.Prefix]bool, len(ps.in))
	for p := range ps.in {
		out[p] = true
	}
	return out
}

func (s *Speaker) installBasePolicies(ctx context.Context) error {
	imp := &api.Policy{Name: importPolicy, Statements: []*api.Statement{
		{Name: importPolicy + "-ibgp", Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_INTERNAL},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT}},
		{Name: importPolicy + "-ebgp", Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_EXTERNAL},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT}},
	}}
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: imp}); err != nil {
		return fmt.Errorf("add import policy: %w", err)
	}
	if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: globalName, Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies: []*api.Policy{{Name: importPolicy}}, DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
	}}); err != nil {
		return fmt.Errorf("assign import policy: %w", err)
	}
	if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: globalName, Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}}); err != nil {
		return fmt.Errorf("assign export default: %w", err)
	}
	return nil
}

func prefixSet(name string, prefixes []netip.Prefix) *api.DefinedSet {
	ds := &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: name}
	for _, p := range prefixes {
		ds.Prefixes = append(ds.Prefixes, &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Bits())})
	}
	return ds
}

func (ps *peerState) groupStatements(g *group) []*api.Statement {
	st := func(v4 bool, nh netip.Addr) *api.Statement {
		a := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT}
		if nh.IsValid() {
			a.Nexthop = &api.NexthopAction{Address: nh.String()}
		}
		if len(g.attrs.Communities) > 0 {
			c := &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE}
			for _, x := range g.attrs.Communities {
				c.Communities = append(c.Communities, fmt.Sprintf("%d:%d", x>>16, x&0xffff))
			}
			a.Community = c
		}
		if len(g.attrs.LargeCommunities) > 0 {
			c := &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE}
			for _, x := range g.attrs.LargeCommunities {
				c.Communities = append(c.Communities, fmt.Sprintf("%d:%d:%d", x[0], x[1], x[2]))
			}
			a.LargeCommunity = c
		}
		if g.attrs.LocalPref != 0 {
			a.LocalPref = &api.LocalPrefAction{Value: g.attrs.LocalPref}
		}
		return &api.Statement{
			Name: ps.groupSet(g, v4),
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: ps.nbrSet()},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: ps.groupSet(g, v4)},
			},
			Actions: a,
		}
	}
	return []*api.Statement{st(true, ps.nh4), st(false, ps.nh6)}
}

func (ps *peerState) exportPolicy() *api.Policy {
	pol := &api.Policy{Name: ps.policyName()}
	gs := make([]*group, 0, len(ps.groups))
	for _, g := range ps.groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *group) int { return a.id - b.id })
	for _, g := range gs {
		pol.Statements = append(pol.Statements, ps.groupStatements(g)...)
	}
	return pol
}

// createExport installs the peer's sets and policy, with the routes it
// should already receive. Called before AddPeer so the first table dump after
// the session comes up is already filtered.
func (s *Speaker) createExport(ctx context.Context, ps *peerState, initial map[netip.Prefix]Route) error {
	bits := 32
	if !ps.cfg.isIPv4() {
		bits = 128
	}
	nbr := &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: ps.nbrSet(),
		List: []string{netip.PrefixFrom(ps.cfg.Address.Unmap(), bits).String()}}
	if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: nbr, Replace: true}); err != nil {
		return fmt.Errorf("peer %q: defined set %s: %w", ps.cfg.Name, nbr.Name, err)
	}
	ps.groups = map[string]*group{}
	ps.in = map[netip.Prefix]*group{}
	if err := s.addExportPolicy(ctx, ps); err != nil {
		return err
	}
	return s.place(ctx, ps, initial)
}

// newGroup creates the sets of a new attribute group and appends its
// statements to the peer's live policy.
func (s *Speaker) newGroup(ctx context.Context, ps *peerState, r Route) (*group, error) {
	s.nextGroup++
	g := &group{id: s.nextGroup, key: attrKey(r),
		attrs: Route{Communities: r.Communities, LargeCommunities: r.LargeCommunities, LocalPref: r.LocalPref}}
	for _, v4 := range []bool{true, false} {
		ds := prefixSet(ps.groupSet(g, v4), nil)
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds, Replace: true}); err != nil {
			return nil, fmt.Errorf("peer %q: defined set %s: %w", ps.cfg.Name, ds.Name, err)
		}
	}
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: ps.policyName(), Statements: ps.groupStatements(g)}}); err != nil {
		return nil, fmt.Errorf("peer %q: add export statements: %w", ps.cfg.Name, err)
	}
	ps.groups[g.key] = g
	return g, nil
}

func (s *Speaker) dropGroup(ctx context.Context, ps *peerState, g *group) error {
	st := ps.groupStatements(g)
	if err := s.srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: ps.policyName(), Statements: st}}); err != nil {
		return fmt.Errorf("peer %q: remove export statements: %w", ps.cfg.Name, err)
	}
	for _, v4 := range []bool{true, false} {
		if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: ps.groupSet(g, v4)}, All: true}); err != nil {
			return fmt.Errorf("peer %q: delete defined set %s: %w", ps.cfg.Name, ps.groupSet(g, v4), err)
		}
	}
	delete(ps.groups, g.key)
	return nil
}

func (s *Speaker) addExportPolicy(ctx context.Context, ps *peerState) error {
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: ps.exportPolicy()}); err != nil {
		return fmt.Errorf("peer %q: add export policy: %w", ps.cfg.Name, err)
	}
	if err := s.srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: globalName, Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies: []*api.Policy{{Name: ps.policyName()}}, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}}); err != nil {
		return fmt.Errorf("peer %q: assign export policy: %w", ps.cfg.Name, err)
	}
	return nil
}

func (s *Speaker) deleteExportPolicy(ctx context.Context, ps *peerState) error {
	if err := s.srv.DeletePolicyAssignment(ctx, &api.DeletePolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: globalName, Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies: []*api.Policy{{Name: ps.policyName()}},
	}}); err != nil {
		return fmt.Errorf("peer %q: unassign export policy: %w", ps.cfg.Name, err)
	}
	if err := s.srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: ps.policyName()}, All: true}); err != nil {
		return fmt.Errorf("peer %q: delete export policy: %w", ps.cfg.Name, err)
	}
	return nil
}

func (s *Speaker) deleteExport(ctx context.Context, ps *peerState) error {
	if err := s.deleteExportPolicy(ctx, ps); err != nil {
		return err
	}
	names := []string{ps.nbrSet()}
	for _, g := range ps.groups {
		names = append(names, ps.groupSet(g, true), ps.groupSet(g, false))
	}
	for _, name := range names {
		typ := api.DefinedType_DEFINED_TYPE_PREFIX
		if name == ps.nbrSet() {
			typ = api.DefinedType_DEFINED_TYPE_NEIGHBOR
		}
		if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{DefinedType: typ, Name: name}, All: true}); err != nil {
			return fmt.Errorf("peer %q: delete defined set %s: %w", ps.cfg.Name, name, err)
		}
	}
	return nil
}

// setMembers adds and removes prefixes in one group's sets.
func (s *Speaker) setMembers(ctx context.Context, ps *peerState, g *group, add, del []netip.Prefix) error {
	for _, v4 := range []bool{true, false} {
		var a, d []netip.Prefix
		for _, p := range add {
			if p.Addr().Is4() == v4 {
				a = append(a, p)
			}
		}
		for _, p := range del {
			if p.Addr().Is4() == v4 {
				d = append(d, p)
			}
		}
		if len(a) > 0 {
			if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: prefixSet(ps.groupSet(g, v4), a)}); err != nil {
				return fmt.Errorf("peer %q: add to prefix set: %w", ps.cfg.Name, err)
			}
		}
		if len(d) > 0 {
			if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: prefixSet(ps.groupSet(g, v4), d)}); err != nil {
				return fmt.Errorf("peer %q: remove from prefix set: %w", ps.cfg.Name, err)
			}
		}
	}
	g.n += len(add) - len(del)
	return nil
}

// place puts each prefix into the group of its route's attributes (creating
// groups as needed), moving it out of its previous group.
func (s *Speaker) place(ctx context.Context, ps *peerState, routes map[netip.Prefix]Route) error {
	add := map[*group][]netip.Prefix{}
	del := map[*group][]netip.Prefix{}
	for _, p := range sortedRouteKeys(routes) {
		r := routes[p]
		g, ok := ps.groups[attrKey(r)]
		if !ok {
			var err error
			if g, err = s.newGroup(ctx, ps, r); err != nil {
				return err
			}
		}
		if old, ok := ps.in[p]; ok {
			if old == g {
				continue
			}
			del[old] = append(del[old], p)
		}
		add[g] = append(add[g], p)
		ps.in[p] = g
	}
	for g, ps2 := range add {
		if err := s.setMembers(ctx, ps, g, ps2, nil); err != nil {
			return err
		}
	}
	for g, ps2 := range del {
		if err := s.setMembers(ctx, ps, g, nil, ps2); err != nil {
			return err
		}
	}
	return s.dropEmpty(ctx, ps)
}

// unplace takes prefixes out of the peer's policy.
func (s *Speaker) unplace(ctx context.Context, ps *peerState, prefixes []netip.Prefix) error {
	del := map[*group][]netip.Prefix{}
	for _, p := range prefixes {
		if g, ok := ps.in[p]; ok {
			del[g] = append(del[g], p)
			delete(ps.in, p)
		}
	}
	for g, ps2 := range del {
		if err := s.setMembers(ctx, ps, g, nil, ps2); err != nil {
			return err
		}
	}
	return s.dropEmpty(ctx, ps)
}

func (s *Speaker) dropEmpty(ctx context.Context, ps *peerState) error {
	for _, g := range ps.groups {
		if g.n == 0 {
			if err := s.dropGroup(ctx, ps, g); err != nil {
				return err
			}
		}
	}
	return nil
}

// softResetOut makes GoBGP re-evaluate the export policy for one peer: it
// sends withdrawals for what the policy now rejects and re-sends the rest
// (duplicates a router ignores without touching the route).
func (s *Speaker) softResetOut(ctx context.Context, ps *peerState) error {
	if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: ps.cfg.Address.String(), Soft: true,
		Direction: api.ResetPeerRequest_DIRECTION_OUT}); err != nil {
		return fmt.Errorf("peer %q: soft reset out: %w", ps.cfg.Name, err)
	}
	return nil
}

func sortedPrefixes(m map[netip.Prefix]bool) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}
