package log

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
)

// Files of the ledger's checkpoint state in Config.StateDir. The signed
// file is the last log-signed checkpoint sent to the witnesses; the
// cosigned file is the last checkpoint published at /checkpoint. Each is
// written durably before the next step (sending, publishing), so a restart
// can check that the log did not roll back and that every published
// checkpoint is consistent with the next.
const (
	SignedCheckpointFile   = "checkpoint.signed"
	CosignedCheckpointFile = "checkpoint.cosigned"
	maxWaiters             = 1 << 16
)

// published is a checkpoint that met the policy quorum.
type published struct {
	note []byte
	cp   *checkpoint.Signed
}

func (l *Ledger) published() *published {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pub
}

// catchUp records in the index every logged entry it lacks, reading the
// log's entry bundles from the index's watermark to the integrated size.
func (l *Ledger) catchUp(ctx context.Context) error {
	wm, err := l.index.Watermark()
	if err != nil {
		return err
	}
	size, err := l.store.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the log size: %w", err)
	}
	if wm > size {
		return fmt.Errorf("index covers %d entries but the log has %d: the index belongs to another log or the log was rolled back", wm, size)
	}
	if wm < size {
		l.log.Info("replaying log into the index", "from", wm, "to", size)
	}
	for wm < size {
		bundle := wm / 256
		width := uint8(0)
		if (bundle+1)*256 > size {
			width = uint8(size % 256)
		}
		b, err := l.store.ReadEntryBundle(ctx, bundle, width)
		if err != nil {
			return fmt.Errorf("couldn't read entry bundle %d: %w", bundle, err)
		}
		entries, err := ParseBundle(b)
		if err != nil {
			return fmt.Errorf("entry bundle %d: %w", bundle, err)
		}
		var recs []Record
		for i := wm % 256; i < uint64(len(entries)); i++ {
			r, err := ParseRecord(bundle*256+i, entries[i])
			if err != nil {
				return fmt.Errorf("log entry %d is not a shiplog entry: %w", bundle*256+i, err)
			}
			recs = append(recs, r)
		}
		if err := l.index.Record(recs...); err != nil {
			return err
		}
		wm = bundle*256 + uint64(len(entries))
	}
	return nil
}

// loadState checks the log's checkpoint against the last signed and
// cosigned checkpoints and publishes the cosigned one if it still meets the
// policy.
func (l *Ledger) loadState(ctx context.Context) error {
	raw, err := l.store.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the log's checkpoint: %w", err)
	}
	head, err := checkpoint.Open(raw, l.origin, l.logKey)
	if err != nil {
		return fmt.Errorf("log checkpoint does not verify with the log key: %w", err)
	}
	for _, kind := range []CheckpointKind{SignedCheckpoint, CosignedCheckpoint} {
		name := string(kind) + " checkpoint"
		b, err := l.state.Load(ctx, kind)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		s, err := checkpoint.Open(b, l.origin, l.logKey, l.policy.WitnessVerifiers()...)
		if err != nil {
			return fmt.Errorf("%s does not verify with the log key: %w", name, err)
		}
		if s.Size > head.Size {
			return fmt.Errorf("%s has size %d but the log's checkpoint only %d: the log was rolled back", name, s.Size, head.Size)
		}
		if err := l.consistent(ctx, s, head); err != nil {
			return fmt.Errorf("%s is not consistent with the log: %w", name, err)
		}
		if kind != CosignedCheckpoint {
			continue
		}
		if _, err := evidence.VerifyCheckpoint(b, l.policy); err != nil {
			l.log.Warn("last cosigned checkpoint does not meet the current witness policy; waiting for a new one", "size", s.Size, "err", err)
			l.pub = &published{cp: s} // kept for consistency, not served
			continue
		}
		l.pub = &published{note: b, cp: s}
		l.m.cosignedSize.Set(float64(s.Size))
	}
	return nil
}

// consistent checks that b extends a, with a proof from the storage.
func (l *Ledger) consistent(ctx context.Context, a, b *checkpoint.Signed) error {
	var hs [][sha256.Size]byte
	if a.Size < b.Size && a.Size > 0 {
		p, err := l.store.ConsistencyProof(ctx, a.Size, b.Size)
		if err != nil {
			return err
		}
		for _, h := range p {
			if len(h) != sha256.Size {
				return errors.New("malformed consistency proof")
			}
			hs = append(hs, [sha256.Size]byte(h))
		}
	}
	return evidence.CheckConsistency(a, b, hs)
}

