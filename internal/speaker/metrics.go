package speaker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/pkg/announce"
	"github.com/herald-lb/herald/pkg/bgp"
)

type metrics struct {
	ownedL2     prometheus.Gauge
	bgpRoutes   prometheus.Gauge
	ownerMoves  prometheus.Counter
	planSeconds prometheus.Histogram
	sessions    *prometheus.GaugeVec
	// withoutOwner and quorum feed the alerts (CONTRACTS.md).
	withoutOwner prometheus.Gauge
	quorum       prometheus.Gauge
	last         map[string]bool
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ownedL2: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_layer2_owned_addresses",
			Help: "Addresses this node answers ARP/NDP for."}),
		bgpRoutes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_bgp_routes",
			Help: "Prefixes this node advertises over BGP."}),
		ownerMoves: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_speaker_layer2_takeovers_total",
			Help: "Addresses this node started answering for (failovers and new addresses)."}),
		planSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_speaker_plan_seconds",
			Help: "Time to compute and apply this node's plan.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_speaker_bgp_session_up",
			Help: "1 while the BGP session to a peer is established, with the BFD state as a label."}, []string{"peer", "bfd"}),
		withoutOwner: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_layer2_addresses_without_owner",
			Help: "Addresses a layer-2 advertisement covers for which no node is eligible, as this speaker sees it."}),
		quorum: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_quorum",
			Help: "1 while this speaker may answer by layer 2, 0 in a minority partition."}),
	}
	m.quorum.Set(1)
	if reg != nil {
		reg.MustRegister(m.ownedL2, m.bgpRoutes, m.ownerMoves, m.planSeconds, m.sessions, m.withoutOwner, m.quorum)
	}
	return m
}

func (m *metrics) observePlan(p announce.Plan) {
	m.ownedL2.Set(float64(len(p.L2)))
	m.bgpRoutes.Set(float64(len(p.BGP)))
	next := make(map[string]bool, len(p.L2))
	for a := range p.L2 {
		next[a.String()] = true
		if !m.last[a.String()] {
			m.ownerMoves.Inc()
		}
	}
	m.last = next
}

func (m *metrics) observeQuorum(ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.quorum.Set(v)
}

func (m *metrics) observeSessions(ss []bgp.Session) {
	m.sessions.Reset()
	for _, s := range ss {
		v := 0.0
		if s.Established() {
			v = 1
		}
		m.sessions.WithLabelValues(s.Name, s.BFD).Set(v)
	}
}
