package config

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// aged sets an object's creationTimestamp to t0 plus n minutes.
func aged[T any, PT interface {
	*T
	metav1.Object
}](o T, n int) T {
	PT(&o).SetCreationTimestamp(metav1.NewTime(t0.Add(time.Duration(n) * time.Minute)))
	return o
}

func l2(name string, pools ...string) v1beta1.L2Advertisement {
	return v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: pools}}
}

func secret(name, pw string) corev1.Secret {
	return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "herald-system"}, Data: map[string][]byte{"password": []byte(pw)}}
}

func withPassword(p v1beta1.BGPPeer, secret string) v1beta1.BGPPeer {
	p.Spec.PasswordSecret = &corev1.SecretReference{Name: secret}
	return p
}

func mustBuild(t *testing.T, objs Objects) (*Config, Errors) {
	t.Helper()
	cfg, errs := Build(objs)
	if cfg == nil {
		t.Fatal("Build returned a nil Config")
	}
	return cfg, errs
}

func wantValidity(t *testing.T, cfg *Config, kind, name string, valid bool, reason string, inMessage ...string) {
	t.Helper()
	v := cfg.Validity(kind, name)
	if v.Valid != valid || v.Reason != reason {
		t.Errorf("%s %s: %+v, want valid=%v reason %s", kind, name, v, valid, reason)
	}
	for _, s := range inMessage {
		if !strings.Contains(v.Message, s) {
			t.Errorf("%s %s: message %q does not mention %q", kind, name, v.Message, s)
		}
	}
	if len(v.Message) > MaxMessage {
		t.Errorf("%s %s: message of %d bytes", kind, name, len(v.Message))
	}
}

func TestOverlappingPoolsTheOlderWinsAndTheNewerIsFrozenButKept(t *testing.T) {
	// The newer pool has the lower name: age decides, not the name.
	cfg, _ := mustBuild(t, Objects{
		Pools:            []v1beta1.IPAddressPool{aged(pool("a-new", "192.0.2.128/25", "198.51.100.0/24"), 2), aged(pool("z-old", "192.0.2.0/24"), 1)},
		L2Advertisements: []v1beta1.L2Advertisement{l2("both", "a-new", "z-old")},
	})
	wantValidity(t, cfg, KindPool, "z-old", true, v1beta1.ReasonValid)
	wantValidity(t, cfg, KindPool, "a-new", false, v1beta1.ReasonOverlapping, `"z-old"`)
	if p := cfg.Pool("a-new"); p == nil || !p.Frozen {
		t.Fatalf("the newer pool must stay in Config.Pools, frozen: %+v", p)
	}
	if cfg.Pool("z-old").Frozen {
		t.Error("the older pool is frozen")
	}
	if got := cfg.PoolFor(netip.MustParseAddr("192.0.2.200")); got == nil || got.Name != "z-old" {
		t.Errorf("PoolFor in the overlap = %v, want the winner z-old", got)
	}
	// A frozen pool still announces: the advertisement still covers it, and
	// its addresses outside the overlap still map to it.
	if got := cfg.PoolFor(netip.MustParseAddr("198.51.100.7")); got == nil || got.Name != "a-new" {
		t.Errorf("PoolFor outside the overlap = %v, want the frozen pool a-new", got)
	}
	if len(cfg.L2Advertisements) != 1 || strings.Join(cfg.L2Advertisements[0].Pools, ",") != "a-new,z-old" {
		t.Errorf("advertisement covers %v, want both pools (a frozen pool keeps announcing)", cfg.L2Advertisements)
	}
	wantValidity(t, cfg, KindL2Advertisement, "both", true, v1beta1.ReasonValid)
}

func TestEqualTimestampsTheLowerNameWins(t *testing.T) {
	cfg, _ := mustBuild(t, Objects{Pools: []v1beta1.IPAddressPool{aged(pool("b", "192.0.2.0/24"), 1), aged(pool("a", "192.0.2.0/25"), 1)}})
	wantValidity(t, cfg, KindPool, "a", true, v1beta1.ReasonValid)
	wantValidity(t, cfg, KindPool, "b", false, v1beta1.ReasonOverlapping, `"a"`)
}

