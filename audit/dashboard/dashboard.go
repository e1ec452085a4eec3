// Package dashboard serves the auditor's web dashboard from its state file:
// whether the ledger answers and when the last round succeeded, whether
// vendor mode is on, the log's size over time (an SVG plot), the latest
// verified checkpoint and its cosigners, a witness panel (each witness's and
// peer's last checkpoint size, lag and time), each repository's release
// timeline, a page per log entry (raw metadata, signing key IDs, inclusion
// proof, targets changed), search by SHA-256, target path, repository or
// index, the alerts with their evidence, which operators acknowledge and
// resolve with a note, and GET /checkpoint, the latest verified checkpoint
// note, which other auditors gossip with.
//
// Pages are rendered on the server with html/template; the stylesheet is
// embedded, and there is no JavaScript, so the dashboard works offline
// (pages refresh themselves every 30 seconds with a meta refresh, except
// those with a form). The only writes are alert-state forms: POST only,
// refused when the browser says the request is cross-origin (Go's
// http.CrossOriginProtection: Sec-Fetch-Site, then Origin against Host), with
// bodies capped at 8 KiB and notes at store.MaxAlertNote bytes. A release
// that vendor mode reports as not made by the vendor is never shown as
// valid. The handler is safe for concurrent use.
package dashboard

import (
	"context"
	"crypto/sha256"
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

	"github.com/shiplog/shiplog/audit/attestation"
	"github.com/shiplog/shiplog/audit/replay"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/signoff"
)

//go:embed assets templates
var files embed.FS

// Limits of what one page shows.
const (
	maxPlotPoints   = 400
	maxAlertsShown  = 500
	maxReleaseShown = 2000
)

// Config configures a Handler. State is required.
type Config struct {
	State *store.DB
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// VendorMode and VendorRepos say whether the auditor checks releases
	// against what the vendor made, and for which repositories.
	VendorMode  bool
	VendorRepos []string
	// Metadata, when set, fetches the metadata file with a SHA-256 for an
	// entry page (the auditor fetches it from the ledger and checks its
	// hash); nil means entry pages show no raw metadata.
	Metadata func(ctx context.Context, sum [sha256.Size]byte) ([]byte, error)
	// Changed, when set, is called after an operator changed an alert's
	// state (the auditor recounts its open-findings metric).
	Changed func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves the dashboard.
type Handler struct {
	cfg  Config
	db   *store.DB
	log  *slog.Logger
	mux  *http.ServeMux
	tmpl *template.Template
	csrf *http.CrossOriginProtection
}

// New returns the dashboard of db, without vendor mode or entry metadata.
// logger may be nil.
func New(db *store.DB, logger *slog.Logger) *Handler {
	return NewHandler(Config{State: db, Logger: logger})
}

// NewHandler returns the dashboard described by cfg.
func NewHandler(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, db: cfg.State, log: cfg.Logger, mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection()}
	h.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"ts":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"short":    func(s string) string { return s[:min(len(s), 12)] },
		"ago":      func(t time.Time) string { return ago(cfg.Now(), t) },
		"eligible": eligible,
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
	h.mux.Handle("POST /alerts/{id}/state", h.csrf.Handler(http.HandlerFunc(h.setAlertState)))
	h.mux.HandleFunc("GET /entry/{index}", h.entry)
	h.mux.HandleFunc("GET /search", h.search)
	h.mux.HandleFunc("GET /checkpoint", h.checkpoint)
	return h
}

// maxBody caps request bodies: the alert form, with a note of at most
// store.MaxAlertNote bytes URL-encoded, fits.
const maxBody = 8 << 10

// ServeHTTP serves the dashboard. Request bodies are capped at 8 KiB.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'none'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
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
	Alerts    []alertRow // open and acknowledged, newest first
	Resolved  []alertRow
	AlertsAll int
	Counts    map[string]int
	Status    status
	Witnesses []witnessRow
	Vendor    vendorInfo
}

// alertRow is a finding with what operators said about it.
type alertRow struct {
	store.FindingRecord
	State store.AlertState
}

type vendorInfo struct {
	On    bool
	Repos []string
}

// status is the ledger's health as the last rounds saw it.
type status struct {
	HaveRound bool
	store.RoundRecord
}

