package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRefreshUnitPullWithoutPolicyDoesNotFailTheJob: the systemd unit runs
// `repo refresh --pull-attestations` for every vendor; one whose
// shiplog-repo.json names a ledger but no tlog-policy is refreshed, told
// that nothing was pulled, and the job succeeds with its metrics written.
// Once the policy is configured, the same command pulls.
func TestRefreshUnitPullWithoutPolicyDoesNotFailTheJob(t *testing.T) {
	w := newWorkspace(t)
	at, must, dir := w.at, w.must, w.dir
	w.init()
	w.signRootAndTargets()
	w.register()
	w.publish()

	metrics := at("shiplog-repo.prom")
	out := must("repo", "refresh", "-d", dir, "--timestamp-key", at("timestamp.key"), "--pull-attestations", "--metrics-file", metrics)
	if !strings.Contains(out, "attestations not pulled") || !strings.Contains(out, "no tlog-policy") {
		t.Errorf("refresh without a policy: %s", out)
	}
	if b, err := os.ReadFile(metrics); err != nil || !strings.Contains(string(b), "shiplog_repo_refresh_last_success_timestamp_seconds") {
		t.Errorf("metrics file: %v\n%s", err, b)
	}
	// `repo attestations pull` itself still refuses.
	if _, errOut, err := run(t, "repo", "attestations", "pull", "-d", dir); err == nil || !strings.Contains(errOut, "no tlog-policy") {
		t.Errorf("attestations pull without a policy: %v %s", err, errOut)
	}
	// With "policy" configured, the refresh pulls.
	cfg, err := os.ReadFile(filepath.Join(dir, "shiplog-repo.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "{", `{"policy": "`+at("policy.txt")+`",`, 1))
	os.WriteFile(filepath.Join(dir, "shiplog-repo.json"), cfg, 0o644)
	out = must("repo", "refresh", "-d", dir, "--timestamp-key", at("timestamp.key"), "--pull-attestations", "--metrics-file", metrics)
	if strings.Contains(out, "not pulled") || !strings.Contains(out, "attestations: ") {
		t.Errorf("refresh with a policy: %s", out)
	}
}

// TestRefreshLoopStopsCleanly: the long-running refresh stopped by SIGTERM
// (systemd) or Ctrl-C exits 0, not 1 with "context canceled"; and its
// failure counter is exported at 0 from the start, so that an alert on
// increase() sees the first failure.
func TestRefreshLoopStopsCleanly(t *testing.T) {
	w := newWorkspace(t)
	at, dir := w.at, w.dir
	w.init()
	w.signRootAndTargets()
	w.register()
	w.publish()

	metrics := at("shiplog-repo.prom")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := rootCmd()
	c.SetArgs([]string{"repo", "refresh", "-d", dir, "--timestamp-key", at("timestamp.key"), "--interval", "1h", "--metrics-file", metrics})
	c.SetOut(io.Discard)
	c.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- c.ExecuteContext(ctx) }()
	var b []byte
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if b, _ = os.ReadFile(metrics); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the loop never wrote its metrics file")
		}
	}
	if !strings.Contains(string(b), `shiplog_repo_refresh_failures_total{repository="example.com/fw"} 0`) {
		t.Errorf("no failure counter at 0 after a successful round:\n%s", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("stopped refresh loop: %v, want a clean exit", err)
	}
}
