package allocate

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
)

// Pool is one IPAddressPool as the allocator sees it.
type Pool struct {
	Name string
	// Ranges may mix families and may overlap or touch; the allocator works
	// on their union. Invalid ranges (see Range.Valid) hold no addresses:
	// validating them is the configuration layer's job, with ParseRange.
	Ranges []Range
	// AutoAssign lets the pool hand out addresses to Services that did not
	// pin it. A pinned pool, requested addresses and already held addresses
	// ignore it.
	AutoAssign bool
	// AvoidBuggyIPs: the pool never hands out IPv4 addresses ending in .0 or
	// .255, and does not contain them (see Contains).
	AvoidBuggyIPs bool
	// Priority orders pools as in MetalLB: 1 is preferred over 2, and 0
	// (unset) or negative comes after every pool with a priority. Equal
	// priorities are broken by name.
	Priority int
	// A Service may use the pool only if its namespace is listed in
	// Namespaces or matches one of NamespaceSelectors (both empty: any
	// namespace), and its labels match one of ServiceSelectors (empty: any
	// Service). As in MetalLB, the two namespace lists are one condition.
	Namespaces         []string
	NamespaceSelectors []labels.Selector
	ServiceSelectors   []labels.Selector
	// Frozen pools give no new addresses (no automatic allocation, no
	// pinning, no requested address, no backfill) but keep what Services
	// hold from them: the configuration froze the pool because it is
	// invalid (it overlaps an older pool, say). Unfrozen, it resumes.
	Frozen bool
}

