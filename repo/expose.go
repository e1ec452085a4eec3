package repo

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Exposure reports the snapshot and timestamp written by publish or
// `repo timestamp`.
type Exposure struct {
	Snapshot  int64 `json:"snapshot_version"`
	Timestamp int64 `json:"timestamp_version"`
	// Unchanged is true when the current snapshot already exposes every
	// logged role and nothing was written.
	Unchanged bool      `json:"unchanged,omitempty"`
	Expires   time.Time `json:"timestamp_expires"`
}

// onlineKeys checks that every key of ks is a key of the top-level role
// (snapshot or timestamp) and that together they meet the role's threshold
// in distinct keys (TUF 1.0 §4.3: a role's threshold of its keys), and
// returns them without duplicates.
func (r *Repo) onlineKeys(role string, ks []*keys.Private) ([]*keys.Private, error) {
	if len(ks) == 0 || ks[0] == nil {
		return nil, fmt.Errorf("no %s key: pass --%s-key FILE", role, role)
	}
	rr := r.root.Signed.Roles[role]
	var out []*keys.Private
	seen := map[string]bool{}
	for _, k := range ks {
		if !slices.Contains(rr.KeyIDs, k.ID) {
			return nil, fmt.Errorf("key %s is not a %s key of root v%d (its %s keys: %s)", short(k.ID), role, r.root.Signed.Version, role, describeKeys([]Authority{{Name: role, Threshold: rr.Threshold, KeyIDs: rr.KeyIDs}}))
		}
		if !seen[k.ID] {
			seen[k.ID] = true
			out = append(out, k)
		}
	}
	if len(out) < rr.Threshold {
		return nil, fmt.Errorf("%s threshold is %d of root v%d's keys and %d distinct key(s) were given: pass --%s-key FILE once per key", role, rr.Threshold, r.root.Signed.Version, len(out), role)
	}
	return out, nil
}

