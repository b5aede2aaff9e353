package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var (
	lo1 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.MustParseAddr("::1")
)

const (
	myASN = 64501
	ebgp  = 64500
)

func TestRoutesGoOnlyToTheirPeersWithTheirAttributes(t *testing.T) {
	s := newTestSpeaker(t)
	ext := newReceiver(t, netip.MustParseAddr("127.0.0.2"), ebgp, lo1, myASN, receiverOpts{})
	ibgp := newReceiver(t, netip.MustParseAddr("127.0.0.3"), myASN, lo1, myASN, receiverOpts{})
	v6 := newReceiver(t, lo6, ebgp, lo6, myASN, receiverOpts{})

	extPeer := ext.peer("ext", myASN, lo1)
	extPeer.NextHopV6 = netip.MustParseAddr("fd00::11") // IPv6 routes over this IPv4 session
	v6Peer := v6.peer("v6", myASN, lo6)
	v6Peer.NextHopV4 = netip.MustParseAddr("192.0.2.11") // IPv4 routes over this IPv6 session
	if err := s.SetPeers([]Peer{extPeer, ibgp.peer("ibgp", myASN, lo1), v6Peer}); err != nil {
		t.Fatal(err)
	}
	err := s.SetRoutes([]Route{
		{Prefix: netip.MustParsePrefix("198.51.100.1/32"), Communities: []uint32{64500<<16 | 100, 64500<<16 | 7},
			LargeCommunities: [][3]uint32{{64500, 1, 2}}},
		{Prefix: netip.MustParsePrefix("198.51.100.2/32"), Peers: []string{"ibgp"}, LocalPref: 200},
		{Prefix: netip.MustParsePrefix("2001:db8:200::1/128"), Peers: []string{"ext", "v6"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, mustSessions(t, s, 3))
	eventually(t, 5*time.Second, hasPrefixes(ext, "198.51.100.1/32", "2001:db8:200::1/128"))
	eventually(t, 5*time.Second, hasPrefixes(ibgp, "198.51.100.1/32", "198.51.100.2/32"))
	eventually(t, 5*time.Second, hasPrefixes(v6, "198.51.100.1/32", "2001:db8:200::1/128"))

	if _, ok := ext.rib()[netip.MustParsePrefix("198.51.100.2/32")]; ok {
		t.Error("route targeted at peer ibgp reached peer ext")
	}
	if _, ok := ibgp.rib()[netip.MustParsePrefix("2001:db8:200::1/128")]; ok {
		t.Error("route targeted at peers ext,v6 reached peer ibgp")
	}

	a := ext.rib()[netip.MustParsePrefix("198.51.100.1/32")]
	c, _ := attr[*bgp.PathAttributeCommunities](a.Attrs)
	if c == nil || !slices.Equal(c.Value, []uint32{64500<<16 | 7, 64500<<16 | 100}) {
		t.Errorf("communities at ext = %v, want 64500:7 64500:100", c)
	}
	lc, _ := attr[*bgp.PathAttributeLargeCommunities](a.Attrs)
	if lc == nil || len(lc.Values) != 1 || *lc.Values[0] != *bgp.NewLargeCommunity(64500, 1, 2) {
		t.Errorf("large communities at ext = %v, want 64500:1:2", lc)
	}
	if nh := nextHop(a); nh != lo1 {
		t.Errorf("IPv4 next hop on IPv4 session = %s, want the session's local address %s", nh, lo1)
	}
	if nh := nextHop(ext.rib()[netip.MustParsePrefix("2001:db8:200::1/128")]); nh != extPeer.NextHopV6 {
		t.Errorf("IPv6 next hop on IPv4 session = %s, want %s", nh, extPeer.NextHopV6)
	}
	if nh := nextHop(v6.rib()[netip.MustParsePrefix("198.51.100.1/32")]); nh != v6Peer.NextHopV4 {
		t.Errorf("IPv4 next hop on IPv6 session = %s, want %s", nh, v6Peer.NextHopV4)
	}
	if nh := nextHop(v6.rib()[netip.MustParsePrefix("2001:db8:200::1/128")]); nh != lo6 {
		t.Errorf("IPv6 next hop on IPv6 session = %s, want %s", nh, lo6)
	}
	lp, _ := attr[*bgp.PathAttributeLocalPref](ibgp.rib()[netip.MustParsePrefix("198.51.100.2/32")].Attrs)
	if lp == nil || lp.Value != 200 {
		t.Errorf("local pref at the iBGP peer = %v, want 200", lp)
	}

	// localPref towards eBGP peers is dropped and reported, not refused.
	err = s.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("198.51.100.1/32"), LocalPref: 300}})
	var w Warnings
	if !errors.As(err, &w) || len(w) != 2 || w[0].Peer != "ext" || w[1].Peer != "v6" {
		t.Fatalf("SetRoutes with localPref to eBGP peers: err = %v, want warnings for ext and v6", err)
	}
	eventually(t, 5*time.Second, func() error {
		lp, _ := attr[*bgp.PathAttributeLocalPref](ibgp.rib()[netip.MustParsePrefix("198.51.100.1/32")].Attrs)
		if lp == nil || lp.Value != 300 {
			return fmt.Errorf("local pref at iBGP peer = %v, want 300", lp)
		}
		return nil
	})
	if _, ok := attr[*bgp.PathAttributeLocalPref](ext.rib()[netip.MustParsePrefix("198.51.100.1/32")].Attrs); ok {
		t.Error("eBGP peer received LOCAL_PREF")
	}
}

