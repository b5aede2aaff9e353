package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/allocate"
)

// Event reasons on Services.
const (
	EventIPAllocated      = v1beta1.EventIPAllocated
	EventIPBackfilled     = v1beta1.EventIPBackfilled
	EventIPReleased       = v1beta1.EventIPReleased
	EventAllocationFailed = v1beta1.EventAllocationFailed
)

type serviceReconciler struct{ *Controller }

func (c *Controller) setupServices(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("service").
		For(&corev1.Service{}, builder.WithPredicates(predicate.Funcs{
			// Herald's own writes (status conditions, finalizer, pool
			// annotation) need no reaction; spec, label, ingress and other
			// metadata changes do.
			UpdateFunc: func(e event.UpdateEvent) bool {
				o, n := e.ObjectOld.(*corev1.Service), e.ObjectNew.(*corev1.Service)
				// Services do not all bump metadata.generation on spec changes; compare the spec.
				if !equality.Semantic.DeepEqual(o.Spec, n.Spec) || !maps.Equal(o.Labels, n.Labels) ||
					o.DeletionTimestamp != n.DeletionTimestamp || !ingressEqual(o.Status.LoadBalancer.Ingress, n.Status.LoadBalancer.Ingress) {
					return true
				}
				return !ownMetadataWrite(o, n)
			},
		})).
		WatchesRawSource(source.Channel(c.serviceEvents, &handler.EnqueueRequestForObject{})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(c.servicesInNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: cmp.Or(max(c.opts.Workers, 0), 4)}).
		Complete(serviceReconciler{c})
}

// ownMetadataWrite says whether the only metadata change from o to n is
// the controller's own write: adding the cleanup finalizer and setting the
// pool annotation. Reconciling it again would decide nothing new; it used to
// cost one extra reconcile per Service. Removing either still triggers one.
func ownMetadataWrite(o, n *corev1.Service) bool {
	if !controllerutil.ContainsFinalizer(n, FinalizerCleanup) || (o.Annotations[AnnotationAllocatedFromPool] != "" && n.Annotations[AnnotationAllocatedFromPool] == "") {
		return slices.Equal(o.Finalizers, n.Finalizers) && maps.Equal(o.Annotations, n.Annotations)
	}
	strip := func(s *corev1.Service) ([]string, map[string]string) {
		a := maps.Clone(s.Annotations)
		delete(a, AnnotationAllocatedFromPool)
		return slices.DeleteFunc(slices.Clone(s.Finalizers), func(f string) bool { return f == FinalizerCleanup }), a
	}
	of, oa := strip(o)
	nf, na := strip(n)
	return slices.Equal(of, nf) && maps.Equal(oa, na)
}

// servicesInNamespace maps a namespace label change to its LoadBalancer
// Services: pool namespaceSelectors may now match them or stop matching.
func (c *Controller) servicesInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var list corev1.ServiceList
	if err := c.client.List(ctx, &list, client.InNamespace(o.GetName())); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if c.ours(&list.Items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}

// conflictRetry is how soon a Service whose write conflicted is looked at
// again (its newer version's event usually arrives first and wins).
const conflictRetry = 100 * time.Millisecond

