// Package witnesstest runs real shiplog witnesses (c2sp.org/tlog-witness)
// for other packages' tests, such as the ledger's: each is the production
// witness.Witness with its state in a bbolt file under t.TempDir, served
// over HTTP on 127.0.0.1 on a free port, and stopped at the end of the test.
package witnesstest

import (
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/witness"
)

// Witness is a running test witness.
type Witness struct {
	// Name is the witness's key name, as in its cosignature lines.
	Name string
	// VKey is its cosignature/v1 verifier key.
	VKey string
	// URL is its submission prefix (POST URL + "/add-checkpoint").
	URL string
	// Witness is the server, for SetLogs or direct AddCheckpoint calls.
	*witness.Witness
	// Store is its durable state.
	Store *witness.Store
}

// Start starts a witness named name that cosigns for the logs with the given
// verifier keys (log vkeys; each log's origin is its key's name). It fails
// the test on any error.
func Start(t testing.TB, name string, logVKeys ...string) *Witness {
	t.Helper()
	skey, _, cosig, err := notekey.GenerateWitness(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := notekey.NewWitnessSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	list := "logs/v0\n"
	for _, v := range logVKeys {
		list += "vkey " + v + "\n"
	}
	logs, err := witness.ParseLogList([]byte(list))
	if err != nil {
		t.Fatal(err)
	}
	store, err := witness.OpenStore(filepath.Join(t.TempDir(), witness.StateFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Signer: signer, Store: store, Logs: logs})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler("", nil))
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return &Witness{Name: name, VKey: cosig, URL: srv.URL, Witness: w, Store: store}
}

// PolicyLine returns the tlog-policy line naming w as policyName, with its URL.
func (w *Witness) PolicyLine(policyName string) string {
	return fmt.Sprintf("witness %s %s %s\n", policyName, w.VKey, w.URL)
}

// Policy returns tlog-policy text for the log with logVKey and the
// witnesses (named w0, w1, …) with a k-of-n quorum.
func Policy(logVKey string, k int, ws ...*Witness) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s\n", logVKey)
	var names []string
	for i, w := range ws {
		n := fmt.Sprintf("w%d", i)
		names = append(names, n)
		b.WriteString(w.PolicyLine(n))
	}
	if k == 0 || len(ws) == 0 {
		b.WriteString("quorum none\n")
	} else {
		fmt.Fprintf(&b, "group q %d %s\nquorum q\n", k, strings.Join(names, " "))
	}
	return []byte(b.String())
}
