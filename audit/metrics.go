package audit

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shiplog/shiplog/audit/alert"
)

// metrics are the auditor's Prometheus metrics (docs/auditor.md lists
// them). Timestamps are Unix seconds; a gauge that was never set is 0.
type metrics struct {
	audited        prometheus.Gauge
	checkpointSize prometheus.Gauge
	lag            prometheus.Gauge
	findings       *prometheus.CounterVec
	rounds         *prometheus.CounterVec
	lastSuccess    prometheus.Gauge
	lastAnswer     prometheus.Gauge
	ledgerUp       prometheus.Gauge
	vendorMode     prometheus.Gauge
	witnessSize    *prometheus.GaugeVec
	witnessSeen    *prometheus.GaugeVec
	witnessLag     *prometheus.GaugeVec
	witnessUp      *prometheus.GaugeVec
	open           *prometheus.GaugeVec
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		audited: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shiplog_audit_entries_audited",
			Help: "Log entries the auditor has verified and replayed (the size of its own tree)."}),
		checkpointSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shiplog_audit_ledger_checkpoint_size",
			Help: "Size of the latest ledger checkpoint that verified under the policy."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shiplog_audit_lag_entries",
			Help: "Entries of the ledger's latest verified checkpoint not yet audited."}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiplog_audit_findings_total",
			Help: "New findings reported since the auditor started, by kind and severity."}, []string{"kind", "severity"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiplog_audit_rounds_total",
			Help: "Audit rounds by result (ok, error)."}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shiplog_audit_last_success_timestamp_seconds",
			Help: "When the last successful round ended (the ledger's checkpoint verified and every entry under it audited)."}),
		lastAnswer: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shiplog_audit_ledger_last_answer_timestamp_seconds",
			Help: "When the ledger last answered usefully: a checkpoint that verified, or entries a catch-up step committed."}),
		ledgerUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shiplog_audit_ledger_up",
			Help: "1 when the latest round got a verified, current checkpoint from the ledger and every entry it asked for; 0 otherwise."}),
		vendorMode: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shiplog_audit_vendor_mode",
			Help: "1 when vendor mode is on (releases the vendor did not make are findings)."}),
		witnessSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shiplog_audit_witness_checkpoint_size",
			Help: "Size of the last checkpoint a witness served with a valid log signature."}, []string{"witness"}),
		witnessSeen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shiplog_audit_witness_last_seen_timestamp_seconds",
			Help: "When the auditor last read a checkpoint with a valid log signature from a witness."}, []string{"witness"}),
		witnessLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shiplog_audit_witness_lag_entries",
			Help: "Entries by which a witness's last checkpoint trails the ledger's latest verified one (negative: the witness is ahead)."}, []string{"witness"}),
		witnessUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shiplog_audit_witness_up",
			Help: "1 when the latest read of a witness's checkpoint succeeded and the log signature verified."}, []string{"witness"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shiplog_audit_open_findings",
			Help: "Stored findings no operator has resolved yet (open or acknowledged), by severity."}, []string{"severity"}),
	}
	if r == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.audited, m.checkpointSize, m.lag, m.findings, m.rounds, m.lastSuccess,
		m.lastAnswer, m.ledgerUp, m.vendorMode, m.witnessSize, m.witnessSeen, m.witnessLag, m.witnessUp, m.open} {
		if err := r.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmtErr("register the auditor's metrics (one auditor per registry)", err)
			}
			return nil, err
		}
	}
	// Pre-create the series the alerts use, so that they exist at 0.
	for _, s := range []alert.Severity{alert.Info, alert.Warning, alert.Critical} {
		m.open.WithLabelValues(s.String())
	}
	m.rounds.WithLabelValues("ok")
	m.rounds.WithLabelValues("error")
	return m, nil
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
