package controller

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"github.com/herald-lb/herald/pkg/allocate"
	"github.com/herald-lb/herald/pkg/config"
)

// The configuration reconciler has two keys: one rebuilds the configuration
// from every Herald object, the other rewrites pool status after
// allocations changed. Both are level-triggered over the whole snapshot.
const (
	configKey     = "config"
	poolStatusKey = "pool-status"
)

// Pool condition types and reasons.
const (
	PoolConditionReady               = "Ready"
	PoolConditionOverlapsServiceCIDR = "OverlapsServiceCIDR"
	ReasonInvalid                    = "InvalidConfiguration"
	ReasonOverlapping                = "Overlapping"
	ReasonInUse                      = "InUse"
	ReasonNoOverlap                  = "NoOverlap"
	EventConfigInvalid               = "ConfigurationInvalid"
	EventConfigWarning               = "ConfigurationWarning"
)

type configReconciler struct{ *Controller }

func (c *Controller) setupConfig(mgr ctrl.Manager) error {
	toConfig := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: configKey}}}
	})
	inNamespace := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == c.opts.Namespace })
	// Status writes (ours) bump neither generation nor labels.
	specOrLabels := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("config").
		WatchesRawSource(source.Channel(c.configEvents, &handler.EnqueueRequestForObject{})).
		Watches(&networkingv1.ServiceCIDR{}, toConfig)
	for _, o := range []client.Object{&v1beta1.IPAddressPool{}, &v1beta1.L2Advertisement{}, &v1beta1.BGPAdvertisement{},
		&v1beta1.BGPPeer{}, &v1beta1.Community{}, &v1beta1.BFDProfile{}} {
		b = b.Watches(o, toConfig, builder.WithPredicates(inNamespace, specOrLabels))
	}
	return b.Complete(configReconciler{c})
}

func (c *Controller) enqueueConfig(key string) {
	o := &corev1.ConfigMap{} // only the name travels: the key of the config reconciler
	o.Name = key
	select {
	case c.configEvents <- event.GenericEvent{Object: o}:
	default: // one pending wake-up of each key is enough
	}
}

func (r configReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.mu.Lock()
	if err := r.ensureInitialized(ctx); err != nil {
		r.mu.Unlock()
		return ctrl.Result{}, err
	}
	if req.Name == configKey {
		if _, err := r.loadConfig(ctx); err != nil {
			r.mu.Unlock()
			return ctrl.Result{}, err
		}
	}
	r.mu.Unlock()
	return ctrl.Result{}, r.writePoolStatus(ctx)
}

// loadConfig reads every Herald object, validates the set and, when valid
// and different from the last good configuration, hands the pools to the
// allocator and wakes the Services that may gain or must move. An invalid
// set keeps the last good configuration in force: nothing already allocated
// is dropped because of a typo. The caller holds c.mu.
func (c *Controller) loadConfig(ctx context.Context) (changed bool, err error) {
	log := ctrl.LoggerFrom(ctx)
	objs, fingerprint, err := c.snapshot(ctx)
	if err != nil {
		return false, err
	}
	cfg, errs := config.Build(objs)
	c.reportConfig(ctx, objs, errs, cfg)
	if errs != nil {
		c.metrics.configValid.Set(0)
		log.Info("configuration invalid; keeping the last good one", "errors", errs.Error())
		return false, nil
	}
	c.metrics.configValid.Set(1)
	if c.cfg != nil && fingerprint == c.configFingerprint {
		return false, nil
	}
	invalid := c.alloc.SetPools(cfg.Pools)
	c.cfg, c.configFingerprint = cfg, fingerprint
	for _, inv := range invalid {
		log.Info("held addresses no longer valid; the Service is re-evaluated", "service", inv.Key, "pool", inv.Pool, "addresses", joinAddrs(inv.Addrs), "reason", inv.Reason)
		if nn, ok := splitKey(inv.Key); ok {
			c.enqueueService(nn)
		}
	}
	c.enqueueWaiting()
	c.enqueueConfig(poolStatusKey)
	log.Info("configuration loaded", "pools", len(cfg.Pools), "l2Advertisements", len(cfg.L2Advertisements),
		"bgpAdvertisements", len(cfg.BGPAdvertisements), "peers", len(cfg.Peers))
	return true, nil
}

// snapshot lists Herald's objects and fingerprints what the configuration
// depends on (specs via generation, and labels), so status writes do not
// count as changes.
func (c *Controller) snapshot(ctx context.Context) (config.Objects, uint64, error) {
	objs, err := kube.ConfigObjects(ctx, c.client, c.opts.Namespace)
	if err != nil {
		return objs, 0, err
	}
	h := fnv.New64a()
	var metas []string
	objs.Each(func(kind string, o config.Object) {
		metas = append(metas, fmt.Sprintf("%s/%s/%s/%d/%v", kind, o.GetName(), o.GetUID(), o.GetGeneration(), o.GetLabels()))
	})
	sort.Strings(metas)
	for _, m := range metas {
		_, _ = h.Write([]byte(m))
	}
	return objs, h.Sum64(), nil
}

