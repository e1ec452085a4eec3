package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
)

const declared = `{"source":{"uri":"git+https://example.com/fw.git"},"revision":"0123456789abcdef0123456789abcdef01234567","build":{"command":"make"}}`

func fixtureRepo(t *testing.T) (*harness.RawRepo, Repository) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/app.bin", []byte("firmware v1"), map[string]any{"provenance": json.RawMessage(declared), "notes": "x"})
	r.AddTarget("targets", "fw/plain.bin", []byte("no provenance"), nil)
	r.Publish()
	base := "file://" + filepath.ToSlash(r.Dir)
	return r, Repository{ID: r.ID, MetadataURL: base + "/metadata", TargetsURL: base + "/targets",
		Root: r.RootBytes(1), Policy: r.Policy(2), Time: harness.Now}
}

func TestFindReleaseReadsVerifiedProvenance(t *testing.T) {
	_, repo := fixtureRepo(t)
	sum := sha256.Sum256([]byte("firmware v1"))
	for name, find := range map[string][2]string{"by path": {"fw/app.bin", ""}, "by digest": {"", hex.EncodeToString(sum[:])}} {
		t.Run(name, func(t *testing.T) {
			rel, err := FindRelease(context.Background(), repo, find[0], find[1])
			if err != nil {
				t.Fatal(err)
			}
			if rel.Target != "fw/app.bin" || rel.SHA256 != sum || rel.Role != "targets" || rel.Version != 2 {
				t.Errorf("got %+v", rel)
			}
			if rel.Provenance == nil || string(rel.ProvenanceJSON) != declared || rel.Provenance.Build.Command != "make" {
				t.Errorf("provenance %+v %s", rel.Provenance, rel.ProvenanceJSON)
			}
		})
	}
	rel, err := FindRelease(context.Background(), repo, "fw/plain.bin", "")
	if err != nil || rel.Provenance != nil {
		t.Errorf("plain target: %+v, %v", rel, err)
	}
	if _, err := FindRelease(context.Background(), repo, "fw/none.bin", ""); !errors.Is(err, ErrNoTarget) {
		t.Errorf("missing target: %v", err)
	}
}

// TestAttackUnloggedProvenance: a targets version that is signed but not
// in the log (its declaration swapped for another source) is not read.
func TestAttackUnloggedProvenance(t *testing.T) {
	r, repo := fixtureRepo(t)
	evil := strings.Replace(declared, "example.com/fw.git", "evil.example/fw.git", 1)
	r.AddTarget("targets", "fw/app.bin", []byte("firmware v1"), map[string]any{"provenance": json.RawMessage(evil)})
	r.Publish()
	r.Remove("3.targets.json.tlog-proof")
	if _, err := FindRelease(context.Background(), repo, "fw/app.bin", ""); !errors.Is(err, update.ErrUnlogged) {
		t.Fatalf("got %v, want ErrUnlogged", err)
	}
}
