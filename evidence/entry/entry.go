// Package entry implements the shiplog log entry, shiplog/release/v1: a short,
// canonical text record that commits one version of one TUF role of one
// repository to the ledger. It is specified in docs/spec/entry.md.
//
// An entry is six lines, each ending in a newline (U+000A):
//
//	shiplog/release/v1
//	repo example.com/firmware
//	role targets
//	version 7
//	sha256 0d6b6e2d0b0f5d3f8c6c9b9a1e5c0e6b2f6f4a3d2c1b0a99887766554433221f
//	length 1234
//
// The sha256 and length lines describe the exact bytes of the metadata file,
// so a device can rebuild the entry from its configured repository id, the role
// and the bytes it verified. The leaf hash is the RFC 6962 leaf hash of the
// entry bytes: SHA-256(0x00 || entry).
//
// Parse accepts only the canonical encoding: re-encoding a parsed entry gives
// back the same bytes.
package entry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Header is the first line of every release entry, without its newline.
const Header = "shiplog/release/v1"

// AttestationHeader is the first line of a sign-off attestation entry
// (docs/spec/signoff.md), implemented by evidence/signoff. Ledger readers
// tell entry kinds apart with Kind.
const AttestationHeader = "shiplog/attestation/v1"

// maxHeaderLength bounds the header Kind returns.
const maxHeaderLength = 64

// Kind returns the header (first line, without its newline) of an encoded
// log entry: Header for a release, AttestationHeader for a sign-off
// attestation, or any other first line of at most 64 bytes for a kind this
// version does not know. It returns "" when b has no such line. It does not
// parse the rest of b: a reader that meets a kind it does not know reports
// or skips the entry, and never reads it as a release.
func Kind(b []byte) string {
	i := bytes.IndexByte(b[:min(len(b), maxHeaderLength+1)], '\n')
	if i <= 0 {
		return ""
	}
	return string(b[:i])
}

// Limits of the format. MaxSize is the largest encoding of an entry.
const (
	MaxIDLength   = 255
	MaxRoleLength = 255
	MaxVersion    = 1<<63 - 1
	MaxSize       = 1024
)

// Entry is one logged version of one TUF role of one repository.
type Entry struct {
	// Repo is the repository id: 1 to MaxIDLength bytes of printable ASCII,
	// no spaces (U+0021 to U+007E).
	Repo string
	// Role is the TUF role name, with the same alphabet and MaxRoleLength.
	Role string
	// Version is the role's TUF version, 1 to MaxVersion.
	Version uint64
	// SHA256 is the SHA-256 of the exact metadata file bytes.
	SHA256 [sha256.Size]byte
	// Length is the byte length of the metadata file, at least 1.
	Length uint64
}

var (
	errMalformed = errors.New("malformed log entry")
	errTooLarge  = errors.New("log entry too large")
)

// New returns the entry for metadata, the exact bytes of version of role in
// repository repo. It does not parse metadata.
func New(repo, role string, version uint64, metadata []byte) (Entry, error) {
	e := Entry{Repo: repo, Role: role, Version: version, SHA256: sha256.Sum256(metadata), Length: uint64(len(metadata))}
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// Validate reports whether e can be encoded: names within their alphabet and
// length, version and length in range.
func (e Entry) Validate() error {
	if !validName(e.Repo, MaxIDLength) {
		return fmt.Errorf("invalid repository id %q: want 1-%d printable ASCII characters without spaces", e.Repo, MaxIDLength)
	}
	if !validName(e.Role, MaxRoleLength) {
		return fmt.Errorf("invalid role name %q: want 1-%d printable ASCII characters without spaces", e.Role, MaxRoleLength)
	}
	if e.Version < 1 || e.Version > MaxVersion {
		return fmt.Errorf("invalid version %d: want 1-%d", e.Version, uint64(MaxVersion))
	}
	if e.Length < 1 {
		return errors.New("invalid length 0: metadata is never empty")
	}
	return nil
}

func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Format returns the canonical encoding of e. It panics if e does not
// validate; call Validate first on values not made by New or Parse.
func (e Entry) Format() []byte {
	if err := e.Validate(); err != nil {
		panic("entry: Format of invalid entry: " + err.Error())
	}
	b := make([]byte, 0, 160+len(e.Repo)+len(e.Role))
	b = append(b, Header+"\n"...)
	b = append(b, "repo "+e.Repo+"\n"...)
	b = append(b, "role "+e.Role+"\n"...)
	b = append(b, "version "...)
	b = strconv.AppendUint(b, e.Version, 10)
	b = append(b, "\nsha256 "...)
	b = hex.AppendEncode(b, e.SHA256[:])
	b = append(b, "\nlength "...)
	b = strconv.AppendUint(b, e.Length, 10)
	return append(b, '\n')
}

// Parse parses the canonical encoding of an entry. It rejects anything that
// Format would not produce: other line order, extra spaces or lines, leading
// zeros, uppercase hex, a missing final newline, or more than MaxSize bytes.
func Parse(b []byte) (Entry, error) {
	if len(b) > MaxSize {
		return Entry{}, errTooLarge
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return Entry{}, errMalformed
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if len(lines) != 6 || lines[0] != Header {
		return Entry{}, errMalformed
	}
	var e Entry
	var ok1, ok2, ok3, ok4, ok5 bool
	e.Repo, ok1 = strings.CutPrefix(lines[1], "repo ")
	e.Role, ok2 = strings.CutPrefix(lines[2], "role ")
	version, ok3 := strings.CutPrefix(lines[3], "version ")
	sum, ok4 := strings.CutPrefix(lines[4], "sha256 ")
	length, ok5 := strings.CutPrefix(lines[5], "length ")
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return Entry{}, errMalformed
	}
	var err error
	if e.Version, err = parseDecimal(version); err != nil {
		return Entry{}, err
	}
	if e.Length, err = parseDecimal(length); err != nil {
		return Entry{}, err
	}
	if len(sum) != 2*sha256.Size || strings.ToLower(sum) != sum {
		return Entry{}, errMalformed
	}
	if _, err := hex.Decode(e.SHA256[:], []byte(sum)); err != nil {
		return Entry{}, errMalformed
	}
	if err := e.Validate(); err != nil {
		return Entry{}, errMalformed
	}
	// Belt and braces: the canonical form is the only accepted form.
	if !bytes.Equal(e.Format(), b) {
		return Entry{}, errMalformed
	}
	return e, nil
}

// parseDecimal parses a canonical decimal: no sign, no leading zeros.
func parseDecimal(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' || s[0] == '-' {
		return 0, errMalformed
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errMalformed
	}
	return n, nil
}

// LeafHash returns the RFC 6962 leaf hash of the entry's encoding, the value
// the log's Merkle tree commits to.
func (e Entry) LeafHash() [sha256.Size]byte {
	return LeafHash(e.Format())
}

// LeafHash returns the RFC 6962 leaf hash, SHA-256(0x00 || b), of an encoded
// entry b. It does not parse b.
func LeafHash(b []byte) [sha256.Size]byte {
	return [sha256.Size]byte(rfc6962.DefaultHasher.HashLeaf(b))
}

// Matches reports whether e commits to metadata as version of role in repo.
func (e Entry) Matches(repo, role string, metadata []byte) bool {
	return e.Repo == repo && e.Role == role && e.Length == uint64(len(metadata)) && e.SHA256 == sha256.Sum256(metadata)
}
