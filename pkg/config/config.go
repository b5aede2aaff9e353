// Package config turns the set of Herald objects into one validated,
// immutable configuration. It is pure: objects in, a Config or a list of
// errors out, each naming the object and field at fault. Checks one object
// can do alone live in the CRD schema; the ones here need several objects
// (overlapping pools, references by name) or repeat the schema's checks
// defensively, since objects may come from files or an older schema.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/allocate"
)

// Objects is a snapshot of every Herald configuration object.
type Objects struct {
	Pools             []v1beta1.IPAddressPool
	L2Advertisements  []v1beta1.L2Advertisement
	BGPAdvertisements []v1beta1.BGPAdvertisement
	BGPPeers          []v1beta1.BGPPeer
	Communities       []v1beta1.Community
	BFDProfiles       []v1beta1.BFDProfile
}

// Object is any Herald configuration object.
type Object interface {
	metav1.Object
	runtime.Object
}

// Each calls f for every object of the snapshot with its kind.
func (o *Objects) Each(f func(kind string, obj Object)) {
	for i := range o.Pools {
		f(KindPool, &o.Pools[i])
	}
	for i := range o.L2Advertisements {
		f(KindL2Advertisement, &o.L2Advertisements[i])
	}
	for i := range o.BGPAdvertisements {
		f(KindBGPAdvertisement, &o.BGPAdvertisements[i])
	}
	for i := range o.BGPPeers {
		f(KindBGPPeer, &o.BGPPeers[i])
	}
	for i := range o.Communities {
		f(KindCommunity, &o.Communities[i])
	}
	for i := range o.BFDProfiles {
		f(KindBFDProfile, &o.BFDProfiles[i])
	}
}

// Config is the validated configuration. Treat it as immutable: a new
// snapshot builds a new Config.
type Config struct {
	// Pools, sorted by name.
	Pools             []allocate.Pool
	L2Advertisements  []L2Advertisement
	BGPAdvertisements []BGPAdvertisement
	// Peers, sorted by name.
	Peers []Peer
	// Warnings are problems that do not invalidate the configuration (a
	// localPref that eBGP peers will not receive).
	Warnings []*Error
}

// L2Advertisement announces the addresses of some pools by ARP/NDP.
type L2Advertisement struct {
	Name string
	// Pools are the names of the pools it covers, sorted.
	Pools []string
	// NodeSelectors select the announcing nodes; empty selects every node.
	NodeSelectors []labels.Selector
	// Interfaces to answer on; empty means the speaker's default choice.
	Interfaces []string
}

// BGPAdvertisement announces the addresses of some pools to BGP peers.
type BGPAdvertisement struct {
	Name  string
	Pools []string
	// NodeSelectors select the advertising nodes; empty selects every node.
	NodeSelectors []labels.Selector
	// Peers limits the sessions that get the routes; empty means all.
	Peers               []string
	AggregationLength   int // IPv4 prefix length of the advertised routes (32 by default)
	AggregationLengthV6 int // IPv6 prefix length (128 by default)
	LocalPref           uint32
	HasLocalPref        bool
	Communities         []uint32
	LargeCommunities    [][3]uint32
}

// Peer is a BGP session a speaker opens.
type Peer struct {
	Name            string
	MyASN, ASN      uint32
	Address         netip.Addr
	Port            uint16
	Source          netip.Addr // zero: the kernel's choice
	RouterID        netip.Addr // zero: the node's choice
	HoldTime        time.Duration
	KeepaliveTime   time.Duration
	ConnectTime     time.Duration
	PasswordSecret  *corev1.SecretReference // the glue reads the Secret; config never sees passwords
	EBGPMultiHop    bool
	GracefulRestart bool
	BFD             *BFDProfile
	NodeSelectors   []labels.Selector
}

// EBGP says whether the session crosses autonomous systems.
func (p Peer) EBGP() bool { return p.MyASN != p.ASN }

// BFDProfile holds BFD timers for peers that name it.
type BFDProfile struct {
	Name             string
	ReceiveInterval  time.Duration
	TransmitInterval time.Duration
	DetectMultiplier uint32
	Passive          bool
	MinimumTTL       uint32
}

