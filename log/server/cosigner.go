package server

import (
	"context"
	"fmt"
	"log/slog"
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
	deadline time.Duration
	log      *slog.Logger
}

// collectorCosigner is the default CosignerFunc.
func collectorCosigner(p *policy.Policy, proofs ProofFunc, timeout time.Duration, logger *slog.Logger, reg prometheus.Registerer) (ledger.Cosigner, error) {
	q := &quorumCosigner{policy: p, deadline: 2 * timeout, log: logger}
	for _, w := range p.Witnesses {
		if w.URL == "" {
			continue
		}
		one := &policy.Policy{Logs: p.Logs, Witnesses: []*policy.Witness{w}} // quorum none: checked here
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
	var wg sync.WaitGroup
	for _, c := range q.each {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.Cosign(bg, signed)
			if err != nil || len(out) < len(signed) {
				out = signed
			}
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
