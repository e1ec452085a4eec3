package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shiplog/shiplog/internal/durable"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TopLevelRoles are the roles root delegates to, in the order init takes them.
var TopLevelRoles = []string{"root", "targets", "snapshot", "timestamp"}

// InitOptions configures a new repository.
type InitOptions struct {
	// Repository is the repository id logged with every entry.
	Repository string
	// Ledger is the ledger base URL (optional).
	Ledger string
	// Policy is the path of the tlog-policy file (optional).
	Policy string
	// Expires overrides DefaultExpiry field by field (zero fields keep the default).
	Expires Expiry
	// Keys holds the public keys of each top-level role; every role needs at least one.
	Keys map[string][]*metadata.Key
	// Thresholds holds each top-level role's threshold; 0 means 1.
	Thresholds map[string]int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Init creates a repository in dir (which must not exist or be empty):
// DIR/shiplog-repo.json, DIR/metadata/, DIR/targets/, and staged, unsigned
// versions 1 of root and targets. Keyholders then sign them with `repo sign`
// and the vendor registers the root with the ledger (`repo register`).
// Thresholds that the given keys cannot meet are refused. The config file
// is written last, so an interrupted Init leaves no repository behind.
func Init(dir string, o InitOptions) error {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	cfg := &Config{Repository: o.Repository, Ledger: o.Ledger, Policy: o.Policy, Expires: mergeExpiry(o.Expires)}
	if err := cfg.Validate(); err != nil {
		return err
	}
	root := metadata.Root(now().UTC().Add(time.Duration(cfg.Expires.Root)).Truncate(time.Second))
	for _, role := range TopLevelRoles {
		if err := setRoleKeys(root, role, o.Keys[role], o.Thresholds[role]); err != nil {
			return err
		}
	}
	if err := prepareDir(dir); err != nil {
		return err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	r := &Repo{Dir: dir, Config: cfg, roles: map[string]*committed{}, now: now,
		staged: &staging{Root: root, Targets: map[string]*metadata.Metadata[metadata.TargetsType]{
			"targets": metadata.Targets(now().UTC().Add(time.Duration(cfg.Expires.Targets)).Truncate(time.Second)),
		}}}
	if err := r.saveStaging(); err != nil {
		return err
	}
	if err := durable.CreateFile(filepath.Join(dir, ConfigFile), cfg.Format(), 0o644); err != nil {
		return fmt.Errorf("couldn't write %s: %w", ConfigFile, err)
	}
	return nil
}

// setRoleKeys puts keys and threshold of a top-level role into root,
// refusing a threshold the keys cannot meet.
func setRoleKeys(root *metadata.Metadata[metadata.RootType], role string, ks []*metadata.Key, threshold int) error {
	if threshold == 0 {
		threshold = 1
	}
	if len(ks) == 0 {
		return fmt.Errorf("role %s has no keys: give at least one with --%s-key FILE", role, role)
	}
	ids := map[string]bool{}
	for _, k := range ks {
		id, err := k.ID()
		if err != nil {
			return err
		}
		if ids[id] {
			return fmt.Errorf("key %s is given twice for role %s", short(id), role)
		}
		ids[id] = true
		if err := root.Signed.AddKey(k, role); err != nil {
			return err
		}
	}
	if threshold < 1 || threshold > len(ids) {
		return fmt.Errorf("threshold %d of role %s cannot be met by its %d key(s): give more keys or a threshold between 1 and %d", threshold, role, len(ids), len(ids))
	}
	root.Signed.Roles[role].Threshold = threshold
	return nil
}

func mergeExpiry(e Expiry) Expiry {
	out := DefaultExpiry
	for _, p := range []struct{ dst, src *Duration }{{&out.Root, &e.Root}, {&out.Targets, &e.Targets},
		{&out.Delegated, &e.Delegated}, {&out.Snapshot, &e.Snapshot}, {&out.Timestamp, &e.Timestamp}} {
		if *p.src != 0 {
			*p.dst = *p.src
		}
	}
	return out
}

// prepareDir creates dir with its metadata and targets folders, refusing a
// directory that already holds a repository or anything else.
func prepareDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err == nil {
		return fmt.Errorf("%s already holds a repository", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		switch e.Name() {
		case MetadataDir, TargetsDir, StagingFile, lockFile:
		default:
			return fmt.Errorf("%s is not empty (holds %s): choose a new directory", dir, e.Name())
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, MetadataDir), filepath.Join(dir, TargetsDir)} {
		if err := durable.MkdirAll(d, 0o755); err != nil { // public: served as is
			return err
		}
	}
	return durable.SyncDir(filepath.Dir(filepath.Clean(dir)))
}

// stageRoot returns the staged root, creating it from the committed root
// with the next version, a fresh expiry and no signatures.
func (r *Repo) stageRoot() (*metadata.Metadata[metadata.RootType], error) {
	if r.staged.Root != nil {
		clearSignatures(&r.staged.Root.Signatures)
		return r.staged.Root, nil
	}
	if r.root == nil {
		return nil, errors.New("the repository has no root yet")
	}
	m, err := new(metadata.Metadata[metadata.RootType]).FromBytes(r.roots[len(r.roots)-1])
	if err != nil {
		return nil, err
	}
	m.Signed.Version++
	m.Signed.Expires = r.expiry("root")
	m.Signatures = []metadata.Signature{}
	r.staged.Root = m
	return m, nil
}

// stageTargets returns the staged version of a targets role, creating it
// from the committed version (fresh expiry, no signatures) or empty, at
// the version placeVersion gives it: above every version known locally and
// to the ledger, or r.Version. Any signatures on an already staged version
// are dropped, since its content is about to change.
func (r *Repo) stageTargets(role string) (*metadata.Metadata[metadata.TargetsType], error) {
	if m := r.staged.Targets[role]; m != nil {
		clearSignatures(&m.Signatures)
		return m, r.placeVersion(role, m, false)
	}
	var m *metadata.Metadata[metadata.TargetsType]
	if c := r.roles[role]; c != nil {
		var err error
		if m, err = new(metadata.Metadata[metadata.TargetsType]).FromBytes(c.Bytes); err != nil {
			return nil, err
		}
		m.Signed.Version++
		m.Signatures = []metadata.Signature{}
	} else {
		m = metadata.Targets()
	}
	m.Signed.Expires = r.expiry(role)
	if err := r.placeVersion(role, m, true); err != nil {
		return nil, err
	}
	r.staged.Targets[role] = m
	return m, nil
}