func TestUnchangedRouteIsNotResent(t *testing.T) {
	s := newTestSpeaker(t)
	r := newReceiver(t, netip.MustParseAddr("127.0.0.4"), ebgp, lo1, myASN, receiverOpts{})
	p := r.peer("r", myASN, lo1)
	p.NextHopV6 = netip.MustParseAddr("fd00::1")
	if err := s.SetPeers([]Peer{p}); err != nil {
		t.Fatal(err)
	}
	a := Route{Prefix: netip.MustParsePrefix("198.51.100.10/32"), Communities: []uint32{1}}
	b := Route{Prefix: netip.MustParsePrefix("2001:db8:200::10/128")}
	if err := s.SetRoutes([]Route{a}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, hasPrefixes(r, "198.51.100.10/32"))
	age := r.rib()[a.Prefix].Age

	// Adding b, then removing it, must not touch a. The same call repeated
	// (level-triggered glue) must not either.
	for _, step := range [][]Route{{a, b}, {b, a}} {
		if err := s.SetRoutes(step); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, hasPrefixes(r, "2001:db8:200::10/128"))
	if err := s.SetRoutes([]Route{a}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, lacksPrefixes(r, "2001:db8:200::10/128"))
	// A later route is a marker: everything sent before it has arrived.
	marker := Route{Prefix: netip.MustParsePrefix("198.51.100.11/32")}
	if err := s.SetRoutes([]Route{a, marker}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, hasPrefixes(r, "198.51.100.11/32"))
	if n := r.received(a.Prefix); n != 1 {
		t.Errorf("unchanged route announced %d times, want once", n)
	}
	if got := r.rib()[a.Prefix].Age; got != age {
		t.Errorf("unchanged route's age at the receiver changed from %d to %d", age, got)
	}

	// A changed attribute is re-sent, once.
	a.Communities = []uint32{2}
	if err := s.SetRoutes([]Route{a, marker}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		c, _ := attr[*bgp.PathAttributeCommunities](r.rib()[a.Prefix].Attrs)
		if c == nil || !slices.Equal(c.Value, []uint32{2}) {
			return fmt.Errorf("communities = %v, want [2]", c)
		}
		return nil
	})
	if n := r.received(a.Prefix); n != 2 {
		t.Errorf("route with changed communities announced %d times in total, want 2", n)
	}
}

