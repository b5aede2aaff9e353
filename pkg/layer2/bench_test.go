package layer2

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"

	"github.com/herald-lb/herald/test/netlab"
)

// The benchmarks measure the wire path end to end in the lab: the announcer
// runs in its node-namespace process (as in the lab tests), the parent times
// from the moment it hands over a Set to what a socket in the client's
// namespace sees. The pipe between the two adds a few tens of microseconds.
// Run them with:
//
//	go test -run '^$' -bench . -benchtime 200x ./pkg/layer2/

func BenchmarkLayer2(b *testing.B) {
	lab := newLab(b, "node1", "client")
	node, client := lab.Host("node1"), lab.Host("client")
	sp := startSpeaker(b, node, "1,1s")
	// The framework runs each sub-benchmark more than once: the pools keep
	// counting across runs, so every Set really brings a new address.
	next := 0
	fresh := func(pool func(int) netip.Addr) netip.Addr { next++; return pool(next) }
	v4Pool := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(20 + i%80)}) }

	// Warm: the interface already serves another address, so Set only adds
	// the pair and announces it. Cold: the new address is the interface's
	// only one, so every Set also opens (and the previous one closes) the
	// interface's sockets.
	for _, warm := range []bool{true, false} {
		var keep []string
		name := "cold"
		if warm {
			keep, name = []string{pair(labVIP4, "eth0"), pair(labVIP6, "eth0")}, "warm"
		}
		b.Run("set-to-first-garp/"+name, func(b *testing.B) {
			sniff := listen(b, client, etherTypeARP)
			benchSet(b, sp, keep, func() netip.Addr { return fresh(v4Pool) }, func(addr netip.Addr) {
				waitFrame(b, sniff, func(f []byte) bool { return isGratuitousARP(f, node.MAC(), addr) })
			})
		})
		b.Run("set-to-first-unsolicited-na/"+name, func(b *testing.B) {
			sniff := listen(b, client, etherTypeIPv6)
			benchSet(b, sp, keep, func() netip.Addr { return fresh(v6Pool) }, func(addr netip.Addr) {
				waitFrame(b, sniff, func(f []byte) bool { return isUnsolicitedNA(f, node.MAC(), addr) })
			})
		})
	}
	b.Run("control-round-trip", func(b *testing.B) {
		// What the pipe to the announcer process costs: an unchanged Set.
		sp.set(pair(labVIP4, "eth0"))
		var lat []time.Duration
		for range b.N {
			start := time.Now()
			sp.set(pair(labVIP4, "eth0"))
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
	b.Run("set-to-first-ndp-answer", func(b *testing.B) {
		// Set (warm), and once it returned solicit the new address every 2 ms until
		// the answer comes. This includes the snooping bridge learning the
		// new group from the node's MLD report: until then it drops
		// multicast NS for the group.
		raw := listen(b, client, etherTypeIPv6)
		var lat []time.Duration
		for range b.N {
			addr := fresh(v6Pool)
			start := time.Now()
			sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"), pair(addr, "eth0"))
			ns := multicastNSFrom(b, client, addr)
			for !solicit(b, raw, ns, node.MAC(), addr, 2*time.Millisecond) {
				if time.Since(start) > 2*time.Second {
					b.Fatalf("no NDP answer for %s", addr)
				}
			}
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
	b.Run("ns-to-na", func(b *testing.B) {
		raw := listen(b, client, etherTypeIPv6)
		sp.set(pair(labVIP6, "eth0"))
		ns := multicastNSFrom(b, client, labVIP6)
		for !solicit(b, raw, ns, node.MAC(), labVIP6, 10*time.Millisecond) {
			// until the bridge has learned the group
		}
		var lat []time.Duration
		for range b.N {
			start := time.Now()
			if !solicit(b, raw, ns, node.MAC(), labVIP6, time.Second) {
				b.Fatal("no NA")
			}
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
	b.Run("arp-request-to-reply", func(b *testing.B) {
		raw := listen(b, client, etherTypeARP)
		sp.set(pair(labVIP4, "eth0"))
		req := arpRequest(b, client.MAC(), client.Addr4(), labVIP4)
		var lat []time.Duration
		for range b.N {
			start := time.Now()
			send(b, raw, req)
			waitFrame(b, raw, func(f []byte) bool {
				var p arp.Packet
				return len(f) >= ethHeaderLen+arpLen && p.UnmarshalBinary(f[ethHeaderLen:]) == nil &&
					p.Operation == arp.OperationReply && p.SenderIP == labVIP4
			})
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
	for _, n := range []int{100, 1000} {
		// Not timed per iteration by the framework: the helper times Set in
		// its own process and reports; b.N is irrelevant.
		b.Run(fmt.Sprintf("set-in-process/%d-addresses", n), func(b *testing.B) {
			sp.set()
			lines, err := sp.do("bench " + strconv.Itoa(n))
			if err != nil {
				b.Fatal(err)
			}
			for _, l := range lines {
				f := strings.Fields(l)
				v, _ := strconv.ParseFloat(f[2], 64)
				switch f[1] {
				case "takeover-ns":
					b.ReportMetric(v/1e6, "ms/takeover-set")
				case "unchanged-ns":
					b.ReportMetric(v/1e3, "µs/unchanged-set")
				case "unchanged-allocs":
					b.ReportMetric(v, "allocs/unchanged-set")
				}
			}
			b.ReportMetric(0, "ns/op")
			sp.set()
		})
	}
}

func v6Pool(i int) netip.Addr {
	a := netip.MustParseAddr("2001:db8:100::1:0").As16()
	binary.BigEndian.PutUint16(a[14:], uint16(i%4096))
	return netip.AddrFrom16(a)
}

// benchSet times, per iteration, from handing Set a new address (dropping the
// previous one, keeping keep) to seen(addr) returning.
func benchSet(b *testing.B, sp *speaker, keep []string, fresh func() netip.Addr, seen func(netip.Addr)) {
	sp.set(keep...)
	var lat []time.Duration
	for range b.N {
		addr := fresh()
		start := time.Now()
		cmd := strings.Join(append([]string{"set", pair(addr, "eth0")}, keep...), " ")
		if _, err := io.WriteString(sp.in, cmd+"\n"); err != nil {
			b.Fatal(err)
		}
		seen(addr)
		lat = append(lat, time.Since(start))
		if l := <-sp.lines; l != "ok" {
			b.Fatalf("set %s: %s", addr, l)
		}
	}
	report(b, lat)
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "µs-p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "µs-p99")
}

func listen(b *testing.B, h *netlab.Host, et uint16) *packet.Conn {
	c, err := h.ListenPacket("eth0", et)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func send(b *testing.B, c *packet.Conn, frame []byte) {
	if _, err := c.WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[0:6])}); err != nil {
		b.Fatal(err)
	}
}

func waitFrame(b *testing.B, c *packet.Conn, match func([]byte) bool) {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, maxFrame)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			b.Fatalf("waiting for a frame: %v", err)
		}
		if match(buf[:n]) {
			return
		}
	}
}

func multicastNSFrom(tb testing.TB, c *netlab.Host, target netip.Addr) []byte {
	f := multicastNS(target)
	f.srcMAC, f.src, f.sourceLLA = c.MAC(), c.Addr6(), c.MAC()
	return f.bytes(tb)
}

// solicit sends ns and reports whether the solicited NA from mac for target
// arrived within wait.
func solicit(b *testing.B, c *packet.Conn, ns []byte, mac net.HardwareAddr, target netip.Addr, wait time.Duration) bool {
	send(b, c, ns)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, maxFrame)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		f := buf[:n]
		if n < ethHeaderLen+ipv6HeaderLen+naLen || string(f[6:12]) != string(mac) || f[20] != icmpv6Proto || f[54] != typeNA {
			continue
		}
		if m, err := ndp.ParseMessage(f[ethHeaderLen+ipv6HeaderLen:]); err == nil {
			if na, ok := m.(*ndp.NeighborAdvertisement); ok && na.Solicited && na.TargetAddress == target {
				return true
			}
		}
	}
}
