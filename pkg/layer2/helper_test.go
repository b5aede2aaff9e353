package layer2

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/test/netlab"
)

// The lab tests run the Announcer in a child process started inside a node's
// namespace, as the speaker runs with hostNetwork in production: namespaces
// are per thread, and the Announcer's goroutines (re-opening sockets after a
// link comes back, following netlink) must all live in the node's namespace.
// The child is this test binary re-executed with helperEnv set; it reads
// commands on stdin and answers on stdout with lines starting with "@".

const (
	helperEnv  = "HERALD_LAYER2_HELPER"
	burstEnv   = "HERALD_LAYER2_BURST"   // "count,interval", e.g. "3,200ms"
	refreshEnv = "HERALD_LAYER2_REFRESH" // a duration
)

// TestHelperAnnouncer is not a test: it is the announcer process of the lab
// tests, and skips unless started by them.
func TestHelperAnnouncer(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("announcer process of the lab tests")
	}
	os.Exit(runHelper(os.Stdin, os.Stdout))
}

// Commands, one per line:
//
//	set ADDR=IF[,IF...] ...   Set exactly these pairs ("set" alone: none) → @ok or @err MSG
//	metrics                   → @m SERIES VALUE lines, then @ok
//	bench N                   time Set in-process (see below) → @m lines, then @ok
//	close                     Close → @ok, then exit
func runHelper(in io.Reader, out io.Writer) int {
	opts := Options{
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: prometheus.NewRegistry(),
	}
	if b := os.Getenv(burstEnv); b != "" {
		n, d, _ := strings.Cut(b, ",")
		opts.BurstCount, _ = strconv.Atoi(n)
		opts.BurstInterval, _ = time.ParseDuration(d)
	}
	opts.RefreshInterval, _ = time.ParseDuration(os.Getenv(refreshEnv))
	a := New(opts)
	reply := func(format string, args ...any) { fmt.Fprintf(out, "@"+format+"\n", args...) }
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "set":
			desired, err := parseDesired(fields[1:])
			if err == nil {
				err = a.Set(desired)
			}
			if err != nil {
				reply("err %s", strings.ReplaceAll(err.Error(), "\n", "; "))
				continue
			}
			reply("ok")
		case "metrics":
			mfs, err := opts.Registerer.(*prometheus.Registry).Gather()
			if err != nil {
				reply("err %v", err)
				continue
			}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					var labels []string
					for _, l := range m.GetLabel() {
						labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
					}
					sort.Strings(labels)
					v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
					reply("m %s{%s} %g", mf.GetName(), strings.Join(labels, ","), v)
				}
			}
			reply("ok")
		case "bench":
			// bench N: Set N new addresses at once (a mass takeover), then
			// time Set with that same input, in this process.
			n, _ := strconv.Atoi(fields[1])
			desired := map[netip.Addr][]string{}
			base := netip.MustParseAddr("2001:db8:100::2:0")
			for i := range n {
				if i%2 == 0 {
					desired[netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})] = []string{"eth0"}
				} else {
					desired[base] = []string{"eth0"}
					base = base.Next()
				}
			}
			start := time.Now()
			err := a.Set(desired)
			takeover := time.Since(start)
			r := testing.Benchmark(func(b *testing.B) {
				for b.Loop() {
					_ = a.Set(desired)
				}
			})
			if err != nil {
				reply("err %v", err)
				continue
			}
			reply("m takeover-ns %d", takeover.Nanoseconds())
			reply("m unchanged-ns %d", r.NsPerOp())
			reply("m unchanged-allocs %d", r.AllocsPerOp())
			reply("ok")
		case "close":
			_ = a.Close()
			reply("ok")
			return 0
		default:
			reply("err unknown command %q", fields[0])
		}
	}
	_ = a.Close() // stdin closed: the test is gone
	return 0
}

func parseDesired(fields []string) (map[netip.Addr][]string, error) {
	desired := map[netip.Addr][]string{}
	for _, f := range fields {
		addr, ifaces, ok := strings.Cut(f, "=")
		a, err := netip.ParseAddr(addr)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad pair %q", f)
		}
		desired[a] = strings.Split(ifaces, ",")
	}
	return desired, nil
}

// speaker is the test's handle on an announcer process in a node namespace.
type speaker struct {
	t     testing.TB
	host  *netlab.Host
	proc  *netlab.Proc
	in    io.WriteCloser
	lines chan string
}

// startSpeaker starts an announcer process in h's namespace; env adds
// settings such as refreshEnv+"=1s".
func startSpeaker(t testing.TB, h *netlab.Host, burst string, env ...string) *speaker {
	t.Helper()
	cmd := h.Command(os.Args[0], "-test.run=^TestHelperAnnouncer$")
	cmd.Env = append(append(os.Environ(), helperEnv+"=1", burstEnv+"="+burst), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	p, err := h.StartCmd(cmd)
	if err != nil {
		t.Fatal(err)
	}
	s := &speaker{t: t, host: h, proc: p, in: in, lines: make(chan string, 1024)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "@"); ok {
				s.lines <- line
			}
		}
	}()
	t.Cleanup(func() {
		_ = in.Close()
		p.Stop()
		_ = pw.Close()
		if strings.Contains(p.Output(), "WARNING: DATA RACE") {
			t.Errorf("the race detector fired in the announcer process on %s", h.Spec.Name)
		}
		if t.Failed() {
			t.Logf("announcer log on %s:\n%s", h.Spec.Name, p.Output())
		}
	})
	return s
}

