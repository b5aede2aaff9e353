package allocate

import (
	"fmt"
	"net/netip"
	"testing"
)

// Benchmarks for docs/performance.md. Setup uses Restore (the fastest public
// way to hold many addresses) and is done once per sub-benchmark, outside
// the timer; measured loops leave the allocator as they found it.

// benchKeys returns n distinct Service keys, built once per benchmark.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("ns/svc-%d", i)
	}
	return keys
}

// holdEveryOther makes n Services hold every other address of r from its
// start, so the held set is n separate runs: the most the run tree can hold
// for n addresses, and the lowest free address is not at the range start.
func holdEveryOther(b *testing.B, a *Allocator, r Range, n int) {
	f := r.Family()
	u := u128Of(r.First)
	for i, key := range benchKeys(n) {
		x := u.addr(f)
		if !r.Contains(x) {
			b.Fatalf("%d held addresses do not fit in %s", n, r)
		}
		if err := a.Restore(Service{Key: key, Families: []Family{f}}, []netip.Addr{x}); err != nil {
			b.Fatal(err)
		}
		_ = i
		u, _ = u.inc()
		u, _ = u.inc()
	}
}

// BenchmarkAssignOne allocates one Service and releases it again, with n
// addresses already held in the pool.
func BenchmarkAssignOne(b *testing.B) {
	for _, tc := range []struct {
		cidr string
		used int
	}{
		{"10.0.0.0/24", 0},
		{"10.0.0.0/24", 100},
		{"10.0.0.0/16", 0},
		{"10.0.0.0/16", 1000},
		{"10.0.0.0/16", 10000},
		{"10.0.0.0/16", 32000}, // every other address: a /16 holds no more runs
		{"10.0.0.0/14", 100000},
		{"2001:db8::/64", 0},
		{"2001:db8::/64", 1000},
		{"2001:db8::/64", 10000},
		{"2001:db8::/64", 100000},
	} {
		var a *Allocator
		var s Service
		b.Run(fmt.Sprintf("%s/used=%d", tc.cidr, tc.used), func(b *testing.B) {
			if a == nil { // b.Run calls this several times; set up once
				r := mustRange(b, tc.cidr)
				a = newAllocator(b, Pool{Name: "p", AutoAssign: true, Ranges: []Range{r}})
				holdEveryOther(b, a, r, tc.used)
				s = Service{Key: "ns/bench", Families: []Family{r.Family()}}
			}
			b.ReportAllocs()
			for b.Loop() {
				if r := a.Assign(s); r.State != Complete {
					b.Fatal(r.Reason)
				}
				a.Release(s.Key)
			}
		})
	}

	// Dual-stack, with 100k addresses of each family held.
	var a *Allocator
	b.Run("dual-stack/10.0.0.0/14+2001:db8::/64/used=100000", func(b *testing.B) {
		r4, r6 := mustRange(b, "10.0.0.0/14"), mustRange(b, "2001:db8::/64")
		if a == nil {
			a = newAllocator(b, Pool{Name: "p", AutoAssign: true, Ranges: []Range{r4, r6}})
			holdEveryOther(b, a, r4, 100000)
			keys := benchKeys(200000)[100000:]
			u := u128Of(r6.First)
			for _, key := range keys {
				if err := a.Restore(Service{Key: key, Families: []Family{IPv6}}, []netip.Addr{u.addr(IPv6)}); err != nil {
					b.Fatal(err)
				}
				u, _ = u.inc()
				u, _ = u.inc()
			}
		}
		s := Service{Key: "ns/bench", Families: []Family{IPv4, IPv6}, Policy: RequireDualStack}
		b.ReportAllocs()
		for b.Loop() {
			if r := a.Assign(s); r.State != Complete {
				b.Fatal(r.Reason)
			}
			a.Release(s.Key)
		}
	})
}

