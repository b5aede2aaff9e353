package members

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of membership event, the "event" label of events_total.
const (
	eventJoin     = "join"     // a member became alive
	eventLeave    = "leave"    // a member was declared dead or left
	eventUpdate   = "update"   // a member's metadata changed (a restart memberlist never saw die)
	eventNotice   = "notice"   // a leave notice removed a member ahead of gossip
	eventConflict = "conflict" // another process claimed a live member's name from another address
	eventRejected = "rejected" // an alive message that is not a Herald speaker's was refused
)

type metrics struct {
	members    prometheus.Gauge
	events     *prometheus.CounterVec // event
	joins      *prometheus.CounterVec // result
	reg        prometheus.Registerer
	registered []prometheus.Collector
}

// newMetrics creates the collectors. They are always created, so the rest
// of the code counts unconditionally.
func newMetrics() *metrics {
	m := &metrics{
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_memberlist_members",
			Help: "Speakers this node considers alive, itself included.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_memberlist_events_total",
			Help: "Membership events seen by this node, by kind (join, leave, update, notice, conflict, rejected).",
		}, []string{"event"}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_memberlist_join_attempts_total",
			Help: "Joins attempted to desired peers that were not alive, by result.",
		}, []string{"result"}),
	}
	for _, e := range []string{eventJoin, eventLeave, eventUpdate, eventNotice, eventConflict, eventRejected} {
		m.events.WithLabelValues(e)
	}
	m.joins.WithLabelValues("success")
	m.joins.WithLabelValues("failure")
	return m
}

// register registers the collectors on reg (nothing when reg is nil), adding
// the health gauge, which reads memberlist's Lifeguard health score.
func (m *metrics) register(reg prometheus.Registerer, health func() float64) error {
	if reg == nil {
		return nil
	}
	m.reg = reg
	healthGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_memberlist_health_score",
		Help: "Lifeguard local health score: 0 is healthy; higher means this node missed probes and slowed its own probing.",
	}, health)
	for _, c := range []prometheus.Collector{m.members, m.events, m.joins, healthGauge} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return fmt.Errorf("registering memberlist metrics: %w", err)
		}
		m.registered = append(m.registered, c)
	}
	return nil
}

func (m *metrics) countJoin(ok bool) {
	if ok {
		m.joins.WithLabelValues("success").Inc()
	} else {
		m.joins.WithLabelValues("failure").Inc()
	}
}

// unregister removes the collectors, so a new Members (a restart in the same
// process) can register its own; the health gauge reads a closed memberlist.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}
