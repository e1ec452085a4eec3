package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/internal/harness/kit"
)

// TestRefreshUnitPullWithoutPolicyDoesNotFailTheJob: the systemd unit runs
// `repo refresh --pull-attestations` for every vendor; one whose
// shiplog-repo.json names a ledger but no tlog-policy is refreshed, told
// that nothing was pulled, and the job succeeds with its metrics written.
// Once the policy is configured, the same command pulls.
func TestRefreshUnitPullWithoutPolicyDoesNotFailTheJob(t *testing.T) {
	l := kit.NewFakeLedger()
	defer l.Close()
	work := t.TempDir()
	at := func(name string) string { return filepath.Join(work, name) }
	must := func(args ...string) string {
		t.Helper()
		out, errOut, err := run(t, args...)
		if err != nil {
			t.Fatalf("shiplog %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out + errOut
	}
	os.WriteFile(at("policy.txt"), []byte(l.Policy), 0o644)
	os.WriteFile(at("token"), []byte(l.Token), 0o600)
	for _, k := range []string{"root", "targets", "snapshot", "timestamp"} {
		must("repo", "key", "generate", "--insecure-plaintext", at(k+".key"))
	}
	dir := at("repo")
	must("repo", "init", "-d", dir, "--repo-id", "example.com/fw", "--ledger", l.URL,
		"--root-key", at("root.key.pub"), "--targets-key", at("targets.key.pub"),
		"--snapshot-key", at("snapshot.key.pub"), "--timestamp-key", at("timestamp.key.pub"))
	must("repo", "sign", "-d", dir, "--key", at("root.key"))
	must("repo", "sign", "-d", dir, "--key", at("targets.key"))
	must("repo", "register", "-d", dir, "--token-file", at("token"), "--policy", at("policy.txt"))
	must("publish", "-d", dir, "--policy", at("policy.txt"), "--snapshot-key", at("snapshot.key"), "--timestamp-key", at("timestamp.key"))

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
