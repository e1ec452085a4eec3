package pgstore

import (
	"context"
	"crypto/sha256"
	"sync"

	"github.com/jackc/pgx/v5"
	ledger "github.com/shiplog/shiplog/log"
)

// Index is the ledger's repository index in PostgreSQL (the same contract
// as log.Index, shared by every replica): recording the same entry twice,
// or entries out of order, is harmless; the watermark only moves past an
// index once every entry below it is recorded.
type Index struct{ s *Store }

// Index returns the store's repository index.
func (s *Store) Index() *Index { return &Index{s} }

var _ ledger.IndexStore = (*Index)(nil)

// Watermark returns n such that every entry below index n is recorded.
func (x *Index) Watermark() (uint64, error) {
	ctx, cancel := x.s.ctx()
	defer cancel()
	var n int64
	if err := x.s.pool.QueryRow(ctx, x.s.q(`SELECT n FROM {s}.watermark WHERE id = 1`)).Scan(&n); err != nil {
		return 0, x.s.unavailable("read the index watermark", err)
	}
	return uint64(n), nil
}

// Record durably records entries that are in the log. Concurrent calls of
// this process are committed together in one transaction.
func (x *Index) Record(recs ...ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return x.s.rec.record(recs)
}

// recorder commits concurrent Record calls together: the first caller
// commits everything queued while the previous commit ran.
type recorder struct {
	s       *Store
	mu      sync.Mutex // guards queue and running
	queue   []*recordReq
	running bool
}

type recordReq struct {
	recs []ledger.Record
	done chan error
}

func (r *recorder) record(recs []ledger.Record) error {
	req := &recordReq{recs, make(chan error, 1)}
	r.mu.Lock()
	r.queue = append(r.queue, req)
	if r.running {
		r.mu.Unlock()
		return <-req.done
	}
	r.running = true
	r.mu.Unlock()
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		if len(batch) == 0 {
			r.running = false
			r.mu.Unlock()
			break
		}
		r.mu.Unlock()
		var all []ledger.Record
		for _, b := range batch {
			all = append(all, b.recs...)
		}
		err := r.s.commitRecords(all)
		for _, b := range batch {
			b.done <- err
		}
	}
	return <-req.done
}

// commitRecords applies records in one transaction. It locks the watermark
// row first, so concurrent commits (of any replica) are serialised and
// cannot deadlock on the rows they share.
func (s *Store) commitRecords(recs []ledger.Record) error {
	ctx, cancel := s.ctx()
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var wm int64
		if err := tx.QueryRow(ctx, s.q(`SELECT n FROM {s}.watermark WHERE id = 1 FOR UPDATE`)).Scan(&wm); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, r := range recs {
			e, idx := r.Entry, int64(r.Index)
			leaf := e.LeafHash()
			if e.Role == "root" {
				b.Queue(s.q(`INSERT INTO {s}.repos VALUES ($1, $2) ON CONFLICT (repo) DO UPDATE SET idx = EXCLUDED.idx WHERE {s}.repos.idx > EXCLUDED.idx`), e.Repo, idx)
			}
			b.Queue(s.q(`INSERT INTO {s}.roles VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repo, role) DO UPDATE
				SET version = EXCLUDED.version, sha256 = EXCLUDED.sha256, idx = EXCLUDED.idx WHERE {s}.roles.idx < EXCLUDED.idx`),
				e.Repo, e.Role, int64(e.Version), e.SHA256[:], idx)
			b.Queue(s.q(`INSERT INTO {s}.leaves VALUES ($1, $2) ON CONFLICT (leaf) DO UPDATE SET idx = EXCLUDED.idx WHERE {s}.leaves.idx > EXCLUDED.idx`), leaf[:], idx)
			b.Queue(s.q(`INSERT INTO {s}.hashes VALUES ($1, $2) ON CONFLICT (sha256) DO UPDATE SET idx = EXCLUDED.idx WHERE {s}.hashes.idx > EXCLUDED.idx`), e.SHA256[:], idx)
			if idx >= wm {
				b.Queue(s.q(`INSERT INTO {s}.pending VALUES ($1) ON CONFLICT DO NOTHING`), idx)
			}
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return s.advanceLocked(ctx, tx, wm)
	})
	if err != nil {
		return s.unavailable("record entries in the index", err)
	}
	return nil
}

