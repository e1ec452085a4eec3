package sandbox_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/deploy/sandbox"
)

// TestSandboxOnce runs the README's main job, the whole demonstration, with
// the real shiplog binary: every step must behave as promised (both attacks
// stopped, no false alarm from the auditor) and every server must stop.
func TestSandboxOnce(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "shiplog")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/shiplog").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := sandbox.Run(ctx, sandbox.Options{Exe: bin, Dir: filepath.Join(t.TempDir(), "sb"), Once: true, Out: &out})
	if err != nil {
		t.Fatalf("sandbox: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"installed v1-", "the device now runs: shiplog sandbox firmware 2.0",
		"The device refused it", "The auditor flagged it (critical)", "dashboard",
		"held: targets version", "the stolen-key release was never installed",
		"needs your consent", "GAINS capabilities: camera, network", "The auditor reports it (info)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestSandboxRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	exec.Command("touch", filepath.Join(dir, "x")).Run()
	err := sandbox.Run(context.Background(), sandbox.Options{Exe: "/bin/true", Dir: dir, Once: true, Out: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("err = %v, want a refusal of the non-empty directory", err)
	}
}