// BenchmarkAssignAvoidBuggyIPs is the worst case for avoidBuggyIPs: every
// non-buggy address of the first 250 /24s is held, so only .0/.255 addresses
// lie between the start of the pool and the first free address.
func BenchmarkAssignAvoidBuggyIPs(b *testing.B) {
	r := mustRange(b, "10.0.0.0/16")
	p := Pool{Name: "p", AutoAssign: true, AvoidBuggyIPs: true, Ranges: []Range{r}}
	a := newAllocator(b, p)
	keys := benchKeys(250 * 254)
	for i, key := range keys {
		x := netip.AddrFrom4([4]byte{10, 0, byte(i / 254), byte(i%254 + 1)})
		if err := a.Restore(Service{Key: key, Families: []Family{IPv4}}, []netip.Addr{x}); err != nil {
			b.Fatal(err)
		}
	}
	s := Service{Key: "ns/bench", Families: []Family{IPv4}}
	b.ReportAllocs()
	for b.Loop() {
		if r := a.Assign(s); r.Addrs[0] != netip.MustParseAddr("10.0.250.1") {
			b.Fatal(r.Addrs)
		}
		a.Release(s.Key)
	}
}

// BenchmarkFill100k assigns 100k Services one by one into an empty pool.
func BenchmarkFill100k(b *testing.B) {
	keys := benchKeys(100000)
	for _, tc := range []struct {
		name   string
		ranges []string
		svc    Service
	}{
		{"IPv4", []string{"10.0.0.0/14"}, Service{Families: []Family{IPv4}}},
		{"dual-stack", []string{"10.0.0.0/14", "2001:db8::/64"}, Service{Families: []Family{IPv4, IPv6}, Policy: PreferDualStack}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := Pool{Name: "p", AutoAssign: true}
			for _, s := range tc.ranges {
				p.Ranges = append(p.Ranges, mustRange(b, s))
			}
			b.ReportAllocs()
			for b.Loop() {
				a := newAllocator(b, p)
				s := tc.svc
				for _, key := range keys {
					s.Key = key
					if r := a.Assign(s); r.State != Complete {
						b.Fatal(r.Reason)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/service")
		})
	}
}

// BenchmarkAssignFailsAcross20FullPools re-evaluates a Service that no pool
// can serve: 20 eligible /24 pools, all full.
func BenchmarkAssignFailsAcross20FullPools(b *testing.B) {
	var pools []Pool
	for i := range 20 {
		pools = append(pools, Pool{Name: fmt.Sprintf("pool-%02d", i), AutoAssign: true,
			Ranges: []Range{mustRange(b, fmt.Sprintf("10.0.%d.0/24", i))}})
	}
	a := newAllocator(b, pools...)
	for _, key := range benchKeys(20 * 256) {
		if r := a.Assign(Service{Key: key, Families: []Family{IPv4}}); r.State != Complete {
			b.Fatal(r.Reason)
		}
	}
	s := Service{Key: "ns/bench", Families: []Family{IPv4}}
	b.ReportAllocs()
	for b.Loop() {
		if r := a.Assign(s); r.State != Pending {
			b.Fatal(r.Addrs)
		}
	}
}

// BenchmarkRestore100k rebuilds an allocator from 100k held addresses, as a
// restarted controller does.
func BenchmarkRestore100k(b *testing.B) {
	r := mustRange(b, "10.0.0.0/14")
	pool := Pool{Name: "p", AutoAssign: true, Ranges: []Range{r}}
	keys := benchKeys(100000)
	svcs := make([]Service, len(keys))
	held := make([][]netip.Addr, len(keys))
	u := u128Of(r.First)
	for i, key := range keys {
		svcs[i] = Service{Key: key, Families: []Family{IPv4}}
		held[i] = []netip.Addr{u.addr(IPv4)}
		u, _ = u.inc()
	}
	b.ReportAllocs()
	for b.Loop() {
		a := newAllocator(b, pool)
		for i := range svcs {
			if err := a.Restore(svcs[i], held[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/service")
}
