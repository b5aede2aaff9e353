package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/pkg/allocate"
)

// metrics are derived at the edge from allocator results and usage; the
// allocator itself knows nothing of them.
type metrics struct {
	poolAddresses     *prometheus.GaugeVec
	allocations       *prometheus.CounterVec
	reconcileDuration prometheus.Histogram
	configObjectValid *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		poolAddresses: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_pool_addresses",
			Help: "Addresses of a pool by family and state (in_use, available); available saturates for huge IPv6 pools.",
		}, []string{"pool", "family", "state"}),
		allocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_allocations_total",
			Help: "Allocation decisions that changed something or failed, by result (allocated, backfilled, released, fallback, pending, rejected).",
		}, []string{"result"}),
		reconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_controller_service_reconcile_seconds",
			Help:    "Time to reconcile one Service, including API writes.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		configObjectValid: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_config_object_valid",
			Help: "1 when the configuration object is in force as written, 0 when it is disabled (see its Valid condition).",
		}, []string{"kind", "name"}),
	}
	if reg != nil {
		reg.MustRegister(m.poolAddresses, m.allocations, m.reconcileDuration, m.configObjectValid)
	}
	return m
}

func (m *metrics) observe(res allocate.Result) {
	had := len(res.Addrs) - len(res.Added)
	switch {
	case len(res.Added) > 0 && had > 0:
		m.allocations.WithLabelValues("backfilled").Inc()
	case len(res.Added) > 0:
		m.allocations.WithLabelValues("allocated").Inc()
	}
	if len(res.Released) > 0 {
		m.allocations.WithLabelValues("released").Inc()
	}
	if !res.Changed {
		return
	}
	switch {
	case res.Err != nil:
		m.allocations.WithLabelValues("rejected").Inc()
	case res.State == allocate.Pending:
		m.allocations.WithLabelValues("pending").Inc()
	case res.State == allocate.SingleStackFallback:
		m.allocations.WithLabelValues("fallback").Inc()
	}
}
