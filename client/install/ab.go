package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/shiplog/shiplog/internal/durable"
)

// AB installs one image file into two slots, Root/slot-a and Root/slot-b, as
// A/B firmware updates do: the new image is written to the inactive slot and
// the boot record Root/boot.json, replaced atomically, selects the active
// slot and names the version in each. Before a slot is overwritten its name
// is cleared in the boot record, so a half-written slot is never taken for a
// version. Image is the one target path it installs; other paths are refused.
type AB struct {
	Root  string
	Image string
	Fault Fault
}

// bootRecord is Root/boot.json.
type bootRecord struct {
	Active string `json:"active"` // "a", "b" or ""
	A      string `json:"a"`
	B      string `json:"b"`
}

func (r *bootRecord) id(slot string) string {
	switch slot {
	case "a":
		return r.A
	case "b":
		return r.B
	}
	return ""
}

func (r *bootRecord) set(slot, id string) {
	if slot == "a" {
		r.A = id
	} else {
		r.B = id
	}
}

func other(slot string) string {
	if slot == "a" {
		return "b"
	}
	return "a"
}

func (ab *AB) load() (*bootRecord, error) {
	b, err := os.ReadFile(filepath.Join(ab.Root, "boot.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &bootRecord{}, nil
	}
	if err != nil {
		return nil, err
	}
	var r bootRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || (r.Active != "" && r.Active != "a" && r.Active != "b") {
		return nil, errors.New("corrupt boot record")
	}
	return &r, nil
}

func (ab *AB) store(r *bootRecord) error {
	b, _ := json.Marshal(r)
	if err := os.MkdirAll(ab.Root, 0o755); err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(ab.Root, "boot.json"), b, 0o644)
}

// Active implements Installer.
func (ab *AB) Active() (string, error) {
	r, err := ab.load()
	if err != nil {
		return "", err
	}
	return r.id(r.Active), nil
}

// Stage implements Installer.
func (ab *AB) Stage(id string) (Stage, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(ab.Root, 0o755); err != nil {
		return nil, err
	}
	r, err := ab.load()
	if err != nil {
		return nil, err
	}
	slot := "a"
	if r.Active != "" {
		slot = other(r.Active)
	}
	if r.id(slot) != "" { // invalidate the slot before overwriting it
		r.set(slot, "")
		if err := ab.store(r); err != nil {
			return nil, err
		}
		ab.Fault.at("slot-invalidated")
	}
	return &abStage{ab: ab, id: id, slot: slot}, nil
}

type abStage struct {
	ab      *AB
	id      string
	slot    string
	written bool
}

// Create implements Stage.
func (s *abStage) Create(path string) (io.WriteCloser, error) {
	if path != s.ab.Image {
		return nil, fmt.Errorf("A/B installer installs only %q, not %q", s.ab.Image, path)
	}
	if s.written {
		return nil, errors.New("A/B image already written")
	}
	s.written = true
	f, err := os.OpenFile(filepath.Join(s.ab.Root, "slot-"+s.slot), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, fault: s.ab.Fault, step: "file-written"}, nil
}

// Switch implements Stage.
func (s *abStage) Switch() error {
	if !s.written {
		return errors.New("A/B stage has no image")
	}
	if err := durable.SyncDir(s.ab.Root); err != nil {
		return err
	}
	r, err := s.ab.load()
	if err != nil {
		return err
	}
	r.set(s.slot, s.id)
	r.Active = s.slot
	return s.ab.store(r)
}

// Abort implements Stage: the slot stays invalidated.
func (s *abStage) Abort() error { return nil }

// Settle implements Installer.
func (ab *AB) Settle(id string) error {
	r, err := ab.load()
	if err != nil {
		return err
	}
	switch {
	case r.id(r.Active) == id:
		return nil
	case id == "":
		r.Active = ""
	case r.Active != "" && r.id(other(r.Active)) == id:
		r.Active = other(r.Active)
	case r.Active == "" && (r.A == id || r.B == id):
		r.Active = "a"
		if r.B == id {
			r.Active = "b"
		}
	default:
		return fmt.Errorf("cannot restore version %s: %w", id, ErrNotInstalled)
	}
	return ab.store(r)
}

// Open implements Installer.
func (ab *AB) Open(path string) (io.ReadCloser, error) {
	r, err := ab.load()
	if err != nil {
		return nil, err
	}
	if path != ab.Image || r.Active == "" {
		return nil, fmt.Errorf("%s: %w", path, ErrNotInstalled)
	}
	return os.Open(filepath.Join(ab.Root, "slot-"+r.Active))
}
