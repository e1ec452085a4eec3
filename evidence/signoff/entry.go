package signoff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/shiplog/shiplog/evidence/entry"
)

// EntryHeader is the first line of an attestation entry.
const EntryHeader = entry.AttestationHeader

var errMalformedEntry = errors.New("malformed attestation log entry")

// Entry is the shiplog/attestation/v1 log entry of one accepted envelope
// (docs/spec/signoff.md, "The log entry"). A device rebuilds it from its
// repository id, the target digest it decides about and an envelope it
// verified (Envelope.Entry), so evidence carries no entry text.
type Entry struct {
	// Repo is the repository id (the entry alphabet, 1-255 bytes).
	Repo string
	// Subject is the target's SHA-256.
	Subject [sha256.Size]byte
	// Verdict is Reproduced, Mismatch or Reviewed.
	Verdict string
	// Key is the attester's key id.
	Key KeyID
	// SHA256 and Length describe the exact envelope bytes; Length is 1 to
	// MaxEnvelopeSize.
	SHA256 [sha256.Size]byte
	Length uint64
}

// Validate reports whether e can be encoded.
func (e Entry) Validate() error {
	if !validName(e.Repo) {
		return errors.New("attestation entry: invalid repository id")
	}
	if e.Verdict != Reproduced && e.Verdict != Mismatch && e.Verdict != Reviewed {
		return errors.New("attestation entry: unknown verdict")
	}
	if e.Length < 1 || e.Length > MaxEnvelopeSize {
		return errors.New("attestation entry: envelope length out of range")
	}
	return nil
}

// Format returns the canonical encoding of e. It panics if e does not
// validate; call Validate first on values not made by Envelope.Entry or
// ParseEntry.
func (e Entry) Format() []byte {
	if err := e.Validate(); err != nil {
		panic("signoff: Format of invalid entry: " + err.Error())
	}
	b := make([]byte, 0, 320+len(e.Repo))
	b = append(b, EntryHeader+"\nrepo "+e.Repo+"\nsubject "...)
	b = hex.AppendEncode(b, e.Subject[:])
	b = append(b, "\nverdict "+e.Verdict+"\nkey "...)
	b = hex.AppendEncode(b, e.Key[:])
	b = append(b, "\nsha256 "...)
	b = hex.AppendEncode(b, e.SHA256[:])
	b = append(b, "\nlength "...)
	b = strconv.AppendUint(b, e.Length, 10)
	return append(b, '\n')
}

// ParseEntry parses the canonical encoding of an attestation entry: seven
// lines in order, lowercase hex, canonical decimal, a final newline, at
// most entry.MaxSize bytes. It re-encodes what it parsed and compares.
func ParseEntry(b []byte) (Entry, error) {
	if len(b) > entry.MaxSize || len(b) == 0 || b[len(b)-1] != '\n' {
		return Entry{}, errMalformedEntry
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if len(lines) != 7 || lines[0] != EntryHeader {
		return Entry{}, errMalformedEntry
	}
	var v [6]string
	for i, key := range []string{"repo ", "subject ", "verdict ", "key ", "sha256 ", "length "} {
		var ok bool
		if v[i], ok = strings.CutPrefix(lines[i+1], key); !ok {
			return Entry{}, errMalformedEntry
		}
	}
	e := Entry{Repo: v[0], Verdict: v[2]}
	var err1, err2, err3 error
	e.Subject, err1 = sha256Hex(v[1])
	var key [sha256.Size]byte
	key, err2 = sha256Hex(v[3])
	e.Key = KeyID(key)
	e.SHA256, err3 = sha256Hex(v[4])
	if err1 != nil || err2 != nil || err3 != nil {
		return Entry{}, errMalformedEntry
	}
	n, err := strconv.ParseUint(v[5], 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != v[5] {
		return Entry{}, errMalformedEntry
	}
	e.Length = n
	if e.Validate() != nil || !bytes.Equal(e.Format(), b) {
		return Entry{}, errMalformedEntry
	}
	return e, nil
}

// LeafHash returns the RFC 6962 leaf hash of e's encoding.
func (e Entry) LeafHash() [sha256.Size]byte { return entry.LeafHash(e.Format()) }
