// Package layer2 is the wire side of layer-2 announcement: it answers ARP
// (IPv4) and NDP (IPv6) for the addresses this node owns, on the interfaces
// it is told, and announces ownership changes with gratuitous ARP /
// unsolicited Neighbor Advertisement bursts. Which node owns what is decided
// elsewhere; the speaker hands the result to Announcer.Set.
//
// Addresses are never assigned to an interface: answering from user space
// keeps the kernel from treating the address as local (no routing or
// connection surprises on the node) and keeps release instantaneous.
//
// An interface answers only frames the kernel received on it untagged:
// a question from another VLAN is never answered on the parent, whose
// answer would leave untagged (the socket filters in frames.go).
//
// Another host claiming an owned address at its own MAC (a gratuitous ARP,
// an ARP reply or request sent from the address, a Neighbor Advertisement
// for it, a solicitation sent from it) is an address conflict: it is counted
// in herald_layer2_address_conflicts_total and logged once per address and
// foreign MAC. The announcer keeps answering questions as before but sends
// nothing in response to a claim, not even one re-announcement: two
// responders each re-announcing after the other's announcement never stop,
// and clients' entries would flap between them. The operator resolves the
// conflict; a takeover or the optional refresh announces again as usual.
package layer2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
)

// Options configure an Announcer. The zero value works.
type Options struct {
	// Logger receives structured logs keyed by "address" and "interface";
	// nil discards them.
	Logger *slog.Logger
	// A newly owned (address, interface) pair, or every pair of an interface
	// that comes back up, is announced BurstCount times, BurstInterval apart
	// (zero values: 3 and 1 s, three announcements over two seconds). The
	// first one is on the wire before Set returns.
	BurstCount    int
	BurstInterval time.Duration
	// RefreshInterval re-announces every owned pair periodically; 0 disables.
	RefreshInterval time.Duration
	// Registerer receives the herald_layer2_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

const (
	defaultBurstCount    = 3
	defaultBurstInterval = time.Second
	// linkCheckInterval is the safety net behind netlink link events, which
	// can be lost (a full socket buffer) or unavailable.
	linkCheckInterval = 5 * time.Second
	readErrorBackoff  = 100 * time.Millisecond
)

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("layer2: announcer closed")

// Announcer answers ARP/NDP for a desired set of (address, interface) pairs.
// Its methods are safe for concurrent use.
type Announcer struct {
	opts Options
	log  *slog.Logger
	met  *metrics
	ctx  context.Context // canceled by Close; parents every goroutine
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
	links  map[string]*link // by interface name; only interfaces with owned addresses
}

// link is one interface that has owned addresses: what is desired on it,
// and, in w, the sockets that currently serve it.
type link struct {
	name string
	// addrs are the owned addresses, each with the cancel func of its burst
	// in flight (nil when none).
	addrs map[netip.Addr]context.CancelFunc
	// owned is addrs as an immutable snapshot for the receive goroutines,
	// which never take the Announcer's lock.
	owned atomic.Pointer[addrSet]
	w     *world
	// lastErr keeps the watcher from logging the same failure every check.
	lastErr string

	// claims are the address conflicts already logged, so each (address,
	// foreign MAC) is logged once. At most maxClaims; an address's entries
	// are forgotten when it is no longer owned here.
	claimsMu   sync.Mutex
	claims     map[claim]struct{}
	claimsFull bool // the "too many" line was logged
}

// maxClaims bounds the conflicts remembered per interface, whatever forged
// frames arrive; beyond it conflicts are still counted, not logged.
const maxClaims = 1024

// world is the kernel side of a link, nil while the interface is missing.
type world struct {
	index   int
	mac     net.HardwareAddr
	running bool       // up with carrier: announcements can leave
	arp     *responder // nil when the link has no IPv4 address
	ndp     *responder // nil when the link has no IPv6 address
	mc      *membership
}

// New starts an Announcer that answers for nothing until Set.
func New(opts Options) *Announcer {
	if opts.BurstCount <= 0 {
		opts.BurstCount = defaultBurstCount
	}
	if opts.BurstInterval <= 0 {
		opts.BurstInterval = defaultBurstInterval
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	a := &Announcer{
		opts:  opts,
		log:   log,
		met:   newMetrics(opts.Registerer, log),
		ctx:   ctx,
		stop:  stop,
		links: map[string]*link{},
	}
	a.wg.Add(1)
	go a.watch()
	return a
}

// Set converges to exactly desired: answer for each address on each of its
// interfaces, and for nothing else. Newly owned pairs are announced at once
// (a burst); dropped pairs stop being answered before Set returns; unchanged
// pairs are left alone, so calling Set again with the same input is cheap
// and sends nothing.
//
// Invalid entries and interfaces that cannot be served right now (missing,
// no Ethernet address) are reported in the error; everything else is still
// applied, and pairs on such an interface are served as soon as it appears
// or changes (netlink events, and a check every 5 s).
func (a *Announcer) Set(desired map[netip.Addr][]string) error {
	want, errs := normalize(desired)

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	for name, l := range a.links {
		keep := want[name]
		var dropped []netip.Addr
		for addr := range l.addrs {
			if !keep.has(addr) {
				a.drop(l, addr)
				dropped = append(dropped, addr)
			}
		}
		if len(l.addrs) == 0 {
			a.closeWorld(l)
			delete(a.links, name)
			continue
		}
		if len(dropped) > 0 {
			l.publish()
			l.forgetClaims(dropped)
			if err := a.syncWorld(l); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for name, addrs := range want {
		l := a.links[name]
		if l == nil {
			l = newLink(name)
			a.links[name] = l
			// Series from zero, so increase() sees the first conflict.
			for _, f := range []family{ipv4, ipv6} {
				a.met.conflicts.WithLabelValues(string(f), name)
			}
		}
		var added []netip.Addr
		for addr := range addrs {
			if _, ok := l.addrs[addr]; !ok {
				l.addrs[addr] = nil
				added = append(added, addr)
				a.log.Info("announcing", "address", addr, "interface", name)
			}
		}
		if len(added) == 0 && l.w != nil {
			continue
		}
		l.publish()
		if l.w == nil {
			if err := a.openLink(l, kindTakeover); err != nil {
				errs = append(errs, fmt.Errorf("%w (retried when the interface changes)", err))
			}
			continue
		}
		if err := a.syncWorld(l); err != nil {
			errs = append(errs, err)
		}
		if l.w.running {
			slices.SortFunc(added, netip.Addr.Compare)
			for _, addr := range added {
				a.startBurst(l, addr, kindTakeover)
			}
		}
	}
	a.updateOwned()
	return errors.Join(errs...)
}

// Close stops answering everything, leaves the multicast groups and waits
// for the Announcer's goroutines and sockets to be gone.
func (a *Announcer) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.stop()
	for name, l := range a.links {
		a.closeWorld(l)
		delete(a.links, name)
	}
	a.updateOwned()
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}

// normalize turns the caller's map into what each interface must answer
// for. Bad entries are reported and skipped rather than failing the call:
// one odd address must not take every other announcement down.
func normalize(desired map[netip.Addr][]string) (map[string]addrSet, []error) {
	want := map[string]addrSet{}
	var errs []error
	for addr, ifaces := range desired {
		a := addr.Unmap().WithZone("")
		switch {
		case !a.IsValid():
			errs = append(errs, errors.New("invalid address"))
			continue
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
			errs = append(errs, fmt.Errorf("address %s cannot be announced", addr))
			continue
		case len(ifaces) == 0:
			errs = append(errs, fmt.Errorf("address %s: no interfaces given", addr))
			continue
		}
		for _, name := range ifaces {
			if name == "" {
				errs = append(errs, fmt.Errorf("address %s: empty interface name", addr))
				continue
			}
			if want[name] == nil {
				want[name] = addrSet{}
			}
			want[name][a] = struct{}{}
		}
	}
	return want, errs
}

func newLink(name string) *link {
	l := &link{name: name, addrs: map[netip.Addr]context.CancelFunc{}, claims: map[claim]struct{}{}}
	l.publish()
	return l
}

func (l *link) publish() {
	s := make(addrSet, len(l.addrs))
	for addr := range l.addrs {
		s[addr] = struct{}{}
	}
	l.owned.Store(&s)
}

func (l *link) needs(f family) bool {
	for addr := range l.addrs {
		if familyOf(addr) == f {
			return true
		}
	}
	return false
}

func (a *Announcer) drop(l *link, addr netip.Addr) {
	if cancel := l.addrs[addr]; cancel != nil {
		cancel()
	}
	delete(l.addrs, addr)
	a.log.Info("stopped announcing", "address", addr, "interface", l.name)
}

// openLink (re)creates the link's sockets on the interface as it is now and,
// if it can send, announces every owned address. New sockets are open
// before the old ones close, so requests are never left unanswered.
func (a *Announcer) openLink(l *link, kind string) error {
	nl, err := netlink.LinkByName(l.name)
	if err != nil {
		if old := l.w; old != nil {
			a.closeWorld(l)
		}
		return fmt.Errorf("interface %s: %w", l.name, err)
	}
	attrs := nl.Attrs()
	if !usableUnicastMAC(attrs.HardwareAddr) {
		a.closeWorld(l)
		return fmt.Errorf("interface %s: no Ethernet address (%q): ARP/NDP cannot be answered there", l.name, attrs.HardwareAddr)
	}
	old := l.w
	for _, cancel := range l.addrs {
		if cancel != nil {
			cancel()
		}
	}
	// Leaving before re-joining makes the kernel send fresh MLD reports, so
	// a switch that forgot the port while it was down learns it again.
	if old != nil {
		old.mc.close()
		old.mc = nil
	}
	l.w = &world{index: attrs.Index, mac: slices.Clone(attrs.HardwareAddr), running: isRunning(attrs)}
	err = a.syncWorld(l)
	if old != nil {
		old.arp.close()
		old.ndp.close()
	}
	a.log.Info("serving interface", "interface", l.name, "index", attrs.Index, "mac", attrs.HardwareAddr.String(), "running", l.w.running)
	if l.w.running {
		addrs := make([]netip.Addr, 0, len(l.addrs))
		for addr := range l.addrs {
			addrs = append(addrs, addr)
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		for _, addr := range addrs {
			a.startBurst(l, addr, kind)
		}
	}
	return err
}

// syncWorld opens or closes the per-family sockets and joins or leaves the
// solicited-node groups so the open link matches its owned addresses. It is
// idempotent: the watcher calls it again to retry what failed.
func (a *Announcer) syncWorld(l *link) error {
	w := l.w
	if w == nil {
		return nil
	}
	var errs []error
	need4, need6 := l.needs(ipv4), l.needs(ipv6)
	if need4 && w.arp == nil {
		if w.arp, errs = a.openResponder(l, ipv4, errs); w.arp == nil {
			errs = append(errs, fmt.Errorf("interface %s: cannot answer ARP", l.name))
		}
	} else if !need4 && w.arp != nil {
		w.arp.close()
		w.arp = nil
	}
	if need6 && w.ndp == nil {
		if w.ndp, errs = a.openResponder(l, ipv6, errs); w.ndp == nil {
			errs = append(errs, fmt.Errorf("interface %s: cannot answer NDP", l.name))
		}
	} else if !need6 && w.ndp != nil {
		w.ndp.close()
		w.ndp = nil
	}
	if need6 && w.mc == nil {
		w.mc = newMembership(w.index)
	}
	if w.mc != nil {
		groups := map[netip.Addr]bool{}
		for addr := range l.addrs {
			if addr.Is6() {
				groups[solicitedNode(addr)] = true
			}
		}
		for g := range w.mc.joined {
			if !groups[g] {
				if err := w.mc.leave(g); err != nil {
					errs = append(errs, fmt.Errorf("interface %s: %w", l.name, err))
				}
			}
		}
		for g := range groups {
			if err := w.mc.join(g); err != nil {
				errs = append(errs, fmt.Errorf("interface %s: %w", l.name, err))
			}
		}
		if !need6 {
			w.mc.close()
			w.mc = nil
		}
	}
	return errors.Join(errs...)
}

func (a *Announcer) openResponder(l *link, f family, errs []error) (*responder, []error) {
	r, err := openResponder(f, l.w.index, l.w.mac)
	if err != nil {
		return nil, append(errs, fmt.Errorf("interface %s: %w", l.name, err))
	}
	a.wg.Add(1)
	go a.serve(l, r)
	return r, errs
}

func (a *Announcer) closeWorld(l *link) {
	for addr, cancel := range l.addrs {
		if cancel != nil {
			cancel()
			l.addrs[addr] = nil
		}
	}
	if w := l.w; w != nil {
		w.arp.close()
		w.ndp.close()
		w.mc.close()
		l.w = nil
	}
}

// serve answers the requests one responder reads, until it is closed.
func (a *Announcer) serve(l *link, r *responder) {
	defer a.wg.Done()
	defer r.conn.Close()
	answer := answerARP
	if r.fam == ipv6 {
		answer = answerNDP
	}
	buf := make([]byte, maxFrame)
	for {
		n, _, err := r.conn.ReadFrom(buf)
		if err != nil {
			if r.closed.Load() {
				return
			}
			// ENETDOWN arrives once when the link goes administratively
			// down; the socket resumes when it is up again (and the watcher
			// replaces it anyway). Back off so no error can make this spin.
			a.log.Debug("read failed", "interface", l.name, "family", r.fam, "error", err)
			select {
			case <-time.After(readErrorBackoff):
				continue
			case <-a.ctx.Done():
				return
			}
		}
		reply, c, err := answer(buf[:n], r.mac, *l.owned.Load())
		if c.found() {
			a.conflict(l, r.fam, c)
		}
		if err != nil {
			a.met.malformed.WithLabelValues(string(r.fam)).Inc()
			a.log.Debug("dropped frame", "interface", l.name, "family", r.fam, "error", err)
			continue
		}
		if reply == nil {
			continue
		}
		if err := r.send(reply); err != nil {
			a.met.sendErrors.WithLabelValues(string(r.fam)).Inc()
			a.log.Debug("reply failed", "interface", l.name, "family", r.fam, "error", err)
			continue
		}
		a.met.answered.WithLabelValues(string(r.fam)).Inc()
	}
}

// conflict counts another host's claim to an owned address, and logs it
// the first time this address and MAC are seen on l. It sends nothing back
// (see the package doc).
func (a *Announcer) conflict(l *link, f family, c claim) {
	a.met.conflicts.WithLabelValues(string(f), l.name).Inc()
	switch l.rememberClaim(c) {
	case claimNew:
		a.log.Warn("another host claims an owned address", "address", c.addr, "interface", l.name, "mac", net.HardwareAddr(c.mac[:]).String())
	case claimsNowFull:
		a.log.Warn("too many address conflicts to log each; they are still counted", "interface", l.name, "logged", maxClaims)
	}
}

const (
	claimKnown = iota // logged before, or no longer owned
	claimNew
	claimsNowFull
)

func (l *link) rememberClaim(c claim) int {
	l.claimsMu.Lock()
	defer l.claimsMu.Unlock()
	// Checked under the lock forgetClaims takes after Set published the
	// new owned set: a claim for a dropped address is forgotten or never
	// kept, so it is logged again if the address comes back.
	if !l.owned.Load().has(c.addr) {
		return claimKnown
	}
	if _, ok := l.claims[c]; ok {
		return claimKnown
	}
	if len(l.claims) >= maxClaims {
		if l.claimsFull {
			return claimKnown
		}
		l.claimsFull = true
		return claimsNowFull
	}
	l.claims[c] = struct{}{}
	return claimNew
}

// forgetClaims drops the remembered conflicts of addresses l no longer owns.
// Called after publishing the owned set without them.
func (l *link) forgetClaims(addrs []netip.Addr) {
	l.claimsMu.Lock()
	defer l.claimsMu.Unlock()
	for c := range l.claims {
		if slices.Contains(addrs, c.addr) {
			delete(l.claims, c)
		}
	}
	if len(l.claims) < maxClaims {
		l.claimsFull = false
	}
}

// startBurst announces addr on l now and BurstCount-1 more times in the
// background, replacing any burst already running for it. Called with a.mu
// held and l.w running.
func (a *Announcer) startBurst(l *link, addr netip.Addr, kind string) {
	if cancel := l.addrs[addr]; cancel != nil {
		cancel()
	}
	l.addrs[addr] = nil
	a.announce(l, addr, kind)
	if a.opts.BurstCount <= 1 {
		return
	}
	ctx, cancel := context.WithCancel(a.ctx)
	l.addrs[addr] = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer cancel()
		t := time.NewTicker(a.opts.BurstInterval)
		defer t.Stop()
		for range a.opts.BurstCount - 1 {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			a.mu.Lock()
			// Drops, link changes and Close cancel under the same lock, so a
			// canceled burst never sends after that.
			if ctx.Err() == nil && l.w != nil && l.w.running {
				a.announce(l, addr, kind)
			}
			a.mu.Unlock()
		}
	}()
}

// announce sends one gratuitous ARP or unsolicited NA for addr on l.
func (a *Announcer) announce(l *link, addr netip.Addr, kind string) {
	f := familyOf(addr)
	r, frame := l.w.arp, []byte(nil)
	if f == ipv4 {
		frame = gratuitousARP(l.w.mac, addr)
	} else {
		r, frame = l.w.ndp, unsolicitedNA(l.w.mac, addr)
	}
	if r == nil {
		return
	}
	if err := r.send(frame); err != nil {
		a.met.sendErrors.WithLabelValues(string(f)).Inc()
		a.log.Warn("announcement failed", "address", addr, "interface", l.name, "kind", kind, "error", err)
		return
	}
	a.met.announcements.WithLabelValues(string(f), kind).Inc()
}

func (a *Announcer) updateOwned() {
	seen := map[netip.Addr]bool{}
	n := map[family]int{}
	for _, l := range a.links {
		for addr := range l.addrs {
			if !seen[addr] {
				seen[addr] = true
				n[familyOf(addr)]++
			}
		}
	}
	for _, f := range []family{ipv4, ipv6} {
		a.met.owned.WithLabelValues(string(f)).Set(float64(n[f]))
	}
}

// watch follows the interfaces: netlink link events for a prompt reaction,
// a periodic check as the safety net, and the optional refresh timer.
func (a *Announcer) watch() {
	defer a.wg.Done()
	check := time.NewTicker(linkCheckInterval)
	defer check.Stop()
	var refresh <-chan time.Time
	if a.opts.RefreshInterval > 0 {
		t := time.NewTicker(a.opts.RefreshInterval)
		defer t.Stop()
		refresh = t.C
	}
	var (
		updates chan netlink.LinkUpdate
		done    chan struct{}
	)
	subscribe := func() {
		ch, d := make(chan netlink.LinkUpdate, 64), make(chan struct{})
		err := netlink.LinkSubscribeWithOptions(ch, d, netlink.LinkSubscribeOptions{
			ErrorCallback: func(err error) { a.log.Debug("link events", "error", err) },
		})
		if err != nil {
			a.log.Warn("cannot follow link events; checking interfaces periodically", "every", linkCheckInterval, "error", err)
			return
		}
		updates, done = ch, d
	}
	unsubscribe := func() {
		if done == nil {
			return
		}
		close(done)
		for range updates {
			// Drain, so the subscription's goroutine can see done and exit.
		}
		updates, done = nil, nil
	}
	defer unsubscribe()
	subscribe()
	for {
		select {
		case <-a.ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				// The subscription died (e.g. ENOBUFS): events were lost.
				close(done)
				updates, done = nil, nil
				a.recheck("")
				subscribe()
				continue
			}
			a.recheck(u.Attrs().Name)
		case <-check.C:
			if updates == nil {
				subscribe()
			}
			a.recheck("")
		case <-refresh:
			a.refresh()
		}
	}
}

// recheck brings the named link ("" for all) in line with its interface:
// re-open after it reappeared or changed, re-announce when it came back up.
func (a *Announcer) recheck(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	for _, l := range a.links {
		if name == "" || l.name == name {
			a.recheckLink(l)
		}
	}
}

func (a *Announcer) recheckLink(l *link) {
	nl, err := netlink.LinkByName(l.name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) && l.w != nil {
			a.log.Warn("interface disappeared; will announce again when it returns", "interface", l.name)
			a.closeWorld(l)
		}
		a.logOnce(l, "cannot look up interface", err)
		return
	}
	attrs := nl.Attrs()
	w := l.w
	switch {
	case w == nil || attrs.Index != w.index || !bytes.Equal(attrs.HardwareAddr, w.mac):
		err = a.openLink(l, kindLinkUp)
	case isRunning(attrs) && !w.running:
		// Fresh sockets and memberships rather than trusting what survived
		// the outage, then a burst: neighbours may have moved on meanwhile.
		a.log.Info("interface up again", "interface", l.name)
		err = a.openLink(l, kindLinkUp)
	case !isRunning(attrs) && w.running:
		a.log.Info("interface down", "interface", l.name)
		w.running = false
	default:
		err = a.syncWorld(l)
	}
	a.logOnce(l, "cannot serve interface", err)
}

// logOnce logs a link's failure when it differs from the previous one, so a
// missing interface does not log every check.
func (a *Announcer) logOnce(l *link, msg string, err error) {
	s := ""
	if err != nil {
		s = err.Error()
	}
	if s != l.lastErr && s != "" {
		a.log.Error(msg, "interface", l.name, "error", err)
	}
	l.lastErr = s
}

func (a *Announcer) refresh() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.links {
		if l.w == nil || !l.w.running {
			continue
		}
		for addr := range l.addrs {
			a.announce(l, addr, kindRefresh)
		}
	}
}

// isRunning reports whether frames can leave: administratively up and with
// carrier (IFF_RUNNING follows the operational state).
func isRunning(attrs *netlink.LinkAttrs) bool {
	return attrs.Flags&net.FlagUp != 0 && attrs.Flags&net.FlagRunning != 0
}