// Contains reports whether the pool can hand out a: a lies in one of its
// ranges and is not an address avoidBuggyIPs excludes. This is the one
// address-to-pool rule; the speaker uses it too.
func (p *Pool) Contains(a netip.Addr) bool {
	if Special(a) || p.AvoidBuggyIPs && a.Is4() && buggy(u128Of(a)) {
		return false
	}
	for _, r := range p.Ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// Families returns the families the pool has addresses of, IPv4 first.
func (p *Pool) Families() []Family {
	var has [2]bool
	for _, r := range p.Ranges {
		if r.Valid() == nil {
			has[r.Family().index()] = true
		}
	}
	var out []Family
	for i, ok := range has {
		if ok {
			out = append(out, familyAt(i))
		}
	}
	return out
}

// admits reports whether the pool's serviceAllocation lets svc use it.
// autoAssign and pinning are the caller's business.
func (p *Pool) admits(svc *Service) bool {
	return p.admitsNamespace(svc) && p.admitsLabels(svc)
}

func (p *Pool) admitsNamespace(svc *Service) bool {
	if len(p.Namespaces) == 0 && len(p.NamespaceSelectors) == 0 {
		return true
	}
	if slices.Contains(p.Namespaces, svc.Namespace) {
		return true
	}
	for _, sel := range p.NamespaceSelectors {
		if sel != nil && sel.Matches(labels.Set(svc.NamespaceLabels)) {
			return true
		}
	}
	return false
}

func (p *Pool) admitsLabels(svc *Service) bool {
	if len(p.ServiceSelectors) == 0 {
		return true
	}
	for _, sel := range p.ServiceSelectors {
		if sel != nil && sel.Matches(labels.Set(svc.Labels)) {
			return true
		}
	}
	return false
}

// refusal says why admits is false, for messages.
func (p *Pool) refusal(svc *Service) string {
	switch {
	case !p.admitsNamespace(svc):
		return fmt.Sprintf("namespace %s is not selected", svc.Namespace)
	case !p.admitsLabels(svc):
		return "the Service's labels match no serviceSelector"
	}
	return "admitted"
}

// rangeState is one merged range of a pool with its occupancy. Capacity
// counts only addresses the pool can hand out (avoidBuggyIPs excluded), and
// used counts those of them that some Service holds, so free = capacity-used
// without looking at a single address.
type rangeState struct {
	lo, hi   u128
	capacity u128
	used     uint64
}

func (r *rangeState) full() bool { return r.capacity == u64(r.used) }

// poolState is a Pool prepared for allocation.
type poolState struct {
	cfg    Pool
	ranges [2][]rangeState // per family: sorted, disjoint, non-adjacent
	// Per family totals, kept in step with ranges so "is the pool full?" is
	// O(1).
	avail    [2]u128
	assigned [2]uint64
}

func newPoolState(p Pool, held [2]*runSet, good *runSet) *poolState {
	ps := &poolState{cfg: p}
	ps.cfg.Ranges = slices.Clone(p.Ranges)
	ps.cfg.Namespaces = slices.Clone(p.Namespaces)
	ps.cfg.NamespaceSelectors = slices.Clone(p.NamespaceSelectors)
	ps.cfg.ServiceSelectors = slices.Clone(p.ServiceSelectors)

	for _, r := range p.Ranges {
		if r.Valid() != nil {
			continue
		}
		i := r.Family().index()
		ps.ranges[i] = append(ps.ranges[i], rangeState{lo: u128Of(r.First), hi: u128Of(r.Last)})
	}
	for i := range ps.ranges {
		rs := ps.ranges[i]
		slices.SortFunc(rs, func(a, b rangeState) int { return a.lo.cmp(b.lo) })
		// Merge overlapping and touching ranges, so each address is counted
		// once and every range boundary is a real gap.
		merged := rs[:0]
		for _, r := range rs {
			if n := len(merged); n > 0 {
				last := &merged[n-1]
				if next, ok := last.hi.inc(); !ok || !next.less(r.lo) {
					if last.hi.less(r.hi) {
						last.hi = r.hi
					}
					continue
				}
			}
			merged = append(merged, r)
		}
		ps.ranges[i] = withoutSpecial(merged, specialRanges[i])
		merged = ps.ranges[i]
		set := held[i]
		if i == IPv4.index() && p.AvoidBuggyIPs {
			set = good
		}
		for j := range merged {
			r := &merged[j]
			r.capacity = span(r.lo, r.hi)
			if i == IPv4.index() && p.AvoidBuggyIPs {
				r.capacity = r.capacity.sub(u64(buggyIn(r.lo, r.hi)))
			}
			r.used = set.countIn(r.lo, r.hi)
			ps.avail[i] = ps.avail[i].add(r.capacity.sub(u64(r.used)))
			ps.assigned[i] += r.used
		}
	}
	return ps
}

// rangeOf returns the range of family index i that holds u, or nil.
func (ps *poolState) rangeOf(i int, u u128) *rangeState {
	rs := ps.ranges[i]
	j, found := slices.BinarySearchFunc(rs, u, func(r rangeState, u u128) int {
		switch {
		case r.hi.less(u):
			return -1
		case u.less(r.lo):
			return 1
		}
		return 0
	})
	if !found {
		return nil
	}
	return &rs[j]
}

// contains is Pool.Contains on the merged ranges.
func (ps *poolState) contains(a netip.Addr) bool {
	f := FamilyOf(a)
	if !f.valid() || a.Zone() != "" {
		return false
	}
	u := u128Of(a)
	if f == IPv4 && ps.cfg.AvoidBuggyIPs && buggy(u) || Special(a) {
		return false
	}
	return ps.rangeOf(f.index(), u) != nil
}

// count records that an address of family index i was taken (delta 1) or
// freed (delta -1), if the pool can hand it out.
func (ps *poolState) count(i int, u u128, delta int) {
	if i == IPv4.index() && ps.cfg.AvoidBuggyIPs && buggy(u) {
		return
	}
	r := ps.rangeOf(i, u)
	if r == nil {
		return
	}
	if delta > 0 {
		r.used++
		ps.assigned[i]++
		ps.avail[i] = ps.avail[i].sub(u64(1))
	} else {
		r.used--
		ps.assigned[i]--
		ps.avail[i] = ps.avail[i].add(u64(1))
	}
}

func (ps *poolState) has(f Family) bool { return len(ps.ranges[f.index()]) > 0 }

func (ps *poolState) hasFree(f Family) bool { return !ps.avail[f.index()].isZero() }

// rank is the sort key of the preference order: priority 0 means unset and
// sorts last.
func (ps *poolState) rank() int {
	if ps.cfg.Priority <= 0 {
		return math.MaxInt
	}
	return ps.cfg.Priority
}

func comparePools(a, b *poolState) int {
	if c := cmp.Compare(a.rank(), b.rank()); c != 0 {
		return c
	}
	return cmp.Compare(a.cfg.Name, b.cfg.Name)
}

// Special reports whether no Service may get a: a multicast, loopback,
// link-local (unicast or multicast), unspecified or IPv4 broadcast
// (255.255.255.255) address. Pools never hand
// them out and do not contain them, even if their ranges cover them (the CRD
// rejects such pools; this is defence in depth).
func Special(a netip.Addr) bool {
	return a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() ||
		a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// specialRanges are the blocks Special reports, per family index, sorted
// and disjoint. Subtracting them once per pool at SetPools keeps the cost
// of each allocation independent of the pool's size.
var specialRanges = func() (out [2][]rangeState) {
	for _, s := range []string{"0.0.0.0/32", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "::/128", "::1/128", "fe80::/10", "ff00::/8"} {
		r, err := ParseRange(s)
		if err != nil {
			panic(err)
		}
		i := r.Family().index()
		out[i] = append(out[i], rangeState{lo: u128Of(r.First), hi: u128Of(r.Last)})
	}
	return out
}()

// withoutSpecial removes the special blocks sp from the sorted, disjoint
// ranges rs. The pieces stay sorted and disjoint, and are separated by the
// removed blocks, so they stay non-adjacent.
func withoutSpecial(rs, sp []rangeState) []rangeState {
	var out []rangeState
	for _, r := range rs {
		lo, hi, empty := r.lo, r.hi, false
		for _, x := range sp {
			if empty || x.hi.less(lo) || hi.less(x.lo) {
				continue
			}
			if lo.less(x.lo) {
				out = append(out, rangeState{lo: lo, hi: x.lo.dec()})
			}
			next, ok := x.hi.inc()
			if !ok || hi.less(next) {
				empty = true
				continue
			}
			lo = next
		}
		if !empty {
			out = append(out, rangeState{lo: lo, hi: hi})
		}
	}
	return out
}
