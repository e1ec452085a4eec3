// Package tufmeta decodes a TUF metadata file once and checks its
// signatures over the canonical bytes of its signed part, with the verdicts
// of go-tuf v2's metadata package (TUF 1.0 §5.3–5.6: "signed" is signed in
// canonical JSON, a role's threshold is counted by distinct keys).
//
// go-tuf decodes each file several times over (the whole file generically to
// check its type, then each nested object twice, for unrecognised fields)
// and, in VerifyDelegate, re-encodes the decoded value and canonicalises it
// through another generic decode, once per key of the role. Here a file in
// the regular form go-tuf itself writes (pretty or compact: objects with
// sorted keys and the fields go-tuf writes for the values they hold, strings
// of printable ASCII escaped only as encoding/json escapes '<', '>' and '&',
// integers, lowercase hex, times as encoding/json writes them; no unknown
// fields) is decoded in one pass into the same value go-tuf's decoder
// returns, and its canonical signed bytes are its signed part with the
// whitespace between tokens removed and those escapes replaced. Ed25519
// signatures over them are checked directly. Any
// other file, key type or failing check goes to go-tuf's own decoder and
// VerifyDelegate, so every verdict and every error is go-tuf's: the fast
// path only ever answers "decoded" or "threshold met", and FuzzParse holds
// it to go-tuf's answer on the same bytes.
//
// The package is pure: no I/O, no clock, no goroutines.
package tufmeta

import (
	"crypto/ed25519"
	"encoding/hex"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// File is a decoded metadata file of role type T.
type File[T metadata.Roles] struct {
	// MD is the decoded file, as go-tuf's FromBytes returns it. Its
	// signatures are not checked by Parse.
	MD *metadata.Metadata[T]
	// signed is the canonical JSON of MD.Signed (the bytes TUF signs), or
	// nil when go-tuf decoded the file.
	signed []byte
}

// Parse decodes data as metadata of type T: in one pass when data is in
// go-tuf's regular form (see the package comment), otherwise with go-tuf's
// FromBytes, whose error it returns unchanged. The result is the value
// FromBytes would return. Parse does not bound the size of data: callers
// cap it before reading (the update loop caps it per role).
func Parse[T metadata.Roles](data []byte) (*File[T], error) {
	if md, signed, ok := decode[T](data); ok {
		return &File[T]{MD: md, signed: signed}, nil
	}
	md, err := new(metadata.Metadata[T]).FromBytes(data)
	if err != nil {
		return nil, err
	}
	return &File[T]{MD: md}, nil
}

// VerifyDelegate is go-tuf's delegator.VerifyDelegate(role, f.MD): nil when
// the signatures of f by distinct keys delegator gives role meet the role's
// threshold. When f was decoded in one pass and the role's keys are all
// Ed25519, the signatures are checked once each over f's canonical signed
// bytes; when that does not meet the threshold (or for any other key type,
// or a file go-tuf decoded) go-tuf's VerifyDelegate gives the verdict and
// its error.
func VerifyDelegate[D, T metadata.Roles](delegator *metadata.Metadata[D], role string, f *File[T]) error {
	if f.signed != nil && thresholdMet(delegator, role, f) {
		return nil
	}
	return delegator.VerifyDelegate(role, f.MD)
}

// thresholdMet is VerifyDelegate's success path for Ed25519 keys: the role
// is found as go-tuf finds it, each of its key ids names an Ed25519 key of
// 32 bytes in hex (else go-tuf decides), and signatures by at least
// threshold distinct keys verify over f's canonical signed bytes.
func thresholdMet[D, T metadata.Roles](delegator *metadata.Metadata[D], role string, f *File[T]) bool {
	keys, ids, threshold, ok := delegation(delegator, role)
	if !ok || len(ids) == 0 || threshold < 1 {
		return false
	}
	pubs := make([]ed25519.PublicKey, 0, len(ids))
	for _, id := range ids {
		k := keys[id]
		if k == nil || k.Type != metadata.KeyTypeEd25519 || len(k.Value.PublicKey) != 2*ed25519.PublicKeySize {
			return false
		}
		pub, err := hex.DecodeString(k.Value.PublicKey)
		if err != nil {
			return false
		}
		pubs = append(pubs, pub)
	}
	verified := map[string]bool{} // by public key: go-tuf counts distinct keys, not key ids
	for i, id := range ids {
		var sig []byte
		for _, s := range f.MD.Signatures {
			if s.KeyID == id {
				sig = s.Signature
			}
		}
		if !verified[string(pubs[i])] && ed25519.Verify(pubs[i], f.signed, sig) {
			verified[string(pubs[i])] = true
		}
	}
	return len(verified) >= threshold
}

// delegation finds role's keys, key ids and threshold in delegator as
// go-tuf's VerifyDelegate does.
func delegation[D metadata.Roles](delegator *metadata.Metadata[D], role string) (map[string]*metadata.Key, []string, int, bool) {
	switch d := any(delegator).(type) {
	case *metadata.Metadata[metadata.RootType]:
		r, ok := d.Signed.Roles[role]
		if !ok || r == nil {
			return nil, nil, 0, false
		}
		return d.Signed.Keys, r.KeyIDs, r.Threshold, true
	case *metadata.Metadata[metadata.TargetsType]:
		del := d.Signed.Delegations
		if del == nil {
			return nil, nil, 0, false
		}
		if del.Roles != nil {
			for _, r := range del.Roles {
				if r.Name == role {
					return del.Keys, r.KeyIDs, r.Threshold, true
				}
			}
			return nil, nil, 0, false
		}
		if s := del.SuccinctRoles; s != nil {
			return del.Keys, s.KeyIDs, s.Threshold, true
		}
	}
	return nil, nil, 0, false
}
