package rekor_test

import (
	"context"
	"testing"

	"github.com/transparency-dev/tessera"
)

// posixDriver skips the test on Windows, where Tessera's POSIX driver does
// not run.
func posixDriver(t *testing.T, _ context.Context, _ string) tessera.Driver {
	t.Skip("a tiles log needs Tessera's POSIX driver, which does not run on Windows")
	return nil
}
