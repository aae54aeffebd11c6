package netproxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics exposes the proxy's figures to Prometheus.
type metrics struct {
	p         *Proxy
	latency   prometheus.Histogram
	frontends *prometheus.Desc
	backends  *prometheus.Desc
	syncs     *prometheus.Desc
	errors    *prometheus.Desc
	mode      *prometheus.Desc
}

func newMetrics(p *Proxy) *metrics {
	return &metrics{
		p: p,
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tugboat_netproxy_sync_duration_seconds",
			Help:    "Time from receiving a Service or EndpointSlice change from the store to the end of programming the data plane.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10), // 10µs … 2.6s
		}),
		frontends: prometheus.NewDesc("tugboat_netproxy_frontends", "Programmed service frontends (address, port, protocol).", nil, nil),
		backends:  prometheus.NewDesc("tugboat_netproxy_backends", "Backends of the programmed frontends.", []string{"state"}, nil),
		syncs:     prometheus.NewDesc("tugboat_netproxy_syncs_total", "Data plane updates from the store.", []string{"kind"}, nil),
		errors:    prometheus.NewDesc("tugboat_netproxy_sync_errors_total", "Data plane updates that failed (retried on the next change).", nil, nil),
		mode:      prometheus.NewDesc("tugboat_netproxy_mode", "The data plane that runs (1 for the running mode).", []string{"mode"}, nil),
	}
}

// Describe implements [prometheus.Collector].
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.latency.Describe(ch)
	for _, d := range []*prometheus.Desc{m.frontends, m.backends, m.syncs, m.errors, m.mode} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.latency.Collect(ch)
	st := m.p.Stats()
	ch <- prometheus.MustNewConstMetric(m.frontends, prometheus.GaugeValue, float64(st.Frontends))
	ch <- prometheus.MustNewConstMetric(m.backends, prometheus.GaugeValue, float64(st.ReadyBackends), "ready")
	ch <- prometheus.MustNewConstMetric(m.backends, prometheus.GaugeValue, float64(st.Backends-st.ReadyBackends), "not_ready")
	ch <- prometheus.MustNewConstMetric(m.syncs, prometheus.CounterValue, float64(st.Syncs), "incremental")
	ch <- prometheus.MustNewConstMetric(m.syncs, prometheus.CounterValue, float64(st.FullResyncs), "full")
	ch <- prometheus.MustNewConstMetric(m.errors, prometheus.CounterValue, float64(st.SyncErrors))
	ch <- prometheus.MustNewConstMetric(m.mode, prometheus.GaugeValue, 1, string(st.Mode))
}

// Collector returns a Prometheus collector with the proxy's metrics
// (frontends, backends, syncs, sync errors, sync latency, mode) for the API
// server's /metrics.
func (p *Proxy) Collector() prometheus.Collector { return p.metrics }
