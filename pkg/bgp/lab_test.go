package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/test/netlab"
)

// Lab tests: Speakers in the node namespaces (child processes), FRR 8 in
// "router" and BIRD 2 in "router2", asserted on the routers' own RIBs, logs
// and kernel FIBs. They need root and FRR/BIRD; otherwise they skip.

const (
	routerASN = 64500
	nodeASN   = 64501
	md5Secret = "herald-md5"
)

var (
	frrV4  = netip.MustParseAddr("192.0.2.1")
	frrV6  = netip.MustParseAddr("2001:db8:100::1")
	birdV4 = netip.MustParseAddr("192.0.2.2")
	// BFD as FRR's bfdd profile in the lab: 300 ms × 3.
	bfd300 = &BFD{ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}
)

// bgpLab is the standard lab with FRR (zebra, bgpd, bfdd) in router and
// BIRD in router2. FRR peers with node1 (BFD), node2, node3 (TCP MD5) over
// IPv4, eBGP, and with node1 over IPv6, iBGP; BIRD peers with all three
// nodes over IPv4, eBGP. Every session carries both families.
type bgpLab struct {
	*netlab.Lab
	FRR  *netlab.FRR
	BIRD *netlab.BIRD
	// frrConfig is what FRR was started with, for restartFRR.
	frrConfig netlab.FRRConfig
}

func labAvailable(t testing.TB) {
	t.Helper()
	if why := netlab.Available(); why != "" {
		t.Skip(why)
	}
	if why := netlab.FRRAvailable(); why != "" {
		t.Skip(why)
	}
}

func newBGPLab(t testing.TB) *bgpLab {
	t.Helper()
	labAvailable(t)
	lab, err := netlab.New(netlab.Standard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	l := &bgpLab{Lab: lab}
	fc := netlab.FRRConfig{ASN: routerASN, RouterID: frrV4}
	bc := netlab.BIRDConfig{ASN: routerASN, RouterID: birdV4}
	for _, n := range []string{"node1", "node2", "node3"} {
		h := lab.Host(n)
		nb := netlab.FRRNeighbor{Address: h.Addr4(), ASN: nodeASN}
		switch n {
		case "node1":
			nb.BFD = true
		case "node3":
			nb.Password = md5Secret
		}
		fc.Neighbors = append(fc.Neighbors, nb)
		bc.Neighbors = append(bc.Neighbors, netlab.BIRDNeighbor{Name: n, Address: h.Addr4(), ASN: nodeASN})
	}
	fc.Neighbors = append(fc.Neighbors, netlab.FRRNeighbor{Address: lab.Host("node1").Addr6(), ASN: routerASN})
	l.frrConfig = fc
	if l.FRR, err = lab.Host("router").StartFRR(fc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := l.FRR.Log(); err == nil {
				t.Logf("bgpd.log (tail):\n%s", tail(log, 80))
			}
		}
		l.FRR.Close()
	})
	if l.BIRD, err = lab.Host("router2").StartBIRD(bc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.BIRD.Close)
	return l
}

// restartFRR stops FRR (bgpd closes every session with a Cease) and starts
// it again with the same configuration; it returns when bgpd's vty answers.
func (l *bgpLab) restartFRR(t testing.TB) time.Time {
	t.Helper()
	l.FRR.Close()
	f, err := l.Host("router").StartFRR(l.frrConfig)
	if err != nil {
		t.Fatal(err)
	}
	l.FRR = f
	return time.Now()
}

