package pgstore

import (
	"context"
	"crypto/sha256"
	"sync"

	"github.com/jackc/pgx/v5"
)

// writeOp is a kind of write the writer group-commits.
type writeOp int

const (
	writeMetadata       writeOp = iota // insert metadata bytes under their hash
	writeAppending                     // record the entry a repository is appending
	writeClearAppending                // clear it
)

// write is one write waiting to be committed.
type write struct {
	op   writeOp
	sum  [sha256.Size]byte
	repo string
	data []byte
}

// writeReq is one caller's writes, committed in the same batch.
type writeReq struct {
	ops  []write
	done chan error
}

// writer commits concurrent writes together: the first caller commits
// everything queued while the previous commit ran, as one pipelined batch
// of at most three statements (PostgreSQL runs a batch as one implicit
// transaction: all of it commits, or none). A write returns only after the
// commit that holds it, so nothing is acknowledged before it is durable.
type writer struct {
	s       *Store
	mu      sync.Mutex // guards queue and running
	queue   []*writeReq
	running bool
}

// write commits ops, all in one batch, and returns once that batch
// committed (or failed).
func (w *writer) write(ctx context.Context, ops ...write) error {
	op := &writeReq{ops: ops, done: make(chan error, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, op)
	if w.running {
		w.mu.Unlock()
		select {
		case err := <-op.done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.running = true
	w.mu.Unlock()
	for {
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		if len(batch) == 0 {
			w.running = false
			w.mu.Unlock()
			break
		}
		w.mu.Unlock()
		err := w.s.commitWrites(batch)
		for _, b := range batch {
			b.done <- err
		}
	}
	return <-op.done
}

// commitWrites commits writes in one round trip. Of several writes to one
// repository's appending entry, the last queued wins (the repository's
// lock keeps them apart: one caller at a time per repository).
func (s *Store) commitWrites(reqs []*writeReq) error {
	var sums, data, setData [][]byte
	var setRepos, clearRepos []string
	last := map[string]write{}
	for _, r := range reqs {
		for _, w := range r.ops {
			switch w.op {
			case writeMetadata:
				sums, data = append(sums, w.sum[:]), append(data, w.data)
			default:
				last[w.repo] = w
			}
		}
	}
	for repo, w := range last {
		if w.op == writeAppending {
			setRepos, setData = append(setRepos, repo), append(setData, w.data)
		} else {
			clearRepos = append(clearRepos, repo)
		}
	}
	b := &pgx.Batch{}
	if len(sums) > 0 {
		b.Queue(s.q(`INSERT INTO {s}.metadata SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT DO NOTHING`), sums, data)
	}
	if len(setRepos) > 0 {
		b.Queue(s.q(`INSERT INTO {s}.appending (repo, entry) SELECT * FROM unnest($1::text[], $2::bytea[])
			ON CONFLICT (repo) DO UPDATE SET entry = EXCLUDED.entry, created = now()`), setRepos, setData)
	}
	if len(clearRepos) > 0 {
		b.Queue(s.q(`DELETE FROM {s}.appending WHERE repo = ANY($1::text[])`), clearRepos)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	return s.pool.SendBatch(ctx, b).Close()
}
