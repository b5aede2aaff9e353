package migrate

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

// metallbPeerSpec is MetalLB's BGPPeer spec (v1beta1 and v1beta2 read the
// same way): Herald's fields, which have MetalLB's names, plus the ones
// Herald does not offer, so each can be reported by name.
type metallbPeerSpec struct {
	v1beta1.BGPPeerSpec
	Password   string `json:"password"`
	DynamicASN string `json:"dynamicASN"`
	Interface  string `json:"interface"`
	VRF        string `json:"vrf"`
	DisableMP  bool   `json:"disableMP"`
	// DualStackAddressFamily needs no warning: true is what Herald always
	// does, and the difference from MetalLB's default is in the guide.
	DualStackAddressFamily bool `json:"dualStackAddressFamily"`
}

// metallbBFDSpec is MetalLB's BFDProfile spec: Herald's fields plus the echo
// mode Herald's BFD does not implement.
type metallbBFDSpec struct {
	v1beta1.BFDProfileSpec
	EchoMode     *bool   `json:"echoMode"`
	EchoInterval *uint32 `json:"echoInterval"`
}

// addressPoolSpec is the deprecated metallb.io AddressPool: the legacy
// pool, protocol and advertisements in one object, in camelCase.
type addressPoolSpec struct {
	Protocol          string   `json:"protocol"`
	Addresses         []string `json:"addresses"`
	AutoAssign        *bool    `json:"autoAssign"`
	AvoidBuggyIPs     bool     `json:"avoidBuggyIPs"`
	BGPAdvertisements []struct {
		AggregationLength   *int32   `json:"aggregationLength"`
		AggregationLengthV6 *int32   `json:"aggregationLengthV6"`
		LocalPref           uint32   `json:"localPref"`
		Communities         []string `json:"communities"`
	} `json:"bgpAdvertisements"`
}

func (m *migration) convert(o *object) error {
	ref := o.ref()
	meta := m.meta(o.Metadata.Name, o.Metadata.Labels)
	switch o.Kind {
	case kindIPAddressPool:
		var spec v1beta1.IPAddressPoolSpec
		if err := m.decode(ref, "spec.", o.Spec, &spec); err != nil {
			return err
		}
		if spec.Addresses = m.addresses(ref, "spec.addresses", spec.Addresses); len(spec.Addresses) == 0 {
			m.warn(ref, "", "skipped: no address Herald can use")
			return nil
		}
		m.addPool(ref, meta, spec)

	case kindAddressPool:
		var spec addressPoolSpec
		if err := m.decode(ref, "spec.", o.Spec, &spec); err != nil {
			return err
		}
		p := legacyPool{Protocol: spec.Protocol, Addresses: spec.Addresses, AutoAssign: spec.AutoAssign, AvoidBuggyIPs: spec.AvoidBuggyIPs}
		for _, a := range spec.BGPAdvertisements {
			la := legacyBGPAdvertisement{AggregationLength: a.AggregationLength, AggregationLengthV6: a.AggregationLengthV6, Communities: a.Communities}
			if a.LocalPref != 0 { // MetalLB's "unset"
				la.LocalPref = new(a.LocalPref)
			}
			p.BGPAdvertisements = append(p.BGPAdvertisements, la)
		}
		m.pool(ref, poolFields{addresses: "spec.addresses", protocol: "spec.protocol", advertisements: "spec.bgpAdvertisements"}, meta, p)

	case kindL2Advertisement:
		var spec v1beta1.L2AdvertisementSpec
		if err := m.decode(ref, "spec.", o.Spec, &spec); err != nil {
			return err
		}
		m.addL2(ref, meta, spec)

	case kindBGPAdvertisement:
		var spec v1beta1.BGPAdvertisementSpec
		if err := m.decode(ref, "spec.", o.Spec, &spec); err != nil {
			return err
		}
		// MetalLB's localPref is a plain number where 0 means unset; Herald
		// would send an explicit LOCAL_PREF of 0.
		if spec.LocalPref != nil && *spec.LocalPref == 0 {
			spec.LocalPref = nil
		}
		spec.Communities = m.communityRefs(ref, "spec.communities", spec.Communities)
		m.addBGP(ref, meta, spec)

	case kindBGPPeer:
		var spec metallbPeerSpec
		if err := m.decode(ref, "spec.", o.Spec, &spec); err != nil {
			return err
		}
		if !m.peerExtras(ref, &spec) {
			return nil
		}
		p := spec.BGPPeerSpec
		if p.PasswordSecret != nil && p.PasswordSecret.Name == "" {
			p.PasswordSecret = nil // MetalLB's zero value, "passwordSecret: {}"
		}
		m.peerCommon(ref, o.Metadata.Namespace, o.Metadata.Name, &p, spec.Password, peerFields{
			holdTime: "spec.holdTime", keepaliveTime: "spec.keepaliveTime", connectTime: "spec.connectTime",
			password: "spec.password", passwordSecret: "spec.passwordSecret", ebgpMultiHop: "spec.ebgpMultiHop",
		})
		m.addPeer(ref, meta, p)

	case kindCommunity:
		var spec v1beta1.CommunitySpec
		if err := m.decode(ref, "spec.", o.Spec, &spec); err != nil {
			return err
		}
		spec.Communities = m.aliasList(ref, "spec.communities", spec.Communities)
		m.addCommunity(ref, meta, spec)

	case kindBFDProfile:
		var spec metallbBFDSpec
		if err := m.decode(ref, "spec.", o.Spec, &spec); err != nil {
			return err
		}
		m.echo(ref, "spec.echoMode", "spec.echoInterval", spec.EchoMode, spec.EchoInterval)
		m.addBFD(ref, meta, spec.BFDProfileSpec)
	}
	return nil
}

