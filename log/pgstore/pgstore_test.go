package pgstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/internal/harness"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/shiplog/shiplog/log/pgstore"
	"github.com/shiplog/shiplog/log/trillian/trilliantest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	trilliantest.StopShared()
	os.Exit(code)
}

// open opens a store on a fresh schema of the shared cluster.
func open(t *testing.T, schema string) *pgstore.Store {
	t.Helper()
	c := trilliantest.Shared(t)
	if schema == "" {
		schema = trilliantest.NewSchema()
	}
	s, err := pgstore.Open(context.Background(), pgstore.Options{URI: c.PostgresURI, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func rec(t *testing.T, idx uint64, repo, role string, version uint64) ledger.Record {
	t.Helper()
	e, err := entry.New(repo, role, version, []byte(fmt.Sprintf("%s %s %d", repo, role, version)))
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Record{Index: idx, Entry: e}
}

// TestIndexOutOfOrder records entries in any order, twice, concurrently,
// and checks the watermark, the roles (only moving up) and the lookups.
func TestIndexOutOfOrder(t *testing.T) {
	x := open(t, "").Index()
	const n = 200
	recs := make([]ledger.Record, n)
	for i := range recs {
		recs[i] = rec(t, uint64(i), fmt.Sprintf("r%d", i%7), "targets", uint64(i+1))
	}
	recs[0] = rec(t, 0, "r0", "root", 1)
	var wg sync.WaitGroup
	for i := n - 1; i >= 1; i-- { // all but index 0: the watermark must wait for it
		wg.Add(1)
		go func() { defer wg.Done(); x.Record(recs[i]) }()
	}
	wg.Wait()
	if wm, err := x.Watermark(); err != nil || wm != 0 {
		t.Fatalf("watermark %d (%v) before index 0 is recorded, want 0", wm, err)
	}
	if err := x.Record(recs[0], recs[5]); err != nil {
		t.Fatal(err)
	}
	if wm, err := x.Watermark(); err != nil || wm != n {
		t.Fatalf("watermark %d (%v), want %d", wm, err, n)
	}
	// r1's latest targets is its entry at the highest index.
	st, ok, err := x.Role("r1", "targets")
	if err != nil || !ok || st.Version != 198 || st.Index != 197 { // i = 197 is the last i%7 == 1
		t.Fatalf("role r1/targets = %+v %v %v", st, ok, err)
	}
	// An earlier entry recorded again does not move the role back.
	if err := x.Record(recs[1]); err != nil {
		t.Fatal(err)
	}
	if st2, _, _ := x.Role("r1", "targets"); st2 != st {
		t.Fatalf("role moved back to %+v", st2)
	}
	// A later entry with a lower version (a new sequence after a key
	// rotation, docs/spec/versions.md) is the role's latest.
	later := rec(t, n, "r1", "targets", 1)
	if err := x.Record(later); err != nil {
		t.Fatal(err)
	}
	if st2, _, _ := x.Role("r1", "targets"); st2.Index != n || st2.Version != 1 {
		t.Fatalf("role after a later, lower version: %+v, want v1 at index %d", st2, n)
	}
	if idx, ok, err := x.Registered("r0"); err != nil || !ok || idx != 0 {
		t.Fatalf("Registered(r0) = %d %v %v", idx, ok, err)
	}
	if _, ok, _ := x.Registered("r1"); ok {
		t.Fatal("r1 registered without a root")
	}
	for _, r := range []ledger.Record{recs[3], recs[150]} {
		if idx, ok, err := x.Leaf(r.Entry.LeafHash()); err != nil || !ok || idx != r.Index {
			t.Fatalf("Leaf = %d %v %v, want %d", idx, ok, err, r.Index)
		}
		if idx, ok, err := x.Metadata(r.Entry.SHA256); err != nil || !ok || idx != r.Index {
			t.Fatalf("Metadata = %d %v %v, want %d", idx, ok, err, r.Index)
		}
	}
	if _, ok, _ := x.Leaf([32]byte{1}); ok {
		t.Fatal("unknown leaf found")
	}
	// One Lookup answers as Registered, Leaf and Role do.
	for _, q := range []ledger.Lookup{
		{Repo: "r0", Leaf: recs[0].Entry.LeafHash(), Roles: []string{"root", "targets", "absent"}},
		{Repo: "r1", Leaf: recs[150].Entry.LeafHash(), Roles: []string{"targets"}},
		{Repo: "nobody", Leaf: [32]byte{1}, Roles: []string{"root", "targets"}},
		{Repo: "r2", Leaf: [32]byte{2}},
	} {
		got, err := x.Lookup(q)
		if err != nil {
			t.Fatal(err)
		}
		_, reg, _ := x.Registered(q.Repo)
		leaf, logged, _ := x.Leaf(q.Leaf)
		if got.Registered != reg || got.Logged != logged || got.LeafIndex != leaf {
			t.Fatalf("Lookup(%s) = %+v, want registered %v, leaf %d %v", q.Repo, got, reg, leaf, logged)
		}
		n := 0
		for _, role := range q.Roles {
			st, ok, _ := x.Role(q.Repo, role)
			if g, gok := got.Roles[role]; gok != ok || g != st {
				t.Fatalf("Lookup(%s).Roles[%s] = %+v %v, want %+v %v", q.Repo, role, g, gok, st, ok)
			}
			if ok {
				n++
			}
		}
		if len(got.Roles) != n {
			t.Fatalf("Lookup(%s) returned roles not asked for: %v", q.Repo, got.Roles)
		}
	}
}

// TestConcurrentWritesAreDurable: metadata and appending entries written
// by many goroutines at once (separately or in one SetAppendingWithMetadata) (committed together in batches) are all read
// back by another replica once each call returned, and clearing one
// appending entry leaves the others.
func TestConcurrentWritesAreDurable(t *testing.T) {
	schema := trilliantest.NewSchema()
	a, b := open(t, schema), open(t, schema)
	ctx := context.Background()
	const n = 64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo, md, e := fmt.Sprintf("repo%d", i), []byte(fmt.Sprintf("metadata %d", i)), []byte(fmt.Sprintf("entry %d", i))
			if i%3 == 0 { // both in one write
				if err := a.Coordinator().SetAppendingWithMetadata(ctx, repo, e, md); err != nil {
					t.Error(err)
				}
			} else {
				if _, err := a.MetadataStore().Put(md); err != nil {
					t.Error(err)
				}
				if err := a.Coordinator().SetAppending(ctx, repo, e); err != nil {
					t.Error(err)
				}
			}
			if i%2 == 0 {
				if err := a.Coordinator().SetAppending(ctx, fmt.Sprintf("repo%d", i), nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		want := []byte(fmt.Sprintf("metadata %d", i))
		if got, err := b.MetadataStore().Get(sha256.Sum256(want)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("metadata %d: %q, %v", i, got, err)
		}
		e, err := b.Coordinator().Appending(ctx, fmt.Sprintf("repo%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("entry %d", i); i%2 == 0 && e != nil || i%2 == 1 && string(e) != want {
			t.Fatalf("appending entry of repo%d = %q", i, e)
		}
	}
	if !a.Coordinator().StoresMetadataFor(a.MetadataStore()) || a.Coordinator().StoresMetadataFor(b.MetadataStore()) {
		t.Fatal("StoresMetadataFor must hold for the same store only")
	}
}

// TestTamperedMetadataRefused: bytes in the database that do not match
// their hash are never served as logged metadata.
func TestTamperedMetadataRefused(t *testing.T) {
	schema := trilliantest.NewSchema()
	s := open(t, schema)
	m := s.MetadataStore()
	data := []byte(`{"signed":{"_type":"targets"}}`)
	sum, err := m.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get(sum); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if _, err := m.Put(data); err != nil {
		t.Fatalf("second Put: %v", err)
	}
	if _, err := m.Get(sha256.Sum256([]byte("other"))); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("absent metadata: %v, want ErrNotFound", err)
	}
	if err := trilliantest.Shared(t).SQL(fmt.Sprintf(`UPDATE %s.metadata SET data = 'evil'`, schema)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(sum); err == nil {
		t.Fatal("tampered metadata served")
	}
}

// TestTwoCheckpointsForOneSizeRefused: the shared state never holds two
// different signed checkpoints, or two cosigned checkpoints of different
// trees, for one size — even when two replicas race.
func TestTwoCheckpointsForOneSizeRefused(t *testing.T) {
	schema := trilliantest.NewSchema()
	a, b := open(t, schema).CheckpointState(), open(t, schema).CheckpointState()
	ctx := context.Background()
	signed := []byte("o\n5\nAAAA\n\n— o sig1\n")
	if err := a.Save(ctx, ledger.SignedCheckpoint, 5, signed); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, ledger.SignedCheckpoint, 5, signed); err != nil {
		t.Fatalf("same checkpoint again: %v", err)
	}
	if err := b.Save(ctx, ledger.SignedCheckpoint, 5, []byte("o\n5\nBBBB\n\n— o sig2\n")); !errors.Is(err, pgstore.ErrConflictingCheckpoint) {
		t.Fatalf("second signed checkpoint of size 5: %v, want ErrConflictingCheckpoint", err)
	}
	if err := a.Save(ctx, ledger.CosignedCheckpoint, 5, []byte("o\n5\nAAAA\n\n— o sig1\n— w c1\n")); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, ledger.CosignedCheckpoint, 5, []byte("o\n5\nAAAA\n\n— o sig1\n— w c2\n")); err != nil {
		t.Fatalf("same checkpoint with other cosignatures: %v", err)
	}
	if err := b.Save(ctx, ledger.CosignedCheckpoint, 5, []byte("o\n5\nBBBB\n\n— o sig2\n— w c2\n")); !errors.Is(err, pgstore.ErrConflictingCheckpoint) {
		t.Fatalf("cosigned fork of size 5: %v, want ErrConflictingCheckpoint", err)
	}
	if err := a.Save(ctx, ledger.SignedCheckpoint, 7, []byte("o\n7\nCCCC\n\n— o sig3\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Load(ctx, ledger.SignedCheckpoint); err != nil || !bytes.Contains(got, []byte("\n7\n")) {
		t.Fatalf("Load = %q, %v; want the size-7 checkpoint", got, err)
	}
	if got, err := open(t, "").CheckpointState().Load(ctx, ledger.CosignedCheckpoint); err != nil || got != nil {
		t.Fatalf("empty state: %q, %v", got, err)
	}
}

// TestRepositoryLockAcrossReplicas: two stores (two replicas) never hold
// one repository's lock together, and a replica that dies releases it.
func TestRepositoryLockAcrossReplicas(t *testing.T) {
	schema := trilliantest.NewSchema()
	a, b := open(t, schema).Coordinator(), open(t, schema).Coordinator()
	ctx := context.Background()
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, _, err := c.LockRepository(ctx, "repo")
			if err != nil {
				t.Error(err)
				return
			}
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Fatalf("%d overlapping holders of one repository lock", overlaps.Load())
	}
	// Another repository is independent.
	u1, _, err := a.LockRepository(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	u2, _, err := b.LockRepository(ctx, "y")
	if err != nil {
		t.Fatal(err)
	}
	u2()
	u1()
	// A holder that dies (its session ends) releases the lock. The dying
	// store is never closed: its pool would wait for the held connection.
	c := trilliantest.Shared(t)
	dying, err := pgstore.Open(ctx, pgstore.Options{URI: c.PostgresURI, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dying.Coordinator().LockRepository(ctx, "z"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	if _, _, err := b.LockRepository(wctx, "z"); err == nil {
		t.Fatal("lock taken while held")
	}
	cancel()
	if err := c.SQL(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	wctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()
	u3, _, err := b.LockRepository(wctx, "z")
	if err != nil {
		t.Fatalf("lock of a dead holder not released: %v", err)
	}
	u3()
	// The appending entry.
	if err := a.SetAppending(ctx, "x", []byte("e1")); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Appending(ctx, "x"); err != nil || string(e) != "e1" {
		t.Fatalf("Appending = %q, %v", e, err)
	}
	// Taking the lock reads the appending entry in the same round trip.
	u4, e, err := b.LockRepository(ctx, "x")
	if err != nil || string(e) != "e1" {
		t.Fatalf("LockRepository's appending entry = %q, %v", e, err)
	}
	u4()
	if err := b.SetAppending(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	if e, err := a.Appending(ctx, "x"); err != nil || e != nil {
		t.Fatalf("cleared Appending = %q, %v", e, err)
	}
}

// TestLockSeesWhatThePreviousHolderCommitted: a replica waiting for a
// repository's lock reads, with the lock (LockRepositoryLookup, one round
// trip), the index and the appending entry as the previous holder left
// them at unlock — never a snapshot taken before it got the lock, which
// would let it check a submission against a history missing a version.
func TestLockSeesWhatThePreviousHolderCommitted(t *testing.T) {
	schema := trilliantest.NewSchema()
	sa, sb := open(t, schema), open(t, schema)
	a, b := sa.Coordinator(), sb.Coordinator()
	ctx := context.Background()
	root := rec(t, 0, "repo", "root", 1)
	q := ledger.Lookup{Repo: "repo", Leaf: root.LeafHash(), Roles: []string{"root", "targets"}}
	unlock, _, found, err := a.LockRepositoryLookup(ctx, "repo", q)
	if err != nil || found.Registered || found.Logged || len(found.Roles) != 0 {
		t.Fatalf("empty index: %+v, %v", found, err)
	}
	type got struct {
		appending []byte
		found     ledger.LookupResult
		err       error
	}
	ch := make(chan got, 1)
	go func() {
		u, e, f, err := b.LockRepositoryLookup(ctx, "repo", q)
		if err == nil {
			u()
		}
		ch <- got{e, f, err}
	}()
	// Wait until b waits for the lock, then write and unlock.
	conn, err := pgx.Connect(ctx, trilliantest.Shared(t).PostgresURI)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second replica never waited for the lock")
		}
	}
	if err := sa.Index().Record(root); err != nil {
		t.Fatal(err)
	}
	if err := a.SetAppending(ctx, "repo", []byte("next")); err != nil {
		t.Fatal(err)
	}
	unlock()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	want, err := sb.Index().Lookup(q)
	if err != nil {
		t.Fatal(err)
	}
	if !r.found.Registered || !r.found.Logged || r.found.LeafIndex != 0 || len(r.found.Roles) != 1 || r.found.Roles["root"] != want.Roles["root"] {
		t.Fatalf("read with the lock: %+v, want %+v", r.found, want)
	}
	if string(r.appending) != "next" {
		t.Fatalf("appending entry read with the lock: %q, want the previous holder's", r.appending)
	}
	if !a.LooksUpIn(sa.Index()) || a.LooksUpIn(sb.Index()) {
		t.Fatal("LooksUpIn must hold for the same store only")
	}
}

// TestRecordClearsOnlyItsAppendingEntry: indexing an entry clears its
// repository's appending entry when it is that entry, and leaves the
// repository's next entry (appending while an earlier one is recorded
// again, as a replay of the log does) in place.
func TestRecordClearsOnlyItsAppendingEntry(t *testing.T) {
	schema := trilliantest.NewSchema()
	s := open(t, schema)
	c, x := s.Coordinator(), s.Index()
	ctx := context.Background()
	v1, v2 := rec(t, 0, "repo", "root", 1), rec(t, 1, "repo", "root", 2)
	if err := c.SetAppending(ctx, "repo", v1.Format()); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAppending(ctx, "other", v1.Format()); err != nil { // not its repository
		t.Fatal(err)
	}
	if err := x.Record(v1); err != nil {
		t.Fatal(err)
	}
	if e, err := c.Appending(ctx, "repo"); err != nil || e != nil {
		t.Fatalf("appending entry after it was indexed: %q, %v", e, err)
	}
	if e, err := c.Appending(ctx, "other"); err != nil || !bytes.Equal(e, v1.Format()) {
		t.Fatalf("another repository's appending entry: %q, %v", e, err)
	}
	if err := c.SetAppending(ctx, "repo", v2.Format()); err != nil {
		t.Fatal(err)
	}
	if err := x.Record(v1); err != nil {
		t.Fatal(err)
	}
	if e, err := c.Appending(ctx, "repo"); err != nil || !bytes.Equal(e, v2.Format()) {
		t.Fatalf("next appending entry after an earlier one was recorded again: %q, %v", e, err)
	}
	if !x.ClearsAppendingOf(c) || x.ClearsAppendingOf(open(t, schema).Coordinator()) {
		t.Fatal("ClearsAppendingOf must hold for the same store only")
	}
}

// TestOneLeaderFailsOver: of two replicas one leads; when it dies the
// other takes over.
func TestOneLeaderFailsOver(t *testing.T) {
	schema := trilliantest.NewSchema()
	sa := open(t, schema)
	a, b := sa.Coordinator(), open(t, schema).Coordinator()
	ctx := context.Background()
	la, err := a.Lead(ctx)
	if err != nil || !la {
		t.Fatalf("first replica: lead %v, %v", la, err)
	}
	lb, err := b.Lead(ctx)
	if err != nil || lb {
		t.Fatalf("second replica leads too (%v)", err)
	}
	sa.Close()
	deadline := time.Now().Add(2 * time.Minute) // generous: a loaded machine
	for {
		if lb, _ = b.Lead(ctx); lb {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failover after the leader died")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTileCache stores and returns full tiles and bundles exactly.
func TestTileCache(t *testing.T) {
	c := open(t, "").TileCache()
	ctx := context.Background()
	if b, err := c.Tile(ctx, 0, 1); err != nil || b != nil {
		t.Fatalf("absent tile = %x, %v", b, err)
	}
	tile := bytes.Repeat([]byte{7}, 256*32)
	if err := c.PutTile(ctx, 1, 3, tile); err != nil {
		t.Fatal(err)
	}
	if err := c.PutTile(ctx, 1, 3, tile); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Tile(ctx, 1, 3); err != nil || !bytes.Equal(b, tile) {
		t.Fatalf("Tile = %d bytes, %v", len(b), err)
	}
	if err := c.PutBundle(ctx, 2, []byte{0, 1, 'a'}); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Bundle(ctx, 2); err != nil || string(b) != "\x00\x01a" {
		t.Fatalf("Bundle = %q, %v", b, err)
	}
}

func TestIndexAttestations(t *testing.T) {
	harness.CheckIndexAttestations(t, open(t, "").Index())
}
