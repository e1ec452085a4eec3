package signoff

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
)

// Refusal reasons of Check: a *RefusedError wraps one of them.
var (
	// ErrTooFew: fewer than K distinct trusted keys stated the verdict.
	ErrTooFew = errors.New("too few sign-off statements")
	// ErrMismatch: a key of a reproduced requirement stated "mismatch"
	// (a rebuilder trusted to confirm is trusted to object).
	ErrMismatch = errors.New("a trusted rebuilder stated a mismatch")
	// ErrConflict: a trusted key stated both "reproduced" and "mismatch".
	ErrConflict = errors.New("a trusted attester stated both reproduced and mismatch")
)

// Reasons an attestation did not count (Ignored.Err wraps one of them, or
// is ErrBadSignature or a parse error).
var (
	// ErrUntrusted: the envelope's key is in no requirement. Its signature
	// is not checked.
	ErrUntrusted = errors.New("attester key not trusted")
	// ErrOtherRepository: the statement is about another repository.
	ErrOtherRepository = errors.New("statement about another repository")
	// ErrOtherSubject: the statement is about another target digest.
	ErrOtherSubject = errors.New("statement about another target digest")
	// ErrNotLogged: the tlog-proof did not verify for the statement's entry
	// under a checkpoint the device accepts.
	ErrNotLogged = errors.New("statement not proven in the log")
	// ErrRepeated: the key's statement with this verdict already counted;
	// its proof is not checked again.
	ErrRepeated = errors.New("attester already counted for this verdict")
)

// Requirement is one k-of-n rule of a device: at least K statements with
// Verdict (Reproduced or Reviewed) from distinct keys of Keys.
type Requirement struct {
	Verdict string
	K       int
	Keys    []*Attester
}

// Validate reports whether r is usable: a verdict a device may require, 1
// <= K <= len(Keys), and no key twice (by key id).
func (r *Requirement) Validate() error {
	if r.Verdict != Reproduced && r.Verdict != Reviewed {
		return fmt.Errorf("sign-off requirement: verdict %q: want %s or %s", r.Verdict, Reproduced, Reviewed)
	}
	if r.K < 1 || r.K > len(r.Keys) {
		return fmt.Errorf("sign-off requirement: %d of %d keys: want 1 <= k <= n", r.K, len(r.Keys))
	}
	seen := map[KeyID]bool{}
	for _, a := range r.Keys {
		if a == nil || seen[a.ID] {
			return errors.New("sign-off requirement: a key listed twice")
		}
		seen[a.ID] = true
	}
	return nil
}

// VerifyProof checks that tlogProof proves the encoded log entry leaf under
// a checkpoint the caller accepts (the log's signature and its witness
// quorum), returning nil only then. Devices plug in the check they use for
// releases; PolicyProof is the plain one.
type VerifyProof func(leaf, tlogProof []byte) error

// PolicyProof returns the VerifyProof of evidence.VerifyInclusion under p.
// It verifies each exact checkpoint note once (evidence.CheckpointMemo:
// statements fetched together share one); make one per check, as it is not
// safe for concurrent use.
func PolicyProof(p *policy.Policy) VerifyProof {
	m := evidence.NewCheckpointMemo(p)
	return func(leaf, tlogProof []byte) error {
		_, err := m.VerifyInclusion(leaf, tlogProof)
		return err
	}
}

// Ignored is an attestation that did not count, and why.
type Ignored struct {
	// Index is the attestation's position in the evidence.
	Index int
	// Attester is the key the envelope names; nil if it did not parse.
	Attester *Attester
	Err      error
}

// Result is what Check found.
type Result struct {
	// Proven lists, per verdict, the trusted attesters (as the
	// requirements name them) whose statement with that verdict about
	// the subject verified and was proven in the log, in evidence order.
	Proven map[string][]*Attester
	// SourceLocal lists, per verdict, the attesters of Proven whose
	// proven statement says they built from a local copy of the source
	// ("source_local"), not the fetched and checked declared source. It
	// is information for the device's owner: such a statement counts as
	// any other. Of a key's several statements with one verdict only the
	// first proven one is looked at (the others are ErrRepeated), so an
	// attester is listed when that one was from a local copy.
	SourceLocal map[string][]*Attester
	// Counted lists, per requirement (same order), the attesters counted
	// toward it.
	Counted [][]*Attester
	// Ignored lists the attestations that did not count.
	Ignored []Ignored
}

// RefusedError is a refusal by Check. It unwraps to its Reason.
type RefusedError struct {
	// Reason is ErrTooFew, ErrMismatch or ErrConflict.
	Reason error
	// Requirement is the unmet requirement (ErrTooFew), else nil.
	Requirement *Requirement
	// Found are the counted attesters (ErrTooFew) or those that objected
	// (ErrMismatch, ErrConflict).
	Found []*Attester
	// Missing are the requirement's keys with no counted statement
	// (ErrTooFew).
	Missing []*Attester
}

func (e *RefusedError) Unwrap() error { return e.Reason }

