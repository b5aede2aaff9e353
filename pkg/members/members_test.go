package members

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNewRejectsInvalidOptions(t *testing.T) {
	addr := netip.MustParseAddr("127.0.0.1")
	tests := map[string]Options{
		"empty name":      {BindAddr: addr},
		"name too long":   {NodeName: strings.Repeat("n", 254), BindAddr: addr},
		"not a node name": {NodeName: "Node_1", BindAddr: addr},
		"no address":      {NodeName: "a"},
		"port too large":  {NodeName: "a", BindAddr: addr, Port: 70000},
		"negative port":   {NodeName: "a", BindAddr: addr, Port: -1},
		"short key":       {NodeName: "a", BindAddr: addr, SecretKey: make([]byte, 15)},
		"key of 33 bytes": {NodeName: "a", BindAddr: addr, SecretKey: make([]byte, 33)},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			if m, err := New(o); err == nil {
				m.Close()
				t.Fatal("New accepted invalid options")
			}
		})
	}
}

func TestNewFailsWhenPortIsTaken(t *testing.T) {
	tn := newTestNet(t, 1)
	start(t, tn.opts(0, "a"))
	if m, err := New(tn.opts(0, "b")); err == nil {
		m.Close()
		t.Fatal("second member on the same address and port started")
	}
}

func TestMembersConvergeAfterSetPeers(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	reg := prometheus.NewPedanticRegistry()
	o := tn.opts(0, "a")
	o.Registerer = reg
	a := start(t, o)
	if got := a.Alive(); len(got) != 1 || !got["a"] {
		t.Fatalf("a new member sees %v, want only itself", sorted(got))
	}
	drain(a)
	b, c := start(t, tn.opts(1, "b")), start(t, tn.opts(2, "c"))
	for _, m := range []*Members{a, b, c} {
		m.SetPeers(tn.peers("a", "b", "c"))
	}
	for _, m := range []*Members{a, b, c} {
		waitAlive(t, m, "a", "b", "c")
	}
	select {
	case <-a.Changes():
	default:
		t.Error("Changes did not fire when members joined")
	}
	if got := testutil.ToFloat64(a.met.members); got != 3 {
		t.Errorf("herald_memberlist_members = %v, want 3", got)
	}
	if n, err := testutil.GatherAndCount(reg, "herald_memberlist_members", "herald_memberlist_events_total",
		"herald_memberlist_join_attempts_total", "herald_memberlist_health_score"); err != nil || n == 0 {
		t.Errorf("gathering metrics: %d series, %v", n, err)
	}
}

// A member given only some peers still learns the whole cluster by gossip,
// so Node objects that lag behind do not split the cluster.
func TestMembersLearnPeersTheyWereNotGiven(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	a, b, c := start(t, tn.opts(0, "a")), start(t, tn.opts(1, "b")), start(t, tn.opts(2, "c"))
	b.SetPeers(tn.peers("a"))
	c.SetPeers(map[string]netip.Addr{"a": tn.addrs[0]})
	for _, m := range []*Members{a, b, c} {
		waitAlive(t, m, "a", "b", "c")
	}
}

func TestChangesCoalesce(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	ms := cluster(t, tn, nil, "a", "b", "c")
	// Several changes happened; one notification is pending, not several.
	<-ms[0].Changes()
	select {
	case <-ms[0].Changes():
		t.Fatal("a second notification was pending")
	default:
	}
}