// peerExtras handles the MetalLB BGPPeer settings Herald does not have. It
// returns false when the peer cannot be migrated at all.
func (m *migration) peerExtras(ref string, s *metallbPeerSpec) bool {
	if s.Interface != "" {
		m.warn(ref, "spec.interface", "%q asks for unnumbered BGP over an interface, which Herald does not support; the peer is not migrated: create a BGPPeer with the router's address in spec.peerAddress", s.Interface)
		return false
	}
	switch s.DynamicASN {
	case "":
	case "internal":
		if s.PeerASN == 0 {
			s.PeerASN = s.MyASN
		}
		m.warn(ref, "spec.dynamicASN", "\"internal\" carried as peerASN %d (the router must be in our own AS, which is what MetalLB enforced)", s.PeerASN)
	default:
		m.warn(ref, "spec.dynamicASN", "%q accepts any AS but our own, which Herald cannot express; the peer is not migrated: create a BGPPeer with the router's AS in spec.peerASN", s.DynamicASN)
		return false
	}
	if s.VRF != "" {
		m.warn(ref, "spec.vrf", "%q dropped: Herald has no VRF support and opens the session in the node's default routing table; check the router is reachable there", s.VRF)
	}
	if s.DisableMP {
		m.warn(ref, "spec.disableMP", "dropped: Herald always carries both address families over one multiprotocol session")
	}
	return true
}

// peerFields names a peer's fields in the input's spelling, for warnings.
type peerFields struct {
	holdTime, keepaliveTime, connectTime, password, passwordSecret, ebgpMultiHop string
}

