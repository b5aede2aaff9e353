package layer2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

var (
	ourMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	clientMAC = net.HardwareAddr{0x02, 0, 0, 0, 1, 0}
	vip4      = netip.MustParseAddr("192.0.2.10")
	vip6      = netip.MustParseAddr("2001:db8:100::10")
	client4   = netip.MustParseAddr("192.0.2.100")
	client6   = netip.MustParseAddr("2001:db8:100::100")
	owned     = addrSet{vip4: {}, vip6: {}}
)

// arpRequest builds an ARP request with the arp package, independently of the
// code under test.
func arpRequest(t testing.TB, senderMAC net.HardwareAddr, sender, target netip.Addr) []byte {
	p, err := arp.NewPacket(arp.OperationRequest, senderMAC, sender, net.HardwareAddr{0, 0, 0, 0, 0, 0}, target)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return append(ethernet(broadcastMAC, senderMAC, etherTypeARP), b...)
}

func ethernet(dst, src net.HardwareAddr, et uint16) []byte {
	b := make([]byte, ethHeaderLen)
	putEthernet(b, dst, src, et)
	return b
}

// nsFrame builds a Neighbor Solicitation, checksummed by x/net/icmp (through
// ndp.MarshalMessageChecksum) rather than by our own code.
type nsFrame struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.Addr
	target         netip.Addr
	sourceLLA      net.HardwareAddr
	hopLimit       byte
	options        []ndp.Option
}

func (f nsFrame) bytes(t testing.TB) []byte {
	ns := &ndp.NeighborSolicitation{TargetAddress: f.target, Options: f.options}
	if f.sourceLLA != nil {
		ns.Options = append(ns.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: f.sourceLLA})
	}
	msg, err := ndp.MarshalMessageChecksum(ns, f.src, f.dst)
	if err != nil {
		t.Fatal(err)
	}
	hl := f.hopLimit
	if hl == 0 {
		hl = 255
	}
	ip := make([]byte, ipv6HeaderLen)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(msg)))
	ip[6], ip[7] = icmpv6Proto, hl
	s, d := f.src.As16(), f.dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	return append(append(ethernet(f.dstMAC, f.srcMAC, etherTypeIPv6), ip...), msg...)
}

func multicastNS(target netip.Addr) nsFrame {
	g := solicitedNode(target).As16()
	return nsFrame{
		srcMAC: clientMAC, dstMAC: net.HardwareAddr{0x33, 0x33, g[12], g[13], g[14], g[15]},
		src: client6, dst: solicitedNode(target), target: target, sourceLLA: clientMAC,
	}
}

