package witnesstest_test

import (
	"context"
	"testing"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/witness/client"
	"github.com/shiplog/shiplog/witness/witnesstest"
)

// TestCollectorWithTestWitnesses is the pattern a ledger test follows.
func TestCollectorWithTestWitnesses(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	w0, w1 := witnesstest.Start(t, "w0.example", l.VKey), witnesstest.Start(t, "w1.example", l.VKey)
	p, err := policy.Parse(witnesstest.Policy(l.VKey, 2, w0, w1))
	if err != nil {
		t.Fatal(err)
	}
	proofs := func(ctx context.Context, old, size uint64) ([][]byte, error) {
		var out [][]byte
		for _, h := range l.Consistency(old, size) {
			out = append(out, h[:])
		}
		return out, nil
	}
	c, err := client.NewCollector(p, proofs, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l.Append([]byte{byte(i)})
		out, err := c.Cosign(context.Background(), l.Checkpoint())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := evidence.VerifyCheckpoint(out, p); err != nil {
			t.Fatal(err)
		}
	}
	if st := w1.Store.Latest(l.Origin); st.Size != 3 {
		t.Errorf("w1 at size %d, want 3", st.Size)
	}
}
