// Package bgp is the wire side of Herald's BGP announcements: an embedded
// GoBGP v4 server that holds sessions with the routers a node peers with and
// advertises exactly the routes it is told to, each to exactly the peers it
// is told to.
//
// The caller (the speaker's glue) decides what to announce and calls SetPeers
// and SetRoutes with the complete desired state whenever it changes. Both are
// level-triggered and diff against what is programmed: an unchanged peer keeps
// its session, an unchanged route is never re-sent (routers see no churn).
// Routes learnt from peers are rejected on import, so they are neither
// installed (Herald never programs the kernel from BGP) nor re-advertised.
//
// Received paths are bounded per peer and family (Peer.MaxReceived). GoBGP
// v4.8 stores every received path in the peer's Adj-RIB-In before import
// policy runs (≈ 1.1 KiB a path), has no receive-nothing option, and its
// only bound, the prefix limit, closes the session with a Cease. So a peer
// that sends more than the limit loses its session — this node's routes to
// that router with it — and is held down, retried after 30 s, doubling up to
// 10 min; every other peer, and layer 2, are untouched, and memory stays at
// the limit's worth. Not negotiating a family would stop sending it too.
package bgp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Speaker.
type Options struct {
	Logger   *slog.Logger // nil = slog.Default()
	RouterID netip.Addr   // BGP identifier; must be IPv4 (RFC 6286 allows any 32 bits, GoBGP wants an IPv4 address)
	// ListenPort is the TCP port to accept sessions on: 0 means 179, -1
	// means never listen (sessions are then only dialled). Listening lets a
	// router that connects first establish at once (≈0.2 s instead of the
	// 1–2 s before GoBGP's first dial). Nothing listens while no peer is
	// configured: the embedded server runs only while there are peers, so
	// another BGP daemon can use the port on nodes Herald does not peer from.
	ListenPort int32
	// ListenAddresses are the local addresses to listen on; empty = all
	// (0.0.0.0 and ::).
	ListenAddresses []netip.Addr
	// Registerer receives the herald_bgp_* metrics; nil = no metrics.
	Registerer prometheus.Registerer
	// LimitHoldDown is how long a peer that sent more than its receive
	// limit stays down the first time (doubling on each repeat, at most
	// 20×); 0 = 30 s.
	LimitHoldDown time.Duration
}

// Speaker is an embedded BGP speaker. Its methods are safe for concurrent use.
type Speaker struct {
	log     *slog.Logger
	srv     *server.BgpServer
	tracker *sentTracker
	secrets *secrets
	metrics *collector
	reg     prometheus.Registerer
	opts    Options

	// resolve finds a next hop of the other family; a field so tests on
	// loopback can replace the kernel lookup.
	resolve func(p Peer, want4 bool) (netip.Addr, error)

	mu        sync.Mutex
	peers     map[string]*peerState // by Peer.Name
	routes    map[netip.Prefix][]Route
	nextID    int
	nextGroup int
	closed    bool
}

type peerState struct {
	cfg Peer
	id  int // names this peer's GoBGP policy objects
	// Next hops set by the export policy; zero = GoBGP's default (the
	// session's local address), valid only for the session's own family.
	nh4, nh6   netip.Addr
	can4, can6 bool // whether routes of the family can be sent at all
	warnings   []string
	groups     map[string]*group       // by attrKey
	in         map[netip.Prefix]*group // the prefixes the policy accepts
	up         bool                    // the session is (or last was) Established
	// limited: the peer sent more than its receive limit and is held down
	// until retry fires; limitHits counts how often (carried over when the
	// neighbour is re-created, so the hold-down keeps growing).
	limited   bool
	limitHits int
	retry     *time.Timer
}