// Error names the object and field at fault.
type Error struct {
	Kind, Name, Field string
	Message           string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s %q: %s", e.Kind, e.Name, e.Message)
	}
	return fmt.Sprintf("%s %q: %s: %s", e.Kind, e.Name, e.Field, e.Message)
}

// Errors is every problem Build found.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// For lists the errors about one object.
func (es Errors) For(kind, name string) Errors {
	var out Errors
	for _, e := range es {
		if e.Kind == kind && e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// Pool returns the named pool, or nil.
func (c *Config) Pool(name string) *allocate.Pool {
	i, ok := slices.BinarySearchFunc(c.Pools, name, func(p allocate.Pool, n string) int { return cmp.Compare(p.Name, n) })
	if !ok {
		return nil
	}
	return &c.Pools[i]
}

// PoolFor returns the pool holding addr, or nil. Pools never overlap in a
// valid Config, so the answer is unique.
func (c *Config) PoolFor(addr netip.Addr) *allocate.Pool {
	for i := range c.Pools {
		if c.Pools[i].Contains(addr) {
			return &c.Pools[i]
		}
	}
	return nil
}

// Kinds as they appear in errors and Events.
const (
	KindPool             = "IPAddressPool"
	KindL2Advertisement  = "L2Advertisement"
	KindBGPAdvertisement = "BGPAdvertisement"
	KindBGPPeer          = "BGPPeer"
	KindCommunity        = "Community"
	KindBFDProfile       = "BFDProfile"
)

// Default BGP timers, as MetalLB's.
const (
	DefaultHoldTime = 90 * time.Second
	DefaultPort     = 179
)

// Build validates objs and returns the configuration, or every error found.
func Build(objs Objects) (*Config, Errors) {
	b := &builder{cfg: &Config{}}
	b.pools(objs.Pools)
	communities := b.communities(objs.Communities)
	bfd := b.bfdProfiles(objs.BFDProfiles)
	b.peers(objs.BGPPeers, bfd)
	b.l2(objs.L2Advertisements, objs.Pools)
	b.bgp(objs.BGPAdvertisements, objs.Pools, communities)
	if len(b.errs) > 0 {
		return nil, b.errs
	}
	return b.cfg, nil
}

type builder struct {
	cfg  *Config
	errs Errors
}

func (b *builder) fail(kind, name, field, format string, args ...any) {
	b.errs = append(b.errs, &Error{Kind: kind, Name: name, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (b *builder) warn(kind, name, field, format string, args ...any) {
	b.cfg.Warnings = append(b.cfg.Warnings, &Error{Kind: kind, Name: name, Field: field, Message: fmt.Sprintf(format, args...)})
}

type placedRange struct {
	r     allocate.Range
	pool  string
	field string
}

func (b *builder) pools(objs []v1beta1.IPAddressPool) {
	var all []placedRange
	for _, o := range objs {
		p := allocate.Pool{Name: o.Name, AutoAssign: o.Spec.AutoAssign == nil || *o.Spec.AutoAssign, AvoidBuggyIPs: o.Spec.AvoidBuggyIPs}
		if len(o.Spec.Addresses) == 0 {
			b.fail(KindPool, o.Name, "spec.addresses", "must list at least one CIDR or range")
		}
		for i, s := range o.Spec.Addresses {
			field := fmt.Sprintf("spec.addresses[%d]", i)
			r, err := allocate.ParseRange(s)
			if err != nil {
				b.fail(KindPool, o.Name, field, "%v", err)
				continue
			}
			p.Ranges = append(p.Ranges, r)
			all = append(all, placedRange{r: r, pool: o.Name, field: field})
		}
		if sa := o.Spec.ServiceAllocation; sa != nil {
			p.Priority = sa.Priority
			p.Namespaces = slices.Clone(sa.Namespaces)
			p.NamespaceSelectors = b.selectors(KindPool, o.Name, "spec.serviceAllocation.namespaceSelectors", sa.NamespaceSelectors)
			p.ServiceSelectors = b.selectors(KindPool, o.Name, "spec.serviceAllocation.serviceSelectors", sa.ServiceSelectors)
		}
		b.cfg.Pools = append(b.cfg.Pools, p)
	}
	slices.SortFunc(b.cfg.Pools, func(a, b allocate.Pool) int { return cmp.Compare(a.Name, b.Name) })
	for i := 1; i < len(b.cfg.Pools); i++ {
		if b.cfg.Pools[i].Name == b.cfg.Pools[i-1].Name {
			b.fail(KindPool, b.cfg.Pools[i].Name, "metadata.name", "defined twice")
		}
	}
	// Overlaps, within a pool or across pools, would let one address be
	// handed out twice or make "which pool holds this address" ambiguous.
	slices.SortFunc(all, func(x, y placedRange) int { return x.r.First.Compare(y.r.First) })
	for i := 1; i < len(all); i++ {
		prev, cur := all[i-1], all[i]
		if prev.r.Last.Compare(cur.r.First) < 0 || prev.r.First.Is4() != cur.r.First.Is4() {
			continue
		}
		if prev.pool == cur.pool {
			b.fail(KindPool, cur.pool, cur.field, "%s overlaps %s of the same pool (%s)", cur.r, prev.r, prev.field)
			continue
		}
		b.fail(KindPool, cur.pool, cur.field, "%s overlaps %s of IPAddressPool %q", cur.r, prev.r, prev.pool)
		b.fail(KindPool, prev.pool, prev.field, "%s overlaps %s of IPAddressPool %q", prev.r, cur.r, cur.pool)
	}
}

func (b *builder) selectors(kind, name, field string, sels []metav1.LabelSelector) []labels.Selector {
	var out []labels.Selector
	for i := range sels {
		s, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err != nil {
			b.fail(kind, name, fmt.Sprintf("%s[%d]", field, i), "invalid label selector: %v", err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// poolNames resolves an advertisement's pool references: names and label
// selectors; neither given means every pool.
func (b *builder) poolNames(kind, name string, names []string, sels []metav1.LabelSelector, pools []v1beta1.IPAddressPool) []string {
	known := map[string]bool{}
	for _, p := range pools {
		known[p.Name] = true
	}
	set := map[string]bool{}
	for i, n := range names {
		if !known[n] {
			b.fail(kind, name, fmt.Sprintf("spec.ipAddressPools[%d]", i), "names IPAddressPool %q, which does not exist", n)
			continue
		}
		set[n] = true
	}
	selectors := b.selectors(kind, name, "spec.ipAddressPoolSelectors", sels)
	for _, p := range pools {
		if len(names) == 0 && len(sels) == 0 {
			set[p.Name] = true
			continue
		}
		for _, s := range selectors {
			if s.Matches(labels.Set(p.Labels)) {
				set[p.Name] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (b *builder) l2(objs []v1beta1.L2Advertisement, pools []v1beta1.IPAddressPool) {
	for _, o := range objs {
		b.cfg.L2Advertisements = append(b.cfg.L2Advertisements, L2Advertisement{
			Name:          o.Name,
			Pools:         b.poolNames(KindL2Advertisement, o.Name, o.Spec.IPAddressPools, o.Spec.IPAddressPoolSelectors, pools),
			NodeSelectors: b.selectors(KindL2Advertisement, o.Name, "spec.nodeSelectors", o.Spec.NodeSelectors),
			Interfaces:    slices.Clone(o.Spec.Interfaces),
		})
	}
	slices.SortFunc(b.cfg.L2Advertisements, func(x, y L2Advertisement) int { return cmp.Compare(x.Name, y.Name) })
}

func (b *builder) bgp(objs []v1beta1.BGPAdvertisement, pools []v1beta1.IPAddressPool, communities map[string]string) {
	for _, o := range objs {
		adv := BGPAdvertisement{
			Name:                o.Name,
			Pools:               b.poolNames(KindBGPAdvertisement, o.Name, o.Spec.IPAddressPools, o.Spec.IPAddressPoolSelectors, pools),
			NodeSelectors:       b.selectors(KindBGPAdvertisement, o.Name, "spec.nodeSelectors", o.Spec.NodeSelectors),
			Peers:               slices.Clone(o.Spec.Peers),
			AggregationLength:   32,
			AggregationLengthV6: 128,
		}
		if o.Spec.AggregationLength != nil {
			adv.AggregationLength = int(*o.Spec.AggregationLength)
		}
		if o.Spec.AggregationLengthV6 != nil {
			adv.AggregationLengthV6 = int(*o.Spec.AggregationLengthV6)
		}
		if adv.AggregationLength < 0 || adv.AggregationLength > 32 {
			b.fail(KindBGPAdvertisement, o.Name, "spec.aggregationLength", "%d is outside 0..32", adv.AggregationLength)
		}
		if adv.AggregationLengthV6 < 0 || adv.AggregationLengthV6 > 128 {
			b.fail(KindBGPAdvertisement, o.Name, "spec.aggregationLengthV6", "%d is outside 0..128", adv.AggregationLengthV6)
		}
		b.checkAggregation(o.Name, adv)
		if o.Spec.LocalPref != nil {
			adv.LocalPref, adv.HasLocalPref = *o.Spec.LocalPref, true
		}
		for i, c := range o.Spec.Communities {
			field := fmt.Sprintf("spec.communities[%d]", i)
			value := c
			if v, ok := communities[c]; ok {
				value = v
			} else if !strings.Contains(c, ":") {
				b.fail(KindBGPAdvertisement, o.Name, field, "names community %q, which no Community object defines", c)
				continue
			}
			std, large, err := ParseCommunity(value)
			if err != nil {
				b.fail(KindBGPAdvertisement, o.Name, field, "%v", err)
				continue
			}
			if large != nil {
				adv.LargeCommunities = append(adv.LargeCommunities, *large)
			} else {
				adv.Communities = append(adv.Communities, std)
			}
		}
		known := map[string]Peer{}
		for _, p := range b.cfg.Peers {
			known[p.Name] = p
		}
		for i, n := range adv.Peers {
			if _, ok := known[n]; !ok {
				b.fail(KindBGPAdvertisement, o.Name, fmt.Sprintf("spec.peers[%d]", i), "names BGPPeer %q, which does not exist", n)
			}
		}
		if adv.HasLocalPref {
			for _, p := range b.cfg.Peers {
				if p.EBGP() && (len(adv.Peers) == 0 || slices.Contains(adv.Peers, p.Name)) {
					b.warn(KindBGPAdvertisement, o.Name, "spec.localPref",
						"BGPPeer %q is eBGP (AS %d to AS %d); local preference is sent to iBGP peers only and is dropped for it", p.Name, p.MyASN, p.ASN)
				}
			}
		}
		b.cfg.BGPAdvertisements = append(b.cfg.BGPAdvertisements, adv)
	}
	slices.SortFunc(b.cfg.BGPAdvertisements, func(x, y BGPAdvertisement) int { return cmp.Compare(x.Name, y.Name) })
}

// checkAggregation rejects an aggregation length that would make a route
// cover addresses outside a pool: every aggregate block a range touches must
// lie inside the range, i.e. the range starts and ends on block boundaries.
func (b *builder) checkAggregation(name string, adv BGPAdvertisement) {
	for _, pn := range adv.Pools {
		p := b.cfg.Pool(pn)
		if p == nil {
			continue
		}
		for _, r := range p.Ranges {
			agg, field := adv.AggregationLength, "spec.aggregationLength"
			if r.First.Is6() {
				agg, field = adv.AggregationLengthV6, "spec.aggregationLengthV6"
			}
			first, err := r.First.Prefix(agg)
			if err != nil {
				continue // out-of-range lengths are reported on their own
			}
			last, _ := r.Last.Prefix(agg)
			if first.Addr() != r.First || lastAddr(last) != r.Last {
				b.fail(KindBGPAdvertisement, name, field,
					"/%d aggregates of IPAddressPool %q's %s would cover addresses outside the pool", agg, pn, r)
				return
			}
		}
	}
}

// lastAddr is the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// ParseCommunity parses a standard community "65000:100" or a large one
// "large:1:2:3".
func ParseCommunity(s string) (std uint32, large *[3]uint32, err error) {
	if rest, ok := strings.CutPrefix(s, "large:"); ok {
		parts := strings.Split(rest, ":")
		if len(parts) != 3 {
			return 0, nil, fmt.Errorf("large community %q: want large:ASN:N:N", s)
		}
		var v [3]uint32
		for i, p := range parts {
			n, err := strconv.ParseUint(p, 10, 32)
			if err != nil {
				return 0, nil, fmt.Errorf("large community %q: part %q is not a 32-bit number", s, p)
			}
			v[i] = uint32(n)
		}
		return 0, &v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, nil, fmt.Errorf("community %q: want ASN:N (65000:100) or large:ASN:N:N", s)
	}
	h, err1 := strconv.ParseUint(hi, 10, 16)
	l, err2 := strconv.ParseUint(lo, 10, 16)
	if err := errors.Join(err1, err2); err != nil {
		return 0, nil, fmt.Errorf("community %q: both halves must be numbers from 0 to 65535", s)
	}
	return uint32(h)<<16 | uint32(l), nil, nil
}

// communities maps every alias name to its value.
func (b *builder) communities(objs []v1beta1.Community) map[string]string {
	out := map[string]string{}
	owner := map[string]string{}
	for _, o := range objs {
		for i, c := range o.Spec.Communities {
			field := fmt.Sprintf("spec.communities[%d]", i)
			if prev, dup := owner[c.Name]; dup {
				b.fail(KindCommunity, o.Name, field+".name", "%q is also defined by Community %q", c.Name, prev)
				continue
			}
			if _, _, err := ParseCommunity(c.Value); err != nil {
				b.fail(KindCommunity, o.Name, field+".value", "%v", err)
				continue
			}
			owner[c.Name], out[c.Name] = o.Name, c.Value
		}
	}
	return out
}

func (b *builder) bfdProfiles(objs []v1beta1.BFDProfile) map[string]*BFDProfile {
	out := map[string]*BFDProfile{}
	for _, o := range objs {
		p := &BFDProfile{Name: o.Name, ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}
		if v := o.Spec.ReceiveInterval; v != nil {
			p.ReceiveInterval = time.Duration(*v) * time.Millisecond
		}
		if v := o.Spec.TransmitInterval; v != nil {
			p.TransmitInterval = time.Duration(*v) * time.Millisecond
		}
		if v := o.Spec.DetectMultiplier; v != nil {
			p.DetectMultiplier = *v
		}
		if v := o.Spec.PassiveMode; v != nil {
			p.Passive = *v
		}
		if v := o.Spec.MinimumTTL; v != nil {
			p.MinimumTTL = *v
		}
		if p.DetectMultiplier < 2 || p.DetectMultiplier > 255 {
			b.fail(KindBFDProfile, o.Name, "spec.detectMultiplier", "%d is outside 2..255", p.DetectMultiplier)
		}
		out[o.Name] = p
	}
	return out
}

func (b *builder) peers(objs []v1beta1.BGPPeer, bfd map[string]*BFDProfile) {
	type endpoint struct {
		addr netip.Addr
		port uint16
		sel  string
	}
	seen := map[endpoint]string{}
	for _, o := range objs {
		p := Peer{
			Name: o.Name, MyASN: o.Spec.MyASN, ASN: o.Spec.PeerASN, Port: o.Spec.PeerPort,
			HoldTime: DefaultHoldTime, PasswordSecret: o.Spec.PasswordSecret,
			EBGPMultiHop: o.Spec.EBGPMultiHop, GracefulRestart: o.Spec.EnableGracefulRestart,
			NodeSelectors: b.selectors(KindBGPPeer, o.Name, "spec.nodeSelectors", o.Spec.NodeSelectors),
		}
		if p.Port == 0 {
			p.Port = DefaultPort
		}
		var err error
		if p.Address, err = netip.ParseAddr(o.Spec.PeerAddress); err != nil {
			b.fail(KindBGPPeer, o.Name, "spec.peerAddress", "%q is not an IP address", o.Spec.PeerAddress)
		}
		if s := o.Spec.SourceAddress; s != "" {
			if p.Source, err = netip.ParseAddr(s); err != nil {
				b.fail(KindBGPPeer, o.Name, "spec.sourceAddress", "%q is not an IP address", s)
			} else if p.Address.IsValid() && p.Source.Is4() != p.Address.Is4() {
				b.fail(KindBGPPeer, o.Name, "spec.sourceAddress", "%s is not of the same family as peerAddress %s", p.Source, p.Address)
			}
		}
		if s := o.Spec.RouterID; s != "" {
			if p.RouterID, err = netip.ParseAddr(s); err != nil || !p.RouterID.Is4() {
				b.fail(KindBGPPeer, o.Name, "spec.routerID", "%q is not an IPv4 address", s)
			}
		}
		if p.MyASN == 0 {
			b.fail(KindBGPPeer, o.Name, "spec.myASN", "must be 1..4294967295")
		}
		if p.ASN == 0 {
			b.fail(KindBGPPeer, o.Name, "spec.peerASN", "must be 1..4294967295")
		}
		if o.Spec.HoldTime != nil {
			p.HoldTime = o.Spec.HoldTime.Duration
		}
		if o.Spec.KeepaliveTime != nil {
			p.KeepaliveTime = o.Spec.KeepaliveTime.Duration
		} else {
			p.KeepaliveTime = p.HoldTime / 3
		}
		if o.Spec.ConnectTime != nil {
			p.ConnectTime = o.Spec.ConnectTime.Duration
		}
		if p.HoldTime != 0 && p.HoldTime < 3*time.Second {
			b.fail(KindBGPPeer, o.Name, "spec.holdTime", "%s is below the BGP minimum of 3s (0 disables keepalives)", p.HoldTime)
		}
		if p.HoldTime != 0 && p.KeepaliveTime >= p.HoldTime {
			b.fail(KindBGPPeer, o.Name, "spec.keepaliveTime", "%s must be shorter than holdTime %s", p.KeepaliveTime, p.HoldTime)
		}
		if n := o.Spec.BFDProfile; n != "" {
			if p.BFD = bfd[n]; p.BFD == nil {
				b.fail(KindBGPPeer, o.Name, "spec.bfdProfile", "names BFDProfile %q, which does not exist", n)
			}
		}
		// Two peers to one router from the same nodes would open one session twice.
		ep := endpoint{addr: p.Address, port: p.Port, sel: fmt.Sprint(o.Spec.NodeSelectors)}
		if prev, dup := seen[ep]; dup && p.Address.IsValid() {
			b.fail(KindBGPPeer, o.Name, "spec.peerAddress", "%s port %d is already the address of BGPPeer %q for the same nodes", p.Address, p.Port, prev)
		} else {
			seen[ep] = o.Name
		}
		b.cfg.Peers = append(b.cfg.Peers, p)
	}
	slices.SortFunc(b.cfg.Peers, func(x, y Peer) int { return cmp.Compare(x.Name, y.Name) })
}

// ServiceCIDROverlaps reports, per pool, the service CIDRs its addresses
// overlap: a LoadBalancer address inside the cluster's service range would
// collide with ClusterIPs.
func (c *Config) ServiceCIDROverlaps(cidrs []netip.Prefix) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	for _, p := range c.Pools {
		for _, cidr := range cidrs {
			for _, r := range p.Ranges {
				if r.First.Is4() == cidr.Addr().Is4() && r.First.Compare(lastAddr(cidr)) <= 0 && cidr.Addr().Compare(r.Last) <= 0 {
					out[p.Name] = append(out[p.Name], cidr)
					break
				}
			}
		}
	}
	return out
}
