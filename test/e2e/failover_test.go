package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-lb/herald/test/netlab"
)

// frame is one announcement or answer the client saw.
type frame struct {
	at   time.Time
	mac  string
	kind string // "garp", "arp-reply", "na"
}

// wire watches the client's eth0 for ARP and NA about one pair of
// addresses, and sends an ARP request for the IPv4 one every 10 ms so a
// second answering node would show up as two answers to one request.
type wire struct {
	conn       *packet.Conn
	v4, v6     netip.Addr
	self       net.HardwareAddr
	mu         sync.Mutex
	frames     []frame
	probes     []time.Time
	stop, done chan struct{}
}

func sniff(t *testing.T, v4, v6 netip.Addr) *wire {
	t.Helper()
	c := world.lab.Host("client")
	conn, err := c.ListenPacket("eth0", netlab.EtherTypeAll)
	if err != nil {
		t.Fatal(err)
	}
	w := &wire{conn: conn, v4: v4, v6: v6, self: c.MAC(), stop: make(chan struct{}), done: make(chan struct{})}
	go w.read()
	go w.probe(c.Addr4())
	t.Cleanup(w.close)
	return w
}

func (w *wire) close() {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	w.conn.Close()
	<-w.done
}

func (w *wire) read() {
	defer close(w.done)
	buf := make([]byte, 2048)
	for {
		n, _, err := w.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		now := time.Now()
		f := buf[:n]
		if len(f) < 14 || bytes.Equal(f[6:12], w.self) {
			continue
		}
		src := net.HardwareAddr(slices.Clone(f[6:12])).String()
		switch et := uint16(f[12])<<8 | uint16(f[13]); et {
		case 0x0806:
			p := f[14:]
			if len(p) < 28 {
				continue
			}
			op := uint16(p[6])<<8 | uint16(p[7])
			spa, _ := netip.AddrFromSlice(p[14:18])
			tpa, _ := netip.AddrFromSlice(p[24:28])
			switch {
			case op == 1 && spa == w.v4 && tpa == w.v4:
				w.add(frame{now, src, "garp"})
			case op == 2 && spa == w.v4:
				w.add(frame{now, src, "arp-reply"})
			}
		case 0x86dd:
			p := f[14:]
			if len(p) < 40+24 || p[6] != 58 || p[40] != 136 {
				continue
			}
			target, _ := netip.AddrFromSlice(p[48:64])
			if target == w.v6 {
				w.add(frame{now, src, "na"})
			}
		}
	}
}

func (w *wire) add(f frame) {
	w.mu.Lock()
	w.frames = append(w.frames, f)
	w.mu.Unlock()
}

// probe broadcasts an ARP request for the IPv4 address every 10 ms.
func (w *wire) probe(src netip.Addr) {
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	req := append(append([]byte{}, bcast...), w.self...)
	req = append(req, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	req = append(req, w.self...)
	req = append(req, src.AsSlice()...)
	req = append(req, 0, 0, 0, 0, 0, 0)
	req = append(req, w.v4.AsSlice()...)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
			w.mu.Lock()
			w.probes = append(w.probes, time.Now())
			w.mu.Unlock()
			_, _ = w.conn.WriteTo(req, &packet.Addr{HardwareAddr: bcast})
		}
	}
}

// first returns the first frame of kind from mac after t.
func (w *wire) first(kinds []string, mac string, after time.Time) (frame, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.frames {
		if f.at.After(after) && f.mac == mac && slices.Contains(kinds, f.kind) {
			return f, true
		}
	}
	return frame{}, false
}

// doubleAnswers counts probe intervals in which ARP replies came from more
// than one MAC: two nodes answering for one address at once.
func (w *wire) doubleAnswers() (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, example := 0, ""
	for i := 0; i+1 < len(w.probes); i++ {
		macs := map[string]bool{}
		for _, f := range w.frames {
			if f.kind == "arp-reply" && !f.at.Before(w.probes[i]) && f.at.Before(w.probes[i+1]) {
				macs[f.mac] = true
			}
		}
		if len(macs) > 1 {
			n++
			if len(example) < 400 {
				example += fmt.Sprintf("%v at %s; ", macs, w.probes[i].Format("15:04:05.000"))
			}
		}
	}
	return n, example
}

