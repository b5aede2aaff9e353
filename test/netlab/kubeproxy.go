package netlab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// KubeProxy is a real kube-proxy running in a node's namespace, as it would
// with hostNetwork on that node.
type KubeProxy struct {
	*Proc
	Node    string
	Healthz string // http://<node address>:10256/healthz
}

// StartKubeProxy runs the kube-proxy binary in the node's namespace against
// the apiserver of kubeconfig: nftables mode, the node's name as its
// hostname, healthz and metrics on the node's own LAN address. The conntrack
// settings that would write sysctls are all 0 (kube-proxy then leaves them
// alone), so nothing outside the namespace changes; clusterCIDRs tell it
// which sources are pods.
func (l *Lab) StartKubeProxy(bin, kubeconfig, node string, clusterCIDRs ...netip.Prefix) (*KubeProxy, error) {
	h := l.Host(node)
	cidrs := make([]string, len(clusterCIDRs))
	for i, c := range clusterCIDRs {
		cidrs[i] = c.String()
	}
	addr := h.Addr4().String()
	p, err := h.Start(bin,
		"--kubeconfig", kubeconfig,
		"--hostname-override", node,
		"--proxy-mode", "nftables",
		"--cluster-cidr", strings.Join(cidrs, ","),
		"--healthz-bind-address", addr+":10256",
		"--metrics-bind-address", addr+":10249",
		"--nodeport-addresses", "primary",
		"--conntrack-max-per-core", "0",
		"--conntrack-min", "0",
		"--conntrack-tcp-timeout-established", "0",
		"--conntrack-tcp-timeout-close-wait", "0",
		"--conntrack-udp-timeout", "0",
		"--conntrack-udp-timeout-stream", "0",
		"--oom-score-adj", "0",
		"--v", "1",
	)
	if err != nil {
		return nil, err
	}
	return &KubeProxy{Proc: p, Node: node, Healthz: "http://" + addr + ":10256/healthz"}, nil
}

// WaitHealthy waits until kube-proxy's healthz answers 200 (it has synced its
// rules once), or fails with its log tail.
func (k *KubeProxy) WaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-k.Done():
			return fmt.Errorf("kube-proxy on %s exited: %v\n%s", k.Node, k.Err(), tailLines(k.Output(), 30))
		default:
		}
		if _, err = k.Host.Output("curl", "-sf", "--max-time", "1", k.Healthz); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("kube-proxy on %s not healthy after %s: %v\n%s", k.Node, timeout, err, tailLines(k.Output(), 30))
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