// frrEstablishedAt waits for bgpd's log to say that the session with addr
// went to Established after since, and returns when (bgpd's clock).
func frrEstablishedAt(t testing.TB, l *bgpLab, addr netip.Addr, since time.Time, timeout time.Duration) time.Time {
	t.Helper()
	var at time.Time
	up := func(evs []netlab.FRRLogEvent) bool {
		for _, e := range evs {
			if e.Kind == "state" && e.Neighbor == addr && e.State == "Established" && !e.Time.Before(since) {
				at = e.Time
				return true
			}
		}
		return false
	}
	if _, err := l.FRR.LogEventsUntil(timeout, up); err != nil {
		t.Fatal(err)
	}
	if at.IsZero() {
		t.Fatalf("FRR: session with %s not Established within %s", addr, timeout)
	}
	return at
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func frrPeer(myASN uint32) Peer {
	return Peer{Name: "frr", MyASN: myASN, ASN: routerASN, Address: frrV4, HoldTime: 9 * time.Second, ConnectTime: time.Second}
}

func birdPeer() Peer {
	return Peer{Name: "bird", MyASN: nodeASN, ASN: routerASN, Address: birdV4, HoldTime: 9 * time.Second, ConnectTime: time.Second}
}

// fibHas waits for host's kernel route to p with exactly the next hops want
// (none = no route).
func fibHas(t testing.TB, h *netlab.Host, p netip.Prefix, timeout time.Duration, want ...netip.Addr) {
	t.Helper()
	slices.SortFunc(want, netip.Addr.Compare)
	eventually(t, timeout, func() error {
		r, ok, err := h.KernelRoute(p)
		if err != nil {
			return err
		}
		if len(want) == 0 {
			if ok {
				return fmt.Errorf("%s: route %s still present via %v", h.Spec.Name, p, r.NextHops)
			}
			return nil
		}
		got := slices.Clone(r.NextHops)
		slices.SortFunc(got, netip.Addr.Compare)
		if !ok || !slices.Equal(got, want) {
			return fmt.Errorf("%s: route %s via %v (present %v), want via %v", h.Spec.Name, p, got, ok, want)
		}
		return nil
	})
}

func frrNeighborUp(t testing.TB, l *bgpLab, addr netip.Addr, timeout time.Duration) netlab.FRRNeighborState {
	t.Helper()
	var st netlab.FRRNeighborState
	eventually(t, timeout, func() error {
		nb, err := l.FRR.Neighbors()
		if err != nil {
			return err
		}
		st = nb[addr]
		if st.State != "Established" {
			return fmt.Errorf("FRR neighbour %s is %q", addr, st.State)
		}
		return nil
	})
	return st
}

func birdUp(t testing.TB, l *bgpLab, proto string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() error {
		ps, err := l.BIRD.Protocols()
		if err != nil {
			return err
		}
		if p := ps[proto]; p.Info != "Established" {
			return fmt.Errorf("BIRD protocol %s: %+v", proto, p)
		}
		return nil
	})
}

// frrEvents returns FRR's log events of one kind from one neighbour for one
// prefix (zero prefix: any).
func frrEvents(t testing.TB, l *bgpLab, from netip.Addr, kind string, p netip.Prefix) []netlab.FRRLogEvent {
	t.Helper()
	evs, err := l.FRR.LogEvents()
	if err != nil {
		t.Fatal(err)
	}
	var out []netlab.FRRLogEvent
	for _, e := range evs {
		if e.Neighbor == from && e.Kind == kind && (!p.IsValid() || e.Prefix == p) {
			out = append(out, e)
		}
	}
	return out
}

func birdRoute(l *bgpLab, p netip.Prefix) ([]netlab.BIRDRoute, error) {
	rs, err := l.BIRD.Routes()
	if err != nil {
		return nil, err
	}
	var out []netlab.BIRDRoute
	for _, r := range rs {
		if r.Prefix == p {
			out = append(out, r)
		}
	}
	return out, nil
}

var (
	v4Only1 = netip.MustParsePrefix("198.51.100.10/32")
	v6Only1 = netip.MustParsePrefix("2001:db8:200::10/128")
	ibgpLP  = netip.MustParsePrefix("198.51.100.30/32")
	ibgpLP6 = netip.MustParsePrefix("2001:db8:200::30/128")
	ecmp4   = netip.MustParsePrefix("198.51.100.20/32")
	ecmp6   = netip.MustParsePrefix("2001:db8:200::20/128")
	only2   = netip.MustParsePrefix("198.51.100.12/32")
)

