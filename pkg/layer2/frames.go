package layer2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

// This file is the wire format: pure functions from a received frame to the
// reply (or nothing), and builders for the announcements. No sockets, so it
// is table-tested and fuzzed without root.

const (
	etherTypeARP    = 0x0806
	etherTypeIPv6   = 0x86dd
	etherType8021Q  = 0x8100
	etherType8021AD = 0x88a8

	ethHeaderLen  = 14
	ipv6HeaderLen = 40
	arpLen        = 28 // Ethernet/IPv4 ARP payload
	nsLen         = 24 // ICMPv6 header (4) + reserved (4) + target (16)
	naLen         = 24
	icmpv6Proto   = 58
	typeNS        = 135
	typeNA        = 136
	ndpHopLimit   = 255

	// maxFrame bounds what one read returns; jumbo frames fit.
	maxFrame = 9216
)

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC      = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	allNodes     = netip.MustParseAddr("ff02::1")
	allNodesMAC  = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

// errMalformed marks frames that are invalid on the wire, as opposed to valid
// frames that simply need no answer. They are counted and dropped.
var errMalformed = errors.New("malformed frame")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// addrSet is the immutable set of addresses a link answers for; receivers
// read it without locks and Set swaps in a new one.
type addrSet map[netip.Addr]struct{}

func (s addrSet) has(a netip.Addr) bool { _, ok := s[a]; return ok }

// claim is another host saying that an owned address is at its MAC: an
// address conflict. The zero claim means none.
type claim struct {
	addr netip.Addr
	mac  [6]byte
}

func (c claim) found() bool { return c.addr.IsValid() }

