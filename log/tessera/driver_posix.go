//go:build !windows

package tessera

import (
	"context"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
)

// newDriver returns Tessera's POSIX driver on the log directory dir.
func newDriver(ctx context.Context, dir string) (tessera.Driver, error) {
	return posix.New(ctx, posix.Config{Path: dir, HTTPClient: noHTTP})
}
