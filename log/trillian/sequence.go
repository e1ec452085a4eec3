package trillian

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// sequencer tells waiting appends the index Trillian's signer gave their
// leaf. One goroutine follows the tree while appends wait: it asks for the
// latest root every poll interval and reads the new leaves with
// GetLeavesByRange, so each leaf is read once per replica however many
// appends wait, instead of one GetInclusionProofByHash per append per poll.
type sequencer struct {
	s    *Storage
	poll time.Duration

	mu      sync.Mutex // guards waiters
	waiters map[[sha256.Size]byte][]*waiter
	wake    chan struct{}
	stopc   chan struct{}
	stopped chan struct{}
}

// waiter is an append waiting for its leaf at an index of at least from.
type waiter struct {
	hash [sha256.Size]byte
	from uint64
	ch   chan uint64 // buffered: receives the index once
	sent bool
}

// maxScanPerRound bounds the leaves one round reads before it looks at
// the waiters again.
const maxScanPerRound = 16 * maxLeavesPerRead

func newSequencer(s *Storage, poll time.Duration) *sequencer {
	q := &sequencer{
		s: s, poll: poll, waiters: map[[sha256.Size]byte][]*waiter{},
		wake: make(chan struct{}, 1), stopc: make(chan struct{}), stopped: make(chan struct{}),
	}
	go q.run()
	return q
}

// wait registers a waiter for the leaf with hash h, which will be
// sequenced at index from or later. Call it before queueing the leaf.
func (q *sequencer) wait(h [sha256.Size]byte, from uint64) *waiter {
	w := &waiter{hash: h, from: from, ch: make(chan uint64, 1)}
	q.mu.Lock()
	q.waiters[h] = append(q.waiters[h], w)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return w
}

// cancel forgets w (after it was answered or gave up).
func (q *sequencer) cancel(w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.removeLocked(w)
}

func (q *sequencer) removeLocked(w *waiter) {
	ws := q.waiters[w.hash]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(q.waiters, w.hash)
	} else {
		q.waiters[w.hash] = ws
	}
}

func (q *sequencer) stop() {
	close(q.stopc)
	<-q.stopped
}

func (q *sequencer) run() {
	defer close(q.stopped)
	t := time.NewTicker(q.poll)
	defer t.Stop()
	for {
		if q.idle() {
			select {
			case <-q.wake:
			case <-q.stopc:
				return
			}
		}
		select {
		case <-t.C:
		case <-q.stopc:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
		if err := q.round(ctx); err != nil {
			q.s.log.Debug("trillian follower: couldn't read new leaves", "err", err)
		}
		cancel()
	}
}

func (q *sequencer) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiters) == 0
}

// round reads the leaves sequenced since the oldest waiter's from and
// answers the waiters whose leaf it finds.
func (q *sequencer) round(ctx context.Context) error {
	q.mu.Lock()
	lo, any := uint64(0), false
	for _, ws := range q.waiters {
		for _, w := range ws {
			if !any || w.from < lo {
				lo, any = w.from, true
			}
		}
	}
	q.mu.Unlock()
	if !any {
		return nil
	}
	// A root the publisher read within half a poll is as good as a new one.
	r, err := q.s.recentRoot(ctx, q.poll/2)
	if err != nil {
		return err
	}
	hi := min(r.TreeSize, lo+maxScanPerRound)
	for start := lo; start < hi; {
		leaves, err := q.s.leaves(ctx, start, min(hi-start, maxLeavesPerRead))
		if err != nil {
			return err
		}
		q.match(start, leaves)
		start += uint64(len(leaves))
	}
	q.advance(hi)
	return nil
}

// match answers the waiters of the leaves starting at index start.
func (q *sequencer) match(start uint64, leaves []leaf) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, l := range leaves {
		idx := start + uint64(i)
		for _, w := range q.waiters[l.hash] {
			if w.from <= idx && !w.sent {
				w.sent = true
				w.ch <- idx
				q.removeLocked(w)
			}
		}
	}
}

// advance records that every leaf below hi has been looked at.
func (q *sequencer) advance(hi uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ws := range q.waiters {
		for _, w := range ws {
			w.from = max(w.from, hi)
		}
	}
}
