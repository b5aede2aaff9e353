// Command controller assigns LoadBalancer Services their addresses from
// Herald's IPAddressPools.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/kube"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "controller:", err)
		os.Exit(1)
	}
}

func run() error {
	// Our own flag set: controller-runtime registers a global --kubeconfig.
	fs := flag.NewFlagSet("controller", flag.ExitOnError)
	var (
		kubeconfig    = fs.String("kubeconfig", "", "path to a kubeconfig; empty uses the in-cluster configuration")
		namespace     = fs.String("namespace", "herald-system", "namespace holding Herald's configuration objects and the leader-election lease")
		lbClass       = fs.String("lb-class", "", "handle only Services of this spec.loadBalancerClass; empty handles Services with no class")
		leaderElect   = fs.Bool("leader-elect", true, "elect one active replica through the herald-controller Lease; false only for a single replica")
		metricsAddr   = fs.String("metrics-bind-address", "127.0.0.1:7472", "address of the Prometheus metrics endpoint (the manifests use :7472, the pod's own addresses); 0 disables it")
		probeAddr     = fs.String("health-probe-bind-address", "127.0.0.1:7473", "address of /healthz and /readyz (the manifests use :7473); 0 disables them")
		memberlistKey = fs.String("memberlist-secret", "", "create this Secret (in --namespace) with a random key when it is missing, for the speakers' --memberlist-secret; empty creates none")
		qps           = fs.Float64("kube-api-qps", 200, "client requests per second to the apiserver (client-go's default of 5 is far too low for thousands of Services)")
		burst         = fs.Int("kube-api-burst", 400, "client request burst to the apiserver")
		workers       = fs.Int("service-workers", 4, "Services reconciled in parallel (decisions stay serialized; API writes overlap)")
		leaseDuration = fs.Duration("leader-lease-duration", 15*time.Second, "how long a lost leader's lease blocks the next one")
		logLevel      = fs.String("log-level", "info", "debug, info, warn or error")
	)
	_ = fs.Parse(os.Args[1:])

	logger, err := kube.NewLogger(*logLevel)
	if err != nil {
		return err
	}
	ctrl.SetLogger(logr.FromSlogHandler(logger.Handler()))
	slog.SetDefault(logger)

	cfg, err := kube.RESTConfig(*kubeconfig, *qps, *burst)
	if err != nil {
		return err
	}
	renew := *leaseDuration * 2 / 3
	retry := *leaseDuration / 5
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        kube.NewScheme(),
		Metrics:                       metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:        *probeAddr,
		LeaderElection:                *leaderElect,
		LeaderElectionID:              "herald-controller",
		LeaderElectionNamespace:       *namespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 leaseDuration,
		RenewDeadline:                 &renew,
		RetryPeriod:                   &retry,
		Cache: cache.Options{SyncPeriod: new(controller.ResyncPeriod), ByObject: map[client.Object]cache.ByObject{
			&v1beta1.IPAddressPool{}:    {Namespaces: map[string]cache.Config{*namespace: {}}},
			&v1beta1.L2Advertisement{}:  {Namespaces: map[string]cache.Config{*namespace: {}}},
			&v1beta1.BGPAdvertisement{}: {Namespaces: map[string]cache.Config{*namespace: {}}},
			&v1beta1.BGPPeer{}:          {Namespaces: map[string]cache.Config{*namespace: {}}},
			&v1beta1.Community{}:        {Namespaces: map[string]cache.Config{*namespace: {}}},
			&v1beta1.BFDProfile{}:       {Namespaces: map[string]cache.Config{*namespace: {}}},
		}},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if _, err := controller.Setup(mgr, controller.Options{Namespace: *namespace, LBClass: *lbClass, Workers: *workers, Registerer: ctrlmetrics.Registry}); err != nil {
		return err
	}
	if err := errors.Join(controller.AddMemberlistSecret(mgr, *namespace, *memberlistKey),
		mgr.AddHealthzCheck("healthz", healthz.Ping), mgr.AddReadyzCheck("readyz", healthz.Ping)); err != nil {
		return err
	}
	logger.Info("starting controller", "namespace", *namespace, "lbClass", *lbClass, "leaderElect", *leaderElect)
	return mgr.Start(ctrl.SetupSignalHandler())
}
