package allocate

import (
	"cmp"
	"errors"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"pgregory.net/rapid"
)

// TestAllocatorKeepsItsInvariants runs random sequences of Service
// assignments, updates and releases, pool edits and rebuilds against a
// brute-force reference over a tiny address universe (small enough that
// pools run full and overlap), and checks after every step:
//   - no address is held twice except by valid sharers;
//   - every held address lies in a pool its Service may use, with all of its
//     addresses in that one pool — unless the allocator reported the holding
//     invalid (and then it never moved it);
//   - held families obey the policy table, and requested addresses are held
//     exactly;
//   - a Service holding nothing gets exactly what a brute-force search of
//     the policy table gives, and a held family is missing only when its
//     pool cannot give it;
//   - held addresses change only when the request, the wanted families or
//     the pin changed, and an Err leaves everything as it was;
//   - re-assigning an unchanged Service is a no-op;
//   - SetPools reports exactly the holdings that became invalid;
//   - Usage matches a count over the universe;
//   - a rebuild through Restore reproduces every holding without conflicts.
func TestAllocatorKeepsItsInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := newModel()
		t.Repeat(map[string]func(*rapid.T){
			"assign": func(t *rapid.T) {
				m.assign(t, m.drawService(t, rapid.SampledFrom(strings.Fields(modelKeys)).Draw(t, "key")))
			},
			"update":   m.update,
			"release":  m.release,
			"setPools": func(t *rapid.T) { m.setPools(t, m.drawPools(t)) },
			"rebuild":  m.rebuild,
			"":         m.check,
		})
	})
}

// The universe: IPv4 addresses across a /24 boundary (so avoidBuggyIPs
// matters) and a few IPv6 addresses; pools draw their ranges from these.
const (
	modelV4Ranges = "192.0.2.250-192.0.2.255 192.0.2.253-192.0.3.2 192.0.3.0-192.0.3.5 192.0.2.250-192.0.3.5 192.0.3.4/32"
	modelV6Ranges = "2001:db8::1-2001:db8::4 2001:db8::3-2001:db8::8 2001:db8::5-2001:db8::6"
	modelKeys     = "n1/s0 n1/s1 n1/s2 n1/s3 n2/s0 n2/s1 n2/s2 n2/s3"
)

// namespaceLabels: n1 is selected by env=prod, n2 by nothing.
func namespaceLabels(ns string) map[string]string {
	if ns == "n1" {
		return map[string]string{"env": "prod"}
	}
	return nil
}

func universe() []netip.Addr {
	var out []netip.Addr
	for a := netip.MustParseAddr("192.0.2.250"); a.Compare(netip.MustParseAddr("192.0.3.5")) <= 0; a = a.Next() {
		out = append(out, a)
	}
	for a := netip.MustParseAddr("2001:db8::1"); a.Compare(netip.MustParseAddr("2001:db8::8")) <= 0; a = a.Next() {
		out = append(out, a)
	}
	return out
}

// model is the reference: what each Service asked for last with success
// (what its addresses were obtained for), and the current pools.
type model struct {
	a        *Allocator
	pools    []Pool
	accepted map[string]Service // per key, the Service of the last Assign without Err (or Restore)
	known    map[string]bool    // keys the allocator knows (assigned, not released)
	excused  map[string]bool    // holdings reported invalid: may lie outside their pools
	results  map[string]Result  // last Assign result per key, for Waiting
	univ     []netip.Addr
}

func newModel() *model {
	return &model{a: New(), accepted: map[string]Service{}, known: map[string]bool{}, excused: map[string]bool{},
		results: map[string]Result{}, univ: universe()}
}

func (m *model) drawPools(t *rapid.T) []Pool {
	var pools []Pool
	for _, name := range []string{"a", "b", "c"} {
		if rapid.IntRange(0, 3).Draw(t, "exists-"+name) == 0 {
			continue
		}
		p := Pool{Name: name, AutoAssign: rapid.IntRange(0, 4).Draw(t, "auto") > 0,
			AvoidBuggyIPs: rapid.Bool().Draw(t, "buggy"), Priority: rapid.IntRange(0, 2).Draw(t, "prio")}
		for _, s := range rapid.SliceOfNDistinct(rapid.SampledFrom(strings.Fields(modelV4Ranges+" "+modelV6Ranges)), 0, 3, rapid.ID).Draw(t, "ranges") {
			r, err := ParseRange(s)
			if err != nil {
				t.Fatal(err)
			}
			p.Ranges = append(p.Ranges, r)
		}
		switch rapid.IntRange(0, 7).Draw(t, "restrict") {
		case 1:
			p.Namespaces = []string{"n1"}
		case 2:
			p.NamespaceSelectors = []labels.Selector{labels.SelectorFromSet(labels.Set{"env": "prod"})}
		case 3:
			p.ServiceSelectors = []labels.Selector{labels.SelectorFromSet(labels.Set{"tier": "gold"})}
		}
		pools = append(pools, p)
	}
	return pools
}

