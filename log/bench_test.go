package log

import (
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/theupdateframework/go-tuf/v2/metadata"
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

// BenchmarkCheckDelegatedSubmission measures the pure check of a role
// "sub" delegated by "apps", itself delegated by the top-level targets:
// with the ledger's threshold memo (memo: the chain is verified on the
// first submission only, as in the ledger's steady state) and without it
// (verify: both delegators verified on every submission). The submission's
// own signature is verified in both.
func BenchmarkCheckDelegatedSubmission(b *testing.B) {
	now := time.Now()
	repo := kit.NewRandomRepo(now.Add(time.Hour))
	root, err := tufcheck.InitialRoot(repo.RootBytes(), now)
	if err != nil {
		b.Fatal(err)
	}
	appsKey := repo.Delegate("apps")
	subKey := kit.NewKey()
	parse := func(data []byte) *tufcheck.Targets {
		m, err := metadata.Targets().FromBytes(data)
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	fake := &fakeHistory{root: root, version: map[string]uint64{"root": 1, "targets": 1, "apps": 1}, targets: map[string]*tufcheck.Targets{
		"targets": parse(repo.Targets(1)), "apps": parse(delegating(now, 1, "sub", subKey, appsKey))}}
	data := repo.DelegatedTargets("sub", 1, subKey)
	for _, c := range []struct {
		name string
		h    History
	}{
		{"memo", &recordingMemo{fake, map[verifiedKey]*tufcheck.Targets{}}},
		{"verify", fake},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CheckSubmission(c.h, "example.com/fw", "sub", data, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
