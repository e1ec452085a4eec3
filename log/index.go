package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/pidlock"
	bolt "go.etcd.io/bbolt"
)

// Index is the ledger's durable index of its log, kept in bbolt: which
// repositories are registered, the latest logged version of each role,
// which index holds a given leaf hash or metadata (or envelope) hash, and
// the sign-off attestations of each (repository, subject). It is derived from
// the log only: Record is called after an entry is durably in the log, and
// Watermark tells how far the index is known to be complete, so that the
// ledger can replay the rest of the log into it on startup. Recording the
// same entry twice is harmless. It is safe for concurrent use.
type Index struct {
	db   *bolt.DB
	lock *pidlock.Lock
}

var _ LookupIndex = (*Index)(nil)

var (
	bucketState   = []byte("state")
	bucketPending = []byte("pending")
	bucketRepos   = []byte("repos")
	bucketRoles   = []byte("roles")
	bucketLeaves  = []byte("leaves")
	bucketHashes  = []byte("hashes")
	bucketAttests = []byte("attestations")
	keyWatermark  = []byte("watermark")
)

// RoleState is the latest logged entry of one role of one repository, by
// position in the log (not necessarily its highest version: a rotation of
// the role's keys starts its versions again, docs/spec/versions.md).
type RoleState struct {
	Version uint64
	SHA256  [sha256.Size]byte
	Index   uint64
}

// Record is one log entry at its index: a release (Entry), or a sign-off
// attestation (Attestation non-nil, Entry zero).
type Record struct {
	Index       uint64
	Entry       entry.Entry
	Attestation *signoff.Entry
}

// ParseRecord parses the logged entry raw at index, of either kind (told
// apart by its header, entry.Kind). An entry of another kind is an error:
// this ledger logs only these two.
func ParseRecord(index uint64, raw []byte) (Record, error) {
	switch entry.Kind(raw) {
	case entry.Header:
		e, err := entry.Parse(raw)
		return Record{Index: index, Entry: e}, err
	case entry.AttestationHeader:
		a, err := signoff.ParseEntry(raw)
		return Record{Index: index, Attestation: &a}, err
	}
	return Record{}, errors.New("unknown log entry kind")
}

// Format returns the entry's encoding.
func (r Record) Format() []byte {
	if r.Attestation != nil {
		return r.Attestation.Format()
	}
	return r.Entry.Format()
}

// LeafHash returns the entry's RFC 6962 leaf hash.
func (r Record) LeafHash() [sha256.Size]byte { return entry.LeafHash(r.Format()) }

// Repo returns the entry's repository id.
func (r Record) Repo() string {
	if r.Attestation != nil {
		return r.Attestation.Repo
	}
	return r.Entry.Repo
}

// Content returns the SHA-256 of the bytes the entry commits to, kept in
// the metadata store: the metadata file of a release, the envelope of an
// attestation.
func (r Record) Content() [sha256.Size]byte {
	if r.Attestation != nil {
		return r.Attestation.SHA256
	}
	return r.Entry.SHA256
}

// AttestationRecord is one logged attestation entry at its index.
type AttestationRecord struct {
	Index uint64
	Entry signoff.Entry
}

