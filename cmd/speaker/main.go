// Command speaker runs on every node (a DaemonSet with hostNetwork) and
// makes the addresses Herald assigns reachable: by answering ARP/NDP for the
// addresses this node owns, and by advertising routes to BGP peers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/speaker"
	"github.com/herald-lb/herald/pkg/bgp"
	"github.com/herald-lb/herald/pkg/layer2"
	"github.com/herald-lb/herald/pkg/members"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "speaker:", err)
		os.Exit(1)
	}
}

type flags struct {
	kubeconfig, nodeName, namespace, lbClass string
	metricsAddr, probeAddr, logLevel         string
	layer2, bgp, memberlist                  bool
	mlBind                                   string
	mlPort                                   int
	mlSecret                                 string
	bgpPort                                  int
	burstCount                               int
	burstInterval, refresh, handBack         time.Duration
	qps                                      float64
	burst                                    int
}

func parseFlags() flags {
	var f flags
	// Our own flag set: controller-runtime registers a global --kubeconfig.
	fs := flag.NewFlagSet("speaker", flag.ExitOnError)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty uses the in-cluster configuration")
	fs.StringVar(&f.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default: $NODE_NAME)")
	fs.StringVar(&f.namespace, "namespace", "herald-system", "namespace holding Herald's configuration and status objects")
	fs.StringVar(&f.lbClass, "lb-class", "", "announce only Services of this spec.loadBalancerClass; empty announces Services with no class")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":7474", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":7475", "address of /healthz and /readyz; 0 disables them")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.layer2, "layer2", true, "answer ARP/NDP for the addresses this node owns")
	fs.BoolVar(&f.bgp, "bgp", true, "advertise routes to the BGPPeers that select this node")
	fs.BoolVar(&f.memberlist, "memberlist", true, "detect dead speakers with memberlist (else Node readiness decides)")
	fs.StringVar(&f.mlBind, "memberlist-bind-address", "", "address memberlist binds to (default: the node's InternalIP)")
	fs.IntVar(&f.mlPort, "memberlist-port", 7946, "memberlist TCP/UDP port")
	fs.StringVar(&f.mlSecret, "memberlist-secret", "herald-memberlist", "Secret (in --namespace) whose key \"secretkey\" encrypts memberlist traffic; absent means unencrypted")
	fs.IntVar(&f.bgpPort, "bgp-listen-port", 179, "TCP port to accept BGP sessions on; -1 only dials")
	fs.IntVar(&f.burstCount, "announce-burst-count", 3, "gratuitous ARP / unsolicited NA messages sent on takeover")
	fs.DurationVar(&f.burstInterval, "announce-burst-interval", time.Second, "spacing of the takeover burst")
	fs.DurationVar(&f.refresh, "announce-refresh-interval", 0, "re-announce owned addresses this often; 0 disables")
	fs.DurationVar(&f.handBack, "handback-delay", 500*time.Millisecond, "how long a node waits before answering for an address another live node may still answer for (after a restart or a healed cut)")
	fs.Float64Var(&f.qps, "kube-api-qps", 50, "client requests per second to the apiserver")
	fs.IntVar(&f.burst, "kube-api-burst", 100, "client request burst to the apiserver")
	_ = fs.Parse(os.Args[1:])
	return f
}

