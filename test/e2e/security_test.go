package e2e

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

// The memberlist wire as the speakers use it (hashicorp/memberlist v0.7.0
// and pkg/members/wire.go), rebuilt here the way an attacker would.
const (
	memberlistPort = 7946
	mlUserMsg      = 8  // memberlist's messageType for a delegate's message
	mlHasCrc       = 12 // a CRC32 header in front of the message
	mlHasLabel     = 244
	mlLabel        = "herald" // pkg/members' cluster label: a header, and the AEAD's additional data
)

// labeled puts memberlist's label header in front of a packet.
func labeled(packet []byte) []byte {
	return append([]byte{mlHasLabel, byte(len(mlLabel))}, append([]byte(mlLabel), packet...)...)
}

// leaveNotice is Herald's leave notice: version 1, kind 1, the process
// instance, the member name.
func leaveNotice(name string, instance uint64) []byte {
	b := []byte{1, 1}
	b = binary.BigEndian.AppendUint64(b, instance)
	return append(b, name...)
}

// sealMemberlist encrypts a packet the way memberlist does (encryption
// version 1: AES-GCM, 12-byte nonce after the version byte, the label as
// additional data) and labels it.
func sealMemberlist(t *testing.T, key, plain []byte) []byte {
	t.Helper()
	gcm := memberlistGCM(t, key)
	out := make([]byte, 1+gcm.NonceSize())
	out[0] = 1
	if _, err := rand.Read(out[1:]); err != nil {
		t.Fatal(err)
	}
	return labeled(gcm.Seal(out, out[1:], plain, []byte(mlLabel)))
}

func openMemberlist(t *testing.T, key, packet []byte) ([]byte, bool) {
	t.Helper()
	gcm := memberlistGCM(t, key)
	packet, ok := bytes.CutPrefix(packet, labeled(nil))
	if !ok || len(packet) < 1+gcm.NonceSize()+gcm.Overhead() || packet[0] != 1 {
		return nil, false
	}
	plain, err := gcm.Open(nil, packet[1:1+gcm.NonceSize()], packet[1+gcm.NonceSize():], []byte(mlLabel))
	return plain, err == nil
}

func memberlistGCM(t *testing.T, key []byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return gcm
}

// noticeIn returns the leave notice a decrypted memberlist packet carries.
func noticeIn(plain []byte) (name string, instance uint64, ok bool) {
	if len(plain) >= 5 && plain[0] == mlHasCrc {
		plain = plain[5:]
	}
	if len(plain) < 1+10+1 || plain[0] != mlUserMsg || plain[1] != 1 || plain[2] != 1 {
		return "", 0, false
	}
	return string(plain[11:]), binary.BigEndian.Uint64(plain[3:11]), true
}

// logLine is one JSON line of a speaker's log.
type logLine map[string]any

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

// speakerLog parses the node's speaker output from byte offset from on.
func speakerLog(node string, from int) []logLine {
	out := world.speaker(node).Output()
	if from > len(out) {
		from = len(out)
	}
	var lines []logLine
	for _, s := range strings.Split(out[from:], "\n") {
		var l logLine
		if json.Unmarshal([]byte(s), &l) == nil {
			lines = append(lines, l)
		}
	}
	return lines
}

func countLog(node string, from int, match func(logLine) bool) int {
	n := 0
	for _, l := range speakerLog(node, from) {
		if match(l) {
			n++
		}
	}
	return n
}

func msgHas(prefix string) func(logLine) bool {
	return func(l logLine) bool { return strings.HasPrefix(l.str("msg"), prefix) }
}

// memberDropped matches a speaker dropping peer from its alive set.
func memberDropped(peer string) func(logLine) bool {
	return func(l logLine) bool {
		return (l.str("msg") == "member left" || l.str("msg") == "member gone") && l.str("peer") == peer
	}
}

// instanceOf reads the process instance the node's current speaker
// gossips (logged when its memberlist starts).
func instanceOf(t *testing.T, node string) uint64 {
	t.Helper()
	var inst uint64
	eventually(t, 20*time.Second, func() error {
		for _, l := range speakerLog(node, 0) {
			if l.str("msg") == "memberlist started" {
				if l["encrypted"] != true {
					return fmt.Errorf("%s's memberlist is not encrypted: %v", node, l)
				}
				v, err := strconv.ParseUint(l.str("instance"), 16, 64)
				if err != nil {
					return err
				}
				inst = v
			}
		}
		if inst == 0 {
			return fmt.Errorf("no memberlist instance logged")
		}
		return nil
	}, "memberlist instance of %s", node)
	return inst
}

