package layer2

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"

	"github.com/herald-lb/herald/test/netlab"
)

// Addresses the lab tests announce, outside every host's own.
var (
	labVIP4 = netip.MustParseAddr("192.0.2.10")
	labVIP6 = netip.MustParseAddr("2001:db8:100::10")
)

// arping asks for addr's MAC like any IPv4 client would (broadcast ARP) and
// returns the MAC that answered.
func arping(c *netlab.Host, addr netip.Addr) (string, error) {
	out, err := c.Output("arping", "-c", "1", "-w", "2", "-i", "eth0", "-r", addr.String())
	return strings.TrimSpace(out), err
}

// ndisc asks for addr's MAC with ndisc6, a strict client: it rejects an NA
// whose IPv6 source is not the target.
func ndisc(c *netlab.Host, addr netip.Addr) (string, error) {
	out, err := c.Output("ndisc6", "-1", "-q", "-r", "2", "-w", "500", addr.String(), "eth0")
	return strings.TrimSpace(out), err
}

func wantAnswer(t *testing.T, c *netlab.Host, addr netip.Addr, mac string) {
	t.Helper()
	ask := arping
	if addr.Is6() {
		ask = ndisc
	}
	got, err := ask(c, addr)
	if err != nil {
		t.Fatalf("no answer for %s: %v", addr, err)
	}
	if !strings.EqualFold(got, mac) {
		t.Fatalf("%s is at %q, want %s", addr, got, mac)
	}
}

func wantNoAnswer(t *testing.T, c *netlab.Host, addr netip.Addr) {
	t.Helper()
	var out string
	var err error
	if addr.Is6() {
		out, err = c.Output("ndisc6", "-1", "-q", "-r", "1", "-w", "500", addr.String(), "eth0")
	} else {
		out, err = c.Output("arping", "-c", "1", "-w", "0.5", "-i", "eth0", "-r", addr.String())
	}
	if err == nil {
		t.Fatalf("%s still answered by %q", addr, strings.TrimSpace(out))
	}
}

type neighbour struct {
	Dst    string   `json:"dst"`
	LLAddr string   `json:"lladdr"`
	State  []string `json:"state"`
}

// neigh is the client kernel's neighbour entry for addr (zero when none).
func neigh(t *testing.T, c *netlab.Host, addr netip.Addr) neighbour {
	t.Helper()
	out, err := c.Output("ip", "-j", "neigh", "show", addr.String(), "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	var ns []neighbour
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		t.Fatalf("ip -j neigh: %v: %s", err, out)
	}
	if len(ns) == 0 {
		return neighbour{}
	}
	return ns[0]
}

func pair(addr netip.Addr, ifaces ...string) string {
	return fmt.Sprintf("%s=%s", addr, strings.Join(ifaces, ","))
}

func TestOwnerAnswersARPAndNDPWithItsMACUntilDropped(t *testing.T) {
	t.Parallel()
	lab := newLab(t, "node1", "node2", "client")
	node, other, client := lab.Host("node1"), lab.Host("node2"), lab.Host("client")
	sp := startSpeaker(t, node, "3,200ms")

	// node2 runs nothing; what it hears shows the switch delivers multicast
	// solicitations only to the member that joined the group.
	sniff, err := other.ListenPacket("eth0", netlab.EtherTypeAll)
	if err != nil {
		t.Fatal(err)
	}
	defer sniff.Close()

	sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))
	wantAnswer(t, client, labVIP4, node.Spec.MAC)
	wantAnswer(t, client, labVIP6, node.Spec.MAC)
	maddr, err := node.Output("ip", "-6", "maddr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(maddr, "ff02::1:ff00:10") {
		t.Errorf("solicited-node group of %s not joined: %v\n%s", labVIP6, err, maddr)
	}
	if mdb, _ := exec.Command("bridge", "-n", lab.LAN, "mdb", "show").CombinedOutput(); !strings.Contains(string(mdb), "port node1 grp ff02::1:ff00:10") {
		t.Errorf("the switch did not learn node1's membership:\n%s", mdb)
	}
	if n := countNS(sniff, labVIP6); n != 0 {
		t.Errorf("node2 heard %d solicitations for %s: the bridge floods, the test cannot tell whether joins work", n, labVIP6)
	}
	if addrs, _ := node.Output("ip", "addr", "show", "dev", "eth0"); strings.Contains(addrs, labVIP4.String()+"/") || strings.Contains(addrs, labVIP6.String()+"/") {
		t.Errorf("announced address assigned to the interface:\n%s", addrs)
	}
	if n := sp.metric(`herald_layer2_owned_addresses{`); n != 2 {
		t.Errorf("owned addresses = %g, want 2", n)
	}

	sp.set()
	wantNoAnswer(t, client, labVIP4)
	wantNoAnswer(t, client, labVIP6)
	if maddr, _ := node.Output("ip", "-6", "maddr", "show", "dev", "eth0"); strings.Contains(maddr, "ff02::1:ff00:10") {
		t.Errorf("solicited-node group still joined after release:\n%s", maddr)
	}
	if n := sp.metric(`herald_layer2_requests_answered_total{`); n < 2 {
		t.Errorf("requests answered = %g, want ≥ 2", n)
	}
	if n := sp.metric(`herald_layer2_owned_addresses{`); n != 0 {
		t.Errorf("owned addresses = %g after release, want 0", n)
	}

	// Close stops everything, like a release.
	sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))
	wantAnswer(t, client, labVIP4, node.Spec.MAC)
	if _, err := sp.do("close"); err != nil {
		t.Fatal(err)
	}
	wantNoAnswer(t, client, labVIP4)
	if maddr, _ := node.Output("ip", "-6", "maddr", "show", "dev", "eth0"); strings.Contains(maddr, "ff02::1:ff00:10") {
		t.Errorf("solicited-node group still joined after Close:\n%s", maddr)
	}
}

