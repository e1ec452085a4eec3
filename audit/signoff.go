package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

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