func (r serviceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	defer func() { r.metrics.reconcileDuration.Observe(time.Since(start).Seconds()) }()
	key := req.Namespace + "/" + req.Name
	log := ctrl.LoggerFrom(ctx).WithValues("service", key)
	ctx = ctrl.LoggerInto(ctx, log)

	var svc corev1.Service
	if err := r.client.Get(ctx, req.NamespacedName, &svc); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		// Gone without our finalizer (or it was removed by hand): free its addresses.
		r.release(ctx, key, nil)
		return ctrl.Result{}, nil
	}
	if !r.ours(&svc) || svc.DeletionTimestamp != nil {
		if !r.wasOurs(&svc) {
			return ctrl.Result{}, nil // another implementation's Service: never touched
		}
		return ctrl.Result{}, r.cleanup(ctx, &svc)
	}

	r.mu.Lock()
	if err := r.ensureInitialized(ctx); err != nil {
		r.mu.Unlock()
		return ctrl.Result{}, err
	}
	nsLabels, err := r.labelsOfNamespace(ctx, svc.Namespace)
	if err != nil {
		r.mu.Unlock()
		return ctrl.Result{}, err
	}
	in, inErr := allocationInput(&svc, nsLabels)
	var res allocate.Result
	if inErr != nil {
		// A malformed request: keep whatever the Service holds and say why.
		pool, addrs := r.alloc.Holding(key)
		res = allocate.Result{Pool: pool, Addrs: addrs, State: stateOf(addrs, in), Reason: inErr.Error(), Err: inErr}
	} else {
		res = r.alloc.Assign(in)
		if errors.Is(res.Err, allocate.ErrStale) && r.cfg != nil {
			// The held addresses left their pool (it was removed or shrunk, or
			// stopped admitting the Service): the admin took them away, so the
			// Service moves. An invalid pool is frozen, not removed, so it
			// never makes a held address stale.
			released := r.alloc.Release(key)
			res = r.alloc.Assign(in)
			res.Released = append(released, res.Released...)
			res.Changed = true
		}
	}
	if len(res.Released) > 0 {
		r.enqueueWaiting()
	}
	r.mu.Unlock()

	r.metrics.observe(res)
	if res.Changed {
		r.enqueueConfig(poolStatusKey)
	}
	if err := r.write(ctx, &svc, res); err != nil {
		if apierrors.IsConflict(err) {
			// The cache was behind the apiserver (typically our own status
			// write of a moment ago): the newer object is on its way, so try
			// again on it instead of reporting an error.
			log.V(1).Info("write conflicted with a newer version; requeued", "error", err.Error())
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// stateOf classifies what a Service holds without asking the allocator for a
// new decision (used when its request cannot even be parsed).
func stateOf(addrs []netip.Addr, in allocate.Service) allocate.State {
	switch {
	case len(addrs) == 0:
		return allocate.Pending
	case len(addrs) < len(in.Families):
		return allocate.SingleStackFallback
	}
	return allocate.Complete
}

func (r serviceReconciler) labelsOfNamespace(ctx context.Context, name string) (map[string]string, error) {
	var ns corev1.Namespace
	if err := r.client.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	return ns.Labels, nil
}

// write converges the Service's status, annotation and Events to res.
func (r serviceReconciler) write(ctx context.Context, svc *corev1.Service, res allocate.Result) error {
	log := ctrl.LoggerFrom(ctx)
	cond := completeCondition(res, svc.Generation)
	ingress := desiredIngress(res.Addrs)
	failedBefore := meta.FindStatusCondition(svc.Status.Conditions, ConditionAddressesComplete)

	// Events first describe the decision; they are emitted only when it
	// changed, so re-reconciling an unchanged Service is silent.
	had := len(res.Addrs) - len(res.Added)
	switch {
	case len(res.Added) > 0 && had > 0:
		r.eventf(svc, corev1.EventTypeNormal, EventIPBackfilled, "Allocate",
			"added %s from pool %s; kept %s", joinAddrs(res.Added), res.Pool, joinAddrs(without(res.Addrs, res.Added)))
	case len(res.Added) > 0:
		r.eventf(svc, corev1.EventTypeNormal, EventIPAllocated, "Allocate",
			"assigned %s from pool %s%s", joinAddrs(res.Added), res.Pool, fallbackNote(res))
	}
	if len(res.Released) > 0 {
		r.eventf(svc, corev1.EventTypeNormal, EventIPReleased, "Release", "released %s", joinAddrs(res.Released))
	}
	if (res.Err != nil || res.State == allocate.Pending) && (failedBefore == nil || failedBefore.Message != cond.Message || res.Changed) {
		msg := res.Reason
		if res.Err != nil {
			msg = res.Err.Error()
		}
		r.eventf(svc, corev1.EventTypeWarning, EventAllocationFailed, "Allocate", "%s", msg)
	}
	for _, a := range res.Added {
		log.Info("address assigned", "address", a.String(), "pool", res.Pool)
	}
	for _, a := range res.Released {
		log.Info("address released", "address", a.String())
	}

	// Status first: it is what the speakers act on, so an address is
	// announced one write sooner. The metadata (finalizer, pool annotation)
	// follows in one write. Ordering is safe either way: a Service deleted
	// before its finalizer lands is seen as gone and released, and a
	// restarted controller rebuilds only from Services that still exist.
	if !ingressEqual(svc.Status.LoadBalancer.Ingress, ingress) || conditionChanged(svc.Status.Conditions, cond) {
		orig := svc.DeepCopy()
		svc.Status.LoadBalancer.Ingress = ingress
		meta.SetStatusCondition(&svc.Status.Conditions, cond)
		if err := r.client.Status().Patch(ctx, svc, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("patch status: %w", err)
		}
	}
	wantPool := ""
	if len(res.Addrs) > 0 {
		wantPool = res.Pool
	}
	if !controllerutil.ContainsFinalizer(svc, FinalizerCleanup) || svc.Annotations[AnnotationAllocatedFromPool] != wantPool {
		orig := svc.DeepCopy()
		controllerutil.AddFinalizer(svc, FinalizerCleanup)
		if wantPool == "" {
			delete(svc.Annotations, AnnotationAllocatedFromPool)
		} else {
			if svc.Annotations == nil {
				svc.Annotations = map[string]string{}
			}
			svc.Annotations[AnnotationAllocatedFromPool] = wantPool
		}
		if err := r.client.Patch(ctx, svc, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("patch finalizer and annotation %s: %w", AnnotationAllocatedFromPool, err)
		}
	}
	return nil
}

// cleanup releases a Service that is being deleted or stopped being a
// LoadBalancer of Herald's class, clears what Herald wrote and drops the
// finalizer.
func (r serviceReconciler) cleanup(ctx context.Context, svc *corev1.Service) error {
	key := svc.Namespace + "/" + svc.Name
	r.release(ctx, key, svc)
	if svc.DeletionTimestamp == nil && (len(svc.Status.LoadBalancer.Ingress) > 0 || meta.FindStatusCondition(svc.Status.Conditions, ConditionAddressesComplete) != nil) {
		orig := svc.DeepCopy()
		svc.Status.LoadBalancer.Ingress = nil
		meta.RemoveStatusCondition(&svc.Status.Conditions, ConditionAddressesComplete)
		if err := r.client.Status().Patch(ctx, svc, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("clear status: %w", err)
		}
	}
	_, annotated := svc.Annotations[AnnotationAllocatedFromPool]
	if controllerutil.ContainsFinalizer(svc, FinalizerCleanup) || (annotated && svc.DeletionTimestamp == nil) {
		orig := svc.DeepCopy()
		controllerutil.RemoveFinalizer(svc, FinalizerCleanup)
		if svc.DeletionTimestamp == nil {
			delete(svc.Annotations, AnnotationAllocatedFromPool)
		}
		if err := r.client.Patch(ctx, svc, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove finalizer: %w", err)
		}
	}
	return nil
}

// release frees a Service's addresses and wakes the Services that could use them.
func (c *Controller) release(ctx context.Context, key string, svc *corev1.Service) {
	c.mu.Lock()
	if err := c.ensureInitialized(ctx); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "initialize before release")
	}
	released := c.alloc.Release(key)
	if len(released) > 0 {
		c.enqueueWaiting()
	}
	c.mu.Unlock()
	if len(released) == 0 {
		return
	}
	c.enqueueConfig(poolStatusKey)
	for _, a := range released {
		ctrl.LoggerFrom(ctx).Info("address released", "service", key, "address", a.String())
	}
	if svc != nil {
		c.eventf(svc, corev1.EventTypeNormal, EventIPReleased, "Release", "released %s", joinAddrs(released))
	}
}

func fallbackNote(res allocate.Result) string {
	if res.State != allocate.SingleStackFallback {
		return ""
	}
	return "; " + res.Reason
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func without(all, drop []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range all {
		if !slices.Contains(drop, a) {
			out = append(out, a)
		}
	}
	return out
}
