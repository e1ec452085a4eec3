// Package repo is the vendor side of shiplog: a TUF 1.0 repository
// (theupdateframework.github.io/specification, consistent snapshots, §5.7.3
// file naming) kept in a directory that any static web server can serve,
// whose every root and targets role version is logged in the ledger
// (docs/spec/ledger-api.md) before a snapshot exposes it. It is built on
// go-tuf v2's metadata package and verifies ledger proofs with
// evidence.VerifyEntry (c2sp.org/tlog-proof under a c2sp.org/tlog-policy).
//
// The directory layout is a contract with the device, the bundle builder
// and the auditor (docs/vendor.md):
//
//	DIR/shiplog-repo.json            Config, strict
//	DIR/staging.json                 staged roles, never served
//	DIR/metadata/1.root.json …       every root; root.json is the latest
//	DIR/metadata/timestamp.json
//	DIR/metadata/<v>.snapshot.json   pins length and sha256 of every targets role
//	DIR/metadata/<v>.<role>.json     targets and delegated roles
//	DIR/metadata/<v>.<role>.json.tlog-proof
//	DIR/targets/<dir>/<sha256>.<basename>
//
// Changes go through a fixed, safe order: staged (Add, Remove, Delegate,
// Rotate, Renew) → signed by keyholders (Sign) → logged (Publish writes the
// verified tlog-proof, then the metadata file) → exposed (Publish with the
// snapshot and timestamp keys writes a snapshot and a timestamp only for
// logged versions, after the TUF client workflow accepts the result).
// Every write is durable (temp file, fsync, rename, fsync directory) and a
// refused operation changes nothing. A Repo holds an exclusive lock on its
// directory; it is not safe for concurrent use.
//
// Limits: go-tuf's client defaults for metadata sizes (root 512000 bytes,
// timestamp 16 KiB, snapshot 2 MiB, targets 5 MiB), at most 256 root
// versions, 16384 targets roles, 2^14 hash bins, target paths of 1024
// bytes and custom JSON of 64 KiB.
package repo
