package log

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

// FuzzParseBundle: a bundle either fails or re-encodes to the same bytes.
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c', 0, 0})
	f.Add([]byte{0, 5, 'a'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseBundle(b)
		if err != nil {
			return
		}
		var again []byte
		for _, e := range es {
			again = binary.BigEndian.AppendUint16(again, uint16(len(e)))
			again = append(again, e...)
		}
		if !bytes.Equal(again, b) || len(es) > 256 {
			t.Fatalf("bundle %x re-encoded as %x", b, again)
		}
	})
}

// fakeHistory is a repository's logged history held in memory.
type fakeHistory struct {
	root    *tufcheck.Root
	targets map[string]*tufcheck.Targets
	version map[string]uint64
}

func (h *fakeHistory) Root() (*tufcheck.Root, error) { return h.root, nil }
func (h *fakeHistory) Targets(role string) (*tufcheck.Targets, error) {
	return h.targets[role], nil
}
func (h *fakeHistory) Version(role string) (uint64, error) { return h.version[role], nil }

// FuzzCheckSubmission: arbitrary bytes as any role never panic, and what is
// accepted is correctly signed metadata above the logged version.
func FuzzCheckSubmission(f *testing.F) {
	now := time.Now()
	repo := kit.NewRandomRepo(now.Add(time.Hour))
	root, err := tufcheck.InitialRoot(repo.RootBytes(), now)
	if err != nil {
		f.Fatal(err)
	}
	t1 := repo.Targets(1)
	top, err := tufcheck.TopLevelTargets(root, t1, now)
	if err != nil {
		f.Fatal(err)
	}
	h := &fakeHistory{root: root, targets: map[string]*tufcheck.Targets{"targets": top}, version: map[string]uint64{"root": 1, "targets": 1}}
	f.Add("targets", repo.Targets(2))
	f.Add("targets", t1)
	f.Add("root", repo.UnderSignedRotation())
	f.Add("apps", repo.DelegatedTargets("apps", 1, kit.NewKey()))
	f.Add("snapshot", repo.Snapshot(1))
	f.Fuzz(func(t *testing.T, role string, data []byte) {
		acc, err := CheckSubmission(h, "example.com/fw", role, data, now)
		if err != nil {
			return
		}
		if acc.Entry.Version <= h.version[role] || !acc.Entry.Matches("example.com/fw", role, data) {
			t.Fatalf("accepted %s v%d", role, acc.Entry.Version)
		}
	})
}
