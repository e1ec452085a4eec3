package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/device"
	clientstate "github.com/shiplog/shiplog/client/state"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/internal/harness"
)

func TestCLIApprovalFlow(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), map[string]any{"release_notes": "Fixes the \x1b[31mbootloader"})
	r.Publish()
	url := serveDir(t, r.Dir)
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	env := []string{deviceTime}
	if res := runDevice(t, env, "-d", state, "init", "--root", writeFile(t, tmp, "root.json", r.RootBytes(1)),
		"--repo-url", url, "--repo-id", r.ID, "--policy", writeFile(t, tmp, "policy", r.PolicyText(2))); res.code != 0 {
		t.Fatalf("init: %+v", res)
	}
	// A second init is refused.
	if res := runDevice(t, env, "-d", state, "init", "--root", filepath.Join(tmp, "root.json"), "--repo-id", r.ID, "--policy", filepath.Join(tmp, "policy")); res.code == 0 {
		t.Fatal("second init succeeded")
	}
	res := runDevice(t, env, "-d", state, "check")
	if res.code != 0 || !strings.Contains(res.stdout, "+ fw/image.bin") || !strings.Contains(res.stdout, "cosigned by w0") || strings.Contains(res.stdout, "\x1b") {
		t.Fatalf("check: %+v", res)
	}
	// Mode ask, no terminal, no --yes: nothing is installed.
	res = runDevice(t, env, "-d", state, "update", "--json")
	var out device.Result
	decode(t, res.stdout, &out)
	if res.code != 0 || out.Installed {
		t.Fatalf("update without approval: %+v", res)
	}
	// Nor with stdin on /dev/null (cron, systemd), a character device but
	// not a terminal: no prompt nobody can answer, the summary shown once.
	res = runDevice(t, env, "-d", state, "update")
	if res.code != 0 || strings.Contains(res.stdout, "Install this update?") || strings.Count(res.stdout, "+ fw/image.bin") != 1 {
		t.Fatalf("update with stdin on /dev/null: %+v", res)
	}
	res = runDevice(t, env, "-d", state, "update", "--yes", "--json")
	decode(t, res.stdout, &out)
	if res.code != 0 || !out.Installed {
		t.Fatalf("update --yes: %+v", res)
	}
	res = runDevice(t, env, "-d", state, "status")
	if res.code != 0 || !strings.Contains(res.stdout, "installed: "+out.Version) || !strings.Contains(res.stdout, "log log.example at size") {
		t.Fatalf("status: %+v", res)
	}
	// The old spelling --state still works for one release, with a notice.
	if res := runDevice(t, env, "--state", state, "status"); res.code != 0 || !strings.Contains(res.stderr, "deprecated") {
		t.Errorf("--state: %+v", res)
	}
	// GNU flags: global flags after the command, flags after arguments.
	if res := runDevice(t, env, "status", "--data-dir", state, "-o", "json"); res.code != 0 || !strings.HasPrefix(res.stdout, "{") {
		t.Errorf("status --data-dir -o json: %+v", res)
	}
	// Usage errors exit 2, failures 1.
	if res := runDevice(t, nil, "-d", state, "frobnicate"); res.code != 2 || !strings.Contains(res.stderr, "unknown command") {
		t.Errorf("unknown command: %+v", res)
	}
	if res := runDevice(t, nil, "-d", state, "update", "--frobnicate"); res.code != 2 {
		t.Errorf("unknown flag: %+v", res)
	}
	if res := runDevice(t, nil, "-d", state, "install-bundle", filepath.Join(tmp, "nope")); res.code != 1 {
		t.Errorf("missing bundle: %+v", res)
	}
	// With --json a failure is one JSON object on stderr.
	res = runDevice(t, nil, "-d", state, "install-bundle", filepath.Join(tmp, "nope"), "--json")
	var jerr struct {
		Error    string `json:"error"`
		ExitCode int    `json:"exit_code"`
	}
	decode(t, res.stderr, &jerr)
	if res.code != 1 || jerr.ExitCode != 1 || !strings.Contains(jerr.Error, "nope") || res.stdout != "" {
		t.Errorf("--json error: %+v", res)
	}
	// --help goes to stdout and exits 0.
	if res := runDevice(t, nil, "update", "--help"); res.code != 0 || !strings.Contains(res.stdout, "Example:") || res.stderr != "" {
		t.Errorf("--help: %+v", res)
	}
	if res := runDevice(t, nil, "--help"); res.code != 0 || !strings.Contains(res.stdout, "install-bundle") {
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
	r := harness.NewRawRepo(t)
	r.Publish()
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	if res := runDevice(t, []string{deviceTime}, "-d", state, "init", "--root", writeFile(t, tmp, "root.json", r.RootBytes(1)),
		"--repo-url", "http://127.0.0.1:1", "--repo-id", r.ID, "--policy", writeFile(t, tmp, "policy", r.PolicyText(2))); res.code != 0 {
		t.Fatalf("init: %+v", res)
	}
	unlock, err := clientstate.Store{Dir: state}.Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if res := runDevice(t, nil, "-d", state, "status"); res.code != 0 || !strings.Contains(res.stdout, "repository: "+r.ID) || !strings.Contains(res.stdout, "busy: an update or install is running") {
		t.Errorf("status while locked: %+v", res)
	}
	if res := runDevice(t, nil, "-d", state, "install-bundle", filepath.Join(tmp, "nope")); res.code != 1 || !strings.Contains(res.stderr, "in use by another process") || !strings.Contains(res.stderr, "status` answers meanwhile") {
		t.Errorf("install-bundle while locked: %+v", res)
	}
	// A directory that holds no device says to initialise one, not
	// "open DIR/lock: no such file or directory".
	for _, cmd := range []string{"update", "status"} {
		if res := runDevice(t, nil, "-d", filepath.Join(tmp, "no-device"), cmd); res.code != 1 || !strings.Contains(res.stderr, "shiplog-device init") {
			t.Errorf("%s without a device: %+v", cmd, res)
		}
	}
}

