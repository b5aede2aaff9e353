package bgp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector derives the herald_bgp_* metrics from GoBGP's own peer state at
// scrape time, so the numbers cannot drift from what the sessions report.
type collector struct{ s *Speaker }

var (
	descSessionUp = prometheus.NewDesc("herald_bgp_session_up",
		"Whether the BGP session with the peer is Established (1) or not (0).", []string{"peer"}, nil)
	descBFDUp = prometheus.NewDesc("herald_bgp_bfd_session_up",
		"Whether the BFD session with the peer is Up (1) or not (0); only for peers with BFD.", []string{"peer"}, nil)
	descAdvertised = prometheus.NewDesc("herald_bgp_advertised_prefixes",
		"Prefixes currently advertised to the peer, by address family.", []string{"peer", "family"}, nil)
	descReceived = prometheus.NewDesc("herald_bgp_received_paths",
		"Paths the peer sent that the speaker holds (all rejected on import; bounded per family by the receive limit).", []string{"peer"}, nil)
	descLimitExceeded = prometheus.NewDesc("herald_bgp_receive_limit_exceeded_total",
		"Times the peer sent more paths than the receive limit and its session was closed and held down.", []string{"peer"}, nil)
	descUpdatesSent = prometheus.NewDesc("herald_bgp_updates_sent_total",
		"BGP UPDATE messages sent to the peer (restarts from 0 when the session re-establishes).", []string{"peer"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessionUp
	ch <- descBFDUp
	ch <- descAdvertised
	ch <- descUpdatesSent
	ch <- descReceived
	ch <- descLimitExceeded
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c.s.Sessions() {
		up := 0.0
		if x.Established() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descSessionUp, prometheus.GaugeValue, up, x.Name)
		if x.BFD != "" {
			b := 0.0
			if x.BFD == "Up" {
				b = 1
			}
			ch <- prometheus.MustNewConstMetric(descBFDUp, prometheus.GaugeValue, b, x.Name)
		}
		ch <- prometheus.MustNewConstMetric(descAdvertised, prometheus.GaugeValue, float64(x.PrefixesV4), x.Name, "ipv4")
		ch <- prometheus.MustNewConstMetric(descAdvertised, prometheus.GaugeValue, float64(x.PrefixesV6), x.Name, "ipv6")
		ch <- prometheus.MustNewConstMetric(descUpdatesSent, prometheus.CounterValue, float64(x.UpdatesSent), x.Name)
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.GaugeValue, float64(x.Received), x.Name)
		ch <- prometheus.MustNewConstMetric(descLimitExceeded, prometheus.CounterValue, float64(x.LimitExceeded), x.Name)
	}
}
