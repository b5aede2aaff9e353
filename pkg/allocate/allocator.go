package allocate

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Allocator decides which addresses each LoadBalancer Service holds. It is a
// plain data structure: not safe for concurrent use, no I/O, and the same
// sequence of calls always gives the same addresses (lowest free first).
//
// Typical use: SetPools, then Restore every Service's current status before
// the first Assign (so a restart changes no address), then Assign on every
// Service change, Release on deletion, SetPools on every pool change, and
// requeue Waiting() after SetPools and Release.
type Allocator struct {
	pools  []*poolState // preference order: priority, then name
	byName map[string]*poolState
	// held holds every address some Service holds, per family index; good
	// is the IPv4 view that pools with avoidBuggyIPs search, kept only while
	// such a pool exists because it doubles the cost of every IPv4 change.
	held [2]*runSet
	good *runSet
	// users lists the Services holding each address (several when shared).
	users map[netip.Addr]users
	// shared indexes the addresses held under each sharing key, so that a
	// Service finds its group's address without scanning pools.
	shared  map[string]map[netip.Addr]struct{}
	svcs    map[string]*holding
	waiting map[string]struct{}
}

// holding is what the allocator knows about one Service.
type holding struct {
	// svc is the Service as of the last committed decision (Assign without
	// Err, or Restore): what the addresses were obtained for. Its Pool is
	// the pin they were obtained under, so a held address outside the
	// pinned pool moves only when the pin changed since (the Service asked
	// for another pool), never because the pool shrank (the caller decides
	// that).
	svc   Service
	pool  string // pool the addresses are held from
	addrs [2]netip.Addr
	fams  [2]Family // backs svc.Families, saving an allocation
}

// setService stores a copy of svc, reusing what the previous copy already
// holds so that re-evaluating an unchanged Service allocates nothing.
func (h *holding) setService(svc *Service) {
	prev := h.svc
	h.svc = *svc
	if len(svc.Families) <= len(h.fams) {
		n := copy(h.fams[:], svc.Families)
		h.svc.Families = h.fams[:n:n]
	} else {
		h.svc.Families = slices.Clone(svc.Families)
	}
	h.svc.Labels = reuseMap(prev.Labels, svc.Labels)
	h.svc.NamespaceLabels = reuseMap(prev.NamespaceLabels, svc.NamespaceLabels)
	h.svc.Requested = reuseSlice(prev.Requested, svc.Requested)
	h.svc.Ports = reuseSlice(prev.Ports, svc.Ports)
}

func reuseMap(prev, next map[string]string) map[string]string {
	if maps.Equal(prev, next) && (prev == nil) == (next == nil) {
		return prev
	}
	return maps.Clone(next)
}

func reuseSlice[E comparable](prev, next []E) []E {
	if slices.Equal(prev, next) && (prev == nil) == (next == nil) {
		return prev
	}
	return slices.Clone(next)
}

func (h *holding) holds() bool { return h.addrs[0].IsValid() || h.addrs[1].IsValid() }

// list returns the held addresses in the Service's family order.
func (h *holding) list() []netip.Addr {
	var out []netip.Addr
	for _, i := range familyOrder(h.svc.Families) {
		if h.addrs[i].IsValid() {
			out = append(out, h.addrs[i])
		}
	}
	return out
}

// familyOrder returns the family indexes in the order of fams, then any
// family fams does not list.
func familyOrder(fams []Family) [2]int {
	if len(fams) > 0 && fams[0] == IPv6 {
		return [2]int{1, 0}
	}
	return [2]int{0, 1}
}

// New returns an allocator with no pools.
func New() *Allocator {
	return &Allocator{
		byName:  map[string]*poolState{},
		held:    [2]*runSet{newRunSet(false), newRunSet(false)},
		users:   map[netip.Addr]users{},
		shared:  map[string]map[netip.Addr]struct{}{},
		svcs:    map[string]*holding{},
		waiting: map[string]struct{}{},
	}
}

