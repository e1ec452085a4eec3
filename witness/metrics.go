package witness

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the witness's Prometheus metrics, all prefixed
// shiplog_witness_.
type metrics struct {
	requests      *prometheus.CounterVec
	duration      prometheus.Histogram
	misbehaviours *prometheus.CounterVec
	logs          prometheus.Gauge
	batch         prometheus.Histogram
	commitTime    prometheus.Histogram
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shiplog_witness_add_checkpoint_requests_total",
			Help: "add-checkpoint requests by HTTP status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shiplog_witness_add_checkpoint_duration_seconds",
			Help:    "Time to answer an add-checkpoint request, including the durable commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		misbehaviours: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shiplog_witness_misbehaviour_total",
			Help: "Validly log-signed checkpoints that conflict with the latest cosigned one, by log origin and kind (fork: same size, different root; unproven: consistency proof failed).",
		}, []string{"origin", "kind"}),
		logs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shiplog_witness_logs",
			Help: "Logs in the current log list.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shiplog_witness_commit_batch_size",
			Help:    "State updates group-committed per fsync.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shiplog_witness_commit_duration_seconds",
			Help:    "Time of one durable state commit.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
	}
	if r == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.misbehaviours, m.logs, m.batch, m.commitTime} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("couldn't register witness metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) misbehaviour(mb Misbehaviour, _ bool) {
	m.misbehaviours.WithLabelValues(mb.Origin, mb.Kind).Inc()
}

func (m *metrics) commit(batch int, d time.Duration) {
	m.batch.Observe(float64(batch))
	m.commitTime.Observe(d.Seconds())
}
