package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus metrics, one set per store (no global
// registry): the API server registers [Store.Collectors] on its /metrics.
type metrics struct {
	txns      prometheus.Counter
	batchSize prometheus.Histogram
	logSync   prometheus.Histogram
	watchers  prometheus.Gauge
	revision  prometheus.GaugeFunc
}

func newMetrics(s *Store) *metrics {
	return &metrics{
		txns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tugboat_store_transactions_total", Help: "Transactions committed by the store.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tugboat_store_commit_batch_size", Help: "Transactions per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		logSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tugboat_store_log_append_seconds", Help: "Time to append and fsync one group commit to the durable log.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tugboat_store_watchers", Help: "Open watches on the store.",
		}),
		revision: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tugboat_store_revision", Help: "Revision (resourceVersion) of the last applied transaction.",
		}, func() float64 { return float64(s.Revision()) }),
	}
}

// Collectors returns the store's Prometheus metrics for registration.
func (s *Store) Collectors() []prometheus.Collector {
	m := s.metrics
	return []prometheus.Collector{m.txns, m.batchSize, m.logSync, m.watchers, m.revision}
}

func (m *metrics) committed(batch int, sync time.Duration, durable bool) {
	m.txns.Add(float64(batch))
	m.batchSize.Observe(float64(batch))
	if durable {
		m.logSync.Observe(sync.Seconds())
	}
}