func TestAPoolOverlappingAFrozenPoolIsFrozenToo(t *testing.T) {
	// c overlaps only b, which lost to a: b's held addresses are still held,
	// so c must not hand them out either.
	cfg, _ := mustBuild(t, Objects{Pools: []v1beta1.IPAddressPool{
		aged(pool("a", "192.0.2.0/26"), 1), aged(pool("b", "192.0.2.0/25"), 2), aged(pool("c", "192.0.2.100-192.0.2.200"), 3)}})
	wantValidity(t, cfg, KindPool, "b", false, v1beta1.ReasonOverlapping, `"a"`)
	wantValidity(t, cfg, KindPool, "c", false, v1beta1.ReasonOverlapping, `"b"`)
}

func TestAPoolWithABadFieldIsFrozenAndOthersStayInForce(t *testing.T) {
	bad := pool("bad", "192.0.2.0/24", "not-a-cidr")
	bad.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{ServiceSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}}}
	cfg, errs := mustBuild(t, Objects{Pools: []v1beta1.IPAddressPool{bad, pool("good", "198.51.100.0/24")}})
	if len(errs.For(KindPool, "bad")) != 2 {
		t.Errorf("errors %v, want both problems of the bad pool", errs)
	}
	wantValidity(t, cfg, KindPool, "bad", false, v1beta1.ReasonInvalidField, "spec.addresses[1]")
	wantValidity(t, cfg, KindPool, "good", true, v1beta1.ReasonValid)
	p := cfg.Pool("bad")
	if p == nil || !p.Frozen || len(p.Ranges) != 1 || len(p.ServiceSelectors) != 0 {
		t.Errorf("bad pool %+v: want frozen, the parsable range kept, no selectors (held addresses stay valid)", p)
	}
}

func TestOverlapWithinOnePoolIsOnlyAWarning(t *testing.T) {
	cfg, errs := mustBuild(t, Objects{Pools: []v1beta1.IPAddressPool{pool("a", "2001:db8::/64", "2001:db8::5/128")}})
	if errs != nil || cfg.Pool("a").Frozen || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), "of the same pool") {
		t.Errorf("errs %v warnings %v", errs, cfg.Warnings)
	}
}

func TestAMissingPoolDropsOnlyThatReference(t *testing.T) {
	cfg, _ := mustBuild(t, Objects{
		Pools:            []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24")},
		L2Advertisements: []v1beta1.L2Advertisement{l2("some", "p", "later"), l2("none", "later")},
	})
	wantValidity(t, cfg, KindL2Advertisement, "some", false, v1beta1.ReasonMissingReference, `"later"`)
	wantValidity(t, cfg, KindL2Advertisement, "none", false, v1beta1.ReasonMissingReference, `"later"`)
	got := map[string]string{}
	for _, a := range cfg.L2Advertisements {
		got[a.Name] = strings.Join(a.Pools, ",")
	}
	if got["some"] != "p" || got["none"] != "" {
		t.Errorf("advertisements cover %v: want some→p and none→nothing (never every pool)", got)
	}
}

func TestAMissingCommunityDisablesTheAdvertisement(t *testing.T) {
	cfg, _ := mustBuild(t, Objects{
		Pools:             []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24")},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("tagged", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"gold"} }), bgpAdv("plain", nil)},
	})
	wantValidity(t, cfg, KindBGPAdvertisement, "tagged", false, v1beta1.ReasonMissingReference, `"gold"`)
	wantValidity(t, cfg, KindBGPAdvertisement, "plain", true, v1beta1.ReasonValid)
	if len(cfg.BGPAdvertisements) != 1 || cfg.BGPAdvertisements[0].Name != "plain" {
		t.Errorf("advertisements in force %v, want only plain", cfg.BGPAdvertisements)
	}
}

