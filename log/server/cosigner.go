package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
	ledger "github.com/shiplog/shiplog/log"
	wclient "github.com/shiplog/shiplog/witness/client"
)

// quorumGrace is how long the ledger still waits for the other witnesses
// once the quorum is met, so that healthy witnesses all cosign while a
// hanging one costs little.
const quorumGrace = 100 * time.Millisecond

// quorumCosigner gathers cosignatures through witness/client (C2SP
// tlog-witness, one Collector per witness so each remembers its witness's
// size) and returns quorumGrace after the policy's quorum is met (or once
// every witness answered): a slow or hanging witness does not hold up
// publication. The witnesses still
// answering go on in the background until the round's deadline, so they
// keep up with the log. Safe for concurrent use.
type quorumCosigner struct {
	policy   *policy.Policy
	each     []*wclient.Collector
	names    []string // names[i] is the witness of each[i]
	deadline time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	status map[string]*WitnessStatus // by witness name
}

// WitnessStatus is what the ledger last heard from one policy witness: the
// largest checkpoint size it cosigned and when, and the last error of a
// round it did not cosign. GET /v1/witnesses serves it, so a vendor waiting
// for a cosigned checkpoint can say which witnesses answered.
type WitnessStatus struct {
	Name         string    `json:"name"`
	URL          string    `json:"url,omitempty"`
	CosignedSize uint64    `json:"cosigned_size"`
	Cosigned     time.Time `json:"cosigned,omitzero"`
	LastAttempt  time.Time `json:"last_attempt,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
}

// Witnesses returns the status of every witness with a URL, in policy order.
func (q *quorumCosigner) Witnesses() []WitnessStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]WitnessStatus, 0, len(q.names))
	for _, n := range q.names {
		out = append(out, *q.status[n])
	}
	return out
}

// record notes one witness's answer to the round for a checkpoint of size.
func (q *quorumCosigner) record(name string, size uint64, cosigned bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.status[name]
	st.LastAttempt = time.Now().UTC()
	switch {
	case cosigned:
		st.CosignedSize, st.Cosigned, st.LastError = max(st.CosignedSize, size), st.LastAttempt, ""
	case err != nil:
		st.LastError = err.Error()
		var qe *wclient.QuorumError
		if errors.As(err, &qe) {
			st.LastError = "answered without a cosignature"
			if len(qe.Failed) == 1 {
				st.LastError = qe.Failed[0].Err.Error() // the witness's own error, not the round's
			}
		}
	default:
		st.LastError = "answered without a cosignature"
	}
}

// collectorCosigner is the default CosignerFunc.
func collectorCosigner(p *policy.Policy, proofs ProofFunc, timeout time.Duration, logger *slog.Logger, reg prometheus.Registerer) (ledger.Cosigner, error) {
	q := &quorumCosigner{policy: p, deadline: 2 * timeout, log: logger, status: map[string]*WitnessStatus{}}
	for _, w := range p.Witnesses {
		if w.URL == "" {
			continue
		}
		q.names = append(q.names, w.Name)
		q.status[w.Name] = &WitnessStatus{Name: w.Name, URL: w.URL}
		// One witness that must cosign, so that a round it fails returns its
		// error (for GET /v1/witnesses); the policy's quorum is checked here.
		one := &policy.Policy{Logs: p.Logs, Witnesses: []*policy.Witness{w}, Quorum: &policy.Group{Name: w.Name, Threshold: 1, Witnesses: []*policy.Witness{w}}}
		c, err := wclient.NewCollector(one, wclient.ProofFunc(proofs), wclient.Options{Timeout: timeout, Logger: logger, Registerer: reg})
		if err != nil {
			return nil, err
		}
		q.each = append(q.each, c)
	}
	return q, nil
}

// Cosign returns the note with the cosignatures gathered once they meet
// the quorum, or wraps evidence.ErrQuorum when ctx ends first or every
// witness answered without a quorum.
func (q *quorumCosigner) Cosign(ctx context.Context, signed []byte) ([]byte, error) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.deadline)
	results := make(chan []byte, len(q.each)) // buffered: late answers never block
	size := checkpointSize(signed)
	var wg sync.WaitGroup
	for i, c := range q.each {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.Cosign(bg, signed)
			if err != nil || len(out) < len(signed) {
				out = signed
			}
			q.record(q.names[i], size, len(out) > len(signed), err)
			results <- out[len(signed):] // this witness's verified signature lines
		}()
	}
	go func() { wg.Wait(); cancel() }()
	merged := append([]byte(nil), signed...)
	var grace <-chan time.Time // runs once the quorum is met
	for range q.each {
		select {
		case lines := <-results:
			merged = append(merged, lines...)
			if _, err := evidence.VerifyCheckpoint(merged, q.policy); err == nil && grace == nil {
				grace = time.After(quorumGrace)
			}
			continue
		case <-grace:
		case <-ctx.Done():
		}
		break
	}
	if _, err := evidence.VerifyCheckpoint(merged, q.policy); err != nil {
		return nil, fmt.Errorf("couldn't gather a witness quorum: %w", err)
	}
	return merged, nil
}

// checkpointSize reads the size line of a checkpoint the ledger itself
// signed (for WitnessStatus only); 0 if it cannot.
func checkpointSize(signed []byte) uint64 {
	lines := strings.SplitN(string(signed), "\n", 3)
	if len(lines) < 3 {
		return 0
	}
	n, _ := strconv.ParseUint(lines[1], 10, 64)
	return n
}
