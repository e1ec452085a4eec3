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
// stopped, no false alarm from the auditor, the reproducible firmware
// reproduced by both rebuilders and installed, the mismatched release
// refused and reported) and every server must stop. It needs go on PATH,
// as the build of the binary above does.
func TestSandboxOnce(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "shiplog")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/shiplog").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
		"0 of 2 required reproduced statements", "reproduced  app.bin",
		"reproduced by rebuilder-1.sandbox.example, rebuilder-2.sandbox.example (2 of 2 required)",
		"the device now runs the program: shiplog sandbox firmware 5.0", "mismatch  app.bin",
		"The device refuses it", "It still runs: shiplog sandbox firmware 5.0",
		"The auditor reports it (critical): rebuilder rebuilder-2.sandbox.example built other bytes",
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