// SetPools replaces the pool set. Pools are identified by name; when two
// share a name the first wins. Held addresses never move: those no longer in
// a pool their Service may use are returned (sorted by key) for the caller to
// decide, and stay held until it does. Services that could gain from the
// change are in Waiting afterwards.
func (a *Allocator) SetPools(pools []Pool) []Invalid {
	list := make([]*poolState, 0, len(pools))
	byName := make(map[string]*poolState, len(pools))
	if !slices.ContainsFunc(pools, func(p Pool) bool { return p.AvoidBuggyIPs }) {
		a.good = nil
	} else if a.good == nil {
		a.good = a.held[IPv4.index()].withoutBuggy()
	}
	for _, p := range pools {
		if _, dup := byName[p.Name]; dup {
			continue
		}
		ps := newPoolState(p, a.held, a.good)
		byName[p.Name] = ps
		list = append(list, ps)
	}
	slices.SortFunc(list, comparePools)
	a.pools, a.byName = list, byName

	var invalid []Invalid
	for key, h := range a.svcs {
		if !h.holds() {
			continue
		}
		switch p := a.poolHolding(&h.svc, h.addrs, h.pool); {
		case p == nil:
			invalid = append(invalid, Invalid{Key: key, Pool: h.pool, Addrs: h.list(), Reason: a.staleReason(&h.svc, h.addrs, h.pool)})
			a.waiting[key] = struct{}{}
		case p.cfg.Name != h.pool:
			// Still valid but now from another pool (say, a renamed one):
			// the next Assign records it, so the Service must be requeued.
			a.waiting[key] = struct{}{}
		}
	}
	slices.SortFunc(invalid, func(x, y Invalid) int { return strings.Compare(x.Key, y.Key) })
	return invalid
}

// decision is what decide wants the holding to become.
type decision struct {
	keep   bool // leave the holding exactly as it is
	pool   string
	addrs  [2]netip.Addr // by family index
	wish   []Family      // the families the Service asks for, primary first
	reason string
	err    error
}

// Assign decides which addresses svc should hold, commits the decision and
// reports it. It is idempotent: assigning an unchanged Service again changes
// nothing unless something it waits for became available.
//
// The rules, in the order decide applies them:
//   - Wanted families are exactly svc.Families; SingleStack wants only the
//     first.
//   - Requested addresses are the complete wish: they must match wanted
//     families (RequireDualStack: one of each), lie together in one pool
//     the Service may use (the pinned one if pinned; autoAssign does not
//     matter) and be free or shareable. Otherwise Err is set and the
//     Service keeps what it had.
//   - A held address of a wanted family is kept while it is valid: in a pool
//     the Service may use (the pinned one, or any pool admitting it;
//     autoAssign does not matter for held addresses) and shareable with its
//     co-holders. Addresses of families no longer wanted are released. If
//     the held pool can give a missing wanted family now (it must hand out
//     automatically or be pinned), it is added from that same pool:
//     backfill.
//   - A held address that became invalid because the pin changed moves to
//     the newly pinned pool, make-before-break: the old addresses are kept
//     until the new pool can give. One that became invalid for any other
//     reason (pool removed or shrunk, serviceAllocation no longer admits the
//     Service) is kept and reported as ErrStale: the caller decides.
//   - A Service holding nothing gets, from the pinned pool or else the
//     eligible pools (autoAssign, serviceAllocation) in preference order:
//     every wanted family from the first pool that can give them all; or,
//     under PreferDualStack, the primary family from the first pool that
//     has it, else the secondary; else nothing (Pending).
//   - Within a pool, a Service with a sharing key first takes the lowest
//     address its group already uses and may share, else the lowest free
//     address.
func (a *Allocator) Assign(svc Service) Result {
	svc.normalize()
	h := a.svcs[svc.Key]
	return a.apply(&svc, h, a.decide(&svc, h))
}

