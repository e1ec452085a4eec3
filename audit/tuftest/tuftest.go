// Package tuftest builds signed TUF 1.0 repositories (go-tuf v2 metadata)
// for the auditor's tests and benchmarks: roots, root rotations, top-level
// and delegated targets, signed by whichever keys a test chooses (including
// revoked ones).
package tuftest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key is an Ed25519 TUF key with its signer.
type Key struct {
	Pub    *metadata.Key
	Signer signature.Signer
}

// NewKey returns the Ed25519 key derived from seed, so tests are
// reproducible.
func NewKey(seed string) Key {
	s := sha256.Sum256([]byte("tuftest key " + seed))
	priv := ed25519.NewKeyFromSeed(s[:])
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		panic(err)
	}
	signer, err := signature.LoadSigner(priv, 0)
	if err != nil {
		panic(err)
	}
	return Key{Pub: k, Signer: signer}
}

// ID returns the TUF key ID of k.
func (k Key) ID() string {
	id, err := k.Pub.ID()
	must(err)
	return id
}

// Repo is a TUF repository under construction. It is not safe for
// concurrent use.
type Repo struct {
	ID          string
	Expires     time.Time
	Root        *metadata.Metadata[metadata.RootType]
	RootKeys    []Key
	TargetsKeys []Key
	// Targets is the latest top-level targets metadata built.
	Targets *metadata.Metadata[metadata.TargetsType]
	// Delegated holds delegated roles by name, with their keys.
	Delegated     map[string]*metadata.Metadata[metadata.TargetsType]
	DelegatedKeys map[string][]Key
}

// NewRepo returns repository id with root v1: one root key, one targets key
// (also used for snapshot and timestamp), all metadata expiring at expires.
func NewRepo(id string, expires time.Time) *Repo {
	r := &Repo{ID: id, Expires: expires, Delegated: map[string]*metadata.Metadata[metadata.TargetsType]{}, DelegatedKeys: map[string][]Key{}}
	r.RootKeys = []Key{NewKey(id + "/root")}
	r.TargetsKeys = []Key{NewKey(id + "/targets/1")}
	r.Root = metadata.Root(expires)
	for _, k := range r.RootKeys {
		must(r.Root.Signed.AddKey(k.Pub, metadata.ROOT))
	}
	for _, role := range []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		must(r.Root.Signed.AddKey(r.TargetsKeys[0].Pub, role))
	}
	r.Targets = metadata.Targets(expires)
	r.Targets.Signed.Version = 0
	return r
}

// RootBytes returns the current root, signed by the given keys (default:
// RootKeys).
func (r *Repo) RootBytes(keys ...Key) []byte {
	if len(keys) == 0 {
		keys = r.RootKeys
	}
	return Sign(r.Root, keys...)
}

// RotateTargetsKey makes the next root version, whose targets key is a new
// key (named by the new root version); it returns the old targets keys, now
// revoked, and the new root signed by the root keys.
func (r *Repo) RotateTargetsKey() (revoked []Key, root []byte) {
	revoked = r.TargetsKeys
	for _, k := range revoked {
		must(r.Root.Signed.RevokeKey(k.ID(), metadata.TARGETS))
	}
	r.Root.Signed.Version++
	r.TargetsKeys = []Key{NewKey(fmt.Sprintf("%s/targets/%d", r.ID, r.Root.Signed.Version))}
	must(r.Root.Signed.AddKey(r.TargetsKeys[0].Pub, metadata.TARGETS))
	return revoked, r.RootBytes()
}

// Release makes the next top-level targets version with files (name ->
// content) added, signed by keys (default: TargetsKeys).
func (r *Repo) Release(files map[string][]byte, keys ...Key) []byte {
	if len(keys) == 0 {
		keys = r.TargetsKeys
	}
	r.Targets.Signed.Version++
	r.Targets.Signed.Expires = r.Expires
	for name, content := range files {
		tf, err := metadata.TargetFile().FromBytes(name, content, "sha256")
		must(err)
		r.Targets.Signed.Targets[name] = tf
	}
	return Sign(r.Targets, keys...)
}

// SetVersion sets the version the next Release will have minus one.
func (r *Repo) SetVersion(v int64) { r.Targets.Signed.Version = v }

// Delegate adds a delegation from the top-level targets to role with a new
// key, and returns that key; the next Release carries it.
func (r *Repo) Delegate(role string) Key {
	k := NewKey(r.ID + "/delegated/" + role)
	if r.Targets.Signed.Delegations == nil {
		r.Targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	d := r.Targets.Signed.Delegations
	d.Keys[k.ID()] = k.Pub
	d.Roles = append(d.Roles, metadata.DelegatedRole{Name: role, KeyIDs: []string{k.ID()}, Threshold: 1, Paths: []string{role + "/*"}})
	r.DelegatedKeys[role] = []Key{k}
	t := metadata.Targets(r.Expires)
	t.Signed.Version = 0
	r.Delegated[role] = t
	return k
}

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

// Sign signs m with keys (replacing earlier signatures) and returns its
// bytes.
func Sign[T metadata.Roles](m *metadata.Metadata[T], keys ...Key) []byte {
	m.ClearSignatures()
	for _, k := range keys {
		if _, err := m.Sign(k.Signer); err != nil {
			panic(err)
		}
	}
	b, err := m.ToBytes(false)
	must(err)
	return b
}

// Files returns n small target files named by prefix and a counter.
func Files(prefix string, n int, salt uint64) map[string][]byte {
	out := map[string][]byte{}
	for i := 0; i < n; i++ {
		b := binary.BigEndian.AppendUint64(nil, salt)
		out[fmt.Sprintf("%s-%d.bin", prefix, i)] = append(b, byte(i))
	}
	return out
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
