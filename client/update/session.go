package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/client/tufmeta"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Session is one run of the update loop: the metadata trusted so far, in
// memory. It is not safe for concurrent use.
type Session struct {
	c      *Client
	tm     *trustedmetadata.TrustedMetadata
	in     Trusted
	limits Limits
	log    *slog.Logger
	view   *logView // nil when the gate is off

	// priorSnapshot is the trusted snapshot when the new one lowered a
	// role's version (see restartSequences), else nil.
	priorSnapshot *metadata.Metadata[metadata.SnapshotType]

	roots     [][]byte          // new roots, in order
	timestamp []byte            // the trusted timestamp (new or kept)
	snapshot  []byte            // the trusted snapshot (new or kept)
	roles     map[string][]byte // targets roles trusted in this session
	// verified maps a (role, delegator) pair to the role's metadata that
	// met the threshold of keys that delegator gives it, in this session.
	verified map[roleEdge]*metadata.Metadata[metadata.TargetsType]
	evidence []RoleEvidence
}

// Metadata returns go-tuf's trusted metadata set (root, timestamp, snapshot,
// targets roles loaded so far). The caller must not modify it.
func (s *Session) Metadata() *trustedmetadata.TrustedMetadata { return s.tm }

// Evidence returns the log evidence of every root and targets role that
// passed the gate in this session, in order. Empty when the gate is off.
func (s *Session) Evidence() []RoleEvidence { return s.evidence }

// NewRoots returns the exact bytes of the root versions trusted in this
// session, in version order.
func (s *Session) NewRoots() [][]byte { return s.roots }

// Roles returns the exact bytes of the targets roles trusted in this session.
func (s *Session) Roles() map[string][]byte { return s.roles }

// Trusted returns what the device should persist after it has installed
// the update: the latest root, timestamp and snapshot, the targets roles
// still listed in the snapshot (loaded now or kept unchanged), and the newest
// checkpoint per log.
func (s *Session) Trusted() Trusted {
	t := Trusted{Root: s.in.Root, Timestamp: s.timestamp, Snapshot: s.snapshot, Targets: map[string][]byte{}}
	if n := len(s.roots); n > 0 {
		t.Root = s.roots[n-1]
	}
	for role, b := range s.in.Targets {
		if m := s.tm.Snapshot.Signed.Meta[role+".json"]; m != nil && metaPins(m, b) {
			t.Targets[role] = b
		}
	}
	for role, b := range s.roles {
		t.Targets[role] = b
	}
	if s.view != nil {
		t.Checkpoints = s.view.newest()
	}
	return t
}

func (s *Session) trusted(role string, data []byte) error {
	if s.c.OnTrusted == nil {
		return nil
	}
	return s.c.OnTrusted(role, data)
}

// gate runs the transparency gate on a file about to be trusted; keys are
// the keys its delegator lists for it (for Sigstore evidence).
func (s *Session) gate(ctx context.Context, name, role string, version int64, data []byte, keys map[string]*metadata.Key) error {
	if s.view == nil {
		return nil
	}
	ev, err := s.view.check(ctx, s.c.Remote, name, role, version, data, keys)
	if err != nil {
		return err
	}
	s.evidence = append(s.evidence, *ev)
	s.log.Debug("proven in log", "role", role, "version", version, "log", ev.Origin, "index", ev.Index)
	return nil
}

// loadRoots is TUF §5.3.2–5.3.9: fetch N+1.root.json until the remote has
// none, at most MaxRootRotations; each new root must be proven in the log
// (the gate) before it is verified and trusted.
func (s *Session) loadRoots(ctx context.Context) error {
	for i := 0; i < s.limits.MaxRootRotations; i++ {
		next := s.tm.Root.Signed.Version + 1
		name := strconv.FormatInt(next, 10) + ".root.json"
		data, err := s.c.Remote.Metadata(ctx, name, s.limits.RootMaxLength)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("couldn't fetch %s: %w", name, err)
		}
		if err := s.gate(ctx, name, metadata.ROOT, next, data, s.rootRoleKeys()); err != nil {
			return err
		}
		if _, err := tufmeta.UpdateRoot(s.tm, data); err != nil { // §5.3.4–5.3.8
			return fmt.Errorf("%s: %w", name, err)
		}
		s.roots = append(s.roots, data)
		if err := s.trusted(metadata.ROOT, data); err != nil {
			return err
		}
	}
	return nil
}

