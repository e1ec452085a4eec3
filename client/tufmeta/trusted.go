package tufmeta

import (
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// The functions below are go-tuf's trustedmetadata state machine (TUF 1.0
// §5.3–5.6), check for check and error for error, over files decoded once
// by Parse and verified by VerifyDelegate. They change tm only on success,
// as go-tuf's methods do, and read tm.RefTime for every expiry.

// LoadRoot is the trusted-root half of trustedmetadata.New: rootData must
// be root metadata signed by its own threshold (§5.2; an expired trusted
// root is valid until UpdateTimestamp). The caller builds the
// TrustedMetadata around it.
func LoadRoot(rootData []byte) (*metadata.Metadata[metadata.RootType], error) {
	f, err := Parse[metadata.RootType](rootData)
	if err != nil {
		return nil, err
	}
	if f.MD.Signed.Type != metadata.ROOT {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("expected %s, got %s", metadata.ROOT, f.MD.Signed.Type)}
	}
	if err := VerifyDelegate(f.MD, metadata.ROOT, f); err != nil {
		return nil, err
	}
	return f.MD, nil
}

// UpdateRoot is tm.UpdateRoot: §5.3.4–5.3.8 (signed by the trusted root's
// threshold and its own, version N+1). An expired intermediate root is
// valid.
func UpdateRoot(tm *trustedmetadata.TrustedMetadata, rootData []byte) (*metadata.Metadata[metadata.RootType], error) {
	if tm.Timestamp != nil {
		return nil, &metadata.ErrRuntime{Msg: "cannot update root after timestamp"}
	}
	f, err := Parse[metadata.RootType](rootData)
	if err != nil {
		return nil, err
	}
	newRoot := f.MD
	if newRoot.Signed.Type != metadata.ROOT {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("expected %s, got %s", metadata.ROOT, newRoot.Signed.Type)}
	}
	if err := VerifyDelegate(tm.Root, metadata.ROOT, f); err != nil { // §5.3.5
		return nil, err
	}
	if newRoot.Signed.Version != tm.Root.Signed.Version+1 { // §5.3.6
		return nil, &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("bad version number, expected %d, got %d", tm.Root.Signed.Version+1, newRoot.Signed.Version)}
	}
	if err := VerifyDelegate(newRoot, metadata.ROOT, f); err != nil { // §5.3.5
		return nil, err
	}
	tm.Root = newRoot
	return tm.Root, nil
}

// UpdateTimestamp is tm.UpdateTimestamp: §5.3.10 (the final root is not
// expired), §5.4.2–5.4.4. An equal version returns
// metadata.ErrEqualVersionNumber and keeps the trusted timestamp; an
// expired new timestamp is kept (for rollback checks) and reported with
// metadata.ErrExpiredMetadata.
func UpdateTimestamp(tm *trustedmetadata.TrustedMetadata, timestampData []byte) (*metadata.Metadata[metadata.TimestampType], error) {
	if tm.Snapshot != nil {
		return nil, &metadata.ErrRuntime{Msg: "cannot update timestamp after snapshot"}
	}
	if tm.Root.Signed.IsExpired(tm.RefTime) { // §5.3.10
		return nil, &metadata.ErrExpiredMetadata{Msg: "final root.json is expired"}
	}
	f, err := Parse[metadata.TimestampType](timestampData)
	if err != nil {
		return nil, err
	}
	ts := f.MD
	if ts.Signed.Type != metadata.TIMESTAMP {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("expected %s, got %s", metadata.TIMESTAMP, ts.Signed.Type)}
	}
	if err := VerifyDelegate(tm.Root, metadata.TIMESTAMP, f); err != nil { // §5.4.2
		return nil, err
	}
	if tm.Timestamp != nil { // §5.4.3
		if ts.Signed.Version < tm.Timestamp.Signed.Version {
			return nil, &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("new timestamp version %d must be >= %d", ts.Signed.Version, tm.Timestamp.Signed.Version)}
		}
		if ts.Signed.Version == tm.Timestamp.Signed.Version {
			return nil, &metadata.ErrEqualVersionNumber{Msg: fmt.Sprintf("new timestamp version %d equals the old one %d", ts.Signed.Version, tm.Timestamp.Signed.Version)}
		}
		old := tm.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]
		neu := ts.Signed.Meta[metadata.SNAPSHOT+".json"]
		if neu.Version < old.Version {
			return nil, &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("new snapshot version %d must be >= %d", neu.Version, old.Version)}
		}
	}
	tm.Timestamp = ts
	if tm.Timestamp.Signed.IsExpired(tm.RefTime) { // §5.4.4
		return nil, &metadata.ErrExpiredMetadata{Msg: "timestamp.json is expired"}
	}
	return tm.Timestamp, nil
}

