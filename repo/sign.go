package repo

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Authority is one set of keys whose threshold a staged role must meet: the
// role's delegator, and for a new root also the previous root (TUF 1.0
// §5.3.4: a new root is signed by the old and the new threshold).
type Authority struct {
	// Name says whose keys these are, e.g. "root v1" or "targets v3 (delegation bins)".
	Name      string   `json:"name"`
	Threshold int      `json:"threshold"`
	KeyIDs    []string `json:"keyids"`
	// Signed lists the key IDs whose signatures verify.
	Signed []string `json:"signed"`
	keys   map[string]*metadata.Key
}

// Met reports whether enough distinct keys signed.
func (a Authority) Met() bool { return a.Threshold >= 1 && len(a.Signed) >= a.Threshold }

// Missing lists the key IDs that have not signed yet.
func (a Authority) Missing() []string {
	var out []string
	for _, id := range a.KeyIDs {
		if !slices.Contains(a.Signed, id) {
			out = append(out, id)
		}
	}
	return out
}

// stagedRoles lists the staged roles in publishing order: root, then
// targets roles with delegators before delegatees, then any staged role no
// longer reachable (reported, never published).
func (r *Repo) stagedRoles() []string {
	var out []string
	if r.staged.Root != nil {
		out = append(out, "root")
	}
	seen := map[string]bool{}
	_ = r.working().walk(func(d delegation, _ *metadata.Metadata[metadata.TargetsType]) error {
		if r.staged.Targets[d.Role] != nil {
			out = append(out, d.Role)
			seen[d.Role] = true
		}
		return nil
	})
	var rest []string
	for name := range r.staged.Targets {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// authorities returns the key sets that must sign staged role in view v.
func (r *Repo) authorities(v view, role string) ([]Authority, error) {
	if role == "root" {
		m := r.staged.Root
		payload, err := cjson.EncodeCanonical(m.Signed)
		if err != nil {
			return nil, err
		}
		var out []Authority
		if r.root != nil {
			out = append(out, authority(fmt.Sprintf("root v%d", r.root.Signed.Version), r.root.Signed.Keys, r.root.Signed.Roles["root"], payload, m.Signatures))
		}
		out = append(out, authority(fmt.Sprintf("root v%d", m.Signed.Version), m.Signed.Keys, m.Signed.Roles["root"], payload, m.Signatures))
		return out, nil
	}
	m := r.staged.Targets[role]
	payload, err := cjson.EncodeCanonical(m.Signed)
	if err != nil {
		return nil, err
	}
	if role == "targets" {
		root := v.rootMeta()
		if root == nil {
			return nil, fmt.Errorf("no root: run `shiplog repo init` first")
		}
		return []Authority{authority(fmt.Sprintf("root v%d", root.Signed.Version), root.Signed.Keys, root.Signed.Roles["targets"], payload, m.Signatures)}, nil
	}
	dels, err := v.delegators()
	if err != nil {
		return nil, err
	}
	parent, ok := dels[role]
	if !ok {
		return nil, fmt.Errorf("staged role %s is not delegated by any role: delegate it with `shiplog repo delegate` or drop it", role)
	}
	pm := v.targets(parent)
	ks, ids, th := targetsKeysFor(pm, role)
	return []Authority{authority(fmt.Sprintf("%s v%d", parent, pm.Signed.Version), ks, &metadata.Role{KeyIDs: ids, Threshold: th}, payload, m.Signatures)}, nil
}

func authority(name string, ks map[string]*metadata.Key, role *metadata.Role, payload []byte, sigs []metadata.Signature) Authority {
	a := Authority{Name: name, keys: ks}
	if role == nil {
		return a
	}
	a.Threshold, a.KeyIDs = role.Threshold, role.KeyIDs
	seen := map[string]bool{}
	for _, id := range role.KeyIDs {
		k := ks[id]
		if k == nil || seen[id] {
			continue
		}
		for _, s := range sigs {
			if s.KeyID == id && verifySig(k, payload, s.Signature) {
				seen[id] = true
				a.Signed = append(a.Signed, id)
				break
			}
		}
	}
	return a
}

// verifySig verifies one TUF signature over payload (canonical JSON).
func verifySig(k *metadata.Key, payload, sig []byte) bool {
	pub, err := k.ToPublicKey()
	if err != nil {
		return false
	}
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, payload, sig)
	case *ecdsa.PublicKey:
		v, err := signature.LoadECDSAVerifier(pub, crypto.SHA256)
		if err != nil {
			return false
		}
		return v.VerifySignature(strings.NewReader(string(sig)), strings.NewReader(string(payload))) == nil
	}
	return false
}

