package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gofrs/flock"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/shiplog/shiplog/internal/capped"

	"github.com/shiplog/shiplog/internal/durable"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Directory and file names of the repository layout (docs/vendor.md).
const (
	MetadataDir = "metadata"
	TargetsDir  = "targets"
	StagingFile = "staging.json"
	lockFile    = ".shiplog.lock"
	proofSuffix = ".tlog-proof"
)

// Limits on what the repository reads from its own directory: the sizes are
// go-tuf's client defaults, so that nothing we write is refused by clients.
const (
	MaxRootSize       = 512000
	MaxTimestampSize  = 16384
	MaxSnapshotSize   = 2 << 20
	MaxTargetsSize    = 5 << 20
	MaxStagingSize    = 1 << 30
	MaxRootVersions   = 256
	MaxRoles          = 1 << 14
	MaxProofFileSize  = 128 << 10
	maxMetadataFiles  = 1 << 20
	maxTargetPathSize = 1024
)

// roleName is the alphabet of delegated role names: they become file names.
var roleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// metaFile matches <version>.<role>.json.
var metaFile = regexp.MustCompile(`^([1-9][0-9]{0,18})\.([A-Za-z0-9][A-Za-z0-9_-]{0,63})\.json$`)

// Repo is an open repository directory: the committed metadata (what is in
// DIR/metadata) and the staged changes (DIR/staging.json). Methods that
// change it write durably; a Repo is not safe for concurrent use, and Open
// holds an exclusive lock on the directory until Close.
type Repo struct {
	Dir    string
	Config *Config

	// roots[i] is the exact bytes of root version i+1.
	roots [][]byte
	root  *metadata.Metadata[metadata.RootType]
	// roles are the latest committed versions of every targets role.
	roles map[string]*committed

	snapshot       *metadata.Metadata[metadata.SnapshotType]
	snapshotBytes  []byte
	timestamp      *metadata.Metadata[metadata.TimestampType]
	timestampBytes []byte

	staged *staging
	lock   *flock.Flock
	now    func() time.Time

	// Logged, if set, is asked for the ledger's latest logged metadata of
	// each targets role staging changes, so the new version is above it
	// (AskLedger sets it).
	Logged LoggedLookup
	// Version, if not 0, is the version staging gives every targets role it
	// changes (--version); see placeVersion.
	Version int64
	// Warnings collects what staging could not find out (an unreachable
	// ledger), for the caller to show.
	Warnings    []string
	loggedCache map[string]*logged
}

// committed is one version of a targets role in DIR/metadata.
type committed struct {
	Version int64
	Bytes   []byte
	Meta    *metadata.Metadata[metadata.TargetsType]
}

// staging holds the roles changed but not yet published.
type staging struct {
	Root    *metadata.Metadata[metadata.RootType]
	Targets map[string]*metadata.Metadata[metadata.TargetsType]
}

// stagingFile is the encoding of DIR/staging.json.
type stagingFile struct {
	Root    json.RawMessage            `json:"root,omitempty"`
	Targets map[string]json.RawMessage `json:"targets,omitempty"`
}

// Open opens the repository in dir and locks it. Close releases it.
func Open(dir string) (*Repo, error) {
	return open(dir, time.Now)
}

func open(dir string, now func() time.Time) (*Repo, error) {
	b, err := readLimited(filepath.Join(dir, ConfigFile), MaxConfigSize)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a shiplog repository (no %s): create one with `shiplog repo init`", dir, ConfigFile)
		}
		return nil, err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, err
	}
	r := &Repo{Dir: dir, Config: cfg, roles: map[string]*committed{}, now: now, loggedCache: map[string]*logged{}}
	if r.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	if err := r.load(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close releases the directory lock.
func (r *Repo) Close() error {
	if r.lock == nil {
		return nil
	}
	err := r.lock.Close()
	r.lock = nil
	return err
}

// lockDir takes the repository's lock file (github.com/gofrs/flock:
// flock(2) on Unix, LockFileEx on Windows), failing at once when another
// command holds it.
func lockDir(dir string) (*flock.Flock, error) {
	l := flock.New(filepath.Join(dir, lockFile), flock.SetFlag(os.O_RDWR|os.O_CREATE), flock.SetPermissions(0o644))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("couldn't lock repository: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("repository %s is in use by another shiplog command; wait for it to finish", dir)
	}
	return l, nil
}

func (r *Repo) load() error {
	if err := r.loadMetadata(); err != nil {
		return err
	}
	return r.loadStaging()
}

// loadMetadata reads the committed metadata: every root, the latest version
// of every targets role, the timestamp and the snapshot it names.
func (r *Repo) loadMetadata() error {
	dir := filepath.Join(r.Dir, MetadataDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("couldn't read %s: %w", dir, err)
	}
	if len(ents) > maxMetadataFiles {
		return fmt.Errorf("%s has more than %d files", dir, maxMetadataFiles)
	}
	rootVersions := []int64{}
	latest := map[string]int64{}
	for _, e := range ents {
		m := metaFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			continue
		}
		switch m[2] {
		case "root":
			rootVersions = append(rootVersions, v)
		case "snapshot", "timestamp":
		default:
			if v > latest[m[2]] {
				latest[m[2]] = v
			}
		}
	}
	if err := r.loadRoots(rootVersions); err != nil {
		return err
	}
	for name, v := range latest {
		if len(r.roles) >= MaxRoles {
			return fmt.Errorf("more than %d targets roles", MaxRoles)
		}
		b, err := readLimited(r.metaPath(v, name), MaxTargetsSize)
		if err != nil {
			return err
		}
		m, err := new(metadata.Metadata[metadata.TargetsType]).FromBytes(b)
		if err != nil {
			return fmt.Errorf("couldn't parse %s: %w", r.metaPath(v, name), err)
		}
		if m.Signed.Version != v {
			return fmt.Errorf("%s holds version %d", r.metaPath(v, name), m.Signed.Version)
		}
		r.roles[name] = &committed{Version: v, Bytes: b, Meta: m}
	}
	return r.loadTimestamp()
}

