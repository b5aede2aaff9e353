package netlab

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RouteChange is one change of a main-table route in a host's kernel, stamped
// when the netlink notification arrived.
type RouteChange struct {
	Prefix   netip.Prefix
	NextHops int // after the change; 0 means the route is gone
	At       time.Time
}

// WatchRoutes calls f for every main-table route change in the host's
// namespace, from a netlink subscription (so a measurement sees the instant
// the route is in the FIB, unlike polling `ip route`). onErr receives
// subscription errors (a full socket buffer loses changes). stop ends it.
func (h *Host) WatchRoutes(f func(RouteChange), onErr func(error)) (stop func(), err error) {
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", h.NS, err)
	}
	ch := make(chan netlink.RouteUpdate, 8192)
	done := make(chan struct{})
	var stopped atomic.Bool
	if err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{
		Namespace: &ns, ReceiveBufferSize: 1 << 22,
		ErrorCallback: func(err error) {
			if !stopped.Load() && onErr != nil {
				onErr(fmt.Errorf("%s: route subscription: %w", h.Spec.Name, err))
			}
		},
	}); err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("%s: route subscription: %w", h.Spec.Name, err)
	}
	go func() {
		for u := range ch {
			at := time.Now()
			if u.Dst == nil || u.Table != unix.RT_TABLE_MAIN {
				continue
			}
			a, _ := netip.AddrFromSlice(u.Dst.IP)
			ones, _ := u.Dst.Mask.Size()
			hops := 0
			if u.Type == unix.RTM_NEWROUTE {
				hops = max(1, len(u.MultiPath))
			}
			f(RouteChange{Prefix: netip.PrefixFrom(a.Unmap(), ones), NextHops: hops, At: at})
		}
	}()
	return func() {
		if stopped.CompareAndSwap(false, true) {
			close(done)
			_ = ns.Close()
		}
	}, nil
}