// Run publishes checkpoints until ctx ends: it polls the storage for a
// new log-signed checkpoint, checks it extends the last published one,
// persists it, gathers cosignatures, verifies them against the policy,
// persists the cosigned note and publishes it. A failed round (a witness
// quorum not reached) is retried with backoff from 100 ms to 5 s; the log
// keeps growing meanwhile, and the next round sends the newest checkpoint.
func (l *Ledger) Run(ctx context.Context) error {
	t := time.NewTicker(l.poll)
	defer t.Stop()
	var backoff time.Duration
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if time.Now().Before(next) {
			continue
		}
		if err := l.round(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			next = time.Now().Add(backoff)
			l.m.cosignFailures.Inc()
			l.log.Warn("couldn't publish a cosigned checkpoint", "err", err, "retry_in", backoff)
			continue
		}
		backoff = 0
	}
}

// RecentCheckpointer is a Storage whose checkpoint can be read from a
// recent state of the log, cheaper than Checkpoint: log/trillian's shares
// root reads from Trillian. The publisher polls it; the checkpoint may lag
// the log by a poll interval of the storage.
type RecentCheckpointer interface {
	RecentCheckpoint(ctx context.Context) ([]byte, error)
}

// publishOnce runs one round of Run.
func (l *Ledger) publishOnce(ctx context.Context) error {
	read := l.store.Checkpoint
	if rc, ok := l.store.(RecentCheckpointer); ok {
		read = rc.RecentCheckpoint
	}
	raw, err := read(ctx)
	if err != nil {
		return err
	}
	// The log's checkpoint changes a few times a second while this runs
	// every PollInterval: verify each one once.
	s := l.run.lastLogCP
	if s == nil || !bytes.Equal(raw, l.run.lastLogRaw) {
		if s, err = checkpoint.Open(raw, l.origin, l.logKey); err != nil {
			return fmt.Errorf("log checkpoint does not verify: %w", err)
		}
		l.run.lastLogRaw, l.run.lastLogCP = raw, s
	}
	prev := l.published()
	if prev != nil && s.Size == prev.cp.Size && s.Hash != prev.cp.Hash {
		return fmt.Errorf("log signed two roots for size %d", s.Size)
	}
	// Nothing new to publish, unless the last cosigned checkpoint no longer
	// meets the policy (then the same size is cosigned again).
	if prev != nil && (s.Size < prev.cp.Size || s.Size == prev.cp.Size && prev.note != nil) {
		return nil
	}
	if prev != nil {
		if err := l.consistent(ctx, prev.cp, s); err != nil {
			return fmt.Errorf("new checkpoint does not extend the published one: %w", err)
		}
	}
	if err := l.state.Save(ctx, SignedCheckpoint, s.Size, raw); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, l.cosignLimit)
	defer cancel()
	cosigned, err := l.cosigner.Cosign(cctx, raw)
	if err != nil {
		return fmt.Errorf("couldn't gather cosignatures for size %d: %w", s.Size, err)
	}
	c, err := evidence.VerifyCheckpoint(cosigned, l.policy)
	if err != nil {
		return fmt.Errorf("cosigned checkpoint of size %d does not verify: %w", s.Size, err)
	}
	if c.Size != s.Size || c.Hash != s.Hash {
		return errors.New("cosigner returned another checkpoint")
	}
	if err := l.state.Save(ctx, CosignedCheckpoint, c.Size, cosigned); err != nil {
		return err
	}
	l.setPublished(&published{note: cosigned, cp: c.Signed})
	return nil
}

// setPublished makes p the served checkpoint and wakes the waiters.
func (l *Ledger) setPublished(p *published) {
	now := time.Now()
	l.mu.Lock()
	l.pub = p
	ch := l.changed
	l.changed = make(chan struct{})
	kept := l.waiting[:0]
	for _, w := range l.waiting {
		if w.index < p.cp.Size {
			l.m.cosignedLatency.Observe(now.Sub(w.start).Seconds())
		} else {
			kept = append(kept, w)
		}
	}
	l.waiting = kept
	l.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	l.m.cosignedSize.Set(float64(p.cp.Size))
}

// waitCovered waits until a served checkpoint covers index.
func (l *Ledger) waitCovered(ctx context.Context, index uint64) (*published, error) {
	for {
		l.mu.Lock()
		p := l.pub
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		if p != nil && p.note != nil && index < p.cp.Size {
			return p, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ErrNotCovered
		}
	}
}

// trackLatency remembers when the submission of index started, for the
// latency-to-cosigned-checkpoint metric.
func (l *Ledger) trackLatency(index uint64, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.waiting) >= maxWaiters {
		l.waiting = l.waiting[1:]
	}
	l.waiting = append(l.waiting, waiter{index, start})
}

// ParseBundle splits a tlog-tiles entry bundle (uint16 big-endian length,
// entry, repeated) into at most 256 entries.
func ParseBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 || len(out) == 256 {
			return nil, errors.New("malformed entry bundle")
		}
		n := int(b[0])<<8 | int(b[1])
		if len(b)-2 < n {
			return nil, errors.New("malformed entry bundle")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}
