package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Pod networking as a simple CNI would set it up: every node owns a slice of
// the pod range, each pod is a network namespace joined to its node by a veth
// pair (a /32 and a /128 on the pod side, a host route on the node side), and
// every node routes the other nodes' slices via their LAN addresses.
//
// The ranges are documentation ranges that no pool of the tests uses:
// 198.51.100.192/26 (a /28 per node) and 2001:db8:4400::/48 (a /64 per node).
var (
	PodCIDR4 = netip.MustParsePrefix("198.51.100.192/26")
	PodCIDR6 = netip.MustParsePrefix("2001:db8:4400::/48")
)

// podGateway6 is the node side's address on every pod veth, as with the
// common CNI plugins (a link-local next hop the pod routes through).
const podGateway6 = "fe80::1"

// Pod is a backend namespace on a node.
type Pod struct {
	*Host
	Node   string
	V4, V6 netip.Addr
	veth   string // the node-side end
	srvs   []*http.Server
}

// nodeSlice returns the node's pod slices, by its position among nodes.
func nodeSlice(i int) (netip.Prefix, netip.Prefix) {
	b4 := PodCIDR4.Addr().As4()
	b4[3] += byte(16 * i)
	b6 := PodCIDR6.Addr().As16()
	b6[7] = byte(i + 1)
	return netip.PrefixFrom(netip.AddrFrom4(b4), 28), netip.PrefixFrom(netip.AddrFrom16(b6), 64)
}

// EnablePods gives each named node a slice of the pod ranges, turns on
// forwarding in the node namespaces (their own sysctls, not the host's) and
// routes every slice via its node's LAN addresses on the other nodes.
func (l *Lab) EnablePods(nodes ...string) error {
	if len(nodes) > 4 {
		return fmt.Errorf("pod network: at most 4 nodes, got %d", len(nodes))
	}
	l.mu.Lock()
	l.podNodes = append([]string(nil), nodes...)
	l.mu.Unlock()
	for _, n := range nodes {
		if err := l.Host(n).Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
			return err
		}
	}
	for i, n := range nodes {
		v4, v6 := nodeSlice(i)
		for _, other := range nodes {
			if other == n {
				continue
			}
			h := l.Host(other)
			if err := h.Run("ip", "route", "replace", v4.String(), "via", l.Host(n).Addr4().String()); err != nil {
				return err
			}
			if err := h.Run("ip", "-6", "route", "replace", v6.String(), "via", l.Host(n).Addr6().String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// PodSlices returns the node's pod slices (IPv4, IPv6).
func (l *Lab) PodSlices(node string) (netip.Prefix, netip.Prefix, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, n := range l.podNodes {
		if n == node {
			v4, v6 := nodeSlice(i)
			return v4, v6, nil
		}
	}
	return netip.Prefix{}, netip.Prefix{}, fmt.Errorf("pod network: node %s has no pod slice (EnablePods)", node)
}

// AddPod creates a pod namespace on the node with the next free addresses of
// the node's slices.
func (l *Lab) AddPod(node, name string) (*Pod, error) {
	s4, s6, err := l.PodSlices(node)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.podCount == nil {
		l.podCount = map[string]int{}
	}
	idx := l.podCount[node]
	l.podCount[node]++
	l.vethSeq++
	veth := fmt.Sprintf("pv%d", l.vethSeq)
	l.mu.Unlock()
	if idx >= 13 {
		return nil, fmt.Errorf("pod %s: node %s has no free pod address", name, node)
	}
	// .1 of the slice is the node's gateway address, pods take .2 onwards.
	gw4 := s4.Addr().Next()
	v4 := gw4
	v6 := s6.Addr().Next()
	for range idx + 1 {
		v4 = v4.Next()
		v6 = v6.Next()
	}
	h := &Host{Spec: HostSpec{Name: name, V4: netip.PrefixFrom(v4, 32), V6: netip.PrefixFrom(v6, 128)}, NS: l.Prefix + name, lab: l}
	if err := l.addNS(h.NS); err != nil {
		return nil, fmt.Errorf("pod %s: %w", name, err)
	}
	nodeNS := l.Host(node).NS
	steps := [][]string{
		{"-n", nodeNS, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"-n", nodeNS, "addr", "add", gw4.String() + "/32", "dev", veth},
		{"-n", nodeNS, "addr", "add", podGateway6 + "/64", "dev", veth, "nodad"},
		{"-n", nodeNS, "link", "set", veth, "up"},
		{"-n", nodeNS, "route", "add", v4.String() + "/32", "dev", veth},
		{"-n", nodeNS, "-6", "route", "add", v6.String() + "/128", "dev", veth},
		{"-n", h.NS, "addr", "add", v4.String() + "/32", "dev", "eth0"},
		{"-n", h.NS, "addr", "add", v6.String() + "/128", "dev", "eth0", "nodad"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
		{"-n", h.NS, "route", "add", gw4.String(), "dev", "eth0", "scope", "link"},
		{"-n", h.NS, "route", "add", "default", "via", gw4.String(), "dev", "eth0"},
		{"-n", h.NS, "-6", "route", "add", "default", "via", podGateway6, "dev", "eth0"},
	}
	for _, st := range steps {
		if err := run("ip", st...); err != nil {
			return nil, fmt.Errorf("pod %s on %s: %w", name, node, err)
		}
	}
	return &Pod{Host: h, Node: node, V4: v4, V6: v6, veth: veth}, nil
}

// Serve starts an HTTP server of the pod on port, both families (call it
// once per port). Every answer is
// one line naming the pod, its node and the client's address as the pod
// sees it: "pod=web-1 node=node1 client=192.0.2.100:41234".
func (p *Pod) Serve(port int) error {
	var ln net.Listener
	err := p.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port)) // dual-stack socket
		return err
	})
	if err != nil {
		return fmt.Errorf("pod %s: listen :%d: %w", p.Spec.Name, port, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			fmt.Fprintf(w, "pod=%s node=%s client=%s\n", p.Spec.Name, p.Node, r.RemoteAddr)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	p.lab.mu.Lock()
	if len(p.srvs) == 0 {
		p.lab.closers = append(p.lab.closers, p)
	}
	p.srvs = append(p.srvs, srv)
	p.lab.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// Close stops the pod's HTTP servers.
func (p *Pod) Close() error {
	p.lab.mu.Lock()
	srvs := p.srvs
	p.srvs = nil
	p.lab.mu.Unlock()
	var errs []error
	for _, srv := range srvs {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		errs = append(errs, srv.Shutdown(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

// Answer is one parsed backend reply.
type Answer struct {
	Pod, Node, Client string
}

// ParseAnswer reads a backend's reply line.
func ParseAnswer(s string) (Answer, error) {
	var a Answer
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "pod":
			a.Pod = v
		case "node":
			a.Node = v
		case "client":
			a.Client = v
		}
	}
	if a.Pod == "" || a.Node == "" {
		return a, errors.New("not a backend answer: " + strings.TrimSpace(s))
	}
	return a, nil
}

// ClientAddr is the address part of Client.
func (a Answer) ClientAddr() (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(a.Client)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}

// Curl runs the real curl in the host's namespace against http://addr:port/
// and parses the backend's answer.
func (h *Host) Curl(addr netip.Addr, port int, timeout time.Duration) (Answer, error) {
	u := fmt.Sprintf("http://%s/", netip.AddrPortFrom(addr, uint16(port)))
	out, err := h.Output("curl", "-sS", "--max-time", fmt.Sprintf("%.1f", timeout.Seconds()), "--noproxy", "*", u)
	if err != nil {
		return Answer{}, err
	}
	return ParseAnswer(out)
}
