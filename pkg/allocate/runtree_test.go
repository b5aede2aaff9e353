package allocate

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestRunTreeMatchesASortedSlice checks the B-tree against a sorted slice,
// with small degrees so that every split, rotation and merge happens, and
// checks the B-tree shape after every step.
func TestRunTreeMatchesASortedSlice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tree := newRunTree(rapid.IntRange(2, 4).Draw(t, "degree"))
		var want []uint64 // sorted firsts; last = first + 1000 marks the owner
		key := rapid.Uint64Range(0, 300)
		t.Repeat(map[string]func(*rapid.T){
			"insert": func(t *rapid.T) {
				k := key.Draw(t, "k")
				i, found := slices.BinarySearch(want, k)
				if found {
					t.Skip("present")
				}
				tree.insert(run{first: u64(k), last: u64(k + 1000)})
				want = slices.Insert(want, i, k)
			},
			"delete": func(t *rapid.T) {
				if len(want) == 0 {
					t.Skip("empty")
				}
				i := rapid.IntRange(0, len(want)-1).Draw(t, "i")
				tree.delete(u64(want[i]))
				want = slices.Delete(want, i, i+1)
			},
			"edit": func(t *rapid.T) {
				// An in-place edit of last is always allowed.
				k := key.Draw(t, "k")
				if r := tree.floor(u64(k)); r != nil {
					r.last = u64(r.first.lo + 1000)
				}
			},
			"": func(t *rapid.T) {
				if tree.len != len(want) {
					t.Fatalf("len %d, want %d", tree.len, len(want))
				}
				var got []uint64
				tree.ascend(u128{}, func(r *run) bool {
					if r.last.lo != r.first.lo+1000 {
						t.Fatalf("run %v lost its last", r)
					}
					got = append(got, r.first.lo)
					return true
				})
				if !slices.Equal(got, want) {
					t.Fatalf("ascend = %v, want %v", got, want)
				}
				k := key.Draw(t, "probe")
				i, found := slices.BinarySearch(want, k)
				floor, ceil := -1, -1
				switch {
				case found:
					floor, ceil = i, i
				default:
					floor, ceil = i-1, i
				}
				if r := tree.floor(u64(k)); (r == nil) != (floor < 0) || (r != nil && r.first.lo != want[floor]) {
					t.Fatalf("floor(%d) = %v", k, r)
				}
				if r := tree.ceil(u64(k)); (r == nil) != (ceil >= len(want)) || (r != nil && r.first.lo != want[ceil]) {
					t.Fatalf("ceil(%d) = %v", k, r)
				}
				var from []uint64
				tree.ascend(u64(k), func(r *run) bool { from = append(from, r.first.lo); return len(from) < 3 })
				if wantFrom := want[ceil:min(len(want), ceil+3)]; !slices.Equal(from, wantFrom) {
					t.Fatalf("ascend(%d) = %v, want %v", k, from, wantFrom)
				}
				checkShape(t, tree)
			},
		})
	})
}

// checkShape checks the B-tree invariants: sizes within bounds, keys
// ordered across levels, every leaf at the same depth.
func checkShape(t *rapid.T, tree *runTree) {
	if tree.root == nil {
		return
	}
	leafDepth := -1
	var walk func(n *node, depth int, lo, hi *u128)
	walk = func(n *node, depth int, lo, hi *u128) {
		if n != tree.root && (len(n.runs) < tree.t-1 || len(n.runs) > 2*tree.t-1) {
			t.Fatalf("node with %d runs, degree %d", len(n.runs), tree.t)
		}
		if n == tree.root && n.kids != nil && len(n.runs) == 0 {
			t.Fatal("empty inner root")
		}
		for i, r := range n.runs {
			if (lo != nil && !lo.less(r.first)) || (hi != nil && !r.first.less(*hi)) || (i > 0 && !n.runs[i-1].first.less(r.first)) {
				t.Fatalf("run %v out of order", r)
			}
		}
		if n.kids == nil {
			if leafDepth < 0 {
				leafDepth = depth
			} else if depth != leafDepth {
				t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
			}
			return
		}
		if len(n.kids) != len(n.runs)+1 {
			t.Fatalf("%d kids for %d runs", len(n.kids), len(n.runs))
		}
		for i, k := range n.kids {
			klo, khi := lo, hi
			if i > 0 {
				klo = &n.runs[i-1].first
			}
			if i < len(n.runs) {
				khi = &n.runs[i].first
			}
			walk(k, depth+1, klo, khi)
		}
	}
	walk(tree.root, 0, nil, nil)
}