// do sends one command and returns its result lines, failing the test on
// "err" unless allowErr.
func (s *speaker) do(cmd string) ([]string, error) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, cmd+"\n"); err != nil {
		return nil, fmt.Errorf("announcer on %s: %w\n%s", s.host.Spec.Name, err, s.proc.Output())
	}
	var lines []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return nil, fmt.Errorf("announcer on %s exited\n%s", s.host.Spec.Name, s.proc.Output())
			}
			switch {
			case l == "ok":
				return lines, nil
			case strings.HasPrefix(l, "err "):
				return lines, fmt.Errorf("announcer on %s: %s", s.host.Spec.Name, l[4:])
			default:
				lines = append(lines, l)
			}
		case <-timeout:
			return nil, fmt.Errorf("announcer on %s: no answer to %q\n%s", s.host.Spec.Name, cmd, s.proc.Output())
		}
	}
}

// set makes the announcer own exactly pairs ("ADDR=IF[,IF]"; none = release all).
func (s *speaker) set(pairs ...string) {
	s.t.Helper()
	if _, err := s.do(strings.Join(append([]string{"set"}, pairs...), " ")); err != nil {
		s.t.Fatal(err)
	}
}

// metric sums the series whose "name{labels}" starts with prefix, e.g.
// `herald_layer2_malformed_frames_total{family="ipv6"`.
func (s *speaker) metric(prefix string) float64 {
	s.t.Helper()
	lines, err := s.do("metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	var sum float64
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "m" && strings.HasPrefix(f[1], prefix) {
			v, _ := strconv.ParseFloat(f[2], 64)
			sum += v
		}
	}
	return sum
}

// newLab builds the named hosts of the standard topology and removes them,
// by exact name, when the test ends however it ends.
func newLab(t testing.TB, hosts ...string) *netlab.Lab {
	t.Helper()
	if why := netlab.Available(); why != "" {
		t.Skip(why)
	}
	var specs []netlab.HostSpec
	for _, s := range netlab.Standard() {
		if slices.Contains(hosts, s.Name) {
			specs = append(specs, s)
		}
	}
	lab, err := netlab.New(specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	// A Linux bridge floods all multicast while it knows no querier, which
	// would hide a responder that fails to join (or re-join, after a link
	// restore) its solicited-node groups. Give it an IPv6 querier of its own:
	// it then forwards multicast NS only to ports that reported the group,
	// like a snooping switch in a real network.
	for _, args := range [][]string{
		{"netns", "exec", lab.LAN, "sysctl", "-qw", "net.ipv6.conf.br0.disable_ipv6=0"},
		// The querier waits one response interval before it counts: keep it short.
		{"-n", lab.LAN, "link", "set", "br0", "type", "bridge", "mcast_query_response_interval", "20"},
		{"-n", lab.LAN, "link", "set", "br0", "type", "bridge", "mcast_querier", "1"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if len(specs) >= 2 {
		waitStrictSnooping(t, lab.Host(specs[0].Name), lab.Host(specs[1].Name))
	}
	return lab
}

// waitStrictSnooping returns once the bridge's querier has taken effect:
// multicast from a for a group nobody joined no longer reaches b. It takes
// the kernel about a second after the querier is switched on.
func waitStrictSnooping(t testing.TB, a, b *netlab.Host) {
	t.Helper()
	tx, err := a.ListenPacket("eth0", netlab.EtherTypeAll)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx, err := b.ListenPacket("eth0", etherTypeIPv6)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	// An empty IPv6 packet (next header 59) to ff02::1:ffab:cdef.
	group := netip.MustParseAddr("ff02::1:ffab:cdef")
	probe := make([]byte, ethHeaderLen+ipv6HeaderLen)
	putEthernet(probe, net.HardwareAddr{0x33, 0x33, 0xff, 0xab, 0xcd, 0xef}, a.MAC(), etherTypeIPv6)
	probe[ethHeaderLen], probe[ethHeaderLen+6], probe[ethHeaderLen+7] = 0x60, 59, 1
	src, dst := a.Addr6().As16(), group.As16()
	copy(probe[ethHeaderLen+8:], src[:])
	copy(probe[ethHeaderLen+24:], dst[:])
	buf := make([]byte, maxFrame)
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		if _, err := tx.WriteTo(probe, &packet.Addr{HardwareAddr: net.HardwareAddr(probe[0:6])}); err != nil {
			t.Fatal(err)
		}
		heard := false
		_ = rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		for {
			n, _, err := rx.ReadFrom(buf)
			if err != nil {
				break
			}
			heard = heard || bytes.Equal(buf[:n], probe)
		}
		if !heard {
			return
		}
	}
	t.Fatal("the lab bridge still floods multicast 5 s after its querier was enabled")
}
