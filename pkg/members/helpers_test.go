package members

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// Tests never assert how fast something happens (CI shares two loaded cores):
// they poll for the expected state with a generous deadline. The speed is
// measured by the benchmarks.
const converge = 20 * time.Second

// testLogger discards logs unless HERALD_TEST_LOG is set; memberlist keeps
// logging for a moment after Close, which t.Log does not allow.
func testLogger() *slog.Logger {
	if os.Getenv("HERALD_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testNet is a set of loopback addresses (a random 127.a.b.0/24, so parallel
// tests and other packages' tests do not collide) sharing one free port, the
// way speakers share the memberlist port on distinct node addresses.
type testNet struct {
	addrs []netip.Addr
	port  int
}

func newTestNet(t testing.TB, n int) testNet {
	t.Helper()
	for range 50 {
		a, b := byte(rand.IntN(254)+1), byte(rand.IntN(254)+1)
		// Below the kernel's ephemeral range (32768+), so no outgoing
		// connection on the machine can take the port between the check
		// and the members' bind.
		port := 20000 + rand.IntN(12000)
		tn := testNet{port: port}
		for i := range n {
			tn.addrs = append(tn.addrs, netip.AddrFrom4([4]byte{127, a, b, byte(i + 1)}))
		}
		if tn.free() {
			return tn
		}
	}
	t.Fatal("no free loopback port found")
	return testNet{}
}

// free reports whether the port is free for TCP and UDP on every address.
func (tn testNet) free() bool {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, a := range tn.addrs {
		ap := netip.AddrPortFrom(a, uint16(tn.port))
		l, err := net.Listen("tcp", ap.String())
		if err != nil {
			return false
		}
		closers = append(closers, l)
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return false
		}
		closers = append(closers, u)
	}
	return true
}

func (tn testNet) peers(names ...string) map[string]netip.Addr {
	out := map[string]netip.Addr{}
	for i, n := range names {
		out[n] = tn.addrs[i]
	}
	return out
}

func (tn testNet) opts(i int, name string) Options {
	return Options{NodeName: name, BindAddr: tn.addrs[i], Port: tn.port, Logger: testLogger(), Insecure: true}
}

// start creates a member and closes it when the test ends. Other programs
// on the machine may briefly hold the port (checking it is free, as
// newTestNet does), so a busy port is retried for a moment.
func start(t testing.TB, o Options) *Members {
	t.Helper()
	m, err := New(o)
	for i := 0; err != nil && strings.Contains(err.Error(), "address already in use") && i < 40; i++ {
		time.Sleep(50 * time.Millisecond)
		m, err = New(o)
	}
	if err != nil {
		t.Fatalf("New(%s): %v", o.NodeName, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// cluster starts one member per name on tn, each given all the others as
// peers, and waits until every member sees all of them.
func cluster(t testing.TB, tn testNet, key []byte, names ...string) []*Members {
	t.Helper()
	ms := make([]*Members, len(names))
	for i, n := range names {
		o := tn.opts(i, n)
		o.SecretKey = key
		ms[i] = start(t, o)
	}
	for _, m := range ms {
		m.SetPeers(tn.peers(names...))
	}
	for _, m := range ms {
		waitAlive(t, m, names...)
	}
	return ms
}

// waitAlive waits until m's alive set is exactly want.
func waitAlive(t testing.TB, m *Members, want ...string) {
	t.Helper()
	wantSet := map[string]bool{}
	for _, w := range want {
		wantSet[w] = true
	}
	waitFor(t, converge, func() bool { return maps.Equal(m.Alive(), wantSet) },
		func() string {
			return fmt.Sprintf("%s sees %v, want %v", m.name, sorted(m.Alive()), sorted(wantSet))
		})
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sorted(s map[string]bool) []string {
	return slices.Sorted(maps.Keys(s))
}

// waitGone blocks until name is missing from m's alive set and returns when
// that was first seen, or false at the deadline. It reads Changes, so it is
// the only reader of m's notifications while it runs.
func waitGone(m *Members, name string, deadline time.Time) (time.Time, bool) {
	return waitUntil(m, deadline, func(a map[string]bool) bool { return !a[name] })
}

// waitBack is waitGone's opposite.
func waitBack(m *Members, name string, deadline time.Time) (time.Time, bool) {
	return waitUntil(m, deadline, func(a map[string]bool) bool { return a[name] })
}

func waitUntil(m *Members, deadline time.Time, ok func(map[string]bool) bool) (time.Time, bool) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		if ok(m.Alive()) {
			return time.Now(), true
		}
		select {
		case <-m.Changes():
		case <-timer.C:
			return time.Time{}, false
		}
	}
}

// drain empties a Changes channel.
func drain(m *Members) {
	for {
		select {
		case <-m.Changes():
		default:
			return
		}
	}
}

// cutTransport sits between memberlist and its sockets and, while cut, drops
// everything in both directions: outgoing datagrams vanish, dials fail,
// incoming datagrams and streams are discarded. For the member using it,
// that is its network cable pulled, without touching the host's network.
type cutTransport struct {
	memberlist.NodeAwareTransport
	cut     atomic.Bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func newCutTransport(inner memberlist.NodeAwareTransport) *cutTransport {
	c := &cutTransport{
		NodeAwareTransport: inner,
		packets:            make(chan *memberlist.Packet),
		streams:            make(chan net.Conn),
		done:               make(chan struct{}),
	}
	go func() {
		for {
			select {
			case p := <-inner.PacketCh():
				if c.cut.Load() {
					continue
				}
				select {
				case c.packets <- p:
				case <-c.done:
					return
				}
			case <-c.done:
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case conn := <-inner.StreamCh():
				if c.cut.Load() {
					conn.Close()
					continue
				}
				select {
				case c.streams <- conn:
				case <-c.done:
					conn.Close()
					return
				}
			case <-c.done:
				return
			}
		}
	}()
	return c
}

var errCut = errors.New("network cut (test)")

func (c *cutTransport) PacketCh() <-chan *memberlist.Packet { return c.packets }
func (c *cutTransport) StreamCh() <-chan net.Conn           { return c.streams }

func (c *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil
	}
	return c.NodeAwareTransport.WriteTo(b, addr)
}

func (c *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil
	}
	return c.NodeAwareTransport.WriteToAddress(b, a)
}

func (c *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errCut}
	}
	return c.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (c *cutTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errCut}
	}
	return c.NodeAwareTransport.DialAddressTimeout(a, timeout)
}

