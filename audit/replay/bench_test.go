package replay

import (
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