func (e *RefusedError) Error() string {
	switch e.Reason {
	case ErrTooFew:
		s := fmt.Sprintf("sign-off: %d of %d required %s statements", len(e.Found), e.Requirement.K, e.Requirement.Verdict)
		if len(e.Found) > 0 {
			s += " (" + names(e.Found) + ")"
		}
		if len(e.Missing) > 0 {
			s += "; none from " + names(e.Missing)
		}
		return s
	case ErrMismatch:
		return "sign-off: trusted rebuilder " + names(e.Found) + " stated a mismatch (built other bytes)"
	case ErrConflict:
		return "sign-off: " + names(e.Found) + " stated both reproduced and mismatch"
	}
	return "sign-off: " + e.Reason.Error()
}

func names(as []*Attester) string {
	n := make([]string, len(as))
	for i, a := range as {
		n[i] = a.Name
	}
	return strings.Join(n, ", ")
}

// Check is the device's sign-off rule (docs/spec/signoff.md, "What a device
// requires") for the target with digest subject in repository repo. For
// every attestation whose envelope names a key of some requirement, it
// verifies the envelope's signature, that the statement is about repo and
// exactly subject, and its tlog-proof by verify for the entry rebuilt from
// the envelope; then:
//
//   - a trusted key that stated both reproduced and mismatch refuses
//     (ErrConflict);
//   - a key of any reproduced requirement that stated mismatch refuses
//     (ErrMismatch);
//   - each requirement needs K distinct key ids with its verdict
//     (ErrTooFew).
//
// The Result is always returned (for summaries); the error is a
// *RefusedError (several joined when several requirements are unmet), or
// a plain error when a requirement is invalid. No requirement: nothing is
// checked. Per counted statement Check does one Ed25519 verification and
// one verify call; envelopes of untrusted keys cost no signature check, and
// a key's second statement with the same verdict no proof check.
func Check(reqs []Requirement, repo string, subject [sha256.Size]byte, atts []Attestation, verify VerifyProof) (*Result, error) {
	res := &Result{Proven: map[string][]*Attester{}, SourceLocal: map[string][]*Attester{}, Counted: make([][]*Attester, len(reqs))}
	trusted := map[KeyID]*Attester{}
	for i := range reqs {
		if err := reqs[i].Validate(); err != nil {
			return res, err
		}
		for _, a := range reqs[i].Keys {
			trusted[a.ID] = a
		}
	}
	proven := map[KeyID]map[string]bool{}
	for i, a := range atts {
		att, st, err := checkOne(a, trusted, proven, repo, subject, verify)
		if err != nil {
			res.Ignored = append(res.Ignored, Ignored{Index: i, Attester: att, Err: err})
			continue
		}
		if proven[att.ID] == nil {
			proven[att.ID] = map[string]bool{}
		}
		proven[att.ID][st.Verdict] = true
		res.Proven[st.Verdict] = append(res.Proven[st.Verdict], att)
		if st.SourceLocal {
			res.SourceLocal[st.Verdict] = append(res.SourceLocal[st.Verdict], att)
		}
	}
	return res, decide(reqs, res, proven)
}

// checkOne checks one attestation, cheapest test first, and returns the
// trusted attester and the statement it proved.
func checkOne(a Attestation, trusted map[KeyID]*Attester, proven map[KeyID]map[string]bool, repo string, subject [sha256.Size]byte, verify VerifyProof) (*Attester, *Statement, error) {
	u, err := ParseEnvelope(a.Envelope)
	if err != nil {
		return nil, nil, err
	}
	att := trusted[u.Attester.ID]
	if att == nil {
		return u.Attester, nil, ErrUntrusted
	}
	env, err := u.Verify()
	if err != nil {
		return att, nil, err
	}
	st := env.Statement
	switch {
	case st.Repository != repo:
		return att, nil, ErrOtherRepository
	case st.Subject != subject:
		return att, nil, ErrOtherSubject
	case proven[att.ID][st.Verdict]:
		return att, nil, ErrRepeated
	}
	if err := verify(env.Entry().Format(), a.Proof); err != nil {
		return att, nil, fmt.Errorf("%w: %w", ErrNotLogged, err)
	}
	return att, st, nil
}

// decide applies the refusal rules to what was proven.
func decide(reqs []Requirement, res *Result, proven map[KeyID]map[string]bool) error {
	var conflict, mismatch []*Attester
	objects := map[KeyID]bool{} // keys of reproduced requirements
	for _, r := range reqs {
		if r.Verdict == Reproduced {
			for _, a := range r.Keys {
				objects[a.ID] = true
			}
		}
	}
	for _, a := range res.Proven[Mismatch] {
		if proven[a.ID][Reproduced] {
			conflict = append(conflict, a)
		} else if objects[a.ID] {
			mismatch = append(mismatch, a)
		}
	}
	if len(conflict) > 0 {
		return &RefusedError{Reason: ErrConflict, Found: conflict}
	}
	if len(mismatch) > 0 {
		return &RefusedError{Reason: ErrMismatch, Found: mismatch}
	}
	var errs []error
	for i := range reqs {
		r := &reqs[i]
		var missing []*Attester
		for _, a := range r.Keys {
			if proven[a.ID][r.Verdict] {
				res.Counted[i] = append(res.Counted[i], a)
			} else {
				missing = append(missing, a)
			}
		}
		if len(res.Counted[i]) < r.K {
			errs = append(errs, &RefusedError{Reason: ErrTooFew, Requirement: r, Found: res.Counted[i], Missing: missing})
		}
	}
	return errors.Join(errs...)
}