// countNS drains what sniff has queued and counts the neighbor solicitations
// for target in it.
func countNS(sniff *packet.Conn, target netip.Addr) int {
	_ = sniff.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, maxFrame)
	n := 0
	for {
		l, _, err := sniff.ReadFrom(buf)
		if err != nil {
			return n
		}
		f := buf[:l]
		if l >= ethHeaderLen+ipv6HeaderLen+nsLen && binary.BigEndian.Uint16(f[12:14]) == etherTypeIPv6 && f[20] == icmpv6Proto && f[54] == typeNS {
			if m, err := ndp.ParseMessage(f[ethHeaderLen+ipv6HeaderLen:]); err == nil && m.(*ndp.NeighborSolicitation).TargetAddress == target {
				n++
			}
		}
	}
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTakeoverMovesClientNeighbourEntriesToTheNewOwner(t *testing.T) {
	t.Parallel()
	lab := newLab(t, "node1", "node2", "client")
	n1, n2, client := lab.Host("node1"), lab.Host("node2"), lab.Host("client")
	sp1 := startSpeaker(t, n1, "3,200ms")
	sp2 := startSpeaker(t, n2, "3,200ms")

	sp1.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))
	// The client's kernel resolves both addresses; the echo requests go
	// unanswered (nobody has the address assigned), which is not the point.
	_, _ = client.Output("ping", "-c", "1", "-W", "0.2", labVIP4.String())
	_, _ = client.Output("ping", "-6", "-c", "1", "-W", "0.2", labVIP6.String())
	for _, vip := range []netip.Addr{labVIP4, labVIP6} {
		if e := neigh(t, client, vip); e.LLAddr != n1.Spec.MAC {
			t.Fatalf("before takeover: client entry for %s = %+v, want %s", vip, e, n1.Spec.MAC)
		}
	}

	sp1.proc.Kill() // the old owner dies without a word
	start := time.Now()
	sp2.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))
	for _, vip := range []netip.Addr{labVIP4, labVIP6} {
		var e neighbour
		if !waitFor(3*time.Second, func() bool { e = neigh(t, client, vip); return e.LLAddr == n2.Spec.MAC }) {
			t.Fatalf("after takeover: client entry for %s = %+v, want %s", vip, e, n2.Spec.MAC)
		}
		t.Logf("client entry for %s moved to node2 within %v: %+v", vip, time.Since(start).Round(time.Millisecond), e)
	}
	wantAnswer(t, client, labVIP4, n2.Spec.MAC)
	wantAnswer(t, client, labVIP6, n2.Spec.MAC)
}

