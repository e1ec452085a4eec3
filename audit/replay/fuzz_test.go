package replay

import (
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

// FuzzCheck feeds arbitrary entry and metadata bytes, after a valid root, to
// the replay: it must never panic, and anything it accepts as valid must be
// the metadata the entry commits to.
func FuzzCheck(f *testing.F) {
	r := kit.NewRepo("example.com/fw", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	root := r.RootBytes()
	rootEntry, _ := entry.New(r.ID, "root", 1, root)
	t1 := r.Release(kit.Files("a", 1, 1))
	e1, _ := entry.New(r.ID, "targets", 1, t1)
	f.Add(e1.Format(), t1)
	f.Add(rootEntry.Format(), root)
	f.Add([]byte("shiplog/release/v1\n"), []byte("{}"))
	f.Fuzz(func(t *testing.T, e, md []byte) {
		c := NewChecker("example.com/log")
		h := &memHistory{t: t, byID: map[string]Release{}}
		if _, err := c.Check(h, Input{Index: 0, Entry: rootEntry.Format(), Metadata: root}); err != nil {
			t.Fatal(err)
		}
		out, err := c.Check(h, Input{Index: 1, Entry: e, Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		if out.Release != nil && out.Release.Valid {
			pe, err := entry.Parse(e)
			if err != nil || !pe.Matches(pe.Repo, pe.Role, md) {
				t.Fatalf("valid release for metadata that does not match its entry")
			}
		}
	})
}
