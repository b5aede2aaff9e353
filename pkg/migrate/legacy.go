package migrate

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

// legacyConfig is the configuration MetalLB read from its ConfigMap before
// version 0.13 (the last form of it, with BFD profiles).
type legacyConfig struct {
	Peers          []legacyPeer      `json:"peers"`
	BGPCommunities map[string]string `json:"bgp-communities"`
	Pools          []legacyPool      `json:"address-pools"`
	BFDProfiles    []legacyBFD       `json:"bfd-profiles"`
}

type legacyPeer struct {
	MyASN         uint32           `json:"my-asn"`
	ASN           uint32           `json:"peer-asn"`
	Addr          string           `json:"peer-address"`
	SrcAddr       string           `json:"source-address"`
	Port          uint16           `json:"peer-port"`
	HoldTime      string           `json:"hold-time"`
	KeepaliveTime string           `json:"keepalive-time"`
	RouterID      string           `json:"router-id"`
	NodeSelectors []legacySelector `json:"node-selectors"`
	Password      string           `json:"password"`
	BFDProfile    string           `json:"bfd-profile"`
	EBGPMultiHop  bool             `json:"ebgp-multihop"`
}

type legacySelector struct {
	MatchLabels      map[string]string `json:"match-labels"`
	MatchExpressions []struct {
		Key      string   `json:"key"`
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	} `json:"match-expressions"`
}

type legacyPool struct {
	Name              string                   `json:"name"`
	Protocol          string                   `json:"protocol"`
	Addresses         []string                 `json:"addresses"`
	AutoAssign        *bool                    `json:"auto-assign"`
	AvoidBuggyIPs     bool                     `json:"avoid-buggy-ips"`
	BGPAdvertisements []legacyBGPAdvertisement `json:"bgp-advertisements"`
}

type legacyBGPAdvertisement struct {
	AggregationLength   *int32   `json:"aggregation-length"`
	AggregationLengthV6 *int32   `json:"aggregation-length-v6"`
	LocalPref           *uint32  `json:"localpref"`
	Communities         []string `json:"communities"`
}

type legacyBFD struct {
	Name             string  `json:"name"`
	ReceiveInterval  *uint32 `json:"receive-interval"`
	TransmitInterval *uint32 `json:"transmit-interval"`
	DetectMultiplier *uint32 `json:"detect-multiplier"`
	EchoInterval     *uint32 `json:"echo-interval"`
	EchoMode         *bool   `json:"echo-mode"`
	PassiveMode      *bool   `json:"passive-mode"`
	MinimumTTL       *uint32 `json:"minimum-ttl"`
}

// legacyCommunityObject names the one Community object that holds the
// ConfigMap's bgp-communities (MetalLB's own converter did the same).
const legacyCommunityObject = "communities"

func (m *migration) legacyConfig(o *object) error {
	ref := o.ref()
	prefix := "data.config: "
	if o.bare {
		prefix = ""
	}
	j, err := yaml.YAMLToJSON(o.legacy)
	if err != nil {
		return fmt.Errorf("%s: %sinvalid YAML: %w", ref, prefix, err)
	}
	var cfg legacyConfig
	if err := m.decode(ref, prefix, j, &cfg); err != nil {
		return err
	}

	for i, b := range cfg.BFDProfiles {
		field := fmt.Sprintf("%sbfd-profiles[%d]", prefix, i)
		name := m.legacyName(ref, field+".name", b.Name, "BGP peers using it are rewritten")
		if name == "" {
			continue
		}
		m.bfdNames[b.Name] = name
		m.echo(ref, field+".echo-mode", field+".echo-interval", b.EchoMode, b.EchoInterval)
		m.addBFD(ref, m.meta(name, nil), v1beta1.BFDProfileSpec{
			ReceiveInterval: b.ReceiveInterval, TransmitInterval: b.TransmitInterval, DetectMultiplier: b.DetectMultiplier,
			PassiveMode: b.PassiveMode, MinimumTTL: b.MinimumTTL,
		})
	}

	if len(cfg.BGPCommunities) > 0 {
		var kept []v1beta1.CommunityAlias
		for _, name := range slices.Sorted(maps.Keys(cfg.BGPCommunities)) {
			field := prefix + "bgp-communities." + name
			if a, ok := m.alias(ref, field, field, v1beta1.CommunityAlias{Name: name, Value: cfg.BGPCommunities[name]}); ok {
				kept = append(kept, a)
			}
		}
		if len(kept) > 0 {
			m.addCommunity(ref, m.meta(legacyCommunityObject, nil), v1beta1.CommunitySpec{Communities: kept})
		}
	}

	taken := map[string]bool{}
	for i, p := range cfg.Peers {
		field := fmt.Sprintf("%speers[%d]", prefix, i)
		base := peerName(p.Addr)
		if base == "" {
			base = fmt.Sprintf("peer-%d", i+1)
		}
		name := base
		for n := 2; taken[name]; n++ {
			name = withSuffix(base, fmt.Sprintf("-%d", n))
		}
		taken[name] = true
		spec := v1beta1.BGPPeerSpec{
			MyASN: p.MyASN, PeerASN: p.ASN, PeerAddress: p.Addr, SourceAddress: p.SrcAddr, PeerPort: p.Port,
			RouterID: p.RouterID, EBGPMultiHop: p.EBGPMultiHop,
			HoldTime:      m.legacyDuration(ref, field+".hold-time", p.HoldTime),
			KeepaliveTime: m.legacyDuration(ref, field+".keepalive-time", p.KeepaliveTime),
		}
		if p.BFDProfile != "" {
			spec.BFDProfile = p.BFDProfile
			if n, ok := m.bfdNames[p.BFDProfile]; ok {
				spec.BFDProfile = n
			}
		}
		for _, s := range p.NodeSelectors {
			sel := metav1.LabelSelector{MatchLabels: s.MatchLabels}
			for _, e := range s.MatchExpressions {
				sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
					Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values,
				})
			}
			spec.NodeSelectors = append(spec.NodeSelectors, sel)
		}
		m.peerCommon(ref, "", name, &spec, p.Password, peerFields{
			holdTime: field + ".hold-time", keepaliveTime: field + ".keepalive-time", password: field + ".password", ebgpMultiHop: field + ".ebgp-multihop",
		})
		m.addPeer(ref, m.meta(name, nil), spec)
	}

	for i, p := range cfg.Pools {
		field := fmt.Sprintf("%saddress-pools[%d]", prefix, i)
		name := m.legacyName(ref, field+".name", p.Name, "Services that name it in the metallb.universe.tf/address-pool annotation must name the new one")
		if name == "" {
			continue
		}
		m.pool(ref, poolFields{addresses: field + ".addresses", protocol: field + ".protocol", advertisements: field + ".bgp-advertisements"}, m.meta(name, nil), p)
	}
	return nil
}

