// Package durable writes files so that a crash leaves either the old or the
// new content, never a mixture: write a temporary file in the same directory,
// fsync it, rename it over the target, fsync the directory.
//
// Every file is created with an explicit mode, whatever the umask: Public
// (0644) for what a web server hands to anyone (TUF metadata, targets,
// tlog-proofs, bundles), Private (0600) for keys and secrets.
package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Modes of the files this package writes.
const (
	// Public is for files served to anyone: metadata, targets, proofs.
	Public os.FileMode = 0o644
	// Private is for keys, tokens and other secrets.
	Private os.FileMode = 0o600
)

// Temp is a file being written under a temporary name in the directory of
// its final path. Write to it, then Rename it into place; Discard removes it
// (a no-op after Rename). It is not safe for concurrent use.
type Temp struct {
	*os.File
	dir     string
	renamed bool
}

// CreateTemp creates a temporary file in dir with mode perm (os.CreateTemp
// alone makes 0600 files, which a web server running as another user cannot
// read).
func CreateTemp(dir, pattern string, perm os.FileMode) (*Temp, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &Temp{File: f, dir: dir}, nil
}

// Rename fsyncs and closes the file and renames it to path, which must be in
// the same directory tree (same file system). The rename is durable only
// after SyncDir of path's directory; WriteFile does both.
func (t *Temp) Rename(path string) error {
	if err := t.Sync(); err != nil {
		t.Close()
		return fmt.Errorf("couldn't sync %s: %w", path, err)
	}
	if err := t.Close(); err != nil {
		return err
	}
	if err := os.Rename(t.Name(), path); err != nil {
		return fmt.Errorf("couldn't replace %s: %w", path, err)
	}
	t.renamed = true
	return nil
}

// Discard closes and removes the temporary file unless it was renamed.
func (t *Temp) Discard() {
	if t.renamed {
		return
	}
	t.Close()
	os.Remove(t.Name())
}

// WriteFile atomically replaces path with data, created with perm. When it
// returns nil, the new content is durable.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := CreateTemp(dir, "."+filepath.Base(path)+".tmp*", perm)
	if err != nil {
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	defer f.Discard()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	if err := f.Rename(path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// CreateFile writes data to path only if path does not exist yet (O_EXCL),
// with mode perm whatever the umask, then fsyncs it and its directory. It
// reports os.ErrExist when path exists.
func CreateFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// MkdirAll creates dir and any missing parents with mode perm whatever the
// umask (os.MkdirAll applies it: under a umask of 077 a web server could not
// enter a public directory). Directories that exist are left as they are.
func MkdirAll(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	} else if err != nil {
		return nil // made by someone else meanwhile
	}
	return os.Chmod(dir, perm)
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("couldn't sync directory %s: %w", dir, err)
	}
	return nil
}