func TestRetargetingWithdrawsFromTheDroppedPeerOnly(t *testing.T) {
	s := newTestSpeaker(t)
	r1 := newReceiver(t, netip.MustParseAddr("127.0.0.5"), ebgp, lo1, myASN, receiverOpts{})
	r2 := newReceiver(t, netip.MustParseAddr("127.0.0.6"), ebgp, lo1, myASN, receiverOpts{})
	r3 := newReceiver(t, netip.MustParseAddr("127.0.0.7"), ebgp, lo1, myASN, receiverOpts{})
	if err := s.SetPeers([]Peer{r1.peer("r1", myASN, lo1), r2.peer("r2", myASN, lo1)}); err != nil {
		t.Fatal(err)
	}
	a := Route{Prefix: netip.MustParsePrefix("198.51.100.20/32")}
	if err := s.SetRoutes([]Route{a}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, hasPrefixes(r1, "198.51.100.20/32"))
	eventually(t, 5*time.Second, hasPrefixes(r2, "198.51.100.20/32"))

	a.Peers = []string{"r2"}
	if err := s.SetRoutes([]Route{a}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, lacksPrefixes(r1, "198.51.100.20/32"))
	a.Peers = []string{"r1", "r2"}
	if err := s.SetRoutes([]Route{a}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, hasPrefixes(r1, "198.51.100.20/32"))
	if n := r2.received(a.Prefix); n != 1 {
		t.Errorf("peer r2, whose targeting never changed, got the route %d times, want once", n)
	}

	// A route for a peer that does not exist yet reaches it once it is added.
	b := Route{Prefix: netip.MustParsePrefix("198.51.100.21/32"), Peers: []string{"r3"}}
	if err := s.SetRoutes([]Route{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPeers([]Peer{r1.peer("r1", myASN, lo1), r2.peer("r2", myASN, lo1), r3.peer("r3", myASN, lo1)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, hasPrefixes(r3, "198.51.100.21/32"))
	if err := lacksPrefixes(r3, "198.51.100.20/32")(); err != nil {
		t.Error(err)
	}
	if err := lacksPrefixes(r1, "198.51.100.21/32")(); err != nil {
		t.Error(err)
	}
}

func TestSetPeersTouchesOnlyChangedPeers(t *testing.T) {
	s := newTestSpeaker(t)
	r1 := newReceiver(t, netip.MustParseAddr("127.0.0.8"), ebgp, lo1, myASN, receiverOpts{})
	r2 := newReceiver(t, netip.MustParseAddr("127.0.0.9"), ebgp, lo1, myASN, receiverOpts{})
	r3 := newReceiver(t, netip.MustParseAddr("127.0.0.10"), ebgp, lo1, myASN, receiverOpts{})
	p1, p2 := r1.peer("r1", myASN, lo1), r2.peer("r2", myASN, lo1)
	if err := s.SetPeers([]Peer{p1, p2}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("198.51.100.30/32")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, mustSessions(t, s, 2))
	eventually(t, 5*time.Second, hasPrefixes(r2, "198.51.100.30/32"))

	// Same peers again: nothing happens.
	if err := s.SetPeers([]Peer{p2, p1}); err != nil {
		t.Fatal(err)
	}
	// Change r1's hold time: r1's session is re-established, r2's is not.
	p1.HoldTime = 12 * time.Second
	if err := s.SetPeers([]Peer{p1, p2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if n := r1.establishments(); n != 2 {
			return fmt.Errorf("r1 session came up %d times, want 2", n)
		}
		return hasPrefixes(r1, "198.51.100.30/32")()
	})
	// A BFD change is applied without a reset.
	p2.BFD = &BFD{ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3, Passive: true}
	err := s.SetPeers([]Peer{p1, p2})
	var w Warnings
	if !errors.As(err, &w) || len(w) != 1 || w[0].Peer != "r2" || !strings.Contains(w[0].Message, "passive") {
		t.Errorf("SetPeers with BFD passive: err = %v, want one warning about passive mode", err)
	}
	p2.BFD = nil
	if err := s.SetPeers([]Peer{p1, p2}); err != nil {
		t.Fatal(err)
	}

	// Remove r1: its session closes; add r3: it comes up; r2 is untouched.
	if err := s.SetPeers([]Peer{p2, r3.peer("r3", myASN, lo1)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, hasPrefixes(r3, "198.51.100.30/32"))
	eventually(t, 5*time.Second, func() error {
		if r1.established() {
			return errors.New("removed peer r1 still established")
		}
		return nil
	})
	if n := r2.establishments(); n != 1 {
		t.Errorf("untouched peer r2's session came up %d times, want once", n)
	}
	if n := r2.received(netip.MustParsePrefix("198.51.100.30/32")); n != 1 {
		t.Errorf("untouched peer r2 got the route %d times, want once", n)
	}
	names := []string{}
	for _, x := range s.Sessions() {
		names = append(names, x.Name)
	}
	if !slices.Equal(names, []string{"r2", "r3"}) {
		t.Errorf("Sessions() names = %v, want [r2 r3]", names)
	}
}

func TestRoutesLearntFromPeersAreNeitherInstalledNorReadvertised(t *testing.T) {
	s := newTestSpeaker(t)
	r1 := newReceiver(t, netip.MustParseAddr("127.0.0.11"), ebgp, lo1, myASN, receiverOpts{})
	r2 := newReceiver(t, netip.MustParseAddr("127.0.0.12"), ebgp+1, lo1, myASN, receiverOpts{})
	if err := s.SetPeers([]Peer{r1.peer("r1", myASN, lo1), r2.peer("r2", myASN, lo1)}); err != nil {
		t.Fatal(err)
	}
	own := Route{Prefix: netip.MustParsePrefix("198.51.100.40/32")}
	if err := s.SetRoutes([]Route{own}); err != nil {
		t.Fatal(err)
	}
	// r1 announces a route of its own towards the speaker.
	learnt := netip.MustParsePrefix("203.0.113.0/24")
	nlri, _ := bgp.NewIPAddrPrefix(learnt)
	nh, _ := bgp.NewPathAttributeNextHop(r1.Addr)
	if _, err := r1.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: bgp.RF_IPv4_UC, Nlri: nlri,
		Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), nh}}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, hasPrefixes(r2, "198.51.100.40/32"))
	// The speaker received it (it is in r1's adj-RIB-in)...
	eventually(t, 5*time.Second, func() error {
		var received uint64
		_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: r1.Addr.String()}, func(p *api.Peer) {
			for _, af := range p.GetAfiSafis() {
				received += af.GetState().GetReceived()
			}
		})
		if received != 1 {
			return fmt.Errorf("received %d routes from r1, want 1", received)
		}
		return nil
	})
	// ...but the import policy kept it out of the RIB.
	var inRIB []string
	for _, f := range []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		_ = s.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: f},
			func(prefix bgp.NLRI, _ []*apiutil.Path) { inRIB = append(inRIB, prefix.String()) })
	}
	if !slices.Equal(inRIB, []string{"198.51.100.40/32"}) {
		t.Errorf("speaker's RIB = %v, want only its own route", inRIB)
	}
	// Our own route still gets out, and the learnt one never reaches r2.
	if err := s.SetRoutes([]Route{own, {Prefix: netip.MustParsePrefix("198.51.100.41/32")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, hasPrefixes(r2, "198.51.100.41/32"))
	if err := lacksPrefixes(r2, learnt.String())(); err != nil {
		t.Error(err)
	}
}

func TestShutdownWithdrawsEveryRouteBeforeClosingTheSession(t *testing.T) {
	for _, gr := range []bool{false, true} {
		t.Run(fmt.Sprintf("gracefulRestart=%v", gr), func(t *testing.T) {
			log, _ := newTestLogger(t, slog.LevelInfo)
			s, err := New(Options{Logger: log, RouterID: netip.MustParseAddr("10.255.0.2"), ListenPort: -1})
			if err != nil {
				t.Fatal(err)
			}
			addr := netip.MustParseAddr("127.0.0.13")
			if gr {
				addr = netip.MustParseAddr("127.0.0.14")
			}
			r := newReceiver(t, addr, ebgp, lo1, myASN, receiverOpts{GracefulRestart: gr})
			p := r.peer("r", myASN, lo1)
			p.GracefulRestart = gr
			p.NextHopV6 = netip.MustParseAddr("fd00::1")
			if err := s.SetPeers([]Peer{p}); err != nil {
				t.Fatal(err)
			}
			routes := []Route{{Prefix: netip.MustParsePrefix("198.51.100.50/32")}, {Prefix: netip.MustParsePrefix("2001:db8:200::50/128")}}
			if err := s.SetRoutes(routes); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, hasPrefixes(r, "198.51.100.50/32", "2001:db8:200::50/128"))

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, func() error {
				if r.established() {
					return errors.New("session still established after Shutdown")
				}
				return nil
			})
			// Both withdrawals arrived while the session was still up.
			withdrawn := map[netip.Prefix]bool{}
			up := false
			for _, e := range r.eventLog() {
				if !e.Prefix.IsValid() {
					if up && e.State != bgp.BGP_FSM_ESTABLISHED {
						break
					}
					up = e.State == bgp.BGP_FSM_ESTABLISHED
				}
				if up && e.Withdraw {
					withdrawn[e.Prefix] = true
				}
			}
			for _, rt := range routes {
				if !withdrawn[rt.Prefix] {
					t.Errorf("%s was not withdrawn before the session went down; events: %+v", rt.Prefix, r.eventLog())
				}
			}
			// Nothing is retained as stale, even by a graceful-restart helper.
			if rib := r.rib(); len(rib) != 0 {
				t.Errorf("receiver still holds %d routes after Shutdown", len(rib))
			}
			if err := s.SetRoutes(routes); !errors.Is(err, errClosed) {
				t.Errorf("SetRoutes after Shutdown: err = %v, want errClosed", err)
			}
		})
	}
}

