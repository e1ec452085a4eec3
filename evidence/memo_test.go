package evidence_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/entry"
)

// TestAttackMemoCheckpointDifferingInOneByte: after a memo verified a
// proof's checkpoint, every one-byte change, truncation and extension of
// that proof (its checkpoint note included) is still refused: only the
// exact note verified is remembered.
func TestAttackMemoCheckpointDifferingInOneByte(t *testing.T) {
	l, metadata, pr := fixture(t)
	m := evidence.NewCheckpointMemo(mustPolicy(t, l.Policy(2)))
	e, _ := entry.New(repo, "targets", 3, metadata)
	leaf := e.Format()
	ok := func(b []byte) bool { _, err := m.VerifyInclusion(leaf, b); return err == nil }
	if !ok(pr) || !ok(pr) {
		t.Fatal("valid proof refused")
	}
	for i := range pr {
		for _, c := range []byte{pr[i] ^ 1, pr[i] ^ 0x20, '\n', ' ', '0'} {
			if c == pr[i] {
				continue
			}
			mut := bytes.Clone(pr)
			mut[i] = c
			if ok(mut) {
				t.Errorf("mutation at %d (%q→%q) accepted", i, pr[i], c)
			}
		}
		if ok(pr[:i]) {
			t.Errorf("truncation to %d accepted", i)
		}
	}
	for _, ext := range []string{"\n", " ", "x"} {
		if ok(append(bytes.Clone(pr), ext...)) {
			t.Errorf("extension %q accepted", ext)
		}
	}
	if !ok(pr) {
		t.Error("valid proof refused after the mutations")
	}
}

// TestAttackMemoRemembersNoFailure: a checkpoint that failed (too few
// cosignatures) fails again, and a memo of a stricter policy refuses what
// another memo verified.
func TestAttackMemoRemembersNoFailure(t *testing.T) {
	l, metadata, pr := fixture(t)
	e, _ := entry.New(repo, "targets", 3, metadata)
	m := evidence.NewCheckpointMemo(mustPolicy(t, l.Policy(2)))
	weak := l.Proof(2, 1)
	for range 2 {
		if _, err := m.VerifyInclusion(e.Format(), weak); !errors.Is(err, evidence.ErrQuorum) {
			t.Fatalf("err = %v, want ErrQuorum", err)
		}
	}
	if _, err := m.VerifyInclusion(e.Format(), pr); err != nil {
		t.Fatal(err)
	}
	strict := evidence.NewCheckpointMemo(mustPolicy(t, l.Policy(3)))
	if _, err := strict.VerifyInclusion(e.Format(), pr); !errors.Is(err, evidence.ErrQuorum) {
		t.Fatalf("strict policy: err = %v, want ErrQuorum", err)
	}
}

// TestMemoSharedCheckpoint: two entries proven under one checkpoint both
// verify through the memo, with the same verified checkpoint.
func TestMemoSharedCheckpoint(t *testing.T) {
	l, metadata, pr := fixture(t)
	m := evidence.NewCheckpointMemo(mustPolicy(t, l.Policy(2)))
	e, _ := entry.New(repo, "targets", 3, metadata)
	a, err := m.VerifyInclusion(e.Format(), pr)
	if err != nil {
		t.Fatal(err)
	}
	e4, _ := entry.New(repo, "targets", 4, []byte("metadata 3"))
	b, err := m.VerifyInclusion(e4.Format(), l.Proof(3, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if a.Checkpoint != b.Checkpoint || b.Index != 3 {
		t.Errorf("second inclusion = %+v", b)
	}
	// The first entry is not at index 3 of that same checkpoint.
	if _, err := m.VerifyInclusion(e.Format(), l.Proof(3, 0, 2)); !errors.Is(err, evidence.ErrNotIncluded) {
		t.Errorf("err = %v, want ErrNotIncluded", err)
	}
}
