// Package proof implements C2SP tlog-proof (c2sp.org/tlog-proof@v1): an
// inclusion proof of one log entry bundled with the checkpoint it is proven
// against, so that it can be checked offline.
//
// The encoding is a header line, an optional "extra" line, the entry index,
// the RFC 6962 inclusion proof hashes one per line in base64, a blank line and
// the signed checkpoint note:
//
//	c2sp.org/tlog-proof@v1
//	index 3
//	4nDpJ3HGVRmb7PbvJvsCxkdBbT6P8xUSNvHRrNdrVWk=
//	QjOTIVbJ6IfTzn9H3xHs6QWUnjxaV3dD2Ga7JcNNmNw=
//
//	example.com/log
//	6
//	...
//
// A Proof is unverified data; evidence.VerifyInclusion checks it.
package proof

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Header is the first line of a tlog-proof, without its newline.
const Header = "c2sp.org/tlog-proof@v1"

// Limits. An inclusion proof in a tree of at most 2^63 leaves has at most 63
// hashes; MaxSize bounds the whole encoding, checkpoint note included.
const (
	MaxHashes    = 63
	MaxExtraSize = 4096
	MaxSize      = 128 << 10
)

var (
	errMalformed = errors.New("malformed tlog-proof")
	errTooLarge  = errors.New("tlog-proof too large")
)

// Proof is a parsed, unverified tlog-proof.
type Proof struct {
	// Extra is optional application data; nil when absent.
	Extra  []byte
	Index  uint64
	Hashes [][sha256.Size]byte
	// Checkpoint is the signed checkpoint note, as received.
	Checkpoint []byte
}

// Format returns the encoding of p.
func (p Proof) Format() []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	if p.Extra != nil {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	b.WriteString("index " + strconv.FormatUint(p.Index, 10) + "\n")
	for _, h := range p.Hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// Parse parses a tlog-proof strictly: canonical decimal index and base64,
// hashes of exactly 32 bytes, at most MaxHashes of them, a non-empty
// checkpoint, and at most MaxSize bytes in all. The checkpoint note is not
// parsed here.
func Parse(b []byte) (*Proof, error) {
	if len(b) > MaxSize {
		return nil, errTooLarge
	}
	head, note, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok || len(note) == 0 {
		return nil, errMalformed
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != Header {
		return nil, errMalformed
	}
	lines = lines[1:]
	p := &Proof{Checkpoint: note}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		extra, err := decodeBase64(strings.TrimPrefix(lines[0], "extra "), MaxExtraSize)
		if err != nil {
			return nil, err
		}
		p.Extra, lines = extra, lines[1:]
	}
	if len(lines) == 0 {
		return nil, errMalformed
	}
	index, ok := strings.CutPrefix(lines[0], "index ")
	n, err := strconv.ParseUint(index, 10, 64)
	if !ok || err != nil || strconv.FormatUint(n, 10) != index {
		return nil, errMalformed
	}
	p.Index, lines = n, lines[1:]
	if len(lines) > MaxHashes {
		return nil, errMalformed
	}
	for _, l := range lines {
		h, err := decodeBase64(l, sha256.Size)
		if err != nil || len(h) != sha256.Size {
			return nil, errMalformed
		}
		p.Hashes = append(p.Hashes, [sha256.Size]byte(h))
	}
	return p, nil
}

// decodeBase64 decodes canonical standard base64 of at most max bytes.
func decodeBase64(s string, max int) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > max+2 {
		return nil, errMalformed
	}
	d, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(d) > max || base64.StdEncoding.EncodeToString(d) != s {
		return nil, errMalformed
	}
	return d, nil
}
