package witness

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSecondWitnessOnOneDirectorySaysAlreadyRunning: a second witness on
// the same state is refused at once, naming the first one's pid.
func TestSecondWitnessOnOneDirectorySaysAlreadyRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	s, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := OpenStore(path, nil); err == nil || !strings.Contains(err.Error(), "already running (pid ") {
		t.Fatalf("second OpenStore: %v", err)
	}
}