// TestNUDProbesKeepTheClientEntryReachable shortens the client's neighbour
// timers so its kernel re-confirms the entries every second or so with
// unicast probes sent straight to the owner's MAC (ARP and NS): those must be
// answered too, or the entry fails and traffic stalls.
func TestNUDProbesKeepTheClientEntryReachable(t *testing.T) {
	t.Parallel()
	lab := newLab(t, "node1", "client")
	node, client := lab.Host("node1"), lab.Host("client")
	for _, f := range []string{"ipv4", "ipv6"} {
		if err := client.Run("sysctl", "-qw",
			"net."+f+".neigh.eth0.base_reachable_time_ms=500",
			"net."+f+".neigh.eth0.delay_first_probe_time=1",
			"net."+f+".neigh.eth0.retrans_time_ms=200"); err != nil {
			t.Fatal(err)
		}
	}
	sp := startSpeaker(t, node, "1,1s")
	sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))

	sniff, err := client.ListenPacket("eth0", netlab.EtherTypeAll)
	if err != nil {
		t.Fatal(err)
	}
	defer sniff.Close()
	probes := map[string]int{}
	sniffed := make(chan struct{})
	go func() {
		defer close(sniffed)
		buf := make([]byte, maxFrame)
		for {
			n, _, err := sniff.ReadFrom(buf)
			if err != nil {
				return
			}
			f := buf[:n]
			if n < ethHeaderLen || f[0]&1 != 0 || string(f[0:6]) != string(node.MAC()) || string(f[6:12]) != string(client.MAC()) {
				continue // only the client's unicast frames to the owner
			}
			switch {
			case f[12] == 0x08 && f[13] == 0x06 && n >= 22 && f[21] == 1:
				probes["ARP"]++
			case f[12] == 0x86 && f[13] == 0xdd && n > 54 && f[20] == icmpv6Proto && f[54] == typeNS:
				probes["NS"]++
			}
		}
	}()

	pings := []*netlab.Proc{}
	for _, args := range [][]string{{"-i", "0.2", "-c", "25", labVIP4.String()}, {"-6", "-i", "0.2", "-c", "25", labVIP6.String()}} {
		p, err := client.Start("ping", args...)
		if err != nil {
			t.Fatal(err)
		}
		pings = append(pings, p)
	}
	seen := map[netip.Addr][]string{}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, vip := range []netip.Addr{labVIP4, labVIP6} {
			e := neigh(t, client, vip)
			state := strings.Join(e.State, ",")
			if s := seen[vip]; len(s) == 0 || s[len(s)-1] != state {
				seen[vip] = append(s, state)
			}
			if (state == "FAILED" || state == "INCOMPLETE") && len(seen[vip]) > 1 {
				t.Fatalf("client entry for %s went %s; states so far %v", vip, state, seen[vip])
			}
			if e.LLAddr != "" && e.LLAddr != node.Spec.MAC {
				t.Fatalf("client entry for %s points at %s", vip, e.LLAddr)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range pings {
		p.Stop()
	}
	_ = sniff.Close()
	<-sniffed
	t.Logf("client entry states: %v; unicast probes to the owner: %v", seen, probes)
	if probes["ARP"] == 0 || probes["NS"] == 0 {
		t.Fatalf("the client sent no unicast NUD probe (%v): the test proves nothing", probes)
	}
	for _, vip := range []netip.Addr{labVIP4, labVIP6} {
		if e := neigh(t, client, vip); e.LLAddr != node.Spec.MAC {
			t.Errorf("client entry for %s at the end: %+v", vip, e)
		}
	}
}

func TestDuplicateAddressProbesAreAnswered(t *testing.T) {
	t.Parallel()
	lab := newLab(t, "node1", "client")
	node, client := lab.Host("node1"), lab.Host("client")
	sp := startSpeaker(t, node, "1,1s")
	sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))

	// IPv6: the client tries to configure the address for itself; its DAD
	// probe (from ::) is answered, so its kernel marks the address dadfailed.
	if err := client.Run("sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=1"); err != nil {
		t.Fatal(err)
	}
	if err := client.Run("ip", "addr", "add", labVIP6.String()+"/64", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	type addrInfo struct {
		Local     string `json:"local"`
		DADFailed bool   `json:"dadfailed"`
	}
	var infos []struct {
		AddrInfo []addrInfo `json:"addr_info"`
	}
	failed := waitFor(5*time.Second, func() bool {
		out, err := client.Output("ip", "-j", "-6", "addr", "show", "dev", "eth0")
		if err != nil || json.Unmarshal([]byte(out), &infos) != nil {
			return false
		}
		for _, i := range infos {
			for _, a := range i.AddrInfo {
				if a.Local == labVIP6.String() && a.DADFailed {
					return true
				}
			}
		}
		return false
	})
	if !failed {
		t.Fatalf("client's DAD for %s did not fail: %+v", labVIP6, infos)
	}

	// IPv4: an address-conflict probe (RFC 5227, sender 0.0.0.0) gets the owner's MAC.
	out, err := client.Output("arping", "-0", "-c", "1", "-w", "2", "-i", "eth0", "-r", labVIP4.String())
	if err != nil || !strings.EqualFold(strings.TrimSpace(out), node.Spec.MAC) {
		t.Fatalf("conflict probe for %s: %q, %v; want %s", labVIP4, out, err, node.Spec.MAC)
	}
}