// reportConfig emits an Event on each object whose problems changed since
// the last report, so an unchanged bad object does not flood Events.
func (c *Controller) reportConfig(ctx context.Context, objs config.Objects, errs config.Errors, cfg *config.Config) {
	type ref struct {
		obj  config.Object
		kind string
	}
	var all []ref
	objs.Each(func(kind string, o config.Object) { all = append(all, ref{o, kind}) })
	var warnings config.Errors
	if cfg != nil {
		warnings = cfg.Warnings
	}
	seen := map[string]bool{}
	for _, r := range all {
		id := r.kind + "/" + r.obj.GetName()
		seen[id] = true
		msg, warn := errs.For(r.kind, r.obj.GetName()).Error(), warnings.For(r.kind, r.obj.GetName()).Error()
		valid := 1.0
		if msg != "" {
			valid = 0
		}
		c.metrics.configObjectValid.WithLabelValues(r.kind, r.obj.GetName()).Set(valid)
		report := msg + "|" + warn
		if c.reported[id] == report {
			continue
		}
		c.reported[id] = report
		if msg != "" {
			c.recorder.Eventf(r.obj, nil, corev1.EventTypeWarning, EventConfigInvalid, "Validate", "%s; the last valid configuration stays in force", msg)
			ctrl.LoggerFrom(ctx).Info("invalid configuration object", "kind", r.kind, "name", r.obj.GetName(), "error", msg)
		}
		if warn != "" {
			c.recorder.Eventf(r.obj, nil, corev1.EventTypeWarning, EventConfigWarning, "Validate", "%s", warn)
		}
	}
	for id := range c.reported {
		if !seen[id] {
			delete(c.reported, id)
			if kind, name, ok := strings.Cut(id, "/"); ok {
				c.metrics.configObjectValid.DeleteLabelValues(kind, name)
			}
		}
	}
	c.lastErrors = errs
}

// writePoolStatus converges every pool's status: per-family counts from the
// allocator and conditions from validation and ServiceCIDR overlaps.
func (c *Controller) writePoolStatus(ctx context.Context) error {
	var pools v1beta1.IPAddressPoolList
	if err := c.client.List(ctx, &pools, client.InNamespace(c.opts.Namespace)); err != nil {
		return fmt.Errorf("list pools: %w", err)
	}
	var cidrs networkingv1.ServiceCIDRList
	if err := c.client.List(ctx, &cidrs); err != nil {
		return fmt.Errorf("list servicecidrs: %w", err)
	}
	var serviceCIDRs []netip.Prefix
	for _, sc := range cidrs.Items {
		for _, s := range sc.Spec.CIDRs {
			if p, err := netip.ParsePrefix(s); err == nil {
				serviceCIDRs = append(serviceCIDRs, p.Masked())
			}
		}
	}
	c.mu.Lock()
	cfg, errs := c.cfg, c.lastErrors
	type counts struct{ a4, v4, a6, v6 int64 }
	usage := map[string]counts{}
	var overlaps map[string][]netip.Prefix
	if cfg != nil {
		overlaps = cfg.ServiceCIDROverlaps(serviceCIDRs)
		for _, p := range cfg.Pools {
			u := c.alloc.Usage(p.Name)
			usage[p.Name] = counts{sat(u[allocate.IPv4].Assigned), sat(u[allocate.IPv4].Available), sat(u[allocate.IPv6].Assigned), sat(u[allocate.IPv6].Available)}
			for fam, fu := range u {
				c.metrics.poolAddresses.WithLabelValues(p.Name, fam.String(), "in_use").Set(float64(fu.Assigned))
				c.metrics.poolAddresses.WithLabelValues(p.Name, fam.String(), "available").Set(float64(fu.Available))
			}
		}
	}
	c.mu.Unlock()

	for i := range pools.Items {
		p := &pools.Items[i]
		orig := p.DeepCopy()
		u := usage[p.Name]
		p.Status.AssignedIPv4, p.Status.AvailableIPv4, p.Status.AssignedIPv6, p.Status.AvailableIPv6 = u.a4, u.v4, u.a6, u.v6
		ready := metav1.Condition{Type: PoolConditionReady, Status: metav1.ConditionTrue, Reason: ReasonInUse, Message: "the pool's addresses are handed out", ObservedGeneration: p.Generation}
		if perr := errs.For(config.KindPool, p.Name); len(perr) > 0 {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonInvalid, perr.Error()
			if slices.ContainsFunc(perr, func(e *config.Error) bool { return strings.Contains(e.Message, "overlaps") }) {
				ready.Reason = ReasonOverlapping
			}
		} else if cfg == nil || cfg.Pool(p.Name) == nil {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonInvalid, "not part of the configuration in force: another object is invalid"
		}
		meta.SetStatusCondition(&p.Status.Conditions, ready)
		ov := metav1.Condition{Type: PoolConditionOverlapsServiceCIDR, Status: metav1.ConditionFalse, Reason: ReasonNoOverlap, Message: "no address is inside a service CIDR", ObservedGeneration: p.Generation}
		if o := overlaps[p.Name]; len(o) > 0 {
			ov.Status, ov.Reason, ov.Message = metav1.ConditionTrue, ReasonOverlapping, fmt.Sprintf("addresses overlap the cluster's service CIDRs %v: they may collide with ClusterIPs", o)
		}
		meta.SetStatusCondition(&p.Status.Conditions, ov)
		if statusEqual(orig.Status, p.Status) {
			continue
		}
		if err := c.client.Status().Patch(ctx, p, client.MergeFrom(orig)); err != nil {
			return fmt.Errorf("pool %q: patch status: %w", p.Name, err)
		}
	}
	return nil
}

func statusEqual(a, b v1beta1.IPAddressPoolStatus) bool {
	if a.AssignedIPv4 != b.AssignedIPv4 || a.AvailableIPv4 != b.AvailableIPv4 || a.AssignedIPv6 != b.AssignedIPv6 || a.AvailableIPv6 != b.AvailableIPv6 {
		return false
	}
	return slices.EqualFunc(a.Conditions, b.Conditions, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message && x.ObservedGeneration == y.ObservedGeneration
	})
}

// sat converts a saturating uint64 count to the API's int64, saturating at
// math.MaxInt64 ("more than can be counted").
func sat(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}
