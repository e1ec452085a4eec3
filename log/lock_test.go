package log

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSecondLedgerOnOneDirectorySaysAlreadyRunning: a second ledger on the
// same data directory is refused at once, naming the first one's pid,
// instead of failing with a database timeout.
func TestSecondLedgerOnOneDirectorySaysAlreadyRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	x, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenIndex(path); err == nil || !strings.Contains(err.Error(), "already running (pid ") {
		t.Fatalf("second OpenIndex: %v", err)
	}
	x.Close()
	x, err = OpenIndex(path)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	x.Close()
}