func TestAMissingPeerNameMatchesNoSession(t *testing.T) {
	cfg, _ := mustBuild(t, Objects{
		BGPPeers:          []v1beta1.BGPPeer{peer("r", 1, 2, "192.0.2.1")},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"ghost"} })},
	})
	wantValidity(t, cfg, KindBGPAdvertisement, "a", false, v1beta1.ReasonMissingReference, `"ghost"`)
	if len(cfg.BGPAdvertisements) != 1 || strings.Join(cfg.BGPAdvertisements[0].Peers, ",") != "ghost" {
		t.Errorf("advertisement %+v: must stay limited to the missing name, never every peer", cfg.BGPAdvertisements)
	}
}

func TestAMissingBFDProfileRunsTheSessionWithoutBFD(t *testing.T) {
	p := peer("r", 1, 2, "192.0.2.1")
	p.Spec.BFDProfile = "fast"
	q := peer("s", 1, 2, "192.0.2.2")
	q.Spec.BFDProfile = "broken"
	cfg, _ := mustBuild(t, Objects{BGPPeers: []v1beta1.BGPPeer{p, q},
		BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: metav1.ObjectMeta{Name: "broken"}, Spec: v1beta1.BFDProfileSpec{DetectMultiplier: new(uint32(1))}}}})
	wantValidity(t, cfg, KindBGPPeer, "r", false, v1beta1.ReasonMissingReference, `"fast"`)
	wantValidity(t, cfg, KindBGPPeer, "s", false, v1beta1.ReasonMissingReference, `"broken"`)
	wantValidity(t, cfg, KindBFDProfile, "broken", false, v1beta1.ReasonInvalidField)
	if len(cfg.Peers) != 2 || cfg.Peers[0].BFD != nil || cfg.Peers[1].BFD != nil {
		t.Errorf("peers %+v: want both in force without BFD", cfg.Peers)
	}
}

func TestDuplicatePeersTheOlderWins(t *testing.T) {
	zone := func(p v1beta1.BGPPeer, z string) v1beta1.BGPPeer {
		p.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"zone": z}}}
		return p
	}
	cfg, _ := mustBuild(t, Objects{BGPPeers: []v1beta1.BGPPeer{
		aged(peer("a-newer", 1, 2, "192.0.2.1"), 2),
		aged(zone(peer("z-older", 1, 2, "192.0.2.1"), "east"), 1),
		// Disjoint node selectors: the same router from other nodes is fine.
		aged(zone(peer("west", 1, 2, "192.0.2.9"), "west"), 3),
		aged(zone(peer("east", 1, 2, "192.0.2.9"), "east"), 4),
	}})
	wantValidity(t, cfg, KindBGPPeer, "z-older", true, v1beta1.ReasonValid)
	wantValidity(t, cfg, KindBGPPeer, "a-newer", false, v1beta1.ReasonDuplicatePeer, `"z-older"`)
	wantValidity(t, cfg, KindBGPPeer, "west", true, v1beta1.ReasonValid)
	wantValidity(t, cfg, KindBGPPeer, "east", true, v1beta1.ReasonValid)
	var names []string
	for _, p := range cfg.Peers {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "east,west,z-older" {
		t.Errorf("peers in force %v", names)
	}
}

func TestSelectorsOverlapUnlessAKeyExcludesThem(t *testing.T) {
	sel := func(ls ...metav1.LabelSelector) []metav1.LabelSelector { return ls }
	in := func(k string, v ...string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: k, Operator: metav1.LabelSelectorOpIn, Values: v}}}
	}
	op := func(k string, o metav1.LabelSelectorOperator, v ...string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: k, Operator: o, Values: v}}}
	}
	for _, tc := range []struct {
		name    string
		a, b    []metav1.LabelSelector
		overlap bool
	}{
		{"every node overlaps anything", nil, sel(in("zone", "a")), true},
		{"different values of one key", sel(in("zone", "a")), sel(in("zone", "b")), false},
		{"a shared value", sel(in("zone", "a", "b")), sel(in("zone", "b", "c")), true},
		{"in versus notin of all its values", sel(in("zone", "a")), sel(op("zone", metav1.LabelSelectorOpNotIn, "a", "b")), false},
		{"exists versus does not exist", sel(op("zone", metav1.LabelSelectorOpExists)), sel(op("zone", metav1.LabelSelectorOpDoesNotExist)), false},
		{"different keys may both match", sel(in("zone", "a")), sel(in("rack", "b")), true},
		{"one of several selectors overlaps", sel(in("zone", "a"), in("zone", "c")), sel(in("zone", "c")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b builder
			b.out = map[string]bool{}
			b.cfg = &Config{}
			x, _ := b.selectors("k", "n", "f", tc.a)
			y, _ := b.selectors("k", "n", "f", tc.b)
			if got := selectorsOverlap(x, y); got != tc.overlap {
				t.Errorf("overlap = %v, want %v", got, tc.overlap)
			}
		})
	}
}

