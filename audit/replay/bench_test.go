package replay

import (
	"fmt"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

// BenchmarkReplayTargets measures the pure core on one top-level targets
// release (entry parse, metadata hash, TUF parse, signature threshold,
// targets diff), next to BenchmarkHashOnly, the bare hashing of the same
// bytes. Run: go test -run XXX -bench . ./audit/replay
func BenchmarkReplayTargets(b *testing.B) {
	r := kit.NewRepo("example.com/fw", time.Now().Add(time.Hour))
	c := NewChecker("example.com/log")
	h := &memHistory{byID: map[string]Release{}}
	root := r.RootBytes()
	re, _ := entry.New(r.ID, "root", 1, root)
	if _, err := c.Check(h, Input{Entry: re.Format(), Metadata: root}); err != nil {
		b.Fatal(err)
	}
	ins := make([]Input, b.N)
	for i := range ins {
		md := r.Release(kit.Files("fw", 2, uint64(i)))
		e, _ := entry.New(r.ID, "targets", uint64(i+1), md)
		ins[i] = Input{Index: uint64(i + 1), Entry: e.Format(), Metadata: md}
	}
	b.ResetTimer()
	for i := range ins {
		out, err := c.Check(h, ins[i])
		if err != nil || len(out.Findings) != 0 {
			b.Fatalf("%v %v", err, out.Findings)
		}
	}
}

func BenchmarkHashOnly(b *testing.B) {
	r := kit.NewRepo("example.com/fw", time.Now().Add(time.Hour))
	md := r.Release(kit.Files("fw", 2, 1))
	e, _ := entry.New(r.ID, "targets", 1, md)
	f := e.Format()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		entry.LeafHash(f)
		entry.New(r.ID, "targets", 1, md)
	}
}

// BenchmarkReplayDelegated measures, per release, the replay of a wave of
// releases of 256 roles delegated by the top-level targets, each already
// released once: steady (the next version of each, under the same keys)
// and rotated (right after a targets version that rotated every role's
// key: until a role is released again it is not current, and each release
// changes the state the current delegators are computed from). Run:
// go test -run XXX -bench Delegated ./audit/replay
func BenchmarkReplayDelegated(b *testing.B) {
	for _, rotate := range []bool{false, true} {
		name := "steady"
		if rotate {
			name = "rotated"
		}
		b.Run(name, func(b *testing.B) { benchmarkDelegatedWave(b, 256, rotate) })
	}
}

func benchmarkDelegatedWave(b *testing.B, roles int, rotate bool) {
	for b.Loop() {
		b.StopTimer()
		r := kit.NewRepo("example.com/fw", time.Now().Add(time.Hour))
		c := NewChecker("example.com/log")
		h := &memHistory{byID: map[string]Release{}}
		index := uint64(0)
		check := func(role string, version uint64, md []byte) {
			e, _ := entry.New(r.ID, role, version, md)
			out, err := c.Check(h, Input{Index: index, Entry: e.Format(), Metadata: md})
			if err != nil || len(out.Findings) != 0 {
				b.Fatalf("%s v%d: %v %v", role, version, err, out.Findings)
			}
			h.byID[key(r.ID, role, version)] = *out.Release
			index++
		}
		check("root", 1, r.RootBytes())
		names := make([]string, roles)
		for i := range names {
			names[i] = fmt.Sprintf("team-%03d", i)
			r.Delegate(names[i])
		}
		check("targets", 1, r.Release(nil))
		for _, n := range names {
			check(n, 1, r.ReleaseDelegated(n, nil))
		}
		if rotate {
			for _, n := range names {
				r.RotateDelegatedKey(n)
			}
			check("targets", 2, r.Release(nil))
		}
		wave := make([][]byte, roles)
		for i, n := range names {
			wave[i] = r.ReleaseDelegated(n, nil)
		}
		b.StartTimer()
		for i, n := range names {
			check(n, 2, wave[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*roles), "µs/release")
}
