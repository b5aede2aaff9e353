package layer2

import (
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// canAnswer says whether an interface can carry ARP/NDP at all:
// Ethernet-addressed, not loopback, not NOARP (which also rules out
// kube-proxy's kube-ipvs0 dummy, where the Service addresses themselves are
// assigned). Which interfaces an address is answered on is decided in
// pkg/announce (DefaultInterfaces) from the Links snapshot.
func canAnswer(at *netlink.LinkAttrs) bool {
	return at.Flags&net.FlagLoopback == 0 && at.RawFlags&unix.IFF_NOARP == 0 && usableUnicastMAC(at.HardwareAddr)
}