// sendFromClient sends each datagram from the client namespace to every
// node's memberlist port.
func sendFromClient(t *testing.T, datagrams ...[]byte) {
	t.Helper()
	err := world.lab.Host("client").Do(func() error {
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		for _, n := range nodeNames {
			to := netip.AddrPortFrom(node(n).Addr4(), memberlistPort)
			for _, d := range datagrams {
				if _, err := c.WriteToUDPAddrPort(d, to); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// captureMemberlist records the UDP payloads from src to node's memberlist
// port, seen on node's eth0, until stop is called.
func captureMemberlist(t *testing.T, node string, src netip.Addr) (stop func() [][]byte) {
	t.Helper()
	conn, err := world.lab.Host(node).ListenPacket("eth0", 0x0800)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			f := buf[:n]
			if len(f) < 14+20 || f[12] != 0x08 || f[13] != 0 {
				continue
			}
			ip := f[14:]
			ihl := int(ip[0]&0x0f) * 4
			if ip[9] != 17 || len(ip) < ihl+8 || netip.AddrFrom4([4]byte(ip[12:16])) != src ||
				binary.BigEndian.Uint16(ip[ihl+2:]) != memberlistPort {
				continue
			}
			mu.Lock()
			got = append(got, bytes.Clone(ip[ihl+8:]))
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() [][]byte {
		once.Do(func() { conn.Close(); <-done })
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	t.Cleanup(func() { stop() })
	return stop
}

// onlyOwnerAnswers checks from the client that owner alone answers for
// the address, now and over everything w saw.
func onlyOwnerAnswers(t *testing.T, w *wire, ip, owner string) {
	t.Helper()
	if o, err := arpOwner(ip); err != nil || o != owner {
		t.Errorf("%s answered by %q (%v), want %s", ip, o, err, owner)
	}
	if n, ex := w.doubleAnswers(); n > 0 {
		t.Errorf("%d ARP requests for %s answered by two nodes: %s", n, ip, ex)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.frames {
		if f.kind == "arp-reply" && macOwner(f.mac) != owner {
			t.Errorf("%s answered by %s at %s, want only %s", ip, macOwner(f.mac), f.at.Format("15:04:05.000"), owner)
			return
		}
	}
}

// Leave notices forged from the client namespace — plaintext, encrypted with
// a wrong key, or a real notice of the owner's previous process replayed
// after it restarted — make no speaker drop the owner: its address stays
// answered by the owner alone. The speakers gossip with the memberlist
// Secret's key, as installed.
func TestForgedLeaveNoticesFromTheClientMoveNoAddress(t *testing.T) {
	dumpOnFailure(t)
	layer2Pool(t, "l2-forged", "192.0.2.252/30", "2001:db8:100::250/126")
	create(t, lbService("forged", corev1.IPFamilyPolicyRequireDualStack),
		endpoints("forged", discoveryv1.AddressTypeIPv4, nodeNames...), endpoints("forged", discoveryv1.AddressTypeIPv6, nodeNames...))
	ips := ingress(t, "forged", 2)
	v4, v6 := netip.MustParseAddr(ips[0]), netip.MustParseAddr(ips[1])
	owner := waitOwner(t, arpOwner, ips[0], anyNode)
	var others []string
	for _, n := range nodeNames {
		if n != owner {
			others = append(others, n)
		}
	}

	// A plaintext notice and one sealed with another key, both naming the
	// owner's live process exactly: every speaker drops them before
	// decoding (memberlist logs the failed decryption at debug level).
	mark := map[string]int{}
	for _, n := range nodeNames {
		mark[n] = len(world.speaker(n).Output())
	}
	w := sniff(t, v4, v6)
	plain := append([]byte{mlUserMsg}, leaveNotice(owner, instanceOf(t, owner))...)
	// Labeled like the speakers' packets, so only the missing key stops it.
	wrongKey := make([]byte, 32)
	if _, err := rand.Read(wrongKey); err != nil {
		t.Fatal(err)
	}
	sendFromClient(t, labeled(plain), sealMemberlist(t, wrongKey, plain))
	forgeriesHandled(t, mark, msgHas("Decrypt packet failed"), 2, owner, others)
	onlyOwnerAnswers(t, w, ips[0], owner)
	w.close()

	// A real notice, captured on the wire when the owner's speaker left, and
	// replayed from the client after it restarted: it names the process that
	// left, so it does not match the one alive now.
	oldInstance := instanceOf(t, owner)
	stopCapture := captureMemberlist(t, others[0], node(owner).Addr4())
	stopSpeaker(t, owner, syscall.SIGTERM)
	captured := stopCapture()
	for _, n := range nodeNames {
		mark[n] = len(world.speaker(n).Output())
	}
	restartSpeaker(t, owner)
	for _, n := range others {
		eventually(t, 30*time.Second, func() error {
			for _, l := range speakerLog(n, mark[n]) {
				if l.str("msg") == "member alive" && l.str("peer") == owner {
					return nil
				}
			}
			return fmt.Errorf("not yet")
		}, "%s sees the restarted %s", n, owner)
	}
	waitOwner(t, arpOwner, ips[0], func(o string) bool { return o == owner })
	if instanceOf(t, owner) == oldInstance {
		t.Fatalf("the restarted speaker kept instance %016x", oldInstance)
	}
	var replay [][]byte
	for _, p := range captured {
		plain, ok := openMemberlist(t, world.memberKey, p)
		if !ok {
			continue
		}
		if name, inst, ok := noticeIn(plain); ok && name == owner && inst == oldInstance {
			replay = append(replay, p)
		}
	}
	if len(replay) == 0 {
		t.Fatalf("none of the %d datagrams %s sent %s while leaving is its leave notice", len(captured), owner, others[0])
	}
	for _, n := range nodeNames {
		mark[n] = len(world.speaker(n).Output())
	}
	w = sniff(t, v4, v6)
	sendFromClient(t, replay...)
	forgeriesHandled(t, mark, msgHas("leave notice ignored"), len(replay), owner, others)
	onlyOwnerAnswers(t, w, ips[0], owner)
}

// forgeriesHandled waits until every speaker logged handled (the proof
// that it received and dismissed a forgery) want times since mark, then
// checks that none of others dropped owner meanwhile.
func forgeriesHandled(t *testing.T, mark map[string]int, handled func(logLine) bool, want int, owner string, others []string) {
	t.Helper()
	for _, n := range nodeNames {
		eventually(t, 10*time.Second, func() error {
			if c := countLog(n, mark[n], handled); c < want {
				return fmt.Errorf("%d of %d forged datagrams handled", c, want)
			}
			return nil
		}, "%s handles the forged datagrams", n)
	}
	for _, n := range others {
		if c := countLog(n, mark[n], memberDropped(owner)); c > 0 {
			t.Errorf("%s dropped %s after a forged notice", n, owner)
		}
	}
}

// A node no BGPPeer selects has nothing listening on TCP 179, so another
// BGP daemon can run there; a peer selecting it opens the listener on
// --bgp-listen-address only, and removing the node from the peer's
// selector closes it again.
func TestNodeWithoutBGPPeersListensOnNothing(t *testing.T) {
	dumpOnFailure(t)
	const n = "node3"
	var peers v1beta1.BGPPeerList
	if err := world.env.Client.List(context.Background(), &peers); err != nil {
		t.Fatal(err)
	}
	if len(peers.Items) > 0 {
		t.Fatalf("%d BGPPeers left by other tests", len(peers.Items))
	}
	listen := node(n).Addr4()
	stopSpeaker(t, n, syscall.SIGTERM)
	if _, err := world.startSpeaker(n, "--bgp-listen-address", listen.String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		world.speaker(n).Stop()
		restartSpeaker(t, n)
	})
	listeners := func() []string {
		out, err := node(n).Output("ss", "-Hltn", "sport = :179")
		if err != nil {
			t.Fatalf("ss: %v", err)
		}
		var local []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) >= 4 {
				local = append(local, f[3])
			}
		}
		return local
	}
	started, stopped := msgHas("BGP server started"), msgHas("BGP server stopped")

	// A peer for node1 only: node3 applies a configuration with a peer and
	// still opens nothing.
	eventually(t, 20*time.Second, func() error {
		if countLog(n, 0, msgHas("starting speaker")) == 0 {
			return fmt.Errorf("not started")
		}
		return nil
	}, "%s speaker start", n)
	peer := bgpPeer("listen", nodeASN, netip.MustParseAddr("192.0.2.99"), routerASN, func(s *v1beta1.BGPPeerSpec) {
		s.NodeSelectors = onNodes("node1")
	})
	create(t, peer)
	eventually(t, 20*time.Second, func() error {
		if countLog("node1", 0, msgHas("BGP peer added")) == 0 {
			return fmt.Errorf("node1 has no peer")
		}
		return nil
	}, "node1 adds the peer")
	if l := listeners(); len(l) > 0 {
		t.Errorf("%s listens on %v with no peer selecting it", n, l)
	}

	selected := len(world.speaker(n).Output())
	if c := countLog(n, 0, started); c > 0 {
		t.Errorf("%s started its BGP server with no peer selecting it", n)
	}
	updateObj(t, peer, func(p *v1beta1.BGPPeer) { p.Spec.NodeSelectors = onNodes("node1", n) })
	want := []string{netip.AddrPortFrom(listen, 179).String()}
	eventually(t, 20*time.Second, func() error {
		if l := listeners(); !slices.Equal(l, want) {
			return fmt.Errorf("listening on %v, want %v", l, want)
		}
		return nil
	}, "%s listens once a peer selects it", n)
	// The log line follows the listener by a moment.
	eventually(t, 10*time.Second, func() error {
		if c := countLog(n, selected, started); c != 1 {
			return fmt.Errorf("%s started its BGP server %d times since the peer selected it, want once", n, c)
		}
		return nil
	}, "%s logs its BGP server start", n)

	updateObj(t, peer, func(p *v1beta1.BGPPeer) {
		p.Spec.NodeSelectors = []metav1.LabelSelector{onNodes("node1")[0]}
	})
	eventually(t, 20*time.Second, func() error {
		if countLog(n, 0, stopped) == 0 {
			return fmt.Errorf("BGP server still running")
		}
		return nil
	}, "%s stops its BGP server", n)
	if l := listeners(); len(l) > 0 {
		t.Errorf("%s still listens on %v after the peer stopped selecting it", n, l)
	}
}
