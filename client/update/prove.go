package update

import (
	"context"
	"errors"

	"github.com/shiplog/shiplog/evidence"
)

// ErrGateOff is ProveEntry's error in a session without a transparency gate.
var ErrGateOff = errors.New("update: the transparency gate is off")

// ProveEntry verifies tlogProof for the exact log entry bytes under the
// gate's policy — the log's signature and the witness quorum, as for
// releases (evidence.VerifyInclusion; a checkpoint note this session
// verified already, byte for byte, is not verified again) — and applies the forward-only rule of
// Gate to its checkpoint: the session's view of the log moves forward with
// it (and persists with Trusted), a checkpoint inconsistent with the
// device's is a *evidence.ForkError, a stale one needs the Ledger. It is
// what proves any entry other than a role version, such as a sign-off
// statement's shiplog/attestation/v1 entry (docs/spec/signoff.md).
func (s *Session) ProveEntry(ctx context.Context, entry, tlogProof []byte) (*evidence.Inclusion, error) {
	if s.view == nil {
		return nil, ErrGateOff
	}
	inc, err := s.view.checkpoints.VerifyInclusion(entry, tlogProof)
	if err != nil {
		return nil, err
	}
	if err := s.view.accept(ctx, inc.Checkpoint.Signed); err != nil {
		return nil, err
	}
	return inc, nil
}
