// Package tuftest makes signed TUF 1.0 repositories for the ledger's tests
// and benchmarks: a root with its keys, top-level targets, delegated targets
// roles and root rotations, as exact metadata bytes. It panics on internal
// errors, which only a broken test can cause. Not safe for concurrent use.
package tuftest

import (
	"crypto/ed25519"
	"crypto/rand"
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

// NewKey returns a fresh Ed25519 key.
func NewKey() Key {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(err)
	k, err := metadata.KeyFromPublicKey(pub)
	must(err)
	s, err := signature.LoadSigner(priv, 0)
	must(err)
	return Key{k, s}
}

func must(err error) {
	if err != nil {
		panic("tuftest: " + err.Error())
	}
}

// Repo is a TUF repository: root (one root key, one targets key by
// default) and its delegations.
type Repo struct {
	Root       *metadata.Metadata[metadata.RootType]
	RootKeys   []Key
	TargetsKey Key
	// Delegated holds the key of each delegated role made by Delegate.
	Delegated map[string]Key
	Expires   time.Time
	delegs    *metadata.Delegations
}

// NewRepo returns a repository whose metadata expires at expires.
func NewRepo(expires time.Time) *Repo {
	r := &Repo{Root: metadata.Root(expires), RootKeys: []Key{NewKey()}, TargetsKey: NewKey(), Delegated: map[string]Key{}, Expires: expires}
	must(r.Root.Signed.AddKey(r.RootKeys[0].Pub, metadata.ROOT))
	must(r.Root.Signed.AddKey(r.TargetsKey.Pub, metadata.TARGETS))
	return r
}

// RootBytes returns the current root signed by the root keys.
func (r *Repo) RootBytes() []byte { return Sign(r.Root, r.RootKeys...) }

// RotateRoot makes root version+1 with a new root key, signed by the old and
// the new keys (TUF 1.0 §5.3.4), and returns its bytes.
func (r *Repo) RotateRoot() []byte {
	old := r.RootKeys
	nk := NewKey()
	next := metadata.Root(r.Expires)
	next.Signed = r.Root.Signed
	next.Signed.Keys = map[string]*metadata.Key{}
	for id, k := range r.Root.Signed.Keys {
		next.Signed.Keys[id] = k
	}
	next.Signed.Roles = map[string]*metadata.Role{}
	for n, role := range r.Root.Signed.Roles {
		c := *role
		c.KeyIDs = append([]string(nil), role.KeyIDs...)
		next.Signed.Roles[n] = &c
	}
	next.Signed.Version++
	for _, k := range old {
		id, err := k.Pub.ID()
		must(err)
		must(next.Signed.RevokeKey(id, metadata.ROOT))
	}
	must(next.Signed.AddKey(nk.Pub, metadata.ROOT))
	r.Root, r.RootKeys = next, []Key{nk}
	return Sign(next, append(old, nk)...)
}

// RotateTargetsKey makes root version+1 in which a new key replaces the
// targets key (the recovery from a stolen targets key), signed by the root
// keys, and returns its bytes and the old targets key.
func (r *Repo) RotateTargetsKey() ([]byte, Key) {
	next, err := metadata.Root().FromBytes(r.RootBytes())
	must(err)
	old, nk := r.TargetsKey, NewKey()
	id, err := old.Pub.ID()
	must(err)
	must(next.Signed.RevokeKey(id, metadata.TARGETS))
	must(next.Signed.AddKey(nk.Pub, metadata.TARGETS))
	next.Signed.Version++
	r.Root, r.TargetsKey = next, nk
	return r.RootBytes(), old
}

// RotateDelegatedKey replaces the key of delegated role name with a new one
// and returns the old key. Publish a new targets version afterwards.
func (r *Repo) RotateDelegatedKey(name string) Key {
	old, nk := r.Delegated[name], NewKey()
	oldID, err := old.Pub.ID()
	must(err)
	id, err := nk.Pub.ID()
	must(err)
	delete(r.delegs.Keys, oldID)
	r.delegs.Keys[id] = nk.Pub
	for i := range r.delegs.Roles {
		if r.delegs.Roles[i].Name == name {
			r.delegs.Roles[i].KeyIDs = []string{id}
		}
	}
	r.Delegated[name] = nk
	return old
}

// Delegate adds a delegated role name (paths "name/*") to the top-level
// targets role with a new key. Publish a new targets version afterwards.
func (r *Repo) Delegate(name string) Key {
	k := NewKey()
	if r.delegs == nil {
		r.delegs = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	id, err := k.Pub.ID()
	must(err)
	r.delegs.Keys[id] = k.Pub
	r.delegs.Roles = append(r.delegs.Roles, metadata.DelegatedRole{Name: name, KeyIDs: []string{id}, Threshold: 1, Paths: []string{name + "/*"}})
	r.Delegated[name] = k
	return k
}

// Targets returns top-level targets metadata of version, listing one
// target file, signed by signers (the targets key when none given).
func (r *Repo) Targets(version int64, signers ...Key) []byte {
	return r.TargetsExpiring(version, r.Expires, signers...)
}

// TargetsExpiring is Targets with another expiry time.
func (r *Repo) TargetsExpiring(version int64, expires time.Time, signers ...Key) []byte {
	t := metadata.Targets(expires)
	t.Signed.Version = version
	t.Signed.Delegations = r.delegs
	addTarget(t, fmt.Sprintf("firmware-%d.bin", version))
	if len(signers) == 0 {
		signers = []Key{r.TargetsKey}
	}
	return Sign(t, signers...)
}

// DelegatedTargets returns metadata of delegated role name at version,
// signed by signers (the role's key when none given).
func (r *Repo) DelegatedTargets(name string, version int64, signers ...Key) []byte {
	t := metadata.Targets(r.Expires)
	t.Signed.Version = version
	addTarget(t, fmt.Sprintf("%s/app-%d.bin", name, version))
	if len(signers) == 0 {
		signers = []Key{r.Delegated[name]}
	}
	return Sign(t, signers...)
}

func addTarget(t *metadata.Metadata[metadata.TargetsType], name string) {
	h := metadata.Hashes{"sha256": make([]byte, 32)}
	t.Signed.Targets[name] = &metadata.TargetFiles{Length: 1024, Hashes: h, Path: name}
}

// Snapshot returns snapshot metadata (which the ledger refuses).
func (r *Repo) Snapshot(version int64) []byte {
	s := metadata.Snapshot(r.Expires)
	s.Signed.Version = version
	return Sign(s, r.RootKeys...)
}

// Sign clears m's signatures, signs it with keys and returns its bytes.
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

// UnderSignedRotation returns root version+1 with a new root key, signed
// only by the new key, not by the current root keys (so it breaks TUF 1.0
// §5.3.4). The repository is not changed.
func (r *Repo) UnderSignedRotation() []byte {
	next, err := metadata.Root().FromBytes(r.RootBytes())
	must(err)
	nk := NewKey()
	next.Signed.Version++
	for _, k := range r.RootKeys {
		id, err := k.Pub.ID()
		must(err)
		must(next.Signed.RevokeKey(id, metadata.ROOT))
	}
	must(next.Signed.AddKey(nk.Pub, metadata.ROOT))
	return Sign(next, nk)
}
