package trillian_test

import (
	"os"
	"testing"

	"github.com/shiplog/shiplog/log/conformance"
	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/log/trillian/trilliantest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	trilliantest.StopShared()
	os.Exit(code)
}

// TestConformance runs the ledger's conformance suite (log/conformance)
// against three replicas of one ledger on a real Trillian log server and
// signer on PostgreSQL (deploy/trillian/up.sh), with the index, metadata
// and checkpoints in PostgreSQL.
func TestConformance(t *testing.T) {
	c := trilliantest.Shared(t)
	conformance.Run(t, func(t *testing.T) *conformance.Ledger {
		return conformance.Start(t, conformance.StartOptions{Replicas: 3, Config: server.Config{
			Storage: server.StorageTrillian, TrillianAddr: c.TrillianAddr, TrillianTreeID: c.NewTree(t),
			PostgresURI: c.PostgresURI, PostgresSchema: trilliantest.NewSchema(),
		}})
	})
}
