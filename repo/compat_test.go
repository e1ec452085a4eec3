package repo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/shiplog/shiplog/repo/keys"

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

// richTargets are the targets of richRepo: in targets itself, in a named
// delegation, and in hash bins delegated by another named role.
var richTargets = map[string]string{
	"notes.txt":  "release notes",
	"fw/app.bin": "firmware 2.1",
	"bulk/a.bin": "bulk a",
	"bulk/b.bin": "bulk b",
	"bulk/c.bin": "bulk c",
}

// richRepo builds a repository that exercises what clients must follow:
// ECDSA P-256 and Ed25519 keys, a named delegation, hash bins under a
// delegated role, a root rotation to a 2-of-2 threshold and a targets key
// rotation, each version logged and then exposed.
func richRepo(t testing.TB) *fixture {
	return richRepoOn(t, newRepo(t, keys.ECDSAP256))
}

// richRepoOn builds richRepo's history in the initialised repository f.
func richRepoOn(t testing.TB, f *fixture) *fixture {
	must := func(_ []string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.sign(f.keys["root"], "root")
	f.sign(f.keys["targets"], "targets")
	if _, err := Register(context.Background(), f.dir, f.opts(false)); err != nil {
		t.Fatal(err)
	}
	f.publish(true)
	fwKey, bulkKey, binKey := genKey(t, keys.Ed25519), genKey(t, keys.ECDSAP256), genKey(t, keys.Ed25519)
	r := f.open()
	must(r.Delegate(DelegateOptions{Name: "fw-team", Paths: []string{"fw/*"}, Keys: []*metadata.Key{fwKey.Public}}))
	must(r.Delegate(DelegateOptions{Name: "bulk", Paths: []string{"bulk/*"}, Terminating: true, Keys: []*metadata.Key{bulkKey.Public}}))
	r.Close()
	f.sign(f.keys["targets"])
	f.sign(fwKey)
	f.sign(bulkKey)
	f.publish(true)
	r = f.open()
	must(r.Delegate(DelegateOptions{From: "bulk", HashBins: 8, Prefix: "bulk-bin", Keys: []*metadata.Key{binKey.Public}}))
	r.Close()
	f.add(richTargets)
	// Rotate: root gains a second key and needs both; targets gets a new key.
	root2, targets2 := genKey(t, keys.Ed25519), genKey(t, keys.ECDSAP256)
	r = f.open()
	must(r.Rotate(RotateOptions{Role: "root", Add: []*metadata.Key{root2.Public}, Threshold: 2}))
	must(r.Rotate(RotateOptions{Role: "targets", Add: []*metadata.Key{targets2.Public}, Remove: []string{f.keys["targets"].ID}}))
	r.Close()
	f.sign(f.keys["root"], "root")
	f.sign(root2, "root")
	f.sign(targets2)
	f.sign(fwKey)
	f.sign(bulkKey)
	f.sign(binKey)
	res := f.publish(true)
	if res.Exposed == nil || len(res.Pending) > 0 {
		t.Fatalf("publish: %+v", res)
	}
	f.keys["targets"] = targets2
	return f
}

// tamperTarget flips one byte of the stored file of a target.
func tamperTarget(t testing.TB, dir, targetPath string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "targets", filepath.Dir(targetPath), "*."+filepath.Base(targetPath)))
	if len(matches) != 1 {
		t.Fatalf("stored files of %s: %v", targetPath, matches)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if err := os.WriteFile(matches[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGoTUFUpdaterReadsRichRepository(t *testing.T) {
	f := richRepo(t)
	for p, want := range richTargets {
		got, err := goTUFDownload(t, f.dir, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if string(got) != want {
			t.Fatalf("%s: got %q, want %q", p, got, want)
		}
	}
	tamperTarget(t, f.dir, "bulk/b.bin")
	if _, err := goTUFDownload(t, f.dir, "bulk/b.bin"); err == nil {
		t.Fatal("go-tuf accepted a tampered target")
	}
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
