package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/store"
)

// defaultUnreachableAfter is Config.UnreachableAfter's default.
const defaultUnreachableAfter = 5 * time.Minute

// defaultStaleViewAfter is Config.StaleViewAfter's default.
const defaultStaleViewAfter = 2 * time.Minute

// criticalFactor: an outage this many times UnreachableAfter long is
// critical.
const criticalFactor = 12

// roundState is what the current round learned about the ledger.
type roundState struct {
	// current: the ledger's checkpoint verified, was consistent and no
	// older than one seen before, so the round went on to catch up.
	current bool
	// answered is the last time the ledger answered usefully in this round.
	answered time.Time
	// problem says why the ledger is not up when the round itself did not
	// fail (a checkpoint that does not verify, a fork, a stale view).
	problem string
	size    uint64
}

// answered notes that the ledger answered usefully now.
func (a *Auditor) answered() {
	now := a.cfg.Now().UTC()
	a.round.answered = now
	a.m.lastAnswer.Set(unix(now))
}

// endRound records how the round went (durably, for the dashboard and for
// the next process), updates the metrics, and reports a ledger that has not
// answered for UnreachableAfter.
func (a *Auditor) endRound(ctx context.Context, res *Result, roundErr error) error {
	defer a.rounds.Add(1)
	now := a.cfg.Now().UTC()
	up := roundErr == nil && a.round.current
	var rec store.RoundRecord
	err := a.cfg.State.Update(func(tx *store.Tx) error {
		var err error
		if rec, _, err = tx.Round(); err != nil {
			return err
		}
		rec.LastAttempt, rec.LedgerUp = now, up
		if !a.round.answered.IsZero() {
			rec.LastAnswer = a.round.answered
		}
		if a.round.size > 0 {
			rec.CheckpointSize = a.round.size
		}
		switch {
		case up:
			rec.LastSuccess, rec.LastError = now, ""
		case roundErr != nil:
			rec.LastError = roundErr.Error()
		default:
			rec.LastError = a.round.problem
		}
		return tx.SetRound(rec)
	})
	if err != nil {
		return err
	}
	result := "ok"
	if !up {
		result = "error"
	}
	a.m.rounds.WithLabelValues(result).Inc()
	a.m.ledgerUp.Set(b2f(up))
	a.m.lastSuccess.Set(unix(rec.LastSuccess))
	a.m.lastAnswer.Set(unix(rec.LastAnswer))
	a.setSizeMetrics(rec.CheckpointSize, res.Audited)
	if roundErr != nil {
		if err := a.reportUnreachable(ctx, res, rec, roundErr, now); err != nil {
			return err
		}
	}
	return a.countOpen()
}

// reportUnreachable reports a ledger whose last useful answer (or, if it
// never answered, the auditor's start) is at least UnreachableAfter ago: a
// warning, and a critical finding past criticalFactor times that. Each
// outage gives at most one finding of each severity, since the evidence
// names when it began.
func (a *Auditor) reportUnreachable(ctx context.Context, res *Result, rec store.RoundRecord, roundErr error, now time.Time) error {
	since, last := rec.LastAnswer, "never"
	if since.IsZero() {
		since = a.started
	} else {
		last = since.Format(time.RFC3339)
	}
	down := now.Sub(since)
	if down < a.cfg.UnreachableAfter {
		return nil
	}
	sev, after := alert.Warning, a.cfg.UnreachableAfter
	if down >= criticalFactor*a.cfg.UnreachableAfter {
		sev, after = alert.Critical, criticalFactor*a.cfg.UnreachableAfter
	}
	msg := roundErr.Error()
	if len(msg) > store.MaxRoundError {
		msg = msg[:store.MaxRoundError]
	}
	return a.report(ctx, res, alert.Finding{Severity: sev, Kind: alert.KindLedgerUnreachable, Log: a.origin(),
		Message: fmt.Sprintf("the ledger has not answered the auditor for %s (last useful answer: %s): %s",
			down.Round(time.Second), last, strings.TrimSpace(msg)),
		Evidence: map[string]string{"last_answer": last, "unreachable_for_at_least": after.String()}})
}

// origin is the log the state follows, or "" before the first checkpoint.
func (a *Auditor) origin() string {
	h, ok, err := a.cfg.State.Head()
	if err != nil || !ok {
		return ""
	}
	return h.Origin
}

func (a *Auditor) setSizeMetrics(checkpointSize, audited uint64) {
	a.m.checkpointSize.Set(float64(checkpointSize))
	a.m.audited.Set(float64(audited))
	a.m.lag.Set(float64(checkpointSize) - float64(min(audited, checkpointSize)))
}

// countOpen sets the open-findings gauge from the state: every finding no
// operator has resolved.
func (a *Auditor) countOpen() error {
	n, err := OpenFindings(a.cfg.State)
	if err != nil {
		return err
	}
	for _, s := range []alert.Severity{alert.Info, alert.Warning, alert.Critical} {
		a.m.open.WithLabelValues(s.String()).Set(float64(n[s]))
	}
	return nil
}

// OpenFindings counts the stored findings that no operator resolved, by
// severity. It reads every finding: O(findings).
func OpenFindings(db *store.DB) (map[alert.Severity]int, error) {
	n := map[alert.Severity]int{}
	err := db.View(func(tx *store.Tx) error {
		return tx.Findings(func(f store.FindingRecord) error {
			st, err := tx.AlertState(f.ID)
			if err != nil {
				return err
			}
			if st.State != store.AlertResolved {
				n[f.Severity]++
			}
			return nil
		})
	})
	return n, err
}

// RefreshOpenFindings re-reads the open-findings gauge from the state, for
// callers that changed an alert's state (the dashboard). It is safe for
// concurrent use with Step.
func (a *Auditor) RefreshOpenFindings() error { return a.countOpen() }

// Rounds returns how many rounds have ended since New. It is safe for
// concurrent use.
func (a *Auditor) Rounds() int64 { return a.rounds.Load() }

// loadMetrics sets the metrics from the state, so that a restarted auditor
// reports the last success and answer of the previous process.
func (a *Auditor) loadMetrics() error {
	var rec store.RoundRecord
	var audited uint64
	var gossip []store.GossipRecord
	err := a.cfg.State.View(func(tx *store.Tx) error {
		var err error
		if rec, _, err = tx.Round(); err != nil {
			return err
		}
		if h, ok, err := tx.Head(); err != nil {
			return err
		} else if ok {
			audited = h.Size
		}
		gossip, err = tx.Gossip()
		return err
	})
	if err != nil {
		return err
	}
	a.m.lastSuccess.Set(unix(rec.LastSuccess))
	a.m.lastAnswer.Set(unix(rec.LastAnswer))
	a.m.ledgerUp.Set(b2f(rec.LedgerUp))
	a.m.vendorMode.Set(b2f(a.cfg.Vendor != nil))
	a.setSizeMetrics(rec.CheckpointSize, audited)
	for _, g := range gossip {
		if g.Witness && a.isWitness(g.Source) {
			a.setWitnessMetrics(g, rec.CheckpointSize)
		}
	}
	return a.countOpen()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
