package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shiplog/shiplog/internal/harness/kit"
)

// TestPromtool checks the deployment's Prometheus files with Prometheus's
// own tool: the configuration and rules load, and the rule unit tests in
// prometheus/alerts_test.yml pass.
func TestPromtool(t *testing.T) {
	promtool := need(t, "promtool")
	for _, args := range [][]string{
		{"check", "config", "prometheus/prometheus.yml"},
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// process is a command started by a test, stopped at cleanup.
type process struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
}

func start(t *testing.T, name string, stdout io.Writer, args ...string) *process {
	t.Helper()
	cmd := exec.Command(name, args...)
	p := &process{cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = stdout, p.stderr
	if stdout == nil {
		cmd.Stdout = p.stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(p.stop)
	return p
}

func (p *process) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// waitUntil polls cond every 250 ms until it holds, failing the test after
// deadline with what the last call said.
func waitUntil(t *testing.T, deadline time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(deadline)
	var last string
	for time.Now().Before(end) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("gave up waiting (%s) for %s; last: %s", deadline, what, last)
}

var listenLine = regexp.MustCompile(`listening on http://(\S+)`)

// TestPrometheusAlertWhenLedgerStops runs the deployment's monitoring for
// real: a ledger (`shiplog ledger serve`), an auditor following it
// (`shiplog audit --listen`), and Debian's Prometheus server with
// prometheus/prometheus.yml and alerts.yml, changed only where a test must:
// the targets' ports, one-second scrape and evaluation intervals and
// two-second `for:` clauses. Prometheus scrapes the auditor and sees the
// ledger up; then the ledger is stopped, and the "ledger unreachable" alert
// must fire (read from Prometheus's /api/v1/alerts) while the auditor
// reports a ledger-unreachable finding.
func TestPrometheusAlertWhenLedgerStops(t *testing.T) {
	prom := need(t, "prometheus")
	bin := buildShiplog(t)
	dir := t.TempDir()

	// The ledger, with no witnesses (quorum none).
	ldir := filepath.Join(dir, "ledger")
	run(t, bin, "ledger", "init", "-d", ldir, "--origin", "deploy.test/log")
	addrFile := filepath.Join(dir, "ledger.addr")
	ledger := start(t, bin, nil, "ledger", "serve", "-d", ldir, "--http-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--addr-file", addrFile)
	var addrs map[string]string
	waitUntil(t, time.Minute, "the ledger's address file", func() (bool, string) {
		b, err := os.ReadFile(addrFile)
		return err == nil && json.Unmarshal(b, &addrs) == nil && addrs["http"] != "", ledger.stderr.String()
	})
	vkey, err := os.ReadFile(filepath.Join(ldir, "log.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(dir, "policy.txt")
	if err := os.WriteFile(policyFile, []byte("log "+strings.TrimSpace(string(vkey))+"\nquorum none\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// The auditor, serving its dashboard and /metrics.
	findings := &lockedBuffer{}
	auditor := start(t, bin, findings, "audit", "--ledger", "http://"+addrs["http"], "--policy", policyFile,
		"--data-dir", filepath.Join(dir, "audit"), "--listen", "127.0.0.1:0", "--interval", "1s",
		"--unreachable-after", "3s", "--progress", "off")
	var auditAddr string
	waitUntil(t, time.Minute, "the auditor to say where it listens", func() (bool, string) {
		m := listenLine.FindStringSubmatch(auditor.stderr.String())
		if m != nil {
			auditAddr = m[1]
		}
		return m != nil, auditor.stderr.String()
	})

	// Prometheus, with the deployment's files.
	pdir := filepath.Join(dir, "prometheus")
	os.MkdirAll(pdir, 0o755)
	writePrometheusConfig(t, pdir, map[string]string{
		"shiplog-ledger": addrs["http"], "shiplog-witness": kit.StableAddr(t), "shiplog-audit": auditAddr,
		"shiplog-repo-refresh": kit.StableAddr(t),
	})
	promAddr := kit.StableAddr(t)
	server := start(t, prom, nil, "--config.file="+filepath.Join(pdir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(pdir, "data"), "--web.listen-address="+promAddr)
	api := "http://" + promAddr + "/api/v1/"
	hc := &http.Client{Timeout: 5 * time.Second}

	// The auditor's target is up and reports the ledger answering.
	waitUntil(t, 3*time.Minute, "Prometheus to scrape shiplog_audit_ledger_up 1", func() (bool, string) {
		v, err := query(hc, api, `shiplog_audit_ledger_up{job="shiplog-audit"}`)
		return err == nil && v == "1", fmt.Sprintf("value %q, err %v; prometheus: %s", v, err, tail(server.stderr.String()))
	})
	if firing(t, hc, api, "ShiplogLedgerUnreachableByAuditor") {
		t.Fatal("the ledger-unreachable alert fires while the ledger answers")
	}

	ledger.stop()
	waitUntil(t, 3*time.Minute, "the alert ShiplogLedgerUnreachableByAuditor to fire", func() (bool, string) {
		return firing(t, hc, api, "ShiplogLedgerUnreachableByAuditor"), "not firing; auditor: " + tail(auditor.stderr.String())
	})
	waitUntil(t, time.Minute, "the auditor's ledger-unreachable finding", func() (bool, string) {
		return strings.Contains(findings.String(), `"kind":"ledger-unreachable"`), findings.String()
	})
}

// writePrometheusConfig copies prometheus/prometheus.yml and alerts.yml to
// dir with each job's target replaced, intervals of one second, and every
// rule's `for:` (when it has one) cut to two seconds.
func writePrometheusConfig(t *testing.T, dir string, targets map[string]string) {
	t.Helper()
	var cfg map[string]any
	readYAML(t, "prometheus/prometheus.yml", &cfg)
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	jobs := 0
	for _, sc := range cfg["scrape_configs"].([]any) {
		job := sc.(map[string]any)
		addr, ok := targets[job["job_name"].(string)]
		if !ok {
			t.Fatalf("prometheus.yml has job %v, which the test does not know", job["job_name"])
		}
		job["static_configs"] = []any{map[string]any{"targets": []any{addr}}}
		jobs++
	}
	if jobs != len(targets) {
		t.Fatalf("prometheus.yml has %d jobs, want %d", jobs, len(targets))
	}
	var rules map[string]any
	readYAML(t, "prometheus/alerts.yml", &rules)
	for _, g := range rules["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			if rule := r.(map[string]any); rule["for"] != nil {
				rule["for"] = "2s"
			}
		}
	}
	for name, v := range map[string]any{"prometheus.yml": cfg, "alerts.yml": rules} {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// query runs an instant query and returns the value of its only sample.
func query(hc *http.Client, api, q string) (string, error) {
	resp, err := hc.Get(api + "query?query=" + url.QueryEscape(q))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return "", err
	}
	if len(r.Data.Result) != 1 || len(r.Data.Result[0].Value) != 2 {
		return "", fmt.Errorf("%d samples", len(r.Data.Result))
	}
	return fmt.Sprint(r.Data.Result[0].Value[1]), nil
}

// firing reports whether Prometheus lists the alert name as firing.
func firing(t *testing.T, hc *http.Client, api, name string) bool {
	resp, err := hc.Get(api + "alerts")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return false
	}
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == name && a.State == "firing" {
			return true
		}
	}
	return false
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// lockedBuffer is a bytes.Buffer safe for a process's writes and a test's
// reads at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