func (m *model) drawService(t *rapid.T, key string) Service {
	shapes := []struct {
		p Policy
		f []Family
	}{
		{SingleStack, []Family{IPv4}}, {SingleStack, []Family{IPv6}},
		{SingleStack, []Family{IPv6, IPv4}}, // transient, while the apiserver drops the second family
		{PreferDualStack, []Family{IPv4}}, {PreferDualStack, []Family{IPv4, IPv6}}, {PreferDualStack, []Family{IPv6, IPv4}},
		{RequireDualStack, []Family{IPv4, IPv6}}, {RequireDualStack, []Family{IPv6, IPv4}},
	}
	shape := rapid.SampledFrom(shapes).Draw(t, "shape")
	ns := key[:2]
	s := Service{Key: key, Namespace: ns, NamespaceLabels: namespaceLabels(ns), Policy: shape.p, Families: slices.Clone(shape.f)}
	if rapid.Bool().Draw(t, "gold") {
		s.Labels = map[string]string{"tier": "gold"}
	}
	if rapid.IntRange(0, 3).Draw(t, "pinned") == 0 {
		s.Pool = rapid.SampledFrom([]string{"a", "b", "c", "nope"}).Draw(t, "pool")
	}
	if rapid.IntRange(0, 5).Draw(t, "request") == 0 {
		// Mostly families the Service wants; sometimes not, to reach the
		// errors.
		fams := s.Families
		if rapid.IntRange(0, 3).Draw(t, "any-family") == 0 {
			fams = []Family{IPv4, IPv6}
		}
		for _, f := range fams {
			if rapid.IntRange(0, 3).Draw(t, "request-"+f.String()) > 0 {
				var of []netip.Addr
				for _, x := range m.univ {
					if FamilyOf(x) == f {
						of = append(of, x)
					}
				}
				s.Requested = append(s.Requested, rapid.SampledFrom(of).Draw(t, "addr"))
			}
		}
	}
	if rapid.Bool().Draw(t, "shares") {
		s.SharingKey = rapid.SampledFrom([]string{"k1", "k2"}).Draw(t, "sharingKey")
		s.BackendKey = rapid.SampledFrom([]string{"", "", "b1"}).Draw(t, "backendKey")
		s.Ports = rapid.SliceOfNDistinct(rapid.SampledFrom([]Port{{"TCP", 80}, {"TCP", 443}, {"UDP", 53}}), 0, 2, rapid.ID).Draw(t, "ports")
	}
	return s
}

// update re-assigns a known Service with one field changed: the way real
// Services evolve, and the way stability is put to the test.
func (m *model) update(t *rapid.T) {
	keys := m.sortedKnown()
	if len(keys) == 0 {
		t.Skip("no Service yet")
	}
	key := rapid.SampledFrom(keys).Draw(t, "key")
	s, ok := m.accepted[key]
	if !ok {
		t.Skip("nothing accepted yet")
	}
	s.Families = slices.Clone(s.Families)
	fresh := m.drawService(t, key)
	switch rapid.IntRange(0, 5).Draw(t, "change") {
	case 0:
		s.Policy, s.Families = fresh.Policy, fresh.Families
	case 1:
		s.Pool = fresh.Pool
	case 2:
		s.Requested = fresh.Requested
	case 3:
		s.SharingKey, s.Ports, s.BackendKey = fresh.SharingKey, fresh.Ports, fresh.BackendKey
	case 4:
		s.Labels = fresh.Labels
	case 5: // unchanged
	}
	m.assign(t, s)
}

