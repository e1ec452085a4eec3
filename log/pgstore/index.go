package pgstore

import (
	"crypto/sha256"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/signoff"
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

// ClearsAppendingOf reports whether Record clears the appending entries
// that c records: c is the Coordinator of the same Store.
func (x *Index) ClearsAppendingOf(c ledger.Coordinator) bool {
	pc, ok := c.(*Coordinator)
	return ok && pc.s == x.s
}

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
// this process are committed together in one transaction, which also
// clears each entry's repository's appending entry (Coordinator) where it
// is that entry: once indexed, it needs no finishing.
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

// commitRecords applies records in one round trip: a pipelined batch that
// PostgreSQL runs as one implicit transaction (all of it commits, or
// none). It locks the watermark row first, so concurrent commits (of any
// replica) are serialised and cannot deadlock on the rows they share; each
// table gets one multi-row statement; then the watermark moves over the
// recorded indexes that follow it without a gap.
func (s *Store) commitRecords(recs []ledger.Record) error {
	n := len(recs)
	var (
		idxs                = make([]int64, n)
		repos, roles        = make([]string, n), make([]string, n)
		entryRepos          = make([]string, n)
		entries             = make([][]byte, n)
		versions            = make([]int64, n)
		sums, leaves        = make([][]byte, n), make([][]byte, n)
		rootRepos           []string
		rootIdxs            []int64
		roleKeys            = map[[2]string]int{} // (repo, role) -> position of its latest record
		roleRepos, roleName []string
		roleVer, roleIdx    []int64
		roleSum             [][]byte
		att                 attestationRows
	)
	for i, r := range recs {
		raw := r.Format()
		leaf := entry.LeafHash(raw)
		idxs[i], leaves[i] = int64(r.Index), leaf[:]
		entryRepos[i], entries[i] = r.Repo(), raw
		if a := r.Attestation; a != nil { // a sign-off attestation: no role
			sums[i] = a.SHA256[:]
			att.add(r.Index, *a)
			continue
		}
		e := r.Entry
		repos[i], roles[i], versions[i] = e.Repo, e.Role, int64(e.Version)
		sums[i] = e.SHA256[:]
		if e.Role == "root" {
			rootRepos, rootIdxs = append(rootRepos, e.Repo), append(rootIdxs, int64(r.Index))
		}
		// One row per (repo, role) in a statement: ON CONFLICT DO UPDATE
		// cannot touch a row twice. The latest by log position wins.
		k := [2]string{e.Repo, e.Role}
		if j, ok := roleKeys[k]; !ok || idxs[j] < idxs[i] {
			roleKeys[k] = i
		}
	}
	for k, i := range roleKeys {
		roleRepos, roleName = append(roleRepos, k[0]), append(roleName, k[1])
		roleVer, roleIdx, roleSum = append(roleVer, versions[i]), append(roleIdx, idxs[i]), append(roleSum, sums[i])
	}
	b := &pgx.Batch{}
	b.Queue(s.q(`SELECT n FROM {s}.watermark WHERE id = 1 FOR UPDATE`))
	if len(rootRepos) > 0 {
		b.Queue(s.q(`INSERT INTO {s}.repos SELECT * FROM (SELECT repo, min(idx) FROM unnest($1::text[], $2::bigint[]) AS t(repo, idx) GROUP BY repo) AS u
			ON CONFLICT (repo) DO UPDATE SET idx = EXCLUDED.idx WHERE {s}.repos.idx > EXCLUDED.idx`), rootRepos, rootIdxs)
	}
	b.Queue(s.q(`INSERT INTO {s}.roles SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::bigint[])
		ON CONFLICT (repo, role) DO UPDATE SET version = EXCLUDED.version, sha256 = EXCLUDED.sha256, idx = EXCLUDED.idx WHERE {s}.roles.idx < EXCLUDED.idx`),
		roleRepos, roleName, roleVer, roleSum, roleIdx)
	if len(att.idx) > 0 {
		b.Queue(s.q(`INSERT INTO {s}.attestations SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bytea[], $5::bytea[], $6::bigint[], $7::text[])
			ON CONFLICT DO NOTHING`), att.repo, att.subject, att.idx, att.key, att.sum, att.length, att.verdict)
	}
	b.Queue(s.q(`INSERT INTO {s}.leaves SELECT leaf, min(idx) FROM unnest($1::bytea[], $2::bigint[]) AS t(leaf, idx) GROUP BY leaf
		ON CONFLICT (leaf) DO UPDATE SET idx = EXCLUDED.idx WHERE {s}.leaves.idx > EXCLUDED.idx`), leaves, idxs)
	b.Queue(s.q(`INSERT INTO {s}.hashes SELECT sha256, min(idx) FROM unnest($1::bytea[], $2::bigint[]) AS t(sha256, idx) GROUP BY sha256
		ON CONFLICT (sha256) DO UPDATE SET idx = EXCLUDED.idx WHERE {s}.hashes.idx > EXCLUDED.idx`), sums, idxs)
	b.Queue(s.q(`INSERT INTO {s}.pending SELECT idx FROM unnest($1::bigint[]) AS t(idx)
		WHERE idx >= (SELECT n FROM {s}.watermark WHERE id = 1) ON CONFLICT DO NOTHING`), idxs)
	// The pending indexes from the watermark on, numbered in order: those
	// equal to watermark + their number - 1 follow it without a gap.
	b.Queue(s.q(`UPDATE {s}.watermark w SET n = w.n + (SELECT count(*) FROM
		(SELECT idx - row_number() OVER (ORDER BY idx) + 1 AS start FROM {s}.pending WHERE idx >= w.n) AS p WHERE p.start = w.n)
		WHERE id = 1`))
	b.Queue(s.q(`DELETE FROM {s}.pending WHERE idx < (SELECT n FROM {s}.watermark WHERE id = 1)`))
	// An appending entry that is now indexed needs no finishing. Only that
	// exact entry: the repository's next one may be appending already.
	b.Queue(s.q(`DELETE FROM {s}.appending a USING unnest($1::text[], $2::bytea[]) AS t(repo, entry)
		WHERE a.repo = t.repo AND a.entry = t.entry`), entryRepos, entries)
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return s.unavailable("record entries in the index", err)
	}
	return nil
}

