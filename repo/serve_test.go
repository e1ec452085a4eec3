package repo

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestHandlerServesOnlyTheRepository(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"metadata/timestamp.json": "{}", "metadata/3.targets.json": "{}", "targets/ab.app.bin": "x",
		"metadata/signoff/ab.json": "{}", "staging.json": "secret", "shiplog-repo.json": "{}",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	h := Handler(dir)
	for _, tc := range []struct {
		method, path string
		code         int
		cache        string
	}{
		{"GET", "/metadata/timestamp.json", 200, "no-cache"},
		{"GET", "/metadata/3.targets.json", 200, "public, max-age=31536000, immutable"},
		{"HEAD", "/targets/ab.app.bin", 200, "public, max-age=31536000, immutable"},
		{"GET", "/metadata/signoff/ab.json", 200, "no-cache"},
		{"GET", "/staging.json", 404, ""},
		{"GET", "/shiplog-repo.json", 404, ""},
		{"GET", "/metadata/", 404, ""},
		{"GET", "/metadata/../staging.json", 404, ""},
		{"POST", "/metadata/timestamp.json", 405, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code || (tc.code == http.StatusOK && rec.Header().Get("Cache-Control") != tc.cache) {
			t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("Cache-Control"), tc.code, tc.cache)
		}
	}
}

// TestAttackServeSymlinkLeak: links planted in metadata/ or targets/ (to a
// key elsewhere in the repository, to a file outside it, through a linked
// directory) are not served.
func TestAttackServeSymlinkLeak(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"metadata", "targets", "keys"} {
		must(os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(os.WriteFile(filepath.Join(dir, "keys", "targets.key"), []byte("private key"), 0o600))
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "targets", "ok.bin"), []byte("ok"), 0o644))
	must(os.Symlink("../keys/targets.key", filepath.Join(dir, "metadata", "1.targets.json")))
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "targets", "out.bin")))
	must(os.Symlink("../keys", filepath.Join(dir, "targets", "keys")))
	must(os.Symlink(outside, filepath.Join(dir, "targets", "outdir")))
	must(os.Symlink("ok.bin", filepath.Join(dir, "targets", "alias.bin")))
	h := Handler(dir)
	for _, p := range []string{
		"/metadata/1.targets.json", "/targets/out.bin", "/targets/keys/targets.key",
		"/targets/outdir/secret", "/targets/alias.bin",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d %q, want 404", p, rec.Code, rec.Body.String())
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/targets/ok.bin", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Errorf("GET /targets/ok.bin = %d %q", rec.Code, rec.Body.String())
	}
}
