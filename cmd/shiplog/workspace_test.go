package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/internal/harness/kit"
)

// workspace is a vendor's working directory for CLI tests: a fake ledger,
// its policy and operator token, the four role keys (plaintext) and the
// repository directory, not yet initialised.
type workspace struct {
	t      *testing.T
	ledger *kit.FakeLedger
	work   string
	dir    string // the repository
}

func newWorkspace(t *testing.T) *workspace {
	t.Helper()
	w := &workspace{t: t, ledger: kit.NewFakeLedger(), work: t.TempDir()}
	t.Cleanup(w.ledger.Close)
	w.dir = w.at("repo")
	os.WriteFile(w.at("policy.txt"), []byte(w.ledger.Policy), 0o644)
	os.WriteFile(w.at("token"), []byte(w.ledger.Token), 0o600)
	for _, k := range []string{"root", "targets", "snapshot", "timestamp"} {
		w.must("repo", "key", "generate", "--insecure-plaintext", w.at(k+".key"))
	}
	return w
}

// at is the path of name in the workspace.
func (w *workspace) at(name string) string { return filepath.Join(w.work, name) }

// must runs shiplog with args and returns its stdout and stderr; it fails
// the test if the command fails.
func (w *workspace) must(args ...string) string {
	w.t.Helper()
	out, errOut, err := run(w.t, args...)
	if err != nil {
		w.t.Fatalf("shiplog %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out + errOut
}

// init initialises the repository with the workspace's keys and ledger.
func (w *workspace) init() {
	w.t.Helper()
	w.must("repo", "init", "-d", w.dir, "--repo-id", "example.com/fw", "--ledger", w.ledger.URL,
		"--root-key", w.at("root.key.pub"), "--targets-key", w.at("targets.key.pub"),
		"--snapshot-key", w.at("snapshot.key.pub"), "--timestamp-key", w.at("timestamp.key.pub"))
}

// signRootAndTargets signs the staged root and targets.
func (w *workspace) signRootAndTargets() {
	w.t.Helper()
	w.must("repo", "sign", "-d", w.dir, "--key", w.at("root.key"))
	w.must("repo", "sign", "-d", w.dir, "--key", w.at("targets.key"))
}

// register registers the repository with the ledger's operator token.
func (w *workspace) register() {
	w.t.Helper()
	w.must("repo", "register", "-d", w.dir, "--token-file", w.at("token"), "--policy", w.at("policy.txt"))
}

// publish publishes what is signed, with the online keys.
func (w *workspace) publish() {
	w.t.Helper()
	w.must("publish", "-d", w.dir, "--policy", w.at("policy.txt"), "--snapshot-key", w.at("snapshot.key"), "--timestamp-key", w.at("timestamp.key"))
}