// SignResult reports one signature added by Sign.
type SignResult struct {
	Role        string      `json:"role"`
	Version     int64       `json:"version"`
	KeyID       string      `json:"keyid"`
	Authorities []Authority `json:"authorities"`
	// Ready is true when every authority's threshold is met.
	Ready bool `json:"ready"`
}

// Sign adds k's signature to every staged role (or those named in roles)
// that k is a key of, replacing an earlier signature by the same key. It
// refuses an expired staged role, and a key that signs none of the roles
// asked for, naming the keys that can.
func (r *Repo) Sign(k *keys.Private, roles []string) ([]SignResult, error) {
	staged := r.stagedRoles()
	if len(staged) == 0 {
		return nil, fmt.Errorf("nothing is staged: stage changes with `shiplog repo add`, `delegate` or `rotate` first")
	}
	for _, want := range roles {
		if !slices.Contains(staged, want) {
			return nil, fmt.Errorf("role %s has no staged changes (staged: %s)", want, strings.Join(staged, ", "))
		}
	}
	signer, err := k.Signer()
	if err != nil {
		return nil, err
	}
	var out []SignResult
	var wrong []string
	for _, role := range staged {
		if len(roles) > 0 && !slices.Contains(roles, role) {
			continue
		}
		auth, err := r.authorities(r.working(), role)
		if err != nil {
			return nil, err
		}
		if !isKeyOf(auth, k.ID) {
			wrong = append(wrong, fmt.Sprintf("%s (keys %s)", role, describeKeys(auth)))
			continue
		}
		res, err := r.signRole(role, signer, k.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	if len(out) == 0 || (len(roles) > 0 && len(wrong) > 0) {
		return nil, fmt.Errorf("key %s is not a key of %s: sign with one of the listed keys", short(k.ID), strings.Join(wrong, "; "))
	}
	if err := r.saveStaging(); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *Repo) signRole(role string, signer signature.Signer, id string) (SignResult, error) {
	version, expires, sigs := r.stagedInfo(role)
	if !expires.After(r.now()) {
		return SignResult{}, fmt.Errorf("staged %s v%d expired at %s: restage it with `shiplog repo renew --role %s` and sign again", role, version, expires.Format(time.RFC3339), role)
	}
	kept := slices.DeleteFunc(slices.Clone(*sigs), func(s metadata.Signature) bool { return s.KeyID == id })
	*sigs = kept
	var err error
	if role == "root" {
		_, err = r.staged.Root.Sign(signer)
	} else {
		_, err = r.staged.Targets[role].Sign(signer)
	}
	if err != nil {
		return SignResult{}, fmt.Errorf("couldn't sign %s: %w", role, err)
	}
	auth, err := r.authorities(r.working(), role)
	if err != nil {
		return SignResult{}, err
	}
	return SignResult{Role: role, Version: version, KeyID: id, Authorities: auth, Ready: allMet(auth)}, nil
}

// stagedInfo returns the version, expiry and signature list of a staged role.
func (r *Repo) stagedInfo(role string) (int64, time.Time, *[]metadata.Signature) {
	if role == "root" {
		m := r.staged.Root
		return m.Signed.Version, m.Signed.Expires, &m.Signatures
	}
	m := r.staged.Targets[role]
	return m.Signed.Version, m.Signed.Expires, &m.Signatures
}

func isKeyOf(auth []Authority, id string) bool {
	for _, a := range auth {
		if slices.Contains(a.KeyIDs, id) {
			return true
		}
	}
	return false
}

func allMet(auth []Authority) bool {
	for _, a := range auth {
		if !a.Met() {
			return false
		}
	}
	return len(auth) > 0
}

func describeKeys(auth []Authority) string {
	var parts []string
	for _, a := range auth {
		ids := make([]string, len(a.KeyIDs))
		for i, id := range a.KeyIDs {
			ids[i] = short(id)
		}
		parts = append(parts, fmt.Sprintf("%s: %d of [%s]", a.Name, a.Threshold, strings.Join(ids, " ")))
	}
	return strings.Join(parts, ", ")
}

// short abbreviates a key ID for messages.
func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// clearSignatures drops the signatures of a staged role whose content
// changed, returning how many were dropped.
func clearSignatures(sigs *[]metadata.Signature) int {
	n := len(*sigs)
	*sigs = []metadata.Signature{}
	return n
}
