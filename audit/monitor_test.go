package audit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/internal/harness"
)

// clock is a settable test clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// metricValue returns the value of the gauge or counter name with the given
// label pairs, and whether the registry has it.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			want := map[string]string{}
			for i := 0; i+1 < len(labels); i += 2 {
				want[labels[i]] = labels[i+1]
			}
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return 0
}

func wantMetric(t *testing.T, g prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metricValue(t, g, name, labels...)
	if !ok {
		t.Errorf("no metric %s%v", name, labels)
	} else if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// TestAttackLedgerStopsAnswering: a ledger that stops answering its monitors
// (the cheapest way to hide) becomes a ledger-unreachable finding once it
// has been silent for UnreachableAfter, warning then critical, once per
// outage; the metrics and the stored round record say since when, and a
// restarted auditor still knows.
func TestAttackLedgerStopsAnswering(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 3)
	cp, _ := e.ledger.Checkpoint(e.ctx)
	ws := &harness.WitnessServer{Origin: origin}
	ws.Set(cp)
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	a := e.auditor(func(c *Config) {
		c.Now, c.Registerer, c.UnreachableAfter = clk.Now, reg, 5*time.Minute
		c.Witnesses = []string{wsrv.URL}
	})
	wantNone(t, e.step(a))
	start := clk.Now()
	wantMetric(t, reg, 1, "shiplog_audit_ledger_up")
	wantMetric(t, reg, 4, "shiplog_audit_entries_audited")
	wantMetric(t, reg, 4, "shiplog_audit_ledger_checkpoint_size")
	wantMetric(t, reg, 0, "shiplog_audit_lag_entries")
	wantMetric(t, reg, float64(start.Unix()), "shiplog_audit_last_success_timestamp_seconds")
	wantMetric(t, reg, 4, "shiplog_audit_witness_checkpoint_size", "witness", wsrv.URL)
	wantMetric(t, reg, 0, "shiplog_audit_witness_lag_entries", "witness", wsrv.URL)
	wantMetric(t, reg, float64(start.Unix()), "shiplog_audit_witness_last_seen_timestamp_seconds", "witness", wsrv.URL)
	wantMetric(t, reg, 0, "shiplog_audit_vendor_mode")

	// The ledger grows, the witness does not follow: it lags.
	e.honest(e.ledger, 2)
	wantNone(t, e.step(a))
	wantMetric(t, reg, 2, "shiplog_audit_witness_lag_entries", "witness", wsrv.URL)

	e.srv.Close() // the ledger stops answering
	clk.Add(time.Minute)
	res, err := a.Step(e.ctx)
	if err == nil {
		t.Fatal("a round against a stopped ledger succeeded")
	}
	if len(res.Findings) != 0 {
		t.Errorf("a one-minute outage is a finding: %v", res.Findings)
	}
	wantMetric(t, reg, 0, "shiplog_audit_ledger_up")
	wantMetric(t, reg, float64(start.Unix()), "shiplog_audit_last_success_timestamp_seconds")

	clk.Add(5 * time.Minute)
	res, _ = a.Step(e.ctx)
	f := wantFinding(t, res, alert.KindLedgerUnreachable)
	if f.Severity != alert.Warning || f.Evidence["last_answer"] != start.Format(time.RFC3339) {
		t.Errorf("finding %s, evidence %v; want a warning naming the last answer %s", f.Severity, f.Evidence, start)
	}
	wantMetric(t, reg, 1, "shiplog_audit_findings_total", "kind", "ledger-unreachable", "severity", "warning")
	wantMetric(t, reg, 1, "shiplog_audit_open_findings", "severity", "warning")
	clk.Add(time.Minute)
	if res, _ = a.Step(e.ctx); len(res.Findings) != 0 {
		t.Errorf("the same outage reported again: %v", res.Findings)
	}

	// A long outage is critical. The auditor restarts meanwhile: the stored
	// round record still dates the outage from the ledger's last answer.
	clk.Add(time.Hour)
	reg2 := prometheus.NewRegistry()
	a2 := e.auditor(func(c *Config) { c.Now, c.Registerer = clk.Now, reg2 })
	wantMetric(t, reg2, float64(start.Unix()), "shiplog_audit_last_success_timestamp_seconds")
	wantMetric(t, reg2, 0, "shiplog_audit_ledger_up")
	res, _ = a2.Step(e.ctx)
	if f := wantFinding(t, res, alert.KindLedgerUnreachable); f.Severity != alert.Critical {
		t.Errorf("an outage of over an hour is %s, want critical", f.Severity)
	}
	var rec store.RoundRecord
	e.db.View(func(tx *store.Tx) (err error) { rec, _, err = tx.Round(); return err })
	if !rec.LastSuccess.Equal(start) || rec.LedgerUp || rec.LastError == "" {
		t.Errorf("round record %+v: want last success %s, ledger down, an error", rec, start)
	}
}

// TestServeHealthAndMetrics: /healthz answers at once, /readyz once a round
// has ended, /metrics in the Prometheus text format; the rest is the
// dashboard.
func TestServeHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 1)
	reg := prometheus.NewRegistry()
	a := e.auditor(func(c *Config) { c.Registerer = reg })
	srv := httptest.NewServer(Handler(a, e.db, reg, http.NotFoundHandler()))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz before the first round: %d, want 503", code)
	}
	e.step(a)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz after a round: %d, want 200", code)
	}
	code, body := get("/metrics")
	for _, name := range []string{"shiplog_audit_entries_audited 2", "shiplog_audit_ledger_up 1", "shiplog_audit_rounds_total{result=\"ok\"} 1"} {
		if code != 200 || !strings.Contains(body, name) {
			t.Errorf("/metrics (%d) lacks %q", code, name)
		}
	}
	if code, _ := get("/anything-else"); code != 404 {
		t.Errorf("dashboard fallthrough: %d", code)
	}
}