func (r *Repo) loadRoots(versions []int64) error {
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	if len(versions) > MaxRootVersions {
		return fmt.Errorf("more than %d root versions", MaxRootVersions)
	}
	for i, v := range versions {
		if v != int64(i+1) {
			return fmt.Errorf("root versions are not contiguous: %d.root.json is missing", i+1)
		}
		b, err := readLimited(r.metaPath(v, "root"), MaxRootSize)
		if err != nil {
			return err
		}
		m, err := new(metadata.Metadata[metadata.RootType]).FromBytes(b)
		if err != nil {
			return fmt.Errorf("couldn't parse %s: %w", r.metaPath(v, "root"), err)
		}
		if m.Signed.Version != v {
			return fmt.Errorf("%s holds version %d", r.metaPath(v, "root"), m.Signed.Version)
		}
		r.roots = append(r.roots, b)
		r.root = m
	}
	return nil
}

func (r *Repo) loadTimestamp() error {
	b, err := readLimited(filepath.Join(r.Dir, MetadataDir, "timestamp.json"), MaxTimestampSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.timestamp, err = new(metadata.Metadata[metadata.TimestampType]).FromBytes(b); err != nil {
		return fmt.Errorf("couldn't parse timestamp.json: %w", err)
	}
	r.timestampBytes = b
	sm, ok := r.timestamp.Signed.Meta["snapshot.json"]
	if !ok {
		return errors.New("timestamp.json does not name a snapshot")
	}
	if b, err = readLimited(r.metaPath(sm.Version, "snapshot"), MaxSnapshotSize); err != nil {
		return err
	}
	if r.snapshot, err = new(metadata.Metadata[metadata.SnapshotType]).FromBytes(b); err != nil {
		return fmt.Errorf("couldn't parse snapshot: %w", err)
	}
	r.snapshotBytes = b
	return nil
}

func (r *Repo) loadStaging() error {
	r.staged = &staging{Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}}
	b, err := readLimited(filepath.Join(r.Dir, StagingFile), MaxStagingSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var f stagingFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("couldn't parse %s: %w", StagingFile, err)
	}
	if len(f.Root) > 0 {
		if r.staged.Root, err = new(metadata.Metadata[metadata.RootType]).FromBytes(f.Root); err != nil {
			return fmt.Errorf("couldn't parse staged root: %w", err)
		}
	}
	if len(f.Targets) > MaxRoles {
		return fmt.Errorf("more than %d staged roles", MaxRoles)
	}
	for name, raw := range f.Targets {
		if !validRoleName(name) && name != "targets" {
			return fmt.Errorf("staged role %q has an invalid name", name)
		}
		m, err := new(metadata.Metadata[metadata.TargetsType]).FromBytes(raw)
		if err != nil {
			return fmt.Errorf("couldn't parse staged %s: %w", name, err)
		}
		r.staged.Targets[name] = m
	}
	return nil
}

// saveStaging writes DIR/staging.json atomically, or removes it when
// nothing is staged.
func (r *Repo) saveStaging() error {
	path := filepath.Join(r.Dir, StagingFile)
	if r.staged.Root == nil && len(r.staged.Targets) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return durable.SyncDir(r.Dir)
	}
	f := stagingFile{Targets: map[string]json.RawMessage{}}
	var err error
	if r.staged.Root != nil {
		if f.Root, err = r.staged.Root.ToBytes(false); err != nil {
			return err
		}
	}
	for name, m := range r.staged.Targets {
		if f.Targets[name], err = m.ToBytes(false); err != nil {
			return err
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return durable.WriteFile(path, b, 0o644)
}

// metaPath is DIR/metadata/<version>.<role>.json.
func (r *Repo) metaPath(version int64, role string) string {
	return filepath.Join(r.Dir, MetadataDir, fmt.Sprintf("%d.%s.json", version, role))
}

// proofPath is the tlog-proof file beside a metadata file.
func (r *Repo) proofPath(version int64, role string) string {
	return r.metaPath(version, role) + proofSuffix
}

// logged reports whether version of role has a tlog-proof file (or a
// Sigstore bundle, see PublishRekor) beside it.
func (r *Repo) logged(version int64, role string) bool {
	_, err := os.Stat(r.proofPath(version, role))
	if err != nil {
		_, err = os.Stat(r.sigstorePath(version, role))
	}
	return err == nil
}

// validRoleName reports whether name may name a delegated role.
func validRoleName(name string) bool {
	switch name {
	case "root", "targets", "snapshot", "timestamp":
		return false
	}
	return roleName.MatchString(name)
}

// readLimited reads a whole file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}

// expiry returns the expiry time of a new version of role made now.
func (r *Repo) expiry(role string) time.Time {
	return r.now().UTC().Add(r.Config.Expires.For(role)).Truncate(time.Second)
}
