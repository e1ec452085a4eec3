package device_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/internal/harness"
)

// env is a device following a fixture repository served over HTTP.
type env struct {
	t    *testing.T
	repo *harness.RawRepo
	srv  *httptest.Server
	dir  string
	time time.Time

	mu       sync.Mutex
	override map[string]http.HandlerFunc // by URL path
	ledger   http.Handler                // serves /v1/ when set
}

func newEnv(t *testing.T, quorum int, cfg device.Config) *env {
	e := &env{t: t, repo: harness.NewRawRepo(t), dir: filepath.Join(t.TempDir(), "device"), time: harness.Now, override: map[string]http.HandlerFunc{}}
	files := http.FileServer(http.Dir(e.repo.Dir))
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		h, ledger := e.override[r.URL.Path], e.ledger
		e.mu.Unlock()
		switch {
		case h != nil:
			h(w, r)
		case ledger != nil && strings.HasPrefix(r.URL.Path, "/v1/"):
			ledger.ServeHTTP(w, r)
		default:
			files.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(e.srv.Close)
	cfg.Repository = e.repo.ID
	cfg.RepositoryURL = e.srv.URL
	if cfg.Approval == "" {
		cfg.Approval = approval.Auto
	}
	if err := device.Init(e.dir, cfg, e.repo.RootBytes(1), e.repo.PolicyText(quorum)); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) serve(path string, h http.HandlerFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.override[path] = h
}

func (e *env) serveBytes(path string, b []byte) {
	e.serve(path, func(w http.ResponseWriter, r *http.Request) { w.Write(b) })
}

func (e *env) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.override = map[string]http.HandlerFunc{}
}

func (e *env) open(o device.Options) *device.Device {
	e.t.Helper()
	if o.Time.IsZero() {
		o.Time = e.time
	}
	o.HTTPClient = e.srv.Client()
	d, err := device.Open(e.dir, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) update() (*device.Result, error) {
	d := e.open(device.Options{})
	defer d.Close()
	return d.Update(context.Background())
}

func (e *env) mustUpdate() *device.Result {
	e.t.Helper()
	res, err := e.update()
	if err != nil {
		e.t.Fatalf("update: %v", err)
	}
	return res
}

// snapshot is the device's trusted state file and installed files.
type snapshot struct {
	state string
	files map[string]string
}

func (e *env) snap() snapshot {
	e.t.Helper()
	st, err := os.ReadFile(filepath.Join(e.dir, "state"))
	if err != nil {
		e.t.Fatal(err)
	}
	s := snapshot{state: string(st), files: map[string]string{}}
	root := filepath.Join(e.dir, "install")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if d.Type()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			s.files[rel] = "-> " + l
		} else if !d.IsDir() {
			b, _ := os.ReadFile(p)
			s.files[rel] = string(b)
		}
		return nil
	})
	return s
}

func (s snapshot) equal(o snapshot) bool {
	if s.state != o.state || len(s.files) != len(o.files) {
		return false
	}
	for k, v := range s.files {
		if o.files[k] != v {
			return false
		}
	}
	return true
}

func (s snapshot) list() string {
	var ks []string
	for k, v := range s.files {
		if len(v) > 40 {
			v = v[:40]
		}
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	return strings.Join(ks, "\n")
}

// attack runs an update that must fail and leave the device as it was,
// and returns the error.
func (e *env) attack() error {
	e.t.Helper()
	before := e.snap()
	res, err := e.update()
	if err == nil {
		e.t.Fatalf("update succeeded under attack: %+v", res)
	}
	if after := e.snap(); !after.equal(before) {
		e.t.Fatalf("attack changed the device:\nbefore:\n%s\nafter:\n%s", before.list(), after.list())
	}
	return err
}

// installed returns the content of an installed target of the active
// version.
func (e *env) installed(path string) string {
	b, err := os.ReadFile(filepath.Join(e.dir, "install", "current", filepath.FromSlash(path)))
	if err != nil {
		return ""
	}
	return string(b)
}

// start makes a device with firmware v1 installed.
func start(t *testing.T, quorum int) *env {
	e := newEnv(t, quorum, device.Config{})
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), map[string]any{"release_notes": "first release"})
	e.repo.Publish()
	res := e.mustUpdate()
	if !res.Installed || e.installed("fw/image.bin") != "firmware v1" {
		t.Fatalf("initial install: %+v, installed %q", res, e.installed("fw/image.bin"))
	}
	return e
}

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

// withLedger serves the ledger's proof API from the repository's log and
// configures the device to use it.
func (e *env) withLedger() {
	l := e.repo.Log
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/proof", func(w http.ResponseWriter, r *http.Request) {
		leaf, err := hex.DecodeString(r.URL.Query().Get("leaf"))
		i, ok := l.IndexOf(leaf)
		if err != nil || !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(l.Proof(i, e.repo.Cosigners...))
	})
	mux.HandleFunc("GET /v1/consistency", func(w http.ResponseWriter, r *http.Request) {
		old, _ := strconv.ParseUint(r.URL.Query().Get("old"), 10, 64)
		nw, _ := strconv.ParseUint(r.URL.Query().Get("new"), 10, 64)
		if old > nw || nw > l.Size() {
			http.Error(w, "bad sizes", http.StatusBadRequest)
			return
		}
		for _, h := range l.Consistency(old, nw) {
			fmt.Fprintln(w, base64.StdEncoding.EncodeToString(h[:]))
		}
	})
	e.mu.Lock()
	e.ledger = mux
	e.mu.Unlock()
	cfgPath := filepath.Join(e.dir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	var cfg map[string]any
	json.Unmarshal(b, &cfg)
	cfg["ledger"] = e.srv.URL
	b, _ = json.Marshal(cfg)
	os.WriteFile(cfgPath, b, 0o644)
}

// heldSize returns the size of the checkpoint the device holds.
func heldSize(t *testing.T, e *env) uint64 {
	d := e.open(device.Options{})
	defer d.Close()
	st, err := d.Status()
	if err != nil || len(st.Checkpoints) != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}
	return st.Checkpoints[0].Size
}

func entryBytes(t *testing.T, repo, role string, version int64, b []byte) []byte {
	en, err := entry.New(repo, role, uint64(version), b)
	if err != nil {
		t.Fatal(err)
	}
	return en.Format()
}