// peerCommon applies what every migrated peer needs, from the CRDs and from
// the legacy ConfigMap alike: whole-second timers, the password moved into a
// Secret reference, and no multi-hop flag on an iBGP session.
func (m *migration) peerCommon(ref, namespace, name string, p *v1beta1.BGPPeerSpec, password string, f peerFields) {
	p.HoldTime = m.seconds(ref, f.holdTime, p.HoldTime)
	p.KeepaliveTime = m.seconds(ref, f.keepaliveTime, p.KeepaliveTime)
	p.ConnectTime = m.seconds(ref, f.connectTime, p.ConnectTime)
	switch {
	case password != "" && p.PasswordSecret != nil:
		m.warn(ref, f.password, "dropped: passwordSecret is set as well and is used")
	case password != "":
		secret := withSuffix(name, "-bgp-password")
		p.PasswordSecret = &corev1.SecretReference{Name: secret}
		m.warn(ref, f.password, "Herald does not take BGP passwords in clear text; passwordSecret names the Secret %q instead, which you must create before applying: "+
			"kubectl -n %s create secret generic %s --type=kubernetes.io/basic-auth --from-literal=password='<the password>'", secret, m.ns, secret)
	}
	if s := p.PasswordSecret; s != nil && password == "" {
		from := s.Namespace
		if from == "" {
			from = namespace
		}
		if from != m.ns {
			m.warn(ref, f.passwordSecret, "Herald reads the Secret from its own namespace: copy Secret %s/%s to namespace %s before applying", from, s.Name, m.ns)
		}
		p.PasswordSecret = &corev1.SecretReference{Name: s.Name}
	}
	if p.EBGPMultiHop && p.MyASN == p.PeerASN {
		m.warn(ref, f.ebgpMultiHop, "dropped: multi-hop applies to eBGP sessions only, and myASN equals peerASN (%d)", p.MyASN)
		p.EBGPMultiHop = false
	}
}

// seconds truncates a BGP timer to whole seconds, as MetalLB did when it
// programmed the session; Herald's schema accepts whole seconds only.
func (m *migration) seconds(ref, field string, d *metav1.Duration) *metav1.Duration {
	if d == nil {
		return nil
	}
	whole := d.Duration.Truncate(time.Second)
	if whole != d.Duration {
		m.warn(ref, field, "%s is not a whole number of seconds; written as %s", d.Duration, whole)
	}
	return &metav1.Duration{Duration: whole}
}

// echo reports MetalLB's BFD echo mode, which Herald's BFD lacks.
func (m *migration) echo(ref, modeField, intervalField string, mode *bool, interval *uint32) {
	on := mode != nil && *mode
	if on {
		m.warn(ref, modeField, "dropped: Herald's BFD has no echo mode; sessions run in asynchronous mode with the profile's intervals")
	}
	if interval != nil {
		if on {
			m.warn(ref, intervalField, "dropped (%d): Herald's BFD has no echo mode", *interval)
		} else {
			m.warn(ref, intervalField, "dropped (%d): it had no effect with echo mode off, and Herald's BFD has no echo mode", *interval)
		}
	}
}

// aliasList checks a Community object's aliases.
func (m *migration) aliasList(ref, field string, in []v1beta1.CommunityAlias) []v1beta1.CommunityAlias {
	var out []v1beta1.CommunityAlias
	for i, c := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		if a, ok := m.alias(ref, f+".name", f+".value", c); ok {
			out = append(out, a)
		}
	}
	return out
}

// alias checks one community alias: a name Herald's advertisements cannot
// refer to is renamed (and the advertisements follow), a value Herald
// cannot parse is dropped.
func (m *migration) alias(ref, nameField, valueField string, c v1beta1.CommunityAlias) (v1beta1.CommunityAlias, bool) {
	if _, _, err := config.ParseCommunity(c.Value); err != nil {
		m.warn(ref, valueField, "dropped: %v", err)
		return c, false
	}
	n := aliasName(c.Name)
	if n == "" {
		m.warn(ref, nameField, "%q dropped: no usable name is left after lowercasing and removing characters other than letters, digits and '-'", c.Name)
		return c, false
	}
	if n != c.Name {
		m.aliases[c.Name] = n
		m.warn(ref, nameField, "%q renamed %q: Herald's community names are lowercase letters, digits and '-', starting with a letter; the advertisements using it are rewritten", c.Name, n)
	}
	return v1beta1.CommunityAlias{Name: n, Value: c.Value}, true
}
