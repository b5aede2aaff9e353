package allocate

import (
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestRunSetMatchesABitmap drives a run set (plain and skipping .0/.255)
// with random adds and removes around /24 boundaries and compares every
// query with a brute-force bitmap.
func TestRunSetMatchesABitmap(t *testing.T) {
	const base = 0xC0000200 - 8 // 192.0.1.248: the universe crosses /24 boundaries
	rapid.Check(t, func(t *rapid.T) {
		skip := rapid.Bool().Draw(t, "skipBuggy")
		// Small universes make runs merge and split often; the large one
		// crosses several /24s.
		size := rapid.SampledFrom([]int{12, 40, 600}).Draw(t, "size")
		// Small degrees make the tree deep, so splits and merges happen.
		degree := rapid.SampledFrom([]int{2, 3, treeDegree}).Draw(t, "degree")
		s := &runSet{t: newRunTree(degree), skipBuggy: skip}
		// When s is plain, glued follows its non-buggy addresses, to check
		// withoutBuggy against incremental maintenance.
		glued := newRunSet(true)
		in := make([]bool, size)
		considered := func(i int) bool { return !skip || !buggy(u64(uint64(base+i))) }
		t.Repeat(map[string]func(*rapid.T){
			"add": func(t *rapid.T) {
				i := rapid.IntRange(0, size-1).Draw(t, "i")
				if in[i] || !considered(i) {
					t.Skip()
				}
				s.add(u64(uint64(base + i)))
				if !buggy(u64(uint64(base + i))) {
					glued.add(u64(uint64(base + i)))
				}
				in[i] = true
			},
			"remove": func(t *rapid.T) {
				i := rapid.IntRange(0, size-1).Draw(t, "i")
				if !in[i] {
					t.Skip()
				}
				s.remove(u64(uint64(base + i)))
				if !buggy(u64(uint64(base + i))) {
					glued.remove(u64(uint64(base + i)))
				}
				in[i] = false
			},
			"": func(t *rapid.T) {
				lo := rapid.IntRange(0, size-1).Draw(t, "lo")
				hi := rapid.IntRange(lo, size-1).Draw(t, "hi")
				want, wantOK, count := 0, false, uint64(0)
				for i := lo; i <= hi; i++ {
					if !wantOK && considered(i) && !in[i] {
						want, wantOK = i, true
					}
					if in[i] {
						count++
					}
				}
				got, ok := s.lowestFree(u64(uint64(base+lo)), u64(uint64(base+hi)))
				if ok != wantOK || (ok && got != u64(uint64(base+want))) {
					t.Fatalf("lowestFree(%d, %d) = %v, %v; want %d, %v", lo, hi, got.lo-base, ok, want, wantOK)
				}
				if got := s.countIn(u64(uint64(base+lo)), u64(uint64(base+hi))); got != count {
					t.Fatalf("countIn(%d, %d) = %d, want %d", lo, hi, got, count)
				}
				for i := range size {
					if s.contains(u64(uint64(base+i))) != in[i] {
						t.Fatalf("contains(%d) = %v", i, !in[i])
					}
				}
				// Runs never touch: between two runs lies a considered free
				// address, so the number of runs is minimal.
				runs, prev := 0, false
				for i := range size {
					if !considered(i) {
						continue
					}
					if in[i] && !prev {
						runs++
					}
					prev = in[i]
				}
				if s.len() != runs {
					t.Fatalf("%d runs stored, want %d", s.len(), runs)
				}
				if !skip {
					if got, want := runsOf(s.withoutBuggy()), runsOf(glued); !slices.Equal(got, want) {
						t.Fatalf("withoutBuggy() = %v, want %v", got, want)
					}
				}
			},
		})
	})
}

func runsOf(s *runSet) []run {
	var out []run
	s.t.ascend(u128{}, func(r *run) bool { out = append(out, *r); return true })
	return out
}

func TestRunSetHandlesTheEdgesOfTheAddressSpace(t *testing.T) {
	top := u128{math.MaxUint64, math.MaxUint64}
	s := newRunSet(false)
	s.add(top)
	if _, ok := s.lowestFree(top, top); ok {
		t.Error("found a free address in a full last range")
	}
	below := top.dec()
	if got, ok := s.lowestFree(below, top); !ok || got != below {
		t.Errorf("lowestFree = %v, %v", got, ok)
	}
	s.add(below)
	s.remove(top)
	if got, ok := s.lowestFree(below, top); !ok || got != top {
		t.Errorf("lowestFree after remove = %v, %v", got, ok)
	}

	v4 := newRunSet(true)
	last := u64(0xFFFFFFFE) // 255.255.255.254, the last non-buggy IPv4 address
	v4.add(last)
	if _, ok := v4.lowestFree(last, u64(0xFFFFFFFF)); ok {
		t.Error("found a free non-buggy address above 255.255.255.254")
	}
}

func TestBuggyInCountsDotZeroAndDot255(t *testing.T) {
	for _, tc := range []struct{ lo, hi uint64 }{
		{0, 0}, {0, 255}, {0, 256}, {1, 254}, {255, 256}, {254, 257}, {0xC0000200, 0xC000FFFF}, {0xFFFFFF00, 0xFFFFFFFF},
	} {
		var want uint64
		for x := tc.lo; x <= tc.hi; x++ {
			if buggy(u64(x)) {
				want++
			}
		}
		if got := buggyIn(u64(tc.lo), u64(tc.hi)); got != want {
			t.Errorf("buggyIn(%d, %d) = %d, want %d", tc.lo, tc.hi, got, want)
		}
	}
}

func TestU128ArithmeticSaturatesInsteadOfWrapping(t *testing.T) {
	top := maxU128()
	if _, ok := top.inc(); ok {
		t.Error("inc of 2^128-1 did not report overflow")
	}
	if got := span(u128{}, top); got != top {
		t.Errorf("span of the whole IPv6 space = %v, want saturated", got)
	}
	if got := span(u128{}, u128{lo: math.MaxUint64}); got != (u128{hi: 1}) {
		t.Errorf("span of a /64 = %v, want 2^64", got)
	}
	if got := (u128{hi: 1}).sat64(); got != math.MaxUint64 {
		t.Errorf("sat64(2^64) = %d", got)
	}
	if got := top.add(u64(1)); got != top {
		t.Errorf("add past 2^128-1 = %v", got)
	}
	if got := (u128{hi: 1}).sub(u64(1)); got != (u128{lo: math.MaxUint64}) {
		t.Errorf("2^64-1 = %v", got)
	}
}
