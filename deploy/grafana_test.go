package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/shiplog/shiplog/audit"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/shiplog/shiplog/log/tessera"
	"github.com/shiplog/shiplog/repo"
	"github.com/shiplog/shiplog/witness"
	wclient "github.com/shiplog/shiplog/witness/client"
	"golang.org/x/mod/sumdb/note"
)

// recorder is a prometheus.Registerer that keeps the name of every metric
// its collectors describe, whether or not anything was observed yet (a
// gathered registry omits vectors without series).
type recorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return true }

// registeredMetrics builds a ledger, a witness, a witness client (the
// ledger's side of cosigning) and an auditor in-process, each with a
// recorder as its Registerer, as the commands do, and returns every metric
// name they register, with the series Prometheus derives from histograms
// and the Go and process collectors the servers add.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{names: map[string]bool{}}
	rec.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dir := t.TempDir()

	// The ledger, on Tessera, with no witnesses.
	const origin = "metrics.test/log"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	ldir := filepath.Join(dir, "log")
	if err := tessera.Create(ctx, ldir, signer); err != nil {
		t.Fatal(err)
	}
	st, err := tessera.Open(ctx, tessera.Options{Dir: ldir, Signer: signer, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	idx, err := ledger.OpenIndex(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	meta, err := ledger.NewMetadataStore(filepath.Join(dir, "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ledger.New(ctx, ledger.Config{Storage: st, Index: idx, Metadata: meta, Policy: pol, Origin: origin,
		StateDir: dir, Registerer: rec})
	if err != nil {
		t.Fatal(err)
	}
	wclient.New("http://127.0.0.1:1", verifier, wclient.Options{Registerer: rec})

	// A witness.
	wdir := filepath.Join(dir, "witness")
	if _, _, err := witness.Init(wdir, "w.metrics.test"); err != nil {
		t.Fatal(err)
	}
	wkey, err := os.ReadFile(filepath.Join(wdir, witness.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	wsigner, err := notekey.NewWitnessSigner(strings.TrimSpace(string(wkey)))
	if err != nil {
		t.Fatal(err)
	}
	wstore, err := witness.OpenStore(filepath.Join(wdir, witness.StateFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wstore.Close()
	if _, err := witness.New(witness.Config{Signer: wsigner, Store: wstore, Registerer: rec}); err != nil {
		t.Fatal(err)
	}

	// An auditor.
	db, err := store.Open(filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := audit.New(audit.Config{Ledger: "http://127.0.0.1:1", Policy: pol, State: db, Registerer: rec}); err != nil {
		t.Fatal(err)
	}

	// The repository refresh (shiplog repo refresh).
	repo.NewFreshnessMetrics(rec)

	names := rec.names
	for n := range names {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			names[n+suffix] = true // histograms' series; harmless for the others
		}
	}
	names["up"] = true // Prometheus's own, per target
	return names
}

// promQLIdent finds identifiers in a PromQL expression once strings, label
// matchers, grouping clauses, ranges and Grafana variables are removed;
// function names and keywords are dropped by the caller.
var (
	promQLStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promQLMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promQLGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promQLRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	grafanaVars     = regexp.MustCompile(`\$\{?\w+\}?`)
	promQLIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promQLNonMetric = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true}
)

// metricNames returns the metric names an expression reads.
func metricNames(expr string) []string {
	s := promQLStrings.ReplaceAllString(expr, `""`)
	s = promQLMatchers.ReplaceAllString(s, "{}")
	s = promQLGrouping.ReplaceAllString(s, "")
	s = promQLRanges.ReplaceAllString(s, "[]")
	s = grafanaVars.ReplaceAllString(s, "")
	var out []string
	for _, m := range promQLIdent.FindAllStringSubmatch(s, -1) {
		if m[1] != "" || promQLNonMetric[strings.ToLower(m[0])] {
			continue // a function call or a keyword
		}
		out = append(out, m[0])
	}
	return out
}

func TestMetricNamesOfExpressions(t *testing.T) {
	for expr, want := range map[string]string{
		`time() - max(shiplog_audit_last_success_timestamp_seconds)`:                                              "shiplog_audit_last_success_timestamp_seconds",
		`sum by (kind, severity) (increase(shiplog_audit_findings_total{severity="critical"}[$__rate_interval]))`: "shiplog_audit_findings_total",
		`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) > 5 and on(instance) up == 0`:                 "a_bucket up",
		`up{job=~"shiplog-.*"}`: "up",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// TestGrafanaDashboard: every PromQL expression of the provisioned Grafana
// dashboards reads only metrics that the ledger, the witness and the auditor
// really register (built in-process), every panel uses the provisioned
// Prometheus datasource, and the dashboard covers all three.
func TestGrafanaDashboard(t *testing.T) {
	real := registeredMetrics(t)
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yaml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("datasource provisioning: %+v", ds)
	}
	var prov struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/shiplog.yaml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path == "" {
		t.Fatalf("dashboard provisioning: %+v", prov)
	}
	files, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(files) == 0 {
		t.Fatal("no dashboards in grafana/dashboards")
	}
	used := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var dash map[string]any
		if err := json.Unmarshal(b, &dash); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walk(dash, func(obj map[string]any) {
			if d, ok := obj["datasource"].(map[string]any); ok && d["uid"] != ds.Datasources[0].UID {
				t.Errorf("%s: datasource %v, want uid %q", f, d, ds.Datasources[0].UID)
			}
			expr, ok := obj["expr"].(string)
			if !ok {
				return
			}
			names := metricNames(expr)
			if len(names) == 0 {
				t.Errorf("%s: expression %q reads no metric", f, expr)
			}
			for _, n := range names {
				used[n] = true
				if !real[n] {
					t.Errorf("%s: %q reads %s, which no shiplog component registers", f, expr, n)
				}
			}
		})
	}
	var have []string
	for _, prefix := range []string{"shiplog_ledger_", "shiplog_witness_", "shiplog_audit_"} {
		for n := range used {
			if strings.HasPrefix(n, prefix) {
				have = append(have, prefix)
				break
			}
		}
	}
	sort.Strings(have)
	if len(have) != 3 {
		t.Errorf("the dashboards cover only %v of the ledger, witness and auditor metrics", have)
	}
	// Every metric the alerts page on is on the dashboard too.
	for _, m := range []string{"shiplog_audit_ledger_up", "shiplog_audit_witness_lag_entries", "shiplog_audit_open_findings"} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

// walk calls fn for every JSON object in v.
func walk(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, e := range x {
			walk(e, fn)
		}
	case []any:
		for _, e := range x {
			walk(e, fn)
		}
	}
}
