package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/shiplog/shiplog/attest"
	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/repo"
	"golang.org/x/mod/sumdb/note"

	"github.com/shiplog/shiplog/audit/attestation"
	"github.com/shiplog/shiplog/audit/replay"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// signoffStep checks the sign-off statements of a step (package
// attestation) in its transaction: each shiplog/attestation/v1 entry's
// output replaces replay's (which knows only releases), its statement is
// stored, and in vendor mode with a deadline each valid targets release of
// the vendor's is stored as pending until its targets are reproduced.
func (a *Auditor) signoffStep(tx *store.Tx, start uint64, f *fetched, st stepTimes, outs []replay.Output) error {
	for i, e := range f.entries {
		if entry.Kind(e) != entry.AttestationHeader {
			if err := a.pendingRelease(tx, outs[i], f.metadata[i]); err != nil {
				return err
			}
			continue
		}
		in := attestation.Input{Index: start + uint64(i), Entry: e, Envelope: f.metadata[i], LoggedBy: st.loggedBy, Log: a.checker.Log}
		var prior []attestation.Statement
		if pe, err := signoff.ParseEntry(e); err == nil {
			in.Vendor = a.cfg.Vendor != nil && a.cfg.Vendor.Repos[pe.Repo]
			if prior, err = tx.Statements(pe.Repo, hex.EncodeToString(pe.Subject[:])); err != nil {
				return err
			}
		}
		s, fs := attestation.Check(in, prior)
		if s != nil {
			if err := tx.PutStatement(s); err != nil {
				return err
			}
		}
		outs[i] = replay.Output{Findings: fs}
	}
	return nil
}

// pendingRelease records a vendor's valid targets release for
// signoff-missing, in vendor mode with a deadline.
func (a *Auditor) pendingRelease(tx *store.Tx, out replay.Output, md []byte) error {
	r := out.Release
	if a.cfg.Vendor == nil || a.cfg.SignoffDeadline <= 0 || r == nil || !out.Record || !r.Valid || r.Role == metadata.ROOT || !a.cfg.Vendor.Repos[r.Repo] {
		return nil
	}
	if p := attestation.NewPending(r.Index, r.Repo, r.Role, r.Version, r.Seen, md); p != nil {
		return tx.PutPending(p)
	}
	return nil
}

// signoffDue reports, in vendor mode with a deadline, every pending release
// with a target nobody reproduced within the deadline (signoff-missing),
// and forgets the releases decided.
func (a *Auditor) signoffDue(ctx context.Context, res *Result) error {
	if a.cfg.Vendor == nil || a.cfg.SignoffDeadline <= 0 {
		return nil
	}
	now := a.cfg.Now()
	var added []store.FindingRecord
	err := a.cfg.State.Update(func(tx *store.Tx) error {
		ps, err := tx.PendingReleases()
		if err != nil {
			return err
		}
		for _, p := range ps {
			var lookupErr error
			reproduced := func(subject string) bool {
				ss, err := tx.Statements(p.Repo, subject)
				if err != nil {
					lookupErr = err
				}
				for _, s := range ss {
					if s.Verdict == signoff.Reproduced {
						return true
					}
				}
				return false
			}
			f, done := p.Missing(reproduced, now, a.cfg.SignoffDeadline, a.origin())
			if lookupErr != nil {
				return lookupErr
			}
			if f != nil {
				if _, err := tx.AddFinding(a.stamp(*f)); err != nil {
					return err
				}
			}
			if done {
				if err := tx.DeletePending(p.Index); err != nil {
					return err
				}
			}
		}
		added = tx.Added
		return nil
	})
	if err != nil {
		return err
	}
	a.send(ctx, res, added)
	return nil
}

// fetchEnvelope fills f.metadata[at] with the envelope an attestation entry
// commits to: from the metadata bundle (mds[inBundle]) when it matches, else
// by its SHA-256; left nil when the ledger serves none (attestation reports
// it) or the entry does not parse.
func (a *Auditor) fetchEnvelope(ctx context.Context, f *fetched, e []byte, at uint64, mds [][]byte, inBundle uint64) error {
	pe, err := signoff.ParseEntry(e)
	if err != nil {
		return nil
	}
	if mds != nil && sha256.Sum256(mds[inBundle]) == pe.SHA256 && uint64(len(mds[inBundle])) == pe.Length {
		f.metadata[at] = mds[inBundle]
		return nil
	}
	md, err := a.ledger.Metadata(ctx, pe.SHA256)
	if err != nil {
		return fmtErr("fetch an attestation envelope", err)
	}
	f.metadata[at] = md
	return nil
}

