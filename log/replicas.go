package log

import (
	"context"
	"fmt"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
)

// Intervals of the publisher when replicas share the log (Coordinator set).
const (
	// followInterval is how often a replica that does not lead reads the
	// latest cosigned checkpoint from the shared state.
	followInterval = 50 * time.Millisecond
	// catchUpInterval is how often the leader checks that the index's
	// watermark moves; one that stood still below the log's size since the
	// last check means an entry whose replica died before indexing it, and
	// the leader replays the log into the index.
	catchUpInterval = 2 * time.Second
)

// runState is the publisher's own state, touched only by Run's goroutine.
type runState struct {
	leading     bool
	lastFollow  time.Time
	lastCatchUp time.Time
	lastWM      uint64
	// lastLogRaw and lastLogCP are the log's last checkpoint as read and
	// as verified (publishOnce verifies a checkpoint once).
	lastLogRaw []byte
	lastLogCP  *checkpoint.Signed
}

// round runs one round of Run: without a coordinator, publishOnce; with
// one, the leader publishes (after taking over the latest cosigned
// checkpoint when it just became leader) and the others follow.
func (l *Ledger) round(ctx context.Context) error {
	if l.coord == nil {
		return l.publishOnce(ctx)
	}
	lead, err := l.coord.Lead(ctx)
	if err != nil {
		l.run.leading = false
		return err
	}
	if !lead {
		l.run.leading = false
		if time.Since(l.run.lastFollow) < followInterval {
			return nil
		}
		l.run.lastFollow = time.Now()
		return l.follow(ctx)
	}
	if !l.run.leading {
		l.log.Info("leading the checkpoint publisher")
		if err := l.follow(ctx); err != nil {
			return err
		}
		l.run.leading = true
	}
	if err := l.publishOnce(ctx); err != nil {
		return err
	}
	return l.checkWatermark(ctx)
}

// follow serves the latest cosigned checkpoint that the leader saved, once
// it verifies under the policy and extends the one served now.
func (l *Ledger) follow(ctx context.Context) error {
	b, err := l.state.Load(ctx, CosignedCheckpoint)
	if err != nil || b == nil {
		return err
	}
	c, err := evidence.VerifyCheckpoint(b, l.policy)
	if err != nil {
		return fmt.Errorf("the shared cosigned checkpoint does not verify: %w", err)
	}
	prev := l.published()
	if prev != nil {
		if c.Size == prev.cp.Size && c.Hash != prev.cp.Hash {
			return fmt.Errorf("the shared state holds two roots for size %d", c.Size)
		}
		if c.Size < prev.cp.Size || c.Size == prev.cp.Size && prev.note != nil {
			return nil
		}
		if err := l.consistent(ctx, prev.cp, c.Signed); err != nil {
			return fmt.Errorf("the shared cosigned checkpoint does not extend the served one: %w", err)
		}
	}
	l.setPublished(&published{note: b, cp: c.Signed})
	return nil
}

// checkWatermark replays the log into the index when the watermark stood
// still below the log's size for a catchUpInterval.
func (l *Ledger) checkWatermark(ctx context.Context) error {
	if time.Since(l.run.lastCatchUp) < catchUpInterval {
		return nil
	}
	l.run.lastCatchUp = time.Now()
	wm, err := l.index.Watermark()
	if err != nil {
		return err
	}
	stuck := wm == l.run.lastWM
	l.run.lastWM = wm
	if !stuck {
		return nil
	}
	size, err := l.store.IntegratedSize(ctx)
	if err != nil || size <= wm {
		return err
	}
	return l.catchUp(ctx)
}
