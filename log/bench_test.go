package log

import (
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

// BenchmarkCheckSubmission measures the pure submission check of a small
// targets file (parse, signature threshold, expiry, version): the CPU the
// ledger spends per publish before any I/O.
func BenchmarkCheckSubmission(b *testing.B) {
	now := time.Now()
	repo := kit.NewRandomRepo(now.Add(time.Hour))
	root, err := tufcheck.InitialRoot(repo.RootBytes(), now)
	if err != nil {
		b.Fatal(err)
	}
	h := &fakeHistory{root: root, targets: map[string]*tufcheck.Targets{}, version: map[string]uint64{"root": 1}}
	data := repo.Targets(1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckSubmission(h, "example.com/fw", "targets", data, now); err != nil {
			b.Fatal(err)
		}
	}
}