func TestAnswerARPRepliesOnlyForOwnedAddressesWithOurMAC(t *testing.T) {
	tests := []struct {
		name      string
		frame     []byte
		wantReply bool
		wantTo    netip.Addr // reply's target IP
		malformed bool
		claim     net.HardwareAddr // another host claiming vip4 at this MAC
	}{
		{name: "request for owned address", frame: arpRequest(t, clientMAC, client4, vip4), wantReply: true, wantTo: client4},
		{name: "address-conflict probe from 0.0.0.0", frame: arpRequest(t, clientMAC, netip.IPv4Unspecified(), vip4), wantReply: true, wantTo: netip.IPv4Unspecified()},
		{name: "request for another address", frame: arpRequest(t, clientMAC, client4, netip.MustParseAddr("192.0.2.99"))},
		{name: "our own request", frame: arpRequest(t, ourMAC, vip4, vip4)},
		{name: "someone else's gratuitous ARP claims the address", frame: arpRequest(t, clientMAC, vip4, vip4), claim: clientMAC},
		{name: "someone else's gratuitous ARP reply claims the address", frame: asReply(arpRequest(t, clientMAC, vip4, vip4)), claim: clientMAC},
		{name: "a request sent from the owned address claims it", frame: arpRequest(t, clientMAC, vip4, client4), claim: clientMAC},
		{name: "a request from the owned address for an owned address is answered too", frame: arpRequest(t, clientMAC, vip4, netip.MustParseAddr("192.0.2.21")), wantReply: true, wantTo: vip4, claim: clientMAC},
		{name: "a claim for another address", frame: arpRequest(t, clientMAC, client4, client4)},
		{name: "a claim from a multicast hardware address", frame: arpRequest(t, net.HardwareAddr{0x03, 0, 0, 0, 0, 1}, vip4, vip4), malformed: true},
		{name: "a claim at our MAC from another Ethernet source", frame: func() []byte {
			b := arpRequest(t, ourMAC, vip4, vip4)
			copy(b[6:12], clientMAC)
			return b
		}()},
		{name: "reply, not a request", frame: asReply(arpRequest(t, clientMAC, client4, vip4))},
		{name: "truncated", frame: arpRequest(t, clientMAC, client4, vip4)[:30], malformed: true},
		{name: "IPv6-sized protocol addresses", frame: func() []byte {
			b := arpRequest(t, clientMAC, client4, vip4)
			b[ethHeaderLen+5] = 16
			return append(b, make([]byte, 24)...)
		}(), malformed: true},
		{name: "multicast sender hardware address", frame: arpRequest(t, net.HardwareAddr{0x03, 0, 0, 0, 0, 1}, client4, vip4), malformed: true},
		{name: "wrong ethertype", frame: func() []byte {
			b := arpRequest(t, clientMAC, client4, vip4)
			b[12], b[13] = 0x08, 0x00
			return b
		}(), malformed: true},
		{name: "802.1Q-tagged request (another VLAN)", frame: vlanTagged(arpRequest(t, clientMAC, client4, vip4), etherType8021Q, 100)},
		{name: "802.1ad-tagged request (QinQ)", frame: vlanTagged(vlanTagged(arpRequest(t, clientMAC, client4, vip4), etherType8021Q, 100), etherType8021AD, 20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owned := addrSet{vip4: {}, vip6: {}, netip.MustParseAddr("192.0.2.21"): {}}
			reply, c, err := answerARP(tt.frame, ourMAC, owned)
			if tt.malformed != errors.Is(err, errMalformed) || (err != nil && !tt.malformed) {
				t.Fatalf("err = %v, want malformed %v", err, tt.malformed)
			}
			checkClaim(t, c, vip4, tt.claim)
			if (reply != nil) != tt.wantReply {
				t.Fatalf("reply = %x, want one: %v", reply, tt.wantReply)
			}
			if reply == nil {
				return
			}
			var p arp.Packet
			if err := p.UnmarshalBinary(reply[ethHeaderLen:]); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(reply[0:6], clientMAC) || !bytes.Equal(reply[6:12], ourMAC) {
				t.Errorf("Ethernet %s → %s, want %s → %s", net.HardwareAddr(reply[6:12]), net.HardwareAddr(reply[0:6]), ourMAC, clientMAC)
			}
			if p.Operation != arp.OperationReply || !owned.has(p.SenderIP) || !bytes.Equal(p.SenderHardwareAddr, ourMAC) ||
				p.TargetIP != tt.wantTo || !bytes.Equal(p.TargetHardwareAddr, clientMAC) {
				t.Errorf("reply %+v", p)
			}
		})
	}
}

