package kit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key is a TUF Ed25519 key with its signer.
type Key struct {
	Pub    *metadata.Key
	Signer signature.Signer
}

// NewKey returns a fresh random Ed25519 key.
func NewKey() Key {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(err)
	return keyOf(priv)
}

// SeededKey returns the Ed25519 key derived from seed: the same seed gives
// the same key in every run, so fuzz seeds and benchmarks are reproducible.
func SeededKey(seed string) Key {
	s := sha256.Sum256([]byte("tuftest key " + seed))
	return keyOf(ed25519.NewKeyFromSeed(s[:]))
}

func keyOf(priv ed25519.PrivateKey) Key {
	k, err := metadata.KeyFromPublicKey(priv.Public())
	must(err)
	s, err := signature.LoadSigner(priv, 0)
	must(err)
	return Key{Pub: k, Signer: s}
}

// ID returns the TUF key ID of k.
func (k Key) ID() string {
	id, err := k.Pub.ID()
	must(err)
	return id
}

func must(err error) {
	if err != nil {
		panic("harness: " + err.Error())
	}
}

// Repo is a TUF repository under construction, as exact signed metadata
// bytes: a root (one root key; one targets key, also trusted for snapshot
// and timestamp), the top-level targets role and delegated targets roles.
// It checks nothing, so a test can sign with any key, revoked ones
// included. Not safe for concurrent use.
type Repo struct {
	// ID is the repository ID (used to derive seeded keys; empty for
	// NewRandomRepo).
	ID string
	// Expires is the expiry of metadata signed from now on.
	Expires     time.Time
	Root        *metadata.Metadata[metadata.RootType]
	RootKeys    []Key
	TargetsKeys []Key
	// Top is the latest top-level targets metadata built by Release; its
	// delegations are the ones Delegate made.
	Top *metadata.Metadata[metadata.TargetsType]
	// Delegated holds delegated roles by name as ReleaseDelegated builds
	// them, DelegatedKeys their keys.
	Delegated     map[string]*metadata.Metadata[metadata.TargetsType]
	DelegatedKeys map[string][]Key
	seeded        bool
}

// NewRepo returns repository id with root v1, all metadata expiring at
// expires; its keys are derived from id (see SeededKey), so two repositories
// with the same id share keys.
func NewRepo(id string, expires time.Time) *Repo { return newRepo(id, expires, true) }

// NewRandomRepo returns a repository like NewRepo whose keys are fresh
// random keys, so no two repositories share a key.
func NewRandomRepo(expires time.Time) *Repo { return newRepo("", expires, false) }

func newRepo(id string, expires time.Time, seeded bool) *Repo {
	r := &Repo{ID: id, Expires: expires, seeded: seeded,
		Delegated: map[string]*metadata.Metadata[metadata.TargetsType]{}, DelegatedKeys: map[string][]Key{}}
	r.RootKeys = []Key{r.key("root")}
	r.TargetsKeys = []Key{r.key("targets/1")}
	r.Root = metadata.Root(expires)
	must(r.Root.Signed.AddKey(r.RootKeys[0].Pub, metadata.ROOT))
	for _, role := range []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		must(r.Root.Signed.AddKey(r.TargetsKeys[0].Pub, role))
	}
	r.Top = metadata.Targets(expires)
	r.Top.Signed.Version = 0
	return r
}

// key returns the repository's key named name: seeded by ID and name, or
// random.
func (r *Repo) key(name string) Key {
	if r.seeded {
		return SeededKey(r.ID + "/" + name)
	}
	return NewKey()
}

// RootBytes returns the current root, signed by keys (default: RootKeys).
func (r *Repo) RootBytes(keys ...Key) []byte {
	if len(keys) == 0 {
		keys = r.RootKeys
	}
	return Sign(r.Root, keys...)
}

// RotateRoot makes root version+1 with a new root key, signed by the old and
// the new keys (TUF 1.0 §5.3.4), and returns its bytes.
func (r *Repo) RotateRoot() []byte {
	old := r.RootKeys
	for _, k := range old {
		must(r.Root.Signed.RevokeKey(k.ID(), metadata.ROOT))
	}
	r.Root.Signed.Version++
	nk := r.key(fmt.Sprintf("root/%d", r.Root.Signed.Version))
	must(r.Root.Signed.AddKey(nk.Pub, metadata.ROOT))
	r.RootKeys = []Key{nk}
	return Sign(r.Root, append(append([]Key(nil), old...), nk)...)
}

// RotateTargetsKey makes root version+1 in which a new key replaces the
// targets keys (the recovery from a stolen targets key), signed by the root
// keys; it returns the new root's bytes and the old targets keys, now
// revoked.
func (r *Repo) RotateTargetsKey() (root []byte, revoked []Key) {
	revoked = r.TargetsKeys
	for _, k := range revoked {
		must(r.Root.Signed.RevokeKey(k.ID(), metadata.TARGETS))
	}
	r.Root.Signed.Version++
	r.TargetsKeys = []Key{r.key(fmt.Sprintf("targets/%d", r.Root.Signed.Version))}
	must(r.Root.Signed.AddKey(r.TargetsKeys[0].Pub, metadata.TARGETS))
	return r.RootBytes(), revoked
}

// UnderSignedRotation returns root version+1 with a new root key, signed
// only by the new key, not by the current root keys (so it breaks TUF 1.0
// §5.3.4). The repository is not changed.
func (r *Repo) UnderSignedRotation() []byte {
	next, err := metadata.Root().FromBytes(r.RootBytes())
	must(err)
	nk := NewKey()
	next.Signed.Version++
	for _, k := range r.RootKeys {
		must(next.Signed.RevokeKey(k.ID(), metadata.ROOT))
	}
	must(next.Signed.AddKey(nk.Pub, metadata.ROOT))
	return Sign(next, nk)
}

