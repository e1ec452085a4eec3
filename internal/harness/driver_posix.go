//go:build !windows

package harness

import (
	"context"
	"net/http"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
)

// newDriver is Tessera's POSIX driver on dir.
func newDriver(ctx context.Context, dir string) (tessera.Driver, error) {
	return posix.New(ctx, posix.Config{Path: dir, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
}
