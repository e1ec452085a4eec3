package repo

import (
	"net/http"
	"path"
	"strings"
)

// Handler serves a repository directory as a static web server or CDN
// should: only metadata/ and targets/ are public (staging.json and
// shiplog-repo.json are not), unversioned metadata (timestamp.json,
// root.json) must be revalidated, and everything else is immutable. It serves
// GET and HEAD only and never lists directories. Safe for concurrent use.
func Handler(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean(r.URL.Path)
		if !(strings.HasPrefix(p, "/metadata/") || strings.HasPrefix(p, "/targets/")) || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		switch p {
		case "/metadata/timestamp.json", "/metadata/root.json":
			w.Header().Set("Cache-Control", "no-cache")
		default:
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		files.ServeHTTP(w, r)
	})
}
