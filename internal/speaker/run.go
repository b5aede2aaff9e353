package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/pkg/bgp"
	"github.com/herald-lb/herald/pkg/layer2"
	"github.com/herald-lb/herald/pkg/members"
)

// RunOptions are the speaker binary's flags.
type RunOptions struct {
	Kubeconfig, NodeName, Namespace, LBClass string
	MetricsAddr, ProbeAddr, LogLevel         string
	Layer2, BGP, Memberlist                  bool
	MemberlistBind                           string
	MemberlistPort                           int
	MemberlistSecret                         string
	MemberlistInsecure                       bool
	BGPPort                                  int
	BGPListenAddress                         string // empty = all addresses
	BurstCount                               int
	BurstInterval, Refresh, HandBack         time.Duration
	QPS                                      float64
	Burst                                    int
}

// Run runs the speaker until ctx ends, then withdraws its announcements:
// it stops answering first (instant), then leaves the membership and
// withdraws BGP routes side by side.
func Run(ctx context.Context, f RunOptions) error {
	if f.NodeName == "" {
		return errors.New("--node-name (or $NODE_NAME) is required")
	}
	logger, err := kube.NewLogger(f.LogLevel)
	if err != nil {
		return err
	}
	base := logger // pkg/members adds its own "node" key
	logger = logger.With("node", f.NodeName)
	ctrl.SetLogger(logr.FromSlogHandler(logger.Handler()))
	slog.SetDefault(logger)

	cfg, err := kube.RESTConfig(f.Kubeconfig, f.QPS, f.Burst)
	if err != nil {
		return err
	}
	direct, err := client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return err
	}
	node, err := waitNode(ctx, direct, f.NodeName, logger)
	if err != nil {
		return err
	}
	opts := Options{NodeName: f.NodeName, Namespace: f.Namespace, LBClass: f.LBClass,
		Links: layer2.NewLinks(ctx), HandBackDelay: f.HandBack,
		Registerer: ctrlmetrics.Registry}

	var teardown []func(context.Context)
	if f.Layer2 {
		l2 := layer2.New(layer2.Options{Logger: logger.With("component", "layer2"), BurstCount: f.BurstCount,
			BurstInterval: f.BurstInterval, RefreshInterval: f.Refresh, Registerer: ctrlmetrics.Registry})
		opts.Layer2 = l2
		// Stop answering first: a brief gap is better than two owners.
		teardown = append(teardown, func(context.Context) { _ = l2.Close() })
	}
	if f.Memberlist {
		m, err := startMembers(ctx, direct, f, node, base)
		if err != nil {
			return err
		}
		opts.Liveness = m
		// Leaving tells the others at once, so they take over without waiting
		// for failure detection.
		teardown = append(teardown, func(context.Context) {
			if err := m.Leave(time.Second); err != nil {
				logger.Warn("memberlist leave", "error", err.Error())
			}
			_ = m.Close()
		})
	}
	if f.BGP {
		routerID, ok := InternalIP(node, false)
		if !ok {
			return fmt.Errorf("node %s has no IPv4 InternalIP to use as BGP router ID", f.NodeName)
		}
		var listen []netip.Addr
		if f.BGPListenAddress != "" {
			a, err := netip.ParseAddr(f.BGPListenAddress)
			if err != nil {
				return fmt.Errorf("--bgp-listen-address: %w", err)
			}
			listen = append(listen, a)
		}
		b, err := bgp.New(bgp.Options{Logger: logger.With("component", "bgp"), RouterID: routerID, ListenPort: int32(f.BGPPort),
			ListenAddresses: listen, Registerer: ctrlmetrics.Registry})
		if err != nil {
			return err
		}
		opts.BGP = b
		teardown = append(teardown, func(ctx context.Context) {
			if err := b.Shutdown(ctx); err != nil {
				logger.Warn("bgp shutdown", "error", err.Error())
			}
		})
	}

	own := labels.SelectorFromSet(labels.Set{LabelNode: labelValue(f.NodeName)}) // this node's status objects only
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 kube.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: f.MetricsAddr},
		HealthProbeBindAddress: f.ProbeAddr,
		Cache: cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: map[client.Object]cache.ByObject{
			&corev1.Service{}:           {Transform: trimService},
			&corev1.Secret{}:            {Namespaces: map[string]cache.Config{f.Namespace: {}}},
			&v1beta1.IPAddressPool{}:    {Namespaces: map[string]cache.Config{f.Namespace: {}}},
			&v1beta1.L2Advertisement{}:  {Namespaces: map[string]cache.Config{f.Namespace: {}}},
			&v1beta1.BGPAdvertisement{}: {Namespaces: map[string]cache.Config{f.Namespace: {}}},
			&v1beta1.BGPPeer{}:          {Namespaces: map[string]cache.Config{f.Namespace: {}}},
			&v1beta1.Community{}:        {Namespaces: map[string]cache.Config{f.Namespace: {}}},
			&v1beta1.BFDProfile{}:       {Namespaces: map[string]cache.Config{f.Namespace: {}}},
			&v1beta1.ServiceL2Status{}:  {Namespaces: map[string]cache.Config{f.Namespace: {}}, Label: own},
			&v1beta1.ServiceBGPStatus{}: {Namespaces: map[string]cache.Config{f.Namespace: {}}, Label: own},
		}},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if _, err := Setup(mgr, opts); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}

	// Tear the wire down as soon as the signal arrives, in parallel with the
	// manager's own shutdown, so the successor takes over at once.
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		logger.Info("shutting down: withdrawing announcements")
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Stop answering first (instant), then leave memberlist and withdraw
		// BGP routes side by side: neither waits for the other.
		var wg sync.WaitGroup
		for i, t := range teardown {
			if i == 0 && f.Layer2 {
				t(tctx)
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); t(tctx) }()
		}
		wg.Wait()
	}()
	logger.Info("starting speaker", "namespace", f.Namespace, "layer2", f.Layer2, "bgp", f.BGP, "memberlist", f.Memberlist)
	err = mgr.Start(ctx)
	<-done
	return err
}