func TestAnswerNSFollowsRFC4861(t *testing.T) {
	unicast := nsFrame{srcMAC: clientMAC, dstMAC: ourMAC, src: client6, dst: vip6, target: vip6}
	dad := multicastNS(vip6)
	dad.src, dad.sourceLLA = netip.IPv6Unspecified(), nil
	tests := []struct {
		name          string
		frame         []byte
		wantDst       netip.Addr
		wantDstMAC    net.HardwareAddr
		wantSolicited bool
		malformed     bool
		why           string // in the error of a malformed frame
		ignored       bool
		claim         net.HardwareAddr // another host claiming vip6 at this MAC
	}{
		{name: "multicast NS", frame: multicastNS(vip6).bytes(t), wantDst: client6, wantDstMAC: clientMAC, wantSolicited: true},
		{name: "unicast NUD probe without source link-layer option answers the Ethernet source", frame: unicast.bytes(t), wantDst: client6, wantDstMAC: clientMAC, wantSolicited: true},
		{name: "DAD probe is answered to all nodes, unsolicited", frame: dad.bytes(t), wantDst: allNodes, wantDstMAC: allNodesMAC},
		{name: "NS with Ethernet padding", frame: append(multicastNS(vip6).bytes(t), 0, 0, 0, 0), wantDst: client6, wantDstMAC: clientMAC, wantSolicited: true},
		{name: "not our address", frame: multicastNS(netip.MustParseAddr("2001:db8:100::99")).bytes(t), ignored: true},
		{name: "our own frame", frame: func() []byte { f := multicastNS(vip6); f.srcMAC = ourMAC; return f.bytes(t) }(), ignored: true},
		{name: "hop limit below 255 (off-link)", frame: func() []byte { f := multicastNS(vip6); f.hopLimit = 64; return f.bytes(t) }(), malformed: true},
		{name: "bad checksum", frame: func() []byte { b := multicastNS(vip6).bytes(t); b[len(b)-1] ^= 0xff; return b }(), malformed: true, why: "checksum"},
		{name: "DAD probe with a source link-layer option", frame: func() []byte { f := dad; f.sourceLLA = clientMAC; return f.bytes(t) }(), malformed: true},
		{name: "DAD probe not to the solicited-node group", frame: func() []byte { f := dad; f.dst = allNodes; return f.bytes(t) }(), malformed: true},
		{name: "zero-length option", frame: func() []byte {
			f := multicastNS(vip6)
			f.sourceLLA = nil
			f.options = []ndp.Option{&ndp.RawOption{Type: 1, Length: 1, Value: make([]byte, 6)}}
			b := f.bytes(t)
			b[len(b)-7] = 0 // option length
			return fixChecksum(b)
		}(), malformed: true, why: "length zero"},
		{name: "payload length beyond the frame", frame: func() []byte {
			b := multicastNS(vip6).bytes(t)
			binary.BigEndian.PutUint16(b[ethHeaderLen+4:], 1000)
			return b
		}(), malformed: true},
		{name: "truncated", frame: multicastNS(vip6).bytes(t)[:60], malformed: true},
		{name: "NS sent from the owned address claims it", frame: func() []byte { f := multicastNS(client6); f.src = vip6; return f.bytes(t) }(), ignored: true, claim: clientMAC},
		{name: "unsolicited NA from another MAC claims the address", frame: unsolicitedNA(clientMAC, vip6), ignored: true, claim: clientMAC},
		{name: "solicited NA from another MAC claims the address", frame: naFrame(t, clientMAC, ourMAC, vip6, client6, true, clientMAC), ignored: true, claim: clientMAC},
		{name: "NA without target link-layer option claims the Ethernet source", frame: naFrame(t, clientMAC, allNodesMAC, vip6, allNodes, false, nil), ignored: true, claim: clientMAC},
		{name: "NA naming our MAC from another Ethernet source", frame: naFrame(t, clientMAC, allNodesMAC, vip6, allNodes, false, ourMAC), ignored: true},
		{name: "NA for another address", frame: unsolicitedNA(clientMAC, client6), ignored: true},
		{name: "our own NA", frame: unsolicitedNA(ourMAC, vip6), ignored: true},
		{name: "solicited NA to a multicast group", frame: naFrame(t, clientMAC, allNodesMAC, vip6, allNodes, true, clientMAC), malformed: true},
		{name: "NA claiming a multicast hardware address", frame: naFrame(t, clientMAC, allNodesMAC, vip6, allNodes, false, net.HardwareAddr{0x03, 0, 0, 0, 0, 1}), malformed: true},
		{name: "NA with hop limit 64", frame: func() []byte { b := unsolicitedNA(clientMAC, vip6); b[ethHeaderLen+7] = 64; return b }(), malformed: true},
		{name: "802.1Q-tagged NS (another VLAN)", frame: vlanTagged(multicastNS(vip6).bytes(t), etherType8021Q, 100), ignored: true},
		{name: "802.1ad-tagged NS", frame: vlanTagged(multicastNS(vip6).bytes(t), etherType8021AD, 100), ignored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, c, err := answerNDP(tt.frame, ourMAC, owned)
			if tt.malformed != errors.Is(err, errMalformed) || (err != nil && !tt.malformed) {
				t.Fatalf("err = %v, want malformed %v", err, tt.malformed)
			}
			checkClaim(t, c, vip6, tt.claim)
			if err != nil && !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("err = %v, want it to be about %q", err, tt.why)
			}
			if tt.malformed || tt.ignored {
				if reply != nil {
					t.Fatalf("unexpected reply %x", reply)
				}
				return
			}
			if reply == nil {
				t.Fatal("no reply")
			}
			na, src, dst := parseNA(t, reply)
			if !bytes.Equal(reply[0:6], tt.wantDstMAC) || !bytes.Equal(reply[6:12], ourMAC) {
				t.Errorf("Ethernet %s → %s, want %s → %s", net.HardwareAddr(reply[6:12]), net.HardwareAddr(reply[0:6]), ourMAC, tt.wantDstMAC)
			}
			if src != vip6 || dst != tt.wantDst {
				t.Errorf("IPv6 %s → %s, want %s → %s (ndisc6 insists the source is the target)", src, dst, vip6, tt.wantDst)
			}
			if na.TargetAddress != vip6 || na.Solicited != tt.wantSolicited || !na.Override || na.Router {
				t.Errorf("NA %+v", na)
			}
			if len(na.Options) != 1 || !bytes.Equal(na.Options[0].(*ndp.LinkLayerAddress).Addr, ourMAC) || na.Options[0].(*ndp.LinkLayerAddress).Direction != ndp.Target {
				t.Errorf("NA options %+v, want our MAC as target link-layer address", na.Options)
			}
		})
	}
}