func (m *model) assign(t *rapid.T, s Service) {
	prevPool, prevAddrs := m.a.Holding(s.Key)
	prevAccepted, hadAccepted := m.accepted[s.Key]
	before := maps.Clone(m.accepted)
	heldBy := m.heldBy()
	r := m.a.Assign(s)
	m.known[s.Key] = true
	m.results[s.Key] = r

	pool, addrs := m.a.Holding(s.Key)
	// Holding lists addresses in the order of the Service they were
	// obtained for, the Result in the order of the Service just assigned.
	if !sameSet(addrs, r.Addrs) || (r.Err == nil && !slices.Equal(addrs, r.Addrs)) || (len(addrs) > 0 && pool != r.Pool) {
		t.Fatalf("Result %v from %q disagrees with Holding %v from %q", r.Addrs, r.Pool, addrs, pool)
	}
	if r.Changed != (!sameSet(prevAddrs, addrs) || pool != prevPool) {
		t.Fatalf("Changed = %v, but %v from %q became %v from %q", r.Changed, prevAddrs, prevPool, addrs, pool)
	}
	if !sameSet(r.Added, minus(addrs, prevAddrs)) || !sameSet(r.Released, minus(prevAddrs, addrs)) {
		t.Fatalf("Added %v / Released %v do not match %v -> %v", r.Added, r.Released, prevAddrs, addrs)
	}

	if r.Err != nil {
		if r.Changed || !slices.Equal(addrs, prevAddrs) {
			t.Fatalf("Assign failed (%v) but changed %v to %v", r.Err, prevAddrs, addrs)
		}
		if errors.Is(r.Err, ErrStale) {
			m.checkStale(t, s, prevAccepted, prevAddrs, heldBy, before)
			m.excused[s.Key] = true
		}
		if !hadAccepted {
			m.accepted[s.Key] = s // a new Service is stored even when it fails
		}
	} else {
		m.accepted[s.Key] = s
		delete(m.excused, s.Key)
		m.checkPolicy(t, s, prevAddrs, addrs, r)
		m.checkStability(t, s, prevAccepted, prevAddrs, addrs, heldBy, before, r)
	}

	// Re-assigning the same Service right away changes nothing.
	again := m.a.Assign(s)
	if again.Changed || !slices.Equal(again.Addrs, r.Addrs) || (again.Err == nil) != (r.Err == nil) || again.State != r.State {
		t.Fatalf("re-assign was not a no-op: %+v then %+v", r, again)
	}
}

// checkStale checks that ErrStale is returned only for addresses s cannot
// use, and, when s asked for another pool, only while that pool cannot give.
func (m *model) checkStale(t *rapid.T, s, prevSvc Service, prev []netip.Addr, heldBy map[netip.Addr][]string, accepted map[string]Service) {
	want := wanted(s)
	if len(s.Requested) > 0 {
		if !sameSet(s.Requested, prev) || m.validPool(s, prev) != nil {
			t.Fatalf("ErrStale for a request %v while holding %v", s.Requested, prev)
		}
		return
	}
	var kept []netip.Addr
	for _, x := range prev {
		if slices.Contains(want, FamilyOf(x)) {
			kept = append(kept, x)
		}
	}
	if len(kept) == 0 || m.validPool(s, kept) != nil {
		t.Fatalf("ErrStale although %v is usable", kept)
	}
	if s.Pool != "" && s.Pool != prevSvc.Pool {
		if _, got := m.bruteForce(s, want, prev, heldBy, accepted); len(got) > 0 {
			t.Fatalf("the pin changed to %s, which can give %v, but the Service did not move", s.Pool, got)
		}
	}
}

func wanted(s Service) []Family {
	if s.Policy == SingleStack {
		return s.Families[:1]
	}
	return s.Families
}

// checkPolicy checks the held families against the policy table.
func (m *model) checkPolicy(t *rapid.T, s Service, prev, addrs []netip.Addr, r Result) {
	want := s.Families
	if s.Policy == SingleStack {
		want = want[:1]
	}
	if len(s.Requested) > 0 {
		if !sameSet(addrs, s.Requested) {
			t.Fatalf("requested %v, holds %v", s.Requested, addrs)
		}
		if s.Policy == RequireDualStack && len(addrs) < len(want) {
			t.Fatalf("RequireDualStack got only the requested %v", addrs)
		}
		return
	}
	for _, x := range addrs {
		if !slices.Contains(want, FamilyOf(x)) {
			t.Fatalf("%s holds %v, but wants %v", s.Key, addrs, want)
		}
	}
	switch {
	case s.Policy == SingleStack && len(addrs) > 1:
		t.Fatalf("SingleStack holds %v", addrs)
	case s.Policy == RequireDualStack && len(addrs) == 1 && !slices.Contains(prev, addrs[0]):
		t.Fatalf("RequireDualStack newly got only %v", addrs)
	}
	if (len(addrs) == len(want)) != (r.State == Complete) || (len(addrs) == 0) != (r.State == Pending) {
		t.Fatalf("State %s for %v wanting %v", r.State, addrs, want)
	}
	if r.State != Complete && r.Reason == "" {
		t.Fatalf("State %s without a reason", r.State)
	}
}

