package bgp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// testLog collects log output and prints it only when the test fails, so
// goroutines logging after the test ended cannot panic the test binary.
type testLog struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLogger(t testing.TB, level slog.Level) (*slog.Logger, *testLog) {
	l := &testLog{}
	t.Cleanup(func() {
		l.mu.Lock()
		l.closed = true
		out := l.buf.String()
		l.mu.Unlock()
		if t.Failed() || os.Getenv("HERALD_TEST_LOG") != "" {
			t.Logf("speaker log:\n%s", out)
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: level})), l
}

// newTestSpeaker starts a Speaker that only dials (no listener), so tests can
// run in parallel on loopback without root.
func newTestSpeaker(t *testing.T) *Speaker {
	t.Helper()
	log, _ := newTestLogger(t, slog.LevelInfo)
	s, err := New(Options{Logger: log, RouterID: netip.MustParseAddr("10.255.0.1"), ListenPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// receiver is a plain GoBGP server standing in for a router: it listens on
// its own loopback address and records every UPDATE and session change it
// sees from the speaker, in order.
type receiver struct {
	t    *testing.T
	srv  *server.BgpServer
	Addr netip.Addr
	Port uint16
	ASN  uint32

	mu     sync.Mutex
	events []recvEvent
}

type recvEvent struct {
	At       time.Time
	Prefix   netip.Prefix // zero for session events
	Withdraw bool
	Attrs    []bgp.PathAttributeInterface
	State    bgp.FSMState // for session events
}

type receiverOpts struct {
	Password        string
	GracefulRestart bool
}

func freePort(t *testing.T, addr netip.Addr) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

var routerIDs struct {
	sync.Mutex
	n int
}

func newReceiver(t *testing.T, addr netip.Addr, asn uint32, speaker netip.Addr, speakerASN uint32, o receiverOpts) *receiver {
	t.Helper()
	routerIDs.Lock()
	routerIDs.n++
	id := fmt.Sprintf("10.254.0.%d", routerIDs.n)
	routerIDs.Unlock()
	r := &receiver{t: t, Addr: addr, ASN: asn, Port: freePort(t, addr)}
	r.srv = server.NewBgpServer()
	go r.srv.Serve()
	ctx := context.Background()
	if err := r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: id, ListenPort: int32(r.Port), ListenAddresses: []string{addr.String()},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		r.srv.Stop()
	})
	if err := r.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPathUpdate: func(paths []*apiutil.Path, at time.Time) {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, p := range paths {
				if n, ok := p.Nlri.(*bgp.IPAddrPrefix); ok {
					r.events = append(r.events, recvEvent{At: at, Prefix: n.Prefix, Withdraw: p.Withdrawal, Attrs: p.Attrs})
				}
			}
		},
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
			if ev.Type != apiutil.PEER_EVENT_STATE {
				return
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, recvEvent{At: at, State: ev.Peer.State.SessionState})
		},
	}, server.WatchUpdate(false, "", ""), server.WatchPeer()); err != nil {
		t.Fatal(err)
	}
	p := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: speaker.String(), PeerAsn: speakerASN, AuthPassword: o.Password},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: addr.String()},
		Timers:    &api.Timers{Config: &api.TimersConfig{IdleHoldTimeAfterReset: 1, ConnectRetry: 1}},
		AfiSafis:  []*api.AfiSafi{},
	}
	for _, f := range families() {
		as := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if o.GracefulRestart {
			as.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		p.AfiSafis = append(p.AfiSafis, as)
	}
	if o.GracefulRestart {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: 120, HelperOnly: true}
	}
	if err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		t.Fatal(err)
	}
	return r
}

// peer is the Peer the speaker needs to reach this receiver. Loopback has
// no global address of the other family, so the cross-family next hop is
// explicit.
func (r *receiver) peer(name string, myASN uint32, source netip.Addr) Peer {
	p := Peer{Name: name, MyASN: myASN, ASN: r.ASN, Address: r.Addr, Port: r.Port, Source: source,
		HoldTime: 9 * time.Second, ConnectTime: time.Second}
	if r.Addr.Is4() {
		p.NextHopV6 = netip.MustParseAddr("fd00::1")
	} else {
		p.NextHopV4 = netip.MustParseAddr("192.0.2.1")
	}
	return p
}

// rib returns what the receiver holds from the speaker, by prefix.
func (r *receiver) rib() map[netip.Prefix]*apiutil.Path {
	out := map[netip.Prefix]*apiutil.Path{}
	for _, f := range []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		_ = r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: f},
			func(prefix bgp.NLRI, paths []*apiutil.Path) {
				if n, ok := prefix.(*bgp.IPAddrPrefix); ok && len(paths) > 0 {
					out[n.Prefix] = paths[0]
				}
			})
	}
	return out
}

// received counts the UPDATEs announcing (not withdrawing) prefix.
func (r *receiver) received(prefix netip.Prefix) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Prefix == prefix && !e.Withdraw {
			n++
		}
	}
	return n
}

func (r *receiver) eventLog() []recvEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recvEvent(nil), r.events...)
}

// establishments counts how often the session came up.
func (r *receiver) establishments() int {
	n := 0
	for _, e := range r.eventLog() {
		if !e.Prefix.IsValid() && e.State == bgp.BGP_FSM_ESTABLISHED {
			n++
		}
	}
	return n
}

func (r *receiver) established() bool {
	up := false
	_ = r.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		up = p.GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED
	})
	return up
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasPrefixes(r *receiver, want ...string) func() error {
	return func() error {
		rib := r.rib()
		for _, w := range want {
			if _, ok := rib[netip.MustParsePrefix(w)]; !ok {
				return fmt.Errorf("receiver %s: %s missing (have %d routes)", r.Addr, w, len(rib))
			}
		}
		return nil
	}
}

func lacksPrefixes(r *receiver, want ...string) func() error {
	return func() error {
		rib := r.rib()
		for _, w := range want {
			if _, ok := rib[netip.MustParsePrefix(w)]; ok {
				return fmt.Errorf("receiver %s: %s still present", r.Addr, w)
			}
		}
		return nil
	}
}

func attr[T bgp.PathAttributeInterface](attrs []bgp.PathAttributeInterface) (T, bool) {
	for _, a := range attrs {
		if x, ok := a.(T); ok {
			return x, true
		}
	}
	var zero T
	return zero, false
}

func nextHop(p *apiutil.Path) netip.Addr {
	if nh, ok := attr[*bgp.PathAttributeNextHop](p.Attrs); ok {
		return nh.Value
	}
	if mp, ok := attr[*bgp.PathAttributeMpReachNLRI](p.Attrs); ok {
		return mp.Nexthop
	}
	return netip.Addr{}
}

func mustSessions(t *testing.T, s *Speaker, n int) func() error {
	return func() error {
		ss := s.Sessions()
		up := 0
		for _, x := range ss {
			if x.Established() {
				up++
			}
		}
		if up != n {
			return fmt.Errorf("%d of %d sessions established: %+v", up, n, ss)
		}
		return nil
	}
}
