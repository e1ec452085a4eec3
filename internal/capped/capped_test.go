package capped

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("12345"), 0o644)
	if b, err := ReadFile(p, 5); err != nil || string(b) != "12345" {
		t.Errorf("ReadFile at the cap = %q, %v", b, err)
	}
	if _, err := ReadFile(p, 4); err == nil || !strings.Contains(err.Error(), "larger than 4 bytes") {
		t.Errorf("ReadFile over the cap: err = %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing"), 4); !os.IsNotExist(err) {
		t.Errorf("missing file: err = %v", err)
	}
}
