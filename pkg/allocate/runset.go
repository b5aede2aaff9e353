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
//
// The tree holds pointers so that growing or shrinking a run at either end
// edits it in place instead of costing another descent: that keeps the
// order, because runs never touch, and it is the common case (lowest free
// first extends the run before it).
type runSet struct {
	t         *btree.BTreeG[*run]
	skipBuggy bool
	pivot     run    // search key, reused so lookups do not allocate
	spare     []*run // deleted runs, reused so churn does not allocate
}

// newRun returns a run for [first, last], recycled when possible.
func (s *runSet) newRun(first, last u128) *run {
	if n := len(s.spare); n > 0 {
		r := s.spare[n-1]
		s.spare = s.spare[:n-1]
		*r = run{first: first, last: last}
		return r
	}
	return &run{first: first, last: last}
}

// delete removes r from the tree and keeps it for reuse; a handful is
// plenty, since each add or remove creates at most one run.
func (s *runSet) delete(r *run) {
	s.t.Delete(r)
	if len(s.spare) < 8 {
		s.spare = append(s.spare, r)
	}
}

func newRunSet(skipBuggy bool) *runSet {
	// Degree 32 keeps nodes around a few cache lines; the value is not
	// critical.
	return &runSet{t: btree.NewG(32, func(a, b *run) bool { return a.first.less(b.first) }), skipBuggy: skipBuggy}
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

// floor returns the run with the greatest first <= u, or nil.
func (s *runSet) floor(u u128) (r *run) {
	s.pivot.first = u
	s.t.DescendLessOrEqual(&s.pivot, func(it *run) bool {
		r = it
		return false
	})
	return r
}

// ceil returns the run with the least first >= u, or nil.
func (s *runSet) ceil(u u128) (r *run) {
	s.pivot.first = u
	s.t.AscendGreaterOrEqual(&s.pivot, func(it *run) bool {
		r = it
		return false
	})
	return r
}

// lowestFree returns the lowest address in [lo, hi] the set considers and
// does not contain.
func (s *runSet) lowestFree(lo, hi u128) (u128, bool) {
	c := s.skip(lo)
	if hi.less(c) {
		return u128{}, false
	}
	if r := s.floor(c); r != nil && !r.last.less(c) {
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
	left := s.floor(u)
	if left != nil && !s.adjacent(left.last, u) {
		left = nil
	}
	right := s.ceil(u)
	if right != nil && !s.adjacent(u, right.first) {
		right = nil
	}
	switch {
	case left != nil && right != nil:
		left.last = right.last
		s.delete(right)
	case left != nil:
		left.last = u
	case right != nil:
		right.first = u
	default:
		s.t.ReplaceOrInsert(s.newRun(u, u))
	}
}

// remove deletes u, which the set contains.
func (s *runSet) remove(u u128) {
	r := s.floor(u)
	switch {
	case r.first == u && r.last == u:
		s.delete(r)
	case r.first == u:
		r.first, _ = s.after(u)
	case r.last == u:
		r.last = s.before(u)
	default:
		next, _ := s.after(u)
		tail := s.newRun(next, r.last)
		r.last = s.before(u)
		s.t.ReplaceOrInsert(tail)
	}
}

// withoutBuggy returns the skipBuggy view of a plain IPv4 set, in one pass
// over its runs.
func (s *runSet) withoutBuggy() *runSet {
	g := newRunSet(true)
	var cur run
	has := false
	s.t.Ascend(func(r *run) bool {
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
			g.t.ReplaceOrInsert(&run{first: cur.first, last: cur.last})
		}
		cur, has = run{first: first, last: last}, true
		return true
	})
	if has {
		g.t.ReplaceOrInsert(&cur)
	}
	return g
}

// contains reports whether u is in the set.
func (s *runSet) contains(u u128) bool {
	if s.skipBuggy && buggy(u) {
		return false
	}
	r := s.floor(u)
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
	if r := s.floor(lo); r != nil && r.first.less(lo) {
		add(r)
	}
	s.pivot.first = lo
	s.t.AscendGreaterOrEqual(&s.pivot, func(r *run) bool {
		if hi.less(r.first) {
			return false
		}
		add(r)
		return true
	})
	return n
}

func (s *runSet) len() int { return s.t.Len() }
