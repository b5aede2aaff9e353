package controller

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// Condition types and reasons the controller writes on configuration
// objects; the names are the API's (v1beta1).
const (
	ConditionValid                   = v1beta1.ConditionValid
	PoolConditionOverlapsServiceCIDR = v1beta1.ConditionOverlapsServiceCIDR
	ReasonValid                      = v1beta1.ReasonValid
	ReasonOverlapping                = v1beta1.ReasonOverlapping
	ReasonNoOverlap                  = "NoOverlap"
	EventConfigValid                 = v1beta1.EventConfigValid
	EventConfigInvalid               = v1beta1.EventConfigInvalid
	EventConfigWarning               = v1beta1.EventConfigWarning
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
	retry, err := r.writeConfigStatus(ctx)
	if retry && err == nil {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	return ctrl.Result{}, err
}

// loadConfig reads every Herald object and builds the configuration in
// force: config.Build never fails as a whole, an invalid object only
// disables itself (a frozen pool keeps what Services hold from it). When
// what it depends on changed it hands the pools to the allocator and wakes
// the Services that may gain or must move. The caller holds c.mu.
func (c *Controller) loadConfig(ctx context.Context) (changed bool, err error) {
	log := ctrl.LoggerFrom(ctx)
	objs, fingerprint, err := c.snapshot(ctx)
	if err != nil {
		return false, err
	}
	if c.cfg != nil && fingerprint == c.configFingerprint {
		return false, nil
	}
	cfg, errs := config.Build(objs)
	c.reportWarnings(ctx, objs, cfg)
	if len(errs) > 0 {
		log.Info("some configuration objects are disabled; the rest is in force", "errors", config.Bound(errs.Error(), 4096))
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
		"bgpAdvertisements", len(cfg.BGPAdvertisements), "peers", len(cfg.Peers), "disabled", len(errs))
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

// reportWarnings emits an Event on each object whose warnings (settings
// without effect) changed since the last report, so an unchanged object
// does not flood Events. Validity Events are written with the Valid
// condition (writeConfigStatus). The caller holds c.mu.
func (c *Controller) reportWarnings(ctx context.Context, objs config.Objects, cfg *config.Config) {
	seen := map[string]bool{}
	objs.Each(func(kind string, o config.Object) {
		id := kind + "/" + o.GetName()
		seen[id] = true
		warn := config.Errors(cfg.Warnings).For(kind, o.GetName()).Error()
		if c.reported[id] == warn {
			return
		}
		c.reported[id] = warn
		if warn != "" {
			c.eventf(o, corev1.EventTypeWarning, EventConfigWarning, "Validate", "%s", warn)
			ctrl.LoggerFrom(ctx).Info("configuration setting without effect", "kind", kind, "name", o.GetName(), "warning", warn)
		}
	})
	for id := range c.reported {
		if !seen[id] {
			delete(c.reported, id)
		}
	}
}

// writeConfigStatus converges the status of every configuration object:
// the Valid condition from the configuration in force and, on pools, the
// per-family counts from the allocator and the OverlapsServiceCIDR
// condition. It writes only what differs, and emits an Event on an object
// only when its validity changes against the Valid condition it carries, so
// a restarted controller repeats none. It reports whether a write lost a
// race with a newer version of an object (the caller retries).
func (c *Controller) writeConfigStatus(ctx context.Context) (retry bool, err error) {
	objs, err := kube.ConfigObjects(ctx, c.client, c.opts.Namespace)
	if err != nil {
		return false, err
	}
	var cidrs networkingv1.ServiceCIDRList
	if err := c.client.List(ctx, &cidrs); err != nil {
		return false, fmt.Errorf("list servicecidrs: %w", err)
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
	cfg := c.cfg
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
	if cfg == nil {
		return false, nil
	}

	c.setValidityGauges(objs, cfg)
	var errs []error
	objs.Each(func(kind string, o config.Object) {
		v := cfg.Validity(kind, o.GetName())
		if v.Reason == "" {
			return // created after the configuration in force was built: the next load covers it
		}

		orig := o.DeepCopyObject().(client.Object)
		conds := conditionsOf(o)
		var before *metav1.Condition // a copy: SetStatusCondition updates in place
		if b := meta.FindStatusCondition(*conds, ConditionValid); b != nil {
			before = new(*b)
		}
		meta.SetStatusCondition(conds, validCondition(v, o.GetGeneration()))
		if p, ok := o.(*v1beta1.IPAddressPool); ok {
			u := usage[p.Name]
			p.Status.AssignedIPv4, p.Status.AvailableIPv4, p.Status.AssignedIPv6, p.Status.AvailableIPv6 = u.a4, u.v4, u.a6, u.v6
			ov := metav1.Condition{Type: PoolConditionOverlapsServiceCIDR, Status: metav1.ConditionFalse, Reason: ReasonNoOverlap, Message: "no address is inside a service CIDR", ObservedGeneration: p.Generation}
			if ol := overlaps[p.Name]; len(ol) > 0 {
				ov.Status, ov.Reason, ov.Message = metav1.ConditionTrue, ReasonOverlapping, fmt.Sprintf("addresses overlap the cluster's service CIDRs %v: they may collide with ClusterIPs", ol)
			}
			meta.SetStatusCondition(&p.Status.Conditions, ov)
			meta.RemoveStatusCondition(&p.Status.Conditions, "Ready") // written by older versions
		}
		if statusEqual(orig, o) {
			return
		}
		err := c.client.Status().Patch(ctx, o, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		switch {
		case apierrors.IsConflict(err):
			retry = true // our copy was stale; its Valid condition may be too, so no Event yet
			return
		case apierrors.IsNotFound(err):
			return
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q: patch status: %w", kind, o.GetName(), err))
			return
		}
		if validityChanged(before, v) {
			c.validityEvent(ctx, kind, o, v)
		}
	})
	return retry, errors.Join(errs...)
}

// validCondition is the Valid condition of an object of validity v.
func validCondition(v config.Validity, generation int64) metav1.Condition {
	cond := metav1.Condition{Type: ConditionValid, Status: metav1.ConditionTrue, Reason: v.Reason, Message: v.Message, ObservedGeneration: generation}
	if !v.Valid {
		cond.Status = metav1.ConditionFalse
	}
	if cond.Message == "" {
		cond.Message = cond.Reason
	}
	return cond
}

// validityChanged says whether an object whose Valid condition was before
// changed validity: it became valid or invalid, or is invalid for another
// reason. A new object that is valid is not news.
func validityChanged(before *metav1.Condition, v config.Validity) bool {
	if before == nil {
		return !v.Valid
	}
	if (before.Status == metav1.ConditionTrue) != v.Valid {
		return true
	}
	return !v.Valid && before.Reason != v.Reason
}

func (c *Controller) validityEvent(ctx context.Context, kind string, o config.Object, v config.Validity) {
	log := ctrl.LoggerFrom(ctx)
	if v.Valid {
		c.eventf(o, corev1.EventTypeNormal, EventConfigValid, "Validate", "%s %s is valid again and in force", kind, o.GetName())
		log.Info("configuration object valid again", "kind", kind, "name", o.GetName())
		return
	}
	c.eventf(o, corev1.EventTypeWarning, EventConfigInvalid, "Validate", "%s: %s", v.Reason, v.Message)
	log.Info("configuration object disabled", "kind", kind, "name", o.GetName(), "reason", v.Reason, "message", v.Message)
}

// setValidityGauges sets herald_config_object_valid for every object cfg
// knows and drops the series of objects that no longer exist.
func (c *Controller) setValidityGauges(objs config.Objects, cfg *config.Config) {
	live := map[[2]string]bool{}
	objs.Each(func(kind string, o config.Object) {
		if v := cfg.Validity(kind, o.GetName()); v.Reason != "" {
			live[[2]string{kind, o.GetName()}] = true
			c.metrics.configObjectValid.WithLabelValues(kind, o.GetName()).Set(boolGauge(v.Valid))
		}
	})
	for id := range c.validSeries {
		if !live[id] {
			c.metrics.configObjectValid.DeleteLabelValues(id[0], id[1])
			delete(c.validSeries, id)
		}
	}
	for id := range live {
		c.validSeries[id] = true
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// conditionsOf returns the conditions of a configuration object's status.
func conditionsOf(o config.Object) *[]metav1.Condition {
	if c := v1beta1.ConditionsOf(o); c != nil {
		return c
	}
	panic(fmt.Sprintf("conditionsOf: not a configuration object: %T", o))
}

// statusEqual compares two versions of an object's status, ignoring
// condition transition times (SetStatusCondition keeps them).
func statusEqual(a, b config.Object) bool {
	if pa, ok := a.(*v1beta1.IPAddressPool); ok {
		pb := b.(*v1beta1.IPAddressPool)
		if pa.Status.AssignedIPv4 != pb.Status.AssignedIPv4 || pa.Status.AvailableIPv4 != pb.Status.AvailableIPv4 ||
			pa.Status.AssignedIPv6 != pb.Status.AssignedIPv6 || pa.Status.AvailableIPv6 != pb.Status.AvailableIPv6 {
			return false
		}
	}
	return slices.EqualFunc(*conditionsOf(a), *conditionsOf(b), func(x, y metav1.Condition) bool {
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
