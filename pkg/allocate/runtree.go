package allocate

import "slices"

// runTree is an ordered set of runs keyed by first: a B-tree of minimum
// degree t (every node but the root holds t-1 to 2t-1 runs), written for
// runs instead of taken from a generic library for two reasons. Runs are
// stored by value, so a search reads contiguous memory and compares inline;
// and lookups return pointers into the nodes, so callers grow or shrink a
// run in place, without another descent. An in-place edit must keep the
// order of firsts; runs never touch, so extending one towards a free
// neighbour always does. Any insert or delete invalidates returned pointers.
type runTree struct {
	root *node
	t    int
	len  int
}

type node struct {
	runs []run   // sorted by first; capacity 2t-1
	kids []*node // nil in leaves, else len(runs)+1 children; capacity 2t
}

func newRunTree(t int) *runTree { return &runTree{t: t} }

func (t *runTree) newNode(leaf bool) *node {
	n := &node{runs: make([]run, 0, 2*t.t-1)}
	if !leaf {
		n.kids = make([]*node, 0, 2*t.t)
	}
	return n
}

// lower returns the index of the first run with first >= u.
func (n *node) lower(u u128) int {
	lo, hi := 0, len(n.runs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.runs[m].first.less(u) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// floor returns the run with the greatest first <= u, or nil.
func (t *runTree) floor(u u128) *run {
	var best *run
	for n := t.root; n != nil; {
		i := n.lower(u)
		if i < len(n.runs) && n.runs[i].first == u {
			return &n.runs[i]
		}
		if i > 0 {
			best = &n.runs[i-1] // deeper candidates in kids[i] are larger
		}
		if n.kids == nil {
			break
		}
		n = n.kids[i]
	}
	return best
}

// ceil returns the run with the least first >= u, or nil.
func (t *runTree) ceil(u u128) *run {
	var best *run
	for n := t.root; n != nil; {
		i := n.lower(u)
		if i < len(n.runs) {
			if n.runs[i].first == u {
				return &n.runs[i]
			}
			best = &n.runs[i] // deeper candidates in kids[i] are smaller
		}
		if n.kids == nil {
			break
		}
		n = n.kids[i]
	}
	return best
}

// insert adds r, whose first is not in the tree. Full nodes are split on the
// way down, so the insertion itself never has to climb back.
func (t *runTree) insert(r run) {
	if t.root == nil {
		t.root = t.newNode(true)
	}
	if len(t.root.runs) == 2*t.t-1 {
		old := t.root
		t.root = t.newNode(false)
		t.root.kids = append(t.root.kids, old)
		t.split(t.root, 0)
	}
	n := t.root
	for {
		i := n.lower(r.first)
		if n.kids == nil {
			n.runs = slices.Insert(n.runs, i, r)
			break
		}
		if len(n.kids[i].runs) == 2*t.t-1 {
			t.split(n, i)
			if n.runs[i].first.less(r.first) {
				i++
			}
		}
		n = n.kids[i]
	}
	t.len++
}

// split moves the upper half of the full child n.kids[i] to a new sibling
// and its median up into n.
func (t *runTree) split(n *node, i int) {
	c := n.kids[i]
	right := t.newNode(c.kids == nil)
	right.runs = append(right.runs, c.runs[t.t:]...)
	median := c.runs[t.t-1]
	c.runs = c.runs[:t.t-1]
	if c.kids != nil {
		right.kids = append(right.kids, c.kids[t.t:]...)
		clear(c.kids[t.t:])
		c.kids = c.kids[:t.t]
	}
	n.runs = slices.Insert(n.runs, i, median)
	n.kids = slices.Insert(n.kids, i+1, right)
}

// delete removes the run whose first is key, which is in the tree. Every
// node entered on the way down is first given at least t runs, so removing
// from a leaf never leaves it short.
func (t *runTree) delete(key u128) {
	n := t.root
	for {
		i := n.lower(key)
		found := i < len(n.runs) && n.runs[i].first == key
		if n.kids == nil {
			if found {
				n.runs = slices.Delete(n.runs, i, i+1)
				t.len--
			}
			break
		}
		if found {
			switch {
			case len(n.kids[i].runs) >= t.t:
				// Replace by the predecessor, then delete that below.
				p := n.kids[i]
				for p.kids != nil {
					p = p.kids[len(p.kids)-1]
				}
				n.runs[i] = p.runs[len(p.runs)-1]
				key = n.runs[i].first
				n = n.kids[i]
			case len(n.kids[i+1].runs) >= t.t:
				s := n.kids[i+1]
				for s.kids != nil {
					s = s.kids[0]
				}
				n.runs[i] = s.runs[0]
				key = n.runs[i].first
				n = n.kids[i+1]
			default:
				n = t.merge(n, i)
			}
			continue
		}
		if len(n.kids[i].runs) < t.t {
			i = t.fill(n, i)
		}
		n = n.kids[i]
	}
}

// fill gives n.kids[i] a t-th run, from a sibling that can spare one or by
// merging with a sibling; it returns the child's index afterwards.
func (t *runTree) fill(n *node, i int) int {
	c := n.kids[i]
	switch {
	case i > 0 && len(n.kids[i-1].runs) >= t.t:
		l := n.kids[i-1]
		c.runs = slices.Insert(c.runs, 0, n.runs[i-1])
		n.runs[i-1] = l.runs[len(l.runs)-1]
		l.runs = l.runs[:len(l.runs)-1]
		if l.kids != nil {
			c.kids = slices.Insert(c.kids, 0, l.kids[len(l.kids)-1])
			l.kids[len(l.kids)-1] = nil
			l.kids = l.kids[:len(l.kids)-1]
		}
	case i < len(n.kids)-1 && len(n.kids[i+1].runs) >= t.t:
		r := n.kids[i+1]
		c.runs = append(c.runs, n.runs[i])
		n.runs[i] = r.runs[0]
		r.runs = slices.Delete(r.runs, 0, 1)
		if r.kids != nil {
			c.kids = append(c.kids, r.kids[0])
			r.kids = slices.Delete(r.kids, 0, 1)
		}
	case i < len(n.kids)-1:
		t.merge(n, i)
	default:
		t.merge(n, i-1)
		i--
	}
	return i
}

// merge joins n.kids[i], n.runs[i] and n.kids[i+1] into n.kids[i] and
// returns it; both children hold t-1 runs, so the result holds 2t-1. A root
// left without runs gives way to the merged child: that is how the tree
// shrinks.
func (t *runTree) merge(n *node, i int) *node {
	l, r := n.kids[i], n.kids[i+1]
	l.runs = append(append(l.runs, n.runs[i]), r.runs...)
	if l.kids != nil {
		l.kids = append(l.kids, r.kids...)
	}
	n.runs = slices.Delete(n.runs, i, i+1)
	n.kids = slices.Delete(n.kids, i+1, i+2)
	if n == t.root && len(n.runs) == 0 {
		t.root = l
	}
	return l
}

// ascend calls fn on every run with first >= u, in order, until fn returns
// false. fn must not change the tree.
func (t *runTree) ascend(u u128, fn func(*run) bool) {
	if t.root != nil {
		t.root.ascend(u, fn)
	}
}

func (n *node) ascend(u u128, fn func(*run) bool) bool {
	for i := n.lower(u); i <= len(n.runs); i++ {
		if n.kids != nil && !n.kids[i].ascend(u, fn) {
			return false
		}
		if i < len(n.runs) && !fn(&n.runs[i]) {
			return false
		}
	}
	return true
}
