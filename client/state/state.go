// Package state keeps a device's trusted state — its latest root, timestamp,
// snapshot and targets roles (exact bytes), its newest checkpoint per log,
// and the manifest of the installed version — in one file that is replaced
// atomically (temp file, fsync, rename, fsync directory), so that a crash
// leaves either the old or the new state, never a mixture.
//
// The file is a header line, a digest line and a JSON body:
//
//	shiplog-device-state/v1
//	sha256 5d41402abc4b2a76b9719d911017c592...
//	{"root":"eyJzaWduZWQiOnsi...","timestamp":...}
//
// The digest covers the body. A file whose header, digest or body does not
// check out is reported as ErrCorrupt and never overwritten: a device with
// corrupt state stops and asks for help rather than trusting anything.
package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gofrs/flock"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shiplog/shiplog/internal/durable"
)

const header = "shiplog-device-state/v1\n"

// MaxSize bounds the state file (roots, roles and checkpoints).
const MaxSize = 64 << 20

// FileName is the state file's name inside the state directory.
const FileName = "state"

var (
	// ErrCorrupt means the state file exists but does not check out.
	ErrCorrupt = errors.New("device state is corrupt")
	// ErrNoState means the state directory was never initialized.
	ErrNoState = errors.New("device state not initialized")
	// ErrLocked means another process holds the state's lock.
	ErrLocked = errors.New("device state in use by another process")
	// ErrConflict means the state file changed since it was loaded.
	ErrConflict = errors.New("device state changed since it was loaded")
)

// State is a device's trusted state.
type State struct {
	Root        []byte            `json:"root"`
	Timestamp   []byte            `json:"timestamp,omitempty"`
	Snapshot    []byte            `json:"snapshot,omitempty"`
	Targets     map[string][]byte `json:"targets,omitempty"`
	Checkpoints map[string][]byte `json:"checkpoints,omitempty"`
	Installed   *Manifest         `json:"installed,omitempty"`

	digest string // of the file this State was loaded from
}

// Manifest describes the installed version.
type Manifest struct {
	// ID names the version in the installer ("" when nothing is installed).
	ID string `json:"id"`
	// TargetsVersion is the version of the top-level targets role the
	// version was installed from.
	TargetsVersion int64 `json:"targets_version"`
	// Files maps target paths to what was installed.
	Files map[string]File `json:"files"`
}

// File is one installed target file.
type File struct {
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"` // lowercase hex
	// Custom is the target's custom metadata, as signed.
	Custom json.RawMessage `json:"custom,omitempty"`
}

// InstalledID returns the installed version's id, "" if none.
func (s *State) InstalledID() string {
	if s == nil || s.Installed == nil {
		return ""
	}
	return s.Installed.ID
}

// Encode returns the file encoding of s.
func Encode(s *State) ([]byte, error) {
	body, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("sha256 " + hex.EncodeToString(sum[:]) + "\n")
	b.Write(body)
	return b.Bytes(), nil
}

// Decode parses and checks a state file.
func Decode(b []byte) (*State, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, MaxSize)
	}
	rest, ok := bytes.CutPrefix(b, []byte(header))
	if !ok {
		return nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	line, body, ok := bytes.Cut(rest, []byte("\n"))
	want, ok2 := bytes.CutPrefix(line, []byte("sha256 "))
	if !ok || !ok2 {
		return nil, fmt.Errorf("%w: no digest", ErrCorrupt)
	}
	sum := sha256.Sum256(body)
	if string(want) != hex.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("%w: digest mismatch", ErrCorrupt)
	}
	var s State
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: bad body", ErrCorrupt)
	}
	if len(s.Root) == 0 {
		return nil, fmt.Errorf("%w: no root", ErrCorrupt)
	}
	s.digest = string(want)
	return &s, nil
}

// Store is a state directory. Its methods are not safe for concurrent use;
// Lock keeps other processes out.
type Store struct {
	Dir string
}

func (st Store) path() string { return filepath.Join(st.Dir, FileName) }

// Load reads and checks the state file.
func (st Store) Load() (*State, error) {
	f, err := os.Open(st.path())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s in %s (run shiplog-device init)", ErrNoState, FileName, st.Dir)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	return Decode(b)
}

// Create writes the first state; it fails if a state file exists.
func (st Store) Create(s *State) error {
	b, err := Encode(s)
	if err != nil {
		return err
	}
	if err := durable.CreateFile(st.path(), b, 0o600); err != nil {
		return fmt.Errorf("couldn't create device state: %w", err)
	}
	return nil
}

// Commit replaces the state that old was loaded from with next, atomically
// and durably. It is a compare-and-swap: if the file no longer holds old
// (another process committed, or it became corrupt) it returns ErrConflict
// or ErrCorrupt and writes nothing.
func (st Store) Commit(old, next *State) error {
	cur, err := st.Load()
	if err != nil {
		return err
	}
	if cur.digest != old.digest {
		return ErrConflict
	}
	b, err := Encode(next)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(st.path(), b, 0o600); err != nil {
		return err
	}
	sum := sha256.Sum256(b[bytes.IndexByte(b[len(header):], '\n')+len(header)+1:])
	next.digest = hex.EncodeToString(sum[:])
	return nil
}

// Lock takes an exclusive advisory lock on the state directory, failing at
// once if another process holds it. Unlock with the returned function.
//
// The lock is github.com/gofrs/flock's: flock(2) on Unix, LockFileEx on
// Windows; it ends when the process exits, however it exits.
func (st Store) Lock() (unlock func(), err error) {
	if _, err := os.Stat(st.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no directory %s (run shiplog-device init, or give the device's --data-dir)", ErrNoState, st.Dir)
	}
	l := flock.New(filepath.Join(st.Dir, "lock"), flock.SetFlag(os.O_RDWR|os.O_CREATE), flock.SetPermissions(0o600))
	ok, err := l.TryLock()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s (an update or install is running): try again once it ends; `shiplog-device status` answers meanwhile", ErrLocked, st.Dir)
	}
	return func() { l.Unlock() }, nil
}
