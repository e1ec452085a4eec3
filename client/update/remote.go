package update

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound reports that a remote has no file of that name. The root loop
// (TUF §5.3.3) stops at the first version the remote does not have.
var ErrNotFound = errors.New("not found")

// ErrTooLarge reports a file larger than the limit it is read under (the
// length pinned by trusted metadata, or the role's size cap): endless data.
var ErrTooLarge = errors.New("file too large")

// ErrLedgerRefused reports that the ledger answered but has no such proof
// (an HTTP 4xx): unlike a network failure, the gate does not fall back to
// offline rules on it.
var ErrLedgerRefused = errors.New("ledger refused")

// Remote is where the update loop reads a repository: its TUF metadata (and
// the tlog-proofs beside it) and its target files. Implementations are the
// HTTP repository (HTTPRemote), an update bundle (client/bundle) and test
// fakes.
//
// Metadata returns the metadata-directory file name ("timestamp.json",
// "2.root.json", "7.targets.json", "7.targets.json.tlog-proof"); it must
// return an error wrapping ErrNotFound when the file does not exist, and must
// refuse (not truncate) a file larger than max bytes. Target opens the target
// file described by ref; the caller reads at most ref.Length+1 bytes and
// verifies length and hashes itself. Implementations need not verify
// anything.
type Remote interface {
	Metadata(ctx context.Context, name string, max int64) ([]byte, error)
	Target(ctx context.Context, ref TargetRef) (io.ReadCloser, error)
}

// TargetRef names a target file to fetch.
type TargetRef struct {
	// Path is the TUF target path ("fw/image.bin").
	Path string
	// Name is the file name under the targets base URL: Path, or with
	// consistent snapshots "<dir>/<hash hex>.<basename>" (TUF §5.7.3).
	Name   string
	Length int64
	// SHA256 is the target's SHA-256, if the metadata lists one.
	SHA256 []byte
}
