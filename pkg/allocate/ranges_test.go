package allocate

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseRangeAcceptsCIDRsAndFirstLastRanges(t *testing.T) {
	for _, tc := range []struct {
		in          string
		first, last string
	}{
		{"192.0.2.0/24", "192.0.2.0", "192.0.2.255"},
		{" 192.0.2.8/29 ", "192.0.2.8", "192.0.2.15"},
		{"192.0.2.7/32", "192.0.2.7", "192.0.2.7"},
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255"},
		{"192.0.2.10-192.0.2.20", "192.0.2.10", "192.0.2.20"},
		{"192.0.2.10 - 192.0.2.20", "192.0.2.10", "192.0.2.20"},
		{"192.0.2.10-192.0.2.10", "192.0.2.10", "192.0.2.10"},
		{"2001:db8::/64", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"},
		{"2001:db8::/63", "2001:db8::", "2001:db8:0:1:ffff:ffff:ffff:ffff"},
		{"2001:db8::/128", "2001:db8::", "2001:db8::"},
		{"::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"::/80", "::", "::ffff:ffff:ffff"}, // ends on an IPv4-mapped address, found by fuzzing
		{"2001:db8::1-2001:db8::ff", "2001:db8::1", "2001:db8::ff"},
	} {
		r, err := ParseRange(tc.in)
		if err != nil {
			t.Errorf("ParseRange(%q): %v", tc.in, err)
			continue
		}
		want := Range{netip.MustParseAddr(tc.first), netip.MustParseAddr(tc.last)}
		if r != want {
			t.Errorf("ParseRange(%q) = %v, want %v", tc.in, r, want)
		}
	}
}

func TestParseRangeRejectsWithAMessageNamingTheProblem(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"", "empty"},
		{"192.0.2.5/24", "host bits are set (the network is 192.0.2.0/24)"},
		{"2001:db8::1/64", "host bits are set (the network is 2001:db8::/64)"},
		{"192.0.2.0/33", "invalid CIDR"},
		{"192.0.2.20-192.0.2.10", "first address 192.0.2.20 is above last address 192.0.2.10"},
		{"192.0.2.1-2001:db8::1", "different families"},
		{"192.0.2.1-", "last address"},
		{"-192.0.2.1", "first address"},
		{"192.0.2.1-192.0.2.2-192.0.2.3", "last address"},
		{"192.0.2.1", "want a CIDR"},
		{"fe80::1%eth0-fe80::2%eth0", "zone"},
		{"::ffff:192.0.2.0/120", "IPv4-mapped"},
		{"::ffff:192.0.2.1-::ffff:192.0.2.9", "write it as 192.0.2.1"},
		{"banana", "want a CIDR"},
	} {
		_, err := ParseRange(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseRange(%q) error = %v, want one containing %q", tc.in, err, tc.msg)
		}
	}
}

func TestRangeStringRoundTrips(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"192.0.2.0/24", "192.0.2.0/24"},
		{"192.0.2.0-192.0.2.255", "192.0.2.0/24"},
		{"192.0.2.1-192.0.2.254", "192.0.2.1-192.0.2.254"},
		{"192.0.2.7-192.0.2.7", "192.0.2.7/32"},
		{"2001:db8::/64", "2001:db8::/64"},
		{"::/0", "::/0"},
		{"2001:db8::1-2001:db8::ff", "2001:db8::1-2001:db8::ff"},
	} {
		r, err := ParseRange(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.String(); got != tc.out {
			t.Errorf("%q: String() = %q, want %q", tc.in, got, tc.out)
		}
		if back, err := ParseRange(r.String()); err != nil || back != r {
			t.Errorf("%q: ParseRange(String()) = %v, %v", tc.in, back, err)
		}
	}
}