// New makes a speaker with no peers and no routes; its embedded GoBGP server
// starts with the first peer and stops when the last one is removed. Run one
// Speaker per process: GoBGP keeps its route-selection options in package
// variables that every server's start writes.
func New(opts Options) (*Speaker, error) {
	if !opts.RouterID.Is4() {
		return nil, fmt.Errorf("router ID %s: must be an IPv4 address", opts.RouterID)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	port := opts.ListenPort
	if port == 0 {
		port = 179
	}
	s := &Speaker{
		log:     log,
		tracker: newSentTracker(),
		secrets: &secrets{},
		resolve: resolveNextHop,
		peers:   map[string]*peerState{},
		routes:  map[netip.Prefix][]Route{},
		reg:     opts.Registerer,
	}
	s.opts.ListenPort = port
	s.opts.ListenAddresses = opts.ListenAddresses
	s.opts.RouterID = opts.RouterID
	s.opts.LimitHoldDown = cmp.Or(opts.LimitHoldDown, 30*time.Second)
	if opts.Registerer != nil {
		s.metrics = &collector{s: s}
		if err := opts.Registerer.Register(s.metrics); err != nil {
			return nil, fmt.Errorf("start BGP speaker: %w", err)
		}
	}
	return s, nil
}

// Warning is a setting the speaker could not honour; everything else in the
// same call was applied.
type Warning struct {
	Peer    string
	Prefix  netip.Prefix // zero for peer-level warnings
	Message string
}

// Warnings is returned (as the error) by SetPeers and SetRoutes when they
// applied everything they could but some settings had no effect, e.g. a
// localPref for an eBGP peer. Use errors.As to tell it from a failure.
type Warnings []Warning

func (w Warnings) Error() string {
	parts := make([]string, 0, len(w))
	for _, x := range w {
		if x.Prefix.IsValid() {
			parts = append(parts, fmt.Sprintf("peer %q, prefix %s: %s", x.Peer, x.Prefix, x.Message))
		} else {
			parts = append(parts, fmt.Sprintf("peer %q: %s", x.Peer, x.Message))
		}
	}
	return strings.Join(parts, "; ")
}

func warningsErr(w Warnings) error {
	if len(w) == 0 {
		return nil
	}
	return w
}

var errClosed = errors.New("bgp speaker is shut down")

// startServer starts the embedded GoBGP server and announces the routes set
// so far (the peers' policies then decide who gets them).
func (s *Speaker) startServer() error {
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelDebug) // filtering happens in gobgpHandler
	s.secrets.quietStop.Store(false)
	srv := server.NewBgpServer(server.LoggerOption(slog.New(newGoBGPHandler(s.log.Handler(), s.tracker, s.secrets)), lvl))
	go srv.Serve()
	s.srv = srv
	ctx := context.Background()
	g := &api.Global{
		// Every peer sets its own local AS (Peer.MyASN); the global AS only
		// names the speaker and is never sent.
		Asn:        64512,
		RouterId:   s.opts.RouterID.String(),
		ListenPort: s.opts.ListenPort,
	}
	for _, a := range s.opts.ListenAddresses {
		g.ListenAddresses = append(g.ListenAddresses, a.String())
	}
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: g})
	if err == nil {
		err = s.installBasePolicies(ctx)
	}
	if err == nil {
		err = srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.onPeerEvent}, server.WatchPeer())
	}
	if err == nil && len(s.routes) > 0 {
		paths := make([]*apiutil.Path, 0, len(s.routes))
		for p := range s.routes {
			r := Route{Prefix: p}
			paths = append(paths, r.apiPath())
		}
		_, err = srv.AddPath(apiutil.AddPathRequest{Paths: paths})
	}
	if err != nil {
		srv.Stop()
		s.srv = nil
		if s.opts.ListenPort > 0 {
			return fmt.Errorf("start BGP server (listening on port %d): %w", s.opts.ListenPort, err)
		}
		return fmt.Errorf("start BGP server: %w", err)
	}
	s.log.Info("BGP server started", "port", s.opts.ListenPort)
	return nil
}

