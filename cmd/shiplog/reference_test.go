package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra/doc"
)

// TestCLIReferenceCurrent regenerates docs/cli/ (cobra's Markdown reference
// of every shiplog command) and fails when the committed pages differ. To
// update them after changing a command:
//
//	SHIPLOG_UPDATE_CLI_DOCS=1 go test ./cmd/shiplog -run TestCLIReferenceCurrent
func TestCLIReferenceCurrent(t *testing.T) {
	gen := t.TempDir()
	root := rootCmd()
	root.DisableAutoGenTag = true
	if err := doc.GenMarkdownTree(root, gen); err != nil {
		t.Fatal(err)
	}
	compareTree(t, gen, filepath.Join("..", "..", "docs", "cli"), "shiplog")
}

// compareTree compares the generated pages of binary (files named
// binary.md, binary_*.md) with those in dir, or copies them there when
// $SHIPLOG_UPDATE_CLI_DOCS is set.
func compareTree(t *testing.T, gen, dir, binary string) {
	t.Helper()
	update := os.Getenv("SHIPLOG_UPDATE_CLI_DOCS") != ""
	want, _ := filepath.Glob(filepath.Join(gen, binary+"*.md"))
	have, _ := filepath.Glob(filepath.Join(dir, binary+"*.md"))
	seen := map[string]bool{}
	for _, g := range want {
		name := filepath.Base(g)
		seen[name] = true
		b, _ := os.ReadFile(g)
		cur, err := os.ReadFile(filepath.Join(dir, name))
		if update {
			if err != nil || !bytes.Equal(cur, b) {
				os.MkdirAll(dir, 0o755)
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		if err != nil || !bytes.Equal(cur, b) {
			t.Errorf("docs/cli/%s is out of date: run SHIPLOG_UPDATE_CLI_DOCS=1 go test ./cmd/%s -run TestCLIReferenceCurrent", name, binary)
		}
	}
	for _, h := range have {
		name := filepath.Base(h)
		if binary == "shiplog" && len(name) > len("shiplog-") && name[:len("shiplog-")] == "shiplog-" {
			continue // another binary's pages
		}
		if !seen[name] {
			if update {
				os.Remove(h)
				continue
			}
			t.Errorf("docs/cli/%s documents a command that no longer exists", name)
		}
	}
}