func run() error {
	f := parseFlags()
	if f.nodeName == "" {
		return errors.New("--node-name (or $NODE_NAME) is required")
	}
	logger, err := kube.NewLogger(f.logLevel)
	if err != nil {
		return err
	}
	base := logger // pkg/members adds its own "node" key
	logger = logger.With("node", f.nodeName)
	ctrl.SetLogger(logr.FromSlogHandler(logger.Handler()))
	slog.SetDefault(logger)

	cfg, err := kube.RESTConfig(f.kubeconfig, f.qps, f.burst)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	direct, err := client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return err
	}
	node, err := waitNode(ctx, direct, f.nodeName, logger)
	if err != nil {
		return err
	}
	opts := speaker.Options{NodeName: f.nodeName, Namespace: f.namespace, LBClass: f.lbClass,
		DefaultInterfaces: layer2.DefaultInterfaces, Carrier: carrier, HandBackDelay: f.handBack,
		Registerer: ctrlmetrics.Registry}

	var teardown []func(context.Context)
	if f.layer2 {
		l2 := layer2.New(layer2.Options{Logger: logger.With("component", "layer2"), BurstCount: f.burstCount,
			BurstInterval: f.burstInterval, RefreshInterval: f.refresh, Registerer: ctrlmetrics.Registry})
		opts.Layer2 = l2
		// Stop answering first: a brief gap is better than two owners.
		teardown = append(teardown, func(context.Context) { _ = l2.Close() })
	}
	if f.memberlist {
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
	if f.bgp {
		routerID, ok := speaker.InternalIP(node, false)
		if !ok {
			return fmt.Errorf("node %s has no IPv4 InternalIP to use as BGP router ID", f.nodeName)
		}
		b, err := bgp.New(bgp.Options{Logger: logger.With("component", "bgp"), RouterID: routerID, ListenPort: int32(f.bgpPort), Registerer: ctrlmetrics.Registry})
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

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 kube.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress: f.probeAddr,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:            {Namespaces: map[string]cache.Config{f.namespace: {}}},
			&v1beta1.IPAddressPool{}:    {Namespaces: map[string]cache.Config{f.namespace: {}}},
			&v1beta1.L2Advertisement{}:  {Namespaces: map[string]cache.Config{f.namespace: {}}},
			&v1beta1.BGPAdvertisement{}: {Namespaces: map[string]cache.Config{f.namespace: {}}},
			&v1beta1.BGPPeer{}:          {Namespaces: map[string]cache.Config{f.namespace: {}}},
			&v1beta1.Community{}:        {Namespaces: map[string]cache.Config{f.namespace: {}}},
			&v1beta1.BFDProfile{}:       {Namespaces: map[string]cache.Config{f.namespace: {}}},
			&v1beta1.ServiceL2Status{}:  {Namespaces: map[string]cache.Config{f.namespace: {}}},
			&v1beta1.ServiceBGPStatus{}: {Namespaces: map[string]cache.Config{f.namespace: {}}},
		}},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if _, err := speaker.Setup(mgr, opts); err != nil {
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
			if i == 0 && f.layer2 {
				t(tctx)
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); t(tctx) }()
		}
		wg.Wait()
	}()
	logger.Info("starting speaker", "namespace", f.namespace, "layer2", f.layer2, "bgp", f.bgp, "memberlist", f.memberlist)
	err = mgr.Start(ctx)
	<-done
	return err
}

// carrier reports whether an interface is up with carrier (operstate up).
func carrier(iface string) bool {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return false
	}
	return l.Attrs().OperState == netlink.OperUp || (l.Attrs().OperState == netlink.OperUnknown && l.Attrs().Flags&net.FlagUp != 0)
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
func startMembers(ctx context.Context, c client.Client, f flags, node *corev1.Node, log *slog.Logger) (*members.Members, error) {
	bind := f.mlBind
	if bind == "" {
		a, ok := speaker.InternalIP(node, false)
		if !ok {
			if a, ok = speaker.InternalIP(node, true); !ok {
				return nil, fmt.Errorf("node %s has no InternalIP for memberlist; set --memberlist-bind-address", f.nodeName)
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
	switch err := c.Get(ctx, client.ObjectKey{Namespace: f.namespace, Name: f.mlSecret}, &sec); {
	case err == nil:
		key = sec.Data["secretkey"]
		if len(key) == 0 {
			return nil, fmt.Errorf("memberlist secret %s/%s has no key \"secretkey\"", f.namespace, f.mlSecret)
		}
	case apierrors.IsNotFound(err):
		log.Warn("memberlist secret not found; gossip is unencrypted", "secret", f.namespace+"/"+f.mlSecret)
	default:
		return nil, fmt.Errorf("memberlist secret %s/%s: %w", f.namespace, f.mlSecret, err)
	}
	return members.New(members.Options{NodeName: f.nodeName, BindAddr: addr, Port: f.mlPort, SecretKey: key,
		Logger: log, Registerer: ctrlmetrics.Registry})
}
