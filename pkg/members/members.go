// Package members tells a speaker which speakers are alive, using
// hashicorp/memberlist (SWIM gossip with the Lifeguard extensions) among the
// speakers.
//
// Layer-2 owner election hashes each address over the alive, eligible nodes
// and every speaker must reach the same answer, so liveness has to converge
// fast and the same way everywhere: a speaker that leaves gracefully is
// dropped by its peers within a millisecond or two (it tells them directly),
// a killed or cut-off speaker within about a second (see profile.go and
// docs/performance.md), and a speaker that comes back — restarted, or after a
// partition heals — is alive again on every peer within a couple of seconds.
//
// A partitioned speaker sees every peer die and its peers see it die: each
// side computes owners from its own alive set, so both may claim an address
// until the partition heals. That is inherent to liveness without a quorum;
// the layer-2 glue decides what to do about it.
package members

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultPort is memberlist's customary port, used for TCP and UDP.
const DefaultPort = 7946

// Options configures a Members.
type Options struct {
	// NodeName is the Kubernetes node name; it is the member's name.
	NodeName string
	// BindAddr is the address to listen on and advertise: the node's
	// InternalIP, which is where peers find it (SetPeers).
	BindAddr netip.Addr
	// Port is the TCP and UDP port on BindAddr and on every peer; 0 means
	// DefaultPort.
	Port int
	// SecretKey, when set, encrypts and authenticates all gossip with AES-GCM
	// (16, 24 or 32 bytes for AES-128/192/256); members without the same key
	// cannot join and their packets are dropped.
	SecretKey []byte
	// Insecure allows running without SecretKey: gossip and leave notices
	// are then neither encrypted nor authenticated, so anyone who can send
	// UDP to Port can forge them. New refuses an empty SecretKey without it.
	Insecure bool
	// Logger receives structured logs (key "node" is this member); nil means
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the herald_memberlist_* metrics; nil means none.
	Registerer prometheus.Registerer

	// wrapTransport lets tests put a fault-injecting layer (a network cut)
	// between memberlist and its sockets.
	wrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// Members is this speaker's membership in the cluster of speakers.
type Members struct {
	name     string
	instance uint64
	log      *slog.Logger
	ml       *memberlist.Memberlist
	joiner   *joiner
	met      *metrics
	changes  chan struct{}

	mu   sync.Mutex // guards view and unreached
	view view
	// unreached holds the peers whose latest probe by this member failed;
	// a successful probe or a membership event clears the mark.
	unreached map[string]bool

	life   sync.Mutex // serializes Leave and Close
	left   bool
	closed bool
}

// New starts a member listening on opts.BindAddr. It joins nobody until
// SetPeers names some peers.
func New(opts Options) (*Members, error) {
	if opts.NodeName == "" {
		return nil, errors.New("members: node name is empty")
	}
	if errs := validation.IsDNS1123Subdomain(opts.NodeName); len(errs) > 0 {
		// Peers reject members whose name is not a node name (see NotifyAlive).
		return nil, fmt.Errorf("members: node name %q: %s", opts.NodeName, strings.Join(errs, "; "))
	}
	if !opts.BindAddr.IsValid() {
		return nil, fmt.Errorf("members: node %s: no bind address", opts.NodeName)
	}
	bind := opts.BindAddr.Unmap()
	port := opts.Port
	if port == 0 {
		port = DefaultPort
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("members: node %s: port %d out of range", opts.NodeName, opts.Port)
	}
	if len(opts.SecretKey) == 0 && !opts.Insecure {
		return nil, fmt.Errorf("members: node %s: no secret key: gossip would be unauthenticated (set Insecure to allow that)", opts.NodeName)
	}
	switch len(opts.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return nil, fmt.Errorf("members: node %s: secret key is %d bytes, want 16, 24 or 32", opts.NodeName, len(opts.SecretKey))
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", opts.NodeName)

	var inst [8]byte
	var instance uint64
	for instance == 0 { // 0 means "no instance" in view
		if _, err := rand.Read(inst[:]); err != nil {
			return nil, fmt.Errorf("members: node %s: instance id: %w", opts.NodeName, err)
		}
		instance = binary.BigEndian.Uint64(inst[:])
	}

	m := &Members{
		name:      opts.NodeName,
		instance:  instance,
		log:       log,
		changes:   make(chan struct{}, 1),
		view:      newView(),
		unreached: map[string]bool{},
	}
	// Memberlist calls the hooks from its own goroutines as soon as it is
	// created, so everything they touch exists before.
	m.met = newMetrics()
	m.joiner = newJoiner(m.name, uint16(port), m.joinAddr, m.isAlive, log, m.met.countJoin)

	mlLog := newMemberlistLogger(log, m.probeFailed)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{bind.String()},
		BindPort:  port,
		Logger:    mlLog,
	})
	if err != nil {
		m.joiner.stop()
		return nil, fmt.Errorf("members: node %s: listen on %s: %w", opts.NodeName,
			netip.AddrPortFrom(bind, uint16(port)), err)
	}
	var transport memberlist.NodeAwareTransport = nt
	if opts.wrapTransport != nil {
		transport = opts.wrapTransport(nt)
	}

	conf := memberlist.DefaultLANConfig()
	conf.Name = opts.NodeName
	conf.BindAddr = bind.String()
	conf.BindPort = port
	conf.AdvertiseAddr = bind.String()
	conf.AdvertisePort = port
	conf.Transport = transport
	conf.Logger = mlLog
	conf.SecretKey = opts.SecretKey
	h := &hooks{m: m}
	conf.Delegate = h
	conf.Events = h
	conf.Conflict = h
	conf.Alive = h
	conf.Ping = h
	tune(conf)

	ml, err := memberlist.Create(conf)
	if err != nil {
		m.joiner.stop()
		_ = transport.Shutdown()
		return nil, fmt.Errorf("members: node %s: start memberlist: %w", opts.NodeName, err)
	}
	m.ml = ml
	if err := m.met.register(opts.Registerer, func() float64 { return float64(ml.GetHealthScore()) }); err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("members: node %s: %w", opts.NodeName, err)
	}
	log.Info("memberlist started", "address", netip.AddrPortFrom(bind, uint16(port)),
		"encrypted", len(opts.SecretKey) > 0, "instance", fmt.Sprintf("%016x", instance))
	return m, nil
}

