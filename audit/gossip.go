package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

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
// the auditor's is a fork; one larger than the ledger's tiles can support is
// a stale view (the ledger shows the auditor an older log than it showed the
// witness). Unreachable sources are reported once, as info.
func (a *Auditor) gossip(ctx context.Context, res *Result) error {
	head, ok, err := a.cfg.State.Head()
	if err != nil || !ok {
		return err
	}
	var sources []string
	for _, w := range a.cfg.Witnesses {
		sources = append(sources, WitnessCheckpointURL(w, head.Origin))
	}
	for _, p := range a.cfg.Peers {
		sources = append(sources, strings.TrimSuffix(p, "/")+"/checkpoint")
	}
	for _, src := range sources {
		if f := a.gossipOne(ctx, head, src); f != nil {
			if err := a.report(ctx, res, *f); err != nil {
				return err
			}
		}
	}
	return nil
}

// gossipOne checks one source's checkpoint and returns a finding, if any.
func (a *Auditor) gossipOne(ctx context.Context, head store.Head, src string) *alert.Finding {
	ev := map[string]string{"source": src}
	raw, err := get(ctx, a.cfg.Client, src, checkpoint.MaxNoteSize)
	if err != nil {
		a.log.Warn("gossip source unavailable", "source", src, "err", err)
		return &alert.Finding{Severity: alert.Info, Kind: alert.KindGossipUnavailable, Log: head.Origin,
			Message: "could not read a checkpoint from a gossip source", Evidence: ev}
	}
	v, _ := evidence.LogVerifier(a.cfg.Policy, head.Origin)
	cp, err := checkpoint.Open(raw, head.Origin, v, a.cfg.Policy.WitnessVerifiers()...)
	if err != nil {
		ev["checkpoint"] = string(raw)
		return &alert.Finding{Severity: alert.Warning, Kind: alert.KindBadCheckpoint, Log: head.Origin,
			Message: "a gossip source served a checkpoint without a valid log signature: " + err.Error(), Evidence: ev}
	}
	prev, err := a.openHead(head)
	if err != nil {
		return nil
	}
	fork, err := a.consistent(ctx, head, prev, cp)
	switch {
	case fork != nil:
		f := a.forkFindingFor(head.Origin, fork, src)
		return &f
	case errors.Is(err, os.ErrNotExist):
		ev["checkpoint"] = string(raw)
		return &alert.Finding{Severity: alert.Warning, Kind: alert.KindStaleView, Log: head.Origin,
			Message:  fmt.Sprintf("a gossip source holds a checkpoint of size %d that the ledger's tiles do not support (the ledger serves size %d)", cp.Size, prev.Size),
			Evidence: ev}
	case err != nil:
		a.log.Warn("couldn't check a gossip checkpoint", "source", src, "err", err)
		return nil
	}
	a.log.Debug("gossip checkpoint consistent", "source", src, "size", cp.Size)
	return nil
}

func (a *Auditor) forkFindingFor(origin string, fe *evidence.ForkError, src string) alert.Finding {
	return alert.Finding{Severity: alert.Critical, Kind: alert.KindFork, Log: origin,
		Message:  fmt.Sprintf("the log signed two inconsistent checkpoints (one from %s): verify with `shiplog verify-evidence`", src),
		Evidence: map[string]string{"fork": string(fe.Evidence.Format()), "source": src}}
}