// OpenIndex opens or creates the index file at path. It fails at once with
// a *pidlock.HeldError ("already running (pid …)") if another process
// serves it (the lock file is path + ".lock").
func OpenIndex(path string) (*Index, error) {
	lock, err := pidlock.Acquire(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("couldn't open index %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("couldn't open index %s: %w", path, err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketState, bucketPending, bucketRepos, bucketRoles, bucketLeaves, bucketHashes, bucketAttests} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		lock.Release()
		return nil, fmt.Errorf("couldn't initialise index: %w", err)
	}
	return &Index{db: db, lock: lock}, nil
}

// Close closes the index file and releases its lock.
func (x *Index) Close() error {
	err := x.db.Close()
	x.lock.Release()
	return err
}

// Watermark returns n such that every entry below index n is recorded.
func (x *Index) Watermark() (uint64, error) {
	var n uint64
	err := x.db.View(func(tx *bolt.Tx) error {
		n = u64(tx.Bucket(bucketState).Get(keyWatermark))
		return nil
	})
	return n, err
}

// Record durably records entries that are in the log. Concurrent calls are
// coalesced into one transaction. When it returns nil, the records survive a
// crash.
func (x *Index) Record(recs ...Record) error {
	type prepared struct {
		Record
		leaf [sha256.Size]byte
		role []byte
	}
	ps := make([]prepared, len(recs))
	for i, r := range recs {
		ps[i] = prepared{r, r.LeafHash(), roleKey(r.Entry.Repo, r.Entry.Role)}
	}
	return x.db.Batch(func(tx *bolt.Tx) error {
		for _, p := range ps {
			if err := recordLocked(tx, p.Record, p.leaf, p.role); err != nil {
				return err
			}
		}
		return nil
	})
}

// recordLocked applies one record inside a write transaction. It is
// idempotent, so bbolt may rerun a batch.
func recordLocked(tx *bolt.Tx, r Record, leaf [sha256.Size]byte, role []byte) error {
	idx := be64(r.Index)
	if a := r.Attestation; a != nil {
		if err := tx.Bucket(bucketAttests).Put(attestationKey(a.Repo, a.Subject, r.Index), encodeAttestation(*a)); err != nil {
			return err
		}
		if err := putIfAbsent(tx.Bucket(bucketLeaves), leaf[:], idx); err != nil {
			return err
		}
		if err := putIfAbsent(tx.Bucket(bucketHashes), a.SHA256[:], idx); err != nil {
			return err
		}
		return advanceLocked(tx, r.Index)
	}
	repos := tx.Bucket(bucketRepos)
	if repos.Get([]byte(r.Entry.Repo)) == nil && r.Entry.Role == "root" {
		if err := repos.Put([]byte(r.Entry.Repo), idx); err != nil {
			return err
		}
	}
	roles := tx.Bucket(bucketRoles)
	// The latest entry by log position: after a rotation of a role's keys its
	// versions start again (docs/spec/versions.md).
	if cur, ok := decodeRole(roles.Get(role)); !ok || r.Index > cur.Index {
		if err := roles.Put(role, encodeRole(RoleState{r.Entry.Version, r.Entry.SHA256, r.Index})); err != nil {
			return err
		}
	}
	if err := putIfAbsent(tx.Bucket(bucketLeaves), leaf[:], idx); err != nil {
		return err
	}
	if err := putIfAbsent(tx.Bucket(bucketHashes), r.Entry.SHA256[:], idx); err != nil {
		return err
	}
	return advanceLocked(tx, r.Index)
}

// advanceLocked moves the watermark past index, remembering indexes
// recorded out of order until the gap below them closes.
func advanceLocked(tx *bolt.Tx, index uint64) error {
	state, pending := tx.Bucket(bucketState), tx.Bucket(bucketPending)
	wm := u64(state.Get(keyWatermark))
	switch {
	case index < wm:
		return nil
	case index > wm:
		return pending.Put(be64(index), nil)
	}
	wm++
	for pending.Get(be64(wm)) != nil {
		if err := pending.Delete(be64(wm)); err != nil {
			return err
		}
		wm++
	}
	return state.Put(keyWatermark, be64(wm))
}

func putIfAbsent(b *bolt.Bucket, k, v []byte) error {
	if b.Get(k) != nil {
		return nil
	}
	return b.Put(k, v)
}

// Registered returns the index of repo's first logged root.
func (x *Index) Registered(repo string) (index uint64, ok bool, err error) {
	err = x.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRepos).Get([]byte(repo))
		index, ok = u64(v), v != nil
		return nil
	})
	return
}

// Role returns the latest logged version of role in repo.
func (x *Index) Role(repo, role string) (st RoleState, ok bool, err error) {
	err = x.db.View(func(tx *bolt.Tx) error {
		st, ok = decodeRole(tx.Bucket(bucketRoles).Get(roleKey(repo, role)))
		return nil
	})
	return
}