// witnessRow is one line of the witness panel.
type witnessRow struct {
	store.GossipRecord
	Lag      int64
	HaveLag  bool
	LagAhead bool
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	var d overviewData
	d.Counts = map[string]int{}
	d.Vendor = vendorInfo{h.cfg.VendorMode, h.cfg.VendorRepos}
	var points []store.CheckpointRecord
	err := h.db.View(func(tx *store.Tx) error {
		var err error
		if d.Head, d.HaveHead, err = tx.Head(); err != nil {
			return err
		}
		if d.Status.RoundRecord, d.Status.HaveRound, err = tx.Round(); err != nil {
			return err
		}
		gs, err := tx.Gossip()
		if err != nil {
			return err
		}
		for _, g := range gs {
			row := witnessRow{GossipRecord: g}
			if !g.Seen.IsZero() && d.Status.CheckpointSize > 0 {
				row.HaveLag, row.Lag = true, int64(d.Status.CheckpointSize)-int64(g.Size)
				row.LagAhead = row.Lag < 0
			}
			d.Witnesses = append(d.Witnesses, row)
		}
		notMade, err := notMadeByVendor(tx)
		if err != nil {
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
			foreign := map[string]bool{} // role and version of releases the vendor did not make
			err := tx.Releases(id, func(rel replay.Release) bool {
				rs.Releases++
				if !rel.Valid || notMade[rel.Index] {
					rs.Invalid++
				}
				if notMade[rel.Index] {
					foreign[fmt.Sprintf("%s v%d", rel.Role, rel.Version)] = true
				}
				return true
			})
			var roles []string
			for role, v := range s.Versions {
				rv := fmt.Sprintf("%s v%d", role, v)
				if foreign[rv] {
					rv += " (not made by the vendor)"
				}
				roles = append(roles, rv)
			}
			sort.Strings(roles)
			rs.Roles = strings.Join(roles, ", ")
			d.Repos = append(d.Repos, rs)
			return err
		}); err != nil {
			return err
		}
		return tx.Findings(func(f store.FindingRecord) error {
			st, err := tx.AlertState(f.ID)
			if err != nil {
				return err
			}
			if st.State == store.AlertResolved {
				d.Resolved = append(d.Resolved, alertRow{f, st})
				return nil
			}
			d.AlertsAll++
			d.Counts[f.Severity.String()]++
			d.Alerts = append(d.Alerts, alertRow{f, st})
			return nil
		})
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	for _, as := range []*[]alertRow{&d.Alerts, &d.Resolved} {
		sort.Slice(*as, func(i, j int) bool { return (*as)[i].ID > (*as)[j].ID })
		if len(*as) > maxAlertsShown {
			*as = (*as)[:maxAlertsShown]
		}
	}
	if len(points) > 0 {
		d.Latest = &points[len(points)-1]
	}
	d.Plot = newPlot(points)
	h.render(w, "overview.html", d)
}

type repoData struct {
	ID       string
	Releases []releaseRow
	More     int
}

// releaseRow is a release with the status the dashboard shows: "valid"
// only when the replay accepted it and vendor mode did not report it.
// windowAt is when devices with a common publicity window may install a
// release (docs/spec/publicity.md): the time auditors have to raise the
// alarm.
type windowAt struct {
	Window string
	At     time.Time
}

// commonWindows are the publicity windows the dashboard shows.
var commonWindows = []struct {
	name string
	d    time.Duration
}{{"24h", 24 * time.Hour}, {"72h", 72 * time.Hour}, {"7d", 7 * 24 * time.Hour}}

// eligible returns, for a release public since since, when devices with
// each common window become eligible; none when since is unknown.
func eligible(since time.Time) []windowAt {
	if since.IsZero() {
		return nil
	}
	out := make([]windowAt, 0, len(commonWindows))
	for _, w := range commonWindows {
		out = append(out, windowAt{w.name, since.Add(w.d)})
	}
	return out
}

type releaseRow struct {
	replay.Release
	NotMade bool
	// Signoff is who signed off on the targets of this release version
	// (statements naming it, docs/spec/signoff.md); empty when nobody did.
	Signoff []signoffLine
}

// signoffLine is one verdict and the attesters who stated it (by the name
// in their key), in log order, each once.
type signoffLine struct {
	Verdict string
	By      []string
}

// signoffOf groups the statements about a release by verdict: reproduced,
// reviewed, then mismatch (who objected).
func signoffOf(ss []attestation.Statement) []signoffLine {
	var out []signoffLine
	for _, v := range []string{signoff.Reproduced, signoff.Reviewed, signoff.Mismatch} {
		l := signoffLine{Verdict: v}
		seen := map[string]bool{}
		for _, s := range ss {
			if s.Verdict == v && !seen[s.Key] {
				seen[s.Key] = true
				l.By = append(l.By, s.Name)
			}
		}
		if len(l.By) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// Status is "valid", "invalid", or "not made by the vendor".
func (r releaseRow) Status() string {
	switch {
	case r.NotMade:
		return "not made by the vendor"
	case !r.Valid:
		return "invalid"
	}
	return "valid"
}

func (h *Handler) repo(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" || len(id) > 255 {
		http.Error(w, "want ?id=<repository id>", http.StatusBadRequest)
		return
	}
	d := repoData{ID: id}
	err := h.db.View(func(tx *store.Tx) error {
		notMade, err := notMadeByVendor(tx)
		if err != nil {
			return err
		}
		if err := tx.Releases(id, func(rel replay.Release) bool {
			d.Releases = append(d.Releases, releaseRow{Release: rel, NotMade: notMade[rel.Index]})
			return true
		}); err != nil {
			return err
		}
		for i := range d.Releases {
			r := &d.Releases[i]
			if r.Role == "root" {
				continue
			}
			ss, err := tx.ReleaseStatements(r.Repo, r.Role, r.Version)
			if err != nil {
				return err
			}
			r.Signoff = signoffOf(ss)
		}
		return nil
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
	var st store.AlertState
	if err := h.db.View(func(tx *store.Tx) (err error) { st, err = tx.AlertState(f.ID); return err }); err != nil {
		h.fail(w, err)
		return
	}
	h.render(w, "alert.html", struct {
		F       store.FindingRecord
		Items   []evidenceItem
		State   store.AlertState
		MaxNote int
	}{f, items, st, store.MaxAlertNote})
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