func TestDetachLeavesRoutesWithGracefulRestartHelpersOnly(t *testing.T) {
	log, _ := newTestLogger(t, slog.LevelInfo)
	s, err := New(Options{Logger: log, RouterID: netip.MustParseAddr("10.255.0.3"), ListenPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	helper := newReceiver(t, netip.MustParseAddr("127.0.0.15"), ebgp, lo1, myASN, receiverOpts{GracefulRestart: true})
	plain := newReceiver(t, netip.MustParseAddr("127.0.0.16"), ebgp, lo1, myASN, receiverOpts{})
	hp := helper.peer("helper", myASN, lo1)
	hp.GracefulRestart = true
	if err := s.SetPeers([]Peer{hp, plain.peer("plain", myASN, lo1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("198.51.100.60/32")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, hasPrefixes(helper, "198.51.100.60/32"))
	eventually(t, 5*time.Second, hasPrefixes(plain, "198.51.100.60/32"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Detach(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if helper.established() || plain.established() {
			return errors.New("sessions still established after Detach")
		}
		return nil
	})
	eventually(t, 5*time.Second, lacksPrefixes(plain, "198.51.100.60/32"))
	p, ok := helper.rib()[netip.MustParsePrefix("198.51.100.60/32")]
	if !ok || !p.Stale {
		t.Errorf("graceful-restart helper: route present=%v stale=%v, want a stale route kept", ok, ok && p.Stale)
	}
}

func TestPasswordsAreUsedButNeverLogged(t *testing.T) {
	log, out := newTestLogger(t, slog.LevelDebug)
	s, err := New(Options{Logger: log, RouterID: netip.MustParseAddr("10.255.0.4"), ListenPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	const pw = "Sup3r-s3cret-md5"
	r := newReceiver(t, netip.MustParseAddr("127.0.0.17"), ebgp, lo1, myASN, receiverOpts{Password: pw})
	p := r.peer("r", myASN, lo1)
	p.Password = pw
	if err := s.SetPeers([]Peer{p}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("198.51.100.70/32")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, hasPrefixes(r, "198.51.100.70/32"))
	// Removing the peer also clears the MD5 key from GoBGP's sockets.
	if err := s.SetPeers(nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), pw) {
		t.Error("the TCP MD5 password appears in the log")
	}
	if !strings.Contains(out.String(), "sent update") {
		t.Error("debug log does not show GoBGP's records; the check above proves nothing")
	}
}

func TestMetricsFollowSessionsAndRoutes(t *testing.T) {
	log, _ := newTestLogger(t, slog.LevelInfo)
	reg := prometheus.NewPedanticRegistry()
	s, err := New(Options{Logger: log, RouterID: netip.MustParseAddr("10.255.0.5"), ListenPort: -1, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, netip.MustParseAddr("127.0.0.18"), ebgp, lo1, myASN, receiverOpts{})
	p := r.peer("r", myASN, lo1)
	p.NextHopV6 = netip.MustParseAddr("fd00::1")
	if err := s.SetPeers([]Peer{p}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("198.51.100.80/32")},
		{Prefix: netip.MustParsePrefix("2001:db8:200::80/128")}, {Prefix: netip.MustParsePrefix("2001:db8:200::81/128")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, hasPrefixes(r, "198.51.100.80/32", "2001:db8:200::80/128", "2001:db8:200::81/128"))
	want := `
# HELP herald_bgp_advertised_prefixes Prefixes currently advertised to the peer, by address family.
# TYPE herald_bgp_advertised_prefixes gauge
herald_bgp_advertised_prefixes{family="ipv4",peer="r"} 1
herald_bgp_advertised_prefixes{family="ipv6",peer="r"} 2
# HELP herald_bgp_session_up Whether the BGP session with the peer is Established (1) or not (0).
# TYPE herald_bgp_session_up gauge
herald_bgp_session_up{peer="r"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "herald_bgp_session_up", "herald_bgp_advertised_prefixes"); err != nil {
		t.Error(err)
	}
	if n := testutil.ToFloat64(collectorMetric(t, reg, "herald_bgp_updates_sent_total")); n < 2 {
		t.Errorf("herald_bgp_updates_sent_total = %v, want at least 2 (one per family)", n)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("after Shutdown: %d metrics (err %v), want the collector unregistered", n, err)
	}
}

// collectorMetric gathers one metric family with a single series as a Collector.
func collectorMetric(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			g.Set(mf.GetMetric()[0].GetCounter().GetValue())
			return g
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}

func TestCrossFamilyRoutesNeedANextHop(t *testing.T) {
	s := newTestSpeaker(t)
	r := newReceiver(t, netip.MustParseAddr("127.0.0.19"), ebgp, lo1, myASN, receiverOpts{})
	// Loopback has no global IPv6 address, so the kernel lookup finds no
	// IPv6 next hop for this IPv4 session: IPv6 routes are held back.
	p := r.peer("r", myASN, lo1)
	p.NextHopV6 = netip.Addr{}
	err := s.SetPeers([]Peer{p})
	var w Warnings
	if !errors.As(err, &w) || len(w) != 1 || !strings.Contains(w[0].Message, "IPv6 routes are not sent") {
		t.Fatalf("SetPeers: err = %v, want a warning that IPv6 routes are not sent", err)
	}
	if err := s.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("2001:db8:200::90/128")}, {Prefix: netip.MustParsePrefix("198.51.100.90/32")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, hasPrefixes(r, "198.51.100.90/32"))
	if err := lacksPrefixes(r, "2001:db8:200::90/128")(); err != nil {
		t.Error(err)
	}
	if ss := s.Sessions(); len(ss) != 1 || len(ss[0].Warnings) != 1 {
		t.Errorf("Sessions() = %+v, want the warning on the session", ss)
	}
	// Giving the peer an explicit IPv6 next hop sends the IPv6 route
	// without resetting the session.
	p.NextHopV6 = netip.MustParseAddr("fd00::90")
	if err := s.SetPeers([]Peer{p}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, hasPrefixes(r, "2001:db8:200::90/128"))
	if n := r.establishments(); n != 1 {
		t.Errorf("session came up %d times, want once", n)
	}
}

func TestInvalidInputIsRejected(t *testing.T) {
	s := newTestSpeaker(t)
	good := Peer{Name: "a", MyASN: 1, ASN: 2, Address: netip.MustParseAddr("192.0.2.1")}
	for name, peers := range map[string][]Peer{
		"no name":           {{MyASN: 1, ASN: 2, Address: netip.MustParseAddr("192.0.2.1")}},
		"no address":        {{Name: "a", MyASN: 1, ASN: 2}},
		"no ASN":            {{Name: "a", Address: netip.MustParseAddr("192.0.2.1")}},
		"duplicate name":    {good, good},
		"duplicate address": {good, {Name: "b", MyASN: 1, ASN: 2, Address: netip.MustParseAddr("192.0.2.1")}},
		"short hold time":   {{Name: "a", MyASN: 1, ASN: 2, Address: netip.MustParseAddr("192.0.2.1"), HoldTime: time.Second}},
		"source family":     {{Name: "a", MyASN: 1, ASN: 2, Address: netip.MustParseAddr("192.0.2.1"), Source: lo6}},
		"v4 next hop is v6": {{Name: "a", MyASN: 1, ASN: 2, Address: netip.MustParseAddr("192.0.2.1"), NextHopV4: lo6}},
	} {
		if err := s.SetPeers(peers); err == nil {
			t.Errorf("%s: SetPeers accepted %+v", name, peers)
		}
	}
	for name, routes := range map[string][]Route{
		"no prefix": {{}},
		"host bits": {{Prefix: netip.MustParsePrefix("198.51.100.1/24")}},
		"duplicate": {{Prefix: netip.MustParsePrefix("198.51.100.1/32")}, {Prefix: netip.MustParsePrefix("198.51.100.1/32"), Communities: []uint32{1}}},
	} {
		if err := s.SetRoutes(routes); err == nil {
			t.Errorf("%s: SetRoutes accepted %+v", name, routes)
		}
	}
	if _, err := New(Options{RouterID: lo6}); err == nil {
		t.Error("New accepted an IPv6 router ID")
	}
}

func TestPeerSettingsReachGoBGP(t *testing.T) {
	s := newTestSpeaker(t)
	p := Peer{Name: "x", MyASN: 65001, ASN: 65002, Address: netip.MustParseAddr("192.0.2.200"), Port: 1179,
		Source: netip.MustParseAddr("127.0.0.1"), HoldTime: 30 * time.Second, KeepaliveTime: 5 * time.Second,
		ConnectTime: 3 * time.Second, EBGPMultiHop: true, GracefulRestart: true, Password: "pw",
		BFD:       &BFD{ReceiveInterval: 250 * time.Millisecond, TransmitInterval: 200 * time.Millisecond, DetectMultiplier: 4},
		NextHopV6: netip.MustParseAddr("fd00::1")}
	if err := s.SetPeers([]Peer{p}); err != nil {
		t.Fatal(err)
	}
	var got *api.Peer
	if err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(x *api.Peer) { got = x }); err != nil || got == nil {
		t.Fatalf("ListPeer: %v, %v", got, err)
	}
	c, tm := got.GetConf(), got.GetTimers().GetConfig()
	checks := []struct {
		what      string
		got, want any
	}{
		{"local ASN", c.GetLocalAsn(), uint32(65001)},
		{"peer ASN", c.GetPeerAsn(), uint32(65002)},
		{"password", c.GetAuthPassword(), "pw"},
		{"remote port", got.GetTransport().GetRemotePort(), uint32(1179)},
		{"local address", got.GetTransport().GetLocalAddress(), "127.0.0.1"},
		{"hold time", tm.GetHoldTime(), uint64(30)},
		{"keepalive", tm.GetKeepaliveInterval(), uint64(5)},
		{"connect retry", tm.GetConnectRetry(), uint64(3)},
		{"idle hold after reset", tm.GetIdleHoldTimeAfterReset(), uint64(1)},
		{"ebgp multihop", got.GetEbgpMultihop().GetEnabled(), true},
		{"multihop TTL", got.GetEbgpMultihop().GetMultihopTtl(), uint32(255)},
		{"graceful restart", got.GetGracefulRestart().GetEnabled(), true},
		{"restart time", got.GetGracefulRestart().GetRestartTime(), uint32(gracefulRestartTime)},
		{"bfd", got.GetBfd().GetEnabled(), true},
		{"bfd tx µs", got.GetBfd().GetDesiredMinimumTxInterval(), uint32(200000)},
		{"bfd rx µs", got.GetBfd().GetRequiredMinimumReceive(), uint32(250000)},
		{"bfd multiplier", got.GetBfd().GetDetectionMultiplier(), uint32(4)},
		{"families", len(got.GetAfiSafis()), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, af := range got.GetAfiSafis() {
		if !af.GetMpGracefulRestart().GetConfig().GetEnabled() {
			t.Errorf("family %v: graceful restart not enabled", af.GetConfig().GetFamily())
		}
	}
	if ss := s.Sessions(); len(ss) != 1 || ss[0].BFD == "" || ss[0].Established() {
		t.Errorf("Sessions() = %+v, want one unestablished session with a BFD state", ss)
	}
}

// The same prefix goes to two peers with different communities, large
// communities and local preference; each peer sees exactly its own, also
// after the attributes of one of them change.
func TestSamePrefixCarriesEachPeersOwnAttributes(t *testing.T) {
	s := newTestSpeaker(t)
	a := newReceiver(t, netip.MustParseAddr("127.0.0.2"), myASN, lo1, myASN, receiverOpts{})
	b := newReceiver(t, netip.MustParseAddr("127.0.0.3"), myASN, lo1, myASN, receiverOpts{})
	if err := s.SetPeers([]Peer{a.peer("a", myASN, lo1), b.peer("b", myASN, lo1)}); err != nil {
		t.Fatal(err)
	}
	pfx := netip.MustParsePrefix("198.51.100.1/32")
	set := func(commA uint32) {
		t.Helper()
		if err := s.SetRoutes([]Route{
			{Prefix: pfx, Peers: []string{"a"}, Communities: []uint32{commA}, LocalPref: 150},
			{Prefix: pfx, Peers: []string{"b"}, Communities: []uint32{64500<<16 | 2},
				LargeCommunities: [][3]uint32{{64500, 2, 2}}, LocalPref: 250},
		}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(r *receiver, comm uint32, large bool, lp uint32) func() error {
		return func() error {
			p := r.rib()[pfx]
			if p == nil {
				return fmt.Errorf("%s not received", pfx)
			}
			c, _ := attr[*bgp.PathAttributeCommunities](p.Attrs)
			if c == nil || !slices.Equal(c.Value, []uint32{comm}) {
				return fmt.Errorf("communities %v, want %d:%d only", c, comm>>16, comm&0xffff)
			}
			if _, ok := attr[*bgp.PathAttributeLargeCommunities](p.Attrs); ok != large {
				return fmt.Errorf("large communities present = %v, want %v", ok, large)
			}
			l, _ := attr[*bgp.PathAttributeLocalPref](p.Attrs)
			if l == nil || l.Value != lp {
				return fmt.Errorf("local pref %v, want %d", l, lp)
			}
			return nil
		}
	}
	set(64500<<16 | 1)
	eventually(t, 10*time.Second, mustSessions(t, s, 2))
	eventually(t, 5*time.Second, want(a, 64500<<16|1, false, 150))
	eventually(t, 5*time.Second, want(b, 64500<<16|2, true, 250))

	set(64500<<16 | 3)
	eventually(t, 5*time.Second, want(a, 64500<<16|3, false, 150))
	eventually(t, 5*time.Second, want(b, 64500<<16|2, true, 250))

	// A peer listed twice for one prefix is refused, nothing changes.
	err := s.SetRoutes([]Route{{Prefix: pfx, Peers: []string{"a"}}, {Prefix: pfx, Peers: []string{"a", "b"}}})
	if err == nil || !strings.Contains(err.Error(), `listed twice for peer "a"`) {
		t.Errorf("SetRoutes with a prefix twice for one peer: err = %v", err)
	}
}

// Nothing listens on the BGP port while no peer is configured, so another
// BGP daemon can use it; the listener comes with the first peer (on the
// configured address only) and goes with the last.
func TestListensOnlyWhilePeersAreConfigured(t *testing.T) {
	log, _ := newTestLogger(t, slog.LevelInfo)
	lo4 := netip.MustParseAddr("127.0.0.1")
	port := freePort(t, lo4)
	s, err := New(Options{Logger: log, RouterID: netip.MustParseAddr("10.255.0.1"), ListenPort: int32(port),
		ListenAddresses: []netip.Addr{lo4}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	listening := func(addr netip.Addr) bool {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, port).String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	// Routes set before any peer are kept for it.
	if err := s.SetRoutes([]Route{{Prefix: netip.MustParsePrefix("198.51.100.1/32")}}); err != nil {
		t.Fatal(err)
	}
	if listening(lo4) {
		t.Fatalf("port %d accepts connections with no peer configured", port)
	}
	r := newReceiver(t, netip.MustParseAddr("127.0.0.2"), ebgp, lo1, myASN, receiverOpts{})
	if err := s.SetPeers([]Peer{r.peer("r", myASN, lo1)}); err != nil {
		t.Fatal(err)
	}
	if !listening(lo4) {
		t.Fatalf("port %d does not accept connections with a peer configured", port)
	}
	if listening(netip.MustParseAddr("127.0.0.5")) {
		t.Errorf("listening beyond the configured listen address")
	}
	eventually(t, 10*time.Second, hasPrefixes(r, "198.51.100.1/32"))
	if err := s.SetPeers(nil); err != nil {
		t.Fatal(err)
	}
	if listening(lo4) {
		t.Errorf("port %d still accepts connections after the last peer was removed", port)
	}
}

// A password GoBGP cannot put on the listening socket (it only logs that)
// fails the peer, which is not left configured: never a plaintext session.
// Passwords pkg/bgp refuses up front (whitespace, > 80 bytes) go past
// validation here to reach GoBGP's setsockopt.
func TestMD5KeyTheSocketRefusesFailsThePeer(t *testing.T) {
	log, _ := newTestLogger(t, slog.LevelInfo)
	lo4 := netip.MustParseAddr("127.0.0.1")
	s, err := New(Options{Logger: log, RouterID: netip.MustParseAddr("10.255.0.1"), ListenPort: int32(freePort(t, lo4)),
		ListenAddresses: []netip.Addr{lo4}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	long := Peer{Name: "long", Address: netip.MustParseAddr("127.0.0.9"), ASN: ebgp, MyASN: myASN, Password: strings.Repeat("k", 81)}
	if err := s.SetPeers([]Peer{long}); err == nil || !strings.Contains(err.Error(), "at most 80") {
		t.Errorf("SetPeers with an 81-byte password: err = %v", err)
	}
	if err := s.SetPeers([]Peer{{Name: "ws", Address: long.Address, ASN: ebgp, MyASN: myASN, Password: " \t"}}); err == nil {
		t.Error("SetPeers with a whitespace password succeeded")
	}
	r := newReceiver(t, netip.MustParseAddr("127.0.0.2"), ebgp, lo1, myASN, receiverOpts{})
	if err := s.SetPeers([]Peer{r.peer("r", myASN, lo1)}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	_, err = s.addPeer(context.Background(), long)
	s.mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "cannot be set on the listening socket") {
		t.Fatalf("addPeer with a password the socket refuses: err = %v", err)
	}
	if strings.Contains(err.Error(), long.Password) {
		t.Error("the error carries the password")
	}
	var n int
	_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetConf().GetNeighborAddress() == long.Address.String() {
			n++
		}
	})
	if n != 0 {
		t.Error("the neighbour whose MD5 key could not be set is still configured in GoBGP")
	}
}
