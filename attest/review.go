package attest

import (
	"crypto/sha256"
	"fmt"

	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/signoff"
)

// Objections returns the attesters whose "mismatch" statement about
// subject in repository repo is in the evidence file ev (as the ledger's
// GET /v1/attestations answers it), signed and proven in the log under p.
// Envelopes and proofs that do not verify are not objections (anyone can
// put bytes in a file; only logged statements count); the number of them
// is returned as ignored. A reviewer signs nothing for a release someone
// objected to (docs/reviewer.md).
func Objections(ev []byte, repo string, subject [sha256.Size]byte, p *policy.Policy) (objectors []*signoff.Attester, ignored int, err error) {
	e, err := signoff.ParseEvidence(ev)
	if err != nil {
		return nil, 0, err
	}
	if e.Subject != subject {
		return nil, 0, fmt.Errorf("the ledger answered the attestations of another digest")
	}
	verify := signoff.PolicyProof(p)
	seen := map[signoff.KeyID]bool{}
	for _, a := range e.Attestations {
		env, err := signoff.OpenEnvelope(a.Envelope)
		if err != nil || env.Statement.Repository != repo || env.Statement.Subject != subject {
			ignored++
			continue
		}
		if env.Statement.Verdict != signoff.Mismatch {
			continue
		}
		if err := verify(env.Entry().Format(), a.Proof); err != nil {
			ignored++
			continue
		}
		if !seen[env.Attester.ID] {
			seen[env.Attester.ID] = true
			objectors = append(objectors, env.Attester)
		}
	}
	return objectors, ignored, nil
}
