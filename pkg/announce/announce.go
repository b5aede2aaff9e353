// Package announce decides what one node must announce: which addresses it
// answers ARP/NDP for (layer 2, one elected owner per address) and which
// routes it advertises to which BGP peers. It is pure: the observed cluster
// in, a Plan out. Every speaker computes the same layer-2 owners from the
// same inputs, so no coordination is needed.
package announce

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/pkg/config"
)

// LabelExcludeFromLB excludes a node from announcing any load-balancer address.
const LabelExcludeFromLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// Node is a cluster node as the speaker sees it.
type Node struct {
	Name   string
	Labels map[string]string
	// Alive is the liveness verdict (memberlist, else Node readiness).
	Alive bool
	// Ready is the Node's Ready condition: whether a speaker is expected there.
	Ready bool
}

// Service is a LoadBalancer Service with the addresses in its status.
type Service struct {
	Key   string       // namespace/name
	Addrs []netip.Addr // status.loadBalancer.ingress, in order
	// Local is externalTrafficPolicy: Local: only nodes with a ready endpoint
	// of the Service may attract its traffic.
	Local  bool
	Slices []discoveryv1.EndpointSlice
}

// Input is everything a decision depends on.
type Input struct {
	Config   *config.Config
	Nodes    []Node
	Services []Service
	// Self is the name of the node the plan is for.
	Self string
}

// Plan is what the node must announce.
type Plan struct {
	// L2 holds the addresses this node owns, with what to answer on.
	L2 map[netip.Addr]L2Entry
	// Owners is the elected layer-2 owner of every announceable address,
	// whichever node computed it.
	Owners map[netip.Addr]string
	// BGP holds the routes this node advertises, sorted by prefix.
	BGP []Route
	// WithoutOwner lists the addresses a layer-2 advertisement covers but
	// no node is eligible to answer for (no alive, selected node, or no
	// usable endpoint), sorted.
	WithoutOwner []netip.Addr
}

// L2Entry is one owned address.
type L2Entry struct {
	// Interfaces to answer on; nil means the speaker's default choice.
	Interfaces []string
	Services   []string
}

// Route is one advertised prefix.
type Route struct {
	Prefix           netip.Prefix
	Peers            []string // BGPPeer names, sorted
	Communities      []uint32
	LargeCommunities [][3]uint32
	LocalPref        uint32
	HasLocalPref     bool
	Services         []string
}

// addrUse gathers the Services holding one address (several when shared).
type addrUse struct {
	addr     netip.Addr
	pool     string
	services []*Service
}

// Compute makes the plan for in.Self.
func Compute(in Input) Plan {
	plan := Plan{L2: map[netip.Addr]L2Entry{}, Owners: map[netip.Addr]string{}}
	if in.Config == nil {
		return plan
	}
	var self *Node
	for i := range in.Nodes {
		if in.Nodes[i].Name == in.Self {
			self = &in.Nodes[i]
		}
	}
	uses := collect(in)
	l2ByPool := map[string]l2Pool{}
	memo := map[electKey]string{}
	var sb *selfBGP
	if self != nil {
		sb = newSelfBGP(in, self)
	}
	for _, u := range uses {
		lp, ok := l2ByPool[u.pool]
		if !ok {
			lp = layer2Candidates(in, u.pool)
			l2ByPool[u.pool] = lp
		}
		if owner, ok := electMemo(memo, u, lp); ok {
			plan.Owners[u.addr] = owner
			if owner == in.Self {
				plan.L2[u.addr] = L2Entry{Interfaces: lp.ifaces, Services: keys(u.services)}
			}
		} else if lp.advertised {
			plan.WithoutOwner = append(plan.WithoutOwner, u.addr)
		}
		if sb != nil {
			plan.BGP = sb.routes(u, plan.BGP)
		}
	}
	plan.BGP = mergeRoutes(plan.BGP)
	return plan
}

// collect groups Service addresses by address and finds each one's pool.
// Addresses outside every pool are not announced: nothing configures them.
func collect(in Input) []*addrUse {
	byAddr := map[netip.Addr]*addrUse{}
	for i := range in.Services {
		s := &in.Services[i]
		for _, a := range s.Addrs {
			u := byAddr[a]
			if u == nil {
				p := in.Config.PoolFor(a)
				if p == nil {
					continue
				}
				u = &addrUse{addr: a, pool: p.Name}
				byAddr[a] = u
			}
			u.services = append(u.services, s)
		}
	}
	out := make([]*addrUse, 0, len(byAddr))
	for _, u := range byAddr {
		slices.SortFunc(u.services, func(x, y *Service) int { return cmp.Compare(x.Key, y.Key) })
		out = append(out, u)
	}
	slices.SortFunc(out, func(x, y *addrUse) int { return x.addr.Compare(y.addr) })
	return out
}

