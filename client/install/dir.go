package install

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/shiplog/shiplog/internal/durable"
)

// Dir installs each version as a directory: Root/versions/<id>/<target
// path>, with Root/current a symlink to the active one. A version is staged
// in Root/versions/.staging-<id>, renamed to versions/<id> when complete, and
// switched to by renaming a new symlink over current (rename is atomic).
type Dir struct {
	Root  string
	Fault Fault
}

const currentLink = "current"

func (d *Dir) versions() string { return filepath.Join(d.Root, "versions") }

// Active implements Installer.
func (d *Dir) Active() (string, error) {
	target, err := os.Readlink(filepath.Join(d.Root, currentLink))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return filepath.Base(target), nil
}

// Stage implements Installer.
func (d *Dir) Stage(id string) (Stage, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.versions(), 0o755); err != nil {
		return nil, err
	}
	dir := filepath.Join(d.versions(), ".staging-"+id)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	return &dirStage{d: d, id: id, dir: dir, dirs: map[string]bool{dir: true}}, nil
}

type dirStage struct {
	d    *Dir
	id   string
	dir  string
	dirs map[string]bool // directories to fsync before the switch
}

// Create implements Stage.
func (s *dirStage) Create(path string) (io.WriteCloser, error) {
	fp, err := checkPath(path)
	if err != nil {
		return nil, err
	}
	full := filepath.Join(s.dir, fp)
	for p := filepath.Dir(full); len(p) > len(s.dir); p = filepath.Dir(p) {
		s.dirs[p] = true
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, fault: s.d.Fault, step: "file-written"}, nil
}

// Switch implements Stage.
func (s *dirStage) Switch() error {
	for dir := range s.dirs {
		if err := durable.SyncDir(dir); err != nil {
			return err
		}
	}
	final := filepath.Join(s.d.versions(), s.id)
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(s.dir, final); err != nil {
		return fmt.Errorf("couldn't complete version %s: %w", s.id, err)
	}
	if err := durable.SyncDir(s.d.versions()); err != nil {
		return err
	}
	s.d.Fault.at("version-complete")
	return s.d.point(s.id)
}

// point switches current to version id by renaming a fresh symlink over it.
func (d *Dir) point(id string) error {
	tmp := filepath.Join(d.Root, ".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join("versions", id), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(d.Root, currentLink)); err != nil {
		return fmt.Errorf("couldn't switch to version %s: %w", id, err)
	}
	return durable.SyncDir(d.Root)
}

// Abort implements Stage.
func (s *dirStage) Abort() error { return os.RemoveAll(s.dir) }

// Settle implements Installer.
func (d *Dir) Settle(id string) error {
	active, err := d.Active()
	if err != nil {
		return err
	}
	if active != id {
		if id == "" {
			if err := os.Remove(filepath.Join(d.Root, currentLink)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err := durable.SyncDir(d.Root); err != nil {
				return err
			}
		} else {
			if err := checkID(id); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(d.versions(), id)); err != nil {
				return fmt.Errorf("cannot restore version %s: %w", id, ErrNotInstalled)
			}
			if err := d.point(id); err != nil {
				return err
			}
		}
	}
	entries, err := os.ReadDir(d.versions())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != id {
			if err := os.RemoveAll(filepath.Join(d.versions(), e.Name())); err != nil {
				return err
			}
		}
	}
	os.Remove(filepath.Join(d.Root, ".current.tmp"))
	return durable.SyncDir(d.versions())
}

// Open implements Installer.
func (d *Dir) Open(path string) (io.ReadCloser, error) {
	fp, err := checkPath(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(d.Root, currentLink, fp))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotInstalled)
	}
	return f, err
}

// syncFile fsyncs on Close.
type syncFile struct {
	*os.File
	fault   Fault
	step    string
	written bool
}

// Write writes p; the first write is a fault point ("file-partial"), so
// that a power-loss test can stop in the middle of a file.
func (f *syncFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if !f.written && n > 0 {
		f.written = true
		f.fault.at("file-partial")
	}
	return n, err
}

func (f *syncFile) Close() error {
	if err := f.File.Sync(); err != nil {
		f.File.Close()
		return err
	}
	if err := f.File.Close(); err != nil {
		return err
	}
	f.fault.at(f.step)
	return nil
}