func asReply(arpFrame []byte) []byte {
	arpFrame[ethHeaderLen+7] = byte(arp.OperationReply)
	return arpFrame
}

// naFrame builds a Neighbor Advertisement from srcMAC for target with the
// target link-layer option lla (none when nil), checksummed by x/net/icmp.
func naFrame(t testing.TB, srcMAC, dstMAC net.HardwareAddr, target, dst netip.Addr, solicited bool, lla net.HardwareAddr) []byte {
	na := &ndp.NeighborAdvertisement{Solicited: solicited, Override: true, TargetAddress: target}
	if lla != nil {
		na.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: lla}}
	}
	msg, err := ndp.MarshalMessageChecksum(na, target, dst)
	if err != nil {
		t.Fatal(err)
	}
	ip := make([]byte, ipv6HeaderLen)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(msg)))
	ip[6], ip[7] = icmpv6Proto, ndpHopLimit
	s, d := target.As16(), dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	return append(append(ethernet(dstMAC, srcMAC, etherTypeIPv6), ip...), msg...)
}

// checkClaim fails unless c is a claim for addr at mac, or none when mac is nil.
func checkClaim(t *testing.T, c claim, addr netip.Addr, mac net.HardwareAddr) {
	t.Helper()
	switch {
	case mac == nil && c.found():
		t.Errorf("claim %s at %s, want none", c.addr, net.HardwareAddr(c.mac[:]))
	case mac != nil && (c.addr != addr || !bytes.Equal(c.mac[:], mac)):
		t.Errorf("claim %+v, want %s at %s", c, addr, mac)
	}
}

// vlanTagged inserts a VLAN tag of type tpid after the Ethernet addresses.
func vlanTagged(frame []byte, tpid uint16, vid uint16) []byte {
	tag := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tpid), vid)
	return append(append(append([]byte{}, frame[:12]...), tag...), frame[12:]...)
}

// filterMeta is what the filters' extension loads read from the kernel's
// view of a packet.
type filterMeta struct {
	pktType uint32 // PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4
	ifindex uint32 // the interface the kernel says it arrived on
	vlan    bool   // a VLAN tag still in the packet's metadata
}

// runFilter interprets the classic BPF the filters are made of, including
// the extensions x/net/bpf's VM does not implement, and returns how many
// bytes the kernel would pass (0: dropped).
func runFilter(t *testing.T, prog []bpf.Instruction, frame []byte, m filterMeta) uint32 {
	t.Helper()
	if _, err := bpf.Assemble(prog); err != nil {
		t.Fatal(err)
	}
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		switch ins := prog[pc].(type) {
		case bpf.LoadExtension:
			switch ins.Num {
			case bpf.ExtType:
				a = m.pktType
			case bpf.ExtInterfaceIndex:
				a = m.ifindex
			case bpf.ExtVLANTagPresent:
				a = 0
				if m.vlan {
					a = 1
				}
			default:
				t.Fatalf("extension %d", ins.Num)
			}
		case bpf.LoadAbsolute:
			end := int(ins.Off) + ins.Size
			if end > len(frame) {
				return 0 // the kernel drops the packet on an out-of-bounds load
			}
			a = 0
			for _, b := range frame[ins.Off:end] {
				a = a<<8 | uint32(b)
			}
		case bpf.JumpIf:
			var hit bool
			switch ins.Cond {
			case bpf.JumpEqual:
				hit = a == ins.Val
			case bpf.JumpNotEqual:
				hit = a != ins.Val
			case bpf.JumpGreaterOrEqual:
				hit = a >= ins.Val
			default:
				t.Fatalf("condition %v", ins.Cond)
			}
			if hit {
				pc += int(ins.SkipTrue)
			} else {
				pc += int(ins.SkipFalse)
			}
		case bpf.RetConstant:
			return ins.Val
		default:
			t.Fatalf("instruction %T", ins)
		}
	}
	t.Fatal("the filter ran past its end")
	return 0
}

