package buildinfo_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReleaseReproducible runs scripts/release.sh twice — the second time
// from a copy of the source tree at another path — and requires identical
// binaries and SHA256SUMS: no local path, VCS state, build ID or clock in
// them. It also checks the version stamp and that the device's
// fault-injection hook is not in a release build.
//
// By default it builds one of the six platforms (linux/amd64: the other
// five cost a full cross compile each, minutes on a busy machine);
// SHIPLOG_RELEASE_ALL=1 builds all six, SHIPLOG_RELEASE_FRESH_CACHE=1 gives
// the second run an empty build cache (a full rebuild).
func TestReleaseReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds release binaries twice")
	}
	if runtime.GOOS == "windows" {
		t.Skip("scripts/release.sh is a bash script")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	platforms := "linux/amd64"
	if os.Getenv("SHIPLOG_RELEASE_ALL") != "" {
		platforms = ""
	}
	copyTree := filepath.Join(t.TempDir(), "elsewhere", "shiplog")
	if err := os.MkdirAll(filepath.Dir(copyTree), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", root, copyTree).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	os.RemoveAll(filepath.Join(copyTree, "dist"))
	build := func(tree, out string, env ...string) {
		t.Helper()
		cmd := exec.Command("bash", filepath.Join(tree, "scripts", "release.sh"), "v0.0.0-test", out)
		cmd.Dir = tree
		cmd.Env = append(os.Environ(), "SHIPLOG_REVISION=0123456789abcdef0123456789abcdef01234567")
		if platforms != "" {
			cmd.Env = append(cmd.Env, "PLATFORMS="+platforms)
		}
		cmd.Env = append(cmd.Env, env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("release.sh in %s: %v\n%s", tree, err, b)
		}
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	build(root, a)
	var env []string
	if os.Getenv("SHIPLOG_RELEASE_FRESH_CACHE") != "" {
		env = append(env, "GOCACHE="+t.TempDir())
	}
	build(copyTree, b, env...)

	sumsA, err := os.ReadFile(filepath.Join(a, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sumsB, _ := os.ReadFile(filepath.Join(b, "SHA256SUMS"))
	if !bytes.Equal(sumsA, sumsB) {
		t.Fatalf("two builds differ:\n%s\n---\n%s", sumsA, sumsB)
	}
	lines := strings.Split(strings.TrimSpace(string(sumsA)), "\n")
	if want := 2 * len(strings.Fields(platforms)); platforms != "" && len(lines) != want {
		t.Fatalf("SHA256SUMS has %d lines, want %d:\n%s", len(lines), want, sumsA)
	}
	for _, l := range lines {
		name := strings.Fields(l)[1]
		fa, _ := os.ReadFile(filepath.Join(a, name))
		fb, _ := os.ReadFile(filepath.Join(b, name))
		if len(fa) == 0 || !bytes.Equal(fa, fb) {
			t.Errorf("%s differs between the two builds", name)
		}
		if bytes.Contains(fa, []byte(root)) {
			t.Errorf("%s contains the build directory %s", name, root)
		}
		if strings.HasPrefix(name, "shiplog-device-") && bytes.Contains(fa, []byte("SHIPLOG_DEVICE_FAULT")) {
			t.Errorf("%s has the fault-injection hook", name)
		}
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		out, err := exec.Command(filepath.Join(a, "shiplog-device-v0.0.0-test-linux-amd64"), "version").Output()
		if err != nil || !strings.HasPrefix(string(out), "shiplog-device v0.0.0-test (revision 0123456789ab, go") {
			t.Errorf("version of the release build: %v %q", err, out)
		}
	}
}