func TestPeerPasswords(t *testing.T) {
	long := strings.Repeat("x", MaxPasswordBytes+1)
	noKey := corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "nokey"}, Data: map[string][]byte{"pass": []byte("x")}}
	for _, tc := range []struct {
		name, secret string
		reason       string
		password     string
	}{
		{"a good password reaches the peer", "good", v1beta1.ReasonValid, "s3cret"},
		{"the longest password is accepted", "max", v1beta1.ReasonValid, strings.Repeat("y", MaxPasswordBytes)},
		{"a missing Secret disables the peer", "absent", v1beta1.ReasonMissingReference, ""},
		{"a Secret without the key disables the peer", "nokey", v1beta1.ReasonInvalidPassword, ""},
		{"an empty password disables the peer", "empty", v1beta1.ReasonInvalidPassword, ""},
		{"a whitespace password disables the peer", "blank", v1beta1.ReasonInvalidPassword, ""},
		{"a password over 80 bytes disables the peer", "long", v1beta1.ReasonInvalidPassword, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secrets := map[string]corev1.Secret{"good": secret("good", "s3cret"), "max": secret("max", strings.Repeat("y", MaxPasswordBytes)),
				"nokey": noKey, "empty": secret("empty", ""), "blank": secret("blank", " \t\n"), "long": secret("long", long)}
			cfg, _ := mustBuild(t, Objects{Secrets: secrets, BGPPeers: []v1beta1.BGPPeer{withPassword(peer("r", 1, 2, "192.0.2.1"), tc.secret)}})
			valid := tc.reason == v1beta1.ReasonValid
			wantValidity(t, cfg, KindBGPPeer, "r", valid, tc.reason)
			if valid {
				if len(cfg.Peers) != 1 || cfg.Peers[0].Password != tc.password {
					t.Errorf("peers %+v, want the password handed over", cfg.Peers)
				}
			} else if len(cfg.Peers) != 0 {
				t.Errorf("a peer with an unusable password is in force: %+v", cfg.Peers)
			}
			if !valid && strings.Contains(cfg.Validity(KindBGPPeer, "r").Message, long) {
				t.Error("the message repeats the password")
			}
		})
	}
	t.Run("a Secret in another namespace is not found", func(t *testing.T) {
		p := withPassword(peer("r", 1, 2, "192.0.2.1"), "good")
		p.Spec.PasswordSecret.Namespace = "elsewhere"
		cfg, _ := mustBuild(t, Objects{Secrets: map[string]corev1.Secret{"good": secret("good", "x")}, BGPPeers: []v1beta1.BGPPeer{p}})
		wantValidity(t, cfg, KindBGPPeer, "r", false, v1beta1.ReasonMissingReference, "elsewhere")
	})
	t.Run("without Secrets read passwords are not checked", func(t *testing.T) {
		cfg, _ := mustBuild(t, Objects{BGPPeers: []v1beta1.BGPPeer{withPassword(peer("r", 1, 2, "192.0.2.1"), "absent")}})
		wantValidity(t, cfg, KindBGPPeer, "r", true, v1beta1.ReasonValid)
		if len(cfg.Peers) != 1 || cfg.Peers[0].Password != "" || cfg.Peers[0].PasswordSecret == nil {
			t.Errorf("peers %+v", cfg.Peers)
		}
	})
}

