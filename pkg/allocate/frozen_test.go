package allocate

import (
	"fmt"
	"strings"
	"testing"
)

func frozen(p Pool) Pool { p.Frozen = true; return p }

func TestAFrozenPoolGivesNoNewAddress(t *testing.T) {
	a := newAllocator(t, frozen(pool("old", v4a)), pool("other", v4b))
	expect(t, a.Assign(svc("ns/auto", SingleStack, IPv4)), "other", Complete, "198.51.100.10")

	pinned := svc("ns/pinned", SingleStack, IPv4)
	pinned.Pool = "old"
	r := a.Assign(pinned)
	expect(t, r, "", Pending)
	expectReason(t, r, "pinned pool old is frozen")

	req := svc("ns/req", SingleStack, IPv4)
	req.Requested = ips("192.0.2.12")
	if r := a.Assign(req); r.Err == nil || len(r.Addrs) != 0 || !strings.Contains(r.Reason, "frozen") {
		t.Fatalf("request from a frozen pool: %+v", r)
	}
}

func TestAFrozenPoolKeepsWhatServicesHoldAndResumesWhenValid(t *testing.T) {
	dual := svc("ns/dual", PreferDualStack, IPv4, IPv6)
	req := svc("ns/req", SingleStack, IPv4)
	req.Requested = ips("192.0.2.15")
	a := newAllocator(t, pool("p", v4a, v6a))
	expect(t, a.Assign(req), "p", Complete, "192.0.2.15")
	single := svc("ns/dual", SingleStack, IPv4, IPv6)
	expect(t, a.Assign(single), "p", Complete, "192.0.2.10")

	if inv := a.SetPools([]Pool{frozen(pool("p", v4a, v6a))}); len(inv) != 0 {
		t.Fatalf("freezing a pool made held addresses invalid: %v", inv)
	}
	// Held addresses stay, also a requested one; backfill waits.
	expect(t, a.Assign(req), "p", Complete, "192.0.2.15")
	r := a.Assign(dual)
	expect(t, r, "p", SingleStackFallback, "192.0.2.10")
	expectReason(t, r, "frozen")

	// A restart while the pool is frozen restores every held address.
	b := newAllocator(t, frozen(pool("p", v4a, v6a)))
	if err := b.Restore(req, ips("192.0.2.15")); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(dual, ips("192.0.2.10")); err != nil {
		t.Fatal(err)
	}
	expect(t, b.Assign(req), "p", Complete, "192.0.2.15")
	expect(t, b.Assign(dual), "p", SingleStackFallback, "192.0.2.10")

	// Valid again: it gives again, backfill included.
	b.SetPools([]Pool{pool("p", v4a, v6a)})
	expect(t, b.Assign(dual), "p", Complete, "192.0.2.10", "2001:db8::10")
}

func TestPoolsNeverHandOutSpecialAddresses(t *testing.T) {
	for _, tc := range []struct {
		name, r string
		first   string // the first address handed out
	}{
		{"IPv4 range spanning loopback", "126.255.255.254-128.0.0.1", "126.255.255.254"},
		{"IPv4 link-local block", "169.254.0.0/16", ""},
		{"IPv4 range into multicast", "223.255.255.255-224.0.0.5", "223.255.255.255"},
		{"IPv4 broadcast", "255.255.255.254-255.255.255.255", "255.255.255.254"},
		{"IPv4 unspecified", "0.0.0.0-0.0.0.3", "0.0.0.1"},
		{"IPv6 unspecified and loopback", "::-::3", "::2"},
		{"IPv6 link-local", "fe80::/64", ""},
		{"IPv6 multicast", "ff02::1-ff02::2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAllocator(t, pool("p", tc.r))
			fam := IPv4
			if strings.Contains(tc.r, ":") {
				fam = IPv6
			}
			var got []string
			for i := range 4 {
				r := a.Assign(svc(fmt.Sprintf("ns/s%d", i), SingleStack, fam))
				for _, x := range r.Addrs {
					if Special(x) {
						t.Fatalf("handed out %s", x)
					}
					got = append(got, x.String())
				}
			}
			if tc.first == "" && len(got) > 0 || tc.first != "" && (len(got) == 0 || got[0] != tc.first) {
				t.Fatalf("handed out %v, want first %q", got, tc.first)
			}
			p := pool("p", tc.r)
			for _, x := range ips("127.0.0.1", "169.254.1.1", "224.0.0.1", "0.0.0.0", "::", "::1", "fe80::1", "ff02::1") {
				if p.Contains(x) {
					t.Errorf("pool contains %s", x)
				}
			}
		})
	}
}

func TestAllocationMessagesStayShortWithManyPools(t *testing.T) {
	for _, n := range []int{100, 3000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var pools []Pool
			for i := range n {
				pools = append(pools, pool(fmt.Sprintf("pool-with-a-rather-long-name-%04d", i), fmt.Sprintf("10.%d.%d.0/32", i/256, i%256)))
			}
			a := newAllocator(t, pools...)
			for i := range n {
				a.Assign(svc(fmt.Sprintf("ns/fill%d", i), SingleStack, IPv4))
			}
			for _, s := range []Service{svc("ns/v6", SingleStack, IPv6), svc("ns/v4", SingleStack, IPv4), svc("ns/dual", RequireDualStack, IPv4, IPv6)} {
				r := a.Assign(s)
				if len(r.Reason) > MaxReason {
					t.Errorf("%s: reason of %d bytes", s.Key, len(r.Reason))
				}
				expectReason(t, r, fmt.Sprintf("%d pools", n), "pool-with-a-rather-long-name-0000", "pool-with-a-rather-long-name-0002")
			}
			frozenAll := make([]Pool, n)
			for i, p := range pools {
				frozenAll[i] = frozen(p)
			}
			a.SetPools(frozenAll)
			r := a.Assign(svc("ns/late", SingleStack, IPv4))
			if len(r.Reason) > MaxReason || !strings.Contains(r.Reason, fmt.Sprintf("%d pools", n)) {
				t.Errorf("no-candidate reason %q", r.Reason)
			}
		})
	}
}
