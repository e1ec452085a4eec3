package audit

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func timestampJSON(t *testing.T, version int64, expires time.Time) []byte {
	t.Helper()
	ts := metadata.Timestamp(expires)
	ts.Signed.Version = version
	b, err := ts.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAttackFreezeByLapsedTimestamp: a repository left to let its timestamp
// expire (by neglect, or an attacker who stops the refresh) stops every
// device's updates without any bad signature; the auditor reports it once
// per lapsed version, for a served URL and a vendor's local directory.
func TestAttackFreezeByLapsedTimestamp(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 1)
	var mu sync.Mutex
	served := timestampJSON(t, 1, time.Now().Add(time.Hour))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/metadata/timestamp.json" {
			http.NotFound(w, r)
			return
		}
		w.Write(served)
	}))
	defer srv.Close()
	local := t.TempDir()
	if err := os.WriteFile(filepath.Join(local, "timestamp.json"), timestampJSON(t, 7, time.Now().Add(time.Hour)), 0o644); err != nil {
		t.Fatal(err)
	}
	a := e.auditor(func(c *Config) { c.Repositories = []string{srv.URL + "/metadata/", local} })
	wantNone(t, e.step(a)) // both fresh

	mu.Lock()
	served = timestampJSON(t, 2, time.Now().Add(-time.Minute))
	mu.Unlock()
	f := wantFinding(t, e.step(a), alert.KindTimestampLapsed)
	if f.Version != 2 || f.Evidence["source"] != srv.URL+"/metadata/timestamp.json" || f.Severity != alert.Warning {
		t.Errorf("finding %+v", f)
	}
	wantNone(t, e.step(a)) // reported once

	if err := os.WriteFile(filepath.Join(local, "timestamp.json"), timestampJSON(t, 8, time.Now().Add(-time.Second)), 0o644); err != nil {
		t.Fatal(err)
	}
	if f := wantFinding(t, e.step(a), alert.KindTimestampLapsed); f.Version != 8 {
		t.Errorf("local repository finding %+v", f)
	}
}

func TestLapsedTimestampMalformed(t *testing.T) {
	if f := lapsedTimestamp([]byte("<html>"), "x", time.Now()); f == nil || f.Kind != alert.KindTimestampLapsed {
		t.Errorf("got %+v", f)
	}
}
