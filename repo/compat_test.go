package repo

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// serve serves DIR over real HTTP as a static web server would: metadata
// base URL DIR/metadata/, targets base URL DIR/targets/.
func serve(t testing.TB, dir string) (metadataURL, targetsURL string) {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL + "/metadata", srv.URL + "/targets"
}

// goTUFDownload runs go-tuf v2's own updater against the served repository,
// trusting root v1, and returns the verified target bytes.
func goTUFDownload(t testing.TB, dir, targetPath string) ([]byte, error) {
	t.Helper()
	metaURL, targetsURL := serve(t, dir)
	root, err := os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New(metaURL, root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir = t.TempDir()
	cfg.LocalTargetsDir = t.TempDir()
	cfg.RemoteTargetsURL = targetsURL
	up, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := up.Refresh(); err != nil {
		return nil, err
	}
	ti, err := up.GetTargetInfo(targetPath)
	if err != nil {
		return nil, err
	}
	_, data, err := up.DownloadTarget(ti, filepath.Join(t.TempDir(), "out"), "")
	return data, err
}

func TestGoTUFUpdaterReadsRepository(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"fw/app.bin": "firmware v1", "notes.txt": "hello"})
	f.sign(f.keys["targets"])
	res := f.publish(true)
	if len(res.Logged) != 1 || res.Exposed == nil || res.Exposed.Unchanged {
		t.Fatalf("publish = %+v", res)
	}
	got, err := goTUFDownload(t, f.dir, "fw/app.bin")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "firmware v1" {
		t.Fatalf("downloaded %q", got)
	}
}

func TestGoTUFUpdaterFollowsRotationAndHashBins(t *testing.T) {
	f := newFixture(t)
	// Delegate to 16 hash bins with a new key, rotate the root and the
	// targets key, and check that a client starting from root v1 follows.
	binKey := genKey(t, "ed25519")
	r := f.open()
	if _, err := r.Delegate(DelegateOptions{HashBins: 16, Keys: []*metadata.Key{binKey.Public}}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	f.add(map[string]string{"a/one.bin": "one", "b/two.bin": "two", "c/three.bin": "three"})
	newTargets := genKey(t, "ed25519")
	r = f.open()
	if _, err := r.Rotate(RotateOptions{Role: "targets", Add: []*metadata.Key{newTargets.Public}, Remove: []string{f.keys["targets"].ID}}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	f.sign(f.keys["root"], "root")
	f.sign(newTargets, "targets")
	f.sign(binKey)
	f.publish(true)
	for p, want := range map[string]string{"a/one.bin": "one", "b/two.bin": "two", "c/three.bin": "three"} {
		got, err := goTUFDownload(t, f.dir, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if string(got) != want {
			t.Fatalf("%s: got %q", p, got)
		}
	}
}