// answerARP reads an ARP frame received on an interface with hardware
// address mac: it returns the reply (nil when the frame needs no answer from
// us) and, when the frame's sender claims an owned address at another MAC
// (a gratuitous ARP, a reply, or a request from that address), the claim.
func answerARP(frame []byte, mac net.HardwareAddr, owned addrSet) ([]byte, claim, error) {
	if len(frame) < ethHeaderLen+arpLen {
		return nil, claim{}, malformed("ARP frame of %d bytes", len(frame))
	}
	if et := binary.BigEndian.Uint16(frame[12:14]); et != etherTypeARP {
		if isVLANTag(et) {
			return nil, claim{}, nil // asked on another VLAN: never answered untagged
		}
		return nil, claim{}, malformed("ethertype %#04x on the ARP socket", et)
	}
	if bytes.Equal(frame[6:12], mac) {
		return nil, claim{}, nil // our own frame, looped back by some setups
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(frame[ethHeaderLen:]); err != nil {
		return nil, claim{}, malformed("ARP: %v", err)
	}
	if p.HardwareType != 1 || p.ProtocolType != 0x0800 || p.HardwareAddrLength != 6 || p.IPLength != 4 {
		return nil, claim{}, malformed("ARP for hardware %d/%d protocol %#04x/%d", p.HardwareType, p.HardwareAddrLength, p.ProtocolType, p.IPLength)
	}
	var c claim
	if owned.has(p.SenderIP) && !bytes.Equal(p.SenderHardwareAddr, mac) {
		if !usableUnicastMAC(p.SenderHardwareAddr) {
			return nil, claim{}, malformed("ARP claiming %s for hardware address %s", p.SenderIP, p.SenderHardwareAddr)
		}
		c = claim{addr: p.SenderIP, mac: [6]byte(p.SenderHardwareAddr)}
	}
	if p.Operation != arp.OperationRequest || !owned.has(p.TargetIP) {
		return nil, c, nil
	}
	if p.SenderIP == p.TargetIP {
		// Someone else announcing the address (a gratuitous ARP): not a
		// question, and answering would fight over the entry.
		return nil, c, nil
	}
	if !usableUnicastMAC(p.SenderHardwareAddr) || bytes.Equal(p.SenderHardwareAddr, mac) {
		return nil, claim{}, malformed("ARP request from hardware address %s", p.SenderHardwareAddr)
	}
	// Sender IP 0.0.0.0 is an address-conflict probe (RFC 5227): the reply to
	// it is what tells the prober the address is taken, so it gets one too.
	return arpFrame(arp.OperationReply, mac, p.TargetIP, p.SenderHardwareAddr, p.SenderIP, p.SenderHardwareAddr), c, nil
}

// gratuitousARP announces that addr is at mac: a broadcast request whose
// sender and target IP are both addr. Linux neighbours update an existing
// entry on it (they do not create one).
func gratuitousARP(mac net.HardwareAddr, addr netip.Addr) []byte {
	return arpFrame(arp.OperationRequest, mac, addr, zeroMAC, addr, broadcastMAC)
}

func arpFrame(op arp.Operation, senderMAC net.HardwareAddr, senderIP netip.Addr, targetMAC net.HardwareAddr, targetIP netip.Addr, ethDst net.HardwareAddr) []byte {
	b := make([]byte, ethHeaderLen+arpLen)
	putEthernet(b, ethDst, senderMAC, etherTypeARP)
	p := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(p[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(p[2:4], 0x0800) // IPv4
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:8], uint16(op))
	copy(p[8:14], senderMAC)
	s := senderIP.As4()
	copy(p[14:18], s[:])
	copy(p[18:24], targetMAC)
	t := targetIP.As4()
	copy(p[24:28], t[:])
	return b
}

// answerNDP reads an NDP frame received on an interface with hardware
// address mac. For a Neighbor Solicitation it returns the Neighbor
// Advertisement answering it, or nil when it needs no answer from us; for a
// Neighbor Advertisement of an owned address from another MAC (another host
// answering or announcing it), and for a solicitation sent from an owned
// address by another MAC, it returns the claim. It applies RFC 4861 §7.1
// validation itself because the frame comes from an AF_PACKET socket, which
// (unlike the kernel's ICMPv6 socket) checks nothing.
func answerNDP(frame []byte, mac net.HardwareAddr, owned addrSet) ([]byte, claim, error) {
	if len(frame) < ethHeaderLen+ipv6HeaderLen+nsLen {
		return nil, claim{}, malformed("IPv6 frame of %d bytes", len(frame))
	}
	if et := binary.BigEndian.Uint16(frame[12:14]); et != etherTypeIPv6 {
		if isVLANTag(et) {
			return nil, claim{}, nil
		}
		return nil, claim{}, malformed("ethertype %#04x on the NDP socket", et)
	}
	if bytes.Equal(frame[6:12], mac) {
		return nil, claim{}, nil
	}
	ip := frame[ethHeaderLen:]
	if ip[0]>>4 != 6 {
		return nil, claim{}, malformed("IP version %d", ip[0]>>4)
	}
	if ip[6] != icmpv6Proto {
		// Extension headers before NDP are not something neighbours send.
		return nil, claim{}, nil
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if plen > len(ip)-ipv6HeaderLen {
		return nil, claim{}, malformed("IPv6 payload length %d beyond the %d-byte frame", plen, len(frame))
	}
	msg := ip[ipv6HeaderLen : ipv6HeaderLen+plen] // drops Ethernet padding
	if len(msg) < nsLen {                         // the length of an NA too
		return nil, claim{}, malformed("ICMPv6 message of %d bytes", len(msg))
	}
	if msg[0] != typeNS && msg[0] != typeNA {
		return nil, claim{}, nil
	}
	src := netip.AddrFrom16([16]byte(ip[8:24]))
	dst := netip.AddrFrom16([16]byte(ip[24:40]))
	if ip[7] != ndpHopLimit {
		return nil, claim{}, malformed("NDP type %d with hop limit %d", msg[0], ip[7])
	}
	if msg[1] != 0 {
		return nil, claim{}, malformed("NDP type %d with code %d", msg[0], msg[1])
	}
	if icmpv6Checksum(src, dst, msg) != 0 {
		return nil, claim{}, malformed("NDP type %d with a bad checksum", msg[0])
	}
	if err := checkOptionLengths(msg[nsLen:]); err != nil {
		return nil, claim{}, err
	}
	m, err := ndp.ParseMessage(msg)
	if err != nil {
		return nil, claim{}, malformed("NDP: %v", err)
	}
	switch m := m.(type) {
	case *ndp.NeighborSolicitation:
		return answerNS(frame, m, src, dst, mac, owned)
	case *ndp.NeighborAdvertisement:
		c, err := readNA(frame, m, dst, mac, owned)
		return nil, c, err
	}
	return nil, claim{}, malformed("ICMPv6 type %d parsed as %T", msg[0], m)
}

// answerNS answers a valid Neighbor Solicitation for an owned address.
func answerNS(frame []byte, ns *ndp.NeighborSolicitation, src, dst netip.Addr, mac net.HardwareAddr, owned addrSet) ([]byte, claim, error) {
	target := ns.TargetAddress
	if target.IsMulticast() {
		return nil, claim{}, malformed("NS for multicast target %s", target)
	}
	if src.IsMulticast() {
		return nil, claim{}, malformed("NS from multicast source %s", src)
	}
	sourceLLA := linkLayerAddr(ns.Options, ndp.Source)
	dad := src.IsUnspecified()
	if dad {
		if !isSolicitedNode(dst) {
			return nil, claim{}, malformed("DAD probe to %s, not a solicited-node group", dst)
		}
		if sourceLLA != nil {
			return nil, claim{}, malformed("DAD probe with a source link-layer address")
		}
	}
	// A NUD probe (unicast, straight to our MAC) may omit the option; the
	// Ethernet source is then the only way back.
	replyMAC := sourceLLA
	if replyMAC == nil {
		replyMAC = net.HardwareAddr(frame[6:12])
	}
	var c claim
	if owned.has(src) && !bytes.Equal(replyMAC, mac) {
		// Sent from an owned address: that host has it configured.
		if !usableUnicastMAC(replyMAC) {
			return nil, claim{}, malformed("NS from %s at hardware address %s", src, replyMAC)
		}
		c = claim{addr: src, mac: [6]byte(replyMAC)}
	}
	if !owned.has(target) {
		return nil, c, nil
	}
	if dad {
		// The prober has no address to answer to: RFC 4861 §7.2.4 says tell
		// all nodes, unsolicited, so its DAD fails.
		return neighborAdvertisement(mac, target, allNodes, allNodesMAC, false), c, nil
	}
	if !usableUnicastMAC(replyMAC) {
		return nil, claim{}, malformed("NS from hardware address %s", replyMAC)
	}
	return neighborAdvertisement(mac, target, src, replyMAC, true), c, nil
}

// readNA returns the claim in a valid Neighbor Advertisement: another MAC
// for an owned target.
func readNA(frame []byte, na *ndp.NeighborAdvertisement, dst netip.Addr, mac net.HardwareAddr, owned addrSet) (claim, error) {
	if na.TargetAddress.IsMulticast() {
		return claim{}, malformed("NA for multicast target %s", na.TargetAddress)
	}
	if dst.IsMulticast() && na.Solicited {
		return claim{}, malformed("solicited NA to multicast %s", dst)
	}
	if !owned.has(na.TargetAddress) {
		return claim{}, nil
	}
	at := linkLayerAddr(na.Options, ndp.Target)
	if at == nil {
		at = net.HardwareAddr(frame[6:12])
	}
	if bytes.Equal(at, mac) {
		return claim{}, nil
	}
	if !usableUnicastMAC(at) {
		return claim{}, malformed("NA for %s at hardware address %s", na.TargetAddress, at)
	}
	return claim{addr: na.TargetAddress, mac: [6]byte(at)}, nil
}

func linkLayerAddr(opts []ndp.Option, d ndp.Direction) net.HardwareAddr {
	var a net.HardwareAddr
	for _, o := range opts {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == d {
			a = lla.Addr
		}
	}
	return a
}

// unsolicitedNA announces that addr is at mac to all nodes (S=0, O=1): like a
// gratuitous ARP, it updates existing neighbour entries.
func unsolicitedNA(mac net.HardwareAddr, addr netip.Addr) []byte {
	return neighborAdvertisement(mac, addr, allNodes, allNodesMAC, false)
}

// neighborAdvertisement builds the whole frame so that its IPv6 source can be
// the target address itself: strict clients such as ndisc6 reject an NA from
// any other source, and sending from an address the node does not have would
// otherwise need net.ipv6.ip_nonlocal_bind on the node.
func neighborAdvertisement(mac net.HardwareAddr, target, dst netip.Addr, dstMAC net.HardwareAddr, solicited bool) []byte {
	na := &ndp.NeighborAdvertisement{
		Solicited:     solicited,
		Override:      true,
		TargetAddress: target,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	msg, err := ndp.MarshalMessage(na)
	if err != nil {
		// Only reachable with a non-IPv6 target or a non-Ethernet MAC, which
		// callers never pass.
		panic(fmt.Sprintf("layer2: marshal NA for %s: %v", target, err))
	}
	binary.BigEndian.PutUint16(msg[2:4], icmpv6Checksum(target, dst, msg))

	b := make([]byte, ethHeaderLen+ipv6HeaderLen+len(msg))
	putEthernet(b, dstMAC, mac, etherTypeIPv6)
	ip := b[ethHeaderLen:]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(msg)))
	ip[6] = icmpv6Proto
	ip[7] = ndpHopLimit
	s, d := target.As16(), dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	copy(ip[ipv6HeaderLen:], msg)
	return b
}

// icmpv6Checksum is the RFC 4443 checksum of msg over the IPv6 pseudo-header.
// It returns 0 for a message whose checksum field is correct.
func icmpv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:4], uint32(len(msg)))
	l[7] = icmpv6Proto
	add(l[:])
	add(msg)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// checkOptionLengths enforces RFC 4861 §4.6: an option of length zero makes
