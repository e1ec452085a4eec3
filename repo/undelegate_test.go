package repo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestRemovedDelegationNoLongerTrusted: removing a delegation (TUF 1.0
// §4.5) stages a delegator without the role and its now unused keys; once
// published, the snapshot no longer lists the role and a TUF client no
// longer finds the targets it listed, while everything else still
// resolves.
func TestRemovedDelegationNoLongerTrusted(t *testing.T) {
	f := newFixture(t)
	fwKey := genKey(t, keys.Ed25519)
	r := f.open()
	if _, err := r.Delegate(DelegateOptions{Name: "fw-team", Paths: []string{"fw/*"}, Keys: []*metadata.Key{fwKey.Public}}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	f.add(map[string]string{"fw/a.bin": "firmware", "readme.txt": "hello"})
	f.sign(f.keys["targets"])
	f.sign(fwKey)
	f.publish(true)
	srv := httptest.NewServer(http.FileServer(http.Dir(f.dir)))
	defer srv.Close()
	resolve := func(path string) error {
		c := &update.Client{Remote: &update.HTTPRemote{MetadataURL: srv.URL + "/metadata", TargetsURL: srv.URL + "/targets", Client: srv.Client()}}
		s, err := c.Refresh(context.Background(), update.Trusted{Root: mustRead(t, filepath.Join(f.dir, MetadataDir, "1.root.json"))})
		if err != nil {
			return err
		}
		_, err = s.Target(context.Background(), path)
		return err
	}
	if err := resolve("fw/a.bin"); err != nil {
		t.Fatalf("before removal: %v", err)
	}

	r = f.open()
	if _, _, err := r.Undelegate("", "nobody"); err == nil {
		t.Error("removed a delegation that does not exist")
	}
	staged, discarded, err := r.Undelegate("", "fw-team")
	if err != nil || staged != "targets" || len(discarded) != 0 {
		t.Fatalf("Undelegate = %q %v %v", staged, discarded, err)
	}
	if d := r.staged.Targets["targets"].Signed.Delegations; d != nil {
		t.Errorf("staged targets still delegates: %+v", d)
	}
	r.Close()
	f.sign(f.keys["targets"])
	f.publish(true)
	r = f.open()
	defer r.Close()
	if _, ok := r.snapshot.Signed.Meta["fw-team.json"]; ok {
		t.Error("the new snapshot still lists the removed role")
	}
	if err := resolve("fw/a.bin"); !errors.Is(err, update.ErrTargetNotFound) {
		t.Errorf("after removal: %v, want not found", err)
	}
	if err := resolve("readme.txt"); err != nil {
		t.Errorf("other targets after removal: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUndelegateDiscardsUnreachableStagedRoles: removing a delegation
// whose role has an unpublished staged version drops that version too.
func TestUndelegateDiscardsUnreachableStagedRoles(t *testing.T) {
	f := newFixture(t)
	k := genKey(t, keys.Ed25519)
	r := f.open()
	defer r.Close()
	if _, err := r.Delegate(DelegateOptions{Name: "apps", Paths: []string{"apps/*"}, Keys: []*metadata.Key{k.Public}}); err != nil {
		t.Fatal(err)
	}
	_, discarded, err := r.Undelegate("targets", "apps")
	if err != nil || strings.Join(discarded, ",") != "apps" {
		t.Fatalf("Undelegate: %v %v", discarded, err)
	}
	if r.staged.Targets["apps"] != nil {
		t.Error("unreachable staged role kept")
	}
}
