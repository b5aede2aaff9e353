// Package speaker is the Kubernetes glue of the speaker DaemonSet: it
// observes Services, EndpointSlices, Nodes and Herald's configuration, asks
// pkg/announce what this node must announce, and hands the answer to the
// wire (pkg/layer2, pkg/bgp), then records it in ServiceL2Status and
// ServiceBGPStatus objects. Every decision is in pkg/announce.
package speaker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/pkg/announce"
	"github.com/herald-lb/herald/pkg/bgp"
	"github.com/herald-lb/herald/pkg/config"
	"github.com/herald-lb/herald/pkg/layer2"
)

// Layer2 is the ARP/NDP side of the wire (pkg/layer2.Announcer).
type Layer2 interface {
	Set(desired map[netip.Addr][]string) error
}

// BGP is the routing side of the wire (pkg/bgp.Speaker).
type BGP interface {
	SetPeers(peers []bgp.Peer) error
	SetRoutes(routes []bgp.Route) error
	Sessions() []bgp.Session
}

// Liveness tells which speakers are alive (pkg/members.Members).
type Liveness interface {
	SetPeers(peers map[string]netip.Addr)
	Alive() map[string]bool
	Changes() <-chan struct{}
	// Reachable lists the peers reachable right now (no suspicion), the
	// early sign that this node may be cut off.
	Reachable() map[string]bool
	// Rejoin exchanges state with every peer, so peers that declared this
	// node dead learn at once that it is back.
	Rejoin(timeout time.Duration)
}

// Links is the interface side of the wire (pkg/layer2.Links).
type Links interface {
	Snapshot() ([]layer2.Link, error)
	Changes() <-chan struct{}
}

// Options configure the speaker glue.
type Options struct {
	NodeName  string
	Namespace string // Herald's configuration namespace
	LBClass   string
	Layer2    Layer2   // nil disables layer-2 announcement
	BGP       BGP      // nil disables BGP
	Liveness  Liveness // nil: Node readiness decides who is alive
	// Links is this node's interfaces and their carrier (pkg/layer2.Links,
	// their one owner); nil: every named interface is up and there are no
	// default ones.
	Links Links
	// SettleTimeout bounds how long the first plan waits for the liveness
	// view to include the other ready nodes, so a starting speaker does not
	// briefly believe it is alone and claim every address.
	SettleTimeout time.Duration
	// HandBackDelay is how long a node waits before answering for an address
	// that another live node may still be answering for (it returns after a
	// restart or a network cut and wins the election back), so the previous
	// owner stops first: a short silence instead of two answers.
	HandBackDelay time.Duration
	Registerer    prometheus.Registerer
}

// Speaker reconciles one key: "this node's plan". Every watched change maps
// to it, so bursts coalesce into one recomputation.
type Speaker struct {
	client  client.Client
	opts    Options
	metrics *metrics
	wake    chan event.GenericEvent

	mu          sync.Mutex
	cfgErrors   string // the configuration's last problems, logged when they change
	settled     bool
	settleStart time.Time
	// speakers are the nodes known to run a speaker: seen alive in the
	// membership, forgotten when their Node is deleted or not Ready. The
	// partition rule counts these, never speakerless Nodes.
	speakers map[string]bool
	mem      announce.Memory // the layer-2 decision's memory
	lastPlan announce.Plan

	statusMu    sync.Mutex
	statusJob   *statusJob // the latest plan whose status is not yet written
	statusWake  chan struct{}
	bgpWarnings string // the wire's last warnings, logged when they change
}

const planKey = "plan"

