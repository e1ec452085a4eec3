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
		"staging.json": "secret", "shiplog-repo.json": "{}",
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