// hashKey keys the owner election of an address by the primary address of
// the first Service using it, so both families of a Service (and every
// address of Services sharing one) elect the same node when the same nodes
// are eligible.
func hashKey(u *addrUse) string {
	return u.services[0].Addrs[0].String()
}

type electKey struct{ key, pool string }

// electMemo elects the owner of u's address. Both families of a Service hash
// by the same key over the same nodes when every eligible node may serve, so
// that election is made once per Service, not once per address.
func electMemo(memo map[electKey]string, u *addrUse, lp l2Pool) (string, bool) {
	nodes := serving(u, lp)
	full := len(nodes) > 0 && len(nodes) == len(lp.nodes) && &nodes[0] == &lp.nodes[0]
	k := electKey{hashKey(u), u.pool}
	if full {
		if o, ok := memo[k]; ok {
			return o, true
		}
	}
	var o string
	var ok bool
	if full {
		o, ok = lp.electAll(k.key)
	} else {
		o, ok = elect(k.key, nodes)
	}
	if ok && full {
		memo[k] = o
	}
	return o, ok
}

type l2Pool struct {
	nodes, ifaces []string        // nodes sorted by name
	eligible      map[string]bool // nodes as a set
	advertised    bool            // an L2Advertisement covers the pool
	// lcp[i] is the length of the prefix nodes[i] shares with nodes[i-1];
	// states is scratch space for electAll, one hash state per byte.
	lcp    []int
	states []uint64
}

// electAll is elect over all of lp.nodes, with the same result, cheaper: the
// hash of (key, node) is FNV-1a over the node name after the key, so the
// state after a prefix the name shares with the previous (sorted) name is
// already known and only the rest of the name is hashed. Node names in a
// cluster share long prefixes, so this hashes about one byte per node
// instead of the whole name.
func (lp *l2Pool) electAll(key string) (string, bool) {
	best, bestScore := "", uint64(0)
	lp.states[0] = fnv64a(fnv64a(fnvOffset, key), "\x00")
	for i, n := range lp.nodes {
		h := lp.states[lp.lcp[i]]
		for k := lp.lcp[i]; k < len(n); k++ {
			h ^= uint64(n[k])
			h *= fnvPrime
			lp.states[k+1] = h
		}
		score := mix(h)
		if best == "" || score > bestScore || (score == bestScore && n < best) {
			best, bestScore = n, score
		}
	}
	return best, best != ""
}

// layer2Candidates lists the nodes that may answer for a pool's addresses:
// selected by an L2Advertisement of the pool, alive and not excluded. It also
// returns the interfaces those advertisements name. serving narrows the
// nodes per address.
func layer2Candidates(in Input, pool string) l2Pool {
	var advs []config.L2Advertisement
	var ifaces []string
	allDefault := false
	for _, adv := range in.Config.L2Advertisements {
		if slices.Contains(adv.Pools, pool) {
			advs = append(advs, adv)
			if len(adv.Interfaces) == 0 {
				allDefault = true
			}
			ifaces = append(ifaces, adv.Interfaces...)
		}
	}
	if len(advs) == 0 {
		return l2Pool{}
	}
	if allDefault {
		ifaces = nil // an advertisement without interfaces means "the default ones"
	} else {
		slices.Sort(ifaces)
		ifaces = slices.Compact(ifaces)
	}
	var out []string
	for _, n := range in.Nodes {
		if !n.Alive || excluded(n) || !slices.ContainsFunc(advs, func(a config.L2Advertisement) bool { return selects(a.NodeSelectors, n) }) {
			continue
		}
		out = append(out, n.Name)
	}
	slices.Sort(out)
	eligible := make(map[string]bool, len(out))
	lcp := make([]int, len(out))
	longest := 0
	for i, n := range out {
		eligible[n] = true
		longest = max(longest, len(n))
		if i > 0 {
			prev := out[i-1]
			for lcp[i] < len(n) && lcp[i] < len(prev) && n[lcp[i]] == prev[lcp[i]] {
				lcp[i]++
			}
		}
	}
	return l2Pool{nodes: out, ifaces: ifaces, eligible: eligible, advertised: true, lcp: lcp, states: make([]uint64, longest+1)}
}

// serving narrows nodes to those that may attract traffic for the address:
// it is announced while at least one Service on it has a usable endpoint
// (a Service of a shared address scaled to zero does not black-hole its
// siblings), from any node when one of those is Cluster, else only from
// nodes holding a usable endpoint of one of the Local ones.
func serving(u *addrUse, lp l2Pool) []string {
	fam := discoveryv1.AddressTypeIPv4
	if u.addr.Is6() {
		fam = discoveryv1.AddressTypeIPv6
	}
	any, local := false, map[string]bool{}
	for _, s := range u.services {
		if !s.Local {
			if hasUsableEndpoint(s.Slices, fam) {
				return lp.nodes // shared, never changed
			}
			continue
		}
		usable := usableEndpointNodes(s.Slices, fam)
		if usable == nil {
			continue
		}
		any = true
		for n := range usable {
			if lp.eligible[n] {
				local[n] = true
			}
		}
	}
	if !any {
		return nil
	}
	out := make([]string, 0, len(local))
	for n := range local {
		out = append(out, n)
	}
	return out
}

