package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/internal/harness"
)

// TestCLIProfileWindowAndStatus: init from a profile with one override;
// status shows each setting's source; a young release is held (exit 0,
// "held: ... eligible at ...") and shown as pending; a window below the
// profile's floor is refused.
func TestCLIProfileWindowAndStatus(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.CosignedAt = harness.Now.Add(-30 * 24 * time.Hour)
	r.Reprove()
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	r.Publish()
	url := serveDir(t, r.Dir)
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	env := []string{deviceTime}
	root, pol := writeFile(t, tmp, "root.json", r.RootBytes(1)), writeFile(t, tmp, "policy", r.PolicyText(2))
	common := []string{"--root", root, "--repo-url", url, "--repo-id", r.ID, "--policy", pol}
	if res := runDevice(t, env, append([]string{"-d", filepath.Join(tmp, "x"), "init", "--profile", "nonesuch"}, common...)...); res.code != 2 {
		t.Errorf("unknown profile: %+v", res)
	}
	if res := runDevice(t, env, append([]string{"-d", filepath.Join(tmp, "y"), "init", "--profile", "high-risk", "--min-public-age-security", "1h"}, common...)...); res.code == 0 {
		t.Errorf("a security window below the high-risk floor was accepted: %+v", res)
	}
	if res := runDevice(t, env, append([]string{"-d", state, "init", "--profile", "household", "--min-public-age", "48h"}, common...)...); res.code != 0 {
		t.Fatalf("init: %+v", res)
	}
	res := runDevice(t, env, "-d", state, "status")
	for _, want := range []string{"approval                 auto       (profile household)", "min_public_age           48h0m0s    (override)",
		"min_public_age_security  6h0m0s     (profile household)"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, res.stdout)
		}
	}
	if res := runDevice(t, env, "-d", state, "update"); res.code != 0 || !strings.Contains(res.stdout, "installed") {
		t.Fatalf("a month-old release under a 48h window: %+v", res)
	}
	r.CosignedAt = harness.Now.Add(-time.Hour)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
	r.Publish()
	res = runDevice(t, env, "-d", state, "update")
	eligible := harness.Now.Add(47 * time.Hour).UTC().Format(time.RFC3339)
	if res.code != 0 || !strings.Contains(res.stdout, "held: targets version 3") || !strings.Contains(res.stdout, "eligible at "+eligible) {
		t.Fatalf("young release: %+v", res)
	}
	if res := runDevice(t, env, "-d", state, "status"); !strings.Contains(res.stdout, "pending (as of") || !strings.Contains(res.stdout, eligible) {
		t.Errorf("status does not show the pending release:\n%s", res.stdout)
	}
}
