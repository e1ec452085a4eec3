// Package pidlock keeps two servers off one data directory: the first takes
// an exclusive flock(2) on a lock file beside its state and writes its
// process id into it; a second is refused at once with that process id
// ("already running (pid 1234)") instead of waiting for the state file and
// failing with a database timeout.
//
// The lock is advisory and held by the open file: it ends when the process
// exits, however it exits, so a stale lock file never blocks a restart.
// Unix only (flock).
package pidlock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

// maxPIDFile bounds what is read from a lock file.
const maxPIDFile = 32

// Lock is a held lock file. It is not safe for concurrent use.
type Lock struct {
	f *os.File
}

// HeldError means another process holds the lock.
type HeldError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's process id as it wrote it; 0 if unreadable.
	PID int
}

func (e *HeldError) Error() string {
	pid := "unknown"
	if e.PID > 0 {
		pid = strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("already running (pid %s): another process serves this data directory (%s is locked); stop it first or use another directory", pid, e.Path)
}

// Acquire takes the lock file at path (creating it, mode 0644) or returns
// a *HeldError naming the process that holds it. It never waits.
func Acquire(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("couldn't open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("couldn't lock %s: %w", path, err)
		}
		b, _ := io.ReadAll(io.LimitReader(f, maxPIDFile))
		pid, _ := strconv.Atoi(string(bytes.TrimSpace(b)))
		return nil, &HeldError{Path: path, PID: max(pid, 0)}
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("couldn't write lock file %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. The file stays; the next Acquire overwrites it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