// loadTimestamp is TUF §5.4. The device's previous timestamp is loaded
// first for rollback protection (§5.4.3); if the new root no longer signs it
// (keys rotated: fast-forward attack recovery, §5.3.11) it is dropped.
func (s *Session) loadTimestamp(ctx context.Context) error {
	if s.in.Timestamp != nil {
		if _, err := tufmeta.UpdateTimestamp(s.tm, s.in.Timestamp); err != nil {
			if !errors.Is(err, &metadata.ErrRepository{}) {
				return fmt.Errorf("trusted timestamp: %w", err)
			}
			s.log.Debug("trusted timestamp not usable as final", "err", err)
		}
		if s.tm.Timestamp != nil {
			s.timestamp = s.in.Timestamp
		}
	}
	data, err := s.c.Remote.Metadata(ctx, "timestamp.json", s.limits.TimestampMaxLength)
	if err != nil {
		return fmt.Errorf("couldn't fetch timestamp.json: %w", err)
	}
	if s.tm.Timestamp != nil && bytes.Equal(data, s.in.Timestamp) {
		// The bytes just loaded as the trusted timestamp (nothing new, the
		// usual poll): UpdateTimestamp would decode and verify them again
		// under the same root and reference time and answer
		// ErrEqualVersionNumber.
		return nil // §5.4.3.2: same version, keep ours
	}
	if _, err := tufmeta.UpdateTimestamp(s.tm, data); err != nil {
		if errors.Is(err, &metadata.ErrEqualVersionNumber{}) {
			return nil // §5.4.3.2: same version, keep ours
		}
		return fmt.Errorf("timestamp.json: %w", s.explainExpiry(err, data))
	}
	s.timestamp = data
	return s.trusted(metadata.TIMESTAMP, data)
}

// loadSnapshot is TUF §5.5. The device's snapshot is kept if the timestamp
// still names it; otherwise it is loaded for rollback checks (§5.5.5) and
// the new one fetched.
func (s *Session) loadSnapshot(ctx context.Context) error {
	if s.in.Snapshot != nil {
		_, err := tufmeta.UpdateSnapshot(s.tm, s.in.Snapshot, true)
		if err == nil {
			s.snapshot = s.in.Snapshot
			return nil
		}
		if !errors.Is(err, &metadata.ErrRepository{}) {
			return fmt.Errorf("trusted snapshot: %w", err)
		}
	}
	meta := s.tm.Timestamp.Signed.Meta["snapshot.json"]
	if meta == nil {
		return errors.New("timestamp.json has no snapshot.json entry")
	}
	max := s.limits.SnapshotMaxLength
	if meta.Length > 0 && meta.Length < max {
		max = meta.Length
	}
	name := "snapshot.json"
	if s.tm.Root.Signed.ConsistentSnapshot {
		name = strconv.FormatInt(meta.Version, 10) + ".snapshot.json"
	}
	data, err := s.c.Remote.Metadata(ctx, name, max)
	if err != nil {
		return fmt.Errorf("couldn't fetch %s: %w", name, err)
	}
	if _, err := tufmeta.UpdateSnapshot(s.tm, data, false); err != nil {
		if !errors.Is(err, &metadata.ErrBadVersionNumber{}) || s.tm.Snapshot == nil {
			return fmt.Errorf("%s: %w", name, s.explainExpiry(err, data))
		}
		if err := s.restartSequences(data); err != nil {
			return fmt.Errorf("%s: %w", name, s.explainExpiry(err, data))
		}
	}
	s.snapshot = data
	return s.trusted(metadata.SNAPSHOT, data)
}

