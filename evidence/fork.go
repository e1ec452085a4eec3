package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/policy"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ForkHeader is the first line of encoded fork evidence.
const ForkHeader = "shiplog/fork/v1"

// Fork is evidence that a log signed two checkpoints that cannot both be
// views of one append-only log: two checkpoints of the same origin, and the
// consistency proof between them that failed (none when the sizes are equal
// and the root hashes differ, which alone proves the fork).
//
// Encoded as text: the header line, "old <base64 note>", "new <base64 note>",
// then the proof hashes, one base64 line each.
type Fork struct {
	Old, New []byte // signed checkpoint notes, exactly as received; Old is the smaller
	Proof    [][sha256.Size]byte
}

// ForkError reports checkpoints that are not consistent. It carries the
// evidence.
type ForkError struct {
	Evidence Fork
}

func (e *ForkError) Error() string {
	return "log fork: checkpoints are not consistent"
}

var errNotFork = errors.New("evidence does not show a fork")

// CheckConsistency checks that two checkpoints of one log, in either order,
// are consistent: equal roots at equal sizes, or a valid RFC 6962
// consistency proof from the smaller to the larger. On failure it returns a
// *ForkError with evidence. Checkpoints of different origins are an error, not
// a fork. It assumes both checkpoints were verified by the caller.
func CheckConsistency(a, b *checkpoint.Signed, proof [][sha256.Size]byte) error {
	if a.Origin != b.Origin {
		return errors.New("checkpoints of different logs")
	}
	if a.Size > b.Size {
		a, b = b, a
	}
	fork := &ForkError{Fork{Old: a.Note, New: b.Note, Proof: proof}}
	if a.Size == b.Size {
		if a.Hash != b.Hash {
			fork.Evidence.Proof = nil
			return fork
		}
		return nil
	}
	if a.Size == 0 {
		return nil // the empty tree is a prefix of every tree
	}
	if len(proof) > 2*64 {
		return fork
	}
	if err := merkleproof.VerifyConsistency(rfc6962.DefaultHasher, a.Size, b.Size, flatten(proof), a.Hash[:], b.Hash[:]); err != nil {
		return fork
	}
	return nil
}

func flatten(hs [][sha256.Size]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// VerifyFork re-checks fork evidence under p: both checkpoints carry a valid
// signature of the same policy log, and they are not consistent. It returns
// nil only when the evidence stands; conclusive reports that the sizes are
// equal with different roots, which no proof can explain away. Otherwise the
// evidence shows that the proof given did not verify; anyone can ask the log
// for a consistency proof between the two sizes, which it cannot give.
func VerifyFork(f Fork, p *policy.Policy) (conclusive bool, err error) {
	origin, _, _ := cutLine(f.Old)
	log := p.Log(origin)
	if log == nil {
		return false, ErrUnknownLog
	}
	a, err := checkpoint.Open(f.Old, log.Origin, log.Verifier)
	if err != nil {
		return false, fmt.Errorf("old checkpoint: %w", err)
	}
	b, err := checkpoint.Open(f.New, log.Origin, log.Verifier)
	if err != nil {
		return false, fmt.Errorf("new checkpoint: %w", err)
	}
	err = CheckConsistency(a, b, f.Proof)
	var fe *ForkError
	if !errors.As(err, &fe) {
		return false, errNotFork
	}
	return a.Size == b.Size, nil
}

// Format returns the text encoding of f.
func (f Fork) Format() []byte {
	var b bytes.Buffer
	b.WriteString(ForkHeader + "\n")
	b.WriteString("old " + base64.StdEncoding.EncodeToString(f.Old) + "\n")
	b.WriteString("new " + base64.StdEncoding.EncodeToString(f.New) + "\n")
	for _, h := range f.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	return b.Bytes()
}

// MaxForkSize bounds encoded fork evidence.
const MaxForkSize = 4 * checkpoint.MaxNoteSize

// ParseFork parses the text encoding of fork evidence strictly. It does not
// verify it: see VerifyFork.
func ParseFork(b []byte) (Fork, error) {
	bad := errors.New("malformed fork evidence")
	if len(b) > MaxForkSize || len(b) == 0 || b[len(b)-1] != '\n' {
		return Fork{}, bad
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if len(lines) < 3 || len(lines) > 3+2*64 || lines[0] != ForkHeader {
		return Fork{}, bad
	}
	var f Fork
	var ok1, ok2 bool
	var old, nw string
	old, ok1 = strings.CutPrefix(lines[1], "old ")
	nw, ok2 = strings.CutPrefix(lines[2], "new ")
	if !ok1 || !ok2 {
		return Fork{}, bad
	}
	var err error
	if f.Old, err = canonicalBase64(old, checkpoint.MaxNoteSize); err != nil {
		return Fork{}, bad
	}
	if f.New, err = canonicalBase64(nw, checkpoint.MaxNoteSize); err != nil {
		return Fork{}, bad
	}
	for _, l := range lines[3:] {
		h, err := canonicalBase64(l, sha256.Size)
		if err != nil || len(h) != sha256.Size {
			return Fork{}, bad
		}
		f.Proof = append(f.Proof, [sha256.Size]byte(h))
	}
	return f, nil
}

func canonicalBase64(s string, max int) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > max+2 {
		return nil, errors.New("too long")
	}
	d, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(d) > max || base64.StdEncoding.EncodeToString(d) != s {
		return nil, errors.New("not canonical base64")
	}
	return d, nil
}
