// Package harness starts shiplog's real parts for any package's tests: the
// ledger (log/server on Tessera POSIX storage in a temporary directory,
// serving HTTP on 127.0.0.1), witnesses (package witness) that cosign its
// checkpoints, a vendor repository made and published with the vendor's own
// code (package repo) and a device (package client/device) that follows it.
// A test reads like the README:
//
//	h := harness.Start(t, harness.Witnesses(3))
//	r := h.NewRepo(t, "example.com/fw") // registered, targets v1 published
//	r.Add("fw/image.bin", []byte("firmware v1"))
//	r.Sign()
//	r.Publish() // logged, cosigned by the quorum, proofs written, exposed
//	dev := h.Device(t, r)
//	res, err := dev.Update(ctx) // res.Installed
//
// Everything stops at the end of the test; nothing listens on a fixed port.
//
// Beside the full stack, for tests that need to make the other side
// misbehave or to reach below the command-level API:
//   - StartLedger: the ledger core (package log) with in-process witnesses
//     (kit.LocalCosigner), no HTTP server.
//   - NewRawLedger, NewBulkRawLedger: a Tessera log serving the ledger's
//     read API that logs anything it is given, unchecked (for the auditor),
//     with Malicious (rewritten history, dropped entries, corrupt tiles and
//     metadata) and WitnessServer (a witness's monitoring endpoint) in
//     front.
//   - NewRawRepo: a repository whose metadata the test writes directly with
//     go-tuf, logged in an in-memory log (for the device's attack tests),
//     and Standalone, a testing.TB for runnable examples.
//
// # Layers
//
// Go forbids import cycles in tests too: a package's internal tests
// (package log, package repo) cannot import a harness that imports that
// package. So the harness has two layers:
//
//   - internal/harness/kit imports no shiplog package above evidence/: TUF
//     keys and signed metadata builders (kit.Repo, kit.Key, kit.Sign), log
//     and witness keys with their tlog-policy (kit.Keys), and kit.FakeLedger,
//     an in-memory ledger with injectable faults for the vendor's client.
//     Every package's tests may import it.
//   - internal/harness (this package) builds on kit and imports log,
//     log/server, witness, repo and client/device. A package that this
//     package imports (directly or not) can use it only from external test
//     packages (package foo_test); its internal tests use kit, and
//     log/conformance.Init and Serve when they need the real ledger, as
//     package repo's do. This package imports neither log/conformance nor
//     audit, so that the auditor's internal tests can use it.
//
// Helpers fail the test (t.Fatal) on errors in the setup itself; values are
// not safe for concurrent use unless their doc says so.
package harness
