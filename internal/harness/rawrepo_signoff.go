package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"

	"github.com/shiplog/shiplog/evidence/signoff"
)

// LogAttestation appends the shiplog/attestation/v1 entry of a signed
// envelope to the repository's log and returns it with a tlog-proof
// cosigned by r.Cosigners, as the ledger's POST /v1/attest answers.
func (r *RawRepo) LogAttestation(envelope []byte) signoff.Attestation {
	e, err := signoff.OpenEnvelope(envelope)
	check(r.t, err)
	i := r.Log.Append(e.Entry().Format())
	return signoff.Attestation{Envelope: envelope, Proof: r.Log.Proof(i, r.Cosigners...)}
}

// WriteSignoff writes the evidence file of subject, holding atts, where the
// repository serves it (metadata/signoff/<sha256 hex>.json), and returns
// its bytes.
func (r *RawRepo) WriteSignoff(subject [sha256.Size]byte, atts ...signoff.Attestation) []byte {
	b, err := (&signoff.Evidence{Subject: subject, Attestations: atts}).Format()
	check(r.t, err)
	dir := filepath.Join(r.Dir, "metadata", "signoff")
	check(r.t, os.MkdirAll(dir, 0o755))
	check(r.t, os.WriteFile(filepath.Join(dir, hex.EncodeToString(subject[:])+".json"), b, 0o644))
	return b
}
