package shiplog_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVendorRootCeremony runs the root-key ceremony of docs/vendor.md as
// written: three keyholders sign root v1 (threshold 3) from an exported
// request on their own, and the repository imports their signatures.
func TestVendorRootCeremony(t *testing.T) {
	blocks := shBlock.FindAllStringSubmatch(between(t, "docs/vendor.md", "ceremony"), -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d sh blocks", len(blocks))
	}
	script := scriptHeader
	for _, b := range blocks {
		script += b[1]
	}
	work, out := runScript(t, "ceremony", script, nil)
	for _, want := range []string{"needs 3 of 3 keys of root v1", "signed root v1 with", "needs more signatures", "READY to publish"} {
		if !strings.Contains(out, want) {
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