// Delegate adds a delegation from the top-level targets to role (paths
// "role/*") with a new key, and returns that key; the targets built from
// now on carry it.
func (r *Repo) Delegate(role string) Key {
	k := r.key("delegated/" + role)
	if r.Top.Signed.Delegations == nil {
		r.Top.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	d := r.Top.Signed.Delegations
	d.Keys[k.ID()] = k.Pub
	d.Roles = append(d.Roles, metadata.DelegatedRole{Name: role, KeyIDs: []string{k.ID()}, Threshold: 1, Paths: []string{role + "/*"}})
	r.DelegatedKeys[role] = []Key{k}
	t := metadata.Targets(r.Expires)
	t.Signed.Version = 0
	r.Delegated[role] = t
	return k
}

// RotateDelegatedKey replaces the key of delegated role name with a new one
// and returns the old key. The targets built from now on carry the change.
func (r *Repo) RotateDelegatedKey(role string) Key {
	old, nk := r.DelegatedKeys[role][0], NewKey()
	d := r.Top.Signed.Delegations
	delete(d.Keys, old.ID())
	d.Keys[nk.ID()] = nk.Pub
	for i := range d.Roles {
		if d.Roles[i].Name == role {
			d.Roles[i].KeyIDs = []string{nk.ID()}
		}
	}
	r.DelegatedKeys[role] = []Key{nk}
	return old
}

// Release makes the next top-level targets version with files (name ->
// content) added to the ones released before, signed by keys (default:
// TargetsKeys).
func (r *Repo) Release(files map[string][]byte, keys ...Key) []byte {
	if len(keys) == 0 {
		keys = r.TargetsKeys
	}
	r.Top.Signed.Version++
	r.Top.Signed.Expires = r.Expires
	for name, content := range files {
		tf, err := metadata.TargetFile().FromBytes(name, content, "sha256")
		must(err)
		r.Top.Signed.Targets[name] = tf
	}
	return Sign(r.Top, keys...)
}

// SetVersion sets the version the next Release will have minus one.
func (r *Repo) SetVersion(v int64) { r.Top.Signed.Version = v }

// ReleaseDelegated makes the next version of a delegated role with files,
// signed by keys (default: the role's delegated keys).
func (r *Repo) ReleaseDelegated(role string, files map[string][]byte, keys ...Key) []byte {
	if len(keys) == 0 {
		keys = r.DelegatedKeys[role]
	}
	t := r.Delegated[role]
	t.Signed.Version++
	for name, content := range files {
		tf, err := metadata.TargetFile().FromBytes(name, content, "sha256")
		must(err)
		t.Signed.Targets[name] = tf
	}
	return Sign(t, keys...)
}

// Targets returns top-level targets metadata of version, listing the one
// target file "firmware-<version>.bin" (a placeholder hash) and the
// delegations made so far, signed by signers (default: TargetsKeys). It
// does not change Top.
func (r *Repo) Targets(version int64, signers ...Key) []byte {
	return r.TargetsExpiring(version, r.Expires, signers...)
}

// TargetsExpiring is Targets with another expiry time.
func (r *Repo) TargetsExpiring(version int64, expires time.Time, signers ...Key) []byte {
	t := metadata.Targets(expires)
	t.Signed.Version = version
	t.Signed.Delegations = r.Top.Signed.Delegations
	addPlaceholder(t, fmt.Sprintf("firmware-%d.bin", version))
	if len(signers) == 0 {
		signers = r.TargetsKeys
	}
	return Sign(t, signers...)
}

// DelegatedTargets returns metadata of delegated role name at version,
// listing "name/app-<version>.bin", signed by signers (default: the role's
// keys). It does not change Delegated.
func (r *Repo) DelegatedTargets(role string, version int64, signers ...Key) []byte {
	t := metadata.Targets(r.Expires)
	t.Signed.Version = version
	addPlaceholder(t, fmt.Sprintf("%s/app-%d.bin", role, version))
	if len(signers) == 0 {
		signers = r.DelegatedKeys[role]
	}
	return Sign(t, signers...)
}

func addPlaceholder(t *metadata.Metadata[metadata.TargetsType], name string) {
	h := metadata.Hashes{"sha256": make([]byte, 32)}
	t.Signed.Targets[name] = &metadata.TargetFiles{Length: 1024, Hashes: h, Path: name}
}

// Snapshot returns snapshot metadata of version signed by the root keys
// (a role the ledger refuses to log).
func (r *Repo) Snapshot(version int64) []byte {
	s := metadata.Snapshot(r.Expires)
	s.Signed.Version = version
	return Sign(s, r.RootKeys...)
}

// Sign clears m's signatures, signs it with keys and returns its bytes
// (compact JSON).
func Sign[T metadata.Roles](m *metadata.Metadata[T], keys ...Key) []byte {
	m.ClearSignatures()
	for _, k := range keys {
		_, err := m.Sign(k.Signer)
		must(err)
	}
	b, err := m.ToBytes(false)
	must(err)
	return b
}

// Files returns n small target files named "<prefix>-<i>.bin", whose
// contents differ with salt.
func Files(prefix string, n int, salt uint64) map[string][]byte {
	out := map[string][]byte{}
	for i := 0; i < n; i++ {
		b := binary.BigEndian.AppendUint64(nil, salt)
		out[fmt.Sprintf("%s-%d.bin", prefix, i)] = append(b, byte(i))
	}
	return out
}