// decide is the one place where ipFamilies and ipFamilyPolicy turn into
// addresses: the policy table of DESIGN.md, row by row. It reads the
// allocator and changes nothing.
func (a *Allocator) decide(svc *Service, h *holding) decision {
	var held [2]netip.Addr
	var heldPool, pinnedAt string
	if h != nil {
		held, heldPool, pinnedAt = h.addrs, h.pool, h.svc.Pool
	}
	refuse := func(kind error, wish []Family, msg string) decision {
		msg = bound(msg)
		return decision{keep: true, wish: wish, reason: msg, err: &allocError{key: svc.Key, msg: msg, kind: kind}}
	}
	if err := svc.validate(); err != nil {
		return refuse(ErrInvalidService, nil, err.Error())
	}

	want := svc.Families
	if svc.Policy == SingleStack {
		want = want[:1]
	}

	if len(svc.Requested) > 0 {
		var req [2]netip.Addr
		for _, x := range svc.Requested {
			f := FamilyOf(x)
			if !slices.Contains(want, f) {
				return refuse(ErrInvalidService, want, fmt.Sprintf("requested address %s is %s, but the Service wants %s (%s)", x, f, familyNames(want), svc.Policy))
			}
			if prev := req[f.index()]; prev.IsValid() {
				return refuse(ErrInvalidService, want, fmt.Sprintf("requested addresses %s and %s are both %s; at most one per family", prev, x, f))
			}
			req[f.index()] = x
		}
		wish := want
		if len(svc.Requested) < len(want) {
			if svc.Policy == RequireDualStack {
				return refuse(ErrInvalidService, want, fmt.Sprintf("RequireDualStack needs an address of each of %s, but only %s is requested", familyNames(want), svc.Requested[0]))
			}
			// A PreferDualStack Service that requests one family gets
			// exactly that: the request is the whole wish.
			i := slices.Index(want, FamilyOf(svc.Requested[0]))
			wish = want[i : i+1]
		}
		p, msg := a.requestPool(svc, req, held)
		if p == nil {
			if req == held {
				return refuse(ErrStale, wish, a.staleReason(svc, held, heldPool))
			}
			return refuse(ErrNotInPool, wish, msg)
		}
		for _, x := range req {
			if x.IsValid() {
				if c := a.clash(svc, x); c.other != "" {
					return refuse(ErrInUse, wish, c.String())
				}
			}
		}
		return decision{pool: p.cfg.Name, addrs: req, wish: wish}
	}

	// Held addresses of wanted families stay; the others go (policy
	// downgrade releases exactly the dropped family).
	var keep [2]netip.Addr
	kept := 0
	for _, f := range want {
		if x := held[f.index()]; x.IsValid() {
			keep[f.index()] = x
			kept++
		}
	}
	var from *poolState
	moving := false
	if kept > 0 {
		from = a.poolHolding(svc, keep, heldPool)
		if from == nil {
			if svc.Pool == "" || svc.Pool == pinnedAt {
				return refuse(ErrStale, want, a.staleReason(svc, keep, heldPool))
			}
			moving = true
		}
	}

	if kept > 0 && !moving {
		for _, x := range keep {
			if x.IsValid() {
				if c := a.clash(svc, x); c.other != "" {
					return refuse(ErrInUse, want, c.String())
				}
			}
		}
		// Backfill: both families always come from one pool, so a missing
		// family can only come from the pool already holding the other.
		var why []string
		for _, f := range want {
			if keep[f.index()].IsValid() {
				continue
			}
			switch {
			case !from.has(f):
				why = append(why, fmt.Sprintf("pool %s has no %s addresses", from.cfg.Name, f))
			case from.cfg.Frozen:
				why = append(why, fmt.Sprintf("pool %s is frozen (its configuration is invalid) and gives no new %s address", from.cfg.Name, f))
			case !from.cfg.AutoAssign && svc.Pool != from.cfg.Name:
				why = append(why, fmt.Sprintf("pool %s does not hand out %s addresses automatically (autoAssign is false)", from.cfg.Name, f))
			default:
				if x, ok := a.pick(from, f, svc); ok {
					keep[f.index()] = x
				} else {
					why = append(why, fmt.Sprintf("pool %s has no free %s address", from.cfg.Name, f))
				}
			}
		}
		d := decision{pool: from.cfg.Name, addrs: keep, wish: want}
		if len(why) > 0 {
			d.reason = fmt.Sprintf("holding %s only: %s", familyNames(heldFamilies(keep, want)), strings.Join(why, "; "))
		}
		return d
	}

	// Nothing held (or moving to a newly pinned pool): choose a pool.
	var all, primary, secondary *poolState
	var allAddrs [2]netip.Addr
	var primaryAddr, secondaryAddr netip.Addr
	for _, p := range a.pools {
		if !a.eligible(p, svc) {
			continue
		}
		var got [2]netip.Addr
		n := 0
		for _, f := range want {
			// A Service moving pools keeps what it holds where the new pool
			// contains it: its own address is free for it, not taken.
			if x := held[f.index()]; x.IsValid() && p.contains(x) && a.clash(svc, x).other == "" {
				got[f.index()] = x
				n++
				continue
			}
			if x, ok := a.pick(p, f, svc); ok {
				got[f.index()] = x
				n++
			}
		}
		if n == len(want) {
			all, allAddrs = p, got
			break
		}
		if x := got[want[0].index()]; primary == nil && x.IsValid() {
			primary, primaryAddr = p, x
		}
		if len(want) == 2 {
			if x := got[want[1].index()]; secondary == nil && x.IsValid() {
				secondary, secondaryAddr = p, x
			}
		}
	}
	var d decision
	switch {
	case all != nil:
		return decision{pool: all.cfg.Name, addrs: allAddrs, wish: want}
	case svc.Policy == PreferDualStack && primary != nil:
		d = decision{pool: primary.cfg.Name, wish: want}
		d.addrs[want[0].index()] = primaryAddr
	case svc.Policy == PreferDualStack && secondary != nil:
		d = decision{pool: secondary.cfg.Name, wish: want}
		d.addrs[want[1].index()] = secondaryAddr
	default:
		msg := a.whyNot(svc, want)
		if moving {
			return refuse(ErrStale, want, fmt.Sprintf("pinned pool %s cannot give addresses (%s); keeping %s from pool %s until it can", svc.Pool, msg, addrNames(held), heldPool))
		}
		return decision{wish: want, reason: msg}
	}
	d.reason = fmt.Sprintf("holding %s only: %s", familyNames(heldFamilies(d.addrs, want)), a.whyNot(svc, want))
	return d
}

