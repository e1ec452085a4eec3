package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/dashboard"
	"github.com/shiplog/shiplog/audit/store"
)

func findingDB(t testing.TB) (*store.DB, uint64) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var id uint64
	err = db.Update(func(tx *store.Tx) error {
		_, err := tx.AddFinding(alert.Finding{Time: time.Now(), Severity: alert.Critical, Kind: alert.KindFork, Message: "two heads"})
		id = tx.Added[0].ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, id
}

func post(t *testing.T, srv *httptest.Server, path string, form url.Values, hdr map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func alertState(t *testing.T, db *store.DB, id uint64) store.AlertState {
	t.Helper()
	var st store.AlertState
	if err := db.View(func(tx *store.Tx) (err error) { st, err = tx.AlertState(id); return err }); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAttackCrossSiteAlertResolution: a page on another site that submits
// the resolve form in the operator's browser (CSRF) is refused, as are
// oversized notes, unknown states and resolutions without a note; a
// same-origin form is stored durably before the redirect, and the change
// hook runs.
func TestAttackCrossSiteAlertResolution(t *testing.T) {
	db, id := findingDB(t)
	changed := 0
	srv := httptest.NewServer(dashboard.NewHandler(dashboard.Config{State: db, Changed: func() { changed++ }}))
	defer srv.Close()
	path := "/alerts/" + strconv.FormatUint(id, 10) + "/state"
	resolve := url.Values{"state": {"resolved"}, "note": {"false alarm"}}

	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example"},
	} {
		if code := post(t, srv, path, resolve, hdr); code != http.StatusForbidden {
			t.Errorf("cross-origin POST %v: %d, want 403", hdr, code)
		}
	}
	if st := alertState(t, db, id); st.State != store.AlertOpen {
		t.Fatalf("a refused request changed the alert: %+v", st)
	}
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL}
	for name, tc := range map[string]struct {
		form url.Values
		want int
	}{
		"note too long":    {url.Values{"state": {"acknowledged"}, "note": {strings.Repeat("x", store.MaxAlertNote+1)}}, 413},
		"body too large":   {url.Values{"state": {"acknowledged"}, "note": {strings.Repeat("é", 3000)}}, 413},
		"unknown state":    {url.Values{"state": {"deleted"}}, 400},
		"resolve, no note": {url.Values{"state": {"resolved"}}, 400},
	} {
		if code := post(t, srv, path, tc.form, same); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}
	if code := post(t, srv, "/alerts/999/state", url.Values{"state": {"acknowledged"}}, same); code != 404 {
		t.Errorf("unknown alert: %d, want 404", code)
	}
	if changed != 0 {
		t.Errorf("refused requests ran the change hook %d times", changed)
	}
	if code := post(t, srv, path, url.Values{"state": {"acknowledged"}, "note": {"looking"}}, same); code != http.StatusSeeOther {
		t.Fatalf("acknowledge: %d", code)
	}
	if code := post(t, srv, path, resolve, same); code != http.StatusSeeOther {
		t.Fatalf("resolve: %d", code)
	}
	st := alertState(t, db, id)
	if st.State != store.AlertResolved || len(st.History) != 2 || st.History[1].Note != "false alarm" || changed != 2 {
		t.Errorf("after acknowledge and resolve: %+v (hook ran %d times)", st, changed)
	}
}
