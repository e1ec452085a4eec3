package evidence

import "github.com/shiplog/shiplog/evidence/policy"

// MaxMemo bounds the checkpoint notes a CheckpointMemo remembers; a note
// beyond it is still verified, in full, every time.
const MaxMemo = 64

// CheckpointMemo verifies checkpoint notes under one policy and remembers
// those that verified, keyed by their exact bytes, so that proofs carrying
// the same checkpoint (a release's proof and sign-off statements' proofs
// fetched together) verify its log signature and cosignatures once. A note
// that differs in any byte, or that failed, is verified in full; what it
// returns for a remembered note is the same *Checkpoint as the first time,
// which callers must not modify. It remembers at most MaxMemo notes and
// lives as long as its owner (a device's update session); it is not safe
// for concurrent use.
type CheckpointMemo struct {
	policy   *policy.Policy
	verified map[string]*Checkpoint
}

// NewCheckpointMemo returns an empty memo for checkpoints verified under p.
func NewCheckpointMemo(p *policy.Policy) *CheckpointMemo {
	return &CheckpointMemo{policy: p, verified: map[string]*Checkpoint{}}
}

// Policy returns the policy the memo verifies under.
func (m *CheckpointMemo) Policy() *policy.Policy { return m.policy }

// VerifyCheckpoint is VerifyCheckpoint under the memo's policy, once per
// exact note.
func (m *CheckpointMemo) VerifyCheckpoint(msg []byte) (*Checkpoint, error) {
	if c, ok := m.verified[string(msg)]; ok {
		return c, nil
	}
	c, err := VerifyCheckpoint(msg, m.policy)
	if err != nil {
		return nil, err
	}
	if len(m.verified) < MaxMemo {
		m.verified[string(msg)] = c
	}
	return c, nil
}

// VerifyInclusion is VerifyInclusion under the memo's policy: the inclusion
// proof is always checked, the checkpoint once per exact note.
func (m *CheckpointMemo) VerifyInclusion(leaf, tlogProof []byte) (*Inclusion, error) {
	return verifyInclusion(leaf, tlogProof, m.VerifyCheckpoint)
}
