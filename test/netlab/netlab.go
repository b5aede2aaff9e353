// Package netlab builds Herald's test network out of Linux network
// namespaces: one bridge namespace acting as the switch and one namespace per
// host (speaker nodes, routers, a client), each with an eth0 on the bridge.
// Nothing touches the host namespace, and Close deletes exactly the namespaces
// and processes this lab created.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// HostSpec describes one host on the lab's LAN.
type HostSpec struct {
	Name string // short name, also the bridge port's name (≤ 15 bytes)
	MAC  string
	V4   netip.Prefix // address/len on eth0
	V6   netip.Prefix
	// Router hosts forward packets between interfaces.
	Router bool
}

// Standard is the topology the lab recipes and the e2e tests use:
// three speaker nodes, two routers and a client on 192.0.2.0/24 and
// 2001:db8:100::/64. The client routes everything else via router.
func Standard() []HostSpec {
	return []HostSpec{
		{Name: "node1", MAC: "02:00:00:00:00:11", V4: netip.MustParsePrefix("192.0.2.11/24"), V6: netip.MustParsePrefix("2001:db8:100::11/64")},
		{Name: "node2", MAC: "02:00:00:00:00:12", V4: netip.MustParsePrefix("192.0.2.12/24"), V6: netip.MustParsePrefix("2001:db8:100::12/64")},
		{Name: "node3", MAC: "02:00:00:00:00:13", V4: netip.MustParsePrefix("192.0.2.13/24"), V6: netip.MustParsePrefix("2001:db8:100::13/64")},
		{Name: "router", MAC: "02:00:00:00:00:01", V4: netip.MustParsePrefix("192.0.2.1/24"), V6: netip.MustParsePrefix("2001:db8:100::1/64"), Router: true},
		{Name: "router2", MAC: "02:00:00:00:00:02", V4: netip.MustParsePrefix("192.0.2.2/24"), V6: netip.MustParsePrefix("2001:db8:100::2/64"), Router: true},
		{Name: "client", MAC: "02:00:00:00:01:00", V4: netip.MustParsePrefix("192.0.2.100/24"), V6: netip.MustParsePrefix("2001:db8:100::100/64")},
	}
}

// Lab is a running topology.
type Lab struct {
	Prefix string
	LAN    string // the bridge namespace's name
	hosts  map[string]*Host
	order  []string

	mu       sync.Mutex
	procs    []*Proc
	closers  []io.Closer
	podNodes []string       // nodes with a pod slice, in slice order (EnablePods)
	podCount map[string]int // pods created per node
	vethSeq  int
}

// Host is one namespace on the LAN.
type Host struct {
	Spec HostSpec
	NS   string // full namespace name
	lab  *Lab
}

