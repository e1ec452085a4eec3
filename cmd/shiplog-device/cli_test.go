package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/client/fixture"
	clientstate "github.com/shiplog/shiplog/client/state"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/evidencetest"
)

func TestCLIApprovalFlow(t *testing.T) {
	r := fixture.New(t)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), map[string]any{"release_notes": "Fixes the \x1b[31mbootloader"})
	r.Publish()
	url := serveDir(t, r.Dir)
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	env := []string{deviceTime}
	if res := runDevice(t, env, "--state", state, "init", "--root", writeFile(t, tmp, "root.json", r.RootBytes(1)),
		"--repo-url", url, "--repo-id", r.ID, "--policy", writeFile(t, tmp, "policy", r.PolicyText(2))); res.code != 0 {
		t.Fatalf("init: %+v", res)
	}
	// A second init is refused.
	if res := runDevice(t, env, "--state", state, "init", "--root", filepath.Join(tmp, "root.json"), "--repo-id", r.ID, "--policy", filepath.Join(tmp, "policy")); res.code == 0 {
		t.Fatal("second init succeeded")
	}
	res := runDevice(t, env, "--state", state, "check")
	if res.code != 0 || !strings.Contains(res.stdout, "+ fw/image.bin") || !strings.Contains(res.stdout, "cosigned by w0") || strings.Contains(res.stdout, "\x1b") {
		t.Fatalf("check: %+v", res)
	}
	// Mode ask, no terminal, no --yes: nothing is installed.
	res = runDevice(t, env, "--state", state, "update", "--json")
	var out device.Result
	decode(t, res.stdout, &out)
	if res.code != 0 || out.Installed {
		t.Fatalf("update without approval: %+v", res)
	}
	res = runDevice(t, env, "--state", state, "update", "--yes", "--json")
	decode(t, res.stdout, &out)
	if res.code != 0 || !out.Installed {
		t.Fatalf("update --yes: %+v", res)
	}
	res = runDevice(t, env, "--state", state, "status")
	if res.code != 0 || !strings.Contains(res.stdout, "installed: "+out.Version) || !strings.Contains(res.stdout, "log log.example at size") {
		t.Fatalf("status: %+v", res)
	}
	// Usage errors exit 2, failures 1.
	if res := runDevice(t, nil, "--state", state, "frobnicate"); res.code != 2 {
		t.Errorf("unknown command: %+v", res)
	}
	if res := runDevice(t, nil, "--state", state, "install-bundle", filepath.Join(tmp, "nope")); res.code != 1 {
		t.Errorf("missing bundle: %+v", res)
	}
	if res := runDevice(t, nil, "update", "--help"); res.code != 0 || !strings.Contains(res.stderr, "Example:") {
		t.Errorf("--help: %+v", res)
	}
}

func TestCLIVerifyEvidence(t *testing.T) {
	l := evidencetest.NewLog("log.example", 3)
	l.Append([]byte("a"))
	a := l.Checkpoint(0, 1)
	forked := evidencetest.NewLogWithKey(l, "log.example")
	forked.Append([]byte("b"))
	tmp := t.TempDir()
	pol := writeFile(t, tmp, "policy", l.Policy(2))
	file := writeFile(t, tmp, "fork.txt", evidence.Fork{Old: a, New: forked.Checkpoint(0, 1)}.Format())
	res := runDevice(t, nil, "verify-evidence", file, "--policy", pol)
	if res.code != 0 || !strings.Contains(res.stdout, "fork confirmed") {
		t.Fatalf("verify-evidence: %+v", res)
	}
	// The same checkpoint twice is no fork.
	same := writeFile(t, tmp, "same.txt", evidence.Fork{Old: a, New: a}.Format())
	if res := runDevice(t, nil, "verify-evidence", same, "--policy", pol); res.code != 1 {
		t.Fatalf("non-fork accepted: %+v", res)
	}
}

// TestStatusWhileStateLocked: `status` reads the state while another
// process holds the writer lock (an update downloading from a slow mirror),
// and a second writer is still kept out.
func TestStatusWhileStateLocked(t *testing.T) {
	r := fixture.New(t)
	r.Publish()
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	if res := runDevice(t, []string{deviceTime}, "--state", state, "init", "--root", writeFile(t, tmp, "root.json", r.RootBytes(1)),
		"--repo-url", "http://127.0.0.1:1", "--repo-id", r.ID, "--policy", writeFile(t, tmp, "policy", r.PolicyText(2))); res.code != 0 {
		t.Fatalf("init: %+v", res)
	}
	unlock, err := clientstate.Store{Dir: state}.Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if res := runDevice(t, nil, "--state", state, "status"); res.code != 0 || !strings.Contains(res.stdout, "repository: "+r.ID) {
		t.Errorf("status while locked: %+v", res)
	}
	if res := runDevice(t, nil, "--state", state, "install-bundle", filepath.Join(tmp, "nope")); res.code != 1 || !strings.Contains(res.stderr, "in use by another process") {
		t.Errorf("install-bundle while locked: %+v", res)
	}
}