// advanceLocked moves the watermark over the recorded indexes that follow
// it without a gap.
func (s *Store) advanceLocked(ctx context.Context, tx pgx.Tx, wm int64) error {
	rows, err := tx.Query(ctx, s.q(`SELECT idx FROM {s}.pending WHERE idx >= $1 ORDER BY idx`), wm)
	if err != nil {
		return err
	}
	next := wm
	for rows.Next() {
		var idx int64
		if err := rows.Scan(&idx); err != nil {
			rows.Close()
			return err
		}
		if idx != next {
			break
		}
		next++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if next == wm {
		return nil
	}
	if _, err := tx.Exec(ctx, s.q(`DELETE FROM {s}.pending WHERE idx < $1`), next); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, s.q(`UPDATE {s}.watermark SET n = $1 WHERE id = 1`), next)
	return err
}

// Registered returns the index of repo's first logged root.
func (x *Index) Registered(repo string) (uint64, bool, error) {
	return x.s.lookup(`SELECT idx FROM {s}.repos WHERE repo = $1`, repo)
}

// Role returns the latest logged version of role in repo.
func (x *Index) Role(repo, role string) (ledger.RoleState, bool, error) {
	ctx, cancel := x.s.ctx()
	defer cancel()
	var version, idx int64
	var sum []byte
	err := x.s.pool.QueryRow(ctx, x.s.q(`SELECT version, sha256, idx FROM {s}.roles WHERE repo = $1 AND role = $2`), repo, role).Scan(&version, &sum, &idx)
	if isNoRows(err) {
		return ledger.RoleState{}, false, nil
	}
	if err != nil {
		return ledger.RoleState{}, false, x.s.unavailable("read the index", err)
	}
	if len(sum) != sha256.Size || version < 0 || idx < 0 {
		return ledger.RoleState{}, false, errCorrupt
	}
	return ledger.RoleState{Version: uint64(version), SHA256: [sha256.Size]byte(sum), Index: uint64(idx)}, true, nil
}

var _ ledger.LookupIndex = (*Index)(nil)

// Lookup answers q in one statement (one round trip).
func (x *Index) Lookup(q ledger.Lookup) (ledger.LookupResult, error) {
	ctx, cancel := x.s.ctx()
	defer cancel()
	r := ledger.LookupResult{Roles: make(map[string]ledger.RoleState, len(q.Roles))}
	rows, err := x.s.pool.Query(ctx, x.s.q(`SELECT (SELECT idx FROM {s}.repos WHERE repo = $1), (SELECT idx FROM {s}.leaves WHERE leaf = $2),
		ro.role, ro.version, ro.sha256, ro.idx
		FROM (SELECT 1) AS one LEFT JOIN {s}.roles ro ON ro.repo = $1 AND ro.role = ANY($3::text[])`), q.Repo, q.Leaf[:], q.Roles)
	if err != nil {
		return r, x.s.unavailable("read the index", err)
	}
	defer rows.Close()
	for rows.Next() {
		var reg, leaf, version, idx *int64
		var role *string
		var sum []byte
		if err := rows.Scan(&reg, &leaf, &role, &version, &sum, &idx); err != nil {
			return r, x.s.unavailable("read the index", err)
		}
		r.Registered = reg != nil
		if leaf != nil {
			if *leaf < 0 {
				return r, errCorrupt
			}
			r.LeafIndex, r.Logged = uint64(*leaf), true
		}
		if role == nil {
			continue
		}
		if version == nil || idx == nil || len(sum) != sha256.Size || *version < 0 || *idx < 0 {
			return r, errCorrupt
		}
		r.Roles[*role] = ledger.RoleState{Version: uint64(*version), SHA256: [sha256.Size]byte(sum), Index: uint64(*idx)}
	}
	if err := rows.Err(); err != nil {
		return r, x.s.unavailable("read the index", err)
	}
	return r, nil
}

// Leaf returns the first index holding the entry with leaf hash h.
func (x *Index) Leaf(h [sha256.Size]byte) (uint64, bool, error) {
	return x.s.lookup(`SELECT idx FROM {s}.leaves WHERE leaf = $1`, h[:])
}

// Metadata returns the first index whose entry commits to the metadata
// with SHA-256 sum.
func (x *Index) Metadata(sum [sha256.Size]byte) (uint64, bool, error) {
	return x.s.lookup(`SELECT idx FROM {s}.hashes WHERE sha256 = $1`, sum[:])
}

func (s *Store) lookup(sql string, arg any) (uint64, bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var idx int64
	err := s.pool.QueryRow(ctx, s.q(sql), arg).Scan(&idx)
	if isNoRows(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.unavailable("read the index", err)
	}
	if idx < 0 {
		return 0, false, errCorrupt
	}
	return uint64(idx), true, nil
}
