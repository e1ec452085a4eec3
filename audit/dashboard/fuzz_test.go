package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/audit/dashboard"
	"github.com/shiplog/shiplog/audit/store"
)

// FuzzRequests sends arbitrary searches, entry indexes and alert forms to
// the dashboard: it never panics or answers 5xx, and an alert's state
// changes only on a 303 answer to a well-formed form.
func FuzzRequests(f *testing.F) {
	f.Add("firmware", "5", "acknowledged", "looking")
	f.Add(strings.Repeat("a", 64), "18446744073709551615", "resolved", "")
	f.Add("<script>", "-1", "open", strings.Repeat("é", 1500))
	f.Add("%zz", "007", "deleted", "\x00")
	db, id := findingDB(f)
	h := dashboard.NewHandler(dashboard.Config{State: db})
	f.Fuzz(func(t *testing.T, q, index, state, note string) {
		for _, target := range []string{"/search?q=" + url.QueryEscape(q), "/entry/" + url.PathEscape(index)} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
			if w.Code >= 500 {
				t.Fatalf("GET %s: %d", target, w.Code)
			}
		}
		before := alertHistory(t, db, id)
		form := url.Values{"state": {state}, "note": {note}}.Encode()
		req := httptest.NewRequest("POST", "/alerts/1/state", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		after := alertHistory(t, db, id)
		switch {
		case w.Code >= 500:
			t.Fatalf("POST state=%q: %d", state, w.Code)
		case w.Code != http.StatusSeeOther && len(after) != len(before):
			t.Fatalf("POST answered %d but changed the alert", w.Code)
		case w.Code == http.StatusSeeOther:
			last := after[len(after)-1]
			if want := strings.TrimSpace(note); last.Note != want || len(last.Note) > store.MaxAlertNote {
				t.Fatalf("POST answered 303 but stored note %q, want %q", last.Note, want)
			}
			if (state == "open") != (last.State == store.AlertOpen) || (state != "open" && last.State != state) {
				t.Fatalf("POST state=%q stored %q", state, last.State)
			}
		}
	})
}

func alertHistory(t testing.TB, db *store.DB, id uint64) []store.AlertEvent {
	var st store.AlertState
	if err := db.View(func(tx *store.Tx) (err error) { st, err = tx.AlertState(id); return err }); err != nil {
		t.Fatal(err)
	}
	return st.History
}
