// Package install puts verified target files in place atomically. An
// Installer keeps the active version untouched while a new one is staged
// beside it, and switches with one atomic operation, so that a crash at any
// point leaves either the old or the new version in use, never a mixture.
//
// Two installers: Dir (each version a directory, switched by renaming a
// symlink) and AB (one image file per slot, switched by rewriting a boot
// record). The device commits its trusted state after Switch and then calls
// Settle with the committed version; after a crash it calls Settle with the
// version its state names, which rolls a switched-but-uncommitted version
// back.
package install

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Installer installs versions. Implementations must make Switch atomic and
// durable (when it returns nil, the new version survives a crash; when it
// fails or the process dies inside it, the old one is in use), and must keep
// the active version readable until Settle removes it.
type Installer interface {
	// Active returns the id of the version in use, "" if none.
	Active() (string, error)
	// Stage begins installing version id beside the active one.
	Stage(id string) (Stage, error)
	// Settle makes version id active ("" for none) if it is not, and removes
	// staged and inactive versions. It is idempotent; it fails if id is
	// neither active nor complete.
	Settle(id string) error
	// Open opens target path of the active version.
	Open(path string) (io.ReadCloser, error)
}

// Stage is a version being installed.
type Stage interface {
	// Create returns a writer for target path; Close makes the content
	// durable. The caller verifies the content before Switch.
	Create(path string) (io.WriteCloser, error)
	// Switch makes the staged version active, atomically and durably.
	Switch() error
	// Abort discards the staged version.
	Abort() error
}

// ErrNotInstalled means an installer has no such version or file.
var ErrNotInstalled = errors.New("not installed")

// Fault is called at each named step of an install when set (a test hook:
// a power-loss test kills the process there). Nil does nothing.
type Fault func(step string)

func (f Fault) at(step string) {
	if f != nil {
		f(step)
	}
}

// checkPath refuses target paths that would leave the version directory.
func checkPath(p string) (string, error) {
	fp := filepath.FromSlash(p)
	if p == "" || len(p) > 4096 || !filepath.IsLocal(fp) || strings.Contains(p, "\\") || strings.Contains(p, "\x00") {
		return "", fmt.Errorf("unsafe target path %q", p)
	}
	return fp, nil
}

// checkID refuses version ids that are not simple names.
func checkID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/\\") || strings.HasPrefix(id, ".") {
		return fmt.Errorf("invalid version id %q", id)
	}
	return nil
}
