package client

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type clientMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

// newMetrics registers the client counters with r (nil: unregistered). A
// second Client or Collector on the same registerer shares the counters.
func newMetrics(r prometheus.Registerer) (*clientMetrics, error) {
	m := &clientMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shiplog_witness_client_requests_total",
			Help: "add-checkpoint requests sent, by witness name.",
		}, []string{"witness"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shiplog_witness_client_errors_total",
			Help: "add-checkpoint requests that did not yield a valid cosignature, by witness name.",
		}, []string{"witness"}),
	}
	if r == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(r, m.requests); err != nil {
		return nil, err
	}
	if m.errors, err = register(r, m.errors); err != nil {
		return nil, err
	}
	return m, nil
}

func register(r prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, err
	}
	return c, nil
}

// metricsOrUnregistered is newMetrics for New, which cannot fail: if the
// counters cannot be registered, it logs why and counts unregistered.
func metricsOrUnregistered(r prometheus.Registerer, log interface{ Error(string, ...any) }) *clientMetrics {
	m, err := newMetrics(r)
	if err != nil {
		log.Error("couldn't register witness client metrics", "error", err)
		m, _ = newMetrics(nil)
	}
	return m
}
