package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/internal/harness"
)

func runShiplog(args ...string) (string, error) {
	var out bytes.Buffer
	c := rootCmd()
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&out)
	err := c.ExecuteContext(context.Background())
	return out.String(), err
}

// TestBundleCommands: create, inspect and verify a bundle end to end, and
// refuse a tampered one.
func TestBundleCommands(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	r.Publish()
	tmp := t.TempDir()
	pol := filepath.Join(tmp, "policy")
	os.WriteFile(pol, r.PolicyText(2), 0o644)
	root := filepath.Join(tmp, "root.json")
	os.WriteFile(root, r.RootBytes(1), 0o644)
	out := filepath.Join(tmp, "b.bundle")
	at := harness.Now.Format("2006-01-02T15:04:05Z")
	if o, err := runShiplog("bundle", "create", "-d", r.Dir, "--target", "fw/image.bin", "--out", out, "--policy", pol, "--time", at); err != nil {
		t.Fatalf("create: %v\n%s", err, o)
	}
	if o, err := runShiplog("bundle", "inspect", out); err != nil || !strings.Contains(o, "payload fw/image.bin") {
		t.Fatalf("inspect: %v\n%s", err, o)
	}
	if o, err := runShiplog("bundle", "verify", out, "--root", root, "--policy", pol, "--repo-id", r.ID, "--time", at); err != nil || !strings.Contains(o, "bundle verified") {
		t.Fatalf("verify: %v\n%s", err, o)
	}
	b, _ := os.ReadFile(out)
	b[len(b)-3] ^= 1
	os.WriteFile(out, b, 0o644)
	if o, err := runShiplog("bundle", "verify", out, "--root", root, "--policy", pol, "--repo-id", r.ID, "--time", at); err == nil {
		t.Fatalf("tampered bundle verified:\n%s", o)
	}
	if _, err := runShiplog("bundle", "create", "-d", r.Dir, "--target", "no/such", "--out", out, "--time", at); err == nil {
		t.Fatal("bundle of a missing target created")
	}
}