// checkStability checks which held addresses may change, and that fresh
// allocations and backfills are exactly what a brute-force search gives.
//
// heldBy and accepted describe the allocator before the Assign.
func (m *model) checkStability(t *rapid.T, s Service, prevSvc Service, prev, addrs []netip.Addr, heldBy map[netip.Addr][]string, accepted map[string]Service, r Result) {
	if len(s.Requested) > 0 {
		return
	}
	want := s.Families
	if s.Policy == SingleStack {
		want = want[:1]
	}
	var kept []netip.Addr
	for _, x := range prev {
		if slices.Contains(want, FamilyOf(x)) {
			kept = append(kept, x)
		}
	}
	moving := len(kept) > 0 && m.validPool(s, kept) == nil
	if moving && (s.Pool == "" || s.Pool == prevSvc.Pool) {
		t.Fatalf("%v became invalid without a pin change, yet Assign succeeded", kept)
	}
	if !moving {
		for _, x := range kept {
			if !slices.Contains(addrs, x) {
				t.Fatalf("valid held address %s was dropped: %v -> %v", x, prev, addrs)
			}
		}
	}
	if len(kept) == 0 || moving {
		// A fresh choice: it must be exactly the brute-force one.
		wantPool, wantAddrs := m.bruteForce(s, want, prev, heldBy, accepted)
		if moving && len(wantAddrs) == 0 {
			t.Fatalf("a blocked move succeeded: %+v", r)
		}
		if !slices.Equal(addrs, wantAddrs) || (len(addrs) > 0 && r.Pool != wantPool) {
			t.Fatalf("%s got %v from %q, brute force says %v from %q", s.Key, addrs, r.Pool, wantAddrs, wantPool)
		}
		return
	}
	// Backfill comes from the holding pool, only if it hands out
	// automatically or is pinned, and a family is missing only when that
	// pool cannot give it.
	p := m.pool(r.Pool)
	if added := minus(addrs, prev); len(added) > 0 && (p == nil || !(p.AutoAssign || s.Pool == p.Name)) {
		t.Fatalf("%s backfilled %v from %q, which does not hand out automatically", s.Key, added, r.Pool)
	}
	for _, f := range r.Missing {
		if p != nil && (p.AutoAssign || s.Pool == p.Name) {
			if x, ok := m.pickBrute(*p, f, s, heldBy, accepted); ok {
				t.Fatalf("%s is missing %s although pool %s could give %s", s.Key, f, p.Name, x)
			}
		}
	}
}

// bruteForce is the policy table over the universe: every wanted family
// from the first eligible pool giving them all, else (PreferDualStack) the
// primary, else the secondary.
// held are the addresses s holds: one a pool contains stays when s moves there.
func (m *model) bruteForce(s Service, want []Family, held []netip.Addr, heldBy map[netip.Addr][]string, accepted map[string]Service) (string, []netip.Addr) {
	pools := slices.Clone(m.pools)
	slices.SortStableFunc(pools, func(x, y Pool) int {
		rank := func(p Pool) int {
			if p.Priority <= 0 {
				return math.MaxInt
			}
			return p.Priority
		}
		return cmp.Or(cmp.Compare(rank(x), rank(y)), cmp.Compare(x.Name, y.Name))
	})
	var firstOf [2]string
	var addrOf [2]netip.Addr
	for _, p := range pools {
		if (s.Pool != "" && p.Name != s.Pool) || (s.Pool == "" && !p.AutoAssign) || !refAdmits(p, s) {
			continue
		}
		var got []netip.Addr
		for i, f := range want {
			if x, ok := keepable(p, f, s, held, heldBy, accepted); ok {
				got = append(got, x)
				if firstOf[i] == "" {
					firstOf[i], addrOf[i] = p.Name, x
				}
				continue
			}
			if x, ok := m.pickBrute(p, f, s, heldBy, accepted); ok {
				got = append(got, x)
				if firstOf[i] == "" {
					firstOf[i], addrOf[i] = p.Name, x
				}
			}
		}
		if len(got) == len(want) {
			return p.Name, got
		}
	}
	if s.Policy != PreferDualStack {
		return "", nil
	}
	for i := range want {
		if firstOf[i] != "" {
			return firstOf[i], []netip.Addr{addrOf[i]}
		}
	}
	return "", nil
}