// the whole message invalid.
func checkOptionLengths(opts []byte) error {
	for len(opts) > 0 {
		if len(opts) < 2 {
			return malformed("truncated NDP option")
		}
		l := int(opts[1]) * 8
		if l == 0 {
			return malformed("NDP option %d of length zero", opts[0])
		}
		if l > len(opts) {
			return malformed("NDP option %d of %d bytes beyond the message", opts[0], l)
		}
		opts = opts[l:]
	}
	return nil
}

func isSolicitedNode(a netip.Addr) bool {
	b := a.As16()
	return a.Is6() && bytes.Equal(b[:13], []byte{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff})
}

// solicitedNode is the group an NS for addr is sent to (RFC 4291 §2.7.1).
func solicitedNode(addr netip.Addr) netip.Addr {
	g, err := ndp.SolicitedNodeMulticast(addr)
	if err != nil {
		panic(fmt.Sprintf("layer2: solicited-node group of %s: %v", addr, err))
	}
	return g
}

// isVLANTag reports an 802.1Q or 802.1ad (QinQ) tag where the EtherType
// would be. The filters never pass such a frame (the kernel strips tags it
// recognizes, and the socket is bound to ARP or IPv6); this keeps the
// answer functions right on their own.
func isVLANTag(etherType uint16) bool {
	return etherType == etherType8021Q || etherType == etherType8021AD
}

