package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestJSONLines(t *testing.T) {
	var b bytes.Buffer
	j := &JSONLines{W: &b}
	f := Finding{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Severity: Critical, Kind: KindEquivocation, Index: At(7), Message: "m"}
	if err := j.Alert(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-01-02T03:04:05Z","severity":"critical","kind":"equivocation","index":7,"message":"m"}` + "\n"
	if b.String() != want {
		t.Errorf("got %s want %s", b.String(), want)
	}
	var back Finding
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Severity != Critical || *back.Index != 7 {
		t.Errorf("round trip: %+v %v", back, err)
	}
}

func TestWebhook(t *testing.T) {
	status := http.StatusNoContent
	var got Finding
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Client: &http.Client{Timeout: 5 * time.Second}}
	if err := w.Alert(context.Background(), Finding{Severity: Warning, Kind: KindDuplicate}); err != nil {
		t.Fatal(err)
	}
	if got.Kind != KindDuplicate || got.Severity != Warning {
		t.Errorf("webhook received %+v", got)
	}
	status = http.StatusInternalServerError
	if err := w.Alert(context.Background(), Finding{}); err == nil {
		t.Error("webhook answering 500: no error")
	}
}

func TestParseSeverity(t *testing.T) {
	for _, s := range []Severity{Info, Warning, Critical} {
		if got, err := ParseSeverity(s.String()); err != nil || got != s {
			t.Errorf("ParseSeverity(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseSeverity("loud"); err == nil {
		t.Error("unknown severity accepted")
	}
}
