package shiplog_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var shBlock = regexp.MustCompile("(?s)```sh\n(.*?)```")

// TestREADMEWalkthrough runs the README's by-hand walkthrough as written, with
// freshly built shiplog and shiplog-device on PATH, in an empty directory.
// It uses the fixed ports the README names (8480, 8481, 7381-7383, 8000).
func TestREADMEWalkthrough(t *testing.T) {
	runWalkthrough(t, walkthroughScript(t), nil)
}

// walkthroughScript returns the README walkthrough's sh blocks as one bash
// script.
func walkthroughScript(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(readme), "<!-- walkthrough:begin -->")
	walk, _, ok2 := strings.Cut(rest, "<!-- walkthrough:end -->")
	if !ok1 || !ok2 {
		t.Fatal("README has no walkthrough markers")
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n")
	blocks := shBlock.FindAllStringSubmatch(walk, -1)
	if len(blocks) < 6 {
		t.Fatalf("found %d sh blocks", len(blocks))
	}
	for _, b := range blocks {
		script.WriteString(b[1])
	}
	return script.String()
}

// runWalkthrough runs script with freshly built shiplog and shiplog-device
// on PATH, in an empty directory, with env added, and checks its output.
// It returns the directory it ran in.
func runWalkthrough(t *testing.T, script string, env []string) string {
	t.Helper()
	bin := t.TempDir()
	for _, cmd := range []string{"shiplog", "shiplog-device"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, cmd), "./cmd/"+cmd).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", cmd, err, out)
		}
	}
	work := t.TempDir()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = work
	cmd.Env = append(append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH")), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs := ""
		for _, l := range []string{"ledger.log", "witness-1.log"} {
			b, _ := os.ReadFile(filepath.Join(work, l))
			logs += "\n--- " + l + "\n" + string(b)
		}
		t.Fatalf("walkthrough failed: %v\n%s%s", err, out, logs)
	}
	for _, want := range []string{"firmware 1.0", "unexpected-release", "registered: root v1 logged at index 0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, out)
		}
	}
	return work
}
