// Package keyref opens signing keys that never leave their custody: a key
// held in a PKCS #11 token (HSM, YubiHSM, smart card, cloud HSM), named by a
// pkcs11: URI (RFC 7512), or a cloud KMS key named by an awskms://,
// gcpkms://, azurekms:// or hashivault:// URI (through sigstore's KMS
// signers, github.com/sigstore/sigstore/pkg/signature/kms). Each opens as a
// crypto.Signer over Ed25519 or ECDSA P-256, the two key types TUF
// metadata and C2SP signed notes share.
//
// A pkcs11: URI names the library, the token, the key and where its PIN is:
//
//	pkcs11:token=shiplog;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/shiplog/pin
//
// Ed25519 keys use the PKCS #11 3.0 mechanisms CKM_EC_EDWARDS_KEY_PAIR_GEN
// and CKM_EDDSA (SoftHSM 2.6 and most current HSMs); a token without them
// holds ECDSA P-256 keys (CKM_ECDSA). KMS keys are ECDSA P-256 (the one
// signing key type every listed provider offers); their credentials come
// from each provider's usual environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS,
// AZURE_*, VAULT_ADDR/VAULT_TOKEN).
//
// Every signature is verified with the public key before it is returned, so
// a faulty token or service cannot make shiplog publish a bad signature.
//
// Note key files (the ledger's log.skey, a witness's witness.skey) may hold,
// instead of a private key, a reference line naming the key and its note
// name:
//
//	KEYREF+<name>+<reference>
//
// The package is linked by the shiplog command only: the device verifies and
// never signs.
package keyref

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shiplog/shiplog/evidence/notekey"
	"golang.org/x/mod/sumdb/note"
)

// KMSSchemes are the cloud KMS URI schemes Open accepts.
var KMSSchemes = []string{"awskms://", "gcpkms://", "azurekms://", "hashivault://"}

// NoteKeyRefPrefix starts a note key file that names a key held elsewhere.
const NoteKeyRefPrefix = "KEYREF+"

// IsReference reports whether s is a key reference (a pkcs11: or KMS URI)
// rather than a file name.
func IsReference(s string) bool {
	if strings.HasPrefix(s, "pkcs11:") {
		return true
	}
	for _, p := range KMSSchemes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Open returns the signer that ref names. It is safe for concurrent use;
// each Sign is one round trip to the token or service. ctx bounds opening
// and, for KMS keys, every later signature.
func Open(ctx context.Context, ref string) (crypto.Signer, error) {
	if len(ref) > MaxURI {
		return nil, errors.New("key reference too long")
	}
	var s crypto.Signer
	var err error
	switch {
	case strings.HasPrefix(ref, "pkcs11:"):
		s, err = openPKCS11(ref)
	case IsReference(ref):
		s, err = openKMS(ctx, ref)
	default:
		return nil, fmt.Errorf("%q is not a key reference: want pkcs11: or one of %s", Redacted(ref), strings.Join(KMSSchemes, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't open key %s: %w", Redacted(ref), err)
	}
	if err := checkPublic(s.Public()); err != nil {
		return nil, fmt.Errorf("key %s: %w", Redacted(ref), err)
	}
	return verifying{s}, nil
}

func checkPublic(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return nil
		}
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return nil
		}
	}
	return errors.New("unsupported key type: want Ed25519 or ECDSA P-256")
}

// verifying checks every signature with the public key before returning it.
type verifying struct{ crypto.Signer }

func (v verifying) Sign(r io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := v.Signer.Sign(r, msg, opts)
	if err != nil {
		return nil, err
	}
	ok := false
	switch pub := v.Public().(type) {
	case ed25519.PublicKey:
		ok = opts.HashFunc() == 0 && ed25519.Verify(pub, msg, sig)
	case *ecdsa.PublicKey:
		ok = opts.HashFunc() == crypto.SHA256 && len(msg) == sha256.Size && ecdsa.VerifyASN1(pub, msg, sig)
	}
	if !ok {
		return nil, errors.New("the key's signature does not verify with its public key")
	}
	return sig, nil
}

// FormatNoteKeyRef returns the content of a note key file naming ref, for a
// note key named name.
func FormatNoteKeyRef(name, ref string) string { return NoteKeyRefPrefix + name + "+" + ref + "\n" }

// parseNoteKeyRef splits a KEYREF line; ok is false for any other content.
func parseNoteKeyRef(content string) (name, ref string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(content), NoteKeyRefPrefix)
	if !ok {
		return "", "", false
	}
	name, ref, ok = strings.Cut(rest, "+")
	return name, ref, ok && IsReference(ref)
}

// IsNoteKeyRef reports whether a note key file's content is a KEYREF line.
func IsNoteKeyRef(content string) bool {
	return strings.HasPrefix(strings.TrimSpace(content), NoteKeyRefPrefix)
}

// OpenLogSigner returns the note signer and verifier key of a log key
// file's content: an Ed25519 skey, or a KEYREF line naming an Ed25519 or
// ECDSA P-256 key (signature types 0x01 and 0x02 of c2sp.org/signed-note).
func OpenLogSigner(ctx context.Context, content string) (note.Signer, string, error) {
	content = strings.TrimSpace(content)
	if !IsNoteKeyRef(content) {
		s, err := notekey.NewLogSigner(content)
		if err != nil {
			return nil, "", err
		}
		vkey, err := notekey.VerifierKey(content)
		return s, vkey, err
	}
	name, ref, ok := parseNoteKeyRef(content)
	if !ok {
		return nil, "", errors.New("malformed key reference line: want KEYREF+<name>+<pkcs11: or KMS URI>")
	}
	k, err := Open(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	return notekey.NewLogSignerFrom(name, k)
}

// OpenWitnessSigner returns the cosignature/v1 signer and verifier keys
// (0x01 and 0x04 forms) of a witness key file's content: an Ed25519 skey or
// a KEYREF line naming an Ed25519 key. An ECDSA key is refused
// (notekey.ErrCosignatureNeedsEd25519): c2sp.org/tlog-cosignature defines
// no ECDSA cosignature.
func OpenWitnessSigner(ctx context.Context, content string) (s note.Signer, vkey, cosignatureVKey string, err error) {
	content = strings.TrimSpace(content)
	if !IsNoteKeyRef(content) {
		if s, err = notekey.NewWitnessSigner(content); err != nil {
			return nil, "", "", err
		}
		if vkey, err = notekey.VerifierKey(content); err != nil {
			return nil, "", "", err
		}
		cosignatureVKey, err = notekey.CosignatureVKey(vkey)
		return s, vkey, cosignatureVKey, err
	}
	name, ref, ok := parseNoteKeyRef(content)
	if !ok {
		return nil, "", "", errors.New("malformed key reference line: want KEYREF+<name>+<pkcs11: or KMS URI>")
	}
	k, err := Open(ctx, ref)
	if err != nil {
		return nil, "", "", err
	}
	return notekey.NewWitnessSignerFrom(name, k)
}

// randReader is where key IDs of generated token keys come from.
var randReader io.Reader = rand.Reader