func TestFiltersPassOnlyUntaggedNeighbourFramesReceivedOnTheirInterface(t *testing.T) {
	const index = 7
	arpReply := func() []byte { b := arpRequest(t, clientMAC, client4, vip4); b[ethHeaderLen+7] = 2; return b }()
	echo := func() []byte { b := multicastNS(vip6).bytes(t); b[ethHeaderLen+ipv6HeaderLen] = 128; return b }()
	broadcast := filterMeta{pktType: 1, ifindex: index}
	tests := []struct {
		name   string
		filter []bpf.Instruction
		frame  []byte
		meta   filterMeta
		pass   bool
	}{
		{"ARP request", arpFilter(index), arpRequest(t, clientMAC, client4, vip4), broadcast, true},
		{"ARP request to our MAC", arpFilter(index), arpRequest(t, clientMAC, client4, vip4), filterMeta{pktType: 0, ifindex: index}, true},
		{"ARP request for another host (promiscuous)", arpFilter(index), arpRequest(t, clientMAC, client4, vip4), filterMeta{pktType: 3, ifindex: index}, false},
		{"our own ARP request going out", arpFilter(index), arpRequest(t, ourMAC, vip4, vip4), filterMeta{pktType: 4, ifindex: index}, false},
		{"ARP request the kernel gave a VLAN interface", arpFilter(index), arpRequest(t, clientMAC, client4, vip4), filterMeta{pktType: 1, ifindex: index + 1}, false},
		{"ARP request with a VLAN tag in metadata", arpFilter(index), arpRequest(t, clientMAC, client4, vip4), filterMeta{pktType: 1, ifindex: index, vlan: true}, false},
		{"ARP request with the tag in the frame", arpFilter(index), vlanTagged(arpRequest(t, clientMAC, client4, vip4), etherType8021Q, 100), broadcast, false},
		{"ARP reply (a possible claim)", arpFilter(index), arpReply, broadcast, true},
		{"RARP request", arpFilter(index), func() []byte { b := arpRequest(t, clientMAC, client4, vip4); b[ethHeaderLen+7] = 3; return b }(), broadcast, false},
		{"NS on the ARP socket", arpFilter(index), multicastNS(vip6).bytes(t), broadcast, false},
		{"truncated ARP", arpFilter(index), arpRequest(t, clientMAC, client4, vip4)[:16], broadcast, false},
		{"NS", ndpFilter(index), multicastNS(vip6).bytes(t), filterMeta{pktType: 2, ifindex: index}, true},
		{"NS the kernel gave a VLAN interface", ndpFilter(index), multicastNS(vip6).bytes(t), filterMeta{pktType: 2, ifindex: index + 1}, false},
		{"NS with a VLAN tag in metadata", ndpFilter(index), multicastNS(vip6).bytes(t), filterMeta{pktType: 2, ifindex: index, vlan: true}, false},
		{"NS with the tag in the frame", ndpFilter(index), vlanTagged(multicastNS(vip6).bytes(t), etherType8021Q, 100), filterMeta{pktType: 2, ifindex: index}, false},
		{"NS for another host (promiscuous)", ndpFilter(index), multicastNS(vip6).bytes(t), filterMeta{pktType: 3, ifindex: index}, false},
		{"ICMPv6 echo request", ndpFilter(index), echo, filterMeta{pktType: 2, ifindex: index}, false},
		{"NA (a possible claim)", ndpFilter(index), unsolicitedNA(clientMAC, vip6), filterMeta{pktType: 2, ifindex: index}, true},
		{"router advertisement", ndpFilter(index), func() []byte { b := multicastNS(vip6).bytes(t); b[ethHeaderLen+ipv6HeaderLen] = 134; return b }(), filterMeta{pktType: 2, ifindex: index}, false},
		{"ARP on the NDP socket", ndpFilter(index), arpRequest(t, clientMAC, client4, vip4), broadcast, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runFilter(t, tt.filter, tt.frame, tt.meta); (got != 0) != tt.pass {
				t.Errorf("filter returned %d, want pass %v", got, tt.pass)
			}
		})
	}
}

