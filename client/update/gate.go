package update

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/proof"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Errors of the transparency gate. Callers branch on them with errors.Is; a
// log fork is reported as *evidence.ForkError, carrying the evidence.
var (
	// ErrUnlogged means no tlog-proof proved the metadata's exact bytes in a
	// log of the policy under the policy's witness quorum.
	ErrUnlogged = errors.New("metadata is not proven in the transparency log")
	// ErrStaleCheckpoint means the only proof offered is under a checkpoint
	// older than the newest one the device holds for that log, and no ledger
	// could show the two consistent ("checkpoints only move forward").
	ErrStaleCheckpoint = errors.New("proof is under a checkpoint older than the device's")
	// ErrUnvouched means a checkpoint newer than the device's cannot be
	// checked for consistency: no ledger answered, and the policy has no
	// witness quorum to vouch for it.
	ErrUnvouched = errors.New("newer checkpoint is neither proven consistent nor vouched for by witnesses")
)

// Ledger is the part of the ledger's online API the gate uses
// (docs/spec/ledger-api.md). Implementations must bound response sizes and
// time. The gate treats an error wrapping ErrLedgerRefused (the ledger
// answered that it has no such proof) as a failure, and any other error as
// "offline", falling back to the offline rules.
type Ledger interface {
	// ProofByLeaf returns a tlog-proof of the entry with RFC 6962 leaf hash
	// leaf, against the ledger's latest cosigned checkpoint.
	ProofByLeaf(ctx context.Context, leaf [sha256.Size]byte) ([]byte, error)
	// Consistency returns the RFC 6962 consistency proof from tree size old
	// to tree size new (old < new).
	Consistency(ctx context.Context, old, new uint64) ([][sha256.Size]byte, error)
}

// Gate is the transparency gate: the device's rule 2 and 3 of docs/ARCHITECTURE.md.
//
// A role passes when a tlog-proof verifies for its shiplog/release/v1 entry
// under Policy (evidence.VerifyEntry) and the proof's checkpoint moves the
// device's view of that log forward or sideways, never back:
//
//   - same size as the device's checkpoint: the root hashes must be equal
//     (otherwise the two checkpoints are conclusive fork evidence);
//   - larger: with a Ledger, a consistency proof from the device's checkpoint
//     must verify (otherwise: fork); offline, the policy's witness quorum,
//     which cosigned it, vouches (witnesses only cosign consistent
//     checkpoints), and with "quorum none" it is refused (ErrUnvouched);
//   - smaller: only with a Ledger, by a consistency proof up to the device's
//     checkpoint, or by a fresh proof from the ledger; otherwise refused
//     (ErrStaleCheckpoint).
//
// Checkpoints accepted within one session must also agree with each other.
// Gate is configuration; the per-session state lives in the Session.
type Gate struct {
	Policy     *policy.Policy
	Repository string
	// Ledger is optional: the online source of proofs and consistency proofs.
	Ledger Ledger
	// Rekor is optional: the online source of consistency proofs of Rekor
	// v1 logs the policy names with a URL (see RekorConsistency).
	Rekor *RekorConsistency
}

// RoleEvidence records what proved one role version in the log.
type RoleEvidence struct {
	Role     string
	Version  int64
	SHA256   [sha256.Size]byte
	Length   int64
	Origin   string // the log
	Index    uint64 // the entry's index in the log
	TreeSize uint64 // the size of the checkpoint it is proven under
	// Cosigners are the policy witnesses whose cosignatures verified, with the
	// time each cosigned.
	Cosigners []Cosigner
	// Source is "repository" or "ledger": where the proof came from.
	Source string
	// Checkpoint is the signed checkpoint note the proof carries.
	Checkpoint []byte
	// Cosigned is that checkpoint as verified under the policy: the
	// evidence of when the entry became public (evidence/publicity).
	Cosigned *evidence.Checkpoint
}

// Cosigner is one witness cosignature on a checkpoint.
type Cosigner struct {
	Name string
	Time time.Time
}