func (c *cutTransport) Shutdown() error {
	// The inner listeners block on unbuffered channels, so keep relaying
	// until they have stopped.
	err := c.NodeAwareTransport.Shutdown()
	c.once.Do(func() { close(c.done) })
	return err
}

// withCut returns o with a cut transport and the switch for it.
func withCut(o Options) (Options, func(bool)) {
	var ct atomic.Pointer[cutTransport]
	o.wrapTransport = func(in memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		c := newCutTransport(in)
		ct.Store(c)
		return c
	}
	return o, func(cut bool) { ct.Load().cut.Store(cut) }
}

// helperEnv is the environment that makes TestHelperMember run a member.
func helperEnv(name string, addr netip.Addr, port int, peers map[string]netip.Addr, key []byte) []string {
	var ps []string
	for n, a := range peers {
		ps = append(ps, n+"="+a.String())
	}
	return append(os.Environ(),
		"HERALD_MEMBERS_HELPER=1",
		"HERALD_MEMBERS_NAME="+name,
		"HERALD_MEMBERS_ADDR="+addr.String(),
		fmt.Sprintf("HERALD_MEMBERS_PORT=%d", port),
		"HERALD_MEMBERS_PEERS="+strings.Join(ps, ","),
		fmt.Sprintf("HERALD_MEMBERS_KEY=%x", key),
	)
}
