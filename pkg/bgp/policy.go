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
// peer's identity. So per-peer targeting and per-peer next hops are built as:
//
//	global export, default REJECT
//	  policy herald-pN (one per peer)
//	    statement herald-pN-v4: neighbor in herald-pN-nbr AND prefix in herald-pN-v4
//	                            -> [set next-hop] ACCEPT
//	    statement herald-pN-v6: the same for IPv6
//
// A route reaches a peer only while its prefix is in that peer's prefix set.
// GoBGP does not re-evaluate what it already sent when a set changes, so
// membership changes of existing routes are followed by a soft reset out of
// the peers concerned; new routes are put into the sets before AddPath and
// removed ones taken out after DeletePath.
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
func (ps *peerState) prefixSet(v4 bool) string {
	if v4 {
		return ps.policyName() + "-v4"
	}
	return ps.policyName() + "-v6"
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

func (ps *peerState) exportPolicy() *api.Policy {
	st := func(v4 bool, nh netip.Addr) *api.Statement {
		a := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT}
		if nh.IsValid() {
			a.Nexthop = &api.NexthopAction{Address: nh.String()}
		}
		return &api.Statement{
			Name: ps.prefixSet(v4),
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: ps.nbrSet()},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: ps.prefixSet(v4)},
			},
			Actions: a,
		}
	}
	return &api.Policy{Name: ps.policyName(), Statements: []*api.Statement{st(true, ps.nh4), st(false, ps.nh6)}}
}

// createExport installs the peer's sets and policy, with the prefixes it
// should already receive. Called before AddPeer so the first table dump after
// the session comes up is already filtered.
func (s *Speaker) createExport(ctx context.Context, ps *peerState, initial []netip.Prefix) error {
	bits := 32
	if !ps.cfg.isIPv4() {
		bits = 128
	}
	nbr := &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: ps.nbrSet(),
		List: []string{netip.PrefixFrom(ps.cfg.Address.Unmap(), bits).String()}}
	var v4, v6 []netip.Prefix
	for _, p := range initial {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	for _, ds := range []*api.DefinedSet{nbr, prefixSet(ps.prefixSet(true), v4), prefixSet(ps.prefixSet(false), v6)} {
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds, Replace: true}); err != nil {
			return fmt.Errorf("peer %q: defined set %s: %w", ps.cfg.Name, ds.Name, err)
		}
	}
	ps.exported = map[netip.Prefix]bool{}
	for _, p := range initial {
		ps.exported[p] = true
	}
	return s.addExportPolicy(ctx, ps)
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
	for _, name := range []string{ps.nbrSet(), ps.prefixSet(true), ps.prefixSet(false)} {
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

// changeExported adds and removes prefixes in the peer's prefix sets.
func (s *Speaker) changeExported(ctx context.Context, ps *peerState, add, del []netip.Prefix) error {
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
			if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: prefixSet(ps.prefixSet(v4), a)}); err != nil {
				return fmt.Errorf("peer %q: add to prefix set: %w", ps.cfg.Name, err)
			}
		}
		if len(d) > 0 {
			if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: prefixSet(ps.prefixSet(v4), d)}); err != nil {
				return fmt.Errorf("peer %q: remove from prefix set: %w", ps.cfg.Name, err)
			}
		}
	}
	for _, p := range add {
		ps.exported[p] = true
	}
	for _, p := range del {
		delete(ps.exported, p)
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
