package pidlock

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSecondServerSaysAlreadyRunning: a second Acquire on the same file is
// refused at once, naming the holder's pid; after Release it succeeds.
func TestSecondServerSaysAlreadyRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.lock")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(path)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != os.Getpid() {
		t.Fatalf("second Acquire: %v", err)
	}
	if !strings.Contains(err.Error(), "already running (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Errorf("message: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(path)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l2.Release()
}
