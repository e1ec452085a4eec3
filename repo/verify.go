package repo

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// clientState is a complete set of metadata bytes as a client would fetch
// them: every root version, the timestamp, the snapshot and each targets
// role by name at the version the snapshot names.
type clientState struct {
	roots     [][]byte
	timestamp []byte
	snapshot  []byte
	role      func(name string, version int64) ([]byte, error)
}

// checkClient runs the TUF 1.0 client workflow (§5.3-5.6, go-tuf's trusted
// metadata state machine) over s at time now: root chain, timestamp,
// snapshot, targets, and every delegated role reachable from targets, with
// thresholds, expiry, versions, and the snapshot's length and hashes of
// every targets role. The repository never exposes a state that fails it.
func checkClient(now time.Time, s clientState) error {
	if len(s.roots) == 0 {
		return errors.New("no root")
	}
	tm, err := trustedmetadata.New(s.roots[0])
	if err != nil {
		return fmt.Errorf("root v1: %w", err)
	}
	tm.RefTime = now.UTC()
	for i, b := range s.roots[1:] {
		if _, err := tm.UpdateRoot(b); err != nil {
			return fmt.Errorf("root v%d: %w", i+2, err)
		}
	}
	if _, err := tm.UpdateTimestamp(s.timestamp); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	snap, err := tm.UpdateSnapshot(s.snapshot, false)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	fetch := func(name string) ([]byte, error) {
		mf, ok := snap.Signed.Meta[name+".json"]
		if !ok {
			return nil, fmt.Errorf("snapshot does not list role %s", name)
		}
		if mf.Length == 0 || len(mf.Hashes["sha256"]) == 0 {
			return nil, fmt.Errorf("snapshot does not pin length and sha256 of %s", name)
		}
		return s.role(name, mf.Version)
	}
	b, err := fetch("targets")
	if err != nil {
		return err
	}
	t, err := tm.UpdateTargets(b)
	if err != nil {
		return fmt.Errorf("targets: %w", err)
	}
	queue := []*delegatorMeta{{"targets", t}}
	seen := map[string]bool{"targets": true}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if d.m.Signed.Delegations == nil {
			continue
		}
		for _, name := range delegatedNames(d.m.Signed.Delegations) {
			if seen[name] {
				// A diamond: the role must also meet this delegator's
				// keys and threshold, as the device checks it (§5.6.3).
				if m := tm.Targets[name]; m != nil {
					if err := d.m.VerifyDelegate(name, m); err != nil {
						return fmt.Errorf("%s is delegated by %s too, but not signed by the keys %s gives it: %w", name, d.name, d.name, err)
					}
				}
				continue
			}
			if len(seen) >= MaxRoles {
				return errTooManyRoles
			}
			seen[name] = true
			b, err := fetch(name)
			if err != nil {
				return err
			}
			m, err := tm.UpdateDelegatedTargets(b, name, d.name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			queue = append(queue, &delegatorMeta{name, m})
		}
	}
	return nil
}

type delegatorMeta struct {
	name string
	m    *metadata.Metadata[metadata.TargetsType]
}

// checkProof verifies the tlog-proof beside version of role (exact bytes b)
// under p. It is how the repository refuses to expose an unlogged version.
func (r *Repo) checkProof(role string, version int64, b []byte, p *policy.Policy) error {
	pb, err := readLimited(r.proofPath(version, role), MaxProofFileSize)
	if errors.Is(err, os.ErrNotExist) {
		if found, err := r.checkSigstore(role, version, b, p); found { // logged in Rekor instead
			return err
		}
		return &UnloggedError{Role: role, Version: version}
	}
	if err != nil {
		return err
	}
	if _, err := evidence.VerifyEntry(r.Config.Repository, role, uint64(version), b, pb, p); err != nil {
		return fmt.Errorf("tlog-proof of %s v%d does not verify under the policy: %w", role, version, err)
	}
	return nil
}

// UnloggedError means a version would be exposed without a tlog-proof.
type UnloggedError struct {
	Role    string
	Version int64
}

func (e *UnloggedError) Error() string {
	return fmt.Sprintf("%s v%d is not logged (no %d.%s.json%s): run `shiplog publish` to log it before it is exposed", e.Role, e.Version, e.Version, e.Role, proofSuffix)
}
