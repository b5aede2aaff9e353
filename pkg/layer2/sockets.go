package layer2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

type family string

const (
	ipv4 family = "ipv4"
	ipv6 family = "ipv6"
)

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return ipv4
	}
	return ipv6
}

// responder is one AF_PACKET socket on one interface for one family. Raw
// packet sockets are used for both families on purpose: they see unicast NS
// (a client's NUD probe straight to the owner's MAC), which the kernel's
// ICMPv6 socket never delivers for an address the node does not have; they
// need no IPv4 address nor non-tentative link-local on the interface; and
// they send frames we build whole, so an NA's source can be the address
// itself without net.ipv6.ip_nonlocal_bind.
type responder struct {
	fam    family
	conn   *packet.Conn
	mac    net.HardwareAddr
	closed atomic.Bool
}

func openResponder(fam family, index int, mac net.HardwareAddr) (*responder, error) {
	proto, filter := etherTypeARP, arpFilter(index)
	if fam == ipv6 {
		proto, filter = etherTypeIPv6, ndpFilter(index)
	}
	// The filter is attached before bind, so no unfiltered frame is queued.
	c, err := packet.Listen(&net.Interface{Index: index}, packet.Raw, proto, &packet.Config{Filter: mustAssemble(filter)})
	if err != nil {
		return nil, fmt.Errorf("open %s packet socket: %w", fam, err)
	}
	return &responder{fam: fam, conn: c, mac: mac}, nil
}

func (r *responder) send(frame []byte) error {
	// The destination is in the frame we built; the sockaddr only has to be valid.
	_, err := r.conn.WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[0:6])})
	return err
}

// close stops the responder without waiting: it wakes the serving goroutine,
// which closes the socket itself. Closing an AF_PACKET socket waits for an
// RCU grace period in the kernel (synchronize_net, 4–16 ms here), which must
// not stall Set.
func (r *responder) close() {
	if r == nil || r.closed.Swap(true) {
		return
	}
	_ = r.conn.SetReadDeadline(time.Unix(1, 0))
}

// membership holds the IPv6 solicited-node groups of the owned addresses on
// one interface. Joining makes the kernel send MLD reports, so snooping
// switches forward multicast NS to this port and the NIC's filter lets them
// in; the AF_PACKET responder then reads them. The sockets are unbound UDP
// sockets: they never receive anything, they only hold memberships.
type membership struct {
	index  int
	fds    []int
	joined map[netip.Addr]int // group → fd holding it
}

func newMembership(index int) *membership {
	return &membership{index: index, joined: map[netip.Addr]int{}}
}

func (m *membership) join(group netip.Addr) error {
	if _, ok := m.joined[group]; ok {
		return nil
	}
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(m.index)}
	if n := len(m.fds); n > 0 {
		err := unix.SetsockoptIPv6Mreq(m.fds[n-1], unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq)
		if err == nil {
			m.joined[group] = m.fds[n-1]
			return nil
		}
		// A socket's memberships are bounded by net.core.optmem_max (a few
		// hundred groups); spread further ones over more sockets.
		if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.ENOMEM) {
			return fmt.Errorf("join %s: %w", group, err)
		}
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("join %s: socket: %w", group, err)
	}
	if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("join %s: %w", group, err)
	}
	m.fds = append(m.fds, fd)
	m.joined[group] = fd
	return nil
}

func (m *membership) leave(group netip.Addr) error {
	fd, ok := m.joined[group]
	if !ok {
		return nil
	}
	delete(m.joined, group)
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(m.index)}
	if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_LEAVE_GROUP, mreq); err != nil {
		return fmt.Errorf("leave %s: %w", group, err)
	}
	return nil
}

// close leaves every group at once (the kernel drops a socket's memberships
// with it).
func (m *membership) close() {
	if m == nil {
		return
	}
	for _, fd := range m.fds {
		_ = unix.Close(fd)
	}
	m.fds, m.joined = nil, map[netip.Addr]int{}
}
