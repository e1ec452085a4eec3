package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/internal/harness"
)

// The tuf-conformance suite itself (Python, from PyPI/GitHub) cannot be
// fetched on this machine. These tests drive the binary through the same
// client CLI protocol (CLIENT-CLI.md) against repositories made with go-tuf,
// checking what the suite observes: exit codes, the metadata persisted
// byte for byte under unversioned names, the downloaded artifacts, and the
// HTTP requests made.

type conformance struct {
	t        *testing.T
	repo     *harness.RawRepo
	mu       sync.Mutex
	requests []string
	override map[string][]byte
	url      string
	meta     string
	targets  string
	now      time.Time
}

func newConformance(t *testing.T) *conformance {
	c := &conformance{t: t, repo: harness.NewRawRepo(t), override: map[string][]byte{}, now: harness.Now}
	files := http.FileServer(http.Dir(c.repo.Dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.requests = append(c.requests, r.URL.Path)
		b, ok := c.override[r.URL.Path]
		c.mu.Unlock()
		if ok {
			w.Write(b)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	dir := t.TempDir()
	c.meta, c.targets = filepath.Join(dir, "metadata"), filepath.Join(dir, "targets")
	os.Mkdir(c.meta, 0o755)
	os.Mkdir(c.targets, 0o755)
	return c
}

func (c *conformance) run(args ...string) int {
	c.t.Helper()
	c.mu.Lock()
	c.requests = nil
	c.mu.Unlock()
	env := []string{"SHIPLOG_DEVICE_TIME=" + c.now.Format(time.RFC3339)}
	return runDevice(c.t, env, append([]string{"--metadata-url", c.url + "/metadata", "--metadata-dir", c.meta}, args...)...).code
}

func (c *conformance) init() {
	c.t.Helper()
	root := writeFile(c.t, c.t.TempDir(), "root.json", c.repo.RootBytes(1))
	res := runDevice(c.t, nil, "--metadata-dir", c.meta, "init", root)
	if res.code != 0 || len(c.requests) != 0 {
		c.t.Fatalf("init: %+v, requests %v", res, c.requests)
	}
}

func (c *conformance) download(names ...string) int {
	args := []string{"--target-dir", c.targets, "--target-base-url", c.url + "/targets"}
	for _, n := range names {
		args = append(args, "--target-name", n)
	}
	return c.run(append(args, "download")...)
}

func (c *conformance) local(name string) []byte {
	b, _ := os.ReadFile(filepath.Join(c.meta, name))
	return b
}

func TestConformanceRefresh(t *testing.T) {
	c := newConformance(t)
	c.init()
	if code := c.run("refresh"); code != 0 {
		t.Fatalf("refresh exit %d", code)
	}
	want := []string{"/metadata/2.root.json", "/metadata/timestamp.json", "/metadata/1.snapshot.json", "/metadata/1.targets.json"}
	if !slices.Equal(c.requests, want) {
		t.Errorf("requests %v, want %v", c.requests, want)
	}
	for local, remote := range map[string]string{"root.json": "1.root.json", "timestamp.json": "timestamp.json", "snapshot.json": "1.snapshot.json", "targets.json": "1.targets.json"} {
		if string(c.local(local)) != string(c.repo.Read(remote)) {
			t.Errorf("%s is not byte for byte %s", local, remote)
		}
	}
	// Nothing new: only the root probe and the timestamp are fetched.
	c.run("refresh")
	if want := []string{"/metadata/2.root.json", "/metadata/timestamp.json"}; !slices.Equal(c.requests, want) {
		t.Errorf("second refresh requests %v, want %v", c.requests, want)
	}
	// A root rotation is persisted as root.json.
	c.repo.RotateRoot("timestamp")
	c.repo.WriteTimestamp()
	if code := c.run("refresh"); code != 0 || string(c.local("root.json")) != string(c.repo.RootBytes(2)) {
		t.Errorf("rotation: exit %d", code)
	}
}

func TestConformanceDownload(t *testing.T) {
	c := newConformance(t)
	c.repo.AddTarget("targets", "path/to/a/file.txt", []byte("target file contents"), nil)
	c.repo.Delegate("targets", "apps", []string{"apps/*"}, false)
	c.repo.AddTarget("apps", "apps/a b.bin", []byte("app"), nil)
	c.repo.Publish()
	c.init()
	if code := c.download("path/to/a/file.txt", "apps/a b.bin"); code != 0 {
		t.Fatalf("download exit %d", code)
	}
	for name, want := range map[string]string{"path/to/a/file.txt": "target file contents", "apps/a b.bin": "app"} {
		got, err := os.ReadFile(filepath.Join(c.targets, url.PathEscape(name)))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	if string(c.local("apps.json")) != string(c.repo.Read("1.apps.json")) {
		t.Error("delegated role not persisted byte for byte")
	}
	// Cached: no target request the second time.
	c.download("path/to/a/file.txt")
	for _, r := range c.requests {
		if filepath.Dir(r) != "/metadata" {
			t.Errorf("cached target fetched again: %s", r)
		}
	}
	// A substituted artifact is refused and not stored.
	c.repo.AddTarget("targets", "other.txt", []byte("legit"), nil)
	c.repo.Publish()
	c.mu.Lock()
	c.override["/targets/"+harness.TargetName("other.txt", []byte("legit"))] = []byte("evil!")
	c.mu.Unlock()
	if code := c.download("other.txt"); code != 1 {
		t.Errorf("malicious artifact: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(c.targets, "other.txt")); err == nil {
		t.Error("malicious artifact stored")
	}
	if code := c.download("no/such/target"); code != 1 {
		t.Errorf("missing target: exit %d", code)
	}
}

func TestConformanceExpiryAndRollback(t *testing.T) {
	c := newConformance(t)
	c.init()
	if code := c.run("refresh"); code != 0 {
		t.Fatal(code)
	}
	old := c.repo.Read("timestamp.json")
	c.repo.WriteTimestamp()
	if code := c.run("refresh"); code != 0 {
		t.Fatal(code)
	}
	// Rollback: the old timestamp is refused and the local one kept.
	c.override["/metadata/timestamp.json"] = old
	if code := c.run("refresh"); code != 1 {
		t.Errorf("rollback: exit %d", code)
	}
	if string(c.local("timestamp.json")) != string(c.repo.Read("timestamp.json")) {
		t.Error("rolled-back timestamp persisted")
	}
	delete(c.override, "/metadata/timestamp.json")
	// Freeze: two years later, the same metadata is expired (the reference
	// time comes from SHIPLOG_DEVICE_TIME; faketime does not reach Go).
	c.now = harness.Now.Add(2 * 365 * 24 * time.Hour)
	if code := c.run("refresh"); code != 1 {
		t.Errorf("expired: exit %d", code)
	}
	_ = fmt.Sprint
}

// TestConformanceDiamondDelegationSecondDelegatorKeysChecked is the
// diamond: release is delegated by a (with the key that signs it) and by b
// (with a key that never signed it). Downloading a target through a, then
// one through b, in one invocation must fail for the second and store
// nothing for it; asking for the second alone fails too.
func TestConformanceDiamondDelegationSecondDelegatorKeysChecked(t *testing.T) {
	c := newConformance(t)
	c.repo.Delegate("targets", "a", []string{"a/*"}, false)
	c.repo.Delegate("targets", "b", []string{"b/*"}, false)
	c.repo.Delegate("a", "release", []string{"a/*"}, false)
	c.repo.DelegateAlso("b", "release", []string{"b/*"})
	c.repo.AddTarget("release", "a/app.bin", []byte("app"), nil)
	c.repo.AddTarget("release", "b/evil.bin", []byte("evil"), nil)
	c.repo.Publish()
	c.init()
	if code := c.download("a/app.bin"); code != 0 {
		t.Fatalf("target through the delegator that signed release: exit %d", code)
	}
	if code := c.download("a/app.bin", "b/evil.bin"); code != 1 {
		t.Errorf("diamond, second delegator's keys never signed release: exit %d", code)
	}
	if code := c.download("b/evil.bin"); code != 1 {
		t.Errorf("through b alone: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(c.targets, url.PathEscape("b/evil.bin"))); err == nil {
		t.Error("target signed with a key b never authorised was stored")
	}
}
