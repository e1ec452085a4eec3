package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/policy"
)

// maxRateRetries bounds the retries after a 429 per witness and call.
const maxRateRetries = 3

// Collector gathers cosignatures for a log's checkpoints from the witnesses
// of a policy. It remembers, per witness and log, the size the witness last
// cosigned, so that each request carries the right consistency proof.
type Collector struct {
	policy    *policy.Policy
	proofs    ProofFunc
	log       *slog.Logger
	witnesses []*witnessConn
}

// witnessConn is one witness: its client, a lock that serialises the calls
// to it, and the sizes it last cosigned by origin (guarded by lock).
type witnessConn struct {
	name   string
	client *Client
	lock   chan struct{}
	sizes  map[string]uint64
}

// NewCollector returns a collector for the witnesses of p that have a URL
// (the witness's submission prefix). proofs supplies consistency proofs of
// the log; it may be called concurrently.
func NewCollector(p *policy.Policy, proofs ProofFunc, opts Options) (*Collector, error) {
	if p == nil || proofs == nil {
		return nil, errors.New("witness collector: a policy and a ProofFunc are required")
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	c := &Collector{policy: p, proofs: proofs, log: opts.logger()}
	for _, w := range p.Witnesses {
		if w.URL == "" {
			continue
		}
		c.witnesses = append(c.witnesses, &witnessConn{
			name:   w.Name,
			client: newClient(w.URL, w.Name, w.Verifier, opts, m),
			lock:   make(chan struct{}, 1),
			sizes:  map[string]uint64{},
		})
	}
	return c, nil
}

// Cosign sends the log-signed checkpoint note to every witness concurrently
// (C2SP tlog-witness add-checkpoint, with a consistency proof from the size
// that witness last cosigned: start from what it told us, learn it from a
// 409 text/x.tlog.size body, retry once; 422/409 for a same-size different
// root; 429 with backoff and Retry-After; 403/404 logged as configuration
// errors; timeouts) and returns the note with all valid cosignatures
// gathered (each verified against the witness's key before it is kept),
// once every witness answered or ctx is done. It returns evidence.ErrQuorum
// (wrapped) if the policy quorum is not met by the cosignatures gathered;
// the note with what was gathered is returned with that error, so the caller
// may keep it. The checkpoint must be signed by a log of the policy.
// Cosignatures already on the note are kept and not duplicated.
// Safe for concurrent use; concurrent calls for the same witness are serialised.
func (c *Collector) Cosign(ctx context.Context, signedCheckpoint []byte) ([]byte, error) {
	origin, _, _ := bytes.Cut(signedCheckpoint, []byte("\n"))
	l := c.policy.Log(string(origin))
	if l == nil {
		return nil, evidence.ErrUnknownLog
	}
	cp, err := checkpoint.Open(signedCheckpoint, l.Origin, l.Verifier)
	if err != nil {
		return nil, fmt.Errorf("couldn't verify the log's checkpoint: %w", err)
	}
	type result struct {
		w    *witnessConn
		sigs []byte
		err  error
	}
	results := make(chan result, len(c.witnesses))
	for _, w := range c.witnesses {
		go func() {
			sigs, err := c.cosignOne(ctx, w, cp)
			results <- result{w, sigs, err}
		}()
	}
	have := sigKeys(signedCheckpoint)
	var gathered []byte
	var failed []WitnessError
	answered := map[string]bool{}
	for range c.witnesses {
		select {
		case r := <-results:
			answered[r.w.name] = true
			if r.err != nil {
				c.log.Warn("no cosignature from witness", "witness", r.w.name, "origin", cp.Origin, "size", cp.Size, "error", r.err)
				failed = append(failed, WitnessError{Witness: r.w.name, Err: r.err})
				continue
			}
			gathered = append(gathered, newLines(r.sigs, have)...)
		case <-ctx.Done():
			c.log.Warn("stopped waiting for witnesses", "origin", cp.Origin, "size", cp.Size, "error", ctx.Err())
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		for _, w := range c.witnesses {
			if !answered[w.name] {
				failed = append(failed, WitnessError{Witness: w.name, Err: fmt.Errorf("no answer before the round ended: %w", ctx.Err())})
			}
		}
	}
	out := checkpoint.AddSignatures(signedCheckpoint, gathered)
	if _, err := evidence.VerifyCheckpoint(out, c.policy); err != nil {
		if errors.Is(err, evidence.ErrQuorum) {
			return out, &QuorumError{Origin: cp.Origin, Size: cp.Size, Err: err, Failed: failed}
		}
		return nil, err
	}
	return out, nil
}

// cosignOne runs the add-checkpoint exchange with one witness.
func (c *Collector) cosignOne(ctx context.Context, w *witnessConn, cp *checkpoint.Signed) ([]byte, error) {
	select {
	case w.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.lock }()
	old := w.sizes[cp.Origin]
	conflictRetried := false
	for rateRetries := 0; ; {
		if old > cp.Size {
			return nil, fmt.Errorf("witness already cosigned size %d, beyond %d", old, cp.Size)
		}
		var proof [][]byte
		if old > 0 && old < cp.Size {
			var err error
			if proof, err = c.proofs(ctx, old, cp.Size); err != nil {
				return nil, fmt.Errorf("couldn't get consistency proof %d→%d: %w", old, cp.Size, err)
			}
		}
		sigs, err := w.client.AddCheckpoint(ctx, old, proof, cp.Note)
		var conflict *ConflictError
		var limited *RateLimitError
		var status *StatusError
		switch {
		case err == nil:
			w.sizes[cp.Origin] = cp.Size
			return sigs, nil
		case errors.As(err, &conflict) && conflict.Size != old && !conflictRetried:
			// The witness told us its size: retry once from there.
			conflictRetried = true
			w.sizes[cp.Origin] = conflict.Size
			old = conflict.Size
		case errors.As(err, &conflict), errors.As(err, &status) && status.Code == 409:
			if old == cp.Size {
				c.log.Error("witness holds a different checkpoint of the same size: the log may have forked", "witness", w.name, "origin", cp.Origin, "size", cp.Size)
			}
			return nil, err
		case errors.As(err, &limited) && rateRetries < maxRateRetries:
			wait := limited.RetryAfter
			if wait == 0 {
				wait = time.Second << rateRetries
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				return nil, err
			}
			rateRetries++
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
		case errors.Is(err, ErrUnknownLog), errors.Is(err, ErrForbidden):
			c.log.Error("witness configuration error: it does not accept this log's checkpoints", "witness", w.name, "origin", cp.Origin, "error", err)
			return nil, err
		case errors.Is(err, ErrBadProof):
			if old == cp.Size {
				c.log.Error("witness holds a different checkpoint of the same size (422): the log may have forked", "witness", w.name, "origin", cp.Origin, "size", cp.Size)
			} else {
				c.log.Error("witness refused the consistency proof", "witness", w.name, "origin", cp.Origin, "old", old, "size", cp.Size)
			}
			return nil, err
		default:
			return nil, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sigKeys returns the name and key ID prefix of every signature line of a
// note, to avoid adding a witness's cosignature twice.
func sigKeys(msg []byte) map[string]bool {
	keys := map[string]bool{}
	split := bytes.LastIndex(msg, []byte("\n\n"))
	if split < 0 {
		return keys
	}
	for _, line := range bytes.SplitAfter(msg[split+2:], []byte("\n")) {
		if name, sig, ok := parseSigLine(line); ok {
			keys[name+"\x00"+string(sig[:4])] = true
		}
	}
	return keys
}

// newLines returns the signature lines of sigs whose key is not in have,
// and adds them to have.
func newLines(sigs []byte, have map[string]bool) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(sigs, []byte("\n")) {
		name, sig, ok := parseSigLine(line)
		if !ok {
			continue
		}
		k := name + "\x00" + string(sig[:4])
		if have[k] {
			continue
		}
		have[k] = true
		out = append(out, line...)
	}
	return out
}

// WitnessError is why one witness gave no cosignature in a round.
type WitnessError struct {
	Witness string
	Err     error
}

// QuorumError is Cosign's error when the cosignatures gathered do not meet
// the policy's quorum: it wraps evidence.ErrQuorum and names each witness
// that failed with its error, or that had not answered when ctx ended (a
// witness that answered without a valid cosignature is not listed).
type QuorumError struct {
	Origin string
	Size   uint64
	Err    error
	Failed []WitnessError
}

func (e *QuorumError) Error() string {
	msg := fmt.Sprintf("couldn't gather a witness quorum for %s at size %d: %v", e.Origin, e.Size, e.Err)
	for i, f := range e.Failed {
		sep := "; "
		if i == 0 {
			sep = " ("
		}
		msg += sep + f.Witness + ": " + f.Err.Error()
	}
	if len(e.Failed) > 0 {
		msg += ")"
	}
	return msg
}

func (e *QuorumError) Unwrap() error { return e.Err }