// TestRecoversAfterLinkDownUpAndInterfaceRecreation takes the node's link
// away three ways; each time it returns, the owner must announce again by
// itself (a burst the client sees) and answer ARP and NDP.
func TestRecoversAfterLinkDownUpAndInterfaceRecreation(t *testing.T) {
	t.Parallel()
	lab := newLab(t, "node1", "client")
	node, client := lab.Host("node1"), lab.Host("client")
	sp := startSpeaker(t, node, "3,200ms")
	sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))
	wantAnswer(t, client, labVIP4, node.Spec.MAC)
	wantAnswer(t, client, labVIP6, node.Spec.MAC)

	ip := func(ns string, args ...string) error {
		out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip -n %s %s: %w: %s", ns, strings.Join(args, " "), err, out)
		}
		return nil
	}
	steps := []struct {
		name     string
		down, up func() error
	}{
		{"carrier lost (switch port down)", func() error { return node.SetLink(false) }, func() error { return node.SetLink(true) }},
		{"administratively down", func() error { return ip(node.NS, "link", "set", "eth0", "down") }, func() error { return ip(node.NS, "link", "set", "eth0", "up") }},
		{"deleted and recreated", func() error { return ip(node.NS, "link", "del", "eth0") }, func() error {
			for _, args := range [][]string{
				{node.NS, "link", "add", "eth0", "address", node.Spec.MAC, "type", "veth", "peer", "name", node.Spec.Name, "netns", lab.LAN},
				{lab.LAN, "link", "set", node.Spec.Name, "master", "br0", "up"},
				{node.NS, "addr", "add", node.Spec.V4.String(), "dev", "eth0"},
				{node.NS, "addr", "add", node.Spec.V6.String(), "dev", "eth0", "nodad"},
				{node.NS, "link", "set", "eth0", "up"},
			} {
				if err := ip(args[0], args[1:]...); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, st := range steps {
		before := sp.metric(`herald_layer2_announcements_sent_total{family="ipv4",kind="link_up"`) +
			sp.metric(`herald_layer2_announcements_sent_total{family="ipv6",kind="link_up"`)
		if err := st.down(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		time.Sleep(300 * time.Millisecond)
		sniff, err := client.ListenPacket("eth0", netlab.EtherTypeAll)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := st.up(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		garp, na := waitAnnouncements(t, sniff, node.MAC(), 3*time.Second)
		_ = sniff.Close()
		if !garp || !na {
			t.Fatalf("%s: after the link returned the client saw gratuitous ARP %v, unsolicited NA %v", st.name, garp, na)
		}
		t.Logf("%s: announcements seen %v after link-up", st.name, time.Since(start).Round(time.Millisecond))
		wantAnswer(t, client, labVIP4, node.Spec.MAC)
		wantAnswer(t, client, labVIP6, node.Spec.MAC)
		after := sp.metric(`herald_layer2_announcements_sent_total{family="ipv4",kind="link_up"`) +
			sp.metric(`herald_layer2_announcements_sent_total{family="ipv6",kind="link_up"`)
		if after <= before {
			t.Errorf("%s: link_up announcements %g → %g", st.name, before, after)
		}
	}
}

// waitAnnouncements reads sniff until it has seen both a gratuitous ARP for
// labVIP4 and an unsolicited NA for labVIP6 from mac, or timeout.
func waitAnnouncements(t *testing.T, sniff *packet.Conn, mac net.HardwareAddr, timeout time.Duration) (garp, na bool) {
	t.Helper()
	_ = sniff.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, maxFrame)
	for !garp || !na {
		n, _, err := sniff.ReadFrom(buf)
		if err != nil {
			return garp, na
		}
		garp = garp || isGratuitousARP(buf[:n], mac, labVIP4)
		na = na || isUnsolicitedNA(buf[:n], mac, labVIP6)
	}
	return garp, na
}

func isGratuitousARP(f []byte, mac net.HardwareAddr, addr netip.Addr) bool {
	var p arp.Packet
	return len(f) >= ethHeaderLen+arpLen && binary.BigEndian.Uint16(f[12:14]) == etherTypeARP &&
		p.UnmarshalBinary(f[ethHeaderLen:]) == nil && p.Operation == arp.OperationRequest &&
		bytes.Equal(p.SenderHardwareAddr, mac) && p.SenderIP == addr && p.TargetIP == addr
}

func isUnsolicitedNA(f []byte, mac net.HardwareAddr, addr netip.Addr) bool {
	if len(f) < ethHeaderLen+ipv6HeaderLen+naLen || binary.BigEndian.Uint16(f[12:14]) != etherTypeIPv6 ||
		!bytes.Equal(f[6:12], mac) || f[20] != icmpv6Proto || f[54] != typeNA {
		return false
	}
	m, err := ndp.ParseMessage(f[ethHeaderLen+ipv6HeaderLen:])
	na, ok := m.(*ndp.NeighborAdvertisement)
	return err == nil && ok && !na.Solicited && na.Override && na.TargetAddress == addr
}

// TestMalformedFramesAreCountedAndDropped blasts broken and random ARP and
// NDP frames at the owner from the client: it must count them, drop them, and
// keep answering.
func TestMalformedFramesAreCountedAndDropped(t *testing.T) {
	t.Parallel()
	lab := newLab(t, "node1", "client")
	node, client := lab.Host("node1"), lab.Host("client")
	sp := startSpeaker(t, node, "1,1s")
	sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))
	raw, err := client.ListenPacket("eth0", netlab.EtherTypeAll)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	cmac, nmac := client.MAC(), node.MAC()
	goodNS := nsFrame{srcMAC: cmac, dstMAC: nmac, src: client.Addr6(), dst: labVIP6, target: labVIP6, sourceLLA: cmac}
	var frames [][]byte
	// Hand-made breakage first: each passes the kernel filter and is invalid.
	arpReq := arpRequest(t, cmac, client.Addr4(), labVIP4)
	frames = append(frames,
		arpReq[:30], // truncated
		func() []byte { b := bytes.Clone(arpReq); b[ethHeaderLen+4] = 16; return b }(),   // hardware address length 16
		func() []byte { b := bytes.Clone(arpReq); b[ethHeaderLen+1] = 6; return b }(),    // hardware type 6
		func() []byte { b := goodNS.bytes(t); b[len(b)-1] ^= 0xff; return b }(),          // bad checksum
		func() []byte { f := goodNS; f.hopLimit = 64; return f.bytes(t) }(),              // hop limit 64
		func() []byte { b := goodNS.bytes(t); b[len(b)-7] = 0; return fixChecksum(b) }(), // zero-length option
		func() []byte { // NS cut short inside a consistent IPv6 header
			b := goodNS.bytes(t)[:70]
			binary.BigEndian.PutUint16(b[ethHeaderLen+4:], 70-ethHeaderLen-ipv6HeaderLen)
			return b
		}(),
	)
	// Then random bodies behind headers that pass the filter.
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, 22+rnd.IntN(80))
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		putEthernet(b, broadcastMAC, cmac, etherTypeARP)
		b[ethHeaderLen+6], b[ethHeaderLen+7] = 0, 1 // a request
		frames = append(frames, b)
		v := make([]byte, 55+rnd.IntN(120))
		for i := range v {
			v[i] = byte(rnd.Uint32())
		}
		putEthernet(v, nmac, cmac, etherTypeIPv6)
		v[ethHeaderLen], v[ethHeaderLen+6], v[ethHeaderLen+7], v[54] = 0x60, icmpv6Proto, 255, typeNS
		// A consistent payload length: the lab's bridge, like a snooping
		// switch, drops IPv6 frames whose header does not add up.
		binary.BigEndian.PutUint16(v[ethHeaderLen+4:], uint16(len(v)-ethHeaderLen-ipv6HeaderLen))
		frames = append(frames, v)
	}
	for _, f := range frames {
		if _, err := raw.WriteTo(f, &packet.Addr{HardwareAddr: net.HardwareAddr(f[0:6])}); err != nil {
			t.Fatalf("send: %v", err)
		}
	}

	wantAnswer(t, client, labVIP4, node.Spec.MAC)
	wantAnswer(t, client, labVIP6, node.Spec.MAC)
	m4 := sp.metric(`herald_layer2_malformed_frames_total{family="ipv4"`)
	m6 := sp.metric(`herald_layer2_malformed_frames_total{family="ipv6"`)
	t.Logf("malformed frames counted: ipv4 %g, ipv6 %g (of %d sent)", m4, m6, len(frames))
	if m4 < 3 || m6 < 4 {
		t.Errorf("malformed frames counted: ipv4 %g, ipv6 %g; want at least the hand-made ones (3 and 4)", m4, m6)
	}
}