func waitFrame(t *testing.T, w *wire, kinds []string, mac string, after time.Time, timeout time.Duration) frame {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if f, ok := w.first(kinds, mac, after); ok {
			return f
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %v from %s within %s", kinds, mac, timeout)
	return frame{}
}

type failure struct {
	name    string
	inflict func(t *testing.T, owner string)
	heal    func(t *testing.T, owner string)
}

var failures = []failure{
	{"graceful", func(t *testing.T, owner string) { stopSpeaker(t, owner, syscall.SIGTERM) }, restartSpeaker},
	{"kill", func(t *testing.T, owner string) { stopSpeaker(t, owner, syscall.SIGKILL) }, restartSpeaker},
	{"link-cut", func(t *testing.T, owner string) {
		if err := world.lab.Host(owner).SetLink(false); err != nil {
			t.Fatal(err)
		}
	}, func(t *testing.T, owner string) {
		if err := world.lab.Host(owner).SetLink(true); err != nil {
			t.Fatal(err)
		}
	}},
}

func stopSpeaker(t *testing.T, node string, sig syscall.Signal) {
	p := world.speaker(node)
	if err := p.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
}

func restartSpeaker(t *testing.T, node string) {
	if _, err := world.startSpeaker(node); err != nil {
		t.Fatal(err)
	}
}

// TestFailoverTakesOverWithoutDoubleAnswersAndHandsBack fails the owner in
// each way — graceful stop, SIGKILL, a silent cut of its link — and checks
// from the client that another node takes over (GARP and NA), that no two
// nodes ever answer one ARP request, and that the returning owner takes the
// address back cleanly. With HERALD_MEASURE=1 it repeats each 10 times and
// prints the takeover times (make bench-failover).
func TestFailoverTakesOverWithoutDoubleAnswersAndHandsBack(t *testing.T) {
	dumpOnFailure(t)
	runs := 1
	if os.Getenv("HERALD_MEASURE") != "" {
		runs = 10
	}
	layer2Pool(t, "l2-measure", "192.0.2.228/30", "2001:db8:100::228/126")
	create(t, lbService("measure", corev1.IPFamilyPolicyRequireDualStack),
		endpoints("measure", discoveryv1.AddressTypeIPv4, "node1", "node2", "node3"),
		endpoints("measure", discoveryv1.AddressTypeIPv6, "node1", "node2", "node3"))
	ips := ingress(t, "measure", 2)
	v4, v6 := netip.MustParseAddr(ips[0]), netip.MustParseAddr(ips[1])
	w := sniff(t, v4, v6)
	for _, fl := range failures {
		var takeover, takeoverNA []time.Duration
		for range runs {
			owner := waitOwner(t, arpOwner, ips[0], anyNode)
			t.Logf("%s: owner %s at %s", fl.name, owner, time.Now().Format("15:04:05.000"))
			waitOwner(t, ndpOwner, ips[1], func(o string) bool { return o == owner })
			ownerMAC := world.lab.Host(owner).MAC().String()
			t0 := time.Now()
			fl.inflict(t, owner)
			// The successor is whoever sends the first GARP after t0.
			var next frame
			deadline := time.Now().Add(20 * time.Second)
			for next.mac == "" && time.Now().Before(deadline) {
				for _, n := range nodeNames {
					if m := world.lab.Host(n).MAC().String(); m != ownerMAC {
						if f, ok := w.first([]string{"garp"}, m, t0); ok && (next.mac == "" || f.at.Before(next.at)) {
							next = f
						}
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			if next.mac == "" {
				t.Fatalf("%s: no node took over from %s", fl.name, owner)
			}
			na := waitFrame(t, w, []string{"na"}, next.mac, t0, 10*time.Second)
			takeover = append(takeover, next.at.Sub(t0))
			takeoverNA = append(takeoverNA, na.at.Sub(t0))

			t1 := time.Now()
			t.Logf("%s: %s took over; healing at %s", fl.name, macOwner(next.mac), t1.Format("15:04:05.000"))
			fl.heal(t, owner)
			// Rendezvous hashing hands the address back: the owner announces it again.
			waitFrame(t, w, []string{"garp"}, ownerMAC, t1, 30*time.Second)
			waitOwner(t, ndpOwner, ips[1], func(o string) bool { return o == owner })
			waitOwner(t, arpOwner, ips[0], func(o string) bool { return o == owner })
		}
		t.Logf("%s: takeover (first GARP of the new owner) %s; first NA %s", fl.name, summary(takeover), summary(takeoverNA))
	}
	time.Sleep(200 * time.Millisecond)
	if n, ex := w.doubleAnswers(); n > 0 {
		t.Errorf("two nodes answered one ARP request in %d probe intervals, e.g. %s", n, ex)
	}
}

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 1 {
		return s[0].Round(100 * time.Microsecond).String()
	}
	p := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)].Round(100 * time.Microsecond) }
	return fmt.Sprintf("p50 %s p95 %s (n=%d, min %s max %s)", p(0.5), p(0.95), len(s), s[0].Round(100*time.Microsecond), s[len(s)-1].Round(100*time.Microsecond))
}