func (s *Speaker) stopServer() {
	s.srv.Stop()
	s.srv = nil
	s.log.Info("BGP server stopped", "reason", "no peers")
}

// SetPeers makes the configured neighbours exactly peers. New peers are
// added, removed ones deleted (their session closes with a Cease), changed
// ones updated; the sessions of unchanged peers are not touched. A change of
// address, ASNs, password, source, port, multihop or graceful restart resets
// that one session; a timer change does too (hold time is negotiated in
// OPEN); a BFD change is applied live; a next-hop change only re-sends that
// peer's routes.
func (s *Speaker) SetPeers(peers []Peer) error {
	desired := make(map[string]Peer, len(peers))
	byAddr := map[netip.Addr]string{}
	var errs []error
	for _, p := range peers {
		p.Address = p.Address.Unmap()
		if err := p.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := desired[p.Name]; dup {
			errs = append(errs, fmt.Errorf("peer %q: duplicate name", p.Name))
			continue
		}
		if other, dup := byAddr[p.Address]; dup {
			errs = append(errs, fmt.Errorf("peer %q: address %s already used by peer %q", p.Name, p.Address, other))
			continue
		}
		byAddr[p.Address] = p.Name
		desired[p.Name] = p
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	ctx := context.Background()
	if len(desired) > 0 && s.srv == nil {
		if err := s.startServer(); err != nil {
			return err
		}
	}
	if s.srv == nil {
		return nil
	}
	defer func() {
		if len(s.peers) == 0 && s.srv != nil {
			s.stopServer()
		}
	}()
	var pw []string
	for _, p := range desired {
		pw = append(pw, p.Password)
	}
	for _, ps := range s.peers {
		pw = append(pw, ps.cfg.Password) // still needed while the old session is torn down
	}
	s.secrets.set(pw)
	defer func() {
		var now []string
		for _, ps := range s.peers {
			now = append(now, ps.cfg.Password)
		}
		s.secrets.set(now)
	}()

	for _, name := range sortedKeys(s.peers) {
		ps := s.peers[name]
		if want, ok := desired[name]; ok && want.Address == ps.cfg.Address {
			continue
		}
		if err := s.removePeer(ctx, ps); err != nil {
			return err
		}
	}
	var warns Warnings
	for _, name := range sortedKeys(desired) {
		want := desired[name]
		var err error
		var w []string
		if ps, ok := s.peers[name]; ok {
			w, err = s.updatePeer(ctx, ps, want)
		} else {
			w, err = s.addPeer(ctx, want)
		}
		if err != nil {
			return err
		}
		for _, m := range w {
			warns = append(warns, Warning{Peer: name, Message: m})
		}
	}
	return warningsErr(warns)
}

// exportPlan decides next hops and which families can be sent to p.
func (s *Speaker) exportPlan(p Peer) (nh4, nh6 netip.Addr, can4, can6 bool, warns []string) {
	plan := func(explicit netip.Addr, want4 bool) (netip.Addr, bool) {
		if explicit.IsValid() {
			return explicit, true
		}
		if p.isIPv4() == want4 {
			return netip.Addr{}, true
		}
		nh, err := s.resolve(p, want4)
		if err != nil {
			fam := "IPv6"
			if want4 {
				fam = "IPv4"
			}
			warns = append(warns, fmt.Sprintf("%s routes are not sent: no next hop: %v", fam, err))
			return netip.Addr{}, false
		}
		return nh, true
	}
	nh4, can4 = plan(p.NextHopV4, true)
	nh6, can6 = plan(p.NextHopV6, false)
	return nh4, nh6, can4, can6, warns
}

func (s *Speaker) addPeer(ctx context.Context, p Peer) ([]string, error) {
	s.nextID++
	ps := &peerState{cfg: p, id: s.nextID}
	var warns []string
	ps.nh4, ps.nh6, ps.can4, ps.can6, warns = s.exportPlan(p)
	warns = append(warns, p.bfdWarnings()...)
	ps.warnings = warns
	if err := s.createExport(ctx, ps, ps.view(s.routes)); err != nil {
		return nil, err
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p.apiPeer()}); err != nil {
		_ = s.deleteExport(ctx, ps)
		return nil, fmt.Errorf("peer %q: add neighbor %s: %w", p.Name, p.Address, err)
	}
	if err := s.md5Applied(ctx, p); err != nil {
		_ = s.deleteExport(ctx, ps)
		return nil, err
	}
	s.peers[p.Name] = ps
	s.log.Info("BGP peer added", "peer", p.Name, "address", p.Address, "asn", p.ASN, "myASN", p.MyASN,
		"bfd", p.BFD != nil, "gracefulRestart", p.GracefulRestart, "md5", p.Password != "")
	for _, w := range warns {
		s.log.Warn("BGP peer setting not honoured", "peer", p.Name, "reason", w)
	}
	return warns, nil
}