// TestBackfillingIPv6LeavesIPv4AnsweringUninterrupted: a Service gains its
// IPv6 address while clients are resolving the IPv4 one.
func TestBackfillingIPv6LeavesIPv4AnsweringUninterrupted(t *testing.T) {
	t.Parallel()
	lab := newLab(t, "node1", "client")
	node, client := lab.Host("node1"), lab.Host("client")
	sp := startSpeaker(t, node, "3,100ms")
	sp.set(pair(labVIP4, "eth0"))
	wantAnswer(t, client, labVIP4, node.Spec.MAC)
	time.Sleep(300 * time.Millisecond) // let the takeover burst finish

	pinger, err := client.Start("arping", "-c", "40", "-W", "0.05", "-w", "10", "-i", "eth0", labVIP4.String())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))
	wantAnswer(t, client, labVIP6, node.Spec.MAC)
	sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0")) // unchanged: nothing happens
	<-pinger.Done()
	out := pinger.Output()
	if pinger.Err() != nil || !strings.Contains(out, "40 packets transmitted, 40 packets received") {
		t.Fatalf("IPv4 answering was interrupted: %v\n%s", pinger.Err(), out)
	}
	if n := sp.metric(`herald_layer2_announcements_sent_total{family="ipv4",kind="takeover"`); n != 3 {
		t.Errorf("IPv4 takeover announcements = %g, want 3: the unchanged address was re-announced", n)
	}
	if n := sp.metric(`herald_layer2_announcements_sent_total{family="ipv6",kind="takeover"`); n != 3 {
		t.Errorf("IPv6 takeover announcements = %g, want 3", n)
	}
}

