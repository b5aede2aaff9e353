package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

func pool(name string, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func peer(name string, my, asn uint32, addr string) v1beta1.BGPPeer {
	return v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.BGPPeerSpec{MyASN: my, PeerASN: asn, PeerAddress: addr}}
}

func bgpAdv(name string, mutate func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
	a := v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if mutate != nil {
		mutate(&a.Spec)
	}
	return a
}

func TestBuildReportsEachProblemWithTheObjectAndField(t *testing.T) {
	for _, tc := range []struct {
		name string
		objs Objects
		want string // substring of the error: kind, name, field, reason
	}{
		{"unparsable address", Objects{Pools: []v1beta1.IPAddressPool{pool("p", "192.0.2.0/33")}}, `IPAddressPool "p": spec.addresses[0]`},
		{"empty pool", Objects{Pools: []v1beta1.IPAddressPool{pool("p")}}, `IPAddressPool "p": spec.addresses: must list`},
		{"overlap across pools names the older pool", Objects{Pools: []v1beta1.IPAddressPool{pool("a", "192.0.2.0/24"), pool("b", "192.0.2.128-192.0.2.130")}}, `IPAddressPool "b": spec.addresses[0]: 192.0.2.128-192.0.2.130 overlaps 192.0.2.0/24 of the older IPAddressPool "a"`},
		{"bad namespace selector", Objects{Pools: []v1beta1.IPAddressPool{func() v1beta1.IPAddressPool {
			p := pool("p", "192.0.2.0/24")
			p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}}}
			return p
		}()}}, `spec.serviceAllocation.namespaceSelectors[0]`},
		{"l2 advertisement names an unknown pool", Objects{L2Advertisements: []v1beta1.L2Advertisement{{ObjectMeta: metav1.ObjectMeta{Name: "l2"}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"nope"}}}}}, `L2Advertisement "l2": spec.ipAddressPools[0]: names IPAddressPool "nope"`},
		{"bgp advertisement names an unknown community", Objects{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"gold"} })}}, `spec.communities[0]: names community "gold"`},
		{"bad literal community", Objects{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"70000:1"} })}}, `spec.communities[0]: community "70000:1"`},
		{"bgp advertisement names an unknown peer", Objects{BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"ghost"} })}}, `spec.peers[0]: names BGPPeer "ghost"`},
		{"aggregation wider than the pool", Objects{Pools: []v1beta1.IPAddressPool{pool("p", "192.0.2.0/26")}, BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = new(int32(24)) })}}, `spec.aggregationLength: /24 aggregates`},
		{"aggregation of an unaligned range", Objects{Pools: []v1beta1.IPAddressPool{pool("p", "2001:db8::10-2001:db8::1f")}, BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLengthV6 = new(int32(120)) })}}, `spec.aggregationLengthV6`},
		{"duplicate community alias", Objects{Communities: []v1beta1.Community{
			{ObjectMeta: metav1.ObjectMeta{Name: "c1"}, Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "gold", Value: "65000:1"}}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "c2"}, Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "gold", Value: "65000:2"}}}},
		}}, `Community "c2": spec.communities[0].name: "gold" is already defined by the older Community "c1"`},
		{"peer address not an IP", Objects{BGPPeers: []v1beta1.BGPPeer{peer("r", 1, 2, "router.example")}}, `BGPPeer "r": spec.peerAddress`},
		{"source of another family", Objects{BGPPeers: []v1beta1.BGPPeer{func() v1beta1.BGPPeer {
			p := peer("r", 1, 2, "192.0.2.1")
			p.Spec.SourceAddress = "2001:db8::1"
			return p
		}()}}, `spec.sourceAddress: 2001:db8::1 is not of the same family`},
		{"hold time below 3s", Objects{BGPPeers: []v1beta1.BGPPeer{func() v1beta1.BGPPeer {
			p := peer("r", 1, 2, "192.0.2.1")
			p.Spec.HoldTime = &metav1.Duration{Duration: time.Second}
			return p
		}()}}, `spec.holdTime`},
		{"keepalive not below hold time", Objects{BGPPeers: []v1beta1.BGPPeer{func() v1beta1.BGPPeer {
			p := peer("r", 1, 2, "192.0.2.1")
			p.Spec.HoldTime = &metav1.Duration{Duration: 9 * time.Second}
			p.Spec.KeepaliveTime = &metav1.Duration{Duration: 9 * time.Second}
			return p
		}()}}, `spec.keepaliveTime`},
		{"unknown bfd profile", Objects{BGPPeers: []v1beta1.BGPPeer{func() v1beta1.BGPPeer {
			p := peer("r", 1, 2, "192.0.2.1")
			p.Spec.BFDProfile = "fast"
			return p
		}()}}, `spec.bfdProfile: names BFDProfile "fast"`},
		{"duplicate peer", Objects{BGPPeers: []v1beta1.BGPPeer{peer("r1", 1, 2, "192.0.2.1"), peer("r2", 1, 2, "192.0.2.1")}}, `already the address of the older BGPPeer "r1"`},
		{"zero ASN", Objects{BGPPeers: []v1beta1.BGPPeer{peer("r", 0, 2, "192.0.2.1")}}, `spec.myASN`},
		{"bfd multiplier out of range", Objects{BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: v1beta1.BFDProfileSpec{DetectMultiplier: new(uint32(1))}}}}, `BFDProfile "f": spec.detectMultiplier`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, errs := Build(tc.objs)
			if errs == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			if cfg == nil {
				t.Fatal("Build returned no Config: it must never fail as a whole")
			}
			if v := cfg.Validity(errs[0].Kind, errs[0].Name); v.Valid || v.Reason == "" || v.Message == "" {
				t.Errorf("%s %s reported %+v, want invalid with a reason and message", errs[0].Kind, errs[0].Name, v)
			}
			if !strings.Contains(errs.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", errs.Error(), tc.want)
			}
		})
	}
}