// Reviewer makes the auditor a reviewer (shiplog audit --review-key,
// docs/reviewer.md): it signs and logs a "reviewed" statement
// (docs/spec/signoff.md) about every target of every targets release the
// auditor passes — valid in the replay, in vendor mode made by the vendor,
// and with no mismatch statement logged about the target — once per
// target digest and key.
type Reviewer struct {
	// Signer signs with the reviewer's Ed25519 key; VKey is its verifier
	// key (the attester key devices list).
	Signer note.Signer
	VKey   string
	// Ledger is where statements are logged (POST /v1/attest); empty means
	// the ledger the auditor follows.
	Ledger string
	// Wait is how long each submission waits for its proof; zero returns
	// once the ledger accepted it (the auditor sees it logged later).
	Wait time.Duration
}

// maxReviewsPerRound bounds the statements logged per round.
const maxReviewsPerRound = 256

// queueReviews queues, in a step's transaction, the reviews of the
// releases the step passed.
func (a *Auditor) queueReviews(tx *store.Tx, f *fetched, outs []replay.Output) error {
	rv := a.cfg.Reviewer
	if rv == nil {
		return nil
	}
	me, err := signoff.ParseAttester(rv.VKey)
	if err != nil {
		return err
	}
	unexpected := map[uint64]bool{}
	for _, fd := range tx.Added {
		if fd.Kind == alert.KindUnexpected && fd.Index != nil {
			unexpected[*fd.Index] = true
		}
	}
	for i, out := range outs {
		r := out.Release
		if r == nil || !out.Record || !r.Valid || r.Role == metadata.ROOT || unexpected[r.Index] {
			continue
		}
		p := attestation.NewPending(r.Index, r.Repo, r.Role, r.Version, r.Seen, f.metadata[i])
		if p == nil {
			continue
		}
		for _, t := range p.Subjects {
			ok, err := a.reviewable(tx, r.Repo, t.SHA256, me.ID.String())
			if err != nil {
				return err
			}
			if ok {
				if err := tx.PutReview(store.Review{Index: r.Index, Repo: r.Repo, Role: r.Role, Version: r.Version, Target: t.Path, SHA256: t.SHA256}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// reviewable reports whether the target digest subject of repo is still
// to be reviewed by key: nobody logged a mismatch about it and key has not
// reviewed it.
func (a *Auditor) reviewable(tx *store.Tx, repo, subject, key string) (bool, error) {
	ss, err := tx.Statements(repo, subject)
	if err != nil {
		return false, err
	}
	for _, s := range ss {
		if s.Verdict == signoff.Mismatch || (s.Verdict == signoff.Reviewed && s.Key == key) {
			return false, nil
		}
	}
	return true, nil
}

// review signs and logs the queued reviews, at most maxReviewsPerRound; a
// review whose target was objected to or reviewed meanwhile is dropped.
// A submission that fails stops the round's reviews (they are retried
// next round); the statement counts only once logged.
func (a *Auditor) review(ctx context.Context) error {
	rv := a.cfg.Reviewer
	if rv == nil {
		return nil
	}
	me, err := signoff.ParseAttester(rv.VKey)
	if err != nil {
		return err
	}
	var queue []store.Review
	if err := a.cfg.State.View(func(tx *store.Tx) (err error) { queue, err = tx.Reviews(maxReviewsPerRound); return err }); err != nil {
		return err
	}
	ledgerURL := rv.Ledger
	if ledgerURL == "" {
		ledgerURL = a.cfg.Ledger
	}
	for _, r := range queue {
		var ok bool
		if err := a.cfg.State.View(func(tx *store.Tx) (err error) {
			ok, err = a.reviewable(tx, r.Repo, r.SHA256, me.ID.String())
			return err
		}); err != nil {
			return err
		}
		if ok {
			if err := a.logReview(ctx, rv, ledgerURL, r); err != nil {
				a.log.Warn("couldn't log a review; retrying next round", "repo", r.Repo, "target", r.Target, "err", err)
				return nil
			}
		}
		if err := a.cfg.State.Update(func(tx *store.Tx) error { return tx.DeleteReview(r) }); err != nil {
			return err
		}
	}
	return nil
}

// logReview signs the reviewed statement of r (attest.ReviewStatement)
// and submits it to the ledger.
func (a *Auditor) logReview(ctx context.Context, rv *Reviewer, ledgerURL string, r store.Review) error {
	sum, err := hex.DecodeString(r.SHA256)
	if err != nil || len(sum) != sha256.Size {
		return fmt.Errorf("queued review of %s has no SHA-256", r.Target)
	}
	rel := &attest.Release{Target: r.Target, SHA256: [sha256.Size]byte(sum), Role: r.Role, Version: int64(r.Version)}
	env, err := signoff.Sign(attest.ReviewStatement(r.Repo, rel, a.cfg.Now()), rv.Signer, rv.VKey)
	if err != nil {
		return err
	}
	resp, err := repo.Attest(ctx, ledgerURL, a.cfg.Client, r.Repo, env, rv.Wait)
	if err != nil {
		return err
	}
	a.log.Info("reviewed", "repo", r.Repo, "target", r.Target, "sha256", r.SHA256, "index", resp.Index)
	return nil
}
