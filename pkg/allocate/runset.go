package allocate

import "github.com/google/btree"

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
	t         *btree.BTreeG[run]
	skipBuggy bool
}

func newRunSet(skipBuggy bool) *runSet {
	// Degree 32 keeps nodes around a few cache lines; the value is not
	// critical.
	return &runSet{t: btree.NewG(32, func(a, b run) bool { return a.first.less(b.first) }), skipBuggy: skipBuggy}
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

// floor returns the run with the greatest first <= u.
func (s *runSet) floor(u u128) (r run, ok bool) {
	s.t.DescendLessOrEqual(run{first: u}, func(it run) bool {
		r, ok = it, true
		return false
	})
	return r, ok
}

// ceil returns the run with the least first >= u.
func (s *runSet) ceil(u u128) (r run, ok bool) {
	s.t.AscendGreaterOrEqual(run{first: u}, func(it run) bool {
		r, ok = it, true
		return false
	})
	return r, ok
}

// lowestFree returns the lowest address in [lo, hi] the set considers and
// does not contain.
func (s *runSet) lowestFree(lo, hi u128) (u128, bool) {
	c := s.skip(lo)
	if hi.less(c) {
		return u128{}, false
	}
	if r, ok := s.floor(c); ok && !r.last.less(c) {
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

// add inserts u, which the set considers and does not contain.
func (s *runSet) add(u u128) {
	left, hasLeft := s.floor(u)
	hasLeft = hasLeft && s.adjacent(left.last, u)
	right, hasRight := s.ceil(u)
	hasRight = hasRight && s.adjacent(u, right.first)
	switch {
	case hasLeft && hasRight:
		s.t.Delete(right)
		s.t.ReplaceOrInsert(run{first: left.first, last: right.last})
	case hasLeft:
		s.t.ReplaceOrInsert(run{first: left.first, last: u})
	case hasRight:
		s.t.Delete(right)
		s.t.ReplaceOrInsert(run{first: u, last: right.last})
	default:
		s.t.ReplaceOrInsert(run{first: u, last: u})
	}
}

// remove deletes u, which the set contains.
func (s *runSet) remove(u u128) {
	r, _ := s.floor(u)
	if r.first == u {
		s.t.Delete(r)
	} else {
		// Same first: replaces r in place.
		s.t.ReplaceOrInsert(run{first: r.first, last: s.before(u)})
	}
	if r.last != u {
		n, _ := s.after(u)
		s.t.ReplaceOrInsert(run{first: n, last: r.last})
	}
}

// contains reports whether u is in the set.
func (s *runSet) contains(u u128) bool {
	if s.skipBuggy && buggy(u) {
		return false
	}
	r, ok := s.floor(u)
	return ok && !r.last.less(u)
}

// countIn returns how many addresses of [lo, hi] the set holds, counting
// every address (buggy ones included) when the set does not skip them. It
// walks the runs inside the range, so it is for configuration changes, not
// for allocation.
func (s *runSet) countIn(lo, hi u128) uint64 {
	var n uint64
	add := func(r run) {
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
	if r, ok := s.floor(lo); ok && r.first.less(lo) {
		add(r)
	}
	s.t.AscendGreaterOrEqual(run{first: lo}, func(r run) bool {
		if hi.less(r.first) {
			return false
		}
		add(r)
		return true
	})
	return n
}

func (s *runSet) len() int { return s.t.Len() }