// hasUsableEndpoint reports whether usableEndpointNodes would find any node,
// without building the sets.
func hasUsableEndpoint(sls []discoveryv1.EndpointSlice, fam discoveryv1.AddressType) bool {
	for _, sl := range sls {
		if sl.AddressType != fam {
			continue
		}
		for _, ep := range sl.Endpoints {
			if ready, fallback := endpointUse(ep); ready || fallback {
				return true
			}
		}
	}
	return false
}

// endpointUse classifies an endpoint with kube-proxy's rules: a nil ready
// means ready, a nil serving follows ready; ready and not terminating is
// used, serving but terminating is the fallback when nothing is ready.
func endpointUse(ep discoveryv1.Endpoint) (ready, fallback bool) {
	isReady := ep.Conditions.Ready == nil || *ep.Conditions.Ready
	isServing := isReady
	if ep.Conditions.Serving != nil {
		isServing = *ep.Conditions.Serving
	}
	isTerminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
	return isReady && !isTerminating, isServing && isTerminating
}

// usableEndpointNodes returns the nodes of the Service's usable endpoints of
// one address family, with kube-proxy's rules: a nil ready means ready, a nil
// serving follows ready, and serving-but-terminating endpoints count only
// when no endpoint is ready. nil means no usable endpoint at all.
func usableEndpointNodes(sls []discoveryv1.EndpointSlice, fam discoveryv1.AddressType) map[string]bool {
	ready, fallback := map[string]bool{}, map[string]bool{}
	for _, sl := range sls {
		if sl.AddressType != fam {
			continue
		}
		for _, ep := range sl.Endpoints {
			node := ""
			if ep.NodeName != nil {
				node = *ep.NodeName
			}
			switch r, f := endpointUse(ep); {
			case r:
				ready[node] = true
			case f:
				fallback[node] = true
			}
		}
	}
	if len(ready) > 0 {
		return ready
	}
	if len(fallback) > 0 {
		return fallback
	}
	return nil
}

// elect picks the owner by rendezvous hashing: the node with the highest
// hash of (key, node). Removing a node moves only the addresses it owned.
func elect(key string, nodes []string) (string, bool) {
	best, bestScore := "", uint64(0)
	h := fnv64a(fnv64a(fnvOffset, key), "\x00")
	for _, n := range nodes {
		score := mix(fnv64a(h, n))
		if best == "" || score > bestScore || (score == bestScore && n < best) {
			best, bestScore = n, score
		}
	}
	return best, best != ""
}

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

// fnv64a continues an FNV-1a hash over s without allocating.
func fnv64a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix spreads FNV's output (splitmix64 finalizer) so similar names do not
// cluster on one node.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func excluded(n Node) bool {
	_, ok := n.Labels[LabelExcludeFromLB]
	return ok
}

// selects reports whether any selector matches the node; none selects all.
func selects(sels []labels.Selector, n Node) bool {
	if len(sels) == 0 {
		return true
	}
	for _, s := range sels {
		if s.Matches(labels.Set(n.Labels)) {
			return true
		}
	}
	return false
}

// selfBGP is what self's routes depend on besides the address, worked out
// once per plan: whether self may announce at all, and per pool the
// advertisements that select self with their peers and normalized attributes.
type selfBGP struct {
	self    l2Pool // self alone, to narrow an address's serving nodes to it
	byPool  map[string][]bgpAdv
	allowed bool
}

type bgpAdv struct {
	adv         *config.BGPAdvertisement
	peers       []string // sorted, non-empty
	communities []uint32
	large       [][3]uint32
}

func newSelfBGP(in Input, self *Node) *selfBGP {
	sb := &selfBGP{self: l2Pool{nodes: []string{self.Name}, eligible: map[string]bool{self.Name: true}},
		byPool: map[string][]bgpAdv{}, allowed: !excluded(*self)}
	var selfPeers []string
	for _, p := range in.Config.Peers {
		if selects(p.NodeSelectors, *self) {
			selfPeers = append(selfPeers, p.Name)
		}
	}
	for i := range in.Config.BGPAdvertisements {
		adv := &in.Config.BGPAdvertisements[i]
		if !selects(adv.NodeSelectors, *self) {
			continue
		}
		peers := selfPeers
		if len(adv.Peers) > 0 {
			peers = slices.DeleteFunc(slices.Clone(selfPeers), func(p string) bool { return !slices.Contains(adv.Peers, p) })
		}
		if len(peers) == 0 {
			continue
		}
		a := bgpAdv{adv: adv, peers: union(nil, peers), communities: union(nil, adv.Communities), large: unionLarge(nil, adv.LargeCommunities)}
		for _, pool := range adv.Pools {
			if !slices.ContainsFunc(sb.byPool[pool], func(b bgpAdv) bool { return b.adv == adv }) {
				sb.byPool[pool] = append(sb.byPool[pool], a)
			}
		}
	}
	return sb
}