// legacyName makes a legacy name a valid object name, warning when it
// changes; consequence says who else must follow. "" means unusable.
func (m *migration) legacyName(ref, field, name, consequence string) string {
	n := objectName(name)
	switch {
	case name == "":
		m.warn(ref, field, "missing; the entry is not migrated")
	case n == "":
		m.warn(ref, field, "%q is not usable as an object name; the entry is not migrated", name)
	case n != name:
		m.warn(ref, field, "%q renamed %q, a valid object name; %s", name, n, consequence)
	}
	return n
}

// legacyDuration parses a legacy timer ("90s"); an unparsable one is
// dropped, leaving Herald's default.
func (m *migration) legacyDuration(ref, field, s string) *metav1.Duration {
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		m.warn(ref, field, "%q dropped, leaving Herald's default: not a duration", s)
		return nil
	}
	return &metav1.Duration{Duration: d}
}

// poolFields names a legacy pool's fields in the input's spelling.
type poolFields struct{ addresses, protocol, advertisements string }

// pool converts a legacy pool: the pool itself, and the advertisement its
// protocol implied (MetalLB announced every layer2 pool from every node and
// every bgp pool to every peer).
func (m *migration) pool(ref string, f poolFields, meta metav1.ObjectMeta, p legacyPool) {
	spec := v1beta1.IPAddressPoolSpec{AutoAssign: p.AutoAssign, AvoidBuggyIPs: p.AvoidBuggyIPs}
	if spec.Addresses = m.addresses(ref, f.addresses, p.Addresses); len(spec.Addresses) == 0 {
		m.warn(ref, f.addresses, "no address Herald can use; pool %q is not migrated", meta.Name)
		return
	}
	m.addPool(ref, meta, spec)
	pools := []string{meta.Name}
	switch p.Protocol {
	case "layer2":
		if len(p.BGPAdvertisements) > 0 {
			m.warn(ref, f.advertisements, "dropped: a layer2 pool is not announced over BGP (MetalLB refused this too)")
		}
		m.addL2(ref, m.meta(withSuffix(meta.Name, "-l2"), nil), v1beta1.L2AdvertisementSpec{IPAddressPools: pools})
	case "bgp":
		if len(p.BGPAdvertisements) == 0 {
			m.addBGP(ref, m.meta(withSuffix(meta.Name, "-bgp"), nil), v1beta1.BGPAdvertisementSpec{IPAddressPools: pools})
		}
		for i, a := range p.BGPAdvertisements {
			name := withSuffix(meta.Name, "-bgp")
			if i > 0 {
				name = withSuffix(meta.Name, fmt.Sprintf("-bgp-%d", i+1))
			}
			m.addBGP(ref, m.meta(name, nil), v1beta1.BGPAdvertisementSpec{
				IPAddressPools:      pools,
				AggregationLength:   a.AggregationLength,
				AggregationLengthV6: a.AggregationLengthV6,
				LocalPref:           a.LocalPref,
				Communities:         m.communityRefs(ref, fmt.Sprintf("%s[%d].communities", f.advertisements, i), a.Communities),
			})
		}
	default:
		m.warn(ref, f.protocol, "%q is neither layer2 nor bgp; pool %q is migrated without an advertisement, so its addresses are not announced until you add one", p.Protocol, meta.Name)
	}
}
