// Package controller is the Kubernetes glue around pkg/allocate: it watches
// Services and Herald's configuration, asks the allocator for decisions and
// writes them back as Service status, annotations, pool status and Events.
// Every decision is made in pkg/allocate; this package only observes,
// translates and converges.
package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/herald-lb/herald/pkg/allocate"
	"github.com/herald-lb/herald/pkg/config"
)

// FinalizerCleanup is the finalizer cloud providers use so that deleting a
// LoadBalancer Service waits until its addresses are released.
const FinalizerCleanup = "service.kubernetes.io/load-balancer-cleanup"

// Options configure the controller.
type Options struct {
	// Namespace holds Herald's configuration objects.
	Namespace string
	// LBClass selects the Services handled: with "" those whose
	// spec.loadBalancerClass is unset, else only those of this class.
	LBClass string
	// Workers is how many Services are reconciled in parallel; 0 means 4.
	// Allocation decisions are serialized by the allocator's lock whatever
	// the count; only the API writes overlap.
	Workers int
	// Registerer receives the controller's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Controller holds the allocator and the configuration in force, shared by
// the Service and configuration reconcilers.
type Controller struct {
	client   client.Client
	recorder recorder.EventRecorder
	opts     Options
	metrics  *metrics

	mu          sync.Mutex
	alloc       *allocate.Allocator
	cfg         *config.Config // configuration in force; nil until first loaded
	initialized bool
	// What the configuration depends on, to skip rebuilding pools on status writes.
	configFingerprint uint64
	// Warnings last reported per object ("Kind/name"), so Events fire on change only.
	reported map[string]string
	// Series of herald_config_object_valid written, to delete those of
	// deleted objects. Used by the configuration reconciler only.
	validSeries map[[2]string]bool

	// Wakes Services (and the pool-status writer) from outside their own events.
	serviceEvents chan event.GenericEvent
	configEvents  chan event.GenericEvent
}

// New makes a controller; Setup registers it with a manager.
func New(c client.Client, rec recorder.EventRecorder, opts Options) *Controller {
	return &Controller{
		client:        c,
		recorder:      rec,
		opts:          opts,
		metrics:       newMetrics(opts.Registerer),
		alloc:         allocate.New(),
		reported:      map[string]string{},
		validSeries:   map[[2]string]bool{},
		serviceEvents: make(chan event.GenericEvent, 1024),
		configEvents:  make(chan event.GenericEvent, 16),
	}
}

// LogElected is logged when this replica starts making decisions.
const LogElected = "elected leader; reconciling"

// Setup creates the controller's reconcilers on mgr.
func Setup(mgr ctrl.Manager, opts Options) (*Controller, error) {
	c := New(mgr.GetClient(), mgr.GetEventRecorder("herald-controller"), opts)
	// A plain runnable runs only on the leader: it marks when decisions start.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		mgr.GetLogger().Info(LogElected, "namespace", opts.Namespace)
		<-ctx.Done()
		return nil
	})); err != nil {
		return nil, err
	}
	if err := c.setupServices(mgr); err != nil {
		return nil, err
	}
	if err := c.setupConfig(mgr); err != nil {
		return nil, err
	}
	return c, nil
}

// ours says whether Herald handles this Service: a LoadBalancer of Herald's
// class. Services of another class are never touched, not even their status.
func (c *Controller) ours(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if c.opts.LBClass == "" {
		return svc.Spec.LoadBalancerClass == nil
	}
	return svc.Spec.LoadBalancerClass != nil && *svc.Spec.LoadBalancerClass == c.opts.LBClass
}

// wasOurs says whether a Service that Herald does not (or no longer) handle
// carries Herald's traces to clean up. A LoadBalancer of another class was
// never Herald's (the class is immutable), so it is never touched; a Service
// that stopped being a LoadBalancer is Herald's if Herald allocated to it.
func (c *Controller) wasOurs(svc *corev1.Service) bool {
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && !c.ours(svc) {
		return false
	}
	if _, ok := svc.Annotations[AnnotationAllocatedFromPool]; ok {
		return true
	}
	c.mu.Lock()
	_, held := c.alloc.Holding(svc.Namespace + "/" + svc.Name)
	c.mu.Unlock()
	return len(held) > 0 || (svc.Spec.Type == corev1.ServiceTypeLoadBalancer && controllerutil.ContainsFinalizer(svc, FinalizerCleanup))
}

// ensureInitialized rebuilds the allocator from the cluster before the first
// decision: the configuration first, then every Service's held addresses in
// creation order, so a restart changes nobody's address and the first-come
// keeps a contested one. The caller holds c.mu.
func (c *Controller) ensureInitialized(ctx context.Context) error {
	if c.initialized {
		return nil
	}
	log := ctrl.LoggerFrom(ctx)
	if _, err := c.loadConfig(ctx); err != nil {
		return err
	}
	var list corev1.ServiceList
	if err := c.client.List(ctx, &list); err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	svcs := make([]*corev1.Service, 0, len(list.Items))
	for i := range list.Items {
		s := &list.Items[i]
		if c.ours(s) && s.DeletionTimestamp == nil && len(s.Status.LoadBalancer.Ingress) > 0 {
			svcs = append(svcs, s)
		}
	}
	sort.Slice(svcs, func(i, j int) bool {
		a, b := svcs[i], svcs[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	nsLabels, err := c.namespaceLabels(ctx)
	if err != nil {
		return err
	}
	restored := 0
	for _, s := range svcs {
		in, err := allocationInput(s, nsLabels[s.Namespace])
		if err != nil {
			// A malformed request does not make the held addresses less held.
			in.Requested = nil
		}
		if err := c.alloc.Restore(in, heldAddresses(s)); err != nil {
			log.Info("restoring a Service's addresses failed; it will be re-evaluated", "service", in.Key, "error", err.Error())
			c.enqueueService(types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
			continue
		}
		restored++
	}
	log.Info("allocator rebuilt from the cluster", "services", restored)
	c.initialized = true
	c.enqueueConfig(poolStatusKey)
	return nil
}

func (c *Controller) namespaceLabels(ctx context.Context) (map[string]map[string]string, error) {
	var nss corev1.NamespaceList
	if err := c.client.List(ctx, &nss); err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	out := make(map[string]map[string]string, len(nss.Items))
	for _, ns := range nss.Items {
		out[ns.Name] = ns.Labels
	}
	return out, nil
}

func (c *Controller) enqueueService(key types.NamespacedName) {
	svc := &corev1.Service{}
	svc.Namespace, svc.Name = key.Namespace, key.Name
	select {
	case c.serviceEvents <- event.GenericEvent{Object: svc}:
	default:
		// The channel only buffers; a full one means a burst of wake-ups, and
		// the periodic resync re-evaluates anything dropped here.
		go func() { c.serviceEvents <- event.GenericEvent{Object: svc} }()
	}
}

// enqueueWaiting wakes exactly the Services that could gain from a change in
// pools or freed addresses: pending ones and PreferDualStack ones missing a
// family. The caller holds c.mu.
func (c *Controller) enqueueWaiting() {
	for _, key := range c.alloc.Waiting() {
		if nn, ok := splitKey(key); ok {
			c.enqueueService(nn)
		}
	}
}

func splitKey(key string) (types.NamespacedName, bool) {
	ns, name, ok := strings.Cut(key, "/")
	return types.NamespacedName{Namespace: ns, Name: name}, ok
}

// ResyncPeriod is how often the manager's caches replay every object: it
// bounds how long a dropped wake-up can delay a decision.
const ResyncPeriod = 10 * time.Minute