// attestationRows are the columns of the attestations table for a batch.
type attestationRows struct {
	repo, verdict     []string
	subject, key, sum [][]byte
	idx, length       []int64
}

func (r *attestationRows) add(index uint64, a signoff.Entry) {
	r.repo, r.verdict = append(r.repo, a.Repo), append(r.verdict, a.Verdict)
	r.subject, r.key, r.sum = append(r.subject, a.Subject[:]), append(r.key, a.Key[:]), append(r.sum, a.SHA256[:])
	r.idx, r.length = append(r.idx, int64(index)), append(r.length, int64(a.Length))
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
	rows, err := x.s.pool.Query(ctx, x.s.q(lookupSQL), lookupArgs(q)...)
	if err != nil {
		return ledger.LookupResult{}, x.s.unavailable("read the index", err)
	}
	return x.s.scanLookup(rows)
}

// lookupSQL answers a ledger.Lookup (arguments: lookupArgs) in one
// statement: a row per logged role asked for, or one row of nulls.
const lookupSQL = `SELECT (SELECT idx FROM {s}.repos WHERE repo = $1), (SELECT idx FROM {s}.leaves WHERE leaf = $2),
	ro.role, ro.version, ro.sha256, ro.idx
	FROM (SELECT 1) AS one LEFT JOIN {s}.roles ro ON ro.repo = $1 AND ro.role = ANY($3::text[])`

func lookupArgs(q ledger.Lookup) []any { return []any{q.Repo, q.Leaf[:], q.Roles} }

// scanLookup reads the rows of lookupSQL and closes them.
func (s *Store) scanLookup(rows pgx.Rows) (ledger.LookupResult, error) {
	defer rows.Close()
	r := ledger.LookupResult{Roles: map[string]ledger.RoleState{}}
	for rows.Next() {
		var reg, leaf, version, idx *int64
		var role *string
		var sum []byte
		if err := rows.Scan(&reg, &leaf, &role, &version, &sum, &idx); err != nil {
			return r, s.unavailable("read the index", err)
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
		return r, s.unavailable("read the index", err)
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

// Attestations returns the attestations recorded for subject in repo at
// indexes below below, in log order, only those by keys (all when keys is
// empty), at most max, and whether more matched.
func (x *Index) Attestations(repo string, subject [sha256.Size]byte, keys []signoff.KeyID, below uint64, max int) ([]ledger.AttestationRecord, bool, error) {
	ctx, cancel := x.s.ctx()
	defer cancel()
	ks := make([][]byte, len(keys))
	for i := range keys {
		ks[i] = keys[i][:]
	}
	rows, err := x.s.pool.Query(ctx, x.s.q(`SELECT idx, key, sha256, length, verdict FROM {s}.attestations
		WHERE repo = $1 AND subject = $2 AND idx < $3 AND (cardinality($4::bytea[]) = 0 OR key = ANY($4::bytea[]))
		ORDER BY idx LIMIT $5`), repo, subject[:], int64(min(below, 1<<63-1)), ks, max+1)
	if err != nil {
		return nil, false, x.s.unavailable("read the index", err)
	}
	defer rows.Close()
	var recs []ledger.AttestationRecord
	for rows.Next() {
		var idx, length int64
		var key, sum []byte
		var verdict string
		if err := rows.Scan(&idx, &key, &sum, &length, &verdict); err != nil {
			return nil, false, x.s.unavailable("read the index", err)
		}
		if idx < 0 || length < 0 || len(key) != sha256.Size || len(sum) != sha256.Size {
			return nil, false, errCorrupt
		}
		e := signoff.Entry{Repo: repo, Subject: subject, Verdict: verdict, Key: signoff.KeyID(key), SHA256: [sha256.Size]byte(sum), Length: uint64(length)}
		if e.Validate() != nil {
			return nil, false, errCorrupt
		}
		recs = append(recs, ledger.AttestationRecord{Index: uint64(idx), Entry: e})
	}
	if err := rows.Err(); err != nil {
		return nil, false, x.s.unavailable("read the index", err)
	}
	if len(recs) > max {
		return recs[:max], true, nil
	}
	return recs, false, nil
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