func TestDuplicateCommunityNamesTheOlderWins(t *testing.T) {
	comm := func(name string, age int, aliases ...v1beta1.CommunityAlias) v1beta1.Community {
		return aged(v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.CommunitySpec{Communities: aliases}}, age)
	}
	cfg, _ := mustBuild(t, Objects{
		Pools: []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24")},
		Communities: []v1beta1.Community{
			comm("a-newer", 2, v1beta1.CommunityAlias{Name: "gold", Value: "65000:2"}, v1beta1.CommunityAlias{Name: "silver", Value: "65000:3"}),
			comm("z-older", 1, v1beta1.CommunityAlias{Name: "gold", Value: "65000:1"}),
		},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"gold", "silver"} })},
	})
	wantValidity(t, cfg, KindCommunity, "z-older", true, v1beta1.ReasonValid)
	wantValidity(t, cfg, KindCommunity, "a-newer", false, v1beta1.ReasonDuplicateName, `"z-older"`)
	if len(cfg.BGPAdvertisements) != 1 || fmt.Sprint(cfg.BGPAdvertisements[0].Communities) != fmt.Sprint([]uint32{65000<<16 | 1, 65000<<16 | 3}) {
		t.Errorf("advertisement %+v: want gold from the older Community and silver from the newer", cfg.BGPAdvertisements)
	}
}

func TestValidityMessagesAreBounded(t *testing.T) {
	var addrs []string
	for i := range 64 {
		addrs = append(addrs, fmt.Sprintf("bogus-address-number-%d-that-is-long", i))
	}
	cfg, _ := mustBuild(t, Objects{Pools: []v1beta1.IPAddressPool{pool("p", addrs...)}})
	v := cfg.Validity(KindPool, "p")
	if len(v.Message) > MaxMessage || !strings.HasSuffix(v.Message, "…") {
		t.Errorf("message of %d bytes: %q", len(v.Message), v.Message)
	}
}

// TestValidityDependsOnlyOnTheSetOfObjects builds a messy configuration
// (overlaps, duplicates, missing references) in many input orders: the
// Config and every Validity must come out the same.
func TestValidityDependsOnlyOnTheSetOfObjects(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 30 {
		objs := messyObjects(rng)
		want, wantErrs := Build(objs)
		for range 10 {
			shuffled := shuffle(rng, objs)
			got, gotErrs := Build(shuffled)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: Config depends on input order:\n got %+v\nwant %+v", round, got, want)
			}
			if !sameErrors(gotErrs, wantErrs) {
				t.Fatalf("round %d: errors depend on input order:\n got %v\nwant %v", round, gotErrs, wantErrs)
			}
		}
	}
}

// TestValidityDependsOnAgeOrderNotOnClockValues shifts every timestamp by
// the same amount: only the order of ages matters.
func TestValidityDependsOnAgeOrderNotOnClockValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		objs := messyObjects(rng)
		want, wantErrs := Build(objs)
		shifted := shuffle(rng, objs)
		shift := func(m *metav1.ObjectMeta) {
			m.CreationTimestamp = metav1.NewTime(m.CreationTimestamp.Add(37 * time.Hour))
		}
		for i := range shifted.Pools {
			shift(&shifted.Pools[i].ObjectMeta)
		}
		for i := range shifted.BGPPeers {
			shift(&shifted.BGPPeers[i].ObjectMeta)
		}
		for i := range shifted.Communities {
			shift(&shifted.Communities[i].ObjectMeta)
		}
		got, gotErrs := Build(shifted)
		if !reflect.DeepEqual(got, want) || !sameErrors(gotErrs, wantErrs) {
			t.Fatalf("round %d: shifting every timestamp changed the result:\n got %v\nwant %v", round, gotErrs, wantErrs)
		}
	}
}

func sameErrors(a, b Errors) bool {
	key := func(es Errors) map[string]int {
		m := map[string]int{}
		for _, e := range es {
			m[e.Reason+" "+e.Error()]++
		}
		return m
	}
	return reflect.DeepEqual(key(a), key(b))
}