// routes appends the routes self advertises for one address: every
// BGPAdvertisement of its pool that selects self, to the peers that select
// self (narrowed by the advertisement's peers), when self may serve it.
// Routes of a plan share their Peers and community slices: read-only.
func (sb *selfBGP) routes(u *addrUse, out []Route) []Route {
	advs := sb.byPool[u.pool]
	if !sb.allowed || len(advs) == 0 || len(serving(u, sb.self)) == 0 {
		return out
	}
	var svcKeys []string
	for _, a := range advs {
		bits := a.adv.AggregationLength
		if u.addr.Is6() {
			bits = a.adv.AggregationLengthV6
		}
		pfx, err := u.addr.Prefix(bits)
		if err != nil {
			continue
		}
		if svcKeys == nil {
			svcKeys = union(nil, keys(u.services))
		}
		out = append(out, Route{
			Prefix: pfx, Peers: a.peers, Communities: a.communities, LargeCommunities: a.large,
			LocalPref: a.adv.LocalPref, HasLocalPref: a.adv.HasLocalPref, Services: svcKeys,
		})
	}
	return out
}

// mergeRoutes folds routes of one prefix (several advertisements, or
// addresses aggregated into one prefix) per peer: each peer gets the union of
// the communities and the highest local preference of everything sent to it.
// Peers that end up with identical attributes share one Route, so a prefix
// appears once per distinct attribute set.
func mergeRoutes(rs []Route) []Route {
	// Most prefixes come from one address and one advertisement: those are
	// already what the merge would make (routes hold normalized attributes).
	// Only runs of the same prefix go through the merge.
	slices.SortStableFunc(rs, func(x, y Route) int { return cmpPrefix(x.Prefix, y.Prefix) })
	out := rs[:0:0]
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && rs[j].Prefix == rs[i].Prefix {
			j++
		}
		if j == i+1 {
			out = append(out, rs[i])
		} else {
			out = append(out, mergeSamePrefix(rs[i:j])...)
		}
		i = j
	}
	return out
}

// mergeSamePrefix merges routes of one prefix per peer, then groups the
// peers whose attributes ended up identical.
func mergeSamePrefix(rs []Route) []Route {
	type key struct {
		prefix netip.Prefix
		peer   string
	}
	perPeer := map[key]*Route{}
	for _, r := range rs {
		for _, p := range r.Peers {
			k := key{r.Prefix, p}
			m := perPeer[k]
			if m == nil {
				perPeer[k] = &Route{Prefix: r.Prefix, Peers: []string{p}, Communities: union(nil, r.Communities),
					LargeCommunities: unionLarge(nil, r.LargeCommunities), LocalPref: r.LocalPref, HasLocalPref: r.HasLocalPref,
					Services: union(nil, r.Services)}
				continue
			}
			m.Communities = union(m.Communities, r.Communities)
			m.LargeCommunities = unionLarge(m.LargeCommunities, r.LargeCommunities)
			m.Services = union(m.Services, r.Services)
			if r.HasLocalPref && (!m.HasLocalPref || r.LocalPref > m.LocalPref) {
				m.LocalPref, m.HasLocalPref = r.LocalPref, true
			}
		}
	}
	grouped := map[string]*Route{}
	var out []*Route
	for _, r := range perPeer {
		id := fmt.Sprint(r.Prefix, r.Communities, r.LargeCommunities, r.LocalPref, r.HasLocalPref, r.Services)
		if g := grouped[id]; g != nil {
			g.Peers = union(g.Peers, r.Peers)
			continue
		}
		grouped[id] = r
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y *Route) int {
		return cmp.Or(cmpPrefix(x.Prefix, y.Prefix), slices.Compare(x.Peers, y.Peers))
	})
	res := make([]Route, len(out))
	for i, r := range out {
		res[i] = *r
	}
	return res
}

func unionLarge(a, b [][3]uint32) [][3]uint32 {
	out := append(slices.Clone(a), b...)
	slices.SortFunc(out, func(x, y [3]uint32) int {
		return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]), cmp.Compare(x[2], y[2]))
	})
	return slices.Compact(out)
}

func cmpPrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

func union[T cmp.Ordered](a, b []T) []T {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func keys(ss []*Service) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Key
	}
	return out
}