// restartSequences accepts new snapshot data that lists a lower version of
// some targets role than the trusted snapshot does (§5.5.5 refused it): a
// role's keys may have been rotated, starting its version sequence again
// (docs/spec/versions.md). It checks data as TUF would without a trusted
// snapshot (fast-forward attack recovery, §5.3.11) and keeps the trusted
// snapshot's versions, so that loadRole holds every role it loads to its
// floor. The rest of the state is what this session verified already.
func (s *Session) restartSequences(data []byte) error {
	prior := s.tm.Snapshot
	root, err := s.tm.Root.ToBytes(false)
	if err != nil {
		return err
	}
	rmd, err := tufmeta.LoadRoot(root)
	if err != nil {
		return err
	}
	tm := &trustedmetadata.TrustedMetadata{Root: rmd, Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, RefTime: s.tm.RefTime}
	if _, err := tufmeta.UpdateTimestamp(tm, s.timestamp); err != nil {
		return err
	}
	if _, err := tufmeta.UpdateSnapshot(tm, data, false); err != nil {
		return err
	}
	s.log.Debug("snapshot lowers a role's version: checking each role against its floor", "snapshot", tm.Snapshot.Signed.Version)
	s.tm, s.priorSnapshot = tm, prior
	return nil
}

// checkFloor holds version, the new version of role delegated by
// delegator, to the role's floor (tufcheck.TargetsFloor): above the
// version the device trusts while that still meets the role's current
// keys. Without trusted bytes of the role, the version a bypassed trusted
// snapshot listed binds. The error wraps metadata.ErrBadVersionNumber and
// tufcheck.ErrVersion.
func (s *Session) checkFloor(role, delegator string, version int64) error {
	var floor int64
	if b := s.in.Targets[role]; b != nil {
		prev, err := tufmeta.Parse[metadata.TargetsType](b)
		if err != nil {
			return fmt.Errorf("trusted role %q: %w", role, err)
		}
		// tufcheck.TargetsFloor and DelegatedFloor, over bytes decoded once.
		// The floor is prev's version or 0, so a version above both passes
		// whether or not prev meets the role's current keys: no need to
		// verify prev then (the usual next release).
		if pv := prev.MD.Signed.Version; version > pv && pv >= 0 {
			return nil
		}
		if delegator == metadata.ROOT {
			if tufmeta.VerifyDelegate(s.tm.Root, metadata.TARGETS, prev) == nil {
				floor = prev.MD.Signed.Version
			}
		} else if d := s.tm.Targets[delegator]; d != nil && tufcheck.Delegates(d, role) && tufmeta.VerifyDelegate(d, role, prev) == nil {
			floor = prev.MD.Signed.Version
		}
	} else if s.priorSnapshot != nil {
		if m := s.priorSnapshot.Signed.Meta[role+".json"]; m != nil {
			floor = m.Version
		}
	}
	if err := tufcheck.CheckAboveFloor(role, version, floor); err != nil {
		return fmt.Errorf("%w: %w", &metadata.ErrBadVersionNumber{Msg: "role " + role}, err)
	}
	return nil
}