// trimService keeps only what the speaker reads: a Service that is not a
// LoadBalancer is cached as its name and type (the speaker skips it), and no
// Service keeps its managedFields.
func trimService(o any) (any, error) {
	svc, ok := o.(*corev1.Service)
	if !ok {
		return o, nil
	}
	svc.ManagedFields = nil
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		return svc, nil
	}
	stub := &corev1.Service{TypeMeta: svc.TypeMeta}
	stub.Name, stub.Namespace, stub.ResourceVersion, stub.UID = svc.Name, svc.Namespace, svc.ResourceVersion, svc.UID
	stub.Spec.Type = svc.Spec.Type
	return stub, nil
}

// waitNode reads this node's object, waiting while it does not exist yet
// (a speaker may start before its node registers).
func waitNode(ctx context.Context, c client.Client, name string, log *slog.Logger) (*corev1.Node, error) {
	for {
		var n corev1.Node
		err := c.Get(ctx, client.ObjectKey{Name: name}, &n)
		if err == nil {
			return &n, nil
		}
		if !apierrors.IsNotFound(err) {
			log.Warn("reading own Node object", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// startMembers joins the speakers' memberlist, encrypted with the key from
// the memberlist Secret when it exists.
func startMembers(ctx context.Context, c client.Client, f RunOptions, node *corev1.Node, log *slog.Logger) (*members.Members, error) {
	bind := f.MemberlistBind
	if bind == "" {
		a, ok := InternalIP(node, false)
		if !ok {
			if a, ok = InternalIP(node, true); !ok {
				return nil, fmt.Errorf("node %s has no InternalIP for memberlist; set --memberlist-bind-address", f.NodeName)
			}
		}
		bind = a.String()
	}
	addr, err := netip.ParseAddr(bind)
	if err != nil {
		return nil, fmt.Errorf("--memberlist-bind-address %q: %w", bind, err)
	}
	var key []byte
	var sec corev1.Secret
	switch err := c.Get(ctx, client.ObjectKey{Namespace: f.Namespace, Name: f.MemberlistSecret}, &sec); {
	case err == nil:
		key = sec.Data["secretkey"]
		if len(key) == 0 {
			return nil, fmt.Errorf("memberlist secret %s/%s has no key \"secretkey\"", f.Namespace, f.MemberlistSecret)
		}
	case apierrors.IsNotFound(err) && f.MemberlistInsecure:
		log.Warn("memberlist secret not found; gossip is unencrypted and unauthenticated (--memberlist-insecure)", "secret", f.Namespace+"/"+f.MemberlistSecret)
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("memberlist secret %s/%s not found: without it anyone reaching the memberlist port could forge gossip; "+
			"create it with `kubectl -n %s create secret generic %s --from-literal=secretkey=$(openssl rand -base64 24)`, "+
			"or start with --memberlist-insecure to gossip unencrypted", f.Namespace, f.MemberlistSecret, f.Namespace, f.MemberlistSecret)
	default:
		return nil, fmt.Errorf("memberlist secret %s/%s: %w", f.Namespace, f.MemberlistSecret, err)
	}
	return members.New(members.Options{NodeName: f.NodeName, BindAddr: addr, Port: f.MemberlistPort, SecretKey: key,
		Insecure: f.MemberlistInsecure, Logger: log, Registerer: ctrlmetrics.Registry})
}
