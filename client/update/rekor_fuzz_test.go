package update

import (
	"encoding/hex"
	"testing"
)

func FuzzParseConsistency(f *testing.F) {
	f.Add([]byte(`{"hashes":["` + hex.EncodeToString(make([]byte, 32)) + `"],"rootHash":"00"}`))
	f.Add([]byte(`{"hashes":[]}`))
	f.Add([]byte(`{"hashes":["zz"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseConsistency(b)
		if err == nil && len(p) > 128 {
			t.Fatalf("accepted %d hashes", len(p))
		}
	})
}
