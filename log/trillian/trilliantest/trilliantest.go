// Package trilliantest runs Trillian's real log server and sequencer code
// in-process on its memory storage, for fast tests of the ledger's
// Trillian backend. The memory storage is not durable and does not
// deduplicate leaves by identity hash; tests of those properties use the
// PostgreSQL-backed servers that deploy/trillian/up.sh starts.
package trilliantest

import (
	"context"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/client"
	"github.com/google/trillian/extension"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/storage/memory"
	"github.com/google/trillian/testonly/integration"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Log is an in-process Trillian log server with one LOG tree.
type Log struct {
	Client trillian.TrillianLogClient
	TreeID int64
	Addr   string
}

// StartMemory starts a log server and a sequencer running every 10 ms on memory
// storage, creates and initialises a LOG tree, and stops everything when
// the test ends.
func StartMemory(t testing.TB) *Log {
	t.Helper()
	integration.SequencerInterval = 10 * time.Millisecond
	ts := memory.NewTreeStorage()
	reg := extension.Registry{
		AdminStorage: memory.NewAdminStorage(ts),
		LogStorage:   memory.NewLogStorage(ts, nil),
		QuotaManager: quota.Noop(),
	}
	ctx := context.Background()
	env, err := integration.NewLogEnvWithRegistry(ctx, 1, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	tree, err := client.CreateAndInitTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeState: trillian.TreeState_ACTIVE, TreeType: trillian.TreeType_LOG,
		MaxRootDuration: durationpb.New(0),
	}}, env.Admin, env.Log)
	if err != nil {
		t.Fatal(err)
	}
	return &Log{Client: env.Log, TreeID: tree.TreeId, Addr: env.Address}
}
