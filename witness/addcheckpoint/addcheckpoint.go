// Package addcheckpoint implements the wire formats of the C2SP tlog-witness
// add-checkpoint call (c2sp.org/tlog-witness): the request body, and the
// text/x.tlog.size body of a 409 Conflict response.
//
// A request body is an old size line, zero to 63 base64 consistency proof
// lines, an empty line, then the signed checkpoint note:
//
//	old 20852014
//	PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
//	jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
//
//	example.com/behind-the-sofa
//	20852163
//	CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//
//	— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+...
//
// A 409 body is the witness's latest cosigned size and a newline ("3\n").
//
// The package is a pure core: it parses and formats bytes and checks no
// signature or proof.
package addcheckpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
)

// Limits. MaxProofLines is the spec's bound on consistency proof lines
// ("The client MUST NOT send more than 63 consistency proof lines").
// MaxRequestSize bounds a whole request body: the old line, 63 proof lines
// (45 bytes each) and a checkpoint note of up to MaxNoteSize.
const (
	MaxProofLines  = 63
	MaxNoteSize    = 12 << 10
	MaxRequestSize = 16 << 10
	// SizeContentType is the Content-Type of a 409 Conflict response body.
	SizeContentType = "text/x.tlog.size"
)

var (
	errMalformed = errors.New("malformed add-checkpoint request")
	errTooLarge  = errors.New("add-checkpoint request too large")
	errBadSize   = errors.New("malformed tree size body")
)

// Request is a parsed add-checkpoint request. Checkpoint is the signed note
// exactly as received; nothing in a Request has been verified.
type Request struct {
	OldSize    uint64
	Proof      [][sha256.Size]byte
	Checkpoint []byte
}

// ParseRequest parses an add-checkpoint request body strictly: "old " and a
// canonical decimal, at most MaxProofLines canonical base64 hashes of exactly
// 32 bytes, an empty line, and a non-empty note of at most MaxNoteSize bytes
// ending in a newline. Bodies larger than MaxRequestSize are refused.
func ParseRequest(body []byte) (*Request, error) {
	if len(body) > MaxRequestSize {
		return nil, errTooLarge
	}
	head, note, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok || len(note) == 0 || len(note) > MaxNoteSize || note[len(note)-1] != '\n' {
		return nil, errMalformed
	}
	lines := bytes.Split(head, []byte("\n"))
	if len(lines) > 1+MaxProofLines {
		return nil, errMalformed
	}
	old, ok := bytes.CutPrefix(lines[0], []byte("old "))
	if !ok {
		return nil, errMalformed
	}
	r := &Request{Checkpoint: note}
	var err error
	if r.OldSize, err = parseDecimal(old); err != nil {
		return nil, errMalformed
	}
	for _, l := range lines[1:] {
		h, err := parseHash(l)
		if err != nil {
			return nil, errMalformed
		}
		r.Proof = append(r.Proof, h)
	}
	return r, nil
}

// Format returns the request body encoding of r. It does not check r's
// limits: ParseRequest does, on the receiving side.
func (r *Request) Format() []byte {
	b := make([]byte, 0, 16+len(r.Proof)*45+1+len(r.Checkpoint))
	b = append(b, "old "...)
	b = strconv.AppendUint(b, r.OldSize, 10)
	b = append(b, '\n')
	for _, h := range r.Proof {
		b = base64.StdEncoding.AppendEncode(b, h[:])
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, r.Checkpoint...)
}

// FormatSize returns the text/x.tlog.size body for size: the decimal size
// and a newline.
func FormatSize(size uint64) []byte {
	return append(strconv.AppendUint(nil, size, 10), '\n')
}

// ParseSize parses a text/x.tlog.size body strictly: a canonical decimal
// followed by exactly one newline, at most 21 bytes in all.
func ParseSize(b []byte) (uint64, error) {
	if len(b) < 2 || len(b) > 21 || b[len(b)-1] != '\n' {
		return 0, errBadSize
	}
	n, err := parseDecimal(b[:len(b)-1])
	if err != nil {
		return 0, errBadSize
	}
	return n, nil
}

// parseDecimal parses an ASCII decimal with no sign and no leading zeroes
// ("unless the size is zero, in which case the encoding MUST be 0").
func parseDecimal(b []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != string(b) {
		return 0, errMalformed
	}
	return n, nil
}

// parseHash parses one canonical base64 line of exactly 32 bytes.
func parseHash(l []byte) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	if len(l) != base64.StdEncoding.EncodedLen(sha256.Size) {
		return h, errMalformed
	}
	var buf [sha256.Size + 1]byte
	n, err := base64.StdEncoding.Decode(buf[:], l)
	if err != nil || n != sha256.Size {
		return h, errMalformed
	}
	copy(h[:], buf[:n])
	if !bytes.Equal(base64.StdEncoding.AppendEncode(nil, h[:]), l) { // canonical encoding only
		return h, errMalformed
	}
	return h, nil
}
