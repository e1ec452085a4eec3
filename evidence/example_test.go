package evidence_test

import (
	"fmt"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/policy"
)

// A device (or anyone) checks that one version of a TUF role is in the log:
// it rebuilds the log entry from the exact metadata bytes it verified and
// checks the tlog-proof under its tlog-policy — the log's signature and a
// quorum of witness cosignatures on the checkpoint, and the inclusion path.
func ExampleVerifyEntry() {
	// A test log with three witnesses; the policy requires two of them.
	l := evidencetest.NewLog("log.example", 3)
	pol, err := policy.Parse(l.Policy(2))
	if err != nil {
		panic(err)
	}
	metadata := []byte(`{"signed":{"_type":"targets","version":7},"signatures":[]}`) // the exact file bytes
	e, err := entry.New("example.com/firmware", "targets", 7, metadata)
	if err != nil {
		panic(err)
	}
	l.Append([]byte("an earlier entry"))
	index := l.Append(e.Format())
	tlogProof := l.Proof(index, 0, 1) // the checkpoint cosigned by witnesses 0 and 1

	inc, err := evidence.VerifyEntry("example.com/firmware", "targets", 7, metadata, tlogProof, pol)
	if err != nil {
		panic(err)
	}
	fmt.Printf("targets v7 is entry %d of %s (size %d), cosigned by %d witnesses\n",
		inc.Index, inc.Checkpoint.Origin, inc.Checkpoint.Size, len(inc.Checkpoint.Cosigners))

	// Other bytes under the same proof, or one cosignature short of the
	// quorum, are refused.
	_, err = evidence.VerifyEntry("example.com/firmware", "targets", 7, []byte("other bytes"), tlogProof, pol)
	fmt.Println("other bytes:", err != nil)
	_, err = evidence.VerifyEntry("example.com/firmware", "targets", 7, metadata, l.Proof(index, 0), pol)
	fmt.Println("one cosignature:", err != nil)
	// Output:
	// targets v7 is entry 1 of log.example (size 2), cosigned by 2 witnesses
	// other bytes: true
	// one cosignature: true
}
