// Package checkpoint implements C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint)
// in a C2SP signed note (c2sp.org/signed-note), with witness cosignatures of
// C2SP tlog-cosignature (c2sp.org/tlog-cosignature, cosignature/v1).
//
// A checkpoint body is an origin line, the decimal tree size, the base64 root
// hash, and optional extension lines, each ending in a newline:
//
//	example.com/log
//	611
//	XhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=
//
// followed by a blank line and signature lines ("— <name> <base64>"): the
// log's own and any witnesses' cosignatures, whose signature is
// keyID[4] || uint64 timestamp || Ed25519 signature over
// "cosignature/v1\ntime <timestamp>\n" || body.
//
// Open verifies the log's signature over the raw bytes before it parses the
// body, and accepts only the canonical body encoding.
package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Limits. MaxNoteSize bounds a signed checkpoint with its signatures;
// MaxExtensions bounds the extension lines of a body.
const (
	MaxNoteSize   = 64 << 10
	MaxExtensions = 16
	maxOriginLen  = 1024
)

var (
	errMalformed = errors.New("malformed checkpoint")
	errTooLarge  = errors.New("checkpoint too large")
	ErrNoLogSig  = errors.New("checkpoint not signed by the log")
	errBadOrigin = errors.New("checkpoint origin does not match the log")
	errAmbiguous = errors.New("checkpoint verifiers share a name and key ID")
)

// Checkpoint is the body of a checkpoint. A Checkpoint value says nothing
// about who signed it: see Signed.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Hash       [sha256.Size]byte
	Extensions []string // without their newlines
}

// Format returns the body encoding of c.
func (c Checkpoint) Format() []byte {
	var b bytes.Buffer
	b.WriteString(c.Origin + "\n")
	b.WriteString(strconv.FormatUint(c.Size, 10) + "\n")
	b.WriteString(base64.StdEncoding.EncodeToString(c.Hash[:]) + "\n")
	for _, e := range c.Extensions {
		b.WriteString(e + "\n")
	}
	return b.Bytes()
}

// ParseUnverified parses a checkpoint body strictly: a non-empty origin, a
// canonical decimal size, a canonical base64 hash of exactly 32 bytes, at most
// MaxExtensions non-empty extension lines, and a final newline. It checks no
// signature: use Open for anything received from outside.
func ParseUnverified(text []byte) (Checkpoint, error) {
	if len(text) > MaxNoteSize {
		return Checkpoint{}, errTooLarge
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return Checkpoint{}, errMalformed
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 || len(lines) > 3+MaxExtensions {
		return Checkpoint{}, errMalformed
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" || len(c.Origin) > maxOriginLen {
		return Checkpoint{}, errMalformed
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] { // tlog-checkpoint: "no leading zeroes"
		return Checkpoint{}, errMalformed
	}
	c.Size = size
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != sha256.Size || base64.StdEncoding.EncodeToString(h) != lines[2] {
		return Checkpoint{}, errMalformed
	}
	c.Hash = [sha256.Size]byte(h)
	for _, e := range lines[3:] {
		if e == "" { // tlog-checkpoint: extension lines are non-empty
			return Checkpoint{}, errMalformed
		}
		c.Extensions = append(c.Extensions, e)
	}
	return c, nil
}

// Cosignature is a verified cosignature/v1 on a checkpoint.
type Cosignature struct {
	Name    string
	KeyHash uint32
	Time    time.Time
}

// Signed is a checkpoint whose log signature verified. Cosignatures lists the
// verified cosignatures from the witnesses Open was given, one per distinct
// key; it says nothing about whether they satisfy a policy.
type Signed struct {
	Checkpoint
	// Note is the exact signed note as received.
	Note []byte
	// Log is the verifier whose signature was found.
	Log          note.Verifier
	Cosignatures []Cosignature
}

// Open verifies that msg is a signed note carrying a valid signature by log,
// and that its body is a canonical checkpoint whose origin is origin. It
// collects the valid cosignatures of the given witnesses (cosignature/v1
// verifiers); signatures by unknown keys are ignored, and a signature by a
// known key that does not verify fails the whole note (c2sp.org/signed-note).
func Open(msg []byte, origin string, log note.Verifier, witnesses ...note.Verifier) (*Signed, error) {
	if len(msg) > MaxNoteSize {
		return nil, errTooLarge
	}
	if err := checkCanonicalSignatures(msg); err != nil {
		return nil, err
	}
	vs := append([]note.Verifier{log}, witnesses...)
	seen := map[string]bool{}
	for _, v := range vs {
		k := v.Name() + "+" + strconv.FormatUint(uint64(v.KeyHash()), 16)
		if seen[k] {
			return nil, errAmbiguous
		}
		seen[k] = true
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, ErrNoLogSig
		}
		return nil, fmt.Errorf("couldn't verify checkpoint signatures: %w", err)
	}
	s := &Signed{Note: msg, Log: log}
	logSigned := false
	for _, sig := range n.Sigs {
		if sig.Name == log.Name() && sig.Hash == log.KeyHash() {
			logSigned = true
			continue
		}
		t, err := fnote.CoSigV1Timestamp(sig)
		if err != nil {
			return nil, errMalformed
		}
		s.Cosignatures = append(s.Cosignatures, Cosignature{Name: sig.Name, KeyHash: sig.Hash, Time: t})
	}
	if !logSigned {
		return nil, ErrNoLogSig
	}
	// Only now, with the log's signature checked, parse the body.
	if s.Checkpoint, err = ParseUnverified([]byte(n.Text)); err != nil {
		return nil, err
	}
	if s.Origin != origin {
		return nil, errBadOrigin
	}
	return s, nil
}

// Sign returns a signed note of c signed by the log's signer.
func Sign(c Checkpoint, log note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: string(c.Format())}, log)
}

// Cosign returns the signature lines that witness adds to the checkpoint body
// text ("— <name> <base64>\n" for each signer), as a tlog-witness response.
func Cosign(text []byte, witnesses ...note.Signer) ([]byte, error) {
	signed, err := note.Sign(&note.Note{Text: string(text)}, witnesses...)
	if err != nil {
		return nil, err
	}
	return signed[len(text)+1:], nil
}

// AddSignatures returns the signed note msg with extra signature lines
// appended (for example cosignatures returned by witnesses). It does not
// verify them.
func AddSignatures(msg, sigLines []byte) []byte {
	out := make([]byte, 0, len(msg)+len(sigLines))
	return append(append(out, msg...), sigLines...)
}

// checkCanonicalSignatures refuses signature lines whose base64 is not
// canonical. x/mod's note.Open decodes leniently, so two encodings (differing
// in the unused low bits of the last character) would verify as one
// signature; a signed note must have exactly one accepted encoding.
func checkCanonicalSignatures(msg []byte) error {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return errMalformed
	}
	sigs := msg[i+2:]
	if len(sigs) == 0 || sigs[len(sigs)-1] != '\n' {
		return errMalformed
	}
	for _, line := range strings.Split(string(sigs[:len(sigs)-1]), "\n") {
		rest, ok := strings.CutPrefix(line, "\u2014 ")
		j := strings.LastIndexByte(rest, ' ')
		if !ok || j < 0 {
			return errMalformed
		}
		b64 := rest[j+1:]
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || base64.StdEncoding.EncodeToString(raw) != b64 {
			return errMalformed
		}
	}
	return nil
}