// apply commits d and reports it.
func (a *Allocator) apply(svc *Service, h *holding, d decision) Result {
	if h == nil {
		h = &holding{}
		if d.keep {
			h.setService(svc)
		}
		a.svcs[svc.Key] = h
	}
	prevPool, prev := h.pool, h.addrs
	order := familyOrder(svc.Families)
	var added, released [2]netip.Addr
	nAdded, nReleased := 0, 0
	if !d.keep {
		old := &h.svc
		for _, i := range order {
			if x := prev[i]; x.IsValid() && x != d.addrs[i] {
				a.drop(x, svc.Key, old.SharingKey)
				released[nReleased] = x
				nReleased++
			}
		}
		if old.SharingKey != svc.SharingKey {
			for i, x := range prev {
				if x.IsValid() && x == d.addrs[i] {
					a.reindex(x, old.SharingKey, svc.SharingKey)
				}
			}
		}
		for _, i := range order {
			if x := d.addrs[i]; x.IsValid() && x != prev[i] {
				a.take(x, svc.Key, svc.SharingKey)
				added[nAdded] = x
				nAdded++
			}
		}
		h.setService(svc)
		h.pool, h.addrs = d.pool, d.addrs
		if !h.holds() {
			h.pool = ""
		}
	}

	var held [2]netip.Addr
	nHeld := 0
	for _, i := range order {
		if x := h.addrs[i]; x.IsValid() {
			held[nHeld] = x
			nHeld++
		}
	}
	// One allocation backs the three lists.
	all := append(append(append(make([]netip.Addr, 0, nHeld+nAdded+nReleased), held[:nHeld]...), added[:nAdded]...), released[:nReleased]...)
	res := Result{
		Pool:     h.pool,
		Addrs:    nilIfEmpty(all[:nHeld:nHeld]),
		Added:    nilIfEmpty(all[nHeld : nHeld+nAdded : nHeld+nAdded]),
		Released: nilIfEmpty(all[nHeld+nAdded:]),
	}
	res.Reason, res.Err = bound(d.reason), d.err
	for _, f := range d.wish {
		if !h.addrs[f.index()].IsValid() {
			res.Missing = append(res.Missing, f)
		}
	}
	switch {
	case !h.holds():
		res.State = Pending
	case len(res.Missing) > 0:
		res.State = SingleStackFallback
	}
	res.Changed = nAdded > 0 || nReleased > 0 || h.pool != prevPool

	if (res.State != Complete || res.Err != nil) && !errors.Is(res.Err, ErrInvalidService) {
		a.waiting[svc.Key] = struct{}{}
	} else {
		delete(a.waiting, svc.Key)
	}
	return res
}

// Release forgets the Service and frees the addresses no one else holds. It
// returns what the Service held, in its family order.
func (a *Allocator) Release(key string) []netip.Addr {
	h := a.svcs[key]
	if h == nil {
		return nil
	}
	out := h.list()
	for _, x := range h.addrs {
		if x.IsValid() {
			a.drop(x, key, h.svc.SharingKey)
		}
	}
	delete(a.svcs, key)
	delete(a.waiting, key)
	return out
}