// fixChecksum recomputes the ICMPv6 checksum of an edited NS frame, so the
// frame is rejected for the edit and not for the checksum.
func fixChecksum(frame []byte) []byte {
	ip := frame[ethHeaderLen:]
	msg := ip[ipv6HeaderLen : ipv6HeaderLen+int(binary.BigEndian.Uint16(ip[4:6]))]
	msg[2], msg[3] = 0, 0
	binary.BigEndian.PutUint16(msg[2:4], icmpv6Checksum(netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40])), msg))
	return frame
}

// parseNA checks an NA frame against x/net/icmp's checksum and returns it.
func parseNA(t testing.TB, frame []byte) (*ndp.NeighborAdvertisement, netip.Addr, netip.Addr) {
	t.Helper()
	if len(frame) < ethHeaderLen+ipv6HeaderLen+naLen || binary.BigEndian.Uint16(frame[12:14]) != etherTypeIPv6 {
		t.Fatalf("not an IPv6 frame: %x", frame)
	}
	ip := frame[ethHeaderLen:]
	if ip[6] != icmpv6Proto || ip[7] != 255 {
		t.Fatalf("next header %d hop limit %d", ip[6], ip[7])
	}
	src := netip.AddrFrom16([16]byte(ip[8:24]))
	dst := netip.AddrFrom16([16]byte(ip[24:40]))
	msg := ip[ipv6HeaderLen : ipv6HeaderLen+int(binary.BigEndian.Uint16(ip[4:6]))]
	m, err := ndp.ParseMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok {
		t.Fatalf("got %T", m)
	}
	want, err := ndp.MarshalMessageChecksum(na, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, msg) {
		t.Fatalf("NA bytes %x, x/net/icmp computes %x", msg, want)
	}
	return na, src, dst
}

