// Package bundle reads and verifies shiplog update bundles: one file holding
// everything a device needs to verify and install an update with no network
// (the pw_software_update idea, made transparent). The format:
//
//	"shiplog-bundle/v1\n"   magic (18 bytes)
//	uint32 big-endian       header length, at most MaxHeaderSize
//	header                  proto/bundle.Header, deterministic protobuf
//	payloads                in header order, each exactly its length
//	                        (none for omitted payloads); nothing after them
//
// The header carries the root chain, timestamp, snapshot and every targets
// role on the path to each payload as exact bytes, with their tlog-proofs,
// and the sign-off evidence the repository had for each payload's digest
// (docs/spec/signoff.md; Signoff exposes it, parsed but unverified).
// Open checks the container strictly (canonical encoding, no unknown fields,
// consistent lengths, no trailing bytes); Verify then runs the device's own
// update loop (client/update, with the transparency gate) over the bundle,
// so a bundle is verified by the same code as an online update, and checks
// that every item of the header was needed and matches. Payloads are read
// through io.ReaderAt sections and hashed while streaming, never held whole.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/shiplog/shiplog/evidence/signoff"
	pb "github.com/shiplog/shiplog/proto/bundle"
	"google.golang.org/protobuf/proto"
)

// Magic is the first line of a bundle file.
const Magic = "shiplog-bundle/v1\n"

// Limits of the container. MaxHeaderSize bounds what Open holds in memory
// (the decoded header aliases the header's bytes, about that much plus a few
// hundred bytes per item): 16 MiB carries a root chain of 32 rotations of
// 512 KB roots, or a 5 MB targets role with its snapshot and proofs, the
// largest metadata files client/update's default Limits accept.
const (
	MaxHeaderSize = 16 << 20
	MaxRoots      = 1024
	MaxRoles      = 1024
	MaxPayloads   = 4096
	// MaxSignoffs bounds the sign-off evidence files (one per payload digest).
	MaxSignoffs = MaxPayloads
	maxPathLen  = 4096
)

var errMalformed = errors.New("malformed bundle")

// Bundle is an opened, not yet verified bundle.
type Bundle struct {
	// Header is the parsed header. Nothing in it is trusted before Verify.
	Header *pb.Header
	r      io.ReaderAt
	size   int64
	offset map[string]int64 // payload path -> offset in the file
	index  map[string]*pb.Payload
	// signoffs is the parsed sign-off evidence by target digest.
	signoffs map[[sha256.Size]byte]*signoff.Evidence
}

// EncodeHeader returns the magic, length and deterministic encoding of h:
// the bytes that precede the payloads.
func EncodeHeader(h *pb.Header) ([]byte, error) {
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(body) > MaxHeaderSize {
		return nil, fmt.Errorf("bundle header of %d bytes is above the limit %d", len(body), MaxHeaderSize)
	}
	out := make([]byte, 0, len(Magic)+4+len(body))
	out = append(out, Magic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...), nil
}

// Open parses the container of a bundle of size bytes read from r. It
// refuses a bad magic, a header above MaxHeaderSize, a non-canonical or
// unknown-field header, inconsistent lists, and a file whose size is not
// exactly the header plus the payloads. Items are counted while the header
// is read, so a header of millions of tiny items is refused after reading
// MaxRoots, MaxRoles or MaxPayloads of them (the bundle header memory
// exhaustion attack): Open holds at most about the header's size in
// memory, never more, whatever the input.
func Open(r io.ReaderAt, size int64) (*Bundle, error) {
	pre := make([]byte, len(Magic)+4)
	if _, err := r.ReadAt(pre, 0); err != nil {
		return nil, fmt.Errorf("%w: too short", errMalformed)
	}
	if string(pre[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: not a shiplog bundle (bad magic)", errMalformed)
	}
	n := int64(binary.BigEndian.Uint32(pre[len(Magic):]))
	if n > MaxHeaderSize || n > size-int64(len(pre)) {
		return nil, fmt.Errorf("%w: header length %d out of range", errMalformed, n)
	}
	h, err := readHeader(r, int64(len(pre)), n)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Header: h, r: r, size: size, offset: map[string]int64{}, index: map[string]*pb.Payload{}}
	if err := b.check(int64(len(pre)) + n); err != nil {
		return nil, err
	}
	return b, nil
}

