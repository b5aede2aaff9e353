package bgp

import (
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-lb/herald/test/netlab"
)

// Latency figures for docs/performance.md. Not part of the default run:
//
//	go test ./pkg/bgp/ -run TestLabLatency -bgp.bench -v
var benchLab = flag.Bool("bgp.bench", false, "run the BGP latency measurements against FRR and BIRD (root, ~1 min)")

// fibWatch follows a namespace's kernel routes through a netlink
// subscription, stamping each change when it arrives: a precise clock for
// "the route is in the FIB", unlike polling `ip route`.
type fibWatch struct {
	mu      sync.Mutex
	state   map[netip.Prefix]fibState
	changed chan struct{}
}

type fibState struct {
	NextHops int // 0: no route
	At       time.Time
}

func watchFIB(t testing.TB, h *netlab.Host) *fibWatch {
	t.Helper()
	w := &fibWatch{state: map[netip.Prefix]fibState{}, changed: make(chan struct{})}
	stop, err := h.WatchRoutes(func(c netlab.RouteChange) {
		w.mu.Lock()
		w.state[c.Prefix] = fibState{NextHops: c.NextHops, At: c.At}
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}, func(err error) { t.Errorf("%v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return w
}

// wait blocks until cond holds over the FIB state.
func (w *fibWatch) wait(t testing.TB, timeout time.Duration, what string, cond func(map[netip.Prefix]fibState) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		ok := cond(w.state)
		ch := w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("FIB: %s: not within %s", what, timeout)
		}
	}
}

func (w *fibWatch) get(p netip.Prefix) fibState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state[p]
}

