package shiplog_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVendorRootCeremony runs the root-key ceremony of docs/vendor.md as
// written: three keyholders sign root v1 (threshold 3) from an exported
// request on their own, and the repository imports their signatures.
func TestVendorRootCeremony(t *testing.T) {
	doc, err := os.ReadFile("docs/vendor.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(doc), "<!-- ceremony:begin -->")
	steps, _, ok2 := strings.Cut(rest, "<!-- ceremony:end -->")
	if !ok1 || !ok2 {
		t.Fatal("docs/vendor.md has no ceremony markers")
	}
	blocks := shBlock.FindAllStringSubmatch(steps, -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d sh blocks", len(blocks))
	}
	script := "set -euo pipefail\n"
	for _, b := range blocks {
		script += b[1]
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "shiplog"), "./cmd/shiplog").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ceremony failed: %v\n%s", err, out)
	}
	for _, want := range []string{"needs 3 of 3 keys of root v1", "signed root v1 with", "needs more signatures", "READY to publish"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ceremony output lacks %q:\n%s", want, out)
		}
	}
	// The repository's machine never held a private key.
	for _, f := range []string{"repo", "root.request", "alice.sig"} {
		filepath.Walk(filepath.Join(work, f), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), "PRIVATE KEY") {
					t.Errorf("%s holds a private key", p)
				}
			}
			return nil
		})
	}
}
