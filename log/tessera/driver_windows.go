package tessera

import (
	"context"

	"github.com/transparency-dev/tessera"
)

// newDriver fails on Windows: Tessera's POSIX driver needs fcntl(2) locks
// and directory file descriptors, which Windows lacks.
func newDriver(context.Context, string) (tessera.Driver, error) {
	return nil, ErrPlatform
}