// SetPeers sets the peers this member should be in a cluster with, from the
// Node objects (name -> InternalIP); its own name is ignored. Peers that are
// not alive are joined in the background, retried with backoff while they
// fail: at start, after a peer restarts, and after a partition heals. It
// does not block. Members that are alive but not listed stay in Alive: the
// caller intersects with the nodes it knows.
func (m *Members) SetPeers(addrs map[string]netip.Addr) {
	m.joiner.setPeers(addrs)
}

// Alive returns the names of the members this member considers alive,
// itself included until it leaves. A suspect member counts as alive until it
// is convicted, so one lost probe never moves an address.
func (m *Members) Alive() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view.names()
}

// Reachable returns the other members this member reaches right now:
// alive, and its latest probe of them did not fail. Unlike Alive it drops a
// peer at the first failed probe, long before conviction, so it tells early
// that this member may itself be cut off; a peer counts again at the next
// probe that gets through (each peer is probed every N-1 probe intervals).
// It is for that doubt only; elections use Alive.
func (m *Members) Reachable() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]bool, len(m.view.alive))
	for n := range m.view.alive {
		if n != m.name && !m.unreached[n] {
			out[n] = true
		}
	}
	return out
}

// Rejoin exchanges full state with every desired peer now, alive or not, in
// parallel, and returns when done or after timeout (the exchanges then
// finish in the background). After this member was cut off, the others may
// still hold it dead; the exchange makes it refute that at once instead of
// when a peer's backoff next retries. It does nothing after Leave or Close.
func (m *Members) Rejoin(timeout time.Duration) {
	m.joiner.joinAll(timeout)
}