func TestPairsOnAMissingInterfaceAreServedOnceItAppears(t *testing.T) {
	t.Parallel()
	lab := newLab(t, "node1", "client")
	node, client := lab.Host("node1"), lab.Host("client")
	sp := startSpeaker(t, node, "3,200ms")
	if _, err := sp.do("set " + pair(labVIP4, "eth1") + " " + pair(labVIP6, "eth1")); err == nil || !strings.Contains(err.Error(), "eth1") {
		t.Fatalf("Set on a missing interface: %v, want an error naming it", err)
	}

	// A second port of node1 on the LAN appears, e.g. a VLAN or bond created late.
	const mac = "02:00:00:00:00:21"
	sniff, err := client.ListenPacket("eth0", netlab.EtherTypeAll)
	if err != nil {
		t.Fatal(err)
	}
	defer sniff.Close()
	for _, args := range [][]string{
		{node.NS, "link", "add", "eth1", "address", mac, "type", "veth", "peer", "name", "node1b", "netns", lab.LAN},
		{lab.LAN, "link", "set", "node1b", "master", "br0", "up"},
		{node.NS, "link", "set", "eth1", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", args[0]}, args[1:]...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	if garp, na := waitAnnouncements(t, sniff, net.HardwareAddr{2, 0, 0, 0, 0, 0x21}, 3*time.Second); !garp || !na {
		t.Fatalf("when eth1 appeared the client saw gratuitous ARP %v, unsolicited NA %v", garp, na)
	}
	wantAnswer(t, client, labVIP4, mac)
	wantAnswer(t, client, labVIP6, mac)
}

func TestRefreshReannouncesPeriodically(t *testing.T) {
	t.Parallel()
	lab := newLab(t, "node1", "client")
	node, client := lab.Host("node1"), lab.Host("client")
	sp := startSpeaker(t, node, "1,1s", refreshEnv+"=200ms")
	sp.set(pair(labVIP4, "eth0"), pair(labVIP6, "eth0"))
	time.Sleep(100 * time.Millisecond) // past the takeover announcement
	sniff, err := client.ListenPacket("eth0", netlab.EtherTypeAll)
	if err != nil {
		t.Fatal(err)
	}
	defer sniff.Close()
	if garp, na := waitAnnouncements(t, sniff, node.MAC(), time.Second); !garp || !na {
		t.Fatalf("no refresh within 1 s: gratuitous ARP %v, unsolicited NA %v", garp, na)
	}
	time.Sleep(500 * time.Millisecond)
	for _, f := range []string{"ipv4", "ipv6"} {
		if n := sp.metric(`herald_layer2_announcements_sent_total{family="` + f + `",kind="refresh"`); n < 2 {
			t.Errorf("%s refresh announcements = %g after 0.6 s at 200 ms, want ≥ 2", f, n)
		}
	}
}

// ownerLab is node1 owning two addresses on eth0 (answering both, checked)
// and a client with a raw socket for hand-made frames.
type ownerLab struct {
	node, client *netlab.Host
	sp           *speaker
	raw          *packet.Conn
}

func newOwnerLab(t *testing.T, vip4, vip6 netip.Addr) *ownerLab {
	t.Helper()
	lab := newLab(t, "node1", "client")
	o := &ownerLab{node: lab.Host("node1"), client: lab.Host("client")}
	o.sp = startSpeaker(t, o.node, "1,1s")
	o.sp.set(pair(vip4, "eth0"), pair(vip6, "eth0"))
	wantAnswer(t, o.client, vip4, o.node.Spec.MAC)
	wantAnswer(t, o.client, vip6, o.node.Spec.MAC)
	raw, err := o.client.ListenPacket("eth0", netlab.EtherTypeAll)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	o.raw = raw
	return o
}

// send puts whole frames on the client's wire.
func (o *ownerLab) send(t *testing.T, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := o.raw.WriteTo(f, &packet.Addr{HardwareAddr: net.HardwareAddr(f[0:6])}); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

// TestVLANTaggedQuestionsAreNotAnsweredOnTheParent: clients on VLAN 100 of
// the same wire ask for addresses the node answers on its untagged parent
// interface only. An answer would leave untagged, on the wrong VLAN, so
// there must be none, while untagged clients are still answered.
//
// Each step sends its questions as raw frames, then one untagged question
// per family as a barrier: the responder reads its socket in order, so once
// the barrier is answered, every earlier answer would have been counted.
func TestVLANTaggedQuestionsAreNotAnsweredOnTheParent(t *testing.T) {
	t.Parallel()
	vip4, vip6 := netip.MustParseAddr("192.0.2.40"), netip.MustParseAddr("2001:db8:100::40")
	o := newOwnerLab(t, vip4, vip6)
	node, client, sp := o.node, o.client, o.sp
	cmac := client.MAC()
	arpQ := func(dst net.HardwareAddr) []byte {
		b := arpRequest(t, cmac, client.Addr4(), vip4)
		copy(b[0:6], dst)
		return b
	}
	nsQ := func(dst net.HardwareAddr) []byte {
		if dst == nil {
			return multicastNSFrom(t, client, vip6)
		}
		return nsFrame{srcMAC: cmac, dstMAC: dst, src: client.Addr6(), dst: vip6, target: vip6, sourceLLA: cmac}.bytes(t)
	}
	// ask sends frames, then the barrier, and returns how many of the
	// frames were answered per family; it fails the test when the frames
	// did not all reach the node's eth0.
	ask := func(name string, frames ...[]byte) (answered4, answered6 float64) {
		t.Helper()
		sniff, err := node.ListenPacket("eth0", netlab.EtherTypeAll)
		if err != nil {
			t.Fatal(err)
		}
		defer sniff.Close()
		before4 := sp.metric(`herald_layer2_requests_answered_total{family="ipv4"`)
		before6 := sp.metric(`herald_layer2_requests_answered_total{family="ipv6"`)
		o.send(t, append(frames, arpQ(broadcastMAC), nsQ(nil))...)
		var a4, a6 float64
		if !waitFor(3*time.Second, func() bool {
			a4 = sp.metric(`herald_layer2_requests_answered_total{family="ipv4"`) - before4
			a6 = sp.metric(`herald_layer2_requests_answered_total{family="ipv6"`) - before6
			return a4 >= 1 && a6 >= 1
		}) {
			t.Fatalf("%s: the untagged barrier questions were not answered (ipv4 %g, ipv6 %g)", name, a4, a6)
		}
		if arps, nss := countQuestions(sniff, cmac, vip4, vip6); arps+nss != len(frames)+2 {
			t.Fatalf("%s: the node's eth0 saw %d ARP requests and %d NS of the %d sent: the test proves nothing", name, arps, nss, len(frames)+2)
		}
		return a4 - 1, a6 - 1
	}

	// Tagged on the wire, as a switch trunk delivers another VLAN's
	// broadcasts: the kernel strips the tag and, with no VLAN 100
	// interface on the node, marks the frames as for another host.
	a4, a6 := ask("tagged",
		vlanTagged(arpQ(broadcastMAC), etherType8021Q, 100),
		vlanTagged(nsQ(nil), etherType8021Q, 100),
		vlanTagged(vlanTagged(arpQ(broadcastMAC), etherType8021Q, 100), etherType8021AD, 20),
		vlanTagged(vlanTagged(nsQ(nil), etherType8021Q, 100), etherType8021AD, 20),
	)
	if a4 != 0 || a6 != 0 {
		t.Errorf("802.1Q/802.1ad-tagged questions answered on the untagged parent: ipv4 %g, ipv6 %g", a4, a6)
	}
	// arping itself, tagging its requests.
	if out, err := client.Output("arping", "-V", "100", "-c", "2", "-w", "0.6", "-i", "eth0", "-r", vip4.String()); err == nil {
		t.Errorf("arping on VLAN 100 answered by %q", strings.TrimSpace(out))
	}

	// Priority-tagged (VID 0) frames belong to the untagged network.
	if a4, a6 := ask("priority-tagged", vlanTagged(arpQ(broadcastMAC), etherType8021Q, 0), vlanTagged(nsQ(nil), etherType8021Q, 0)); a4 != 1 || a6 != 1 {
		t.Errorf("priority-tagged questions answered: ipv4 %g, ipv6 %g; want 1 and 1", a4, a6)
	}

	// Frames the node's kernel hands to another interface stacked on eth0
	// are seen by eth0's packet sockets too, as VLAN 100 frames are when
	// the node has an eth0.100. A macvlan takes that same path in the
	// kernel (this lab's kernel may lack 802.1Q interfaces): questions sent
	// to its MAC must not be answered on eth0.
	mvMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x41}
	for _, args := range [][]string{
		{"link", "add", "mv0", "link", "eth0", "address", mvMAC.String(), "type", "macvlan", "mode", "bridge"},
		{"link", "set", "mv0", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", node.NS}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	if a4, a6 := ask("for another interface", arpQ(mvMAC), nsQ(mvMAC)); a4 != 0 || a6 != 0 {
		t.Errorf("questions the kernel received on mv0 answered on eth0: ipv4 %g, ipv6 %g", a4, a6)
	}

	t.Run("VLAN subinterfaces", func(t *testing.T) {
		testVLANSubinterfaces(t, sp, node, client, vip4, vip6)
	})
}

// testVLANSubinterfaces asks from a real eth0.100 on the client, first with
// no VLAN 100 on the node, then with an eth0.100 there that Herald does not
// serve. It needs the kernel's 802.1Q support and skips without it.
func testVLANSubinterfaces(t *testing.T, sp *speaker, node, client *netlab.Host, vip4, vip6 netip.Addr) {
	const vlanLink = "eth0.100"
	ip := func(h *netlab.Host, args ...string) {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"-n", h.NS}, args...)...).CombinedOutput()
		if err != nil && strings.Contains(string(out), "Unknown device type") {
			t.Skipf("no 802.1Q interfaces in this kernel: %s", strings.TrimSpace(string(out)))
		}
		if err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip(client, "link", "add", "link", "eth0", "name", vlanLink, "type", "vlan", "id", "100")
	ip(client, "addr", "add", "203.0.113.100/24", "dev", vlanLink)
	ip(client, "addr", "add", "2001:db8:203::100/64", "dev", vlanLink, "nodad")
	ip(client, "link", "set", vlanLink, "up")
	// The client's own kernel resolves the addresses on the VLAN too.
	ip(client, "route", "add", vip4.String()+"/32", "dev", vlanLink)
	ip(client, "-6", "route", "add", vip6.String()+"/128", "dev", vlanLink)
	for _, nodeVLAN := range []bool{false, true} {
		if nodeVLAN {
			ip(node, "link", "add", "link", "eth0", "name", vlanLink, "type", "vlan", "id", "100")
			ip(node, "link", "set", vlanLink, "up")
		}
		before := sp.metric(`herald_layer2_requests_answered_total{`)
		wantNoAnswerOn(t, client, vlanLink, vip4)
		wantNoAnswerOn(t, client, vlanLink, vip6)
		_, _ = client.Output("ping", "-c", "1", "-W", "0.5", vip4.String())
		_, _ = client.Output("ping", "-6", "-c", "1", "-W", "0.5", vip6.String())
		for _, vip := range []netip.Addr{vip4, vip6} {
			out, err := client.Output("ip", "-j", "neigh", "show", vip.String(), "dev", vlanLink)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "lladdr") {
				t.Errorf("node VLAN %v: the client's %s learned a MAC for %s: %s", nodeVLAN, vlanLink, vip, out)
			}
		}
		if n := sp.metric(`herald_layer2_requests_answered_total{`); n != before {
			t.Errorf("node VLAN %v: requests answered went %g → %g while only VLAN 100 asked", nodeVLAN, before, n)
		}
		wantAnswer(t, client, vip4, node.Spec.MAC)
		wantAnswer(t, client, vip6, node.Spec.MAC)
	}
}