// Setup registers the speaker on mgr.
func Setup(mgr ctrl.Manager, opts Options) (*Speaker, error) {
	if opts.SettleTimeout == 0 {
		opts.SettleTimeout = 5 * time.Second
	}
	if opts.HandBackDelay == 0 {
		opts.HandBackDelay = 500 * time.Millisecond
	}
	s := &Speaker{client: mgr.GetClient(), opts: opts, metrics: newMetrics(opts.Registerer),
		wake: make(chan event.GenericEvent, 1), statusWake: make(chan struct{}, 1)}
	if err := mgr.Add(runnable(s.statusLoop)); err != nil {
		return nil, err
	}
	toPlan := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: planKey}}}
	})
	inNamespace := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == opts.Namespace })
	b := ctrl.NewControllerManagedBy(mgr).
		Named("speaker").
		WatchesRawSource(source.Channel(s.wake, toPlan)).
		Watches(&corev1.Service{}, toPlan).
		Watches(&discoveryv1.EndpointSlice{}, toPlan).
		Watches(&corev1.Node{}, toPlan).
		Watches(&corev1.Secret{}, toPlan, builder.WithPredicates(inNamespace))
	for _, o := range []client.Object{&v1beta1.IPAddressPool{}, &v1beta1.L2Advertisement{}, &v1beta1.BGPAdvertisement{},
		&v1beta1.BGPPeer{}, &v1beta1.Community{}, &v1beta1.BFDProfile{}} {
		b = b.Watches(o, toPlan, builder.WithPredicates(inNamespace, predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})))
	}
	if err := b.Complete(s); err != nil {
		return nil, err
	}
	if opts.Links != nil {
		if err := mgr.Add(runnable(func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-opts.Links.Changes():
					s.Wake() // a link or address changed: carrier, default interfaces
				}
			}
		})); err != nil {
			return nil, err
		}
	}
	if opts.Liveness != nil {
		if err := mgr.Add(runnable(func(ctx context.Context) error {
			// Membership changes wake the plan; so does a change in how many
			// peers are reachable, which memberlist reports by no event.
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			last := -1
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-opts.Liveness.Changes():
					s.Wake()
				case <-tick.C:
					if n := len(opts.Liveness.Reachable()); n != last {
						last = n
						s.Wake()
					}
				}
			}
		})); err != nil {
			return nil, err
		}
	}
	// BGP session state changes show in status and metrics; poll them, as
	// the wire offers no change feed through this interface.
	if opts.BGP != nil {
		if err := mgr.Add(runnable(func(ctx context.Context) error {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
					s.metrics.observeSessions(opts.BGP.Sessions())
				}
			}
		})); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// runnable runs on every replica (no leader election): each speaker serves its own node.
type runnable func(ctx context.Context) error

func (r runnable) Start(ctx context.Context) error { return r(ctx) }
func (r runnable) NeedLeaderElection() bool        { return false }

// Wake asks for a recomputation.
func (s *Speaker) Wake() {
	o := &corev1.ConfigMap{}
	o.Name = planKey
	select {
	case s.wake <- event.GenericEvent{Object: o}:
	default:
	}
}