// Lookup answers q in one read transaction.
func (x *Index) Lookup(q Lookup) (r LookupResult, err error) {
	r.Roles = make(map[string]RoleState, len(q.Roles))
	err = x.db.View(func(tx *bolt.Tx) error {
		r.Registered = tx.Bucket(bucketRepos).Get([]byte(q.Repo)) != nil
		v := tx.Bucket(bucketLeaves).Get(q.Leaf[:])
		r.LeafIndex, r.Logged = u64(v), v != nil
		for _, role := range q.Roles {
			if st, ok := decodeRole(tx.Bucket(bucketRoles).Get(roleKey(q.Repo, role))); ok {
				r.Roles[role] = st
			}
		}
		return nil
	})
	return r, err
}

// Leaf returns the first index holding the entry with leaf hash h.
func (x *Index) Leaf(h [sha256.Size]byte) (uint64, bool, error) {
	return x.lookup(bucketLeaves, h[:])
}

// Metadata returns the first index whose entry commits to the metadata
// with SHA-256 sum.
func (x *Index) Metadata(sum [sha256.Size]byte) (uint64, bool, error) {
	return x.lookup(bucketHashes, sum[:])
}

func (x *Index) lookup(bucket, key []byte) (index uint64, ok bool, err error) {
	err = x.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get(key)
		index, ok = u64(v), v != nil
		return nil
	})
	return
}

// Attestations returns the attestations recorded for subject in repo at
// indexes below below, in log order, only those by keys (all when keys is
// empty), at most max of them, and whether more matched.
func (x *Index) Attestations(repo string, subject [sha256.Size]byte, keys []signoff.KeyID, below uint64, max int) (recs []AttestationRecord, more bool, err error) {
	prefix := attestationKey(repo, subject, 0)
	prefix = prefix[:len(prefix)-8]
	err = x.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAttests).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			idx := binary.BigEndian.Uint64(k[len(prefix):])
			if idx >= below {
				return nil
			}
			e, ok := decodeAttestation(repo, subject, v)
			if !ok {
				return fmt.Errorf("index: malformed attestation record at %d", idx)
			}
			if !keyIn(e.Key, keys) {
				continue
			}
			if len(recs) == max {
				more = true
				return nil
			}
			recs = append(recs, AttestationRecord{Index: idx, Entry: e})
		}
		return nil
	})
	return recs, more, err
}

func keyIn(k signoff.KeyID, keys []signoff.KeyID) bool {
	if len(keys) == 0 {
		return true
	}
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// attestationKey is repo, 0x00, subject, index (big-endian): the ids'
// alphabet excludes 0x00, so keys of one (repo, subject) are contiguous
// and in log order.
func attestationKey(repo string, subject [sha256.Size]byte, index uint64) []byte {
	k := make([]byte, 0, len(repo)+1+sha256.Size+8)
	k = append(append(append(k, repo...), 0), subject[:]...)
	return binary.BigEndian.AppendUint64(k, index)
}

// encodeAttestation is key id, envelope SHA-256, envelope length, verdict.
func encodeAttestation(e signoff.Entry) []byte {
	b := make([]byte, 0, 2*sha256.Size+8+len(e.Verdict))
	b = append(append(b, e.Key[:]...), e.SHA256[:]...)
	b = binary.BigEndian.AppendUint64(b, e.Length)
	return append(b, e.Verdict...)
}

func decodeAttestation(repo string, subject [sha256.Size]byte, b []byte) (signoff.Entry, bool) {
	if len(b) < 2*sha256.Size+8 {
		return signoff.Entry{}, false
	}
	e := signoff.Entry{Repo: repo, Subject: subject, Key: signoff.KeyID(b[:32]), SHA256: [sha256.Size]byte(b[32:64]),
		Length: binary.BigEndian.Uint64(b[64:72]), Verdict: string(b[72:])}
	return e, e.Validate() == nil
}

func roleKey(repo, role string) []byte {
	return append(append([]byte(repo), 0), role...)
}

func encodeRole(s RoleState) []byte {
	b := make([]byte, 0, 48)
	b = binary.BigEndian.AppendUint64(b, s.Version)
	b = append(b, s.SHA256[:]...)
	return binary.BigEndian.AppendUint64(b, s.Index)
}

func decodeRole(b []byte) (RoleState, bool) {
	if len(b) != 48 {
		return RoleState{}, false
	}
	return RoleState{binary.BigEndian.Uint64(b), [sha256.Size]byte(b[8:40]), binary.BigEndian.Uint64(b[40:])}, true
}

func be64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