func TestAnnouncementsAreGratuitousARPAndUnsolicitedNA(t *testing.T) {
	g := gratuitousARP(ourMAC, vip4)
	var p arp.Packet
	if err := p.UnmarshalBinary(g[ethHeaderLen:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g[0:6], broadcastMAC) || p.Operation != arp.OperationRequest || p.SenderIP != vip4 || p.TargetIP != vip4 || !bytes.Equal(p.SenderHardwareAddr, ourMAC) {
		t.Errorf("gratuitous ARP: Ethernet dst %s, %+v", net.HardwareAddr(g[0:6]), p)
	}
	na, src, dst := parseNA(t, unsolicitedNA(ourMAC, vip6))
	if src != vip6 || dst != allNodes || na.Solicited || !na.Override || na.TargetAddress != vip6 {
		t.Errorf("unsolicited NA %s → %s %+v", src, dst, na)
	}
}

func TestNormalizeSkipsBadEntriesAndKeepsTheRest(t *testing.T) {
	want, errs := normalize(map[netip.Addr][]string{
		vip4:                                     {"eth0", "eth1"},
		netip.MustParseAddr("::ffff:192.0.2.20"): {"eth0"}, // IPv4-mapped: the IPv4 address
		vip6:                                     {"eth1", ""},
		netip.MustParseAddr("224.0.0.1"):         {"eth0"},
		netip.MustParseAddr("0.0.0.0"):           {"eth0"},
		netip.MustParseAddr("192.0.2.30"):        nil,
		{}:                                       {"eth0"},
	})
	if len(errs) != 5 {
		t.Errorf("errors %v, want 5 (empty name, multicast, unspecified, no interfaces, invalid)", errs)
	}
	if len(want) != 2 || !want["eth0"].has(vip4) || !want["eth0"].has(netip.MustParseAddr("192.0.2.20")) || len(want["eth0"]) != 2 ||
		!want["eth1"].has(vip4) || !want["eth1"].has(vip6) || len(want["eth1"]) != 2 {
		t.Errorf("normalized %v", want)
	}
}

// FuzzAnswer feeds arbitrary frames to both receive paths: nothing from the
// wire may panic them, and whatever they answer must be a well-formed reply.
// Plain `go test` runs the seeds.
func FuzzAnswer(f *testing.F) {
	f.Add(arpRequest(f, clientMAC, client4, vip4))
	f.Add(arpRequest(f, clientMAC, netip.IPv4Unspecified(), vip4))
	f.Add(multicastNS(vip6).bytes(f))
	dad := multicastNS(vip6)
	dad.src, dad.sourceLLA = netip.IPv6Unspecified(), nil
	f.Add(dad.bytes(f))
	f.Add(nsFrame{srcMAC: clientMAC, dstMAC: ourMAC, src: client6, dst: vip6, target: vip6}.bytes(f))
	f.Add(unsolicitedNA(clientMAC, vip6))
	f.Add(naFrame(f, clientMAC, ourMAC, vip6, client6, true, clientMAC))
	f.Add(asReply(arpRequest(f, clientMAC, vip4, vip4)))
	f.Add([]byte{})
	f.Add(make([]byte, 100))
	f.Fuzz(func(t *testing.T, frame []byte) {
		reply, c, err := answerARP(frame, ourMAC, owned)
		if err == nil && reply != nil {
			var p arp.Packet
			if err := p.UnmarshalBinary(reply[ethHeaderLen:]); err != nil || p.Operation != arp.OperationReply || p.SenderIP != vip4 {
				t.Fatalf("bad ARP reply %x: %v", reply, err)
			}
		}
		checkFuzzClaim(t, c, err)
		reply, c, err = answerNDP(frame, ourMAC, owned)
		if err == nil && reply != nil {
			na, src, _ := parseNA(t, reply)
			if src != vip6 || na.TargetAddress != vip6 {
				t.Fatalf("bad NA %x", reply)
			}
		}
		checkFuzzClaim(t, c, err)
	})
}

// checkFuzzClaim: a claim is only ever for an owned address at a usable
// MAC other than ours, and never comes with an error.
func checkFuzzClaim(t *testing.T, c claim, err error) {
	if !c.found() {
		return
	}
	if err != nil || !owned.has(c.addr) || !usableUnicastMAC(c.mac[:]) || bytes.Equal(c.mac[:], ourMAC) {
		t.Fatalf("bad claim %s at %s (err %v)", c.addr, net.HardwareAddr(c.mac[:]), err)
	}
}

func TestConflictsAreLoggedOncePerMACBoundedAndForgottenWithTheAddress(t *testing.T) {
	l := newLink("eth0")
	l.addrs[vip4] = nil
	l.publish()
	at := func(i int) claim { return claim{addr: vip4, mac: [6]byte{0x02, 0, 0, 0, byte(i >> 8), byte(i)}} }
	for i := range maxClaims {
		if got := l.rememberClaim(at(i)); got != claimNew {
			t.Fatalf("claim %d: %d, want new", i, got)
		}
	}
	if got := l.rememberClaim(at(0)); got != claimKnown {
		t.Errorf("repeated claim: %d, want known", got)
	}
	if got := l.rememberClaim(at(maxClaims)); got != claimsNowFull {
		t.Errorf("claim beyond the bound: %d, want the one full notice", got)
	}
	if got := l.rememberClaim(at(maxClaims + 1)); got != claimKnown || len(l.claims) != maxClaims {
		t.Errorf("second claim beyond the bound: %d with %d remembered, want known and %d", got, len(l.claims), maxClaims)
	}
	if got := l.rememberClaim(claim{addr: vip6, mac: [6]byte(clientMAC)}); got != claimKnown {
		t.Errorf("claim for an address not owned here: %d, want ignored", got)
	}

	delete(l.addrs, vip4)
	l.publish()
	l.forgetClaims([]netip.Addr{vip4})
	if len(l.claims) != 0 || l.claimsFull {
		t.Fatalf("after release: %d claims remembered, full %v", len(l.claims), l.claimsFull)
	}
	if got := l.rememberClaim(at(0)); got != claimKnown || len(l.claims) != 0 {
		t.Errorf("claim read before the release, handled after it: %d, %d remembered", got, len(l.claims))
	}
	l.addrs[vip4] = nil
	l.publish()
	if got := l.rememberClaim(at(0)); got != claimNew {
		t.Errorf("claim after the address came back: %d, want new", got)
	}
}

func TestSetAfterCloseFails(t *testing.T) {
	// Neither call touches an interface: safe outside a lab namespace.
	a := New(Options{})
	if err := a.Set(nil); err != nil {
		t.Fatalf("Set(nil) = %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close = %v, want ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}
