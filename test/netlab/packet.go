package netlab

import (
	"fmt"
	"net"

	"github.com/mdlayher/packet"
)

// EtherTypeAll makes ListenPacket see every frame, including the host's own
// outgoing ones (ETH_P_ALL).
const EtherTypeAll = 0x0003

// ListenPacket opens a raw AF_PACKET socket on one of the host's interfaces,
// for tests that sniff or inject Ethernet frames (whole frames, header
// included). The socket stays in the host's namespace whichever goroutine
// uses it later; the caller closes it.
func (h *Host) ListenPacket(ifname string, etherType uint16) (*packet.Conn, error) {
	var c *packet.Conn
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, int(etherType), nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s in %s: %w", ifname, h.NS, err)
	}
	return c, nil
}
