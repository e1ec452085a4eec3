package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shiplog/shiplog/client/capability"
	"github.com/shiplog/shiplog/evidence/provenance"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// MaxCustomSize bounds the custom JSON of one target.
const MaxCustomSize = 64 << 10

// TargetInput is one file to add as a target.
type TargetInput struct {
	// Path is the TUF target path, e.g. "firmware/v2.bin".
	Path string
	// File is the local file to publish.
	File string
	// Custom is optional JSON (an object) stored as the target's "custom"
	// field: release notes, hardware ids, minimum version.
	Custom json.RawMessage
	// Capabilities, when not empty, are declared in Custom's
	// "capabilities" list (docs/spec/capabilities.md), sorted; a list
	// already in Custom is replaced.
	Capabilities []string
}

// AddOptions configures Add.
type AddOptions struct {
	Targets []TargetInput
	// Replace allows a path that already exists to point to a new file.
	Replace bool
	// Progress, when not nil, receives a progress bar while large files are hashed.
	Progress io.Writer
}

// AddResult describes one added target.
type AddResult struct {
	Path   string `json:"path"`
	Role   string `json:"role"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
	// Stored is the consistent-snapshot file under DIR/targets.
	Stored string `json:"stored"`
	// Unchanged is true when the path already had exactly this file.
	Unchanged bool `json:"unchanged,omitempty"`
}

// Add stages targets: it copies each file into DIR/targets under its
// consistent-snapshot name (<dir>/<sha256>.<basename>), then records it in
// the targets role a client would look it up in. A path listed twice, or a
// path that already names a different file (without Replace), is refused
// before anything is written. Staged signatures of changed roles are dropped.
func (r *Repo) Add(o AddOptions) ([]AddResult, error) {
	if len(o.Targets) == 0 {
		return nil, errors.New("no files to add")
	}
	v := r.working()
	seen := map[string]bool{}
	roles := make([]string, len(o.Targets))
	o.Targets = slices.Clone(o.Targets) // Custom gains the capabilities below
	for i, t := range o.Targets {
		if err := ValidTargetPath(t.Path); err != nil {
			return nil, err
		}
		if seen[t.Path] {
			return nil, fmt.Errorf("target path %s is given twice", t.Path)
		}
		seen[t.Path] = true
		if len(t.Capabilities) > 0 {
			c, err := WithCapabilities(t.Custom, t.Capabilities)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", t.Path, err)
			}
			t.Custom = c
			o.Targets[i].Custom = c
		}
		if err := validCustom(t.Custom); err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Path, err)
		}
		role, err := v.responsible(t.Path)
		if err != nil {
			return nil, err
		}
		if role != "targets" {
			if tm := v.targets("targets"); tm != nil && tm.Signed.Targets[t.Path] != nil {
				return nil, fmt.Errorf("target path %s is listed in targets, which clients search before %s: remove it first with `shiplog repo remove`", t.Path, role)
			}
		}
		roles[i] = role
	}
	out := make([]AddResult, len(o.Targets))
	files := make([]*metadata.TargetFiles, len(o.Targets))
	st := &storer{r: r, dirs: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			st.undo()
		}
	}()
	for i, t := range o.Targets {
		tf, stored, err := st.store(t, o.Progress)
		if err != nil {
			return nil, err
		}
		files[i] = tf
		out[i] = AddResult{Path: t.Path, Role: roles[i], Length: tf.Length, SHA256: tf.Hashes["sha256"].String(), Stored: stored}
		old := v.targets(roles[i]).Signed.Targets[t.Path]
		if old == nil {
			continue
		}
		if sameTarget(old, tf) {
			out[i].Unchanged = true
		} else if !o.Replace {
			return nil, fmt.Errorf("target path %s already exists with sha256 %s: pass --replace to publish a new file under the same path, or choose another path", t.Path, old.Hashes["sha256"])
		}
	}
	for i, t := range o.Targets {
		if out[i].Unchanged {
			continue
		}
		m, err := r.stageTargets(roles[i])
		if err != nil {
			return nil, err
		}
		files[i].Path = t.Path
		m.Signed.Targets[t.Path] = files[i]
	}
	if err := st.sync(); err != nil {
		return nil, err
	}
	if err := r.saveStaging(); err != nil {
		return nil, err
	}
	ok = true
	return out, nil
}

// storer copies target files into DIR/targets, remembering what it created
// so that a failed Add leaves no new file behind.
type storer struct {
	r       *Repo
	dirs    map[string]bool
	created []string
}

func (s *storer) sync() error {
	for d := range s.dirs {
		if err := durable.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

func (s *storer) undo() {
	for _, f := range s.created {
		os.Remove(f)
	}
}

func sameTarget(a, b *metadata.TargetFiles) bool {
	ac, bc := []byte(nil), []byte(nil)
	if a.Custom != nil {
		ac = *a.Custom
	}
	if b.Custom != nil {
		bc = *b.Custom
	}
	return a.Length == b.Length && a.Hashes.Equal(b.Hashes) && bytes.Equal(compactJSON(ac), compactJSON(bc))
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if len(b) == 0 || json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// Remove stages the removal of target paths from the roles that list them.
// The files stay under DIR/targets, since snapshots already published name
// them. An unknown path is an error and nothing is changed.
func (r *Repo) Remove(paths []string) ([]string, error) {
	v := r.working()
	owner := map[string]string{}
	for _, p := range paths {
		err := v.walk(func(d delegation, m *metadata.Metadata[metadata.TargetsType]) error {
			if m != nil && m.Signed.Targets[p] != nil && owner[p] == "" {
				owner[p] = d.Role
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if owner[p] == "" {
			return nil, fmt.Errorf("target path %s is in no targets role of the repository, committed or staged (paths are exact, as given to `shiplog repo add --path`)", p)
		}
	}
	var roles []string
	for _, p := range paths {
		m, err := r.stageTargets(owner[p])
		if err != nil {
			return nil, err
		}
		delete(m.Signed.Targets, p)
		roles = append(roles, owner[p])
	}
	return roles, r.saveStaging()
}

// ValidTargetPath checks a TUF target path: 1-1024 bytes of printable UTF-8,
// '/'-separated, relative, with no empty, "." or ".." segment and no
// backslash, so that it maps to one file under DIR/targets on every system.
func ValidTargetPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("invalid target path %q: %s", p, why) }
	if p == "" || len(p) > maxTargetPathSize {
		return bad(fmt.Sprintf("want 1-%d bytes", maxTargetPathSize))
	}
	if !utf8.ValidString(p) || strings.ContainsFunc(p, func(c rune) bool { return !unicode.IsPrint(c) || c == '\\' }) {
		return bad("want printable UTF-8 without backslashes")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("want a relative path without empty, \".\" or \"..\" segments")
		}
	}
	return nil
}

func validCustom(c json.RawMessage) error {
	if len(c) == 0 {
		return nil
	}
	if len(c) > MaxCustomSize {
		return fmt.Errorf("custom JSON larger than %d bytes", MaxCustomSize)
	}
	var obj map[string]any
	if err := json.Unmarshal(c, &obj); err != nil || obj == nil {
		return errors.New("custom must be a JSON object, e.g. {\"notes\":\"fixes boot loop\"}")
	}
	if _, err := capability.FromCustom(c); err != nil { // devices refuse what does not parse
		return fmt.Errorf("custom: %w", err)
	}
	if _, _, err := provenance.FromCustom(c); err != nil { // rebuilders refuse it: docs/spec/provenance.md
		return fmt.Errorf("custom: %w", err)
	}
	return nil
}

// WithCapabilities returns custom (a JSON object, or empty) with its
// "capabilities" list set to caps, checked and sorted.
func WithCapabilities(custom json.RawMessage, caps []string) (json.RawMessage, error) {
	set, err := capability.New(caps...)
	if err != nil {
		return nil, err
	}
	obj := map[string]json.RawMessage{}
	if len(custom) > 0 {
		if err := json.Unmarshal(custom, &obj); err != nil || obj == nil {
			return nil, errors.New("custom must be a JSON object")
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	obj[capability.Key] = b
	return json.Marshal(obj)
}

// storedName is the consistent-snapshot file name of a target (TUF 1.0
// §5.7.3): <dir>/<sha256 hex>.<basename>.
func storedName(targetPath, sha string) string {
	dir, base := path.Split(targetPath)
	return dir + sha + "." + base
}

// store hashes t.File while copying it into DIR/targets under a temporary
// name, fsyncs it and renames it to its consistent-snapshot name. The
// directory is synced later, once for all files (sync).
func (s *storer) store(t TargetInput, progress io.Writer) (*metadata.TargetFiles, string, error) {
	r := s.r
	src, err := os.Open(t.File)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't read target file: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s is not a regular file", t.File)
	}
	dir := filepath.Join(r.Dir, TargetsDir, filepath.FromSlash(path.Dir(t.Path)))
	if err := durable.MkdirAll(dir, 0o755); err != nil { // public: served as is
		return nil, "", err
	}
	tmp, err := durable.CreateTemp(dir, ".add-*", durable.Public) // served to anyone
	if err != nil {
		return nil, "", err
	}
	defer tmp.Discard()
	h := sha256.New()
	var in io.Reader = src
	if progress != nil && fi.Size() >= progressThreshold {
		bar := newProgress(progress, "hashing "+t.Path, fi.Size())
		defer bar.done()
		in = io.TeeReader(src, bar)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), in)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't copy %s: %w", t.File, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	stored := storedName(t.Path, sum)
	dst := filepath.Join(r.Dir, TargetsDir, filepath.FromSlash(stored))
	if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
		s.created = append(s.created, dst)
	}
	if err := tmp.Rename(dst); err != nil { // fsync, then rename
		return nil, "", err
	}
	s.dirs[dir] = true
	tf := &metadata.TargetFiles{Length: n, Hashes: metadata.Hashes{"sha256": h.Sum(nil)}}
	if len(t.Custom) > 0 {
		c := json.RawMessage(compactJSON(t.Custom))
		tf.Custom = &c
	}
	return tf, stored, nil
}
