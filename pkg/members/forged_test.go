package members

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
)

// messageCounter counts the log records with one message.
type messageCounter struct {
	msg string
	n   *atomic.Int64
}

func (h messageCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h messageCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h messageCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h messageCounter) WithGroup(string) slog.Handler      { return h }

// A flood of plaintext leave notices from a socket that is no member — a
// few thousand invented names, and the live member b under instances other
// than its own — reaches Herald's notice handler on an unencrypted cluster
// (the worst case), drops no member and stores nothing.
func TestForgedLeaveNoticeFloodDropsNoMemberAndStoresNothing(t *testing.T) {
	tn := newTestNet(t, 2)
	ignored := &atomic.Int64{}
	o := tn.opts(0, "a")
	o.Logger = slog.New(messageCounter{msg: "leave notice ignored: not from an alive member's process", n: ignored})
	a := start(t, o)
	b := start(t, tn.opts(1, "b"))
	for _, m := range []*Members{a, b} {
		m.SetPeers(tn.peers("a", "b"))
	}
	waitAlive(t, a, "a", "b")
	waitAlive(t, b, "a", "b")

	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(tn.addrs[0], uint16(tn.port)))
	header := append([]byte{244, byte(len(clusterLabel))}, clusterLabel...)
	header = append(header, 8)     // memberlist's user message
	const batches, batch = 10, 500 // memberlist queues at most 1024 messages
	sent := 0
	for i := range batches {
		for j := range batch {
			name := fmt.Sprintf("forged-%d-%d", i, j)
			inst := uint64(i*batch + j + 1)
			if j%10 == 0 {
				name = "b" // b under an instance it does not have
				inst ^= b.instance
			}
			if _, err := conn.WriteToUDP(append(header, encodeLeaveNotice(name, inst)...), to); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		waitFor(t, converge, func() bool { return ignored.Load() == int64(sent) },
			func() string { return fmt.Sprintf("%d of %d forged notices handled", ignored.Load(), sent) })
	}
	if !a.Alive()["b"] {
		t.Error("a dropped b after forged notices")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.view.departed) != 0 || len(a.view.gone) != 0 {
		t.Errorf("after %d forged notices: departed %d, gone %d entries, want 0", sent, len(a.view.departed), len(a.view.gone))
	}
}