// Restore records that svc holds addrs, as read from its status after a
// restart; call it for every Service after SetPools and before any Assign,
// in a deterministic order (say, creation time then key): the first Service
// to claim an address keeps it. Addresses are recorded as they are, even
// outside every pool, so that a restart changes nothing; the next Assign
// applies the usual rules. The returned error joins one error per problem:
// ErrConflict (another Service holds the address and may not share it; it is
// not recorded for svc), ErrStale (held outside any pool svc may use) or
// ErrInvalidService (an unusable address, or two of one family).
func (a *Allocator) Restore(svc Service, addrs []netip.Addr) error {
	svc.normalize()
	if svc.Key == "" {
		return fmt.Errorf("cannot restore %v for a Service without a key: %w", addrs, ErrInvalidService)
	}
	if a.svcs[svc.Key] != nil {
		a.Release(svc.Key)
	}
	h := &holding{}
	h.setService(&svc)
	a.svcs[svc.Key] = h
	var errs []error
	fail := func(kind error, format string, args ...any) {
		errs = append(errs, &allocError{key: svc.Key, msg: fmt.Sprintf(format, args...), kind: kind})
	}
	for _, x := range addrs {
		if !x.IsValid() || noZone(x) != nil {
			fail(ErrInvalidService, "cannot restore address %q", x)
			continue
		}
		i := FamilyOf(x).index()
		if prev := h.addrs[i]; prev.IsValid() {
			if prev != x {
				fail(ErrInvalidService, "holds two %s addresses, %s and %s; keeping the first", FamilyOf(x), prev, x)
			}
			continue
		}
		if c := a.clash(&h.svc, x); c.other != "" {
			fail(ErrConflict, "%s; %s keeps it", c, c.other)
			continue
		}
		a.take(x, svc.Key, svc.SharingKey)
		h.addrs[i] = x
	}
	if h.holds() {
		if p := a.poolHolding(&h.svc, h.addrs, ""); p != nil {
			h.pool = p.cfg.Name
		} else {
			fail(ErrStale, "%s", a.staleReason(&h.svc, h.addrs, ""))
		}
	}
	// The caller syncs every Service after a restart anyway; Waiting need
	// only name those that are short of something.
	short := !h.holds()
	if !short && h.svc.validate() == nil && h.svc.Policy != SingleStack && len(h.svc.Families) == 2 && count(h.addrs) < 2 {
		short = len(h.svc.Requested) != 1 // one requested address is a whole wish
	}
	if short || len(errs) > 0 {
		a.waiting[svc.Key] = struct{}{}
	}
	return errors.Join(errs...)
}

// Holding returns the pool and the addresses a Service holds, in the
// ipFamilies order of the Service they were obtained for; "" and nil when it
// holds none.
func (a *Allocator) Holding(key string) (pool string, addrs []netip.Addr) {
	h := a.svcs[key]
	if h == nil || !h.holds() {
		return "", nil
	}
	return h.pool, h.list()
}

// Usage returns the pool's counts per family it has addresses of; nil for an
// unknown pool.
func (a *Allocator) Usage(pool string) map[Family]Usage {
	p := a.byName[pool]
	if p == nil {
		return nil
	}
	out := map[Family]Usage{}
	for i := range p.ranges {
		if len(p.ranges[i]) > 0 {
			out[familyAt(i)] = Usage{Assigned: p.assigned[i], Available: p.avail[i].sat64()}
		}
	}
	return out
}