func TestGracefulLeaveDropsMemberOnPeers(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	ms := cluster(t, tn, nil, "a", "b", "c")
	if err := ms[2].Leave(time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	waitAlive(t, ms[0], "a", "b")
	waitAlive(t, ms[1], "a", "b")
	if ms[2].Alive()["c"] {
		t.Error("a member that left still counts itself alive")
	}
	if err := ms[2].Leave(time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	if err := ms[2].Close(); err != nil {
		t.Errorf("Close after Leave: %v", err)
	}
	if err := ms[2].Leave(time.Second); err == nil {
		t.Error("Leave after Close succeeded")
	}
}

// The leave notice alone removes the member from its peers' alive sets,
// before and independently of memberlist's gossip, and only that process:
// the member's memberlist is still running and it is not dropped for that.
func TestLeaveNoticeAloneDropsTheMember(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	ms := cluster(t, tn, nil, "a", "b", "c")
	ms[2].sendLeaveNotices()
	waitAlive(t, ms[0], "a", "b")
	waitAlive(t, ms[1], "a", "b")
	for _, m := range ms[:2] {
		if got := testutil.ToFloat64(m.met.events.WithLabelValues(eventNotice)); got != 1 {
			t.Errorf("%s counted %v notices, want 1", m.name, got)
		}
	}
	// The peers' background joins reach the still-running process, yet the
	// departed instance stays out.
	waitFor(t, converge, func() bool {
		return testutil.ToFloat64(ms[0].met.joins.WithLabelValues("success")) > 0
	}, func() string { return "a never re-joined c" })
	if ms[0].Alive()["c"] {
		t.Error("a re-admitted the process that sent a leave notice")
	}
}

func TestHardStopIsDetected(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	ms := cluster(t, tn, nil, "a", "b", "c")
	ms[2].Close() // no leave: to its peers this is a crash
	waitAlive(t, ms[0], "a", "b")
	waitAlive(t, ms[1], "a", "b")
}

func TestRestartWithSameNameRejoins(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, c *Members, peers []*Members)
	}{
		// Restarted before the peers noticed anything: memberlist still has
		// the old process alive and must take the new one's state.
		{"before peers notice", func(t *testing.T, c *Members, _ []*Members) { c.Close() }},
		{"after peers convicted it", func(t *testing.T, c *Members, peers []*Members) {
			c.Close()
			for _, p := range peers {
				waitAlive(t, p, "a", "b")
			}
		}},
		{"after a graceful leave", func(t *testing.T, c *Members, peers []*Members) {
			if err := c.Leave(time.Second); err != nil {
				t.Fatal(err)
			}
			c.Close()
			for _, p := range peers {
				waitAlive(t, p, "a", "b")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tn := newTestNet(t, 3)
			ms := cluster(t, tn, nil, "a", "b", "c")
			tc.stop(t, ms[2], ms[:2])
			c2 := start(t, tn.opts(2, "c"))
			c2.SetPeers(tn.peers("a", "b", "c"))
			for _, m := range []*Members{ms[0], ms[1], c2} {
				waitAlive(t, m, "a", "b", "c")
			}
			// The peers track the new process, so its notices (not its
			// predecessor's) are the ones that count.
			for _, p := range ms[:2] {
				waitFor(t, converge, func() bool {
					p.mu.Lock()
					defer p.mu.Unlock()
					return p.view.alive["c"] == c2.instance
				}, func() string { return p.name + " still tracks the old process of c" })
			}
		})
	}
}

func randomKey(t testing.TB, n int) []byte {
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEncryptedMembersConverge(t *testing.T) {
	t.Parallel()
	for _, n := range []int{16, 24, 32} {
		tn := newTestNet(t, 3)
		ms := cluster(t, tn, randomKey(t, n), "a", "b", "c")
		if err := ms[2].Leave(time.Second); err != nil {
			t.Fatal(err)
		}
		waitAlive(t, ms[0], "a", "b")
	}
}

// waitJoinFailures waits until m has failed to join at least n times.
func waitJoinFailures(t *testing.T, m *Members, n float64) {
	t.Helper()
	waitFor(t, converge, func() bool { return testutil.ToFloat64(m.met.joins.WithLabelValues("failure")) >= n },
		func() string { return m.name + " did not try to join" })
}

func TestMismatchedKeyCannotJoin(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	key := randomKey(t, 32)
	ms := cluster(t, tn, key, "a", "b")
	o := tn.opts(2, "c")
	o.SecretKey = randomKey(t, 32)
	c := start(t, o)
	c.SetPeers(tn.peers("a", "b", "c"))
	ms[0].SetPeers(tn.peers("a", "b", "c"))
	// Both sides keep trying, and keep failing.
	waitJoinFailures(t, c, 3)
	waitJoinFailures(t, ms[0], 3)
	for _, m := range ms {
		if m.Alive()["c"] {
			t.Errorf("%s admitted a member with another key", m.name)
		}
	}
	if got := c.Alive(); len(got) != 1 {
		t.Errorf("c sees %v, want only itself", sorted(got))
	}
}

// A member without the key is a source of unencrypted packets: the encrypted
// member neither lets it join nor answers its pings.
func TestUnencryptedPacketsAreDropped(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	key := randomKey(t, 16)
	ms := cluster(t, tn, key, "a", "b")
	plain := start(t, tn.opts(2, "p"))
	plain.SetPeers(tn.peers("a"))
	waitJoinFailures(t, plain, 2)
	if ms[0].Alive()["p"] {
		t.Error("the encrypted member admitted an unencrypted one")
	}
	aUDP := net.UDPAddrFromAddrPort(netip.AddrPortFrom(tn.addrs[0], uint16(tn.port)))
	if _, err := plain.ml.Ping("a", aUDP); err == nil {
		t.Error("an unencrypted ping was answered")
	}
	// Control: the same ping with the key is answered.
	if _, err := ms[1].ml.Ping("a", aUDP); err != nil {
		t.Errorf("an encrypted ping was not answered: %v", err)
	}
}

// Garbage from the network — random datagrams and streams, with and without
// memberlist's label and message-type framing — is dropped: the members
// neither crash nor lose each other, and still accept a new member.
func TestMalformedInputIsHarmless(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"plain", nil}, {"encrypted", randomKey(t, 32)}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tn := newTestNet(t, 3)
			ms := cluster(t, tn, tc.key, "a", "b")
			target := netip.AddrPortFrom(tn.addrs[0], uint16(tn.port))
			for _, p := range junk(t) {
				sendUDP(t, target, p)
				sendTCP(target, p)
			}
			o := tn.opts(2, "c")
			o.SecretKey = tc.key
			c := start(t, o)
			c.SetPeers(tn.peers("a"))
			for _, m := range []*Members{ms[0], ms[1], c} {
				waitAlive(t, m, "a", "b", "c")
			}
		})
	}
}

