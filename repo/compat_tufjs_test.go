package repo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tufJS returns the node binary and the npm directory holding tuf-js 5.0.1
// (installed by scripts/setup.d/30-tuf-js.sh). It skips when they are
// absent outside CI and fails under CI.
func tufJS(t *testing.T) (node, npmDir string) {
	t.Helper()
	npmDir = os.Getenv("SHIPLOG_NPM_DIR")
	if npmDir == "" {
		npmDir = "/opt/shiplog-npm"
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(npmDir, "node_modules", "tuf-js", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node or tuf-js missing (%v): run scripts/setup.d/30-tuf-js.sh", err)
		}
		t.Skipf("node or tuf-js missing (%v): run scripts/setup.d/30-tuf-js.sh", err)
	}
	return node, npmDir
}

// tufJSDownload runs tuf-js, trusting root v1, against the served repository.
func tufJSDownload(t *testing.T, dir, targetPath string) ([]byte, error) {
	t.Helper()
	node, npmDir := tufJS(t)
	metaURL, targetsURL := serve(t, dir)
	metaDir, targetDir := t.TempDir(), t.TempDir()
	root, err := os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(metaDir, "root.json"), root, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join("testdata", "tufjs", "download.mjs"), metaDir, metaURL, targetsURL, targetDir, targetPath)
	cmd.Env = append(os.Environ(), "SHIPLOG_NPM_DIR="+npmDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, &exec.ExitError{Stderr: out}
	}
	return os.ReadFile(strings.TrimSpace(string(out)))
}

func TestTufJSReadsRepository(t *testing.T) {
	tufJS(t)
	f := richRepo(t)
	for p, want := range richTargets {
		got, err := tufJSDownload(t, f.dir, p)
		if err != nil {
			t.Fatalf("%s: %v: %s", p, err, err.(*exec.ExitError).Stderr)
		}
		if string(got) != want {
			t.Fatalf("%s: got %q, want %q", p, got, want)
		}
	}
}

func TestTufJSRefusesTamperedTarget(t *testing.T) {
	tufJS(t)
	f := richRepo(t)
	tamperTarget(t, f.dir, "fw/app.bin")
	_, err := tufJSDownload(t, f.dir, "fw/app.bin")
	if err == nil {
		t.Fatal("tuf-js accepted a tampered target: the compatibility test would not notice a broken repository")
	}
	if msg := string(err.(*exec.ExitError).Stderr); !strings.Contains(strings.ToLower(msg), "hash") {
		t.Fatalf("tuf-js failed for another reason than the hash: %s", msg)
	}
}
