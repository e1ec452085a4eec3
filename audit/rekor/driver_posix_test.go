//go:build !windows

package rekor_test

import (
	"context"
	"testing"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
)

// posixDriver is Tessera's POSIX driver on dir, for a tiles log in a test.
func posixDriver(t *testing.T, ctx context.Context, dir string) tessera.Driver {
	d, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
