package log_test

import (
	"path/filepath"
	"testing"

	"github.com/shiplog/shiplog/internal/harness"
	ledger "github.com/shiplog/shiplog/log"
)

func TestIndexAttestations(t *testing.T) {
	x, err := ledger.OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	harness.CheckIndexAttestations(t, x)
}
