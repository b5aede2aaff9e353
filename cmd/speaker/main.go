// Command speaker runs on every node (a DaemonSet with hostNetwork) and
// makes the addresses Herald assigns reachable: by answering ARP/NDP for the
// addresses this node owns, and by advertising routes to BGP peers.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/herald-lb/herald/internal/speaker"
)

func main() {
	if err := speaker.Run(ctrl.SetupSignalHandler(), parseFlags()); err != nil {
		fmt.Fprintln(os.Stderr, "speaker:", err)
		os.Exit(1)
	}
}

func parseFlags() speaker.RunOptions {
	var f speaker.RunOptions
	// Our own flag set: controller-runtime registers a global --kubeconfig.
	fs := flag.NewFlagSet("speaker", flag.ExitOnError)
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty uses the in-cluster configuration")
	fs.StringVar(&f.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default: $NODE_NAME)")
	fs.StringVar(&f.Namespace, "namespace", "herald-system", "namespace holding Herald's configuration and status objects")
	fs.StringVar(&f.LBClass, "lb-class", "", "announce only Services of this spec.loadBalancerClass; empty announces Services with no class")
	// Loopback by default: with hostNetwork ":7474" would serve every host
	// address; the manifests bind the pod's (= the node's) IP.
	fs.StringVar(&f.MetricsAddr, "metrics-bind-address", "127.0.0.1:7474", "address of the Prometheus metrics endpoint, e.g. [$(POD_IP)]:7474 (brackets fit both families); 0 disables it")
	fs.StringVar(&f.ProbeAddr, "health-probe-bind-address", "127.0.0.1:7475", "address of /healthz and /readyz, e.g. [$(POD_IP)]:7475; 0 disables them")
	fs.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.Layer2, "layer2", true, "answer ARP/NDP for the addresses this node owns")
	fs.BoolVar(&f.BGP, "bgp", true, "advertise routes to the BGPPeers that select this node")
	fs.BoolVar(&f.Memberlist, "memberlist", true, "detect dead speakers with memberlist (else Node readiness decides)")
	fs.StringVar(&f.MemberlistBind, "memberlist-bind-address", "", "address memberlist binds to (default: the node's InternalIP)")
	fs.IntVar(&f.MemberlistPort, "memberlist-port", 7946, "memberlist TCP/UDP port")
	fs.StringVar(&f.MemberlistSecret, "memberlist-secret", "herald-memberlist", "Secret (in --namespace) whose key \"secretkey\" encrypts memberlist traffic; the speaker refuses to start without it unless --memberlist-insecure")
	fs.BoolVar(&f.MemberlistInsecure, "memberlist-insecure", false, "allow unencrypted, unauthenticated memberlist gossip when the Secret is absent")
	fs.IntVar(&f.BGPPort, "bgp-listen-port", 179, "TCP port to accept BGP sessions on while a BGPPeer selects this node (nothing listens otherwise); -1 only dials")
	fs.StringVar(&f.BGPListenAddress, "bgp-listen-address", "", "address to accept BGP sessions on; empty = all")
	fs.IntVar(&f.BurstCount, "announce-burst-count", 3, "gratuitous ARP / unsolicited NA messages sent on takeover")
	fs.DurationVar(&f.BurstInterval, "announce-burst-interval", time.Second, "spacing of the takeover burst")
	fs.DurationVar(&f.Refresh, "announce-refresh-interval", 0, "re-announce owned addresses this often; 0 disables")
	fs.DurationVar(&f.HandBack, "handback-delay", 500*time.Millisecond, "how long a node waits before answering for an address another live node may still answer for (after a restart or a healed cut)")
	fs.Float64Var(&f.QPS, "kube-api-qps", 50, "client requests per second to the apiserver")
	fs.IntVar(&f.Burst, "kube-api-burst", 100, "client request burst to the apiserver")
	_ = fs.Parse(os.Args[1:])
	return f
}