func wantNoAnswerOn(t *testing.T, c *netlab.Host, ifname string, addr netip.Addr) {
	t.Helper()
	var out string
	var err error
	if addr.Is6() {
		out, err = c.Output("ndisc6", "-1", "-q", "-r", "2", "-w", "300", addr.String(), ifname)
	} else {
		out, err = c.Output("arping", "-c", "2", "-w", "0.6", "-i", ifname, "-r", addr.String())
	}
	if err == nil {
		t.Fatalf("%s answered on %s by %q", addr, ifname, strings.TrimSpace(out))
	}
}

// countQuestions drains sniff and counts the ARP requests for vip4 and the
// neighbor solicitations for vip6 sent by mac, tagged or not (the kernel
// strips the outer tag of what it hands a packet socket).
func countQuestions(sniff *packet.Conn, mac net.HardwareAddr, vip4, vip6 netip.Addr) (arps, nss int) {
	_ = sniff.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, maxFrame)
	for {
		n, _, err := sniff.ReadFrom(buf)
		if err != nil {
			return arps, nss
		}
		f := buf[:n]
		if n < ethHeaderLen || !bytes.Equal(f[6:12], mac) {
			continue
		}
		for len(f) >= ethHeaderLen+4 && isVLANTag(binary.BigEndian.Uint16(f[12:14])) {
			f = append(f[:12:12], f[16:]...)
		}
		n = len(f)
		var p arp.Packet
		switch binary.BigEndian.Uint16(f[12:14]) {
		case etherTypeARP:
			if p.UnmarshalBinary(f[ethHeaderLen:]) == nil && p.Operation == arp.OperationRequest && p.TargetIP == vip4 {
				arps++
			}
		case etherTypeIPv6:
			if n >= ethHeaderLen+ipv6HeaderLen+nsLen && f[20] == icmpv6Proto && f[54] == typeNS {
				if m, err := ndp.ParseMessage(f[ethHeaderLen+ipv6HeaderLen:]); err == nil && m.(*ndp.NeighborSolicitation).TargetAddress == vip6 {
					nss++
				}
			}
		}
	}
}