// messyObjects draws pools that often overlap, peers that often collide,
// communities that often share names and advertisements that often name
// missing objects. Names and ages are drawn so that ties happen.
func messyObjects(rng *rand.Rand) Objects {
	var o Objects
	for i := range 2 + rng.IntN(8) {
		base := rng.IntN(4) * 64
		size := []int{16, 64, 128}[rng.IntN(3)]
		if base+size > 256 {
			size = 256 - base
		}
		p := pool(fmt.Sprintf("pool-%d", i), fmt.Sprintf("192.0.2.%d-192.0.2.%d", base, base+size-1))
		if rng.IntN(3) == 0 {
			p.Spec.Addresses = append(p.Spec.Addresses, fmt.Sprintf("2001:db8::%x/124", rng.IntN(3)*16))
		}
		if rng.IntN(8) == 0 {
			p.Spec.Addresses = append(p.Spec.Addresses, "garbage")
		}
		o.Pools = append(o.Pools, aged(p, rng.IntN(4)))
	}
	for i := range rng.IntN(5) {
		p := peer(fmt.Sprintf("peer-%d", i), 64500, 64501, fmt.Sprintf("192.0.2.%d", 1+rng.IntN(2)))
		if rng.IntN(2) == 0 {
			p.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"zone": fmt.Sprint(rng.IntN(2))}}}
		}
		if rng.IntN(3) == 0 {
			p = withPassword(p, fmt.Sprintf("s-%d", rng.IntN(3)))
		}
		o.BGPPeers = append(o.BGPPeers, aged(p, rng.IntN(3)))
	}
	o.Secrets = map[string]corev1.Secret{"s-0": secret("s-0", "pw"), "s-1": secret("s-1", " ")}
	for i := range rng.IntN(4) {
		o.Communities = append(o.Communities, aged(v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("comm-%d", i)},
			Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: fmt.Sprintf("c%d", rng.IntN(3)), Value: fmt.Sprintf("65000:%d", i)}}}}, rng.IntN(2)))
	}
	for i := range rng.IntN(4) {
		o.L2Advertisements = append(o.L2Advertisements, l2(fmt.Sprintf("l2-%d", i), fmt.Sprintf("pool-%d", rng.IntN(10))))
		o.BGPAdvertisements = append(o.BGPAdvertisements, bgpAdv(fmt.Sprintf("bgp-%d", i), func(s *v1beta1.BGPAdvertisementSpec) {
			s.Communities = []string{fmt.Sprintf("c%d", rng.IntN(4))}
			s.Peers = []string{fmt.Sprintf("peer-%d", rng.IntN(5))}
		}))
	}
	return o
}

func shuffle(rng *rand.Rand, o Objects) Objects {
	s := Objects{Secrets: o.Secrets}
	s.Pools = perm(rng, o.Pools)
	s.BGPPeers = perm(rng, o.BGPPeers)
	s.Communities = perm(rng, o.Communities)
	s.L2Advertisements = perm(rng, o.L2Advertisements)
	s.BGPAdvertisements = perm(rng, o.BGPAdvertisements)
	return s
}

func perm[T any](rng *rand.Rand, xs []T) []T {
	out := make([]T, len(xs))
	for i, j := range rng.Perm(len(xs)) {
		out[i] = xs[j]
	}
	return out
}

func TestAPeerCarriesItsReceiveLimit(t *testing.T) {
	limited := peer("limited", 1, 2, "192.0.2.1")
	n := int32(200)
	limited.Spec.MaxReceivedPrefixes = &n
	cfg, _ := mustBuild(t, Objects{BGPPeers: []v1beta1.BGPPeer{limited, peer("default", 1, 2, "192.0.2.2")}})
	got := map[string]uint32{}
	for _, p := range cfg.Peers {
		got[p.Name] = p.MaxReceived
	}
	if got["limited"] != 200 || got["default"] != 0 {
		t.Errorf("receive limits %v, want limited=200 and default=0 (the speaker's default)", got)
	}
}