// logView is a session's view of the logs: the device's checkpoints at the
// start (floor) and those accepted since.
type logView struct {
	gate     *Gate
	floor    map[string]*checkpoint.Signed
	accepted map[string][]*checkpoint.Signed
	// offline are the logs the Ledger is never asked about: Rekor logs,
	// whose evidence came as Sigstore bundles.
	offline map[string]bool
	// checkpoints verifies proofs' checkpoint notes under the policy, each
	// exact note once per session (a release's proof and sign-off
	// statements' proofs often carry the same one).
	checkpoints *evidence.CheckpointMemo
	log         *slog.Logger
}

func newLogView(g *Gate, stored map[string][]byte, log *slog.Logger) *logView {
	v := &logView{gate: g, floor: map[string]*checkpoint.Signed{}, accepted: map[string][]*checkpoint.Signed{}, offline: map[string]bool{}, checkpoints: evidence.NewCheckpointMemo(g.Policy), log: log}
	for origin, note := range stored {
		l := g.Policy.LogFor(origin) // Rekor v1 origins differ from their key name
		if l == nil {
			log.Warn("dropping checkpoint of a log no longer in the policy", "origin", origin)
			continue
		}
		s, err := checkpoint.Open(note, origin, l.Verifier)
		if err != nil {
			log.Warn("dropping stored checkpoint that no longer verifies under the policy", "origin", origin, "err", err)
			continue
		}
		v.floor[origin] = s
	}
	return v
}

// check is the gate for one metadata file: role at version with exact bytes
// data. Remote supplies the repository's proof, or its Sigstore bundle
// checked against keys, the keys the role's delegator lists (nil: none).
func (v *logView) check(ctx context.Context, remote Remote, name, role string, version int64, data []byte, keys map[string]*metadata.Key) (*RoleEvidence, error) {
	e, err := entry.New(v.gate.Repository, role, uint64(version), data)
	if err != nil {
		return nil, fmt.Errorf("couldn't build the log entry of %s: %w", name, err)
	}
	var errs []error
	if p, err := remote.Metadata(ctx, name+".tlog-proof", proof.MaxSize); err == nil {
		ev, err := v.try(ctx, e, data, p, "repository")
		if err == nil {
			return ev, nil
		}
		var fork *evidence.ForkError
		if errors.As(err, &fork) {
			return nil, err
		}
		if errors.Is(err, evidence.ErrNotIncluded) {
			err = fmt.Errorf("%w: the entry rebuilt from repository id %q, role %s, version %d and the bytes served is not where the proof says; if %q is not the id the vendor publishes under (its shiplog-repo.json \"repository\"), initialise a device with the right --repo-id (`shiplog-device init` into a new --data-dir), otherwise the proof is for other bytes", err, v.gate.Repository, role, version, v.gate.Repository)
		}
		errs = append(errs, fmt.Errorf("repository proof: %w", err))
	} else {
		errs = append(errs, fmt.Errorf("repository proof: %w", err))
	}
	if keys != nil {
		ev, err := v.trySigstore(ctx, remote, name, role, version, data, keys)
		if err == nil {
			return ev, nil
		}
		var fork *evidence.ForkError
		if errors.As(err, &fork) {
			return nil, err
		}
		// A missing bundle is only worth a word when the policy names a
		// Rekor log that could have logged it.
		if !errors.Is(err, ErrNotFound) || v.gate.Policy.NamesRekorV1Log() {
			errs = append(errs, fmt.Errorf("Sigstore bundle: %w", err))
		}
	}
	if v.gate.Ledger != nil {
		p, err := v.gate.Ledger.ProofByLeaf(ctx, e.LeafHash())
		if err == nil {
			ev, err := v.try(ctx, e, data, p, "ledger")
			if err == nil {
				return ev, nil
			}
			var fork *evidence.ForkError
			if errors.As(err, &fork) {
				return nil, err
			}
			errs = append(errs, fmt.Errorf("ledger proof: %w", err))
		} else {
			errs = append(errs, fmt.Errorf("ledger proof: %w", err))
		}
	}
	for _, err := range errs {
		if errors.Is(err, ErrStaleCheckpoint) || errors.Is(err, ErrUnvouched) {
			return nil, fmt.Errorf("%s: %w", name, errors.Join(errs...))
		}
	}
	return nil, fmt.Errorf("%s: %w: %w", name, ErrUnlogged, errors.Join(errs...))
}

