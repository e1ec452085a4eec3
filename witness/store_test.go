package witness

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), StateFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStoreCommitFailureRefusesWrites: after a commit fails the file's state
// is unknown, so the store refuses every later update.
func TestStoreCommitFailureRefusesWrites(t *testing.T) {
	s := openTestStore(t)
	next := State{Size: 1, Note: []byte("n")}
	if err := s.Update(context.Background(), "o", initialState(), next, nil); err != nil {
		t.Fatal(err)
	}
	s.f.Close() // every later write fails
	if err := s.Update(context.Background(), "o", next, State{Size: 2}, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Update after a failed commit = %v, want ErrUnavailable", err)
	}
	if s.Healthy() {
		t.Error("store still healthy after a failed commit")
	}
	if st := s.Latest("o"); st.Size != 1 {
		t.Errorf("cache moved to size %d on a failed commit", st.Size)
	}
}

// TestStoreCompareAndSwap: of many updates from the same expected state,
// exactly one wins, whatever the batching.
func TestStoreCompareAndSwap(t *testing.T) {
	s := openTestStore(t)
	const n = 50
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			next := State{Size: uint64(i + 1)}
			errs <- s.Update(context.Background(), "o", initialState(), next, nil)
		}()
	}
	won := 0
	for i := 0; i < n; i++ {
		var ce *ConflictError
		switch err := <-errs; {
		case err == nil:
			won++
		case errors.As(err, &ce):
		default:
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Errorf("%d updates won, want 1", won)
	}
}

// TestAttackEvidenceFlood: misbehaviour records are deduplicated and capped
// per log and kind, so replaying bad proofs cannot fill the disk, and a
// conclusive fork is still kept once the unproven cap is reached.
func TestAttackEvidenceFlood(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	rec := func(kind string, i int) Misbehaviour {
		return Misbehaviour{Origin: "o", Kind: kind, Received: time.Unix(0, 0), Evidence: fmt.Sprintf("evidence %d", i)}
	}
	for i := 0; i < 100; i++ {
		if err := s.Record(ctx, rec(KindUnproven, i), rec(KindUnproven, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Record(ctx, rec(KindFork, 0)); err != nil {
		t.Fatal(err)
	}
	ms, err := s.Misbehaviour("o", 1000)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, m := range ms {
		kinds[m.Kind]++
	}
	if kinds[KindUnproven] != maxUnprovenPerLog || kinds[KindFork] != 1 {
		t.Errorf("kept %v, want %d unproven and 1 fork", kinds, maxUnprovenPerLog)
	}
	if other, _ := s.Misbehaviour("o2", 10); len(other) != 0 {
		t.Errorf("records of another log: %v", other)
	}
}
