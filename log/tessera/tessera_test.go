package tessera

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shiplog/shiplog/evidence/notekey"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"k8s.io/klog/v2"
)

func TestMain(m *testing.M) {
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

func openNew(t *testing.T, dir string) (*Storage, Options) {
	t.Helper()
	skey, vkey, err := notekey.GenerateLog(rand.Reader, "tessera.test/log")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := notekey.NewLogSigner(skey)
	v, _ := notekey.ParseLogVerifier(vkey)
	if err := Create(context.Background(), dir, s); err != nil {
		t.Fatal(err)
	}
	opts := Options{Dir: dir, Signer: s, Verifier: v}
	st, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Tessera writes its state in the background until closed: close it
	// before the temporary directory is removed (cleanups run last first).
	t.Cleanup(func() { st.Close(context.Background()) })
	return st, opts
}

// TestStorageResourcesAndProofs appends 300 entries concurrently and checks
// the tlog-tiles resources at every width and the proofs against an
// independent computation of the tree.
func TestStorageResourcesAndProofs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, opts := openNew(t, dir)
	const n = 300
	leaves := make([][]byte, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := []byte(fmt.Sprintf("entry %d", i))
			idx, err := st.Append(ctx, e)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			leaves[idx] = e
			mu.Unlock()
		}()
	}
	wg.Wait()
	if size, err := st.IntegratedSize(ctx); err != nil || size != n {
		t.Fatalf("size %d, %v", size, err)
	}
	hashes := make([][]byte, n)
	for i, l := range leaves {
		hashes[i] = rfc6962.DefaultHasher.HashLeaf(l)
	}
	// Bundle 0 is full; any width of it is a prefix.
	for _, w := range []uint8{1, 10, 255, 0} {
		b, err := st.ReadEntryBundle(ctx, 0, w)
		if err != nil {
			t.Fatal(err)
		}
		es, err := ledger.ParseBundle(b)
		want := int(w)
		if w == 0 {
			want = 256
		}
		if err != nil || len(es) != want || string(es[want-1]) != string(leaves[want-1]) {
			t.Fatalf("bundle width %d: %d entries, %v", w, len(es), err)
		}
		tile, err := st.ReadTile(ctx, 0, 0, w)
		if err != nil || len(tile) != want*32 || string(tile[(want-1)*32:]) != string(hashes[want-1]) {
			t.Fatalf("tile width %d: %d bytes, %v", w, len(tile), err)
		}
	}
	if _, err := st.ReadEntryBundle(ctx, 1, 0); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("full bundle 1 of a 300-entry log: %v, want ErrNotFound", err)
	}
	if _, err := st.ReadEntryBundle(ctx, 1, 45); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("bundle 1 wider than the log: %v, want ErrNotFound", err)
	}
	root := func(size int) []byte { return rootOf(hashes[:size]) }
	for _, size := range []uint64{1, 2, 255, 256, 257, n} {
		for _, i := range []uint64{0, size / 2, size - 1} {
			p, err := st.InclusionProof(ctx, i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, hashes[i], p, root(int(size))); err != nil {
				t.Fatalf("inclusion %d in %d: %v", i, size, err)
			}
		}
		for _, old := range []uint64{1, size / 2} {
			if old == 0 || old >= size {
				continue
			}
			p, err := st.ConsistencyProof(ctx, old, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, size, p, root(int(old)), root(int(size))); err != nil {
				t.Fatalf("consistency %d->%d: %v", old, size, err)
			}
		}
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Create(ctx, dir, opts.Signer); err == nil {
		t.Error("Create over an existing log succeeded")
	}
	st, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if size, _ := st.IntegratedSize(ctx); size != n {
		t.Errorf("after reopening: size %d", size)
	}
	st.Close(ctx)
}

func TestOpenRefusesMissingOrForeignLog(t *testing.T) {
	ctx := context.Background()
	_, opts := openNew(t, filepath.Join(t.TempDir(), "a"))
	if _, err := Open(ctx, Options{Dir: t.TempDir(), Signer: opts.Signer, Verifier: opts.Verifier}); err == nil {
		t.Error("opened a directory without a log")
	}
	other, _ := openNew(t, filepath.Join(t.TempDir(), "b"))
	other.Close(ctx)
	_, v2 := openNew(t, filepath.Join(t.TempDir(), "c"))
	if _, err := Open(ctx, Options{Dir: opts.Dir, Signer: v2.Signer, Verifier: v2.Verifier}); err == nil {
		t.Error("opened another key's log")
	}
}

// rootOf computes the RFC 6962 root of leaf hashes.
func rootOf(hs [][]byte) []byte {
	if len(hs) == 1 {
		return hs[0]
	}
	k := 1
	for k*2 < len(hs) {
		k *= 2
	}
	return rfc6962.DefaultHasher.HashChildren(rootOf(hs[:k]), rootOf(hs[k:]))
}
