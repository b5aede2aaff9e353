// Package config turns the set of Herald objects into one immutable
// configuration. It is pure: objects in, a Config and a list of errors out,
// each naming the object and field at fault. Checks one object can do alone
// live in the CRD schema; the ones here need several objects (overlapping
// pools, references by name, duplicate peers) or repeat the schema's checks
// defensively, since objects may come from files or an older schema.
//
// # Validity is per object, never as a whole
//
// Build never fails as a whole: the Config always holds everything valid,
// and Config.Validity says, per object, whether it is in force and why not.
// Who loses a conflict is decided from the objects alone — the older
// creationTimestamp wins, then the lower name — never from input order or
// process memory, so every process derives the same Config from the same
// objects. The unit disabled is the smallest that loses the check:
//
//   - IPAddressPool: an invalid field (bad address, bad selector, no
//     addresses) or an overlap with an older pool freezes the pool
//     (allocate.Pool.Frozen): it gives no new addresses but stays in
//     Config.Pools, so the addresses Services hold from it stay held and
//     announced. A frozen pool with a bad selector admits every Service for
//     those held addresses (a bad selector never makes a held address
//     stale). Two entries of one pool that overlap are only a warning: the
//     allocator works on their union.
//   - L2Advertisement, BGPAdvertisement: an invalid field, or a community
//     name no Community defines, disables the advertisement (routes with
//     fewer communities than asked for could travel past the routers'
//     policy). A pool or BGPPeer name that does not exist drops just that
//     reference: the advertisement keeps covering the other pools (naming
//     only missing pools covers none, never "every pool") and a missing peer
//     name matches no session (never "every peer").
//   - BGPPeer: an invalid field, a missing password Secret, or a bad
//     password (no key "password", empty, only whitespace, over 80 bytes)
//     disables the peer: it opens no session, never an unauthenticated one
//     in place of an authenticated one. A peer with the address and port of
//     an older peer in force, for some of the same nodes, is disabled
//     (DuplicatePeer). A missing or invalid BFD profile drops just the
//     reference: the session runs without BFD.
//   - Community: an entry whose name an older Community already defines, or
//     whose value is invalid, is ignored; the object's other entries stay in
//     force.
//   - BFDProfile: an invalid field disables the profile.
//
// An object that is in force without one of its references still reports
// Valid false (reason MissingReference), so the mistake is visible.
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
	// Secrets are the Secrets of Herald's namespace that BGPPeers name in
	// spec.passwordSecret, by name (others may be present; they are
	// ignored). A peer naming another namespace finds none. Nil means the
	// caller does not read Secrets (the controller never does): passwords
	// are then not checked and Peer.Password stays empty; a process that
	// opens sessions must pass them (an empty map when none exist).
	Secrets map[string]corev1.Secret
}

// Object is any Herald configuration object.
type Object interface {
	metav1.Object
	runtime.Object
}

// Each calls f for every configuration object of the snapshot with its
// kind (Secrets are not configuration objects and are skipped).
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

// Config is the configuration in force. Treat it as immutable: a new
// snapshot builds a new Config.
type Config struct {
	// Pools, sorted by name, frozen ones included (see allocate.Pool.Frozen).
	Pools []allocate.Pool
	// L2Advertisements and BGPAdvertisements in force, sorted by name.
	L2Advertisements  []L2Advertisement
	BGPAdvertisements []BGPAdvertisement
	// Peers in force, sorted by name; a disabled peer is absent.
	Peers []Peer
	// Warnings are problems that leave the object in force (a localPref
	// that eBGP peers will not receive).
	Warnings []*Error

	validity map[string]Validity
	byAge    []int // indexes of Pools, oldest first
}

// Validity says whether one object is in force.
type Validity struct {
	// Valid is true when the object is in force as written.
	Valid bool
	// Reason is v1beta1.ReasonValid or one of the other v1beta1.Reason*
	// constants; empty for an object Build did not see.
	Reason string
	// Message says why, naming the other object; at most MaxMessage bytes.
	Message string
}

// MaxMessage bounds Validity messages.
const MaxMessage = 256

