package shiplog_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var shBlock = regexp.MustCompile("(?s)```sh\n(.*?)```")

// between returns the text of doc between the markers <!-- name:begin -->
// and <!-- name:end -->.
func between(t *testing.T, doc, name string) string {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(b), "<!-- "+name+":begin -->")
	text, _, ok2 := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok1 || !ok2 {
		t.Fatalf("%s has no %s markers", doc, name)
	}
	return text
}

// buildCommands builds shiplog and shiplog-device into a temporary
// directory and returns it.
func buildCommands(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	for _, cmd := range []string{"shiplog", "shiplog-device"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, cmd), "./cmd/"+cmd).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", cmd, err, out)
		}
	}
	return bin
}

// scriptHeader starts every script these tests run: stop at the first
// failing command, and stop the servers it started on the way out.
const scriptHeader = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"

// shiftPorts moves every 127.0.0.1 port of script to one offset·10000
// higher, so that runs of different guides never meet.
func shiftPorts(script string, offset int) string {
	return regexp.MustCompile(`127\.0\.0\.1:(\d)`).ReplaceAllString(script, fmt.Sprintf("127.0.0.1:%d$1", offset))
}

// runScript runs script with bash, freshly built shiplog and shiplog-device
// on PATH, in an empty directory, with env added. On failure it fails the
// test naming what ran, with the output and the logs named. It returns the
// directory it ran in and the output.
func runScript(t *testing.T, what, script string, env []string, logs ...string) (work, out string) {
	t.Helper()
	bin := buildCommands(t)
	work = t.TempDir()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = work
	cmd.Env = append(append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH")), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		text := ""
		for _, l := range logs {
			lb, _ := os.ReadFile(filepath.Join(work, l))
			text += "\n--- " + l + "\n" + string(lb)
		}
		t.Fatalf("%s failed: %v\n%s%s", what, err, b, text)
	}
	return work, string(b)
}

// TestIncidentGuide runs docs/vendor.md's incident steps as written, after
// the README's walkthrough (whose last step, a thief logging a release
// with the stolen targets key, they continue): finding the key, the thief
// logging the largest version, staging refusing to go above it, the
// targets key rotation starting a new version sequence, the clean release
// (v3) logged, the device installing it, and the auditor's findings about
// both stolen releases on record. It moves every port the README names to
// one 10000 higher, so that it never meets a walkthrough run.
func TestIncidentGuide(t *testing.T) {
	walk := shBlock.FindAllStringSubmatch(between(t, "README.md", "walkthrough"), -1)
	steps := shBlock.FindAllStringSubmatch(between(t, "docs/vendor.md", "incident"), -1)
	if len(walk) < 6 || len(steps) < 6 {
		t.Fatalf("found %d walkthrough and %d incident sh blocks", len(walk), len(steps))
	}
	var script strings.Builder
	script.WriteString(scriptHeader)
	for _, b := range walk[:len(walk)-1] { // all but "stop the servers"
		script.WriteString(b[1])
	}
	for _, b := range steps {
		script.WriteString(b[1])
	}
	_, out := runScript(t, "incident guide", shiftPorts(script.String(), 1), nil, "ledger.log", "audit.log")
	for _, want := range []string{"firmware 1.1", "9223372036854775807", "rotate the role's keys"} {
		if !strings.Contains(out, want) {
			t.Errorf("incident guide output lacks %q:\n%s", want, out)
		}
	}
}

// TestREADMESignoff runs the README's independent sign-off steps as
// written, after the walkthrough's blocks up to its auditor step (before
// the stolen-key release, as the README says), then stops the servers: a
// reproducible Go build declared with its source, two rebuilders logging
// "reproduced", a device requiring both installing it, and a release not
// built from its declared source reproduced by nobody ("mismatch", exit 3),
// refused by the device and reported by the auditor. It moves every port
// the README names to one 20000 higher, so that it never meets the other
// walkthrough runs, and needs go on PATH.
func TestREADMESignoff(t *testing.T) {
	walk := shBlock.FindAllStringSubmatch(between(t, "README.md", "walkthrough"), -1)
	steps := shBlock.FindAllStringSubmatch(between(t, "README.md", "signoff"), -1)
	if len(walk) < 6 || len(steps) < 4 {
		t.Fatalf("found %d walkthrough and %d sign-off sh blocks", len(walk), len(steps))
	}
	var script strings.Builder
	script.WriteString(scriptHeader)
	theft := false
	for _, b := range walk[:len(walk)-1] { // up to the stolen-key release
		if strings.Contains(b[1], "stolen") {
			theft = true
			break
		}
		script.WriteString(b[1])
	}
	if !theft {
		t.Fatal("the walkthrough has no stolen-key block to stop before")
	}
	for _, b := range steps {
		script.WriteString(b[1])
	}
	script.WriteString(walk[len(walk)-1][1])
	_, out := runScript(t, "sign-off steps", shiftPorts(script.String(), 2), nil, "ledger.log", "repo.log")
	for _, want := range []string{
		"reproduced  app.bin", "reproduced by rebuilder-1.example, rebuilder-2.example (2 of 2 required)",
		"mismatch  app.bin", "a trusted rebuilder stated a mismatch", "signoff-mismatch",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("sign-off steps' output lacks %q:\n%s", want, out)
		}
	}
}

// It uses the fixed ports the README names (8480, 8481, 7381-7383, 8000).
func TestREADMEWalkthrough(t *testing.T) {
	runWalkthrough(t, walkthroughScript(t), nil)
}

// walkthroughScript returns the README walkthrough's sh blocks as one bash
// script.
func walkthroughScript(t *testing.T) string {
	t.Helper()
	var script strings.Builder
	script.WriteString(scriptHeader)
	blocks := shBlock.FindAllStringSubmatch(between(t, "README.md", "walkthrough"), -1)
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
	work, out := runScript(t, "walkthrough", script, env, "ledger.log", "witness-1.log")
	for _, want := range []string{"firmware 1.0", "unexpected-release", "registered: root v1 logged at index 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, out)
		}
	}
	return work
}