func usableUnicastMAC(m net.HardwareAddr) bool {
	return len(m) == 6 && m[0]&1 == 0 && !bytes.Equal(m, zeroMAC)
}

func putEthernet(b []byte, dst, src net.HardwareAddr, etherType uint16) {
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], etherType)
}

// Kernel-side filters: only the frames that may need an answer, or may
// claim an owned address, wake us.
// Frames the node sends, and unicast frames for other hosts (seen in
// promiscuous mode), are dropped by packet type.
//
// VLANs: the kernel strips an 802.1Q/802.1ad tag before a packet socket
// bound to an EtherType sees the frame, so a question asked on VLAN 100
// would look untagged here, and an answer would leave untagged, on the
// wrong VLAN. Such frames never get this far on their own account: without a
// VLAN 100 interface on the node the kernel marks them as for another host;
// with one, it hands them to that interface, and the parent's packet
// sockets still see them, with that interface's index. So the filter keeps
// only frames received on the socket's own interface, and drops any that
// still carry a tag in the packet's metadata. Priority-tagged frames (VID 0)
// belong to the untagged network and are answered like untagged ones.
const packetOtherHost = 3 // PACKET_OTHERHOST; OUTGOING (4) and above too

// receivedHere is the common head of both filters: it drops what the kernel
// did not receive on interface index as an untagged frame for this host.
// skip is the number of instructions between it and the filter's final drop.
func receivedHere(index int, skip uint8) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: packetOtherHost, SkipTrue: skip + 4},
		bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(index), SkipTrue: skip + 2},
		bpf.LoadExtension{Num: bpf.ExtVLANTagPresent},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: skip},
	}
}

// arpFilter passes ARP requests and replies received on interface index:
// requests to be answered, and both kinds to see other hosts claiming an
// owned address.
func arpFilter(index int) []bpf.Instruction {
	return append(receivedHere(index, 6),
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeARP, SkipTrue: 4},
		bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 2}, // ARP operation
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(arp.OperationRequest), SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(arp.OperationReply), SkipTrue: 1},
		bpf.RetConstant{Val: maxFrame},
		bpf.RetConstant{Val: 0},
	)
}

// ndpFilter passes neighbor solicitations (to be answered) and
// advertisements (other hosts claiming an owned address) received on
// interface index.
func ndpFilter(index int) []bpf.Instruction {
	return append(receivedHere(index, 8),
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: 6},
		bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 1}, // next header
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmpv6Proto, SkipTrue: 4},
		bpf.LoadAbsolute{Off: ethHeaderLen + ipv6HeaderLen, Size: 1}, // ICMPv6 type
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: typeNS, SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: typeNA, SkipTrue: 1},
		bpf.RetConstant{Val: maxFrame},
		bpf.RetConstant{Val: 0},
	)
}

func mustAssemble(prog []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(fmt.Sprintf("layer2: assemble BPF filter: %v", err))
	}
	return raw
}