// md5Applied checks that GoBGP could put p's TCP MD5 key on the listening
// socket. GoBGP only logs that failure, and the listener would then accept
// the peer's connection unsigned; here it is an error and the neighbour is
// deleted again: a configured password never means a plaintext session.
func (s *Speaker) md5Applied(ctx context.Context, p Peer) error {
	msg, failed := s.secrets.takeMD5Failure(p.Address.String())
	if !failed || p.Password == "" {
		return nil
	}
	_ = s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.String()})
	return fmt.Errorf("peer %q: TCP MD5 password cannot be set on the listening socket (%s): session not opened", p.Name, msg)
}

func (s *Speaker) removePeer(ctx context.Context, ps *peerState) error {
	if ps.retry != nil {
		ps.retry.Stop()
	}
	addr := ps.cfg.Address.String()
	if ps.cfg.Password != "" {
		// GoBGP's DeletePeer leaves the MD5 key for this address on the
		// listening socket, which would break a later peer at the same
		// address without (or with another) password. An update that
		// drops the password makes GoBGP remove the key first.
		p := ps.cfg
		p.Password = ""
		if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: p.apiPeer()}); err != nil {
			return fmt.Errorf("peer %q: clear password before delete: %w", ps.cfg.Name, err)
		}
	}
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
		return fmt.Errorf("peer %q: delete neighbor %s: %w", ps.cfg.Name, addr, err)
	}
	if err := s.deleteExport(ctx, ps); err != nil {
		return err
	}
	delete(s.peers, ps.cfg.Name)
	s.log.Info("BGP peer removed", "peer", ps.cfg.Name, "address", ps.cfg.Address)
	return nil
}

