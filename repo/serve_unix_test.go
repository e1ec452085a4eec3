//go:build unix

package repo

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestAttackServeNonRegularFile: a named pipe planted in targets/ is not
// opened (opening it would block the handler until a writer came).
func TestAttackServeNonRegularFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "targets"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(dir, "targets", "fifo.bin"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	Handler(dir).ServeHTTP(rec, httptest.NewRequest("GET", "/targets/fifo.bin", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /targets/fifo.bin = %d, want 404", rec.Code)
	}
}