// Reconcile computes this node's plan from the cache and converges the wire
// and the status objects to it.
func (s *Speaker) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	log := ctrl.LoggerFrom(ctx).WithValues("node", s.opts.NodeName)
	s.mu.Lock()
	defer s.mu.Unlock()

	cfg, err := s.loadConfig(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !s.settle(ctx, nodes) {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	svcs, err := s.services(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	plan := announce.Compute(announce.Input{Config: cfg, Nodes: nodes, Services: svcs, Self: s.opts.NodeName})

	var errs []error
	var retry time.Duration
	s.metrics.withoutOwner.Set(float64(len(plan.WithoutOwner)))
	if s.opts.Layer2 != nil {
		var d announce.Decision
		d, retry, err = s.decideLayer2(log, plan, nodes)
		errs = append(errs, err, s.applyLayer2(d.L2))
		plan.L2, plan.Owners = d.L2, d.Owners
	}
	if s.opts.BGP != nil {
		errs = append(errs, s.applyBGP(ctx, cfg, nodes, plan))
	}
	s.logChanges(log, plan)
	s.lastPlan = plan
	s.metrics.observePlan(plan)
	// Status objects are written by their own loop: the wire never waits
	// on the apiserver, and a burst of changes is not slowed by status writes.
	s.queueStatus(plan, svcs)
	s.metrics.planSeconds.Observe(time.Since(start).Seconds())
	if err := errors.Join(errs...); err != nil {
		log.Error(err, "applying the plan partly failed; retrying")
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	return ctrl.Result{RequeueAfter: retry}, nil
}

type statusJob struct {
	plan announce.Plan
	svcs []announce.Service
}

// queueStatus hands the latest plan to the status loop; an unwritten older
// plan is simply replaced (status is level-triggered).
func (s *Speaker) queueStatus(plan announce.Plan, svcs []announce.Service) {
	s.statusMu.Lock()
	s.statusJob = &statusJob{plan: plan, svcs: svcs}
	s.statusMu.Unlock()
	select {
	case s.statusWake <- struct{}{}:
	default:
	}
}

// statusLoop converges the status objects to the latest plan, retrying a
// failed write until a newer plan or success.
func (s *Speaker) statusLoop(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithValues("node", s.opts.NodeName)
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.statusWake:
		case <-retry:
		}
		retry = nil
		s.statusMu.Lock()
		job := s.statusJob
		s.statusJob = nil
		s.statusMu.Unlock()
		if job == nil {
			continue
		}
		if err := s.writeStatus(ctx, job.plan, job.svcs); err != nil {
			log.Error(err, "writing status objects failed; retrying")
			s.statusMu.Lock()
			if s.statusJob == nil {
				s.statusJob = job
			}
			s.statusMu.Unlock()
			retry = time.After(2 * time.Second)
		}
	}
}

// decideLayer2 resolves the interfaces of the addresses this node wins,
// gathers what it observes (speakers, reachability, carrier, the clock) and
// asks pkg/announce what to answer now.
func (s *Speaker) decideLayer2(log interface{ Info(string, ...any) }, plan announce.Plan, nodes []announce.Node) (announce.Decision, time.Duration, error) {
	links, err := s.links(len(plan.L2) > 0)
	l2 := make(map[netip.Addr]announce.L2Entry, len(plan.L2))
	byName := make(map[string]announce.Link, len(links))
	for _, l := range links {
		byName[l.Name] = l
	}
	carrier := map[string]bool{}
	for a, e := range plan.L2 {
		if len(e.Interfaces) == 0 {
			e.Interfaces = announce.DefaultInterfaces(links, a)
		}
		l2[a] = e
		for _, i := range e.Interfaces {
			if l, ok := byName[i]; s.opts.Links != nil {
				carrier[i] = ok && l.Running // a missing interface has no carrier
			}
		}
	}
	plan.L2 = l2
	obs := announce.Observed{Now: time.Now(), Self: s.opts.NodeName, Alive: map[string]bool{}, Carrier: carrier,
		HandBackDelay: s.opts.HandBackDelay}
	for _, n := range nodes {
		if n.Alive {
			obs.Alive[n.Name] = true
		}
	}
	if s.opts.Liveness != nil {
		// Reachability, not conviction, decides the partition test: a node
		// cut off suspects its peers within a probe round, before the others
		// convict it and take over, so it falls silent first.
		obs.Speakers, obs.Reachable = s.speakers, s.opts.Liveness.Reachable()
	}
	d, mem := announce.Decide(plan, obs, s.mem)
	s.mem = mem
	for _, e := range d.Events {
		log.Info(e)
	}
	if d.Rejoin && s.opts.Liveness != nil {
		go s.opts.Liveness.Rejoin(time.Second)
	}
	s.metrics.observeQuorum(d.Quorum)
	return d, d.Retry, err
}

// loadConfig builds the configuration from the cache. Build always returns
// a Config holding everything valid; invalid objects are left out (the
// controller reports them on their status), so the speaker keeps serving
// the rest. The peers' password Secrets are read here, into the Config.
func (s *Speaker) loadConfig(ctx context.Context) (*config.Config, error) {
	objs, err := kube.ConfigObjects(ctx, s.client, s.opts.Namespace)
	if err != nil {
		return nil, err
	}
	if err := kube.PeerSecrets(ctx, s.client, s.opts.Namespace, &objs); err != nil {
		return nil, err
	}
	cfg, errs := config.Build(objs)
	if msg := errs.Error(); len(errs) > 0 && msg != s.cfgErrors {
		ctrl.LoggerFrom(ctx).Info("configuration objects left out as invalid", "errors", msg)
	}
	s.cfgErrors = ""
	if len(errs) > 0 {
		s.cfgErrors = errs.Error()
	}
	return cfg, nil
}

// nodes reads the Node objects and decides liveness: memberlist when it
// runs, else the Ready condition. It also tells memberlist whom to join.
func (s *Speaker) nodes(ctx context.Context) ([]announce.Node, error) {
	var list corev1.NodeList
	// The cache's objects are read, never changed: no deep copy per plan.
	if err := s.client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var alive map[string]bool
	if s.opts.Liveness != nil {
		peers := map[string]netip.Addr{}
		for _, n := range list.Items {
			if a, ok := InternalIP(&n, false); ok {
				peers[n.Name] = a
			}
		}
		s.opts.Liveness.SetPeers(peers)
		alive = s.opts.Liveness.Alive()
	}
	out := make([]announce.Node, 0, len(list.Items))
	ready := make(map[string]bool, len(list.Items))
	for _, n := range list.Items {
		an := announce.Node{Name: n.Name, Labels: n.Labels, Ready: nodeReady(&n)}
		an.Alive = announce.Alive(an, alive, s.opts.NodeName)
		ready[n.Name] = an.Ready
		out = append(out, an)
	}
	if alive != nil {
		s.speakers = announce.Speakers(s.speakers, alive, ready, s.opts.NodeName)
	}
	return out, nil
}

// settle holds the first plan until the membership reached another
// speaker (or no other Ready node exists, or SettleTimeout passed): a
// starting speaker that believed itself alone would claim every address.
// Nodes without a speaker never answer, so it waits for one peer, not for
// every Ready node.
func (s *Speaker) settle(ctx context.Context, nodes []announce.Node) bool {
	if s.settled || s.opts.Liveness == nil {
		s.settled = true
		return true
	}
	if s.settleStart.IsZero() {
		s.settleStart = time.Now()
	}
	others := false
	for _, n := range nodes {
		if n.Name == s.opts.NodeName {
			continue
		}
		if n.Alive {
			s.settled = true
			return true
		}
		others = others || n.Ready
	}
	if !others {
		s.settled = true
		return true
	}
	if time.Since(s.settleStart) > s.opts.SettleTimeout {
		ctrl.LoggerFrom(ctx).Info("no other speaker reached within the settle timeout; announcing with what is known")
		s.settled = true
		return true
	}
	return false
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// InternalIP returns the node's InternalIP of one family (IPv4 unless v6).
func InternalIP(n *corev1.Node, v6 bool) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err == nil && ip.Is6() == v6 {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// ours mirrors the controller's class rule.
func (s *Speaker) ours(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if s.opts.LBClass == "" {
		return svc.Spec.LoadBalancerClass == nil
	}
	return svc.Spec.LoadBalancerClass != nil && *svc.Spec.LoadBalancerClass == s.opts.LBClass
}

// services lists Herald's Services that hold addresses, with their
// EndpointSlices.
func (s *Speaker) services(ctx context.Context) ([]announce.Service, error) {
	var list corev1.ServiceList
	if err := s.client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var slices discoveryv1.EndpointSliceList
	if err := s.client.List(ctx, &slices, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list endpointslices: %w", err)
	}
	bySvc := map[string][]discoveryv1.EndpointSlice{}
	for _, sl := range slices.Items {
		if name := sl.Labels[discoveryv1.LabelServiceName]; name != "" {
			k := sl.Namespace + "/" + name
			bySvc[k] = append(bySvc[k], sl)
		}
	}
	var out []announce.Service
	for i := range list.Items {
		svc := &list.Items[i]
		if !s.ours(svc) || svc.DeletionTimestamp != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		as := announce.Service{Key: key, Local: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal, Slices: bySvc[key]}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				as.Addrs = append(as.Addrs, a.Unmap())
			}
		}
		if len(as.Addrs) > 0 {
			out = append(out, as)
		}
	}
	return out, nil
}

// links reads this node's interfaces once per plan (one netlink dump of
// links and one of addresses, not one per address).
func (s *Speaker) links(needed bool) ([]announce.Link, error) {
	if s.opts.Links == nil || !needed {
		return nil, nil
	}
	ls, err := s.opts.Links.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("interfaces: %w", err)
	}
	out := make([]announce.Link, len(ls))
	for i, l := range ls {
		out[i] = announce.Link{Name: l.Name, Kind: l.Kind, Prefixes: l.Prefixes, Running: l.Running, CanAnswer: l.CanAnswer}
	}
	return out, nil
}