func (s *Speaker) updatePeer(ctx context.Context, ps *peerState, want Peer) ([]string, error) {
	old := ps.cfg
	nh4, nh6, can4, can6, warns := s.exportPlan(want)
	warns = append(warns, want.bfdWarnings()...)
	ps.warnings = warns
	sessionReset := false
	if !sessionEqual(old, want) {
		if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: want.apiPeer()}); err != nil {
			return nil, fmt.Errorf("peer %q: update neighbor: %w", want.Name, err)
		}
		if err := s.md5Applied(ctx, want); err != nil {
			_ = s.deleteExport(ctx, ps)
			delete(s.peers, want.Name)
			return nil, err
		}
		onlyLive := old
		onlyLive.BFD = want.BFD
		onlyLive.NextHopV4, onlyLive.NextHopV6 = want.NextHopV4, want.NextHopV6
		if !sessionEqual(onlyLive, want) {
			// GoBGP re-creates the session itself for most changes but keeps
			// it for timer changes, which only take effect in a new OPEN.
			if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: want.Address.String(), Communication: "configuration changed"}); err != nil {
				return nil, fmt.Errorf("peer %q: reset after update: %w", want.Name, err)
			}
			sessionReset = true
		}
		s.log.Info("BGP peer updated", "peer", want.Name, "address", want.Address, "sessionReset", sessionReset)
	}
	ps.cfg = want
	if nh4 == ps.nh4 && nh6 == ps.nh6 && can4 == ps.can4 && can6 == ps.can6 {
		return warns, nil
	}
	ps.nh4, ps.nh6, ps.can4, ps.can6 = nh4, nh6, can4, can6
	if err := s.deleteExportPolicy(ctx, ps); err != nil {
		return nil, err
	}
	if err := s.addExportPolicy(ctx, ps); err != nil {
		return nil, err
	}
	view := ps.view(s.routes)
	var del []netip.Prefix
	for p := range ps.in {
		if _, ok := view[p]; !ok {
			del = append(del, p)
		}
	}
	if err := s.place(ctx, ps, view); err != nil {
		return nil, err
	}
	if err := s.unplace(ctx, ps, del); err != nil {
		return nil, err
	}
	if !sessionReset {
		if err := s.softResetOut(ctx, ps); err != nil {
			return nil, err
		}
	}
	for _, w := range warns {
		s.log.Warn("BGP peer setting not honoured", "peer", want.Name, "reason", w)
	}
	return warns, nil
}

func (s *Speaker) onPeerEvent(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev == nil || ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := ev.Peer.State
	name := ev.Peer.Conf.NeighborAddress.String()
	recreate := false
	s.mu.Lock()
	var peer *peerState
	for _, ps := range s.peers {
		if ps.cfg.Address == ev.Peer.Conf.NeighborAddress.Unmap() {
			name, peer = ps.cfg.Name, ps
		}
	}
	var holdDown time.Duration
	var limit uint32
	var hits int
	if peer != nil && !s.closed {
		switch {
		case st.SessionState == bgp.BGP_FSM_ESTABLISHED:
			peer.up, peer.limited = true, false
		case st.AdminState == api.PeerState_ADMIN_STATE_PFX_CT && peer.up:
			// GoBGP sent a Cease (maximum prefixes) and holds the
			// neighbour administratively down; its paths are dropped.
			// (peer.up: events of a deleted neighbour at the same address
			// can arrive after its re-created successor's.)
			peer.up, peer.limited = false, true
			peer.limitHits++
			holdDown = receiveLimitHoldDown(s.opts.LimitHoldDown, peer.limitHits)
			limit, hits = peer.cfg.maxReceived(), peer.limitHits
			peer.retry = time.AfterFunc(holdDown, func() { s.recreate(peer, true) })
		case st.SessionState == bgp.BGP_FSM_IDLE && peer.up:
			peer.up = false
			recreate = droppedByPeer(st.DisconnectReason)
		}
	}
	s.mu.Unlock()
	attrs := []any{"peer", name, "address", ev.Peer.Conf.NeighborAddress, "state", fsmName(st.SessionState)}
	if st.SessionState != bgp.BGP_FSM_ESTABLISHED && st.DisconnectReason != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
		attrs = append(attrs, "reason", strings.TrimPrefix(st.DisconnectReason.String(), "DISCONNECT_REASON_"))
	}
	if holdDown > 0 {
		s.log.Error("BGP peer sent more paths than the receive limit; session closed and held down (filter what the router sends to this node: Herald uses none of it)",
			"peer", name, "address", ev.Peer.Conf.NeighborAddress, "limitPerFamily", limit, "retryIn", holdDown.String(), "times", hits)
	}
	s.log.Info("BGP session state changed", attrs...)
	if recreate {
		go s.recreate(peer, false)
	}
}

// receiveLimitHoldDown is how long a peer that exceeded its receive limit
// for the n-th time stays down: first, doubling each time, at most 20 ×
// first (30 s … 10 min by default). Each retry costs at most the limit's
// worth of paths again.
func receiveLimitHoldDown(first time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < 20*first; i++ {
		d *= 2
	}
	return min(d, 20*first)
}

