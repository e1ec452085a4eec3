package log

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ledger's Prometheus metrics. Witness request and error
// counters per witness come from the Cosigner (witness/client).
type metrics struct {
	submissions     *prometheus.CounterVec
	appendLatency   prometheus.Histogram
	cosignedLatency prometheus.Histogram
	cosignedSize    prometheus.Gauge
	cosignFailures  prometheus.Counter
}

var latencyBuckets = []float64{.005, .01, .025, .05, .1, .2, .3, .5, .75, 1, 2, 5, 10, 30}

func newMetrics(r prometheus.Registerer, l *Ledger) (*metrics, error) {
	m := &metrics{
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shiplog_ledger_submissions_total",
			Help: "Publish and register calls by result: accepted, duplicate, or the refusal's HTTP status.",
		}, []string{"result"}),
		appendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shiplog_ledger_append_seconds",
			Help:    "Time from receiving a submission to its entry being durably integrated and indexed.",
			Buckets: latencyBuckets,
		}),
		cosignedLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shiplog_ledger_cosigned_seconds",
			Help:    "Time from receiving a submission to a published cosigned checkpoint covering it.",
			Buckets: latencyBuckets,
		}),
		cosignedSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shiplog_ledger_cosigned_size",
			Help: "Tree size of the latest published (cosigned) checkpoint.",
		}),
		cosignFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shiplog_ledger_cosign_failures_total",
			Help: "Rounds in which a new checkpoint could not be published (witness quorum not met, storage error).",
		}),
	}
	if r == nil {
		return m, nil
	}
	integrated := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shiplog_ledger_integrated_size",
		Help: "Number of entries durably integrated into the log.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, _ := l.store.IntegratedSize(ctx)
		return float64(n)
	})
	for _, c := range []prometheus.Collector{m.submissions, m.appendLatency, m.cosignedLatency, m.cosignedSize, m.cosignFailures, integrated} {
		if err := r.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) accepted(dup bool, d time.Duration) {
	if dup {
		m.submissions.WithLabelValues("duplicate").Inc()
		return
	}
	m.submissions.WithLabelValues("accepted").Inc()
	m.appendLatency.Observe(d.Seconds())
}

// refused counts a refused submission and returns err.
func (m *metrics) refused(err error) error {
	m.submissions.WithLabelValues(http.StatusText(HTTPStatus(err))).Inc()
	return err
}
