// Package notekey generates and parses the keys of C2SP signed-note
// (c2sp.org/signed-note) used by shiplog: Ed25519 note keys (type 0x01) for
// logs, and timestamped Ed25519 cosignature/v1 keys (type 0x04,
// c2sp.org/tlog-cosignature) for witnesses.
//
// A verifier key (vkey) is "<name>+<hex key ID>+<base64(type || public key)>";
// a signer key (skey) is "PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>".
// The key ID is the first four bytes of SHA-256(name || 0x0A || type || public
// key). For example:
//
//	PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW
//
// Witnesses are accepted as either an Ed25519 note vkey (0x01) or a
// cosignature vkey (0x04); both are always matched by the cosignature (0x04)
// key ID, since that is the ID a cosignature/v1 signature carries.
package notekey

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Key types of c2sp.org/signed-note.
const (
	TypeEd25519        byte = 0x01
	TypeECDSA          byte = 0x02
	TypeCosignatureV1  byte = 0x04
	maxKeyStringLength      = 1024
)

var errBadKey = errors.New("malformed verifier key")

// GenerateLog returns a new Ed25519 note signer key and its verifier key for a
// log named name (by convention the log's origin).
func GenerateLog(rand io.Reader, name string) (skey, vkey string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("invalid key name %q: want non-empty UTF-8 without spaces or '+'", name)
	}
	return note.GenerateKey(rand, name)
}

// GenerateWitness returns a new witness signer key (Ed25519, usable for
// cosignature/v1) with its verifier key in both published forms: the Ed25519
// note vkey (0x01) and the cosignature/v1 vkey (0x04).
func GenerateWitness(rand io.Reader, name string) (skey, vkey, cosignatureVKey string, err error) {
	if skey, vkey, err = GenerateLog(rand, name); err != nil {
		return "", "", "", err
	}
	cosignatureVKey, err = fnote.VKeyToCosignatureV1(vkey)
	return skey, vkey, cosignatureVKey, err
}

// CosignatureVKey returns the cosignature/v1 (0x04) form of a witness vkey
// given in either the 0x01 or the 0x04 form.
func CosignatureVKey(vkey string) (string, error) {
	name, typ, key, err := parseVKey(vkey)
	if err != nil {
		return "", err
	}
	if len(key) != ed25519.PublicKeySize || (typ != TypeEd25519 && typ != TypeCosignatureV1) {
		return "", fmt.Errorf("witness key %q: want an Ed25519 (0x01) or cosignature/v1 (0x04) key", name)
	}
	pub := append([]byte{TypeCosignatureV1}, key...)
	return fmt.Sprintf("%s+%08x+%s", name, KeyID(name, pub), base64.StdEncoding.EncodeToString(pub)), nil
}

// ParseLogVerifier parses the vkey of a log: Ed25519 (0x01), or ECDSA P-256
// (0x02, as some existing logs use; its key ID is the first four bytes of the
// SHA-256 of the DER public key). Other types are refused.
func ParseLogVerifier(vkey string) (note.Verifier, error) {
	_, typ, key, err := parseVKey(vkey)
	if err != nil {
		return nil, err
	}
	switch typ {
	case TypeEd25519:
		if len(key) != ed25519.PublicKeySize {
			return nil, errBadKey
		}
		if err := checkKeyID(vkey); err != nil {
			return nil, err
		}
		return note.NewVerifier(vkey)
	case TypeECDSA:
		v, err := fnote.NewECDSAVerifier(vkey)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse ECDSA log key: %w", err)
		}
		return v, nil
	default:
		return nil, fmt.Errorf("unsupported log key type 0x%02x: want Ed25519 (0x01) or ECDSA (0x02)", typ)
	}
}

// ParseWitnessVerifier parses a witness vkey in the 0x01 or the 0x04 form and
// returns a verifier of cosignature/v1 signatures, which has the 0x04 key ID.
// The key ID written in vkey must match the key.
func ParseWitnessVerifier(vkey string) (note.Verifier, error) {
	_, typ, key, err := parseVKey(vkey)
	if err != nil {
		return nil, err
	}
	if (typ != TypeEd25519 && typ != TypeCosignatureV1) || len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("unsupported witness key type 0x%02x: want Ed25519 (0x01) or cosignature/v1 (0x04)", typ)
	}
	if err := checkKeyID(vkey); err != nil {
		return nil, err
	}
	return fnote.NewVerifierForCosignatureV1(vkey)
}

// NewLogSigner returns a note signer for an Ed25519 (0x01) log skey.
func NewLogSigner(skey string) (note.Signer, error) {
	if len(skey) > maxKeyStringLength {
		return nil, errors.New("malformed signer key")
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse log signer key: %w", err)
	}
	return s, nil
}

// NewWitnessSigner returns a signer of timestamped cosignature/v1 signatures
// for an Ed25519 witness skey (0x01 or 0x04 form). Its key ID is the 0x04 one.
// The timestamp is the current time when Sign is called.
func NewWitnessSigner(skey string) (note.Signer, error) {
	if len(skey) > maxKeyStringLength {
		return nil, errors.New("malformed signer key")
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse witness signer key: %w", err)
	}
	return s, nil
}

// VerifierKey returns the 0x01 vkey matching an Ed25519 skey.
func VerifierKey(skey string) (string, error) {
	if len(skey) > maxKeyStringLength {
		return "", errors.New("malformed signer key")
	}
	s, _, err := fnote.NewEd25519SignerVerifier(skey)
	if err != nil {
		return "", fmt.Errorf("couldn't parse signer key: %w", err)
	}
	parts := strings.SplitN(skey, "+", 5)
	seed, _ := base64.StdEncoding.DecodeString(parts[4]) // checked by NewEd25519SignerVerifier
	pub := ed25519.NewKeyFromSeed(seed[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(s.Name(), pub)
}

// KeyID returns the key ID of c2sp.org/signed-note: the first four bytes of
// SHA-256(name || 0x0A || typedKey), big-endian.
func KeyID(name string, typedKey []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n'})
	h.Write(typedKey)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// parseVKey splits a vkey into its name, type and key bytes.
func parseVKey(vkey string) (name string, typ byte, key []byte, err error) {
	if len(vkey) > maxKeyStringLength {
		return "", 0, nil, errBadKey
	}
	name, rest, ok1 := strings.Cut(vkey, "+")
	id, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validName(name) || len(id) != 8 {
		return "", 0, nil, errBadKey
	}
	if _, err := strconv.ParseUint(id, 16, 32); err != nil || strings.ToLower(id) != id {
		return "", 0, nil, errBadKey
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) < 2 || base64.StdEncoding.EncodeToString(raw) != b64 {
		return "", 0, nil, errBadKey
	}
	return name, raw[0], raw[1:], nil
}

// checkKeyID checks that the key ID in a typed Ed25519 vkey matches its key.
func checkKeyID(vkey string) error {
	name, rest, _ := strings.Cut(vkey, "+")
	id, b64, _ := strings.Cut(rest, "+")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	want, _ := strconv.ParseUint(id, 16, 32)
	if KeyID(name, raw) != uint32(want) {
		return errors.New("verifier key ID does not match its key")
	}
	return nil
}

// validName reports whether name is a valid key name: non-empty UTF-8 with
// no Unicode spaces and no '+'.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}