func TestParseRequestedIPsAllowsOneAddressPerFamily(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		msg  string
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "192.0.2.1", want: []string{"192.0.2.1"}},
		{in: "2001:db8::1, 192.0.2.1", want: []string{"2001:db8::1", "192.0.2.1"}},
		{in: "192.0.2.1,192.0.2.2", msg: "both IPv4"},
		{in: "192.0.2.1,", msg: "entry 2 is empty"},
		{in: "192.0.2.1,2001:db8::1,192.0.2.3", msg: "at most one address per family"},
		{in: "0.0.0.0", msg: "unspecified"},
		{in: "fe80::1%eth0", msg: "zone"},
		{in: "::ffff:192.0.2.1", msg: "IPv4-mapped"},
		{in: "192.0.2.300", msg: "invalid requested addresses"},
	} {
		got, err := ParseRequestedIPs(tc.in)
		if tc.msg != "" {
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("ParseRequestedIPs(%q) error = %v, want one containing %q", tc.in, err, tc.msg)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRequestedIPs(%q): %v", tc.in, err)
			continue
		}
		var want []netip.Addr
		for _, s := range tc.want {
			want = append(want, netip.MustParseAddr(s))
		}
		if !slices.Equal(got, want) {
			t.Errorf("ParseRequestedIPs(%q) = %v, want %v", tc.in, got, want)
		}
	}
}

func TestPoolContainsIsTheAddressToPoolRule(t *testing.T) {
	p := Pool{Ranges: []Range{mustRange(t, "192.0.2.0/24"), mustRange(t, "2001:db8::/120")}}
	for _, tc := range []struct {
		addr  string
		buggy bool
		want  bool
	}{
		{"192.0.2.1", false, true},
		{"192.0.2.0", false, true},
		{"192.0.2.0", true, false},
		{"192.0.2.255", true, false},
		{"192.0.2.254", true, true},
		{"192.0.3.1", false, false},
		{"2001:db8::ff", true, true}, // avoidBuggyIPs is about IPv4 only
		{"2001:db8::100", false, false},
		{"::ffff:192.0.2.1", false, false}, // IPv6, and no IPv6 range holds it
	} {
		p.AvoidBuggyIPs = tc.buggy
		if got := p.Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Contains(%s) with avoidBuggyIPs=%v = %v, want %v", tc.addr, tc.buggy, got, tc.want)
		}
	}
	if got := p.Families(); !slices.Equal(got, []Family{IPv4, IPv6}) {
		t.Errorf("Families() = %v", got)
	}
}

// FuzzParseRange checks that whatever ParseRange accepts is a well-formed
// range whose String parses back to itself.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"192.0.2.0/24", "192.0.2.5/24", "192.0.2.10-192.0.2.20", "192.0.2.20-192.0.2.10",
		"2001:db8::/64", "2001:db8::1-2001:db8::ff", "::/0", "0.0.0.0/0", "192.0.2.1-2001:db8::1",
		"fe80::1%eth0/64", "::ffff:1.2.3.4/128", " 10.0.0.0 - 10.0.0.9 ", "1.2.3.4", "-", "/", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if err := r.Valid(); err != nil {
			t.Fatalf("ParseRange(%q) = %v, which is invalid: %v", s, r, err)
		}
		if !r.Contains(r.First) || !r.Contains(r.Last) {
			t.Fatalf("ParseRange(%q) = %v does not contain its ends", s, r)
		}
		back, err := ParseRange(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRange(%q) = %v; ParseRange(%q) = %v, %v", s, r, r.String(), back, err)
		}
	})
}

// FuzzParseRequestedIPs checks that accepted annotations hold at most one
// plain address per family and format back to the same list.
func FuzzParseRequestedIPs(f *testing.F) {
	for _, s := range []string{
		"", "192.0.2.1", "192.0.2.1,2001:db8::1", " 2001:db8::1 , 192.0.2.1 ", "192.0.2.1,192.0.2.2",
		"192.0.2.1,", ",", "::", "fe80::1%eth0", "::ffff:1.2.3.4", "1.2.3.4,5.6.7.8,::1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseRequestedIPs(s)
		if err != nil {
			return
		}
		if len(got) > 2 || (len(got) == 2 && FamilyOf(got[0]) == FamilyOf(got[1])) {
			t.Fatalf("ParseRequestedIPs(%q) = %v: more than one per family", s, got)
		}
		parts := make([]string, len(got))
		for i, a := range got {
			if plainAddr(a) != nil || !a.IsValid() || a.IsUnspecified() {
				t.Fatalf("ParseRequestedIPs(%q) accepted %v", s, a)
			}
			parts[i] = a.String()
		}
		back, err := ParseRequestedIPs(strings.Join(parts, ","))
		if err != nil || !slices.Equal(back, got) {
			t.Fatalf("ParseRequestedIPs(%q) = %v, but its formatting parses to %v, %v", s, got, back, err)
		}
	})
}

func mustRange(t testing.TB, s string) Range {
	t.Helper()
	r, err := ParseRange(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
