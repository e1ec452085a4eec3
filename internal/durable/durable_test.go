//go:build unix

package durable

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestModesIgnoreUmask (Unix: Windows has no umask): public files are 0644 and private ones 0600 even
// under a umask of 077 (a vendor's shell) and through CreateTemp, whose
// files are 0600 by default (a web server then answers 403).
func TestModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	check := func(name string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	if err := MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	check("a", 0o755)
	check("a/b", 0o755)
	if err := WriteFile(filepath.Join(dir, "public"), []byte("x"), Public); err != nil {
		t.Fatal(err)
	}
	check("public", Public)
	if err := CreateFile(filepath.Join(dir, "key"), []byte("x"), Private); err != nil {
		t.Fatal(err)
	}
	check("key", Private)
	if err := CreateFile(filepath.Join(dir, "key.pub"), []byte("x"), Public); err != nil {
		t.Fatal(err)
	}
	check("key.pub", Public)
	tmp, err := CreateTemp(dir, ".t*", Public)
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Discard()
	tmp.WriteString("payload")
	if err := tmp.Rename(filepath.Join(dir, "target")); err != nil {
		t.Fatal(err)
	}
	check("target", Public)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 5 {
		t.Errorf("left behind: %v", ents)
	}
}
