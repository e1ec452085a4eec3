// Package kit is the lower layer of the test harness (see package
// internal/harness): the parts that import no shiplog package above
// evidence/, so that the internal tests of the ledger (package log), the
// auditor's replay and the vendor's repo package can use them without an
// import cycle. It builds signed TUF 1.0 metadata (go-tuf v2) as exact bytes:
// keys, roots and root rotations, top-level and delegated targets, signed by
// whichever keys a test chooses, revoked ones included.
//
// Helpers panic on internal errors, which only a broken test can cause.
// Values are not safe for concurrent use unless their doc says so.
package kit
