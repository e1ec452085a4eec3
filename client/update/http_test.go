package update

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestForbiddenTargetNamesHTTPStatus: a target the web server may not read
// (403) is reported with the status the server gave, not as "not found".
func TestForbiddenTargetNamesHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		code     int
		want     string
		notFound bool
	}{
		{http.StatusForbidden, "403 Forbidden", true},
		{http.StatusNotFound, "404 Not Found", true},
		{http.StatusInternalServerError, "500 Internal Server Error", false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
		}))
		r := &HTTPRemote{MetadataURL: srv.URL + "/metadata", TargetsURL: srv.URL + "/targets", Client: srv.Client()}
		_, err := r.Metadata(context.Background(), "1.targets.json", 1024)
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("HTTP %d: got %v, want %q", tc.code, err, tc.want)
		}
		if errors.Is(err, ErrNotFound) != tc.notFound {
			t.Errorf("HTTP %d: errors.Is(ErrNotFound) = %v", tc.code, !tc.notFound)
		}
	}
}