// Waiting returns, sorted, the keys of the Services that a pool change or a
// freed address could help: those holding nothing, those holding fewer
// families than they want, those whose request could not be honoured
// (except for an invalid Service, which only its own change fixes) and those
// whose held pool changed with the last SetPools. Requeue exactly these.
func (a *Allocator) Waiting() []string {
	out := make([]string, 0, len(a.waiting))
	for k := range a.waiting {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// eligible reports whether p may hand out fresh addresses to svc.
func (a *Allocator) eligible(p *poolState, svc *Service) bool {
	if p.cfg.Frozen {
		return false
	}
	if svc.Pool != "" {
		if p.cfg.Name != svc.Pool {
			return false
		}
	} else if !p.cfg.AutoAssign {
		return false
	}
	return p.cfg.admits(svc)
}

// poolHolding returns the pool addrs are validly held from: prefer (the pool
// on record) when it still qualifies, else the first pool in preference
// order that contains all of them and that svc may use; nil when none does.
func (a *Allocator) poolHolding(svc *Service, addrs [2]netip.Addr, prefer string) *poolState {
	fits := func(p *poolState) bool {
		if (svc.Pool != "" && p.cfg.Name != svc.Pool) || !p.cfg.admits(svc) {
			return false
		}
		for _, x := range addrs {
			if x.IsValid() && !p.contains(x) {
				return false
			}
		}
		return true
	}
	if p := a.byName[prefer]; p != nil && fits(p) {
		return p
	}
	for _, p := range a.pools {
		if fits(p) {
			return p
		}
	}
	return nil
}

// requestPool returns the pool that can give all of req to svc, or nil and
// why not.
// A frozen pool qualifies only for addresses svc already holds.
func (a *Allocator) requestPool(svc *Service, req, held [2]netip.Addr) (*poolState, string) {
	for _, p := range a.pools {
		if svc.Pool != "" && p.cfg.Name != svc.Pool || !p.cfg.admits(svc) || (p.cfg.Frozen && req != held) {
			continue
		}
		ok := true
		for _, x := range req {
			if x.IsValid() && !p.contains(x) {
				ok = false
			}
		}
		if ok {
			return p, ""
		}
	}

	// Explain, the slow way.
	if svc.Pool != "" {
		p := a.byName[svc.Pool]
		switch {
		case p == nil:
			return nil, fmt.Sprintf("pinned pool %s does not exist", svc.Pool)
		case !p.cfg.admits(svc):
			return nil, fmt.Sprintf("pinned pool %s does not admit the Service: %s", svc.Pool, p.cfg.refusal(svc))
		case p.cfg.Frozen:
			return nil, fmt.Sprintf("pinned pool %s is frozen (its configuration is invalid) and gives no new addresses", svc.Pool)
		}
		var out []string
		for _, x := range req {
			if x.IsValid() && !p.contains(x) {
				out = append(out, x.String())
			}
		}
		return nil, fmt.Sprintf("requested %s not in pinned pool %s", strings.Join(out, " and ")+verb(len(out)), svc.Pool)
	}
	var in [2][]string // admitting pools containing each requested address
	for i, x := range req {
		if !x.IsValid() {
			continue
		}
		var refusing []string
		for _, p := range a.pools {
			if !p.contains(x) {
				continue
			}
			if p.cfg.Frozen && req != held {
				refusing = append(refusing, p.cfg.Name+" (frozen: its configuration is invalid)")
			} else if p.cfg.admits(svc) {
				in[i] = append(in[i], p.cfg.Name)
			} else {
				refusing = append(refusing, fmt.Sprintf("%s (%s)", p.cfg.Name, p.cfg.refusal(svc)))
			}
		}
		switch {
		case len(in[i]) > 0:
		case len(refusing) > 0:
			return nil, fmt.Sprintf("requested address %s is only in pools that do not admit the Service: %s", x, summary(refusing))
		default:
			return nil, fmt.Sprintf("requested address %s is not in any pool", x)
		}
	}
	return nil, fmt.Sprintf("requested addresses %s (pool %s) and %s (pool %s) are not in one pool; both families must come from the same pool",
		req[0], summary(in[0]), req[1], summary(in[1]))
}

func verb(n int) string {
	if n == 1 {
		return " is"
	}
	return " are"
}

// staleReason explains why addrs, held from pool, are no longer valid for
// svc.
func (a *Allocator) staleReason(svc *Service, addrs [2]netip.Addr, pool string) string {
	p := a.byName[pool]
	switch {
	case pool == "":
		return fmt.Sprintf("held %s in no pool the Service may use", addrNames(addrs)+verb(count(addrs)))
	case p == nil:
		return fmt.Sprintf("pool %s, which %s held from, was removed", pool, addrNames(addrs)+verb(count(addrs)))
	case svc.Pool != "" && svc.Pool != pool:
		return fmt.Sprintf("the Service is pinned to pool %s but holds %s from pool %s", svc.Pool, addrNames(addrs), pool)
	case !p.cfg.admits(svc):
		return fmt.Sprintf("pool %s no longer admits the Service: %s", pool, p.cfg.refusal(svc))
	}
	var out [2]netip.Addr
	for i, x := range addrs {
		if x.IsValid() && !p.contains(x) {
			out[i] = x
		}
	}
	return fmt.Sprintf("pool %s no longer contains %s", pool, addrNames(out))
}

// whyNot explains why no eligible pool gives svc every wanted family.
func (a *Allocator) whyNot(svc *Service, want []Family) string {
	var cands []*poolState
	for _, p := range a.pools {
		if a.eligible(p, svc) {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		return a.noCandidates(svc)
	}
	var msg string
	absent := -1
	for i, f := range want {
		if !slices.ContainsFunc(cands, func(p *poolState) bool { return p.has(f) }) {
			absent = i
			break
		}
	}
	switch {
	case absent >= 0:
		msg = fmt.Sprintf("no eligible pool has %s addresses", want[absent])
		if len(want) == 2 && svc.Policy == PreferDualStack {
			// The other family may be missing for another reason.
			if other := want[1-absent]; !slices.ContainsFunc(cands, func(p *poolState) bool { return p.has(other) && p.hasFree(other) }) {
				msg += "; " + fullMsg(other, cands)
			}
		}
	case len(want) == 1:
		msg = fullMsg(want[0], cands)
	default:
		var both []string
		for _, p := range cands {
			if p.has(want[0]) && p.has(want[1]) {
				both = append(both, p.cfg.Name)
			}
		}
		if len(both) == 0 {
			msg = fmt.Sprintf("no eligible pool has both %s and %s addresses", want[0], want[1])
		} else {
			msg = fmt.Sprintf("no eligible pool with both %s and %s addresses has a free address of each (%s)", want[0], want[1], summary(both))
		}
	}
	names := make([]string, len(cands))
	for i, p := range cands {
		names[i] = p.cfg.Name
	}
	return msg + "; pools considered: " + summary(names)
}

func fullMsg(f Family, cands []*poolState) string {
	var with []string
	for _, p := range cands {
		if p.has(f) {
			with = append(with, p.cfg.Name)
		}
	}
	return fmt.Sprintf("every eligible pool with %s addresses is full (%s)", f, summary(with))
}

// noCandidates explains why no pool is eligible for svc at all.
func (a *Allocator) noCandidates(svc *Service) string {
	if svc.Pool != "" {
		p := a.byName[svc.Pool]
		if p == nil {
			return fmt.Sprintf("pinned pool %s does not exist", svc.Pool)
		}
		if p.cfg.Frozen {
			return fmt.Sprintf("pinned pool %s is frozen (its configuration is invalid) and gives no new addresses", svc.Pool)
		}
		return fmt.Sprintf("pinned pool %s does not admit the Service: %s", svc.Pool, p.cfg.refusal(svc))
	}
	if len(a.pools) == 0 {
		return "no address pools are configured"
	}
	var why []string
	for _, p := range a.pools {
		if p.cfg.Frozen {
			why = append(why, p.cfg.Name+" (frozen: its configuration is invalid)")
		} else if !p.cfg.AutoAssign {
			why = append(why, p.cfg.Name+" (autoAssign is false)")
		} else {
			why = append(why, fmt.Sprintf("%s (%s)", p.cfg.Name, p.cfg.refusal(svc)))
		}
	}
	return "no pool is eligible: " + summary(why)
}

// pick chooses, without committing, the address of family f that p would
// give svc: its sharing group's lowest shareable address, else the lowest
// free one. O(log held) plus the group's size.
func (a *Allocator) pick(p *poolState, f Family, svc *Service) (netip.Addr, bool) {
	if svc.SharingKey != "" {
		var best netip.Addr
		for x := range a.shared[svc.SharingKey] {
			if FamilyOf(x) != f || (best.IsValid() && best.Less(x)) || !p.contains(x) {
				continue
			}
			if a.clash(svc, x).other == "" {
				best = x
			}
		}
		if best.IsValid() {
			return best, true
		}
	}
	if !p.hasFree(f) {
		return netip.Addr{}, false
	}
	i := f.index()
	set := a.held[i]
	if f == IPv4 && p.cfg.AvoidBuggyIPs {
		set = a.good
	}
	for j := range p.ranges[i] {
		r := &p.ranges[i][j]
		if r.full() {
			continue
		}
		if u, ok := set.lowestFree(r.lo, r.hi); ok {
			return u.addr(f), true
		}
	}
	return netip.Addr{}, false
}

// clash describes why svc may not hold x next to its current users.
type clash struct {
	other string // key of the blocking Service; "" when there is no clash
	addr  netip.Addr
	why   string
}

func (c clash) String() string { return fmt.Sprintf("address %s %s %s", c.addr, c.why, c.other) }

func (a *Allocator) clash(svc *Service, x netip.Addr) clash {
	us := a.users[x]
	for i := range us.len() {
		k := us.at(i)
		if k == svc.Key {
			continue
		}
		o := &a.svcs[k].svc
		switch {
		case svc.SharingKey == "" || o.SharingKey == "":
			return clash{k, x, "is in use by"}
		case o.SharingKey != svc.SharingKey:
			return clash{k, x, fmt.Sprintf("is shared under another sharing key (%q, not %q) by", o.SharingKey, svc.SharingKey)}
		case o.BackendKey != svc.BackendKey:
			return clash{k, x, "cannot be shared: externalTrafficPolicy or, under Local, the selected pods differ from"}
		}
		for _, p := range svc.Ports {
			if slices.Contains(o.Ports, p) {
				return clash{k, x, fmt.Sprintf("cannot be shared: port %s is already used by", p)}
			}
		}
	}
	return clash{}
}

// take records that key holds x.
func (a *Allocator) take(x netip.Addr, key, sharingKey string) {
	us := a.users[x]
	if us.len() == 0 {
		a.mark(x, 1)
		if sharingKey != "" {
			a.index(sharingKey, x)
		}
	}
	a.users[x] = us.with(key)
}

// drop records that key no longer holds x, freeing it after its last user.
func (a *Allocator) drop(x netip.Addr, key, sharingKey string) {
	us := a.users[x].without(key)
	if us.len() > 0 {
		a.users[x] = us
		return
	}
	delete(a.users, x)
	a.mark(x, -1)
	if sharingKey != "" {
		a.unindex(sharingKey, x)
	}
}

// users is who holds one address. Most addresses have one user, stored
// inline so that holding an address costs no allocation.
type users struct {
	first string
	more  []string
}

func (u users) len() int {
	if u.first == "" {
		return 0
	}
	return 1 + len(u.more)
}

func (u users) at(i int) string {
	if i == 0 {
		return u.first
	}
	return u.more[i-1]
}

func (u users) with(key string) users {
	if u.first == "" {
		return users{first: key}
	}
	u.more = append(u.more, key)
	return u
}

func (u users) without(key string) users {
	if u.first == key {
		if len(u.more) == 0 {
			return users{}
		}
		return users{first: u.more[0], more: u.more[1:]}
	}
	if i := slices.Index(u.more, key); i >= 0 {
		u.more = slices.Delete(u.more, i, i+1)
	}
	return u
}

// reindex moves x to another sharing group; only its sole user can do that.
func (a *Allocator) reindex(x netip.Addr, from, to string) {
	if from != "" {
		a.unindex(from, x)
	}
	if to != "" {
		a.index(to, x)
	}
}

func (a *Allocator) index(key string, x netip.Addr) {
	m := a.shared[key]
	if m == nil {
		m = map[netip.Addr]struct{}{}
		a.shared[key] = m
	}
	m[x] = struct{}{}
}

func (a *Allocator) unindex(key string, x netip.Addr) {
	if m := a.shared[key]; m != nil {
		delete(m, x)
		if len(m) == 0 {
			delete(a.shared, key)
		}
	}
}

// mark adds x to (delta 1) or removes it from (delta -1) the held sets and
// every pool's counts.
func (a *Allocator) mark(x netip.Addr, delta int) {
	f := FamilyOf(x)
	i, u := f.index(), u128Of(x)
	if delta > 0 {
		a.held[i].add(u)
		if f == IPv4 && a.good != nil && !buggy(u) {
			a.good.add(u)
		}
	} else {
		a.held[i].remove(u)
		if f == IPv4 && a.good != nil && !buggy(u) {
			a.good.remove(u)
		}
	}
	for _, p := range a.pools {
		p.count(i, u, delta)
	}
}

func nilIfEmpty(s []netip.Addr) []netip.Addr {
	if len(s) == 0 {
		return nil
	}
	return s
}

func count(addrs [2]netip.Addr) int {
	n := 0
	for _, x := range addrs {
		if x.IsValid() {
			n++
		}
	}
	return n
}

func addrNames(addrs [2]netip.Addr) string {
	var s []string
	for _, x := range addrs {
		if x.IsValid() {
			s = append(s, x.String())
		}
	}
	return strings.Join(s, " and ")
}

func familyNames(fams []Family) string {
	s := make([]string, len(fams))
	for i, f := range fams {
		s[i] = f.String()
	}
	return strings.Join(s, " and ")
}

// heldFamilies returns the families of want that addrs holds.
func heldFamilies(addrs [2]netip.Addr, want []Family) []Family {
	var out []Family
	for _, f := range want {
		if addrs[f.index()].IsValid() {
			out = append(out, f)
		}
	}
	return out
}

// MaxReason bounds the messages the allocator returns (Result.Reason, error
// texts), whatever the number of pools: lists of pools are summarised by
// summary and the whole message is cut at this many bytes.
const MaxReason = 256

// summaryShown is how many entries summary spells out.
const summaryShown = 3

// summary lists a few entries of a list for a message: all of them when
// there are at most summaryShown, else the count and the first ones
// ("42 pools, first: a, b, c …").
func summary(items []string) string {
	if len(items) <= summaryShown {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%d pools, first: %s …", len(items), strings.Join(items[:summaryShown], ", "))
}

// bound cuts msg to MaxReason bytes on a rune boundary, marking the cut.
func bound(msg string) string {
	if len(msg) <= MaxReason {
		return msg
	}
	const ellipsis = "…"
	cut := MaxReason - len(ellipsis)
	for cut > 0 && msg[cut]&0xC0 == 0x80 {
		cut--
	}
	return msg[:cut] + ellipsis
}
