// Package update is the device's update loop: the TUF 1.0 client workflow
// (TUF specification §5.3–5.7: root chain, timestamp, snapshot, targets,
// delegations) driven over go-tuf v2's metadata/trustedmetadata state
// (its checks run by client/tufmeta, which decodes each file once and
// verifies over its canonical bytes, with go-tuf's verdicts), with shiplog's
// transparency gate in front of every targets role and every new root. The
// trusted root a Refresh starts from stays decoded and verified in the
// process for the next Refresh from the same bytes.
//
// The gate: before a targets role or a new root version is handed to the
// state machine (and so before it is trusted or persisted), its exact bytes
// must be proven in a transparency log by a C2SP tlog-proof
// (c2sp.org/tlog-proof) that satisfies the device's C2SP tlog-policy: the
// device rebuilds the shiplog/release/v1 log entry from its configured
// repository id, the role, the version pinned by the trusted snapshot (or N+1
// for a root) and the bytes, and checks the proof with evidence.VerifyEntry.
// Proofs come from the repository (<version>.<role>.json.tlog-proof beside the
// metadata file) or, when a Ledger is configured, from the ledger by leaf
// hash. Checkpoints only move forward: see Gate.
//
// With Policy nil the gate is off and the package is a plain TUF client (the
// tuf-conformance mode of shiplog-device).
//
// Limits: at most Limits.MaxRootRotations new roots per refresh (default 32),
// at most Limits.MaxDelegations targets roles visited per search (default 32),
// metadata sizes capped per role (root 512 KB, timestamp 16 KB, snapshot 2 MB,
// targets 5 MB, as go-tuf), target files capped by their TUF length, and every
// expiry checked against one reference time fixed when a Session starts.
package update
