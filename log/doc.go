// Package log is the shiplog ledger: it accepts signed TUF metadata
// (TUF 1.0 §5.3-§5.6 signing rules, via client/tufcheck) for registered
// repositories, appends one shiplog/release/v1 entry per accepted version
// (docs/spec/entry.md) to a C2SP tlog-tiles log (c2sp.org/tlog-tiles),
// gathers witness cosignatures on its checkpoints (c2sp.org/tlog-witness,
// c2sp.org/tlog-cosignature) and answers with C2SP tlog-proofs
// (c2sp.org/tlog-proof@v1). The HTTP contract is docs/spec/ledger-api.md.
//
// The package is split as the house style asks:
//
//   - check.go is the pure core: metadata bytes, the repository's logged
//     history and a reference time in, an accepted version or a classified
//     error out.
//   - Storage is the boundary to the log engine (log/tessera implements it
//     on Tessera's POSIX driver, log/trillian on a Trillian tree).
//   - Index (bbolt) and MetadataStore (content-addressed files) keep what
//     the checks need; both can be rebuilt from, or are written before, the log.
//     IndexStore, MetadataStorage and CheckpointState let log/pgstore keep
//     them in PostgreSQL instead, and a Coordinator lets several replicas
//     share one log (backends.go, replicas.go).
//   - Ledger ties them together: one submission per repository at a time,
//     durable metadata before the append, the index after it, and a
//     publisher that cosigns checkpoints and wakes the callers waiting for
//     proofs.
//
// This is not the standard library's log package: shiplog logs with log/slog.
package log