// TestAddressConflictsAreCountedLoggedOnceAndNotFought: the client claims
// the owned addresses for itself (arping's unsolicited ARP, request and
// reply, and unsolicited NAs), and a forged frame claims the IPv4 one for a
// third MAC. Every claim is counted, each address and foreign MAC is logged
// once, the node sends nothing in response and keeps answering; once the
// address was released and owned again, a claim is logged anew.
func TestAddressConflictsAreCountedLoggedOnceAndNotFought(t *testing.T) {
	t.Parallel()
	vip4, vip6 := netip.MustParseAddr("192.0.2.50"), netip.MustParseAddr("2001:db8:100::50")
	forged := net.HardwareAddr{0x02, 0, 0, 0, 0x01, 0x99}
	o := newOwnerLab(t, vip4, vip6)
	node, client, sp := o.node, o.client, o.sp
	const (
		conflicts4 = `herald_layer2_address_conflicts_total{family="ipv4",interface="eth0"`
		conflicts6 = `herald_layer2_address_conflicts_total{family="ipv6",interface="eth0"`
	)
	logLine := func(addr netip.Addr, mac string) string {
		return fmt.Sprintf(`msg="another host claims an owned address" address=%s interface=eth0 mac=%s`, addr, mac)
	}
	// waitConflicts waits until both counters reach want4 and want6 and the
	// log has as many of each line as wanted, then checks nothing more
	// came.
	waitConflicts := func(want4, want6 float64, lines map[string]int) {
		t.Helper()
		var n4, n6 float64
		ok := waitFor(3*time.Second, func() bool {
			n4, n6 = sp.metric(conflicts4), sp.metric(conflicts6)
			out := sp.proc.Output()
			for l, n := range lines {
				if strings.Count(out, l) < n {
					return false
				}
			}
			return n4 >= want4 && n6 >= want6
		})
		if !ok || n4 != want4 || n6 != want6 {
			t.Fatalf("conflicts counted: ipv4 %g, ipv6 %g; want %g and %g", n4, n6, want4, want6)
		}
		out := sp.proc.Output()
		for l, n := range lines {
			if got := strings.Count(out, l); got != n {
				t.Errorf("log line %q appears %d times, want %d", l, got, n)
			}
		}
	}

	sniff, err := client.ListenPacket("eth0", netlab.EtherTypeAll)
	if err != nil {
		t.Fatal(err)
	}
	defer sniff.Close()
	announced := sp.metric(`herald_layer2_announcements_sent_total{`)
	for _, args := range [][]string{
		{"-U", "-S", vip4.String(), "-c", "2", "-w", "1", "-i", "eth0", vip4.String()},         // gratuitous requests
		{"-U", "-P", "-S", vip4.String(), "-c", "1", "-w", "0.5", "-i", "eth0", vip4.String()}, // a gratuitous reply
	} {
		// (This arping's -U alone keeps the interface's address as sender.)
		// It waits for replies that never come: its exit status says nothing.
		_, _ = client.Output("arping", args...)
	}
	na := naFrame(t, client.MAC(), allNodesMAC, vip6, allNodes, false, client.MAC())
	o.send(t, na, na, arpRequest(t, forged, vip4, vip4))
	lines := map[string]int{
		logLine(vip4, client.Spec.MAC): 1,
		logLine(vip4, forged.String()): 1,
		logLine(vip6, client.Spec.MAC): 1,
	}
	waitConflicts(4, 2, lines)

	// The node kept answering and sent nothing back.
	wantAnswer(t, client, vip4, node.Spec.MAC)
	wantAnswer(t, client, vip6, node.Spec.MAC)
	if n := sp.metric(`herald_layer2_announcements_sent_total{`); n != announced {
		t.Errorf("announcements went %g → %g in answer to the conflicts", announced, n)
	}
	_ = sniff.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, maxFrame)
	for {
		n, _, err := sniff.ReadFrom(buf)
		if err != nil {
			break
		}
		if isGratuitousARP(buf[:n], node.MAC(), vip4) || isUnsolicitedNA(buf[:n], node.MAC(), vip6) {
			t.Fatalf("the node announced in answer to a conflict: %x", buf[:n])
		}
	}

	// Released and owned again: the same claim is news again.
	sp.set(pair(vip6, "eth0"))
	sp.set(pair(vip4, "eth0"), pair(vip6, "eth0"))
	o.send(t, arpRequest(t, forged, vip4, vip4), na)
	lines[logLine(vip4, forged.String())] = 2
	waitConflicts(5, 3, lines)
}