// expose writes a new snapshot listing the latest committed version of
// every targets role reachable from targets (with length and sha256), and a
// timestamp naming it, after checking that every one of them is logged (its
// tlog-proof verifies under p) and that the whole state passes the TUF
// client workflow. <v>.snapshot.json is written first and timestamp.json
// last: a crash in between exposes nothing new.
func (r *Repo) expose(p *policy.Policy, snapKeys, tsKeys []*keys.Private) (*Exposure, error) {
	if r.root == nil {
		return nil, errors.New("the repository has no root yet: run `shiplog repo register` first")
	}
	snapKeys, err := r.onlineKeys("snapshot", snapKeys)
	if err != nil {
		return nil, err
	}
	if tsKeys, err = r.onlineKeys("timestamp", tsKeys); err != nil {
		return nil, err
	}
	if err := r.checkProof("root", r.root.Signed.Version, r.roots[len(r.roots)-1], p); err != nil {
		return nil, err
	}
	meta := map[string]*metadata.MetaFiles{}
	err = r.committedView().walk(func(d delegation, m *metadata.Metadata[metadata.TargetsType]) error {
		c := r.roles[d.Role]
		if c == nil {
			return fmt.Errorf("role %s is delegated by %s but has no published version: sign it and run publish", d.Role, d.Delegator)
		}
		if err := r.checkProof(d.Role, c.Version, c.Bytes, p); err != nil {
			return err
		}
		sum := sha256.Sum256(c.Bytes)
		meta[d.Role+".json"] = &metadata.MetaFiles{Version: c.Version, Length: int64(len(c.Bytes)), Hashes: metadata.Hashes{"sha256": sum[:]}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.upToDate(meta) {
		return &Exposure{Snapshot: r.snapshot.Signed.Version, Timestamp: r.timestamp.Signed.Version, Unchanged: true, Expires: r.timestamp.Signed.Expires}, nil
	}
	snap := metadata.Snapshot(r.expiry("snapshot"))
	if r.snapshot != nil {
		snap.Signed.Version = r.snapshot.Signed.Version + 1
	}
	snap.Signed.Meta = meta
	snapBytes, err := signBytes(snap, snapKeys...)
	if err != nil {
		return nil, err
	}
	return r.writeTimestamp(snap, snapBytes, tsKeys)
}

// upToDate reports whether the current snapshot lists exactly meta, still
// passes the client workflow, and has more than half its validity left.
func (r *Repo) upToDate(meta map[string]*metadata.MetaFiles) bool {
	if r.snapshot == nil || len(r.snapshot.Signed.Meta) != len(meta) {
		return false
	}
	for name, mf := range meta {
		old := r.snapshot.Signed.Meta[name]
		if old == nil || old.Version != mf.Version || old.Length != mf.Length || !old.Hashes.Equal(mf.Hashes) {
			return false
		}
	}
	if r.snapshot.Signed.Expires.Before(r.now().Add(r.Config.Expires.For("snapshot") / 2)) {
		return false
	}
	return r.checkCurrent() == nil
}

// checkCurrent runs the client workflow over the committed state.
func (r *Repo) checkCurrent() error {
	if r.timestamp == nil {
		return errors.New("nothing exposed yet")
	}
	return checkClient(r.now(), r.clientState(r.timestampBytes, r.snapshotBytes))
}

func (r *Repo) clientState(ts, snap []byte) clientState {
	return clientState{roots: r.roots, timestamp: ts, snapshot: snap, role: func(name string, version int64) ([]byte, error) {
		if c := r.roles[name]; c != nil && c.Version == version {
			return c.Bytes, nil
		}
		return readLimited(r.metaPath(version, name), MaxTargetsSize)
	}}
}

// Timestamp refreshes timestamp.json (a new version with a fresh expiry
// naming the current snapshot), as a cron job does before it expires,
// signed by tsKeys (at least the timestamp role's threshold of its keys).
// It refuses an expired snapshot, since that needs `shiplog publish`.
func (r *Repo) Timestamp(tsKeys ...*keys.Private) (*Exposure, error) {
	if r.snapshot == nil {
		return nil, errors.New("nothing is exposed yet: run `shiplog publish` with --snapshot-key and --timestamp-key first")
	}
	tsKeys, err := r.onlineKeys("timestamp", tsKeys)
	if err != nil {
		return nil, err
	}
	if !r.snapshot.Signed.Expires.After(r.now()) {
		return nil, fmt.Errorf("snapshot v%d expired at %s: run `shiplog publish` with --snapshot-key to write a new one", r.snapshot.Signed.Version, r.snapshot.Signed.Expires.Format(time.RFC3339))
	}
	return r.writeTimestamp(r.snapshot, r.snapshotBytes, tsKeys)
}

// writeTimestamp signs a timestamp for snap, checks the resulting state as a
// client would, and writes snapshot (if new) and timestamp durably.
func (r *Repo) writeTimestamp(snap *metadata.Metadata[metadata.SnapshotType], snapBytes []byte, tsKeys []*keys.Private) (*Exposure, error) {
	ts := metadata.Timestamp(r.expiry("timestamp"))
	if r.timestamp != nil {
		ts.Signed.Version = r.timestamp.Signed.Version + 1
	}
	sum := sha256.Sum256(snapBytes)
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": {Version: snap.Signed.Version, Length: int64(len(snapBytes)), Hashes: metadata.Hashes{"sha256": sum[:]}}}
	tsBytes, err := signBytes(ts, tsKeys...)
	if err != nil {
		return nil, err
	}
	if len(tsBytes) > MaxTimestampSize || len(snapBytes) > MaxSnapshotSize {
		return nil, errors.New("snapshot or timestamp larger than clients accept")
	}
	if err := checkClient(r.now(), r.clientState(tsBytes, snapBytes)); err != nil {
		return nil, fmt.Errorf("refusing to expose a repository that TUF clients would reject: %w", err)
	}
	snapPath := r.metaPath(snap.Signed.Version, "snapshot")
	if r.snapshot == nil || snap.Signed.Version != r.snapshot.Signed.Version {
		if err := durable.WriteFile(snapPath, snapBytes, 0o644); err != nil {
			return nil, err
		}
	}
	if err := durable.WriteFile(filepath.Join(r.Dir, MetadataDir, "timestamp.json"), tsBytes, 0o644); err != nil {
		return nil, err
	}
	r.snapshot, r.snapshotBytes, r.timestamp, r.timestampBytes = snap, snapBytes, ts, tsBytes
	return &Exposure{Snapshot: snap.Signed.Version, Timestamp: ts.Signed.Version, Expires: ts.Signed.Expires}, nil
}

// signBytes signs m with every key of ks and returns its file bytes.
func signBytes[T metadata.Roles](m *metadata.Metadata[T], ks ...*keys.Private) ([]byte, error) {
	m.Signatures = []metadata.Signature{}
	for _, k := range ks {
		s, err := k.Signer()
		if err != nil {
			return nil, err
		}
		if _, err := m.Sign(s); err != nil {
			return nil, err
		}
	}
	return m.ToBytes(true)
}
