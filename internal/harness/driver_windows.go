package harness

import (
	"context"

	shiplogtessera "github.com/shiplog/shiplog/log/tessera"
	"github.com/transparency-dev/tessera"
)

// newDriver fails on Windows, where Tessera's POSIX driver does not run
// (fcntl locks, directory descriptors): tests that need a real log run on
// Linux and macOS.
func newDriver(context.Context, string) (tessera.Driver, error) {
	return nil, shiplogtessera.ErrPlatform
}