// droppedByPeer reports whether a session ended because of the router or
// the network (a Cease or other NOTIFICATION from the router, a TCP error,
// the hold timer), not by this speaker or a graceful restart.
func droppedByPeer(r api.PeerState_DisconnectReason) bool {
	switch r {
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED, api.PeerState_DISCONNECT_REASON_READ_FAILED,
		api.PeerState_DISCONNECT_REASON_WRITE_FAILED, api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED:
		return true
	}
	return false
}

// recreate deletes and re-adds the neighbour of a session the router (or
// the network) dropped. GoBGP v4.8 keeps such a neighbour Idle for 5 s
// (holdtimeIdle in fsm.go; IdleHoldTimeAfterReset only applies to resets
// this side sends) and closes every connection the router opens meanwhile,
// so a restarted router would wait that long for this node's routes. A new
// neighbour starts in Active at once and accepts the router's connection.
func (s *Speaker) recreate(ps *peerState, afterLimit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.srv == nil || s.peers[ps.cfg.Name] != ps || ps.up || ps.limited != afterLimit {
		return
	}
	ctx := context.Background()
	cfg := ps.cfg
	if err := s.removePeer(ctx, ps); err != nil {
		s.log.Warn("BGP peer re-create after session drop", "peer", cfg.Name, "error", err.Error())
		return
	}
	if _, err := s.addPeer(ctx, cfg); err != nil {
		s.log.Error("BGP peer re-create after session drop", "peer", cfg.Name, "error", err.Error())
		return
	}
	if afterLimit {
		s.peers[cfg.Name].limitHits = ps.limitHits
		s.log.Info("BGP peer re-enabled after its receive-limit hold-down", "peer", cfg.Name)
		return
	}
	s.log.Info("BGP peer re-created after the router dropped the session", "peer", cfg.Name)
}

var fsmNames = [...]string{bgp.BGP_FSM_IDLE: "Idle", bgp.BGP_FSM_CONNECT: "Connect", bgp.BGP_FSM_ACTIVE: "Active",
	bgp.BGP_FSM_OPENSENT: "OpenSent", bgp.BGP_FSM_OPENCONFIRM: "OpenConfirm", bgp.BGP_FSM_ESTABLISHED: "Established"}

func fsmName(st bgp.FSMState) string {
	if int(st) >= 0 && int(st) < len(fsmNames) {
		return fsmNames[st]
	}
	return "Unknown"
}

func stateName(st api.PeerState_SessionState) string {
	switch st {
	case api.PeerState_SESSION_STATE_IDLE:
		return "Idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "Connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "Active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "OpenSent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "OpenConfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "Established"
	}
	return "Unknown"
}

func bfdName(st api.BfdSessionState) string {
	switch st {
	case api.BfdSessionState_BFD_SESSION_STATE_UP:
		return "Up"
	case api.BfdSessionState_BFD_SESSION_STATE_DOWN:
		return "Down"
	case api.BfdSessionState_BFD_SESSION_STATE_INIT:
		return "Init"
	case api.BfdSessionState_BFD_SESSION_STATE_ADMIN_DOWN:
		return "AdminDown"
	}
	return "Unknown"
}

// Session is the state of one configured peer.
type Session struct {
	Name    string
	Address netip.Addr
	// State is the BGP FSM state: Idle, Connect, Active, OpenSent,
	// OpenConfirm or Established.
	State string
	// BFD is "" when the peer has no BFD, else Up, Down, Init or AdminDown.
	BFD string
	// PrefixesV4/V6 count the routes currently advertised on the session.
	PrefixesV4, PrefixesV6 int
	// Received counts the paths the peer sent that GoBGP holds (all
	// families, before the import policy rejects them).
	Received int
	// HeldDown: the peer sent more than its receive limit (Peer.MaxReceived)
	// and the session stays closed until a retry; LimitExceeded counts how
	// often that happened since the peer was configured.
	HeldDown      bool
	LimitExceeded int
	// UpdatesSent counts UPDATE messages sent since the session came up.
	UpdatesSent uint64
	// Warnings are the peer's settings that have no effect (see Warning).
	Warnings []string
}