// loadRole is TUF §5.6 for one targets role delegated by delegator. With the
// gate on, the snapshot must pin the role's length and SHA-256 (the log
// commits to exact bytes; TUF signatures alone do not), and the bytes must
// be proven in the log before the state machine sees them. Bytes the device
// already trusts, pinned unchanged by the snapshot, are reused as they are.
//
// A role already loaded in this session through another delegator (a
// diamond: two roles delegate the same role, possibly with different keys)
// is not taken on that delegator's word: its signatures are checked again
// against the threshold of keys that delegator gives it (§5.6.3), so a
// search that reaches it now through a delegator whose keys never signed it
// fails instead of trusting it.
func (s *Session) loadRole(ctx context.Context, role, delegator string) (*metadata.Metadata[metadata.TargetsType], error) {
	if md := s.tm.Targets[role]; md != nil {
		if s.verified[roleEdge{role, delegator}] == md {
			return md, nil // checked against this delegator's keys already, in this session
		}
		if err := s.verifyDelegate(role, delegator, md); err != nil {
			return nil, err
		}
		s.verified[roleEdge{role, delegator}] = md
		return md, nil
	}
	meta := s.tm.Snapshot.Signed.Meta[role+".json"]
	if meta == nil {
		return nil, fmt.Errorf("snapshot lists no role %q", role)
	}
	if s.view != nil && (meta.Length <= 0 || len(meta.Hashes["sha256"]) != sha256.Size) {
		return nil, fmt.Errorf("snapshot does not pin length and sha256 of role %q: refusing (the log commits to exact bytes)", role)
	}
	if b := s.in.Targets[role]; b != nil && (s.view == nil || metaPins(meta, b)) {
		md, err := tufmeta.UpdateDelegatedTargets(s.tm, b, role, delegator)
		if err == nil {
			s.verified[roleEdge{role, delegator}] = md
			return md, nil
		}
		if !errors.Is(err, &metadata.ErrRepository{}) {
			return nil, fmt.Errorf("trusted role %q: %w", role, err)
		}
	}
	if err := s.checkFloor(role, delegator, meta.Version); err != nil { // the snapshot's version is the one UpdateDelegatedTargets demands
		return nil, err
	}
	max := s.limits.TargetsMaxLength
	if meta.Length > max {
		return nil, fmt.Errorf("role %q: snapshot length %d is above the limit %d", role, meta.Length, max)
	}
	if meta.Length > 0 {
		max = meta.Length
	}
	name := url.PathEscape(role) + ".json"
	if s.tm.Root.Signed.ConsistentSnapshot {
		name = RoleFileName(role, meta.Version)
	}
	data, err := s.c.Remote.Metadata(ctx, name, max)
	if err != nil {
		return nil, fmt.Errorf("couldn't fetch %s: %w", name, err)
	}
	if s.view != nil {
		if err := meta.VerifyLengthHashes(data); err != nil { // §5.6.2, checked before the gate for a clear error
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := s.gate(ctx, name, role, meta.Version, data, s.delegatedKeys(role, delegator)); err != nil {
			return nil, err
		}
	}
	md, err := tufmeta.UpdateDelegatedTargets(s.tm, data, role, delegator)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, s.explainExpiry(err, data))
	}
	s.verified[roleEdge{role, delegator}] = md
	s.roles[role] = data
	if err := s.trusted(role, data); err != nil {
		return nil, err
	}
	return md, nil
}

// verifyDelegate checks an already trusted role against the keys and
// threshold delegator gives it now (go-tuf's VerifyDelegate counts distinct
// keys).
func (s *Session) verifyDelegate(role, delegator string, md *metadata.Metadata[metadata.TargetsType]) error {
	var err error
	if delegator == metadata.ROOT {
		err = s.tm.Root.VerifyDelegate(role, md)
	} else if d := s.tm.Targets[delegator]; d != nil {
		err = d.VerifyDelegate(role, md)
	} else {
		err = fmt.Errorf("delegator %q is not trusted", delegator)
	}
	if err != nil {
		return fmt.Errorf("role %q reached through %q is not signed by the keys %q gives it: %w", role, delegator, delegator, err)
	}
	return nil
}

// metaPins reports whether a snapshot entry pins exactly b: same length and
// SHA-256 (and any other listed hash).
func metaPins(m *metadata.MetaFiles, b []byte) bool {
	want := m.Hashes["sha256"]
	if len(want) != sha256.Size || m.Length != int64(len(b)) {
		return false
	}
	sum := sha256.Sum256(b)
	return bytes.Equal(sum[:], want) && m.VerifyLengthHashes(b) == nil
}
