// Package dashboard serves the auditor's web dashboard from its state file:
// the log's size over time (an SVG plot), the latest verified checkpoint and
// its cosigners, each repository's release timeline (version, time seen,
// targets changed), the open alerts and the evidence behind each, and
// GET /checkpoint, the latest verified checkpoint note, which other
// auditors gossip with.
//
// Pages are rendered on the server with html/template; the stylesheet is
// embedded, and there is no JavaScript, so the dashboard works offline
// (pages refresh themselves every 30 seconds with a meta refresh).
// Every request only reads the state file; the handler is safe for
// concurrent use.
package dashboard

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shiplog/shiplog/audit/replay"
	"github.com/shiplog/shiplog/audit/store"
)

//go:embed assets templates
var files embed.FS

// Limits of what one page shows.
const (
	maxPlotPoints   = 400
	maxAlertsShown  = 500
	maxReleaseShown = 2000
)

// Handler serves the dashboard.
type Handler struct {
	db   *store.DB
	log  *slog.Logger
	mux  *http.ServeMux
	tmpl *template.Template
}

// New returns the dashboard of db. logger may be nil.
func New(db *store.DB, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{db: db, log: logger, mux: http.NewServeMux()}
	h.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"short": func(s string) string { return s[:min(len(s), 12)] },
	}).ParseFS(files, "templates/*.html"))
	assets, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err) // embedded at build time
	}
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(assets)))
	h.mux.HandleFunc("GET /{$}", h.overview)
	h.mux.HandleFunc("GET /repo", h.repo)
	h.mux.HandleFunc("GET /alerts/{id}", h.alert)
	h.mux.HandleFunc("GET /alerts/{id}/evidence/{key}", h.evidence)
	h.mux.HandleFunc("GET /checkpoint", h.checkpoint)
	return h
}

// ServeHTTP serves the dashboard. Request bodies are not read; each is
// capped at 1 KiB anyway.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1024)
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'none'")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := h.tmpl.ExecuteTemplate(w, name, data); err != nil {
		h.log.Error("dashboard template", "page", name, "err", err)
	}
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	h.log.Error("dashboard", "err", err)
	http.Error(w, "couldn't read the auditor's state", http.StatusInternalServerError)
}

// repoSummary is one line of the repositories table.
type repoSummary struct {
	ID       string
	Releases int
	Invalid  int
	Latest   map[string]uint64
	Roles    string
}

type overviewData struct {
	HaveHead  bool
	Head      store.Head
	Latest    *store.CheckpointRecord
	Plot      plot
	Repos     []repoSummary
	Alerts    []store.FindingRecord
	AlertsAll int
	Counts    map[string]int
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	var d overviewData
	d.Counts = map[string]int{}
	var points []store.CheckpointRecord
	err := h.db.View(func(tx *store.Tx) error {
		var err error
		if d.Head, d.HaveHead, err = tx.Head(); err != nil {
			return err
		}
		err = tx.Checkpoints(func(c store.CheckpointRecord) error {
			if c.Source == "ledger" {
				points = append(points, c)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.Repos(func(id string, s *replay.RepoState) error {
			rs := repoSummary{ID: id, Latest: s.Versions}
			var roles []string
			for role, v := range s.Versions {
				roles = append(roles, fmt.Sprintf("%s v%d", role, v))
			}
			sort.Strings(roles)
			rs.Roles = strings.Join(roles, ", ")
			err := tx.Releases(id, func(rel replay.Release) bool {
				rs.Releases++
				if !rel.Valid {
					rs.Invalid++
				}
				return true
			})
			d.Repos = append(d.Repos, rs)
			return err
		}); err != nil {
			return err
		}
		return tx.Findings(func(f store.FindingRecord) error {
			d.AlertsAll++
			d.Counts[f.Severity.String()]++
			d.Alerts = append(d.Alerts, f)
			return nil
		})
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	sort.Slice(d.Alerts, func(i, j int) bool { return d.Alerts[i].ID > d.Alerts[j].ID })
	if len(d.Alerts) > maxAlertsShown {
		d.Alerts = d.Alerts[:maxAlertsShown]
	}
	if len(points) > 0 {
		d.Latest = &points[len(points)-1]
	}
	d.Plot = newPlot(points)
	h.render(w, "overview.html", d)
}

type repoData struct {
	ID       string
	Releases []replay.Release
	More     int
}

func (h *Handler) repo(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" || len(id) > 255 {
		http.Error(w, "want ?id=<repository id>", http.StatusBadRequest)
		return
	}
	d := repoData{ID: id}
	err := h.db.View(func(tx *store.Tx) error {
		return tx.Releases(id, func(rel replay.Release) bool {
			d.Releases = append(d.Releases, rel)
			return true
		})
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	if len(d.Releases) == 0 {
		http.Error(w, "no releases of this repository are logged", http.StatusNotFound)
		return
	}
	// Timeline order: by log index, newest first.
	sort.Slice(d.Releases, func(i, j int) bool { return d.Releases[i].Index > d.Releases[j].Index })
	if len(d.Releases) > maxReleaseShown {
		d.More = len(d.Releases) - maxReleaseShown
		d.Releases = d.Releases[:maxReleaseShown]
	}
	h.render(w, "repo.html", d)
}

func (h *Handler) finding(w http.ResponseWriter, r *http.Request) (store.FindingRecord, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return store.FindingRecord{}, false
	}
	var f store.FindingRecord
	var ok bool
	err = h.db.View(func(tx *store.Tx) error {
		f, ok, err = tx.Finding(id)
		return err
	})
	if err != nil {
		h.fail(w, err)
		return f, false
	}
	if !ok {
		http.NotFound(w, r)
	}
	return f, ok
}

type evidenceItem struct {
	Key, Value string
}

func (h *Handler) alert(w http.ResponseWriter, r *http.Request) {
	f, ok := h.finding(w, r)
	if !ok {
		return
	}
	var items []evidenceItem
	for k, v := range f.Evidence {
		items = append(items, evidenceItem{k, v})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Key < items[j].Key })
	h.render(w, "alert.html", struct {
		F     store.FindingRecord
		Items []evidenceItem
	}{f, items})
}

// evidence serves one evidence item as a plain-text download (the fork
// evidence file for `shiplog verify-evidence`).
func (h *Handler) evidence(w http.ResponseWriter, r *http.Request) {
	f, ok := h.finding(w, r)
	if !ok {
		return
	}
	v, ok := f.Evidence[r.PathValue("key")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=finding-%d-%s.txt", f.ID, r.PathValue("key")))
	w.Write([]byte(v))
}

// checkpoint serves the latest verified checkpoint note, for gossip.
func (h *Handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	head, ok, err := h.db.Head()
	if err != nil {
		h.fail(w, err)
		return
	}
	if !ok {
		http.Error(w, "no verified checkpoint yet", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(head.Checkpoint)
}