// Validity reports whether the object of kind and name is in force. An
// object not in the snapshot gets the zero Validity.
func (c *Config) Validity(kind, name string) Validity {
	return c.validity[kind+"/"+name]
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
	// Peers limits the sessions that get the routes; empty means all. A
	// name that matches no peer in force matches nothing.
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
	Name          string
	MyASN, ASN    uint32
	Address       netip.Addr
	Port          uint16
	Source        netip.Addr // zero: the kernel's choice
	RouterID      netip.Addr // zero: the node's choice
	HoldTime      time.Duration
	KeepaliveTime time.Duration
	ConnectTime   time.Duration
	// PasswordSecret is the Secret Password was read from, nil for none.
	PasswordSecret *corev1.SecretReference
	// Password is the TCP MD5 password (RFC 2385), empty for none. Build
	// checked it: a peer whose Secret is missing or whose password is
	// unusable is disabled, never handed over with an empty Password.
	Password        string
	EBGPMultiHop    bool
	GracefulRestart bool
	// MaxReceived bounds the paths per family the router may send; 0 =
	// the speaker's default.
	MaxReceived   uint32
	BFD           *BFDProfile
	NodeSelectors []labels.Selector
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
	// Reason is one of the v1beta1.Reason* constants.
	Reason  string
	Message string
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

// PoolFor returns the pool holding addr, or nil. Where pools overlap, the
// oldest pool containing addr answers (the winner of the overlap), so the
// answer is unique and the same in every process.
func (c *Config) PoolFor(addr netip.Addr) *allocate.Pool {
	for _, i := range c.byAge {
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

// MaxPasswordBytes is the longest TCP MD5 password the kernel accepts
// (TCP_MD5SIG_MAXKEYLEN).
const MaxPasswordBytes = 80

// Build derives the configuration in force from objs. It never fails as a
// whole: the Config is never nil and holds everything valid; Errors lists
// every problem found, each naming the object (see the package doc for what
// each problem disables).
func Build(objs Objects) (*Config, Errors) {
	b := &builder{cfg: &Config{}, out: map[string]bool{}}
	pools := b.pools(byAge(objs.Pools))
	communities := b.communities(byAge(objs.Communities))
	bfd := b.bfdProfiles(byAge(objs.BFDProfiles))
	b.peers(byAge(objs.BGPPeers), bfd, objs.Secrets)
	b.l2(byAge(objs.L2Advertisements), pools)
	b.bgp(byAge(objs.BGPAdvertisements), pools, communities, objs.BGPPeers)
	b.cfg.validity = map[string]Validity{}
	objs.Each(func(kind string, o Object) {
		b.cfg.validity[kind+"/"+o.GetName()] = validityOf(b.errs.For(kind, o.GetName()))
	})
	return b.cfg, b.errs
}

func validityOf(errs Errors) Validity {
	if len(errs) == 0 {
		return Validity{Valid: true, Reason: v1beta1.ReasonValid, Message: "in force"}
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Message
		if e.Field != "" {
			msgs[i] = e.Field + ": " + e.Message
		}
	}
	return Validity{Reason: errs[0].Reason, Message: Bound(strings.Join(msgs, "; "), MaxMessage)}
}

// Bound cuts s to at most n bytes, on a rune boundary, marking the cut
// with "…".
func Bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// byAge returns the objects oldest first: creationTimestamp, then name, then
// UID. It sorts a copy.
func byAge[T any, PT interface {
	*T
	metav1.Object
}](objs []T) []T {
	out := slices.Clone(objs)
	slices.SortStableFunc(out, func(x, y T) int {
		a, b := PT(&x), PT(&y)
		ta, tb := a.GetCreationTimestamp().Time, b.GetCreationTimestamp().Time
		if c := ta.Compare(tb); c != 0 {
			return c
		}
		if c := cmp.Compare(a.GetName(), b.GetName()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetUID(), b.GetUID())
	})
	return out
}

type builder struct {
	cfg  *Config
	errs Errors
	// out marks objects that are not in force, by kind/name.
	out map[string]bool
}

func (b *builder) fail(kind, name, field, reason, format string, args ...any) {
	b.errs = append(b.errs, &Error{Kind: kind, Name: name, Field: field, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// disable records a problem that takes the object out of force.
func (b *builder) disable(kind, name, field, reason, format string, args ...any) {
	b.fail(kind, name, field, reason, format, args...)
	b.out[kind+"/"+name] = true
}

func (b *builder) disabled(kind, name string) bool { return b.out[kind+"/"+name] }

func (b *builder) warn(kind, name, field, format string, args ...any) {
	b.cfg.Warnings = append(b.cfg.Warnings, &Error{Kind: kind, Name: name, Field: field, Message: fmt.Sprintf(format, args...)})
}

type placedRange struct {
	r     allocate.Range
	pool  int // age rank of the pool
	field string
}

// pools builds every pool, frozen or not, and returns their labels by name
// for the advertisements' selectors.
func (b *builder) pools(objs []v1beta1.IPAddressPool) map[string]labels.Set {
	var all []placedRange
	var list []allocate.Pool
	known := map[string]labels.Set{}
	for _, o := range objs {
		if _, dup := known[o.Name]; dup {
			b.fail(KindPool, o.Name, "metadata.name", v1beta1.ReasonDuplicateName, "defined twice; the older definition is in force")
			continue
		}
		known[o.Name] = labels.Set(o.Labels)
		rank := len(list)
		p := allocate.Pool{Name: o.Name, AutoAssign: o.Spec.AutoAssign == nil || *o.Spec.AutoAssign, AvoidBuggyIPs: o.Spec.AvoidBuggyIPs}
		if len(o.Spec.Addresses) == 0 {
			b.disable(KindPool, o.Name, "spec.addresses", v1beta1.ReasonInvalidField, "must list at least one CIDR or range")
		}
		var own []placedRange
		for i, s := range o.Spec.Addresses {
			field := fmt.Sprintf("spec.addresses[%d]", i)
			r, err := allocate.ParseRange(s)
			if err != nil {
				b.disable(KindPool, o.Name, field, v1beta1.ReasonInvalidField, "%v", err)
				continue
			}
			p.Ranges = append(p.Ranges, r)
			own = append(own, placedRange{r: r, pool: rank, field: field})
		}
		// Entries of one pool that overlap are harmless (the allocator
		// uses their union) but likely a typo.
		slices.SortFunc(own, func(x, y placedRange) int { return x.r.First.Compare(y.r.First) })
		for i := 1; i < len(own); i++ {
			if own[i-1].r.Last.Compare(own[i].r.First) >= 0 {
				b.warn(KindPool, o.Name, own[i].field, "%s overlaps %s of the same pool (%s)", own[i].r, own[i-1].r, own[i-1].field)
			}
		}
		all = append(all, own...)
		if sa := o.Spec.ServiceAllocation; sa != nil {
			p.Priority = sa.Priority
			p.Namespaces = slices.Clone(sa.Namespaces)
			var ok1, ok2 bool
			p.NamespaceSelectors, ok1 = b.selectors(KindPool, o.Name, "spec.serviceAllocation.namespaceSelectors", sa.NamespaceSelectors)
			p.ServiceSelectors, ok2 = b.selectors(KindPool, o.Name, "spec.serviceAllocation.serviceSelectors", sa.ServiceSelectors)
			if !ok1 || !ok2 {
				// Frozen; admit every Service so that no held address
				// becomes stale because of the typo.
				p.Namespaces, p.NamespaceSelectors, p.ServiceSelectors = nil, nil, nil
			}
		}
		list = append(list, p)
	}

	// Overlaps across pools: the newer pool of each overlapping pair is
	// frozen; the message names the oldest pool it overlaps.
	slices.SortFunc(all, func(x, y placedRange) int {
		if c := x.r.First.Compare(y.r.First); c != 0 {
			return c
		}
		return cmp.Compare(x.pool, y.pool)
	})
	type overlap struct {
		mine, theirs placedRange
	}
	loses := map[int]overlap{}
	var active []placedRange
	for _, cur := range all {
		keep := active[:0]
		for _, a := range active {
			if a.r.Last.Compare(cur.r.First) >= 0 && a.r.First.Is4() == cur.r.First.Is4() {
				keep = append(keep, a)
			}
		}
		active = keep
		for _, a := range active {
			if a.pool == cur.pool {
				continue
			}
			older, newer := a, cur
			if cur.pool < a.pool {
				older, newer = cur, a
			}
			if prev, ok := loses[newer.pool]; !ok || older.pool < prev.theirs.pool {
				loses[newer.pool] = overlap{mine: newer, theirs: older}
			}
		}
		active = append(active, cur)
	}
	for rank := range list {
		if ov, ok := loses[rank]; ok {
			b.disable(KindPool, list[rank].Name, ov.mine.field, v1beta1.ReasonOverlapping,
				"%s overlaps %s of the older IPAddressPool %q, which wins the overlap; this pool gives no new addresses", ov.mine.r, ov.theirs.r, list[ov.theirs.pool].Name)
		}
		list[rank].Frozen = b.disabled(KindPool, list[rank].Name)
	}

	b.cfg.byAge = make([]int, len(list))
	order := make([]int, len(list)) // rank -> index after sorting by name
	idx := make([]int, len(list))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return cmp.Compare(list[x].Name, list[y].Name) })
	for i, rank := range idx {
		b.cfg.Pools = append(b.cfg.Pools, list[rank])
		order[rank] = i
	}
	for rank := range list {
		b.cfg.byAge[rank] = order[rank]
	}
	return known
}

// selectors converts label selectors; ok is false (and the object is
// disabled) when one is invalid.
func (b *builder) selectors(kind, name, field string, sels []metav1.LabelSelector) (out []labels.Selector, ok bool) {
	ok = true
	for i := range sels {
		s, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err != nil {
			b.disable(kind, name, fmt.Sprintf("%s[%d]", field, i), v1beta1.ReasonInvalidField, "invalid label selector: %v", err)
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

// poolNames resolves an advertisement's pool references: names and label
// selectors; neither given means every pool. A missing name drops that
// reference only.
func (b *builder) poolNames(kind, name string, names []string, sels []metav1.LabelSelector, pools map[string]labels.Set) []string {
	set := map[string]bool{}
	for i, n := range names {
		if _, ok := pools[n]; !ok {
			b.fail(kind, name, fmt.Sprintf("spec.ipAddressPools[%d]", i), v1beta1.ReasonMissingReference,
				"names IPAddressPool %q, which does not exist; that reference is ignored", n)
			continue
		}
		set[n] = true
	}
	selectors, _ := b.selectors(kind, name, "spec.ipAddressPoolSelectors", sels)
	for p, l := range pools {
		if len(names) == 0 && len(sels) == 0 {
			set[p] = true
			continue
		}
		for _, s := range selectors {
			if s.Matches(l) {
				set[p] = true
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

func (b *builder) l2(objs []v1beta1.L2Advertisement, pools map[string]labels.Set) {
	seen := map[string]bool{}
	for _, o := range objs {
		if seen[o.Name] {
			b.fail(KindL2Advertisement, o.Name, "metadata.name", v1beta1.ReasonDuplicateName, "defined twice; the older definition is in force")
			continue
		}
		seen[o.Name] = true
		adv := L2Advertisement{
			Name:       o.Name,
			Pools:      b.poolNames(KindL2Advertisement, o.Name, o.Spec.IPAddressPools, o.Spec.IPAddressPoolSelectors, pools),
			Interfaces: slices.Clone(o.Spec.Interfaces),
		}
		adv.NodeSelectors, _ = b.selectors(KindL2Advertisement, o.Name, "spec.nodeSelectors", o.Spec.NodeSelectors)
		if !b.disabled(KindL2Advertisement, o.Name) {
			b.cfg.L2Advertisements = append(b.cfg.L2Advertisements, adv)
		}
	}
	slices.SortFunc(b.cfg.L2Advertisements, func(x, y L2Advertisement) int { return cmp.Compare(x.Name, y.Name) })
}

func (b *builder) bgp(objs []v1beta1.BGPAdvertisement, pools map[string]labels.Set, communities map[string]string, peerObjs []v1beta1.BGPPeer) {
	peerExists := map[string]bool{}
	for _, p := range peerObjs {
		peerExists[p.Name] = true
	}
	seen := map[string]bool{}
	for _, o := range objs {
		if seen[o.Name] {
			b.fail(KindBGPAdvertisement, o.Name, "metadata.name", v1beta1.ReasonDuplicateName, "defined twice; the older definition is in force")
			continue
		}
		seen[o.Name] = true
		adv := BGPAdvertisement{
			Name:                o.Name,
			Pools:               b.poolNames(KindBGPAdvertisement, o.Name, o.Spec.IPAddressPools, o.Spec.IPAddressPoolSelectors, pools),
			Peers:               slices.Clone(o.Spec.Peers),
			AggregationLength:   32,
			AggregationLengthV6: 128,
		}
		adv.NodeSelectors, _ = b.selectors(KindBGPAdvertisement, o.Name, "spec.nodeSelectors", o.Spec.NodeSelectors)
		if o.Spec.AggregationLength != nil {
			adv.AggregationLength = int(*o.Spec.AggregationLength)
		}
		if o.Spec.AggregationLengthV6 != nil {
			adv.AggregationLengthV6 = int(*o.Spec.AggregationLengthV6)
		}
		if adv.AggregationLength < 0 || adv.AggregationLength > 32 {
			b.disable(KindBGPAdvertisement, o.Name, "spec.aggregationLength", v1beta1.ReasonInvalidField, "%d is outside 0..32", adv.AggregationLength)
		}
		if adv.AggregationLengthV6 < 0 || adv.AggregationLengthV6 > 128 {
			b.disable(KindBGPAdvertisement, o.Name, "spec.aggregationLengthV6", v1beta1.ReasonInvalidField, "%d is outside 0..128", adv.AggregationLengthV6)
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
				b.disable(KindBGPAdvertisement, o.Name, field, v1beta1.ReasonMissingReference, "names community %q, which no Community object defines; the advertisement is disabled", c)
				continue
			}
			std, large, err := ParseCommunity(value)
			if err != nil {
				b.disable(KindBGPAdvertisement, o.Name, field, v1beta1.ReasonInvalidField, "%v", err)
				continue
			}
			if large != nil {
				adv.LargeCommunities = append(adv.LargeCommunities, *large)
			} else {
				adv.Communities = append(adv.Communities, std)
			}
		}
		for i, n := range adv.Peers {
			if !peerExists[n] {
				b.fail(KindBGPAdvertisement, o.Name, fmt.Sprintf("spec.peers[%d]", i), v1beta1.ReasonMissingReference,
					"names BGPPeer %q, which does not exist; no session matches that name", n)
			}
		}
		if b.disabled(KindBGPAdvertisement, o.Name) {
			continue
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
				b.disable(KindBGPAdvertisement, name, field, v1beta1.ReasonInvalidField,
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