// probeFailed records that this member's probe of peer failed (memberlist
// is about to suspect it).
func (m *Members) probeFailed(peer string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.view.alive[peer]; ok {
		m.unreached[peer] = true
	}
}

// Changes delivers a notification (coalesced: one pending at most) after the
// set returned by Alive changes. Read Alive after receiving.
func (m *Members) Changes() <-chan struct{} { return m.changes }

// Leave leaves the cluster gracefully (the SIGTERM path): the peers drop this
// member at once instead of after failure detection. It tells every alive
// peer directly, then broadcasts memberlist's leave, waiting up to timeout
// for it to go out (0 waits indefinitely). After Leave only Close is useful.
func (m *Members) Leave(timeout time.Duration) error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.closed {
		return fmt.Errorf("members: node %s: leave after close", m.name)
	}
	if m.left {
		return nil
	}
	m.left = true
	// No new joins: they would announce us again. One in flight is harmless
	// (peers already know our incarnation; the notice names this process)
	// and is not waited for, so the notices go out at once.
	m.joiner.halt()
	m.sendLeaveNotices()
	if err := m.ml.Leave(timeout); err != nil {
		return fmt.Errorf("members: node %s: leave: %w", m.name, err)
	}
	m.log.Info("left the memberlist cluster")
	return nil
}

// sendLeaveNotices tells every alive peer, in one datagram each, that this
// process is leaving. Memberlist's own leave would reach them only with the
// next gossip round (up to gossipInterval later); if a notice is lost, that
// round still removes us.
func (m *Members) sendLeaveNotices() {
	notice := encodeLeaveNotice(m.name, m.instance)
	for _, n := range m.ml.Members() {
		if n.Name == m.name {
			continue
		}
		if err := m.ml.SendBestEffort(n, notice); err != nil {
			m.log.Debug("cannot send leave notice", "peer", n.Name, "error", err)
		}
	}
}

// Close stops this member without leaving: to its peers it looks like a
// crash and is detected as one. Call Leave first for a graceful exit. Close
// may wait up to the join timeout for a join in flight.
func (m *Members) Close() error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.joiner.stop()
	err := m.ml.Shutdown()
	m.met.unregister()
	if err != nil {
		return fmt.Errorf("members: node %s: shutdown: %w", m.name, err)
	}
	return nil
}

func (m *Members) joinAddr(ap netip.AddrPort) error {
	n, err := m.ml.Join([]string{ap.String()})
	if err == nil && n == 0 {
		err = fmt.Errorf("no member reached at %s", ap)
	}
	return err
}

func (m *Members) isAlive(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.view.alive[name]
	return ok
}

// changed publishes a new alive set; m.mu must be held.
func (m *Members) changed() {
	m.met.members.Set(float64(len(m.view.alive)))
	select {
	case m.changes <- struct{}{}:
	default:
	}
	m.joiner.poke() // a member died: start rejoining it if it is desired
}

// hooks receives memberlist's callbacks. Memberlist calls the event methods
// with its node lock held, so they must not call back into memberlist; they
// only update the view under m.mu.
type hooks struct{ m *Members }

// NodeMeta implements memberlist.Delegate.
func (h *hooks) NodeMeta(limit int) []byte {
	b := encodeMeta(h.m.instance)
	if len(b) > limit {
		return nil
	}
	return b
}

// NotifyMsg implements memberlist.Delegate: the only user message is the
// leave notice.
func (h *hooks) NotifyMsg(b []byte) {
	name, instance, err := decodeLeaveNotice(b)
	if err != nil {
		h.m.log.Debug("dropping user message", "error", err)
		return
	}
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.view.notice(name, instance) {
		m.met.events.WithLabelValues(eventNotice).Inc()
		m.log.Info("member left", "peer", name, "via", "notice")
		m.changed()
		return
	}
	// A restarted member's predecessor, a notice after memberlist's own
	// leave, or a forgery: only the alive process's own notice counts.
	m.log.Debug("leave notice ignored: not from an alive member's process", "peer", name,
		"instance", fmt.Sprintf("%016x", instance))
}