// try verifies one tlog-proof for entry e and moves the log view forward.
func (v *logView) try(ctx context.Context, e entry.Entry, data, tlogProof []byte, source string) (*RoleEvidence, error) {
	inc, err := v.checkpoints.VerifyInclusion(e.Format(), tlogProof)
	if err != nil {
		return nil, err
	}
	if err := v.accept(ctx, inc.Checkpoint.Signed); err != nil {
		return nil, err
	}
	ev := &RoleEvidence{
		Role: e.Repo, Version: int64(e.Version), SHA256: e.SHA256, Length: int64(e.Length),
		Origin: inc.Checkpoint.Origin, Index: inc.Index, TreeSize: inc.Checkpoint.Size,
		Source: source, Checkpoint: inc.Checkpoint.Note, Cosigned: inc.Checkpoint,
	}
	ev.Role = e.Role
	for _, w := range inc.Checkpoint.Cosigners {
		for _, cs := range inc.Checkpoint.Cosignatures {
			if cs.Name == w.Verifier.Name() && cs.KeyHash == w.Verifier.KeyHash() {
				ev.Cosigners = append(ev.Cosigners, Cosigner{Name: w.Name, Time: cs.Time})
				break
			}
		}
	}
	return ev, nil
}

// accept applies the forward-only rule to a checkpoint verified under the
// policy, and records it.
func (v *logView) accept(ctx context.Context, c *checkpoint.Signed) error {
	for _, o := range v.accepted[c.Origin] {
		if o.Size == c.Size {
			// Same size as one accepted: equal roots, or fork evidence. An
			// equal one passed the floor already and adds nothing.
			return evidence.CheckConsistency(o, c, nil)
		}
	}
	if f := v.floor[c.Origin]; f != nil {
		if err := v.consistentWithFloor(ctx, f, c); err != nil {
			return err
		}
	}
	v.accepted[c.Origin] = append(v.accepted[c.Origin], c)
	return nil
}

func (v *logView) consistentWithFloor(ctx context.Context, f, c *checkpoint.Signed) error {
	switch {
	case c.Size == f.Size:
		return evidence.CheckConsistency(f, c, nil)
	case c.Size < f.Size:
		if ok, err := v.online(ctx, c, f); ok {
			return err
		}
		return fmt.Errorf("%w (log %s: proof at size %d, device at %d)", ErrStaleCheckpoint, c.Origin, c.Size, f.Size)
	default:
		if ok, err := v.online(ctx, f, c); ok {
			return err
		}
		if v.gate.Policy.Quorum == nil {
			return fmt.Errorf("%w (log %s: %d -> %d)", ErrUnvouched, c.Origin, f.Size, c.Size)
		}
		return nil // the witness quorum that cosigned c vouches for it
	}
}

// online checks old -> new with a consistency proof from the ledger. It
// reports ok=false when no ledger is configured or it did not answer.
func (v *logView) online(ctx context.Context, old, new *checkpoint.Signed) (ok bool, err error) {
	if v.offline[old.Origin] {
		return v.rekorOnline(ctx, old, new)
	}
	if v.gate.Ledger == nil {
		return false, nil
	}
	p, err := v.gate.Ledger.Consistency(ctx, old.Size, new.Size)
	if errors.Is(err, ErrLedgerRefused) {
		return true, fmt.Errorf("%w: the ledger cannot show log %s consistent from %d to %d: %w", ErrUnvouched, old.Origin, old.Size, new.Size, err)
	}
	if err != nil {
		v.log.Warn("ledger gave no consistency proof; using offline rules", "origin", old.Origin, "old", old.Size, "new", new.Size, "err", err)
		return false, nil
	}
	return true, evidence.CheckConsistency(old, new, p)
}

// newest returns the device's checkpoints after the session: per log, the
// largest of the floor and the checkpoints accepted.
func (v *logView) newest() map[string][]byte {
	out := map[string][]byte{}
	for origin, f := range v.floor {
		out[origin] = f.Note
	}
	for origin, cs := range v.accepted {
		best := v.floor[origin]
		for _, c := range cs {
			if best == nil || c.Size > best.Size {
				best = c
			}
		}
		out[origin] = best.Note
	}
	return out
}
