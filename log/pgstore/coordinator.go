package pgstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	ledger "github.com/shiplog/shiplog/log"
)

// leaderCheckInterval is how often a leader checks that its session (and
// so its lock) is alive, and how often a follower tries to take over.
const leaderCheckInterval = 250 * time.Millisecond

// Coordinator lets ledger replicas share one log (log.Coordinator):
// repository locks are PostgreSQL session advisory locks, released when
// the holder unlocks or its session ends (a replica that dies releases
// its locks); the entry being appended for each repository is a row in
// the appending table; the publisher's leader holds an advisory lock on a
// dedicated connection.
type Coordinator struct{ s *Store }

// Coordinator returns the store's coordinator.
func (s *Store) Coordinator() *Coordinator { return &Coordinator{s} }

var _ ledger.Coordinator = (*Coordinator)(nil)

// LockRepository waits for repo's lock (across replicas) or for ctx to end,
// and returns the entry left appending for repo (or nil), read once the
// lock is held: both in one round trip (a pipelined batch; the read takes
// its snapshot after the lock statement returned). It holds one connection
// of the lock pool until unlock.
func (c *Coordinator) LockRepository(ctx context.Context, repo string) (func(), []byte, error) {
	unlock, appending, _, err := c.lock(ctx, repo, nil)
	return unlock, appending, err
}

var _ interface {
	LockRepositoryLookup(ctx context.Context, repo string, q ledger.Lookup) (func(), []byte, ledger.LookupResult, error)
	LooksUpIn(x ledger.IndexStore) bool
} = (*Coordinator)(nil)

// LockRepositoryLookup is LockRepository that also answers q from the
// store's index (as Index.Lookup does), read once the lock is held, in the
// same round trip.
func (c *Coordinator) LockRepositoryLookup(ctx context.Context, repo string, q ledger.Lookup) (func(), []byte, ledger.LookupResult, error) {
	return c.lock(ctx, repo, &q)
}

// LooksUpIn reports whether LockRepositoryLookup reads x: x is the Index
// of the same Store.
func (c *Coordinator) LooksUpIn(x ledger.IndexStore) bool {
	i, ok := x.(*Index)
	return ok && i.s == c.s
}

// lock takes repo's advisory lock and reads, in the same pipelined batch,
// the appending entry and (q non-nil) the answer to q. Each read is its
// own statement: in READ COMMITTED its snapshot is taken when it starts,
// after the lock statement returned, so it sees every write committed by
// the lock's previous holder.
func (c *Coordinator) lock(ctx context.Context, repo string, q *ledger.Lookup) (func(), []byte, ledger.LookupResult, error) {
	var found ledger.LookupResult
	conn, err := c.s.locks.Acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, found, ctx.Err()
		}
		return nil, nil, found, c.s.unavailable("lock the repository", err)
	}
	key := c.s.lockKey("repo", repo)
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_lock($1)`, key)
	b.Queue(c.s.q(`SELECT entry FROM {s}.appending WHERE repo = $1`), repo)
	if q != nil {
		b.Queue(c.s.q(lookupSQL), lookupArgs(*q)...)
	}
	br := conn.SendBatch(ctx, b)
	_, err = br.Exec()
	var appending []byte
	if err == nil {
		if err = br.QueryRow().Scan(&appending); isNoRows(err) {
			appending, err = nil, nil
		}
	}
	if err == nil && q != nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			found, err = c.s.scanLookup(rows)
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		destroy(conn.Conn()) // ending the session releases the lock if it was taken
		conn.Release()
		if ctx.Err() != nil {
			return nil, nil, found, ctx.Err()
		}
		if errors.Is(err, errCorrupt) {
			return nil, nil, found, err
		}
		return nil, nil, found, c.s.unavailable("lock the repository", err)
	}
	return func() {
		uctx, cancel := c.s.ctx()
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			destroy(conn.Conn()) // ending the session releases the lock
		}
		conn.Release()
	}, appending, found, nil
}

// destroy closes a connection so that the pool discards it.
func destroy(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}

// Appending returns the entry being appended for repo, or nil.
func (c *Coordinator) Appending(ctx context.Context, repo string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.s.timeout)
	defer cancel()
	var e []byte
	err := c.s.pool.QueryRow(ctx, c.s.q(`SELECT entry FROM {s}.appending WHERE repo = $1`), repo).Scan(&e)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.s.unavailable("read the appending entry", err)
	}
	return e, nil
}

// SetAppending durably records entry as being appended for repo; a nil
// entry clears it. Concurrent calls (and MetadataStore.Put calls) of this
// process are committed together, in one round trip.
func (c *Coordinator) SetAppending(ctx context.Context, repo string, entry []byte) error {
	op := writeAppending
	if entry == nil {
		op = writeClearAppending
	}
	if err := c.s.w.write(ctx, write{op: op, repo: repo, data: entry}); err != nil {
		return c.s.unavailable("record the appending entry", err)
	}
	return nil
}

// SetAppendingWithMetadata durably records entry as being appended for
// repo and stores its metadata (at most log.MaxMetadataSize bytes, as
// MetadataStore.Put does) in one transaction: both or neither. Committed
// together with concurrent writes of this process, in one round trip.
func (c *Coordinator) SetAppendingWithMetadata(ctx context.Context, repo string, entry, metadata []byte) error {
	if len(metadata) > ledger.MaxMetadataSize {
		return ledger.ErrTooLarge
	}
	if entry == nil {
		return errors.New("no appending entry")
	}
	err := c.s.w.write(ctx,
		write{op: writeMetadata, sum: sha256.Sum256(metadata), data: metadata},
		write{op: writeAppending, repo: repo, data: entry})
	if err != nil {
		return c.s.unavailable("store metadata and record the appending entry", err)
	}
	return nil
}

// StoresMetadataFor reports whether SetAppendingWithMetadata stores the
// metadata that m reads: m is a MetadataStore of the same Store.
func (c *Coordinator) StoresMetadataFor(m ledger.MetadataStorage) bool {
	ms, ok := m.(*MetadataStore)
	return ok && ms.s == c.s
}

// Lead reports whether this replica leads the publisher, trying to take
// the lead when no session holds it. A leader re-checks its session every
// leaderCheckInterval and steps down when it broke (PostgreSQL then
// released the lock, and another replica may take it).
func (c *Coordinator) Lead(ctx context.Context) (bool, error) {
	s := c.s
	s.leadMu.Lock()
	defer s.leadMu.Unlock()
	if time.Since(s.leadChecked) < leaderCheckInterval {
		return s.leading, nil
	}
	s.leadChecked = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if s.leadConn == nil {
		conn, err := pgx.Connect(ctx, s.uri)
		if err != nil {
			s.leading = false
			return false, c.s.unavailable("connect for the leader election", err)
		}
		s.leadConn = conn
	}
	var ok bool
	var err error
	if s.leading { // the lock is held by this session while it lives
		err = s.leadConn.QueryRow(ctx, `SELECT true`).Scan(&ok)
	} else {
		err = s.leadConn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, s.lockKey("leader", "")).Scan(&ok)
	}
	if err != nil {
		destroy(s.leadConn)
		s.leadConn, s.leading = nil, false
		return false, c.s.unavailable("check the leader election", err)
	}
	if ok && !s.leading {
		s.log.Info("this replica now leads the checkpoint publisher")
	}
	s.leading = ok
	return ok, nil
}