// check validates the header's lists and the payload layout.
func (b *Bundle) check(off int64) error {
	h := b.Header
	if len(h.Roots) > MaxRoots || len(h.Targets) > MaxRoles || len(h.Payloads) > MaxPayloads || len(h.Signoffs) > MaxSignoffs {
		return fmt.Errorf("%w: too many items", errMalformed)
	}
	if len(h.Timestamp) == 0 || h.Snapshot == nil || h.Snapshot.Role != "snapshot" || len(h.Snapshot.TlogProof) != 0 {
		return fmt.Errorf("%w: missing timestamp or snapshot", errMalformed)
	}
	for i, m := range h.Roots {
		if m.Role != "root" || m.Version < 1 || (i > 0 && m.Version != h.Roots[i-1].Version+1) {
			return fmt.Errorf("%w: root chain not consecutive", errMalformed)
		}
	}
	seen := map[string]bool{}
	for _, m := range h.Targets {
		if m.Role == "" || m.Role == "root" || m.Role == "snapshot" || m.Role == "timestamp" || seen[m.Role] || m.Version < 1 || !utf8.ValidString(m.Role) {
			return fmt.Errorf("%w: bad targets role list", errMalformed)
		}
		seen[m.Role] = true
	}
	for _, p := range h.Payloads {
		if p.TargetPath == "" || len(p.TargetPath) > maxPathLen || b.index[p.TargetPath] != nil || len(p.Sha256) != 32 || p.Length > 1<<62 {
			return fmt.Errorf("%w: bad payload list", errMalformed)
		}
		b.index[p.TargetPath] = p
		if p.Omitted {
			continue
		}
		b.offset[p.TargetPath] = off
		off += int64(p.Length)
	}
	if off != b.size {
		return fmt.Errorf("%w: file is %d bytes, header and payloads make %d (truncated or trailing data)", errMalformed, b.size, off)
	}
	return b.checkSignoffs()
}

// checkSignoffs parses the sign-off evidence: subjects in strictly
// ascending order, each a payload's digest, each evidence file well formed
// (signoff.ParseEvidence) and about its subject. Nothing is verified here:
// the device's sign-off check (signoff.Check) does that.
func (b *Bundle) checkSignoffs() error {
	digests := map[[sha256.Size]byte]bool{}
	for _, p := range b.Header.Payloads {
		digests[[sha256.Size]byte(p.Sha256)] = true
	}
	b.signoffs = map[[sha256.Size]byte]*signoff.Evidence{}
	var last []byte
	for _, so := range b.Header.Signoffs {
		if len(so.Subject) != sha256.Size || (last != nil && bytes.Compare(so.Subject, last) <= 0) {
			return fmt.Errorf("%w: sign-off subjects not 32-byte digests in ascending order", errMalformed)
		}
		last = so.Subject
		subject := [sha256.Size]byte(so.Subject)
		if !digests[subject] {
			return fmt.Errorf("%w: sign-off evidence for a digest no payload has", errMalformed)
		}
		e, err := signoff.ParseEvidence(so.Evidence)
		if err != nil {
			return fmt.Errorf("%w: %w", errMalformed, err)
		}
		if e.Subject != subject {
			return fmt.Errorf("%w: sign-off evidence about another digest", errMalformed)
		}
		b.signoffs[subject] = e
	}
	return nil
}

// Signoff returns the sign-off evidence the bundle carries for a target
// digest, or nil when it carries none. It is parsed, not verified.
func (b *Bundle) Signoff(subject [sha256.Size]byte) *signoff.Evidence {
	return b.signoffs[subject]
}

// Payload returns a reader of the payload of target path, or an error if
// the bundle omits it or has none.
func (b *Bundle) Payload(path string) (*io.SectionReader, *pb.Payload, error) {
	p := b.index[path]
	if p == nil {
		return nil, nil, fmt.Errorf("bundle has no payload for %s", path)
	}
	if p.Omitted {
		return nil, p, fmt.Errorf("%w: %s", ErrOmitted, path)
	}
	return io.NewSectionReader(b.r, b.offset[path], int64(p.Length)), p, nil
}

// ErrOmitted means the bundle leaves out a payload that the device must
// already hold ("personalization").
var ErrOmitted = errors.New("payload omitted from the bundle")
