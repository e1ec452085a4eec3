package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
)

// WitnessCheckpointURL returns the URL of a witness's monitoring endpoint
// for a log: <prefix>/<hex sha256(origin)>/checkpoint.
func WitnessCheckpointURL(prefix, origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return strings.TrimSuffix(prefix, "/") + "/" + hex.EncodeToString(sum[:]) + "/checkpoint"
}

// gossip compares the latest verified checkpoint with each witness's and
// peer auditor's. A checkpoint signed by the log that is inconsistent with
// the auditor's is a fork. One larger than the ledger's tiles support is
// normal for a while (witnesses cosign a checkpoint before the ledger
// publishes it): the auditor keeps the oldest such checkpoint of each source
// and checks it again every round, a fork as soon as the ledger's tiles
// reach its size and disagree, a stale view (the ledger shows the auditor an
// older log than it showed the witness) once they have not reached it for
// Config.StaleViewAfter. Unreachable sources are reported once, as info.
func (a *Auditor) gossip(ctx context.Context, res *Result) error {
	head, ok, err := a.cfg.State.Head()
	if err != nil || !ok {
		return err
	}
	type source struct {
		name, url string
		witness   bool
	}
	prevRecs, err := a.gossipRecords()
	if err != nil {
		return err
	}
	var sources []source
	for _, w := range a.cfg.Witnesses {
		sources = append(sources, source{w, WitnessCheckpointURL(w, head.Origin), true})
	}
	for _, p := range a.cfg.Peers {
		sources = append(sources, source{p, strings.TrimSuffix(p, "/") + "/checkpoint", false})
	}
	for _, src := range sources {
		prevRec := prevRecs[src.name]
		rec := store.GossipRecord{Source: src.name, Witness: src.witness, Ahead: prevRec.Ahead, AheadSince: prevRec.AheadSince}
		f := a.gossipOne(ctx, head, src.url, &rec)
		if err := a.recordGossip(rec, head); err != nil {
			return err
		}
		if f != nil {
			if err := a.report(ctx, res, *f); err != nil {
				return err
			}
		}
	}
	return nil
}

// gossipRecords returns the stored gossip records by source.
func (a *Auditor) gossipRecords() (map[string]store.GossipRecord, error) {
	out := map[string]store.GossipRecord{}
	err := a.cfg.State.View(func(tx *store.Tx) error {
		recs, err := tx.Gossip()
		for _, r := range recs {
			out[r.Source] = r
		}
		return err
	})
	return out, err
}

// recordGossip stores what a source showed (keeping the last good size and
// time when this read failed) and updates the witness metrics.
func (a *Auditor) recordGossip(rec store.GossipRecord, head store.Head) error {
	rec.Tried = a.cfg.Now().UTC()
	err := a.cfg.State.Update(func(tx *store.Tx) error {
		if rec.Seen.IsZero() {
			prev, err := tx.Gossip()
			if err != nil {
				return err
			}
			for _, p := range prev {
				if p.Source == rec.Source {
					rec.Size, rec.Seen = p.Size, p.Seen
				}
			}
		}
		return tx.PutGossip(rec)
	})
	if err != nil {
		return err
	}
	if rec.Witness {
		size := a.round.size
		if size == 0 {
			if prev, err := a.openHead(head); err == nil {
				size = prev.Size
			}
		}
		a.setWitnessMetrics(rec, size)
	}
	return nil
}

// setWitnessMetrics exports one witness's record against the ledger's
// checkpoint size.
func (a *Auditor) setWitnessMetrics(rec store.GossipRecord, ledgerSize uint64) {
	a.m.witnessUp.WithLabelValues(rec.Source).Set(b2f(rec.Error == ""))
	if rec.Seen.IsZero() {
		return
	}
	a.m.witnessSize.WithLabelValues(rec.Source).Set(float64(rec.Size))
	a.m.witnessSeen.WithLabelValues(rec.Source).Set(unix(rec.Seen))
	a.m.witnessLag.WithLabelValues(rec.Source).Set(float64(ledgerSize) - float64(rec.Size))
}

func (a *Auditor) isWitness(source string) bool {
	for _, w := range a.cfg.Witnesses {
		if w == source {
			return true
		}
	}
	return false
}

