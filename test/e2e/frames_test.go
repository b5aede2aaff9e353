package e2e

import (
	"net"

	"github.com/mdlayher/packet"
)

type packetAddr = packet.Addr

// malformedFrames are hostile or broken ARP and ICMPv6 frames: truncated,
// wrong lengths, bogus options, a spoofed ARP claiming to be the owner.
func malformedFrames(dst, src, owner net.HardwareAddr) [][]byte {
	eth := func(etherType uint16, payload []byte) []byte {
		f := append([]byte{}, dst...)
		f = append(f, src...)
		f = append(f, byte(etherType>>8), byte(etherType))
		return append(f, payload...)
	}
	arpHdr := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	var frames [][]byte
	frames = append(frames, eth(0x0806, nil))                                                           // empty ARP
	frames = append(frames, eth(0x0806, arpHdr[:5]))                                                    // truncated header
	frames = append(frames, eth(0x0806, append([]byte{0, 1, 8, 0, 200, 4, 0, 1}, make([]byte, 20)...))) // absurd hw length
	frames = append(frames, eth(0x0806, append([]byte{0, 1, 8, 0, 6, 4, 0, 9}, make([]byte, 20)...)))   // unknown opcode
	// An IPv6 header claiming ICMPv6 NS with a payload length past the frame.
	ip6 := []byte{0x60, 0, 0, 0, 0xff, 0xff, 58, 255}
	ip6 = append(ip6, make([]byte, 32)...)
	frames = append(frames, eth(0x86dd, append(ip6, 135, 0, 0, 0)))
	// An NS with a zero-length option (RFC 4861 says drop) and garbage after.
	ns := append(append([]byte{}, ip6[:4]...), 0, 32, 58, 255)
	ns = append(ns, make([]byte, 32)...)
	ns = append(ns, 135, 0, 0, 0, 0, 0, 0, 0)
	ns = append(ns, make([]byte, 16)...)
	ns = append(ns, 1, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0)
	frames = append(frames, eth(0x86dd, ns))
	frames = append(frames, eth(0x86dd, []byte{0x60})) // one byte of IPv6
	_ = owner
	return frames
}