// junk returns packets shaped to reach progressively deeper into memberlist's
// decoding: raw bytes, a valid label header, then every message type byte
// (ping, alive, compound, compressed, encrypted, user...) with random or
// truncated bodies.
func junk(t *testing.T) [][]byte {
	var out [][]byte
	label := func(b []byte) []byte {
		l, err := memberlist.AddLabelHeaderToPacket(b, clusterLabel)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for i := range 64 {
		out = append(out, randomKey(t, 1+i*20))
	}
	out = append(out, label(nil), label([]byte{0}), []byte{244, 200}, []byte{244, 1, 'h'})
	for typ := range 32 {
		for _, n := range []int{0, 1, 4, 40, 400} {
			body := append([]byte{byte(typ)}, randomKey(t, n+1)[:n]...)
			out = append(out, body, label(body))
		}
		// A user message carrying a leave notice for an unknown member.
		out = append(out, label(append([]byte{byte(typ)}, encodeLeaveNotice("a", 1)...)))
	}
	// Nested compound header claiming many parts of huge length.
	out = append(out, label([]byte{7, 255, 255, 255, 255, 255}))
	return out
}

func sendUDP(t *testing.T, to netip.AddrPort, b []byte) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(b)
}

func sendTCP(to netip.AddrPort, b []byte) {
	c, err := net.DialTimeout("tcp", to.String(), time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	_, _ = c.Write(b)
	_, _ = c.Read(make([]byte, 64))
}

// A member whose network is cut sees its peers die and they see it die: the
// split brain the layer-2 glue has to live with. When the network returns,
// the background joins bring everyone back together — also after memberlist
// has forgotten the dead members entirely, when nothing else would.
func TestPartitionedMemberRejoinsAfterHeal(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold time.Duration // extra time cut after both sides convicted
	}{
		{"quickly", 0},
		{"after the dead were forgotten", gossipToTheDeadTime + 2*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.hold > 0 && testing.Short() {
				t.Skip("long partition skipped in -short")
			}
			t.Parallel()
			tn := newTestNet(t, 3)
			a, b := start(t, tn.opts(0, "a")), start(t, tn.opts(1, "b"))
			o, cut := withCut(tn.opts(2, "c"))
			c := start(t, o)
			for _, m := range []*Members{a, b, c} {
				m.SetPeers(tn.peers("a", "b", "c"))
			}
			for _, m := range []*Members{a, b, c} {
				waitAlive(t, m, "a", "b", "c")
			}
			cut(true)
			waitAlive(t, a, "a", "b")
			waitAlive(t, b, "a", "b")
			waitAlive(t, c, "c")
			time.Sleep(tc.hold)
			cut(false)
			for _, m := range []*Members{a, b, c} {
				waitAlive(t, m, "a", "b", "c")
			}
		})
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	tn := newTestNet(t, 1)
	m, err := New(tn.opts(0, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The port is free again for a restart.
	m2 := start(t, tn.opts(0, "a"))
	if !m2.Alive()["a"] {
		t.Error("restarted member does not count itself")
	}
}

func TestMetricsReregisterAfterClose(t *testing.T) {
	tn := newTestNet(t, 2)
	reg := prometheus.NewRegistry()
	o := tn.opts(0, "a")
	o.Registerer = reg
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	o2 := tn.opts(1, "b")
	o2.Registerer = reg
	if m2, err := New(o2); err == nil {
		m2.Close()
		t.Fatal("a second member registered the same metrics")
	}
	m.Close()
	start(t, o) // a restart in the same process registers again
	if n, err := testutil.GatherAndCount(reg, "herald_memberlist_members"); err != nil || n != 1 {
		t.Errorf("after restart: %d series, %v", n, err)
	}
}

// A speaker restarted on a new address (its node's InternalIP changed) is
// accepted as soon as the old process is convicted, without being taken for
// a name conflict.
func TestRestartAtNewAddressRejoins(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 4)
	ms := cluster(t, tn, nil, "a", "b", "c")
	ms[2].Close()
	for _, m := range ms[:2] {
		waitAlive(t, m, "a", "b")
	}
	peers := tn.peers("a", "b")
	peers["c"] = tn.addrs[3]
	c2 := start(t, tn.opts(3, "c"))
	for _, m := range []*Members{ms[0], ms[1], c2} {
		m.SetPeers(peers)
	}
	for _, m := range []*Members{ms[0], ms[1], c2} {
		waitAlive(t, m, "a", "b", "c")
	}
	for _, m := range ms[:2] {
		if n := testutil.ToFloat64(m.met.events.WithLabelValues(eventConflict)); n != 0 {
			t.Errorf("%s saw %v name conflicts", m.name, n)
		}
	}
}

// Two live processes claiming one name from different addresses (a
// misconfiguration): the one the cluster knows stays, the impostor is not
// admitted, and the conflict is counted.
func TestDuplicateNameIsNotAdmitted(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	ms := cluster(t, tn, nil, "a", "b")
	dup := start(t, tn.opts(2, "b"))
	dup.SetPeers(tn.peers("a"))
	waitFor(t, converge, func() bool {
		return testutil.ToFloat64(ms[0].met.events.WithLabelValues(eventConflict)) > 0
	}, func() string { return "a never saw the conflict" })
	// a still tracks the original b.
	ms[0].mu.Lock()
	inst := ms[0].view.alive["b"]
	ms[0].mu.Unlock()
	if inst != ms[1].instance {
		t.Errorf("a tracks instance %x of b, want the original %x", inst, ms[1].instance)
	}
}

// Members bind and join over IPv6 (nodes whose InternalIP is IPv6).
func TestIPv6Join(t *testing.T) {
	t.Parallel()
	lo := netip.IPv6Loopback()
	var ms []*Members
	for _, name := range []string{"a", "b"} {
		var m *Members
		for range 20 { // two free ports on ::1
			o := Options{NodeName: name, BindAddr: lo, Port: 20000 + mrand.IntN(12000), Logger: testLogger(), Insecure: true}
			var err error
			if m, err = New(o); err == nil {
				t.Cleanup(func() { m.Close() })
				break
			}
		}
		if m == nil {
			t.Skip("no free port on ::1")
		}
		ms = append(ms, m)
	}
	aPort := ms[0].ml.LocalNode().Port
	if err := ms[1].joinAddr(netip.AddrPortFrom(lo, aPort)); err != nil {
		t.Fatalf("join [::1]:%d: %v", aPort, err)
	}
	waitAlive(t, ms[0], "a", "b")
	waitAlive(t, ms[1], "a", "b")
}

// forgedAlive has the shape of memberlist's alive message (same field names,
// msgpack-encoded the same way), to forge one as an attacker or a corrupted
// datagram would.
type forgedAlive struct {
	Incarnation uint32
	Node        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Vsn         []uint8
}

func forge(t *testing.T, a forgedAlive) []byte {
	t.Helper()
	const aliveMsg = 4 // memberlist's message type number
	var buf bytes.Buffer
	buf.WriteByte(aliveMsg)
	h := codec.MsgpackHandle{}
	h.TimeNotBuiltin = true
	if err := codec.NewEncoder(&buf, &h).Encode(a); err != nil {
		t.Fatal(err)
	}
	b, err := memberlist.AddLabelHeaderToPacket(buf.Bytes(), clusterLabel)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// On an unencrypted cluster memberlist admits whatever alive message
// arrives. Herald's alive filter refuses the ones no speaker sends — which
// memberlist could never probe, and whose versions would break every later
// join — while a well-formed forgery (only a key prevents those) is probed,
// convicted and dropped.
func TestForgedAliveMessages(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 4)
	ms := cluster(t, tn, nil, "a", "b")
	target := netip.AddrPortFrom(tn.addrs[0], uint16(tn.port))
	nobody := tn.addrs[3].AsSlice() // no member listens there
	vsn := []uint8{memberlist.ProtocolVersionMin, memberlist.ProtocolVersionMax, memberlist.ProtocolVersion2Compatible, 0, 0, 0}
	meta := encodeMeta(99)
	// byFilter: refused by Herald's filter (counted); otherwise memberlist
	// itself refuses it, which it does for missing versions only because a
	// filter is installed.
	bad := map[string]struct {
		msg      forgedAlive
		byFilter bool
	}{
		"no Herald metadata":   {forgedAlive{Incarnation: 1, Node: "ghost-1", Addr: nobody, Port: uint16(tn.port), Vsn: vsn}, true},
		"truncated versions":   {forgedAlive{Incarnation: 1, Node: "ghost-2", Addr: nobody, Port: uint16(tn.port), Meta: meta, Vsn: []uint8{1}}, false},
		"not a node name":      {forgedAlive{Incarnation: 1, Node: "'(", Addr: nobody, Port: uint16(tn.port), Meta: meta, Vsn: vsn}, true},
		"no address":           {forgedAlive{Incarnation: 1, Node: "ghost-3", Port: uint16(tn.port), Meta: meta, Vsn: vsn}, true},
		"unspecified address":  {forgedAlive{Incarnation: 1, Node: "ghost-4", Addr: make([]byte, 4), Port: uint16(tn.port), Meta: meta, Vsn: vsn}, true},
		"garbage address size": {forgedAlive{Incarnation: 1, Node: "ghost-6", Addr: []byte{1, 2, 3}, Port: uint16(tn.port), Meta: meta, Vsn: vsn}, true},
	}
	filtered := 0.0
	for _, f := range bad {
		sendUDP(t, target, forge(t, f.msg))
		if f.byFilter {
			filtered++
		}
	}
	// Sent last on the same path, so once it is in, the others were handled.
	sendUDP(t, target, forge(t, forgedAlive{Incarnation: 1, Node: "ghost-ok", Addr: nobody, Port: uint16(tn.port), Meta: meta, Vsn: vsn}))
	waitFor(t, converge, func() bool { return ms[0].Alive()["ghost-ok"] },
		func() string { return "the well-formed forgery was not admitted" })
	if got := sorted(ms[0].Alive()); !slices.Equal(got, []string{"a", "b", "ghost-ok"}) {
		t.Errorf("a admitted %v", got)
	}
	if got := testutil.ToFloat64(ms[0].met.events.WithLabelValues(eventRejected)); got != filtered {
		t.Errorf("a's filter rejected %v alive messages, want %v", got, filtered)
	}
	waitAlive(t, ms[0], "a", "b") // the forgery is convicted: nothing answers its probes

	// Joins still work.
	c := start(t, tn.opts(2, "c"))
	c.SetPeers(tn.peers("a"))
	for _, m := range append(ms, c) {
		waitAlive(t, m, "a", "b", "c")
	}
}

// A member whose network is cut stops counting its peers as reachable at its
// first failed probes of them — well before it convicts them (Alive) — and
// counts them again once its probes get through.
func TestReachableDropsPeersBeforeConviction(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	a, b := start(t, tn.opts(0, "a")), start(t, tn.opts(1, "b"))
	o, cut := withCut(tn.opts(2, "c"))
	c := start(t, o)
	for _, m := range []*Members{a, b, c} {
		m.SetPeers(tn.peers("a", "b", "c"))
	}
	for _, m := range []*Members{a, b, c} {
		waitAlive(t, m, "a", "b", "c")
	}
	waitFor(t, converge, func() bool { return len(c.Reachable()) == 2 },
		func() string { return fmt.Sprintf("c reaches %v", sorted(c.Reachable())) })
	cut(true)
	// The window between the two is about a second wide (suspicion 1.35 s
	// without confirmations); polling every 10 ms cannot miss it.
	early := false
	waitFor(t, converge, func() bool {
		r, al := c.Reachable(), c.Alive()
		if len(r) == 0 && len(al) == 3 {
			early = true
		}
		return len(r) == 0 && len(al) == 1
	}, func() string { return fmt.Sprintf("c reaches %v, sees %v", sorted(c.Reachable()), sorted(c.Alive())) })
	if !early {
		t.Error("c counted its peers reachable until it convicted them")
	}
	cut(false)
	waitFor(t, converge, func() bool { return len(c.Reachable()) == 2 && len(a.Reachable()) == 2 },
		func() string {
			return fmt.Sprintf("c reaches %v, a reaches %v", sorted(c.Reachable()), sorted(a.Reachable()))
		})
}

func TestRejoinJoinsEveryPeerUntilLeave(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 3)
	ms := cluster(t, tn, nil, "a", "b", "c")
	c := ms[2]
	joins := func() float64 { return testutil.ToFloat64(c.met.joins.WithLabelValues("success")) }
	// The first joins may still be finishing; they would count below.
	waitFor(t, converge, func() bool {
		c.joiner.mu.Lock()
		defer c.joiner.mu.Unlock()
		for _, p := range c.joiner.peers {
			if p.inflight {
				return false
			}
		}
		return true
	}, func() string { return "c's joiner never went idle" })
	before := joins()
	c.Rejoin(converge)
	if got := joins() - before; got != 2 {
		t.Errorf("Rejoin made %v successful joins, want 2 (one per peer)", got)
	}
	if err := c.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	waitAlive(t, ms[0], "a", "b")
	before = joins()
	c.Rejoin(converge) // would announce c again
	if got := joins() - before; got != 0 {
		t.Errorf("Rejoin after Leave made %v joins", got)
	}
	c.Close()
	c.Rejoin(converge) // after Close: nothing, no panic
}
