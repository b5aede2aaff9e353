package allocate

// run is a maximal block of held addresses [first, last].
type run struct{ first, last u128 }

// runSet is the set of held addresses of one family, stored as an ordered set
// of disjoint, non-adjacent runs. The lowest free address at or above lo is lo
// itself or the address after the run containing lo, so finding it costs one
// O(log runs) lookup whatever the size of the range — a /64 costs what a /24
// does.
//
// With skipBuggy (IPv4 only) the set ignores addresses ending in .0 and .255:
// it never contains them, and two runs separated only by such addresses are
// one run. Pools with avoidBuggyIPs search this view, so skipping the buggy
// addresses of thousands of full /24s is still one lookup, not one per /24.
type runSet struct {
	t         *runTree
	skipBuggy bool
}

// treeDegree: nodes of 31 to 63 runs (1-2 KiB) keep a 100k-run tree four
// levels deep; the value is not critical.
const treeDegree = 32

func newRunSet(skipBuggy bool) *runSet {
	return &runSet{t: newRunTree(treeDegree), skipBuggy: skipBuggy}
}

// skip moves u to the first address at or above it that the set considers.
func (s *runSet) skip(u u128) u128 {
	if s.skipBuggy {
		return nextGood(u)
	}
	return u
}

// after returns the first address above u that the set considers.
func (s *runSet) after(u u128) (u128, bool) {
	n, ok := u.inc()
	if !ok {
		return u128{}, false
	}
	return s.skip(n), true
}

// before returns the last address below u that the set considers; callers
// guarantee one exists.
func (s *runSet) before(u u128) u128 {
	p := u.dec()
	if s.skipBuggy {
		return prevGood(p)
	}
	return p
}

// lowestFree returns the lowest address in [lo, hi] the set considers and
// does not contain.
func (s *runSet) lowestFree(lo, hi u128) (u128, bool) {
	c := s.skip(lo)
	if hi.less(c) {
		return u128{}, false
	}
	if r := s.t.floor(c); r != nil && !r.last.less(c) {
		// Runs never touch, so the first considered address after a run is
		// free.
		n, ok := s.after(r.last)
		if !ok || hi.less(n) {
			return u128{}, false
		}
		c = n
	}
	return c, true
}

// adjacent reports whether nothing the set considers lies strictly between
// a and b (a < b).
func (s *runSet) adjacent(a, b u128) bool {
	n, ok := s.after(a)
	return ok && n == b
}

// add inserts u, which the set considers and does not contain. Growing a
// neighbour is an in-place edit; only a new or a swallowed run costs a tree
// update.
func (s *runSet) add(u u128) {
	left := s.t.floor(u)
	if left != nil && !s.adjacent(left.last, u) {
		left = nil
	}
	right := s.t.ceil(u)
	if right != nil && !s.adjacent(u, right.first) {
		right = nil
	}
	switch {
	case left != nil && right != nil:
		left.last = right.last
		s.t.delete(right.first)
	case left != nil:
		left.last = u
	case right != nil:
		right.first = u
	default:
		s.t.insert(run{first: u, last: u})
	}
}

// remove deletes u, which the set contains.
func (s *runSet) remove(u u128) {
	r := s.t.floor(u)
	switch {
	case r.first == u && r.last == u:
		s.t.delete(u)
	case r.first == u:
		r.first, _ = s.after(u)
	case r.last == u:
		r.last = s.before(u)
	default:
		tail := run{last: r.last}
		tail.first, _ = s.after(u)
		r.last = s.before(u)
		s.t.insert(tail)
	}
}

// withoutBuggy returns the skipBuggy view of a plain IPv4 set, in one pass
// over its runs.
func (s *runSet) withoutBuggy() *runSet {
	g := newRunSet(true)
	var cur run
	has := false
	s.t.ascend(u128{}, func(r *run) bool {
		first := nextGood(r.first)
		if r.last.less(first) {
			return true // only buggy addresses
		}
		// first <= r.last is good, so prevGood cannot go below it.
		last := prevGood(r.last)
		if has && g.adjacent(cur.last, first) {
			cur.last = last
			return true
		}
		if has {
			g.t.insert(cur)
		}
		cur, has = run{first: first, last: last}, true
		return true
	})
	if has {
		g.t.insert(cur)
	}
	return g
}

// contains reports whether u is in the set.
func (s *runSet) contains(u u128) bool {
	if s.skipBuggy && buggy(u) {
		return false
	}
	r := s.t.floor(u)
	return r != nil && !r.last.less(u)
}

// countIn returns how many addresses of [lo, hi] the set holds, counting
// every address (buggy ones included) when the set does not skip them. It
// walks the runs inside the range, so it is for configuration changes, not
// for allocation.
func (s *runSet) countIn(lo, hi u128) uint64 {
	var n uint64
	add := func(r *run) {
		a, b := r.first, r.last
		if a.less(lo) {
			a = lo
		}
		if hi.less(b) {
			b = hi
		}
		if b.less(a) {
			return
		}
		n += span(a, b).sat64()
		if s.skipBuggy {
			n -= buggyIn(a, b)
		}
	}
	if r := s.t.floor(lo); r != nil && r.first.less(lo) {
		add(r)
	}
	s.t.ascend(lo, func(r *run) bool {
		if hi.less(r.first) {
			return false
		}
		add(r)
		return true
	})
	return n
}

func (s *runSet) len() int { return s.t.len }