// Established reports whether the BGP session is up.
func (x Session) Established() bool { return x.State == "Established" }

// Sessions returns the state of every configured peer, sorted by name.
func (s *Speaker) Sessions() []Session {
	s.mu.Lock()
	byAddr := make(map[netip.Addr]*peerState, len(s.peers))
	held, hits := map[*peerState]bool{}, map[*peerState]int{}
	for _, ps := range s.peers {
		byAddr[ps.cfg.Address] = ps
		held[ps], hits[ps] = ps.limited, ps.limitHits
	}
	closed := s.closed
	srv := s.srv
	s.mu.Unlock()
	if closed || srv == nil {
		return nil
	}
	var out []Session
	_ = srv.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		if err != nil {
			return
		}
		ps, ok := byAddr[addr.Unmap()]
		if !ok {
			return
		}
		x := Session{Name: ps.cfg.Name, Address: ps.cfg.Address, State: stateName(p.GetState().GetSessionState()),
			Warnings: slices.Clone(ps.warnings), UpdatesSent: p.GetState().GetMessages().GetSent().GetUpdate(),
			HeldDown: held[ps], LimitExceeded: hits[ps]}
		if ps.cfg.BFD != nil {
			x.BFD = bfdName(p.GetState().GetBfdState().GetSessionState())
		}
		for _, af := range p.GetAfiSafis() {
			st := af.GetState()
			x.Received += int(st.GetReceived())
			switch st.GetFamily().GetAfi() {
			case api.Family_AFI_IP:
				x.PrefixesV4 = int(st.GetAdvertised())
			case api.Family_AFI_IP6:
				x.PrefixesV6 = int(st.GetAdvertised())
			}
		}
		out = append(out, x)
	})
	slices.SortFunc(out, func(a, b Session) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Shutdown withdraws every route from every peer with explicit withdrawals,
// waits until GoBGP has written them to each established session (or ctx
// ends, or the session drops), then closes all sessions with a Cease
// NOTIFICATION and stops the server. Because the routes are withdrawn first,
// a peer in graceful-restart helper mode is left with nothing stale to
// retain: Shutdown is for a node that stops announcing. For a restart that
// should keep traffic flowing through the gap, use Detach.
func (s *Speaker) Shutdown(ctx context.Context) error {
	return s.stop(ctx, false)
}

// Detach closes the sessions for a speaker restart. Peers with
// GracefulRestart set (and a router that negotiated it) keep this node's
// routes, marked stale, for the restart time (120 s) and drop them unless
// the new process re-announces them; their sessions are closed without a
// NOTIFICATION, which is what makes the router enter graceful-restart helper
// mode. Peers without graceful restart get explicit withdrawals first, as
// in Shutdown. The new process should call SetRoutes before SetPeers: the
// first UPDATEs on the new sessions then carry the routes, and the
// End-of-RIB that follows them does not make the router flush them.
func (s *Speaker) Detach(ctx context.Context) error {
	return s.stop(ctx, true)
}

func (s *Speaker) stop(ctx context.Context, keepForGR bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	defer func() {
		if s.metrics != nil {
			s.reg.Unregister(s.metrics)
		}
	}()
	if s.srv == nil {
		s.log.Info("BGP speaker stopped", "peers", 0, "routes", len(s.routes))
		return nil
	}

	established := s.establishedPeers(ctx)
	// What each established peer holds from us and must see withdrawn.
	expect := map[netip.Addr]map[netip.Prefix]bool{}
	var withdrawErr error
	s.tracker.arm()
	if keepForGR {
		for _, ps := range s.peers {
			if ps.cfg.GracefulRestart || len(ps.in) == 0 {
				continue
			}
			if established[ps.cfg.Address] {
				expect[ps.cfg.Address] = ps.exported()
			}
			if err := s.unplace(ctx, ps, sortedPrefixes(ps.exported())); err != nil {
				withdrawErr = err
				continue
			}
			if err := s.softResetOut(ctx, ps); err != nil {
				withdrawErr = err
			}
		}
	} else {
		for _, ps := range s.peers {
			if established[ps.cfg.Address] && len(ps.in) > 0 {
				expect[ps.cfg.Address] = ps.exported()
			}
		}
		if len(s.routes) > 0 {
			paths := make([]*apiutil.Path, 0, len(s.routes))
			for p := range s.routes {
				r := Route{Prefix: p}
				paths = append(paths, r.apiPath())
			}
			withdrawErr = s.deletePaths(paths)
			for p := range s.routes {
				s.log.Info("BGP route withdrawn", "prefix", p, "reason", "shutdown")
			}
		}
	}
	waitErr := s.waitWithdrawn(ctx, expect)

	var stopErr error
	if !keepForGR {
		s.closeSessions(ctx, established)
	}
	if keepForGR {
		stopErr = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{AllowGracefulRestart: true})
		// Stop repeats StopBgp (without graceful restart) before stopping
		// BFD; that second call finds the server stopped and logs an error
		// that means nothing here.
		s.secrets.quietStop.Store(true)
	}
	s.srv.Stop()
	s.log.Info("BGP speaker stopped", "peers", len(s.peers), "routes", len(s.routes), "gracefulRestart", keepForGR)
	return errors.Join(withdrawErr, waitErr, stopErr)
}