// gossipOne checks one source's checkpoint and returns a finding, if any.
// It fills in rec with what the source showed.
func (a *Auditor) gossipOne(ctx context.Context, head store.Head, src string, rec *store.GossipRecord) *alert.Finding {
	prev, headErr := a.openHead(head)
	if headErr == nil && rec.Ahead != "" { // even when the source no longer answers
		if f := a.checkAhead(ctx, head, prev, src, rec); f != nil {
			return f
		}
	}
	ev := map[string]string{"source": src}
	raw, err := get(ctx, a.cfg.Client, src, checkpoint.MaxNoteSize)
	if err != nil {
		a.log.Warn("gossip source unavailable", "source", src, "err", err)
		rec.Error = err.Error()
		return &alert.Finding{Severity: alert.Info, Kind: alert.KindGossipUnavailable, Log: head.Origin,
			Message: "could not read a checkpoint from a gossip source", Evidence: ev}
	}
	v, _ := evidence.LogVerifier(a.cfg.Policy, head.Origin)
	cp, err := checkpoint.Open(raw, head.Origin, v, a.cfg.Policy.WitnessVerifiers()...)
	if err != nil {
		rec.Error = "the checkpoint served has no valid log signature"
		ev["checkpoint"] = string(raw)
		return &alert.Finding{Severity: alert.Warning, Kind: alert.KindBadCheckpoint, Log: head.Origin,
			Message: "a gossip source served a checkpoint without a valid log signature: " + err.Error(), Evidence: ev}
	}
	rec.Size, rec.Seen = cp.Size, a.cfg.Now().UTC()
	if headErr != nil {
		return nil
	}
	fork, err := a.consistent(ctx, head, prev, cp)
	switch {
	case fork != nil:
		f := a.forkFindingFor(head.Origin, fork, src)
		return &f
	case errors.Is(err, os.ErrNotExist):
		// Ahead of the tiles the ledger serves: checked again next round.
		if rec.Ahead == "" {
			rec.Ahead, rec.AheadSince = string(raw), rec.Seen
		}
		a.log.Debug("gossip checkpoint ahead of the ledger's", "source", src, "size", cp.Size, "ledger", prev.Size)
		return nil
	case err != nil:
		a.log.Warn("couldn't check a gossip checkpoint", "source", src, "err", err)
		return nil
	}
	a.log.Debug("gossip checkpoint consistent", "source", src, "size", cp.Size)
	return nil
}

// checkAhead checks again the oldest checkpoint of a source that the
// ledger's tiles did not support (rec.Ahead): a fork once they reach its
// size and disagree; forgotten once they agree; a stale view while they
// still do not reach it Config.StaleViewAfter after the auditor first read
// it.
func (a *Auditor) checkAhead(ctx context.Context, head store.Head, prev *checkpoint.Signed, src string, rec *store.GossipRecord) *alert.Finding {
	v, _ := evidence.LogVerifier(a.cfg.Policy, head.Origin)
	cp, err := checkpoint.Open([]byte(rec.Ahead), head.Origin, v, a.cfg.Policy.WitnessVerifiers()...)
	if err != nil { // the policy changed since: nothing to hold against the ledger
		rec.Ahead, rec.AheadSince = "", time.Time{}
		return nil
	}
	fork, err := a.consistent(ctx, head, prev, cp)
	switch {
	case fork != nil:
		f := a.forkFindingFor(head.Origin, fork, src)
		return &f
	case errors.Is(err, os.ErrNotExist):
		held := a.cfg.Now().Sub(rec.AheadSince)
		if held < a.cfg.StaleViewAfter {
			return nil
		}
		return &alert.Finding{Severity: alert.Warning, Kind: alert.KindStaleView, Log: head.Origin,
			Message: fmt.Sprintf("a gossip source has held a checkpoint of size %d since %s that the ledger's tiles still do not support after %s (the ledger serves size %d)",
				cp.Size, rec.AheadSince.Format(time.RFC3339), held.Round(time.Second), prev.Size),
			Evidence: map[string]string{"source": src, "checkpoint": rec.Ahead}}
	case err != nil:
		a.log.Warn("couldn't check a gossip checkpoint", "source", src, "err", err)
		return nil
	}
	rec.Ahead, rec.AheadSince = "", time.Time{}
	return nil
}

func (a *Auditor) forkFindingFor(origin string, fe *evidence.ForkError, src string) alert.Finding {
	return alert.Finding{Severity: alert.Critical, Kind: alert.KindFork, Log: origin,
		Message:  fmt.Sprintf("the log signed two inconsistent checkpoints (one from %s): verify with `shiplog verify-evidence`", src),
		Evidence: map[string]string{"fork": string(fe.Evidence.Format()), "source": src}}
}