// pickBrute returns the lowest address of family f in p that s may share,
// else the lowest free one.
func (m *model) pickBrute(p Pool, f Family, s Service, heldBy map[netip.Addr][]string, accepted map[string]Service) (netip.Addr, bool) {
	var free netip.Addr
	for _, x := range m.univ {
		if FamilyOf(x) != f || !refContains(p, x) {
			continue
		}
		users := heldBy[x]
		if len(users) == 0 {
			if !free.IsValid() {
				free = x
			}
			continue
		}
		if s.SharingKey == "" || accepted[users[0]].SharingKey != s.SharingKey {
			continue
		}
		ok := true
		for _, u := range users {
			if u != s.Key && !compatible(accepted[u], s) {
				ok = false
			}
		}
		if ok {
			return x, true
		}
	}
	return free, free.IsValid()
}

// keepable returns the address of family f that s holds, if p contains it
// and every other user of it may share it with s.
func keepable(p Pool, f Family, s Service, held []netip.Addr, heldBy map[netip.Addr][]string, accepted map[string]Service) (netip.Addr, bool) {
	for _, x := range held {
		if FamilyOf(x) != f || !refContains(p, x) {
			continue
		}
		for _, u := range heldBy[x] {
			if u != s.Key && !compatible(accepted[u], s) {
				return netip.Addr{}, false
			}
		}
		return x, true
	}
	return netip.Addr{}, false
}

func compatible(x, y Service) bool {
	if x.SharingKey == "" || x.SharingKey != y.SharingKey || x.BackendKey != y.BackendKey {
		return false
	}
	for _, p := range x.Ports {
		if slices.Contains(y.Ports, p) {
			return false
		}
	}
	return true
}

func (m *model) release(t *rapid.T) {
	keys := m.sortedKnown()
	if len(keys) == 0 {
		t.Skip("no Service yet")
	}
	key := rapid.SampledFrom(keys).Draw(t, "key")
	_, held := m.a.Holding(key)
	if got := m.a.Release(key); !slices.Equal(got, held) {
		t.Fatalf("Release(%s) = %v, held %v", key, got, held)
	}
	delete(m.known, key)
	delete(m.accepted, key)
	delete(m.excused, key)
	delete(m.results, key)
}

func (m *model) setPools(t *rapid.T, pools []Pool) {
	m.pools = pools
	inv := m.a.SetPools(pools)
	var got []string
	for _, i := range inv {
		got = append(got, i.Key)
		if _, addrs := m.a.Holding(i.Key); !slices.Equal(addrs, i.Addrs) || i.Reason == "" {
			t.Fatalf("Invalid %+v, but the Service holds %v", i, addrs)
		}
	}
	var want []string
	for _, key := range m.sortedKnown() {
		if _, addrs := m.a.Holding(key); len(addrs) > 0 && m.validPool(m.accepted[key], addrs) == nil {
			want = append(want, key)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("SetPools reported %v invalid, brute force says %v", got, want)
	}
	m.excused = map[string]bool{}
	for _, k := range want {
		m.excused[k] = true
	}
}

// rebuild replaces the allocator by one restored from the current holdings,
// as a restarted controller does, and checks that nothing changed.
func (m *model) rebuild(t *rapid.T) {
	b := New()
	b.SetPools(m.pools)
	for _, key := range m.sortedKnown() {
		_, addrs := m.a.Holding(key)
		err := b.Restore(m.accepted[key], addrs)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalidService) {
			t.Fatalf("Restore(%s, %v): %v", key, addrs, err)
		}
		stale := len(addrs) > 0 && m.validPool(m.accepted[key], addrs) == nil
		if errors.Is(err, ErrStale) != stale {
			t.Fatalf("Restore(%s, %v) = %v; brute force says stale = %v", key, addrs, err, stale)
		}
		if _, got := b.Holding(key); !slices.Equal(got, addrs) {
			t.Fatalf("Restore(%s) holds %v, want %v", key, got, addrs)
		}
	}
	for _, p := range m.pools {
		if u1, u2 := m.a.Usage(p.Name), b.Usage(p.Name); !mapsEqual(u1, u2) {
			t.Fatalf("Usage(%s) = %v before the rebuild, %v after", p.Name, u1, u2)
		}
	}
	m.a = b
	m.results = map[string]Result{}
}