func pct(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func summary(d []time.Duration) string {
	r := func(x time.Duration) string { return x.Round(100 * time.Microsecond).String() }
	return fmt.Sprintf("p50 %s, p95 %s, min %s, max %s (n=%d)", r(pct(d, .5)), r(pct(d, .95)), r(slices.Min(d)), r(slices.Max(d)), len(d))
}

func TestLabLatency(t *testing.T) {
	if !*benchLab {
		t.Skip("latency measurements run with -bgp.bench")
	}
	l := newBGPLab(t)
	router, router2 := l.Host("router"), l.Host("router2")
	fib1, fib2 := watchFIB(t, router), watchFIB(t, router2)
	nodes := []*netlab.Host{l.Host("node1"), l.Host("node2"), l.Host("node3")}
	sp := make([]*speakerProc, 3)
	for i, h := range nodes {
		sp[i] = startSpeaker(t, h)
		p := frrPeer(nodeASN)
		if i == 2 {
			p.Password = md5Secret
		}
		sp[i].setPeers(p, birdPeer())
	}
	for i, h := range nodes {
		frrNeighborUp(t, l, h.Addr4(), 15*time.Second)
		birdUp(t, l, fmt.Sprintf("node%d", i+1), 15*time.Second)
	}
	var report strings.Builder
	fmt.Fprintf(&report, "\nBGP latency (%s)\n", time.Now().Format(time.DateOnly))

	t.Run("one route at a time: SetRoutes to FRR's RIB and both FIBs, and withdrawal", func(t *testing.T) {
		const n = 24
		var rib, fibFRR, fibBIRD, wRIB, wFRR, wBIRD []time.Duration
		var routes []Route
		var calls []time.Duration
		for i := range n {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + i)}), 32)
			if i%2 == 1 {
				p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x02, 0, 15: byte(100 + i)}), 128)
			}
			routes = append(routes, Route{Prefix: p})
			rep := sp[0].setRoutes(routes...)
			calls = append(calls, rep.End.Sub(rep.Start))
			fib1.wait(t, 5*time.Second, p.String()+" at router", func(m map[netip.Prefix]fibState) bool { return m[p].NextHops == 1 })
			fib2.wait(t, 5*time.Second, p.String()+" at router2", func(m map[netip.Prefix]fibState) bool { return m[p].NextHops == 1 })
			fibFRR = append(fibFRR, fib1.get(p).At.Sub(rep.Start))
			fibBIRD = append(fibBIRD, fib2.get(p).At.Sub(rep.Start))
			if ev := frrEvents(t, l, nodes[0].Addr4(), "announce", p); len(ev) == 1 {
				rib = append(rib, ev[0].Time.Sub(rep.Start))
			}
		}
		for len(routes) > 0 {
			p := routes[len(routes)-1].Prefix
			routes = routes[:len(routes)-1]
			rep := sp[0].setRoutes(routes...)
			fib1.wait(t, 5*time.Second, p.String()+" gone at router", func(m map[netip.Prefix]fibState) bool { return m[p].NextHops == 0 })
			fib2.wait(t, 5*time.Second, p.String()+" gone at router2", func(m map[netip.Prefix]fibState) bool { return m[p].NextHops == 0 })
			wFRR = append(wFRR, fib1.get(p).At.Sub(rep.Start))
			wBIRD = append(wBIRD, fib2.get(p).At.Sub(rep.Start))
			if ev := frrEvents(t, l, nodes[0].Addr4(), "withdraw", p); len(ev) == 1 {
				wRIB = append(wRIB, ev[0].Time.Sub(rep.Start))
			}
		}
		fmt.Fprintf(&report, "SetRoutes call (one more route):             %s\n", summary(calls))
		fmt.Fprintf(&report, "announce, SetRoutes -> FRR bgpd RIB (log):   %s\n", summary(rib))
		fmt.Fprintf(&report, "announce, SetRoutes -> FRR kernel FIB:       %s\n", summary(fibFRR))
		fmt.Fprintf(&report, "announce, SetRoutes -> BIRD kernel FIB:      %s\n", summary(fibBIRD))
		fmt.Fprintf(&report, "withdraw, SetRoutes -> FRR bgpd RIB (log):   %s\n", summary(wRIB))
		fmt.Fprintf(&report, "withdraw, SetRoutes -> FRR kernel FIB gone:  %s\n", summary(wFRR))
		fmt.Fprintf(&report, "withdraw, SetRoutes -> BIRD kernel FIB gone: %s\n", summary(wBIRD))
	})

	t.Run("250 routes from 3 nodes, ECMP at both routers", func(t *testing.T) {
		const n = 250
		var routes []Route
		for i := range n {
			routes = append(routes, Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(113 + i/250), byte(i % 250)}), 32)})
		}
		all3 := func(m map[netip.Prefix]fibState) bool {
			for _, r := range routes {
				if m[r.Prefix].NextHops != 3 {
					return false
				}
			}
			return true
		}
		gone := func(m map[netip.Prefix]fibState) bool {
			for _, r := range routes {
				if m[r.Prefix].NextHops != 0 {
					return false
				}
			}
			return true
		}
		last := func(w *fibWatch) (t time.Time) {
			for _, r := range routes {
				if at := w.get(r.Prefix).At; at.After(t) {
					t = at
				}
			}
			return t
		}
		starts := make([]time.Time, 3)
		calls := make([]time.Duration, 3)
		var wg sync.WaitGroup
		for i := range sp {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep := sp[i].setRoutes(routes...)
				starts[i], calls[i] = rep.Start, rep.End.Sub(rep.Start)
			}()
		}
		wg.Wait()
		t0 := slices.MinFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
		fib1.wait(t, 30*time.Second, "250 routes with 3 next hops at router", all3)
		fib2.wait(t, 30*time.Second, "250 routes with 3 next hops at router2", all3)
		fmt.Fprintf(&report, "250 routes, one SetRoutes call per node takes: %v\n", calls)
		fmt.Fprintf(&report, "250 routes x 3 nodes, SetRoutes -> all in FRR FIB with 3-way ECMP:  %s\n", last(fib1).Sub(t0).Round(time.Millisecond))
		fmt.Fprintf(&report, "250 routes x 3 nodes, SetRoutes -> all in BIRD FIB with 3-way ECMP: %s\n", last(fib2).Sub(t0).Round(time.Millisecond))
		for i := range sp {
			wg.Add(1)
			go func() {
				defer wg.Done()
				starts[i] = sp[i].setRoutes().Start
			}()
		}
		wg.Wait()
		t0 = slices.MinFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
		fib1.wait(t, 30*time.Second, "250 routes gone at router", gone)
		fib2.wait(t, 30*time.Second, "250 routes gone at router2", gone)
		fmt.Fprintf(&report, "250 routes x 3 nodes, withdraw all -> gone from FRR FIB:  %s\n", last(fib1).Sub(t0).Round(time.Millisecond))
		fmt.Fprintf(&report, "250 routes x 3 nodes, withdraw all -> gone from BIRD FIB: %s\n", last(fib2).Sub(t0).Round(time.Millisecond))
	})

	t.Run("BFD: silent cut to the route leaving FRR's FIB", func(t *testing.T) {
		p := frrPeer(nodeASN)
		p.BFD = bfd300
		sp[0].setPeers(p, birdPeer())
		probe := Route{Prefix: netip.MustParsePrefix("198.51.100.99/32"), Peers: []string{"frr"}}
		sp[0].setRoutes(probe)
		var took []time.Duration
		for range 5 {
			frrNeighborUp(t, l, nodes[0].Addr4(), 20*time.Second)
			eventually(t, 10*time.Second, func() error {
				nb, err := l.FRR.Neighbors()
				if err != nil {
					return err
				}
				if st := nb[nodes[0].Addr4()]; st.BFDStatus != "Up" {
					return fmt.Errorf("BFD with node1: %+v", st)
				}
				return nil
			})
			fib1.wait(t, 10*time.Second, "probe at router", func(m map[netip.Prefix]fibState) bool { return m[probe.Prefix].NextHops == 1 })
			cut := time.Now()
			if err := nodes[0].SetLink(false); err != nil {
				t.Fatal(err)
			}
			fib1.wait(t, 9*time.Second, "probe gone at router", func(m map[netip.Prefix]fibState) bool { return m[probe.Prefix].NextHops == 0 })
			took = append(took, fib1.get(probe.Prefix).At.Sub(cut))
			if err := nodes[0].SetLink(true); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&report, "BFD 300 ms x 3, link cut -> route gone from FRR FIB: %s\n", summary(took))
	})
	t.Log(report.String())
}

