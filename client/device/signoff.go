package device

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/client/ledger"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/signoff"
)

// ErrMismatch means a rebuilder the device trusts stated, in the log, that
// it built other bytes from the target's declared source (or stated both
// verdicts): the target is refused, whatever else is present
// (docs/spec/signoff.md).
var ErrMismatch = errors.New("sign-off: a trusted rebuilder stated a mismatch")

// evidenceSource returns the sign-off evidence one source holds for a
// target digest (docs/spec/signoff.md, "The evidence file"), parsed but
// unverified; nil when it has none.
type evidenceSource struct {
	name  string
	fetch func(ctx context.Context, subject [sha256.Size]byte) (*signoff.Evidence, error)
}

// parsedEvidence parses an evidence file fetched for subject.
func parsedEvidence(b []byte, subject [sha256.Size]byte) (*signoff.Evidence, error) {
	if b == nil {
		return nil, nil
	}
	ev, err := signoff.ParseEvidence(b)
	if err != nil {
		return nil, err
	}
	if ev.Subject != subject {
		return nil, errors.New("evidence file about another digest")
	}
	return ev, nil
}

// onlineSources are where an online device looks for evidence: the
// repository's metadata/signoff/<hex>.json and, with a ledger configured,
// the ledger's attestations query for the trusted keys.
func (d *Device) onlineSources(remote update.Remote) []evidenceSource {
	out := []evidenceSource{{name: "repository", fetch: func(ctx context.Context, subject [sha256.Size]byte) (*signoff.Evidence, error) {
		b, err := remote.Metadata(ctx, "signoff/"+hex.EncodeToString(subject[:])+".json", ledger.MaxEvidence)
		if errors.Is(err, update.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return parsedEvidence(b, subject)
	}}}
	if d.cfg.Ledger != "" {
		lc := d.ledgerClient()
		ids := d.trustedKeyIDs()
		out = append(out, evidenceSource{name: "ledger", fetch: func(ctx context.Context, subject [sha256.Size]byte) (*signoff.Evidence, error) {
			b, err := lc.Attestations(ctx, d.cfg.Repository, hex.EncodeToString(subject[:]), ids)
			if err != nil {
				return nil, err
			}
			return parsedEvidence(b, subject)
		}})
	}
	return out
}

// bundleSources is where a device installing bundle b looks for evidence:
// the bundle only (a bundle is checked offline, on what it carries).
func bundleSources(b *bundle.Bundle) []evidenceSource {
	return []evidenceSource{{name: "bundle", fetch: func(_ context.Context, subject [sha256.Size]byte) (*signoff.Evidence, error) {
		return b.Signoff(subject), nil
	}}}
}

// requirements returns the configured requirements in
// evidence/signoff's terms (validated when the config was loaded).
func (d *Device) requirements() ([]signoff.Requirement, error) {
	var out []signoff.Requirement
	for i := range d.cfg.Require {
		r, err := d.cfg.Require[i].parse()
		if err != nil {
			return nil, fmt.Errorf("config: require %s: %w", d.cfg.Require[i].Verdict, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// trustedKeyIDs are the distinct key ids of every requirement (at most 32
// go to the ledger; more are left to the repository's evidence).
func (d *Device) trustedKeyIDs() []string {
	seen := map[string]bool{}
	var ids []string
	for _, r := range d.cfg.Require {
		for _, k := range r.Keys {
			if a, err := signoff.ParseAttester(k); err == nil && !seen[a.ID.String()] && len(ids) < 32 {
				seen[a.ID.String()] = true
				ids = append(ids, a.ID.String())
			}
		}
	}
	return ids
}

// signoff applies the sign-off requirements to every target p installs
// whose bytes the device does not run at that path already: it gathers the
// evidence for the target's digest from sources (merged, the same envelope
// counted once), checks it with signoff.Check, proving each statement's
// entry with the session's gate, and records the outcome in p's summary.
// It changes no trusted state; a fork met while proving is an error.
func (d *Device) signoff(ctx context.Context, sess *update.Session, p *plan, sources []evidenceSource) error {
	if len(d.cfg.Require) == 0 || p.summary.Empty() {
		return nil
	}
	reqs, err := d.requirements()
	if err != nil {
		return err
	}
	for _, ch := range p.summary.Changes {
		if ch.Kind == "removed" || ch.NewSHA256 == ch.OldSHA256 {
			continue
		}
		so, err := d.signoffTarget(ctx, sess, reqs, ch.Path, ch.NewSHA256, sources)
		if err != nil {
			return err
		}
		p.summary.Signoff = append(p.summary.Signoff, *so)
	}
	return nil
}

func (d *Device) signoffTarget(ctx context.Context, sess *update.Session, reqs []signoff.Requirement, path, subjectHex string, sources []evidenceSource) (*approval.Signoff, error) {
	subject, err := hex.DecodeString(subjectHex)
	if err != nil || len(subject) != sha256.Size {
		return nil, fmt.Errorf("target %s has no SHA-256", clean(path))
	}
	var atts []signoff.Attestation
	seen := map[[sha256.Size]byte]bool{}
	for _, src := range sources {
		ev, err := src.fetch(ctx, [sha256.Size]byte(subject))
		if err != nil {
			d.log.Warn("ignoring sign-off evidence", "source", src.name, "target", clean(path), "err", err)
			continue
		}
		if ev == nil {
			continue
		}
		for _, a := range ev.Attestations {
			if h := sha256.Sum256(a.Envelope); !seen[h] {
				seen[h] = true
				atts = append(atts, a)
			}
		}
	}
	var fork error
	prove := func(entry, tlogProof []byte) error {
		_, err := sess.ProveEntry(ctx, entry, tlogProof)
		var fe *evidence.ForkError
		if errors.As(err, &fe) && fork == nil {
			fork = err
		}
		return err
	}
	res, err := signoff.Check(reqs, d.cfg.Repository, [sha256.Size]byte(subject), atts, prove)
	if fork != nil {
		return nil, fork
	}
	var refused *signoff.RefusedError
	if err != nil && !errors.As(err, &refused) {
		return nil, err
	}
	for _, ig := range res.Ignored {
		if ig.Attester != nil && !errors.Is(ig.Err, signoff.ErrUntrusted) {
			d.log.Info("sign-off statement not counted", "target", clean(path), "attester", clean(ig.Attester.Name), "err", ig.Err)
		}
	}
	return summarize(path, subjectHex, reqs, res, err), nil
}

// summarize turns Check's result into the summary's terms: per
// requirement who counted (and which of them built from a local copy of
// the source) and who is missing, who objected, and the refusal.
func summarize(path, subjectHex string, reqs []signoff.Requirement, res *signoff.Result, refusal error) *approval.Signoff {
	so := &approval.Signoff{Path: path, SHA256: subjectHex, Met: refusal == nil}
	proven := map[signoff.KeyID]map[string]bool{}
	for verdict, as := range res.Proven {
		for _, a := range as {
			if proven[a.ID] == nil {
				proven[a.ID] = map[string]bool{}
			}
			proven[a.ID][verdict] = true
		}
	}
	local := map[signoff.KeyID]map[string]bool{}
	for verdict, as := range res.SourceLocal {
		for _, a := range as {
			if local[a.ID] == nil {
				local[a.ID] = map[string]bool{}
			}
			local[a.ID][verdict] = true
		}
	}
	for _, r := range reqs {
		sr := approval.SignoffRequirement{Verdict: r.Verdict, K: r.K, N: len(r.Keys), By: []string{}}
		for _, a := range r.Keys {
			if proven[a.ID][r.Verdict] {
				sr.By = append(sr.By, a.Name)
				if local[a.ID][r.Verdict] {
					sr.SourceLocal = append(sr.SourceLocal, a.Name)
				}
			} else {
				sr.Missing = append(sr.Missing, a.Name)
			}
		}
		so.Requirements = append(so.Requirements, sr)
	}
	var refused *signoff.RefusedError
	if errors.As(refusal, &refused) && (refused.Reason == signoff.ErrMismatch || refused.Reason == signoff.ErrConflict) {
		for _, a := range refused.Found {
			so.Mismatch = append(so.Mismatch, a.Name)
			if local[a.ID][signoff.Mismatch] {
				so.MismatchSourceLocal = append(so.MismatchSourceLocal, a.Name)
			}
		}
	}
	if refusal != nil {
		so.Refusal = strings.ReplaceAll(strings.ReplaceAll(refusal.Error(), "\n", "; "), "sign-off: ", "")
	}
	return so
}

// signoffHeld reports why the sign-off of sum is not met, or "" when it
// is: a trusted rebuilder's mismatch (or a trusted key that stated both
// verdicts) is an error (ErrMismatch), too few statements a message for a
// held release: "1 of 2 required reproduced statements
// (rebuilder-a.example); none from rebuilder-b.example".
func signoffHeld(sum *approval.Summary) (string, error) {
	var short, objected []string
	for _, so := range sum.Signoff {
		switch {
		case len(so.Mismatch) > 0:
			objected = append(objected, clean(so.Path)+": "+so.Refusal)
		case !so.Met:
			short = append(short, clean(so.Path)+": "+so.Refusal)
		}
	}
	if len(objected) > 0 {
		return "", fmt.Errorf("%w: %s (targets version %d)", ErrMismatch, strings.Join(objected, "; "), sum.ToVersion)
	}
	if len(short) == 0 {
		return "", nil
	}
	return fmt.Sprintf("held: targets version %d lacks the sign-off this device requires: %s", sum.ToVersion, strings.Join(short, "; ")), nil
}