// TestCLIVersion: version and --version say the module version, revision and
// Go version from the build info.
func TestCLIVersion(t *testing.T) {
	res := runDevice(t, nil, "version")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "shiplog-device ") || !strings.Contains(res.stdout, "go1.") {
		t.Fatalf("version: %+v", res)
	}
	if r2 := runDevice(t, nil, "--version"); r2.stdout != res.stdout {
		t.Fatalf("--version %q != version %q", r2.stdout, res.stdout)
	}
	var info struct{ Version, Revision, GoVersion string }
	decode(t, runDevice(t, nil, "version", "--json").stdout, &info)
	if info.Version == "" || info.Revision == "" {
		t.Fatalf("version --json: %+v", info)
	}
}

// TestCLICompletion: the bash completion script completes commands, a
// command's flags and the values of closed-set flags.
func TestCLICompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := writeFile(t, t.TempDir(), "c.bash", []byte(runDevice(t, nil, "completion", "bash").stdout))
	complete := func(words ...string) string {
		t.Helper()
		q := ""
		for _, w := range words {
			q += fmt.Sprintf(" %q", w)
		}
		out, err := exec.Command("bash", "-c", fmt.Sprintf(`source %q; COMP_WORDS=(shiplog-device%s); COMP_CWORD=%d; _shiplog_device; echo "${COMPREPLY[*]}"`, script, q, len(words))).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := complete("up"); got != "update" {
		t.Errorf("command: %q", got)
	}
	if got := complete("-d", "/x", "install-bundle", "--y"); got != "--yes" {
		t.Errorf("flag after a global with a value: %q", got)
	}
	if got := complete("init", "--approval", "a"); got != "ask auto" {
		t.Errorf("--approval values: %q", got)
	}
	for _, sh := range []string{"zsh", "fish"} {
		if res := runDevice(t, nil, "completion", sh); res.code != 0 || !strings.Contains(res.stdout, "shiplog-device") {
			t.Errorf("completion %s: %+v", sh, res)
		}
	}
	if res := runDevice(t, nil, "completion", "tcsh"); res.code != 2 {
		t.Errorf("completion tcsh: %+v", res)
	}
}