// TestLabReturnLatency measures how fast BGP comes back, against FRR:
// a session after its peer is configured, a restarted speaker's route, and
// the route after FRR itself restarts (bgpd closes with a Cease).
//
//	go test ./pkg/bgp/ -run TestLabReturnLatency -bgp.bench -v
func TestLabReturnLatency(t *testing.T) {
	if !*benchLab {
		t.Skip("latency measurements run with -bgp.bench")
	}
	l := newBGPLab(t)
	fib := watchFIB(t, l.Host("router"))
	node := l.Host("node2")
	probe := Route{Prefix: netip.MustParsePrefix("198.51.100.77/32")}
	const n = 10
	var report strings.Builder
	fmt.Fprintf(&report, "\nBGP return latency (%s)\n", time.Now().Format(time.DateOnly))

	top := t // speakers started in a subtest outlive it
	sp := startSpeaker(t, node)
	t.Run("session: SetPeers to Established", func(t *testing.T) {
		var est []time.Duration
		for i := range n {
			rep := sp.setPeers(frrPeer(nodeASN))
			at := frrEstablishedAt(t, l, node.Addr4(), rep.Start, 15*time.Second)
			est = append(est, at.Sub(rep.Start))
			sp.setPeers()
			// Let FRR's own connect retries (1 s) fall anywhere.
			time.Sleep(1200*time.Millisecond + time.Duration(i)*90*time.Millisecond)
		}
		fmt.Fprintf(&report, "SetPeers -> Established at FRR (log):             %s\n", summary(est))
	})

	t.Run("restart: speaker restart to its route in FRR's FIB", func(t *testing.T) {
		sp.setRoutes(probe)
		sp.setPeers(frrPeer(nodeASN))
		fib.wait(t, 15*time.Second, "probe at router", func(m map[netip.Prefix]fibState) bool { return m[probe.Prefix].NextHops == 1 })
		var fromStart, fromPeers []time.Duration
		for range n {
			sp.shutdown(5 * time.Second)
			fib.wait(t, 5*time.Second, "probe gone at router", func(m map[netip.Prefix]fibState) bool { return m[probe.Prefix].NextHops == 0 })
			t0 := time.Now()
			sp = startSpeaker(top, node)
			// As the speaker's glue does: routes first, then peers.
			sp.setRoutes(probe)
			rep := sp.setPeers(frrPeer(nodeASN))
			fib.wait(t, 15*time.Second, "probe back at router", func(m map[netip.Prefix]fibState) bool { return m[probe.Prefix].NextHops == 1 })
			at := fib.get(probe.Prefix).At
			fromStart = append(fromStart, at.Sub(t0))
			fromPeers = append(fromPeers, at.Sub(rep.Start))
		}
		fmt.Fprintf(&report, "speaker restart: process start -> route in FRR FIB: %s\n", summary(fromStart))
		fmt.Fprintf(&report, "speaker restart: SetPeers -> route in FRR FIB:      %s\n", summary(fromPeers))
	})

	t.Run("router: FRR restart (Cease) to the route in FRR's RIB", func(t *testing.T) {
		sp.setRoutes(probe)
		sp.setPeers(frrPeer(nodeASN))
		var back []time.Duration
		for range n / 2 {
			fib.wait(t, 15*time.Second, "probe at router", func(m map[netip.Prefix]fibState) bool { return m[probe.Prefix].NextHops == 1 })
			up := l.restartFRR(t)
			var at time.Time
			_, err := l.FRR.LogEventsUntil(30*time.Second, func(evs []netlab.FRRLogEvent) bool {
				for _, e := range evs {
					if e.Kind == "announce" && e.Neighbor == node.Addr4() && e.Prefix == probe.Prefix {
						at = e.Time
						return true
					}
				}
				return false
			})
			if err != nil || at.IsZero() {
				t.Fatalf("FRR did not receive %s from %s within 30 s after its restart (%v); speaker log:\n%s", probe.Prefix, node.Addr4(), err, sp.proc.Output())
			}
			back = append(back, at.Sub(up))
		}
		fmt.Fprintf(&report, "FRR restart: bgpd up -> route in FRR RIB (log):     %s\n", summary(back))
	})
	t.Log(report.String())
}
