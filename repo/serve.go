package repo

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// Handler serves a repository directory as a static web server or CDN
// should: only metadata/ and targets/ are public (staging.json and
// shiplog-repo.json are not), unversioned metadata (timestamp.json,
// root.json) and sign-off evidence (metadata/signoff/) must be revalidated,
// and everything else is immutable. It serves
// GET and HEAD only, never lists directories, and serves regular files only:
// every component of the path must be a real directory or, last, a regular
// file, never a symbolic link, device, pipe or socket (a link planted in
// targets/ must not serve a key from elsewhere), and the file is opened
// through an os.Root of dir, so nothing outside dir is ever read even if the
// tree changes during the check. Safe for concurrent use.
func Handler(dir string) http.Handler {
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
		f, fi, err := openRegular(dir, strings.TrimPrefix(p, "/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		switch {
		case p == "/metadata/timestamp.json" || p == "/metadata/root.json":
			w.Header().Set("Cache-Control", "no-cache")
		case strings.HasPrefix(p, "/metadata/"+SignoffDir+"/"): // grows as statements are logged
			w.Header().Set("Cache-Control", "no-cache")
		default:
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	})
}

var errNotRegular = errors.New("not a regular file")

// openRegular opens the slash-separated, cleaned relative path name inside
// dir if every directory on the way is a directory and the file is a
// regular file, none of them a symbolic link.
func openRegular(dir, name string) (*os.File, fs.FileInfo, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	parts := strings.Split(name, "/")
	for i := range parts {
		fi, err := root.Lstat(strings.Join(parts[:i+1], "/"))
		if err != nil {
			return nil, nil, err
		}
		last := i == len(parts)-1
		if (!last && !fi.IsDir()) || (last && !fi.Mode().IsRegular()) {
			return nil, nil, errNotRegular
		}
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, errNotRegular
	}
	return f, fi, nil
}
