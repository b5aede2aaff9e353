package bgp

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// gobgpHandler is the slog.Handler GoBGP logs through. It does three jobs:
//   - forwards GoBGP's records to the caller's handler at the caller's level,
//     tagged component=gobgp;
//   - redacts TCP MD5 passwords from any string it forwards;
//   - observes GoBGP's per-peer "sent update" debug record, which GoBGP emits
//     right after writing an UPDATE to the socket. That record is the only
//     signal GoBGP gives that a withdrawal actually left this host, and
//     Shutdown waits for it (see sentTracker).
type gobgpHandler struct {
	inner   slog.Handler
	tracker *sentTracker
	secrets *secrets
	peer    netip.Addr // set on the per-peer loggers GoBGP derives with Key=<address>
}

func newGoBGPHandler(inner slog.Handler, t *sentTracker, s *secrets) *gobgpHandler {
	return &gobgpHandler{inner: inner.WithAttrs([]slog.Attr{slog.String("component", "gobgp")}), tracker: t, secrets: s}
}

func (h *gobgpHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// Per-peer loggers must produce debug records so "sent update" is seen;
	// Handle drops what the caller's handler does not want.
	if h.peer.IsValid() && l >= slog.LevelDebug {
		return true
	}
	return h.inner.Enabled(ctx, l)
}

const (
	gobgpSentUpdateMsg = "sent update"
	// GoBGP only warns when it cannot put a peer's TCP MD5 key on its
	// listening socket; the listener would then accept that peer unsigned.
	gobgpMD5FailedMsg = "failed to set md5"
)

func (h *gobgpHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.peer.IsValid() && r.Message == gobgpSentUpdateMsg {
		h.tracker.observe(h.peer, &r)
	}
	if r.Message == gobgpMD5FailedMsg {
		var key, msg string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "Key":
				key = a.Value.String()
			case "Err":
				msg = a.Value.String()
			}
			return true
		})
		h.secrets.md5Failed(key, msg)
	}
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	if r.Message == "failed to stop BGP server" && h.secrets.quietStop.Load() {
		return nil
	}
	if h.secrets.empty() {
		return h.inner.Handle(ctx, r)
	}
	clean := slog.NewRecord(r.Time, r.Level, h.secrets.redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		clean.AddAttrs(h.secrets.redactAttr(a))
		return true
	})
	return h.inner.Handle(ctx, clean)
}

func (h *gobgpHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	clean := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		// GoBGP derives every peer's logger with Key=<neighbour address>.
		if a.Key == "Key" && a.Value.Kind() == slog.KindString {
			if addr, err := netip.ParseAddr(a.Value.String()); err == nil {
				n.peer = addr
			}
		}
		clean = append(clean, h.secrets.redactAttr(a))
	}
	n.inner = h.inner.WithAttrs(clean)
	return &n
}

func (h *gobgpHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.inner = h.inner.WithGroup(name)
	return &n
}

// secrets holds the peers' passwords so no log line can carry one (and a
// flag to drop one known-spurious GoBGP error, see Speaker.stop).
type secrets struct {
	list      atomic.Pointer[[]string]
	quietStop atomic.Bool

	mu     sync.Mutex
	failed map[string]string // neighbour address -> why its MD5 key could not be set
}

func (s *secrets) md5Failed(addr, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = map[string]string{}
	}
	if len(s.failed) < 1024 { // read and cleared right after each AddPeer/UpdatePeer
		s.failed[addr] = s.redact(msg)
	}
}

// takeMD5Failure returns (and forgets) why addr's MD5 key could not be set.
func (s *secrets) takeMD5Failure(addr string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, ok := s.failed[addr]
	delete(s.failed, addr)
	return msg, ok
}

func (s *secrets) set(pw []string) { s.list.Store(&pw) }

func (s *secrets) empty() bool {
	l := s.list.Load()
	return l == nil || len(*l) == 0
}

func (s *secrets) redact(v string) string {
	l := s.list.Load()
	if l == nil {
		return v
	}
	for _, pw := range *l {
		if pw != "" && strings.Contains(v, pw) {
			v = strings.ReplaceAll(v, pw, "[redacted]")
		}
	}
	return v
}

func (s *secrets) redactAttr(a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		return slog.String(a.Key, s.redact(a.Value.String()))
	case slog.KindGroup:
		g := a.Value.Group()
		out := make([]any, 0, len(g))
		for _, x := range g {
			out = append(out, s.redactAttr(x))
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny, slog.KindLogValuer:
		// Structured values are formatted by the caller's handler; format
		// here only when a password could hide inside.
		if s.empty() {
			return a
		}
		str := a.Value.String()
		if r := s.redact(str); r != str {
			return slog.String(a.Key, r)
		}
	}
	return a
}

// sentTracker records which withdrawals GoBGP has written to each peer's
// socket, for Shutdown to wait on.
type sentTracker struct {
	mu        sync.Mutex
	withdrawn map[netip.Addr]map[netip.Prefix]bool // nil until a waiter arms it
	changed   chan struct{}
}

func newSentTracker() *sentTracker { return &sentTracker{changed: make(chan struct{})} }

// arm starts recording withdrawals and forgets earlier ones.
func (t *sentTracker) arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.withdrawn = map[netip.Addr]map[netip.Prefix]bool{}
}

func (t *sentTracker) observe(peer netip.Addr, r *slog.Record) {
	var got []netip.Prefix
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "withdrawals":
			if l, ok := a.Value.Any().([]bgp.PathNLRI); ok {
				got = appendNLRIPrefixes(got, l)
			}
		case "attributes":
			if l, ok := a.Value.Any().([]bgp.PathAttributeInterface); ok {
				for _, pa := range l {
					if u, ok := pa.(*bgp.PathAttributeMpUnreachNLRI); ok {
						got = appendNLRIPrefixes(got, u.Value)
					}
				}
			}
		}
		return true
	})
	if len(got) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.withdrawn == nil {
		return
	}
	m := t.withdrawn[peer]
	if m == nil {
		m = map[netip.Prefix]bool{}
		t.withdrawn[peer] = m
	}
	for _, p := range got {
		m[p] = true
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

func appendNLRIPrefixes(dst []netip.Prefix, l []bgp.PathNLRI) []netip.Prefix {
	for _, n := range l {
		if p, ok := n.NLRI.(*bgp.IPAddrPrefix); ok {
			dst = append(dst, p.Prefix.Masked())
		}
	}
	return dst
}

// missing returns the prefixes of want not yet seen withdrawn towards peer,
// and a channel closed on the next observation.
func (t *sentTracker) missing(peer netip.Addr, want map[netip.Prefix]bool) ([]netip.Prefix, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []netip.Prefix
	for p := range want {
		if !t.withdrawn[peer][p] {
			out = append(out, p)
		}
	}
	return out, t.changed
}