// Proc is a program the lab started inside a namespace.
type Proc struct {
	Cmd  *exec.Cmd
	Host *Host
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Available reports why the lab cannot run here, or "" when it can.
func Available() string {
	if os.Geteuid() != 0 {
		return "network-lab tests need root (ip netns)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "network-lab tests need iproute2's ip"
	}
	return ""
}

// New creates the bridge and the hosts. The prefix makes every name unique to
// this run, so parallel or leftover labs never collide.
func New(hosts []HostSpec) (l *Lab, err error) {
	var b [3]byte
	_, _ = rand.Read(b[:])
	l = &Lab{Prefix: "hl" + hex.EncodeToString(b[:]) + "-", hosts: map[string]*Host{}}
	l.LAN = l.Prefix + "lan"
	defer func() {
		if err != nil {
			_ = l.Close()
			l = nil
		}
	}()
	if err := l.addNS(l.LAN); err != nil {
		return nil, err
	}
	if err := nsRun(l.LAN, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		return nil, err
	}
	// Multicast snooping stays on (the default), as on a real switch: an NDP
	// responder must join the solicited-node groups to hear solicitations.
	for _, args := range [][]string{{"link", "add", "br0", "type", "bridge"}, {"link", "set", "br0", "up"}} {
		if err := run("ip", append([]string{"-n", l.LAN}, args...)...); err != nil {
			return nil, err
		}
	}
	for _, s := range hosts {
		if err := l.addHost(s); err != nil {
			return nil, fmt.Errorf("host %s: %w", s.Name, err)
		}
	}
	return l, nil
}

func (l *Lab) addNS(name string) error {
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	l.order = append(l.order, name)
	if err := run("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return err
	}
	// No DAD (fresh addresses would stay tentative and ndp.Listen would fail),
	// no SLAAC noise, and static IPv6 addresses survive a link down.
	return nsRun(name, "sysctl", "-qw",
		"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
		"net.ipv6.conf.default.router_solicitations=0",
		"net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0",
		"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1")
}

func nsRun(ns string, args ...string) error {
	return run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

func (l *Lab) addHost(s HostSpec) error {
	h := &Host{Spec: s, NS: l.Prefix + s.Name, lab: l}
	if err := l.addNS(h.NS); err != nil {
		return err
	}
	l.hosts[s.Name] = h
	steps := [][]string{
		{"-n", h.NS, "link", "add", "eth0", "address", s.MAC, "type", "veth", "peer", "name", s.Name, "netns", l.LAN},
		{"-n", l.LAN, "link", "set", s.Name, "master", "br0", "up"},
	}
	if s.V4.IsValid() {
		steps = append(steps, []string{"-n", h.NS, "addr", "add", s.V4.String(), "dev", "eth0"})
	}
	if s.V6.IsValid() {
		steps = append(steps, []string{"-n", h.NS, "addr", "add", s.V6.String(), "dev", "eth0", "nodad"})
	}
	steps = append(steps, []string{"-n", h.NS, "link", "set", "eth0", "up"})
	for _, st := range steps {
		if err := run("ip", st...); err != nil {
			return err
		}
	}
	if s.Router {
		return h.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	}
	return nil
}

// Host returns the named host (panics on an unknown name: a test bug).
func (l *Lab) Host(name string) *Host {
	h, ok := l.hosts[name]
	if !ok {
		panic(fmt.Sprintf("netlab: no host %q", name))
	}
	return h
}

// Close stops every process the lab started and deletes its namespaces, by
// exact name. Safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs, closers := l.procs, l.closers
	l.procs, l.closers = nil, nil
	l.mu.Unlock()
	for _, p := range procs {
		p.Stop()
	}
	for _, c := range closers {
		_ = c.Close()
	}
	var errs []error
	for i := len(l.order) - 1; i >= 0; i-- {
		name := l.order[i]
		if _, err := os.Stat("/run/netns/" + name); err != nil {
			continue
		}
		if err := run("ip", "netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	l.order = nil
	return errors.Join(errs...)
}

// Addr4 and Addr6 are the host's addresses on eth0.
func (h *Host) Addr4() netip.Addr { return h.Spec.V4.Addr() }
func (h *Host) Addr6() netip.Addr { return h.Spec.V6.Addr() }

// MAC is eth0's hardware address.
func (h *Host) MAC() net.HardwareAddr {
	m, err := net.ParseMAC(h.Spec.MAC)
	if err != nil {
		panic(err)
	}
	return m
}

// Command returns an exec.Cmd running name inside the host's namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// CommandContext is Command with a context.
func (h *Host) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Run runs a command in the namespace and returns an error with its output on failure.
func (h *Host) Run(name string, args ...string) error {
	_, err := h.Output(name, args...)
	return err
}

// Output runs a command in the namespace and returns its combined output.
func (h *Host) Output(name string, args ...string) (string, error) {
	out, err := h.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(append([]string{name}, args...), " "), h.NS, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Start starts a long-running program in the namespace. `ip netns exec`
// execs the program itself, so the PID is the program's and Stop reaches it.
func (h *Host) Start(name string, args ...string) (*Proc, error) {
	p := &Proc{Cmd: h.Command(name, args...), Host: h, out: &syncBuffer{}, done: make(chan struct{})}
	p.Cmd.Stdout = p.out
	p.Cmd.Stderr = p.out
	if err := p.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, h.NS, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	return p, nil
}

// StartCmd starts a prepared command (made with Command) and tracks it like Start.
func (h *Host) StartCmd(cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Cmd: cmd, Host: h, out: &syncBuffer{}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.out
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %v in %s: %w", cmd.Args, h.NS, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	return p, nil
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, valid after Done.
func (p *Proc) Err() error { return p.err }

// Output is what the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Stop sends SIGTERM, waits up to 5 s, then SIGKILL.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Do runs fn on an OS thread switched into the host's namespace. Sockets
// opened inside fn stay in the namespace after it returns, whichever thread
// later uses them; goroutines started inside fn do not inherit the namespace.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: if switching back failed it must die
		// with this goroutine rather than serve others in the wrong namespace.
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(h.NS)
		if err != nil {
			errc <- fmt.Errorf("namespace %s: %w", h.NS, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter %s: %w", h.NS, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// SetLink sets the host's port on the bridge up or down: the host keeps its
// addresses and sockets, but nothing crosses the LAN (its eth0 loses carrier).
func (h *Host) SetLink(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return run("ip", "-n", h.lab.LAN, "link", "set", h.Spec.Name, state)
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ProcStatusKiB reads a kB field of /proc/PID/status, such as "VmRSS"
// (resident now) or "VmHWM" (resident peak).
func ProcStatusKiB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
