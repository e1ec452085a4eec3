// Package pidlock keeps two servers off one data directory: the first takes
// an exclusive lock on a lock file beside its state and writes its process
// id into it; a second is refused at once with that process id ("already
// running (pid 1234)") instead of waiting for the state file and failing
// with a database timeout.
//
// The lock is github.com/gofrs/flock's (flock(2) on Unix, LockFileEx on
// Windows) and is held by the open file: it ends when the process exits,
// however it exits, so a stale lock file never blocks a restart. Windows
// locks are mandatory and cover the file's first byte, so the process id is
// written from byte 1 on, where another process can still read it.
package pidlock

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/gofrs/flock"
)

// maxPIDFile bounds what is read from a lock file.
const maxPIDFile = 32

// Lock is a held lock file. It is not safe for concurrent use.
type Lock struct {
	f *flock.Flock
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

// pidOffset is where the process id starts in the lock file: after the
// byte a Windows lock covers.
const pidOffset = 1

// Acquire takes the lock file at path (creating it, mode 0644) or returns
// a *HeldError naming the process that holds it. It never waits.
func Acquire(path string) (*Lock, error) {
	fl := flock.New(path, flock.SetFlag(os.O_RDWR|os.O_CREATE), flock.SetPermissions(0o644))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("couldn't lock %s: %w", path, err)
	}
	if !ok {
		return nil, &HeldError{Path: path, PID: readPID(path)}
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		// Fixed width, so a shorter pid leaves no digits of a longer one.
		_, err = f.WriteAt([]byte(fmt.Sprintf("%-20d\n", os.Getpid())), pidOffset)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fl.Unlock()
		return nil, fmt.Errorf("couldn't write lock file %s: %w", path, err)
	}
	return &Lock{f: fl}, nil
}

// readPID reads the holder's process id from the lock file; 0 if unreadable.
func readPID(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	b := make([]byte, maxPIDFile)
	n, _ := f.ReadAt(b, pidOffset)
	pid, _ := strconv.Atoi(string(bytes.TrimSpace(b[:n])))
	return max(pid, 0)
}

// Release gives the lock up. The file stays; the next Acquire overwrites it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Unlock()
	l.f = nil
	return err
}