func TestBuildResolvesReferencesAndDefaults(t *testing.T) {
	labeled := pool("gold", "198.51.100.0/24")
	labeled.Labels = map[string]string{"tier": "gold"}
	off := pool("manual", "203.0.113.0/24")
	off.Spec.AutoAssign = new(false)
	p := peer("frr", 64501, 64500, "192.0.2.1")
	p.Spec.BFDProfile = "fast"
	p.Spec.PasswordSecret = &corev1.SecretReference{Name: "bgp-md5"}
	cfg, errs := Build(Objects{
		Secrets:     map[string]corev1.Secret{"bgp-md5": {ObjectMeta: metav1.ObjectMeta{Name: "bgp-md5"}, Data: map[string][]byte{"password": []byte("s3cret")}}},
		Pools:       []v1beta1.IPAddressPool{pool("dual", "192.0.2.0/24", "2001:db8::/64"), labeled, off},
		BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Spec: v1beta1.BFDProfileSpec{ReceiveInterval: new(uint32(100))}}},
		BGPPeers:    []v1beta1.BGPPeer{p},
		Communities: []v1beta1.Community{{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "no-export", Value: "65535:65281"}, {Name: "big", Value: "large:64500:1:2"}}}}},
		L2Advertisements: []v1beta1.L2Advertisement{
			{ObjectMeta: metav1.ObjectMeta{Name: "all"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "by-label"}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPoolSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "gold"}}}}},
		},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) {
			s.Communities = []string{"no-export", "big", "65000:7"}
			s.LocalPref = new(uint32(200))
		})},
	})
	if errs != nil {
		t.Fatal(errs)
	}
	if got := cfg.L2Advertisements[0].Pools; strings.Join(got, ",") != "dual,gold,manual" {
		t.Errorf("advertisement without pools covers %v, want every pool", got)
	}
	if got := cfg.L2Advertisements[1].Pools; strings.Join(got, ",") != "gold" {
		t.Errorf("selector resolved to %v", got)
	}
	if !cfg.Pool("dual").AutoAssign || cfg.Pool("manual").AutoAssign {
		t.Error("autoAssign defaults to true and honours false")
	}
	if cfg.PoolFor(netipMust("2001:db8::42")).Name != "dual" || cfg.PoolFor(netipMust("10.0.0.1")) != nil {
		t.Error("PoolFor finds the pool holding an address, and none for foreign ones")
	}
	pr := cfg.Peers[0]
	if pr.Password != "s3cret" {
		t.Errorf("peer password %q, want the Secret's", pr.Password)
	}
	if pr.Port != 179 || pr.HoldTime != 90*time.Second || pr.KeepaliveTime != 30*time.Second {
		t.Errorf("peer defaults: port %d hold %s keepalive %s", pr.Port, pr.HoldTime, pr.KeepaliveTime)
	}
	if pr.BFD == nil || pr.BFD.ReceiveInterval != 100*time.Millisecond || pr.BFD.TransmitInterval != 300*time.Millisecond || pr.BFD.DetectMultiplier != 3 {
		t.Errorf("bfd profile %+v", pr.BFD)
	}
	adv := cfg.BGPAdvertisements[0]
	if len(adv.Communities) != 2 || len(adv.LargeCommunities) != 1 || adv.LargeCommunities[0] != [3]uint32{64500, 1, 2} {
		t.Errorf("communities %v large %v", adv.Communities, adv.LargeCommunities)
	}
	if adv.AggregationLength != 32 || adv.AggregationLengthV6 != 128 {
		t.Errorf("aggregation defaults %d/%d", adv.AggregationLength, adv.AggregationLengthV6)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), `BGPPeer "frr" is eBGP`) {
		t.Errorf("localPref toward an eBGP peer must warn: %v", cfg.Warnings)
	}
}

func TestServiceCIDROverlaps(t *testing.T) {
	cfg, errs := Build(Objects{Pools: []v1beta1.IPAddressPool{pool("in", "10.96.0.0/28"), pool("out", "192.0.2.0/24", "fd00:10:96::10-fd00:10:96::20")}})
	if errs != nil {
		t.Fatal(errs)
	}
	got := cfg.ServiceCIDROverlaps([]netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("fd00:10:96::/112")})
	if len(got["in"]) != 1 || len(got["out"]) != 1 || got["out"][0].Addr().Is4() {
		t.Errorf("overlaps %v", got)
	}
}

func TestParseCommunity(t *testing.T) {
	for s, ok := range map[string]bool{"65000:100": true, "0:0": true, "65535:65535": true, "65536:1": false, "1:-1": false,
		"large:1:2:3": true, "large:4294967295:0:1": true, "large:1:2": false, "large:1:2:4294967296": false, "abc": false} {
		_, _, err := ParseCommunity(s)
		if (err == nil) != ok {
			t.Errorf("ParseCommunity(%q) error %v, want ok=%v", s, err, ok)
		}
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
