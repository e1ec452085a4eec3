package update

import (
	"context"
	"crypto/sha256"

	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// SigstoreSuffix names the Sigstore bundle beside a metadata file
// (<version>.<role>.json.sigstore.json): the evidence of a role logged in a
// Rekor log (docs/sigstore.md).
const SigstoreSuffix = ".sigstore.json"

// trySigstore is the gate's Sigstore path: the Sigstore bundle beside the
// metadata file must verify for its exact bytes under the policy
// (sigstore.Verify: a Rekor log of the policy, the witness quorum, the
// inclusion of a hashedrekord of these bytes signed by one of keys, the
// keys the role's delegator gives it), and its checkpoint must move the
// device's view of that log forward like any other. The shiplog ledger is
// never asked about a Rekor log's consistency.
func (v *logView) trySigstore(ctx context.Context, remote Remote, name, role string, version int64, data []byte, keys map[string]*metadata.Key) (*RoleEvidence, error) {
	b, err := remote.Metadata(ctx, name+SigstoreSuffix, sigstore.MaxBundleSize)
	if err != nil {
		return nil, err
	}
	ev, err := sigstore.Verify(b, data, keys, v.gate.Policy)
	if err != nil {
		return nil, err
	}
	c := ev.Checkpoint
	v.offline[c.Origin] = true
	if err := v.accept(ctx, c.Signed); err != nil {
		return nil, err
	}
	re := &RoleEvidence{
		Role: role, Version: version, SHA256: sha256.Sum256(data), Length: int64(len(data)),
		Origin: c.Origin, Index: ev.Index, TreeSize: c.Size, Source: "sigstore", Checkpoint: c.Note, Cosigned: c,
	}
	for _, w := range c.Cosigners {
		for _, cs := range c.Cosignatures {
			if cs.Name == w.Verifier.Name() && cs.KeyHash == w.Verifier.KeyHash() {
				re.Cosigners = append(re.Cosigners, Cosigner{Name: w.Name, Time: cs.Time})
				break
			}
		}
	}
	return re, nil
}

// roleKeys returns the keys of role as its delegator (a trusted root or
// targets role) lists them, or nil if it lists none.
func roleKeys(keys map[string]*metadata.Key, ids []string) map[string]*metadata.Key {
	out := map[string]*metadata.Key{}
	for _, id := range ids {
		if k := keys[id]; k != nil {
			out[id] = k
		}
	}
	return out
}

// rootRoleKeys are the root keys of the trusted root: a new root version's
// Sigstore entry must be signed by one of them.
func (s *Session) rootRoleKeys() map[string]*metadata.Key {
	r := s.tm.Root.Signed
	if role := r.Roles[metadata.ROOT]; role != nil {
		return roleKeys(r.Keys, role.KeyIDs)
	}
	return nil
}

// delegatedKeys are the keys delegator gives role (root for targets).
func (s *Session) delegatedKeys(role, delegator string) map[string]*metadata.Key {
	if delegator == metadata.ROOT {
		r := s.tm.Root.Signed
		if rr := r.Roles[role]; rr != nil {
			return roleKeys(r.Keys, rr.KeyIDs)
		}
		return nil
	}
	md := s.tm.Targets[delegator]
	if md == nil || md.Signed.Delegations == nil {
		return nil
	}
	d := md.Signed.Delegations
	if sr := d.SuccinctRoles; sr != nil {
		if sr.IsDelegatedRole(role) {
			return roleKeys(d.Keys, sr.KeyIDs)
		}
		return nil
	}
	for _, r := range d.Roles {
		if r.Name == role {
			return roleKeys(d.Keys, r.KeyIDs)
		}
	}
	return nil
}

// RoleKeys returns the keys the session's trusted metadata gives role: the
// trusted root's for root and the top-level roles, or the delegation keys
// of the first loaded targets role that delegates role. Nil if none does.
func (s *Session) RoleKeys(role string) map[string]*metadata.Key {
	switch role {
	case metadata.ROOT:
		return s.rootRoleKeys()
	case metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return s.delegatedKeys(role, metadata.ROOT)
	}
	for name := range s.tm.Targets {
		if ks := s.delegatedKeys(role, name); len(ks) > 0 {
			return ks
		}
	}
	return nil
}