// GetBroadcasts implements memberlist.Delegate; Herald gossips nothing of
// its own.
func (h *hooks) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate.
func (h *hooks) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (h *hooks) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin implements memberlist.EventDelegate.
func (h *hooks) NotifyJoin(n *memberlist.Node) { h.alive(n, eventJoin) }

// NotifyUpdate implements memberlist.EventDelegate. Herald's metadata only
// changes when a member restarted without being seen dead.
func (h *hooks) NotifyUpdate(n *memberlist.Node) { h.alive(n, eventUpdate) }

func (h *hooks) alive(n *memberlist.Node, event string) {
	instance, _ := decodeMeta(n.Meta)
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.met.events.WithLabelValues(event).Inc()
	delete(m.unreached, n.Name)
	if m.view.join(n.Name, instance) {
		m.log.Info("member alive", "peer", n.Name, "address", memberAddr(n))
		m.changed()
	}
}

// NotifyLeave implements memberlist.EventDelegate: the member was declared
// dead or left.
func (h *hooks) NotifyLeave(n *memberlist.Node) {
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.met.events.WithLabelValues(eventLeave).Inc()
	delete(m.unreached, n.Name)
	if m.view.leave(n.Name) {
		m.log.Info("member gone", "peer", n.Name, "address", memberAddr(n))
		m.changed()
	}
}

// AckPayload implements memberlist.PingDelegate; acks carry nothing extra.
func (h *hooks) AckPayload() []byte { return nil }

// NotifyPingComplete implements memberlist.PingDelegate: this member's
// direct probe of other was answered, so it is reachable again.
func (h *hooks) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.unreached, other.Name)
}

// NotifyConflict implements memberlist.ConflictDelegate: two processes claim
// the same name from different addresses. Memberlist keeps the one it knew;
// the other is ignored until the first is dead.
func (h *hooks) NotifyConflict(existing, other *memberlist.Node) {
	h.m.met.events.WithLabelValues(eventConflict).Inc()
	h.m.log.Warn("two speakers use the same node name", "peer", existing.Name,
		"address", memberAddr(existing), "other_address", memberAddr(other))
}

// NotifyAlive implements memberlist.AliveDelegate: memberlist asks before it
// admits or updates a member. Only what a Herald speaker sends passes: a
// Kubernetes node name, Herald's metadata, a usable unicast address. Without
// this, one malformed or forged datagram on an unencrypted cluster could add
// a member memberlist can never probe (so never convicts) and whose bogus
// protocol versions make every later join fail. It cannot stop a deliberate
// forgery of a well-formed member; only a SecretKey does.
func (h *hooks) NotifyAlive(n *memberlist.Node) error {
	err := validMember(n)
	if err != nil {
		h.m.met.events.WithLabelValues(eventRejected).Inc()
	}
	return err
}

func validMember(n *memberlist.Node) error {
	if errs := validation.IsDNS1123Subdomain(n.Name); len(errs) > 0 {
		return fmt.Errorf("name %q is not a node name", n.Name)
	}
	if _, ok := decodeMeta(n.Meta); !ok {
		return fmt.Errorf("member %s: metadata %x is not Herald's", n.Name, n.Meta)
	}
	a, ok := netip.AddrFromSlice(n.Addr)
	if a = a.Unmap(); !ok || a.IsUnspecified() || a.IsMulticast() || n.Port == 0 {
		return fmt.Errorf("member %s: unusable address %s", n.Name, memberAddr(n))
	}
	return nil
}

// memberAddr converts memberlist's net.IP and port at the library edge.
func memberAddr(n *memberlist.Node) string {
	a, ok := netip.AddrFromSlice(n.Addr)
	if !ok {
		return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	}
	return netip.AddrPortFrom(a.Unmap(), n.Port).String()
}
