package log

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/signoff"
)

// MaxAttestationKeys bounds the key ids one Attestations call may name.
const MaxAttestationKeys = 32

// Attest checks a sign-off envelope submitted for repo
// (docs/spec/signoff.md, "The ledger") and logs it as a
// shiplog/attestation/v1 entry: it must be at most signoff.MaxEnvelopeSize
// bytes (ErrTooLarge), parse strictly with a statement about repo
// (ErrBadRequest), and its signature must verify under the key it names
// (signoff.ErrBadSignature); repo must be registered
// (ErrUnknownRepository). The attester's identity is not checked: trust is
// each device's choice. The envelope is stored durably in the metadata
// store before the entry is appended, then the entry is indexed and Attest
// waits up to wait for a proof, as Publish does. The same envelope again
// returns its index with Duplicate set.
func (l *Ledger) Attest(ctx context.Context, repo string, envelope []byte, wait time.Duration) (*Receipt, error) {
	start := time.Now()
	if err := l.Ready(); err != nil {
		return nil, err
	}
	e, err := checkEnvelope(repo, envelope)
	if err != nil {
		return nil, l.m.refused(err)
	}
	unlock, err := l.lockRepo(ctx, repo)
	if err != nil {
		return nil, err
	}
	r, err := l.attestLocked(ctx, Record{Attestation: &e}, envelope, unlock)
	unlock()
	if err != nil {
		return nil, l.m.refused(err)
	}
	return l.finish(ctx, r, start, wait)
}

// checkEnvelope is Attest's check of the envelope alone, and returns its
// log entry.
func checkEnvelope(repo string, envelope []byte) (signoff.Entry, error) {
	if len(envelope) > signoff.MaxEnvelopeSize {
		return signoff.Entry{}, fmt.Errorf("%w: a sign-off envelope is at most %d bytes", ErrTooLarge, signoff.MaxEnvelopeSize)
	}
	if err := validRepo(repo); err != nil {
		return signoff.Entry{}, err
	}
	env, err := signoff.OpenEnvelope(envelope)
	if errors.Is(err, signoff.ErrBadSignature) {
		return signoff.Entry{}, err
	} else if err != nil {
		return signoff.Entry{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if env.Statement.Repository != repo {
		return signoff.Entry{}, fmt.Errorf("%w: the statement is about repository %q, not %q", ErrBadRequest, env.Statement.Repository, repo)
	}
	return env.Entry(), nil
}

// validRepo checks a repository id against the entry alphabet.
func validRepo(repo string) error {
	if (entry.Entry{Repo: repo, Role: "root", Version: 1, Length: 1}).Validate() != nil {
		return fmt.Errorf("%w: the repository id must be 1-255 printable ASCII characters without spaces", ErrBadRequest)
	}
	return nil
}

func (l *Ledger) attestLocked(ctx context.Context, r Record, envelope []byte, unlock func()) (*Receipt, error) {
	if _, ok, err := l.index.Registered(r.Repo()); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRepository, r.Repo())
	}
	if idx, dup, err := l.index.Leaf(r.LeafHash()); err != nil {
		return nil, err
	} else if dup {
		return l.receipt(r, idx, true), nil
	}
	return l.appendLocked(ctx, r, envelope, unlock)
}

// Attestations returns the evidence file (signoff.Evidence) of the
// attestations logged for subject in repo that the latest cosigned
// checkpoint covers, each with its tlog-proof against that checkpoint, in
// log order: only those by keys (at most MaxAttestationKeys; none: all),
// at most signoff.MaxAttestations, Truncated when more exist. Before the
// first cosigned checkpoint the evidence is empty. An unregistered repo is
// ErrUnknownRepository, a bad id or too many keys ErrBadRequest.
func (l *Ledger) Attestations(ctx context.Context, repo string, subject [sha256.Size]byte, keys []signoff.KeyID) (*signoff.Evidence, error) {
	if err := validRepo(repo); err != nil {
		return nil, err
	}
	if len(keys) > MaxAttestationKeys {
		return nil, fmt.Errorf("%w: at most %d keys", ErrBadRequest, MaxAttestationKeys)
	}
	if _, ok, err := l.index.Registered(repo); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRepository, repo)
	}
	ev := &signoff.Evidence{Subject: subject}
	p := l.published()
	if p == nil || p.note == nil {
		return ev, nil
	}
	recs, more, err := l.index.Attestations(repo, subject, keys, p.cp.Size, signoff.MaxAttestations)
	if err != nil {
		return nil, err
	}
	ev.Truncated = more
	for _, r := range recs {
		env, err := l.meta.Get(r.Entry.SHA256)
		if err != nil {
			return nil, fmt.Errorf("logged envelope of entry %d: %w", r.Index, err)
		}
		pr, err := l.proofAt(ctx, r.Index, p)
		if err != nil {
			return nil, err
		}
		ev.Attestations = append(ev.Attestations, signoff.Attestation{Envelope: env, Proof: pr})
	}
	return ev, nil
}
