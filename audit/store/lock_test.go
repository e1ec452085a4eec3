package store

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSecondAuditorOnOneDirectorySaysAlreadyRunning: a second auditor on
// the same state file is refused at once, naming the first one's pid,
// instead of a database timeout after 5 seconds.
func TestSecondAuditorOnOneDirectorySaysAlreadyRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "already running (pid ") {
		t.Fatalf("second Open: %v", err)
	}
}
