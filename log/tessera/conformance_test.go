package tessera_test

import (
	"testing"

	"github.com/shiplog/shiplog/log/conformance"
	"github.com/shiplog/shiplog/log/server"
)

// TestConformance runs the ledger's conformance suite (log/conformance)
// against the embedded default: Tessera POSIX files, a bbolt index and
// metadata files.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) *conformance.Ledger {
		return conformance.Start(t, conformance.StartOptions{Config: server.Config{Storage: "posix"}})
	})
}