// applyLayer2 hands the addresses to answer for to the ARP/NDP responders.
func (s *Speaker) applyLayer2(l2 map[netip.Addr]announce.L2Entry) error {
	desired := make(map[netip.Addr][]string, len(l2))
	for a, e := range l2 {
		desired[a] = e.Interfaces
	}
	if err := s.opts.Layer2.Set(desired); err != nil {
		return fmt.Errorf("layer 2: %w", err)
	}
	return nil
}

// applyBGP configures the sessions that select this node and the routes.
func (s *Speaker) applyBGP(ctx context.Context, cfg *config.Config, nodes []announce.Node, plan announce.Plan) error {
	var self announce.Node
	for _, n := range nodes {
		if n.Name == s.opts.NodeName {
			self = n
		}
	}
	var peers []bgp.Peer
	var errs []error
	if cfg != nil {
		for _, p := range cfg.Peers {
			if !selectsNode(p, self) {
				continue
			}
			bp := bgp.Peer{Name: p.Name, MyASN: p.MyASN, ASN: p.ASN, Address: p.Address, Port: p.Port, Source: p.Source,
				HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime, ConnectTime: p.ConnectTime,
				EBGPMultiHop: p.EBGPMultiHop, GracefulRestart: p.GracefulRestart, MaxReceived: p.MaxReceived}
			if p.BFD != nil {
				bp.BFD = &bgp.BFD{ReceiveInterval: p.BFD.ReceiveInterval, TransmitInterval: p.BFD.TransmitInterval,
					DetectMultiplier: p.BFD.DetectMultiplier, Passive: p.BFD.Passive, MinimumTTL: p.BFD.MinimumTTL}
			}
			bp.Password = p.Password // Build disables a peer whose password Secret is unusable
			peers = append(peers, bp)
		}
	}
	// Warnings are settings the wire applied but that have no effect (a
	// localPref towards an eBGP peer, a BFD option GoBGP lacks). The
	// configuration loader reports them too; retrying cannot change them,
	// so they are logged when they change instead of failing the plan.
	var warns bgp.Warnings
	apply := func(what string, err error) {
		w, err := splitWarnings(err)
		warns = append(warns, w...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	apply("bgp peers", s.opts.BGP.SetPeers(peers))
	apply("bgp routes", s.opts.BGP.SetRoutes(wireRoutes(plan)))
	if msg := warns.Error(); msg != s.bgpWarnings {
		s.bgpWarnings = msg
		if msg != "" {
			ctrl.LoggerFrom(ctx).Info("BGP settings without effect", "warnings", msg)
		}
	}
	return errors.Join(errs...)
}

// splitWarnings tells the wire's warnings (applied, without effect) from
// its failures (to retry).
func splitWarnings(err error) (bgp.Warnings, error) {
	var w bgp.Warnings
	if err != nil && errors.As(err, &w) {
		return w, nil
	}
	return nil, err
}

// wireRoutes hands the plan's routes to the wire one to one: pkg/announce
// lists a prefix once per attribute set with the peers that get it, and
// pkg/bgp sends each peer exactly its own.
func wireRoutes(plan announce.Plan) []bgp.Route {
	out := make([]bgp.Route, 0, len(plan.BGP))
	for _, r := range plan.BGP {
		br := bgp.Route{Prefix: r.Prefix, Peers: slices.Clone(r.Peers), Communities: slices.Clone(r.Communities),
			LargeCommunities: slices.Clone(r.LargeCommunities)}
		if r.HasLocalPref {
			br.LocalPref = r.LocalPref
		}
		out = append(out, br)
	}
	return out
}

func selectsNode(p config.Peer, n announce.Node) bool {
	if len(p.NodeSelectors) == 0 {
		return true
	}
	for _, sel := range p.NodeSelectors {
		if sel.Matches(labelsSet(n.Labels)) {
			return true
		}
	}
	return false
}

// logChanges logs what this node started or stopped announcing.
func (s *Speaker) logChanges(log interface {
	Info(string, ...any)
}, plan announce.Plan) {
	for a, e := range plan.L2 {
		if _, had := s.lastPlan.L2[a]; !had {
			log.Info("announcing by layer 2", "address", a.String(), "services", strings.Join(e.Services, ","))
		}
	}
	for a := range s.lastPlan.L2 {
		if _, has := plan.L2[a]; !has {
			log.Info("stopped announcing by layer 2", "address", a.String(), "owner", plan.Owners[a])
		}
	}
}