// closeSessions sends each established peer a Cease NOTIFICATION and waits
// (up to a second, or until ctx ends) until none is Established any more.
// StopBgp sends the NOTIFICATIONs from the sessions' own goroutines and
// returns before they are written: a process exiting right after Stop could
// close the sockets first, and the router would see a bare TCP close.
func (s *Speaker) closeSessions(ctx context.Context, established map[netip.Addr]bool) {
	if len(established) == 0 {
		return
	}
	for addr := range established {
		if err := s.srv.ShutdownPeer(ctx, &api.ShutdownPeerRequest{Address: addr.String(), Communication: "speaker shutting down"}); err != nil {
			s.log.Warn("BGP session close", "peer", addr, "error", err.Error())
		}
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil && len(s.establishedPeers(ctx)) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Speaker) establishedPeers(ctx context.Context) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetState().GetSessionState() != api.PeerState_SESSION_STATE_ESTABLISHED {
			return
		}
		if a, err := netip.ParseAddr(p.GetConf().GetNeighborAddress()); err == nil {
			out[a.Unmap()] = true
		}
	})
	return out
}

// waitWithdrawn blocks until every expected withdrawal was written to its
// peer's socket, the peer left Established (the router then drops our
// routes anyway), or ctx ends.
func (s *Speaker) waitWithdrawn(ctx context.Context, expect map[netip.Addr]map[netip.Prefix]bool) error {
	if len(expect) == 0 {
		return nil
	}
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		var pending []string
		var changed <-chan struct{}
		for addr, want := range expect {
			missing, ch := s.tracker.missing(addr, want)
			changed = ch
			if len(missing) == 0 {
				delete(expect, addr)
				continue
			}
			pending = append(pending, fmt.Sprintf("%s (%d prefixes)", addr, len(missing)))
		}
		if len(expect) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("withdrawals not confirmed sent to %s: %w", strings.Join(pending, ", "), ctx.Err())
		case <-changed:
		case <-poll.C:
			up := s.establishedPeers(ctx)
			for addr := range expect {
				if !up[addr] {
					delete(expect, addr)
				}
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