// UpdateSnapshot is tm.UpdateSnapshot: §5.5.2–5.5.6. Bytes the device
// trusted already (isTrusted) skip the length and hash check against the
// timestamp. A snapshot that is expired or not the version the timestamp
// names is kept (for rollback checks) and reported.
func UpdateSnapshot(tm *trustedmetadata.TrustedMetadata, snapshotData []byte, isTrusted bool) (*metadata.Metadata[metadata.SnapshotType], error) {
	if tm.Timestamp == nil {
		return nil, &metadata.ErrRuntime{Msg: "cannot update snapshot before timestamp"}
	}
	if tm.Targets[metadata.TARGETS] != nil {
		return nil, &metadata.ErrRuntime{Msg: "cannot update snapshot after targets"}
	}
	if err := checkFinalTimestamp(tm); err != nil {
		return nil, err
	}
	meta := tm.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]
	if !isTrusted {
		if err := meta.VerifyLengthHashes(snapshotData); err != nil { // §5.5.2
			return nil, err
		}
	}
	f, err := Parse[metadata.SnapshotType](snapshotData)
	if err != nil {
		return nil, err
	}
	snap := f.MD
	if snap.Signed.Type != metadata.SNAPSHOT {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("expected %s, got %s", metadata.SNAPSHOT, snap.Signed.Type)}
	}
	if err := VerifyDelegate(tm.Root, metadata.SNAPSHOT, f); err != nil { // §5.5.3
		return nil, err
	}
	if tm.Snapshot != nil { // §5.5.5
		for name, info := range tm.Snapshot.Signed.Meta {
			nf, ok := snap.Signed.Meta[name]
			if !ok {
				return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("new snapshot is missing info for %s", name)}
			}
			if nf.Version < info.Version {
				return nil, &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("expected %s version %d, got %d", name, nf.Version, info.Version)}
			}
		}
	}
	tm.Snapshot = snap
	if err := checkFinalSnapshot(tm); err != nil { // §5.5.4, §5.5.6
		return nil, err
	}
	return tm.Snapshot, nil
}

func checkFinalTimestamp(tm *trustedmetadata.TrustedMetadata) error {
	if tm.Timestamp.Signed.IsExpired(tm.RefTime) {
		return &metadata.ErrExpiredMetadata{Msg: "timestamp.json is expired"}
	}
	return nil
}

func checkFinalSnapshot(tm *trustedmetadata.TrustedMetadata) error {
	if tm.Snapshot.Signed.IsExpired(tm.RefTime) {
		return &metadata.ErrExpiredMetadata{Msg: "snapshot.json is expired"}
	}
	meta := tm.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]
	if tm.Snapshot.Signed.Version != meta.Version {
		return &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("expected %d, got %d", meta.Version, tm.Snapshot.Signed.Version)}
	}
	return nil
}

// UpdateDelegatedTargets is tm.UpdateDelegatedTargets: §5.6.2–5.6.5 for
// role, delegated by delegator (metadata.ROOT for top-level targets): the
// length and hashes the snapshot lists, the delegator's threshold, the
// snapshot's version, expiry.
func UpdateDelegatedTargets(tm *trustedmetadata.TrustedMetadata, targetsData []byte, role, delegator string) (*metadata.Metadata[metadata.TargetsType], error) {
	if tm.Snapshot == nil {
		return nil, &metadata.ErrRuntime{Msg: "cannot load targets before snapshot"}
	}
	if err := checkFinalSnapshot(tm); err != nil {
		return nil, err
	}
	var ok bool
	if delegator == metadata.ROOT {
		ok = tm.Root != nil
	} else {
		_, ok = tm.Targets[delegator]
	}
	if !ok {
		return nil, &metadata.ErrRuntime{Msg: "cannot load targets before delegator"}
	}
	meta, ok := tm.Snapshot.Signed.Meta[role+".json"]
	if !ok {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("snapshot does not contain information for %s", role)}
	}
	if err := meta.VerifyLengthHashes(targetsData); err != nil { // §5.6.2
		return nil, err
	}
	f, err := Parse[metadata.TargetsType](targetsData)
	if err != nil {
		return nil, err
	}
	md := f.MD
	if md.Signed.Type != metadata.TARGETS {
		return nil, &metadata.ErrRepository{Msg: fmt.Sprintf("expected %s, got %s", metadata.TARGETS, md.Signed.Type)}
	}
	if delegator == metadata.ROOT { // §5.6.3
		err = VerifyDelegate(tm.Root, role, f)
	} else {
		err = VerifyDelegate(tm.Targets[delegator], role, f)
	}
	if err != nil {
		return nil, err
	}
	if md.Signed.Version != meta.Version { // §5.6.4
		return nil, &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("expected %s version %d, got %d", role, meta.Version, md.Signed.Version)}
	}
	if md.Signed.IsExpired(tm.RefTime) { // §5.6.5
		return nil, &metadata.ErrExpiredMetadata{Msg: fmt.Sprintf("new %s is expired", role)}
	}
	tm.Targets[role] = md
	return md, nil
}
