package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/internal/harness"
)

// TestExpiredTimestampReportedAsJSONAndInStatus: when the vendor lets the
// timestamp expire, `update --json` fails with one JSON error object that
// names the role, its expiry and the vendor's command, and `status` marks
// the role expired.
func TestExpiredTimestampReportedAsJSONAndInStatus(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.Expires = harness.Now.Add(time.Hour)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	r.Publish()
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	env := []string{deviceTime}
	if res := runDevice(t, env, "-d", state, "init", "--root", writeFile(t, tmp, "root.json", r.RootBytes(1)),
		"--repo-url", serveDir(t, r.Dir), "--repo-id", r.ID, "--policy", writeFile(t, tmp, "policy", r.PolicyText(2)), "--approval", "auto"); res.code != 0 {
		t.Fatalf("init: %+v", res)
	}
	if res := runDevice(t, env, "-d", state, "update", "--yes"); res.code != 0 {
		t.Fatalf("update: %+v", res)
	}
	later := []string{"SHIPLOG_DEVICE_TIME=" + harness.Now.Add(26*time.Hour).Format(time.RFC3339)}
	res := runDevice(t, later, "-d", state, "update", "--yes", "--json")
	var out struct {
		Error    string `json:"error"`
		ExitCode int    `json:"exit_code"`
	}
	decode(t, res.stderr, &out)
	if res.code != 1 || out.ExitCode != 1 || res.stdout != "" {
		t.Fatalf("update --json: %+v", res)
	}
	for _, want := range []string{"timestamp v", "expired at 2026-06-01T13:00:00Z, 1d1h ago", "shiplog repo refresh"} {
		if !strings.Contains(out.Error, want) {
			t.Errorf("%q does not say %q", out.Error, want)
		}
	}
	res = runDevice(t, later, "-d", state, "status")
	if res.code != 0 || !strings.Contains(res.stdout, "EXPIRED") {
		t.Errorf("status: %+v", res)
	}
	res = runDevice(t, env, "-d", state, "status")
	if res.code != 0 || strings.Contains(res.stdout, "EXPIRED") {
		t.Errorf("status before expiry: %+v", res)
	}
}
