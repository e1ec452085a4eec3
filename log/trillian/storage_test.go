package trillian_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/notekey"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/shiplog/shiplog/log/trillian"
	"github.com/shiplog/shiplog/log/trillian/trilliantest"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

func newStorage(t *testing.T, cache trillian.Cache) (*trillian.Storage, note.Verifier) {
	t.Helper()
	skey, vkey, err := notekey.GenerateLog(rand.Reader, "trillian.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := notekey.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := notekey.ParseLogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	tl := trilliantest.StartMemory(t)
	s, err := trillian.New(context.Background(), trillian.Options{Client: tl.Client, TreeID: tl.TreeID, Signer: signer, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, verifier
}

// appendRetrying appends e as a ledger client would: an append that fails
// with log.ErrUnavailable (Trillian busy, the leaf perhaps queued) is
// retried, a resubmitted leaf answered with its first index, for up to
// three minutes (a loaded machine's in-memory Trillian can refuse a burst
// of concurrent QueueLeaf calls).
func appendRetrying(ctx context.Context, s *trillian.Storage, e []byte) (uint64, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		idx, err := s.Append(ctx, e)
		if err == nil || !errors.Is(err, ledger.ErrUnavailable) || time.Now().After(deadline) {
			return idx, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAppendTilesProofs appends entries concurrently and checks that every
// index is distinct, the signed checkpoint covers them, tiles and entry
// bundles built from Trillian's leaves match the checkpoint's root, and
// Trillian's proofs verify against it.
func TestAppendTilesProofs(t *testing.T) {
	s, v := newStorage(t, nil)
	ctx := context.Background()
	const n = 600
	entries := make([][]byte, n)
	idx := make([]uint64, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range entries {
		entries[i] = []byte(fmt.Sprintf("entry %d\n", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if idx[i], err = appendRetrying(ctx, s, entries[i]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	byIndex := make([][]byte, n)
	for i, x := range idx {
		if x >= n || byIndex[x] != nil {
			t.Fatalf("entry %d got index %d twice or out of range", i, x)
		}
		byIndex[x] = entries[i]
	}
	raw, err := s.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := checkpoint.Open(raw, v.Name(), v)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != n {
		t.Fatalf("checkpoint size %d, want %d", cp.Size, n)
	}
	// Entry bundles: two full, one partial of width n-512.
	for b := uint64(0); b < 3; b++ {
		w := uint8(0)
		if b == 2 {
			w = uint8(n - 512)
		}
		eb, err := s.ReadEntryBundle(ctx, b, w)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ledger.ParseBundle(eb)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range got {
			if !bytes.Equal(e, byIndex[b*256+uint64(i)]) {
				t.Fatalf("bundle %d entry %d = %q", b, i, e)
			}
		}
	}
	if _, err := s.ReadEntryBundle(ctx, 3, 0); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("bundle beyond the tree: err %v, want ErrNotFound", err)
	}
	if _, err := s.ReadTile(ctx, 0, 2, 0); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("full tile beyond the tree: err %v, want ErrNotFound", err)
	}
	// A proof builder over our tiles must reproduce the root and Trillian's proofs.
	pb, err := client.NewProofBuilder(ctx, n, s.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{0, 255, 256, 511, 599} {
		fromTiles, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		fromTrillian, err := s.InclusionProof(ctx, i, n)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fromTiles) != fmt.Sprint(fromTrillian) {
			t.Fatalf("index %d: tiles and Trillian disagree on the inclusion proof", i)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, n, rfc6962.DefaultHasher.HashLeaf(byIndex[i]), fromTrillian, cp.Hash[:]); err != nil {
			t.Fatalf("index %d: %v", i, err)
		}
	}
	cons, err := s.ConsistencyProof(ctx, 300, n)
	if err != nil {
		t.Fatal(err)
	}
	old, err := pb.ConsistencyProof(ctx, 300, n)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cons) != fmt.Sprint(old) {
		t.Fatal("tiles and Trillian disagree on the consistency proof")
	}
	// Same root, same bytes: the signature is deterministic.
	again, err := s.Checkpoint(ctx)
	if err != nil || !bytes.Equal(again, raw) {
		t.Fatalf("second checkpoint of the same root differs (%v)", err)
	}
}