// TestLabAnnouncementsAtFRRAndBIRD runs the scenarios against real routers
// in one lab, in order; later steps build on the sessions of earlier ones.
func TestLabAnnouncementsAtFRRAndBIRD(t *testing.T) {
	l := newBGPLab(t)
	router, router2 := l.Host("router"), l.Host("router2")
	n1, n2, n3 := startSpeaker(t, l.Host("node1")), startSpeaker(t, l.Host("node2")), startSpeaker(t, l.Host("node3"))
	node1, node2, node3 := l.Host("node1"), l.Host("node2"), l.Host("node3")

	frr1 := frrPeer(nodeASN)
	frr1.BFD = bfd300
	// iBGP over IPv6 with the same router, for LOCAL_PREF.
	frr6 := Peer{Name: "frr6", MyASN: routerASN, ASN: routerASN, Address: frrV6, HoldTime: 9 * time.Second, ConnectTime: time.Second}
	frr3 := frrPeer(nodeASN)
	frr3.Password = "wrong-" + md5Secret

	t.Run("sessions come up over IPv4 and IPv6, eBGP and iBGP", func(t *testing.T) {
		n1.setPeers(frr1, frr6, birdPeer())
		n2.setPeers(frrPeer(nodeASN)) // bird is added at runtime below
		n3.setPeers(frr3, birdPeer())
		frrNeighborUp(t, l, node1.Addr4(), 10*time.Second)
		frrNeighborUp(t, l, node1.Addr6(), 10*time.Second)
		frrNeighborUp(t, l, node2.Addr4(), 10*time.Second)
		birdUp(t, l, "node1", 10*time.Second)
		birdUp(t, l, "node3", 10*time.Second)
	})

	t.Run("IPv4 and IPv6 routes with communities reach both routers over IPv4 sessions", func(t *testing.T) {
		n1.setRoutes(Route{Prefix: v4Only1, Peers: []string{"frr", "bird"},
			Communities: []uint32{64500<<16 | 100}, LargeCommunities: [][3]uint32{{64500, 1, 2}}})
		fibHas(t, router, v4Only1, 5*time.Second, node1.Addr4())
		fibHas(t, router2, v4Only1, 5*time.Second, node1.Addr4())
		paths, err := l.FRR.BGPRoute(v4Only1)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 1 || paths[0].Peer != node1.Addr4() || paths[0].Communities != "64500:100" || paths[0].LargeCommunities != "64500:1:2" {
			t.Errorf("FRR paths for %s = %+v, want one from %s with community 64500:100 and large community 64500:1:2", v4Only1, paths, node1.Addr4())
		}
		br, err := birdRoute(l, v4Only1)
		if err != nil || len(br) != 1 || br[0].Attrs["BGP.community"] != "(64500,100)" || br[0].Attrs["BGP.large_community"] != "(64500, 1, 2)" {
			t.Errorf("BIRD routes for %s = %+v (%v), want communities (64500,100) and (64500, 1, 2)", v4Only1, br, err)
		}
		before := len(frrEvents(t, l, node1.Addr4(), "announce", v4Only1))
		upBefore := frrNeighborUp(t, l, node1.Addr4(), time.Second)

		// Adding the /128 (IPv6 over the IPv4 session, next hop: node1's
		// global IPv6 on eth0) must leave the /32 alone.
		n1.setRoutes(Route{Prefix: v4Only1, Peers: []string{"frr", "bird"},
			Communities: []uint32{64500<<16 | 100}, LargeCommunities: [][3]uint32{{64500, 1, 2}}},
			Route{Prefix: v6Only1, Peers: []string{"frr", "bird"}})
		fibHas(t, router, v6Only1, 5*time.Second, node1.Addr6())
		fibHas(t, router2, v6Only1, 5*time.Second, node1.Addr6())
		if ps, err := l.FRR.BGPRoute(v6Only1); err != nil || len(ps) != 1 || ps[0].Peer != node1.Addr4() {
			t.Errorf("FRR paths for %s = %+v (%v), want one learnt over the IPv4 session %s", v6Only1, ps, err, node1.Addr4())
		}
		// Then remove only the /128.
		n1.setRoutes(Route{Prefix: v4Only1, Peers: []string{"frr", "bird"},
			Communities: []uint32{64500<<16 | 100}, LargeCommunities: [][3]uint32{{64500, 1, 2}}})
		fibHas(t, router, v6Only1, 5*time.Second)
		fibHas(t, router2, v6Only1, 5*time.Second)
		if n := len(frrEvents(t, l, node1.Addr4(), "withdraw", v6Only1)); n != 1 {
			t.Errorf("FRR saw %d withdrawals of %s, want 1", n, v6Only1)
		}
		if after := len(frrEvents(t, l, node1.Addr4(), "announce", v4Only1)); after != before {
			t.Errorf("FRR received %s %d more times while only the /128 changed", v4Only1, after-before)
		}
		if n := len(frrEvents(t, l, node1.Addr4(), "withdraw", v4Only1)); n != 0 {
			t.Errorf("FRR saw %s withdrawn %d times", v4Only1, n)
		}
		if up := frrNeighborUp(t, l, node1.Addr4(), time.Second); !sameSession(up, upBefore) {
			t.Errorf("FRR session with node1 was reset: before %+v, after %+v", upBefore, up)
		}
		fibHas(t, router, v4Only1, time.Second, node1.Addr4())
	})

	t.Run("localPref reaches the iBGP peer and is reported for eBGP peers", func(t *testing.T) {
		base := Route{Prefix: v4Only1, Peers: []string{"frr", "bird"},
			Communities: []uint32{64500<<16 | 100}, LargeCommunities: [][3]uint32{{64500, 1, 2}}}
		rep := n1.setRoutes(base, Route{Prefix: ibgpLP, Peers: []string{"frr6"}, LocalPref: 250},
			Route{Prefix: ibgpLP6, Peers: []string{"frr6"}, LocalPref: 260})
		if rep.Warn != "" {
			t.Errorf("warning for a localPref sent over iBGP only: %s", rep.Warn)
		}
		// IPv6 over the IPv6 session: the next hop is the session's address.
		fibHas(t, router, ibgpLP6, 5*time.Second, node1.Addr6())
		if ps, err := l.FRR.BGPRoute(ibgpLP6); err != nil || len(ps) != 1 || ps[0].LocalPref != 260 || ps[0].Peer != node1.Addr6() {
			t.Errorf("FRR paths for %s = %+v (%v), want one from %s with localPref 260", ibgpLP6, ps, err, node1.Addr6())
		}
		eventually(t, 5*time.Second, func() error {
			ps, err := l.FRR.BGPRoute(ibgpLP)
			if err != nil {
				return err
			}
			// IPv4 route over the IPv6 session: the next hop is node1's
			// IPv4 address on the interface towards the router.
			if len(ps) != 1 || ps[0].Peer != node1.Addr6() || ps[0].LocalPref != 250 || !slices.Equal(ps[0].NextHops, []netip.Addr{node1.Addr4()}) {
				return fmt.Errorf("FRR paths for %s = %+v, want one from %s with localPref 250 via %s", ibgpLP, ps, node1.Addr6(), node1.Addr4())
			}
			return nil
		})
		fibHas(t, router, ibgpLP, 5*time.Second, node1.Addr4())
		if rs, err := birdRoute(l, ibgpLP); err != nil || len(rs) != 0 {
			t.Errorf("BIRD got %s, which targets frr6 only: %+v (%v)", ibgpLP, rs, err)
		}
		rep = n1.setRoutes(base, Route{Prefix: ibgpLP, Peers: []string{"frr6", "frr"}, LocalPref: 250})
		if !strings.Contains(rep.Warn, `peer "frr", prefix 198.51.100.30/32: localPref is not sent to an eBGP peer`) {
			t.Errorf("warning = %q, want one for the eBGP peer frr", rep.Warn)
		}
		eventually(t, 5*time.Second, func() error {
			ps, err := l.FRR.BGPRoute(ibgpLP)
			if err != nil {
				return err
			}
			for _, p := range ps {
				if p.Peer == node1.Addr4() {
					if p.LocalPref != 0 {
						return fmt.Errorf("eBGP path carries localPref %d", p.LocalPref)
					}
					return nil
				}
			}
			return fmt.Errorf("no path from the eBGP session yet: %+v", ps)
		})
		n1.setRoutes(base)
		fibHas(t, router, ibgpLP, 5*time.Second)
		fibHas(t, router, ibgpLP6, 5*time.Second)
	})

	t.Run("TCP MD5: a wrong password never establishes, the right one does without touching other sessions", func(t *testing.T) {
		birdBefore, err := l.BIRD.Protocols()
		if err != nil {
			t.Fatal(err)
		}
		// node3 has been dialling with the wrong key since the first step
		// while its BIRD session (no MD5) came up. Watch a few more connect
		// retries (1 s each) to be sure it stays down.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			nb, err := l.FRR.Neighbors()
			if err != nil {
				t.Fatal(err)
			}
			if st := nb[node3.Addr4()]; st.State == "Established" || st.ConnectionsEstablished != 0 {
				t.Fatalf("FRR established with node3 despite a wrong MD5 password: %+v", st)
			}
			if s := n3.sessions()["frr"]; s.Established() {
				t.Fatalf("node3 reports the MD5 session established: %+v", s)
			}
			time.Sleep(200 * time.Millisecond)
		}
		frr3.Password = md5Secret
		n3.setPeers(frr3, birdPeer())
		frrNeighborUp(t, l, node3.Addr4(), 10*time.Second)
		birdAfter, err := l.BIRD.Protocols()
		if err != nil {
			t.Fatal(err)
		}
		if birdAfter["node3"] != birdBefore["node3"] {
			t.Errorf("node3's BIRD session changed with its FRR password: %+v -> %+v", birdBefore["node3"], birdAfter["node3"])
		}
	})

	t.Run("a peer added at runtime leaves the existing session alone", func(t *testing.T) {
		before := frrNeighborUp(t, l, node2.Addr4(), time.Second)
		n2.setPeers(frrPeer(nodeASN), birdPeer())
		birdUp(t, l, "node2", 10*time.Second)
		after := frrNeighborUp(t, l, node2.Addr4(), time.Second)
		if !sameSession(after, before) {
			t.Errorf("FRR session with node2 was reset by adding a BIRD peer: before %+v, after %+v", before, after)
		}
	})

	t.Run("ECMP from three nodes at both routers", func(t *testing.T) {
		base1 := Route{Prefix: v4Only1, Peers: []string{"frr", "bird"},
			Communities: []uint32{64500<<16 | 100}, LargeCommunities: [][3]uint32{{64500, 1, 2}}}
		both := []string{"frr", "bird"}
		n1.setRoutes(base1, Route{Prefix: ecmp4, Peers: both}, Route{Prefix: ecmp6, Peers: both})
		n2.setRoutes(Route{Prefix: ecmp4}, Route{Prefix: ecmp6}, Route{Prefix: only2})
		n3.setRoutes(Route{Prefix: ecmp4}, Route{Prefix: ecmp6})
		all4 := []netip.Addr{node1.Addr4(), node2.Addr4(), node3.Addr4()}
		all6 := []netip.Addr{node1.Addr6(), node2.Addr6(), node3.Addr6()}
		fibHas(t, router, ecmp4, 5*time.Second, all4...)
		fibHas(t, router, ecmp6, 5*time.Second, all6...)
		fibHas(t, router2, ecmp4, 5*time.Second, all4...)
		fibHas(t, router2, ecmp6, 5*time.Second, all6...)
		ps, err := l.FRR.BGPRoute(ecmp4)
		if err != nil {
			t.Fatal(err)
		}
		multi := 0
		for _, p := range ps {
			if p.Multipath || p.Best {
				multi++
			}
		}
		if multi != 3 {
			t.Errorf("FRR uses %d of %d paths for %s, want 3: %+v", multi, len(ps), ecmp4, ps)
		}
	})

	t.Run("Shutdown withdraws explicitly before the session closes", func(t *testing.T) {
		rep := n2.shutdown(5 * time.Second)
		fibHas(t, router, only2, 5*time.Second)
		fibHas(t, router, ecmp4, 5*time.Second, node1.Addr4(), node3.Addr4())
		fibHas(t, router2, ecmp4, 5*time.Second, node1.Addr4(), node3.Addr4())
		// bgpd may write the NOTIFICATION line a moment after the FIB changed.
		evs, err := l.FRR.LogEventsUntil(5*time.Second, func(evs []netlab.FRRLogEvent) bool {
			return slices.ContainsFunc(evs, func(e netlab.FRRLogEvent) bool {
				return e.Kind == "notification" && e.Neighbor == node2.Addr4() && !e.Time.Before(rep.Start.Add(-time.Second))
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		withdrawn := map[netip.Prefix]time.Time{}
		var closed time.Time
		for _, e := range evs {
			if e.Neighbor != node2.Addr4() || e.Time.Before(rep.Start.Add(-time.Second)) {
				continue
			}
			if e.Kind == "withdraw" && closed.IsZero() {
				withdrawn[e.Prefix] = e.Time
			}
			if e.Kind == "notification" && closed.IsZero() {
				closed = e.Time
			}
		}
		if closed.IsZero() {
			t.Fatal("FRR logged no NOTIFICATION from node2")
		}
		for _, p := range []netip.Prefix{ecmp4, ecmp6, only2} {
			if _, ok := withdrawn[p]; !ok {
				t.Errorf("%s was not withdrawn before node2's NOTIFICATION (withdrawn: %v)", p, withdrawn)
			}
		}
		t.Logf("Shutdown took %s; FRR got the last withdrawal %s before the Cease",
			rep.End.Sub(rep.Start).Round(time.Microsecond), closed.Sub(maxTime(withdrawn)).Round(time.Microsecond))
	})

	t.Run("BFD: FRR drops a silently cut node's routes within the detection time", func(t *testing.T) {
		eventually(t, 10*time.Second, func() error {
			nb, err := l.FRR.Neighbors()
			if err != nil {
				return err
			}
			if st := nb[node1.Addr4()]; st.BFDStatus != "Up" {
				return fmt.Errorf("FRR's BFD with node1: %+v", st)
			}
			if s := n1.sessions()["frr"]; s.BFD != "Up" {
				return fmt.Errorf("node1's BFD with frr: %+v", s)
			}
			return nil
		})
		fibHas(t, router, v4Only1, time.Second, node1.Addr4())
		cut := time.Now()
		if err := node1.SetLink(false); err != nil {
			t.Fatal(err)
		}
		// Hold time is 9 s: anything well below proves BFD did it.
		fibHas(t, router, v4Only1, 4*time.Second)
		took := time.Since(cut)
		fibHas(t, router, ecmp4, time.Second, node3.Addr4())
		// GoBGP's own BFD resets the node's side as well, long before its
		// hold timer would.
		eventually(t, 4*time.Second-time.Since(cut), func() error {
			if s := n1.sessions()["frr"]; s.Established() || s.BFD == "Up" {
				return fmt.Errorf("node1's session with frr after the cut: %+v", s)
			}
			return nil
		})
		t.Logf("node1's session with frr left Established %s after the cut", time.Since(cut).Round(time.Millisecond))
		nb, err := l.FRR.Neighbors()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("route gone from FRR's FIB %s after the cut (BFD 300 ms × 3, hold 9 s); FRR: %+v", took.Round(time.Millisecond), nb[node1.Addr4()])
		if err := node1.SetLink(true); err != nil {
			t.Fatal(err)
		}
		// The node's own BFD resets its side too, and the session comes back.
		frrNeighborUp(t, l, node1.Addr4(), 15*time.Second)
		fibHas(t, router, v4Only1, 5*time.Second, node1.Addr4())
	})

	t.Run("a restarted router gets every route back from every node", func(t *testing.T) {
		// bgpd closes each session with a Cease; GoBGP would hold the
		// neighbour Idle for 5 s and refuse the router's connections, so
		// the speaker re-creates it. How fast: TestLabReturnLatency.
		// (Last: node1's BFD session may expire once while FRR's new bfdd
		// comes up, resetting that session a few seconds later.)
		l.restartFRR(t)
		up4 := []netip.Addr{node1.Addr4(), node3.Addr4()} // node2 was shut down above
		up6 := []netip.Addr{node1.Addr6(), node3.Addr6()}
		fibHas(t, router, ecmp4, 15*time.Second, up4...)
		fibHas(t, router, ecmp6, 15*time.Second, up6...)
		fibHas(t, router, v4Only1, 5*time.Second, node1.Addr4())
		// BIRD's sessions were never touched.
		fibHas(t, router2, ecmp4, time.Second, up4...)
	})
}

// sameSession reports whether FRR's session with a neighbour is the same
// one at both observations: FRR counts every establishment and every drop.
// (Its uptime has whole-second granularity, too coarse to compare.)
func sameSession(a, b netlab.FRRNeighborState) bool {
	return a.State == "Established" && b.State == "Established" && a.ConnectionsEstablished == b.ConnectionsEstablished &&
		a.ConnectionsDropped == b.ConnectionsDropped
}

func maxTime(m map[netip.Prefix]time.Time) time.Time {
	var t time.Time
	for _, x := range m {
		if x.After(t) {
			t = x
		}
	}
	return t
}
