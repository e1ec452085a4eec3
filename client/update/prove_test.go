package update_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
)

// TestAttackProveEntryCheckpointDifferingInOneByte: two entries proven
// under one checkpoint, as the ledger serves sign-off statements; the
// session verifies that checkpoint once, yet a second proof whose
// checkpoint note differs from it in any one byte is refused, and the
// session still accepts the genuine proof afterwards.
func TestAttackProveEntryCheckpointDifferingInOneByte(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw.bin", []byte("fw"), nil)
	r.Publish()
	a, b := []byte("entry a\n"), []byte("entry b\n")
	ia, ib := r.Log.Append(a), r.Log.Append(b)
	pa, pb := r.Log.Proof(ia, r.Cosigners...), r.Log.Proof(ib, r.Cosigners...)
	ctx := context.Background()
	s, err := client(t, r, 2).Refresh(ctx, update.Trusted{Root: r.RootBytes(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProveEntry(ctx, a, pa); err != nil {
		t.Fatal(err)
	}
	note := bytes.Index(pb, []byte("\n\n")) + 2
	for i := note; i < len(pb); i++ {
		m := bytes.Clone(pb)
		m[i] ^= 1
		if _, err := s.ProveEntry(ctx, b, m); err == nil {
			t.Errorf("checkpoint changed at byte %d (%q) accepted", i-note, pb[i])
		}
	}
	if _, err := s.ProveEntry(ctx, b, pb); err != nil {
		t.Fatalf("genuine proof refused after the mutations: %v", err)
	}
}
