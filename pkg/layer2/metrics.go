package layer2

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of announcement, the "kind" label of announcements_sent_total.
const (
	kindTakeover = "takeover" // burst for a newly owned (address, interface)
	kindLinkUp   = "link_up"  // burst after the interface came back
	kindRefresh  = "refresh"  // periodic re-announcement
)

type metrics struct {
	announcements *prometheus.CounterVec // family, kind
	answered      *prometheus.CounterVec // family
	malformed     *prometheus.CounterVec // family
	sendErrors    *prometheus.CounterVec // family
	owned         *prometheus.GaugeVec   // family
	conflicts     *prometheus.CounterVec // family, interface
}

// newMetrics creates the announcer's collectors and registers them on reg
// when it is not nil. They are always created, so the rest of the code counts
// unconditionally.
func newMetrics(reg prometheus.Registerer, log *slog.Logger) *metrics {
	m := &metrics{
		announcements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_layer2_announcements_sent_total",
			Help: "Gratuitous ARP (ipv4) and unsolicited NA (ipv6) frames sent, by reason.",
		}, []string{"family", "kind"}),
		answered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_layer2_requests_answered_total",
			Help: "ARP requests (ipv4) and neighbor solicitations (ipv6) answered for owned addresses.",
		}, []string{"family"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_layer2_malformed_frames_total",
			Help: "Received ARP/NDP frames dropped as invalid.",
		}, []string{"family"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_layer2_send_errors_total",
			Help: "Replies and announcements the kernel refused to send.",
		}, []string{"family"}),
		owned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_layer2_owned_addresses",
			Help: "Addresses this node currently answers for.",
		}, []string{"family"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_layer2_address_conflicts_total",
			Help: "Frames from another MAC claiming an address this node answers for (gratuitous ARP, ARP from the address, Neighbor Advertisement for it, solicitation from it).",
		}, []string{"family", "interface"}),
	}
	for _, f := range []family{ipv4, ipv6} {
		for _, k := range []string{kindTakeover, kindLinkUp, kindRefresh} {
			m.announcements.WithLabelValues(string(f), k)
		}
		m.answered.WithLabelValues(string(f))
		m.malformed.WithLabelValues(string(f))
		m.sendErrors.WithLabelValues(string(f))
		m.owned.WithLabelValues(string(f))
	}
	if reg == nil {
		return m
	}
	m.announcements = register(reg, m.announcements, log)
	m.answered = register(reg, m.answered, log)
	m.malformed = register(reg, m.malformed, log)
	m.sendErrors = register(reg, m.sendErrors, log)
	m.owned = register(reg, m.owned, log)
	m.conflicts = register(reg, m.conflicts, log)
	return m
}

// register registers c, or returns the identical collector already there (a
// second Announcer on the same registry then shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, log *slog.Logger) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.Error("cannot register layer-2 metrics", "error", err)
	return c
}
