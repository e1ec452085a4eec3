package log

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/policy"
	bolt "go.etcd.io/bbolt"
)

// fakeStorage is a Storage backed by an in-memory evidencetest log whose
// checkpoints are signed by that log's key. Switching log simulates an
// engine that forked (or was swapped for another copy).
type fakeStorage struct {
	mu  sync.Mutex
	log *evidencetest.Log
}

func (f *fakeStorage) Append(_ context.Context, e []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.Append(e), nil
}
func (f *fakeStorage) IntegratedSize(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.Size(), nil
}
func (f *fakeStorage) Checkpoint(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.Checkpoint(), nil
}
func (f *fakeStorage) ReadTile(context.Context, uint64, uint64, uint8) ([]byte, error) {
	return nil, ErrNotFound
}
func (f *fakeStorage) ReadEntryBundle(context.Context, uint64, uint8) ([]byte, error) {
	return nil, ErrNotFound
}
func (f *fakeStorage) InclusionProof(context.Context, uint64, uint64) ([][]byte, error) {
	return nil, errors.New("not needed")
}
func (f *fakeStorage) ConsistencyProof(_ context.Context, a, b uint64) ([][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]byte
	for _, h := range f.log.Consistency(a, b) {
		out = append(out, h[:])
	}
	return out, nil
}
func (f *fakeStorage) Close(context.Context) error { return nil }

func (f *fakeStorage) swap(l *evidencetest.Log) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = l
}

// TestForkedCheckpointNeverPublished: if the log engine ever signs a
// checkpoint that does not extend the published one (a fork: same size
// with another root, or a larger tree that does not contain the published
// one), the ledger refuses to send it to witnesses or publish it.
func TestForkedCheckpointNeverPublished(t *testing.T) {
	ctx := context.Background()
	a := evidencetest.NewLog("fork.test/log", 0)
	for i := 0; i < 3; i++ {
		a.Append([]byte{byte(i)})
	}
	st := &fakeStorage{log: a}
	p, err := policy.Parse(a.Policy(0))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	idx, err := OpenIndex(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	// The fake log holds non-shiplog entries: start the index past them.
	if err := idx.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketState).Put(keyWatermark, be64(3)) }); err != nil {
		t.Fatal(err)
	}
	ms, _ := NewMetadataStore(filepath.Join(dir, "metadata"))
	l, err := New(ctx, Config{Storage: st, Index: idx, Metadata: ms, Policy: p, Origin: a.Origin, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.publishOnce(ctx); err != nil {
		t.Fatal(err)
	}
	published, _ := l.Checkpoint()

	for _, c := range []struct {
		name string
		fork func() *evidencetest.Log
	}{
		{"same-size-other-root", func() *evidencetest.Log {
			b := evidencetest.NewLogWithKey(a, a.Origin)
			for i := 0; i < 3; i++ {
				b.Append([]byte{byte(10 + i)})
			}
			return b
		}},
		{"larger-tree-without-the-published-one", func() *evidencetest.Log {
			b := evidencetest.NewLogWithKey(a, a.Origin)
			for i := 0; i < 5; i++ {
				b.Append([]byte{byte(20 + i)})
			}
			return b
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st.swap(c.fork())
			err := l.publishOnce(ctx)
			var fork *evidence.ForkError
			if err == nil || (!errors.As(err, &fork) && c.name != "same-size-other-root") {
				t.Fatalf("publishOnce: %v, want a refused fork", err)
			}
			if got, _ := l.Checkpoint(); string(got) != string(published) {
				t.Fatal("the forked checkpoint was published")
			}
		})
	}
	// The honest log growing again is published.
	a.Append([]byte{9})
	st.swap(a)
	if err := l.publishOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := l.CosignedSize(); s != 4 {
		t.Fatalf("cosigned size %d, want 4", s)
	}
}