// check runs after every step.
func (m *model) check(t *rapid.T) {
	heldBy := m.heldBy()
	for x, keys := range heldBy {
		for i := range keys {
			for j := i + 1; j < len(keys); j++ {
				if !compatible(m.accepted[keys[i]], m.accepted[keys[j]]) {
					t.Fatalf("%s is held by %s and %s, which may not share", x, keys[i], keys[j])
				}
			}
		}
	}
	for _, key := range m.sortedKnown() {
		_, addrs := m.a.Holding(key)
		if len(addrs) > 0 && m.validPool(m.accepted[key], addrs) == nil && !m.excused[key] {
			t.Fatalf("%s holds %v outside every pool it may use, unreported", key, addrs)
		}
	}
	for _, p := range m.pools {
		got := m.a.Usage(p.Name)
		want := map[Family]Usage{}
		for _, r := range p.Ranges {
			want[r.Family()] = Usage{}
		}
		for _, x := range m.univ {
			if !refContains(p, x) {
				continue
			}
			u := want[FamilyOf(x)]
			if len(heldBy[x]) > 0 {
				u.Assigned++
			} else {
				u.Available++
			}
			want[FamilyOf(x)] = u
		}
		if !mapsEqual(got, want) {
			t.Fatalf("Usage(%s) = %v, brute force says %v", p.Name, got, want)
		}
	}
	waiting := m.a.Waiting()
	for _, k := range waiting {
		if !m.known[k] {
			t.Fatalf("Waiting() lists unknown %s", k)
		}
	}
	for key, r := range m.results {
		if (r.State != Complete || r.Err != nil) && !errors.Is(r.Err, ErrInvalidService) && !slices.Contains(waiting, key) {
			t.Fatalf("%s (%s, %v) is not waiting", key, r.State, r.Err)
		}
	}
}

// validPool returns a pool s may hold all of addrs from, or nil.
func (m *model) validPool(s Service, addrs []netip.Addr) *Pool {
	for i := range m.pools {
		p := &m.pools[i]
		if (s.Pool != "" && p.Name != s.Pool) || !refAdmits(*p, s) {
			continue
		}
		if !slices.ContainsFunc(addrs, func(x netip.Addr) bool { return !refContains(*p, x) }) {
			return p
		}
	}
	return nil
}

func (m *model) pool(name string) *Pool {
	for i := range m.pools {
		if m.pools[i].Name == name {
			return &m.pools[i]
		}
	}
	return nil
}

func (m *model) heldBy() map[netip.Addr][]string {
	out := map[netip.Addr][]string{}
	for _, key := range m.sortedKnown() {
		_, addrs := m.a.Holding(key)
		for _, x := range addrs {
			out[x] = append(out[x], key)
		}
	}
	return out
}

func (m *model) sortedKnown() []string {
	var keys []string
	for k := range m.known {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// refContains and refAdmits restate Pool.Contains and serviceAllocation
// without the allocator's code.
func refContains(p Pool, x netip.Addr) bool {
	if p.AvoidBuggyIPs && x.Is4() && (x.As4()[3] == 0 || x.As4()[3] == 255) {
		return false
	}
	for _, r := range p.Ranges {
		if r.First.BitLen() == x.BitLen() && r.First.Compare(x) <= 0 && x.Compare(r.Last) <= 0 {
			return true
		}
	}
	return false
}

func refAdmits(p Pool, s Service) bool {
	ns := len(p.Namespaces) == 0 && len(p.NamespaceSelectors) == 0
	ns = ns || slices.Contains(p.Namespaces, s.Namespace)
	for _, sel := range p.NamespaceSelectors {
		ns = ns || sel.Matches(labels.Set(s.NamespaceLabels))
	}
	svc := len(p.ServiceSelectors) == 0
	for _, sel := range p.ServiceSelectors {
		svc = svc || sel.Matches(labels.Set(s.Labels))
	}
	return ns && svc
}

func sameSet(x, y []netip.Addr) bool {
	return len(x) == len(y) && !slices.ContainsFunc(x, func(a netip.Addr) bool { return !slices.Contains(y, a) })
}

func minus(x, y []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range x {
		if !slices.Contains(y, a) {
			out = append(out, a)
		}
	}
	return out
}

func mapsEqual(x, y map[Family]Usage) bool {
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if w, ok := y[k]; !ok || w != v {
			return false
		}
	}
	return true
}
