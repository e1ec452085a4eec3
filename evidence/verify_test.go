package evidence_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"golang.org/x/mod/sumdb/note"
)

const repo = "example.com/firmware"

func mustPolicy(t testing.TB, text []byte) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fixture: a log of 5 entries where entry 2 is targets v3 of repo.
func fixture(t testing.TB) (*evidencetest.Log, []byte, []byte) {
	l := evidencetest.NewLog("example.com/log", 3)
	metadata := []byte(`{"signed":{"_type":"targets","version":3}}`)
	for i := 0; i < 5; i++ {
		e, _ := entry.New(repo, "targets", uint64(i+1), []byte(fmt.Sprint("metadata ", i)))
		if i == 2 {
			e, _ = entry.New(repo, "targets", 3, metadata)
		}
		l.Append(e.Format())
	}
	return l, metadata, l.Proof(2, 0, 2)
}

func TestVerifyEntry(t *testing.T) {
	l, metadata, pr := fixture(t)
	p := mustPolicy(t, l.Policy(2))
	inc, err := evidence.VerifyEntry(repo, "targets", 3, metadata, pr, p)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Index != 2 || inc.Checkpoint.Size != 5 || len(inc.Checkpoint.Cosigners) != 2 {
		t.Errorf("inclusion = %+v", inc)
	}
}

// Each attack must be refused with the stated error.
func TestAttacks(t *testing.T) {
	l, metadata, pr := fixture(t)
	p := mustPolicy(t, l.Policy(2))
	other := evidencetest.NewLog("example.com/log", 3) // same origin, other keys
	other.Append([]byte("x"))
	strangers := evidencetest.NewLog("example.com/log", 3)
	withStrangerCosigs := func() []byte {
		// The log's checkpoint with one policy cosignature and two cosignatures
		// by witnesses the policy does not know.
		msg := l.CheckpointAt(5, 0)
		for _, w := range strangers.Witnesses[:2] {
			sig, _ := checkpoint.Cosign(l.Body(5).Format(), w.Signer)
			msg = checkpoint.AddSignatures(msg, sig)
		}
		return bytes.Replace(l.ProofAt(2, 5), l.CheckpointAt(5), msg, 1)
	}
	dupCosig := func() []byte {
		msg := l.CheckpointAt(5, 0)
		sig, _ := checkpoint.Cosign(l.Body(5).Format(), l.Witnesses[0].Signer)
		return replaceNote(l.ProofAt(2, 5), checkpoint.AddSignatures(msg, sig))
	}
	for _, tc := range []struct {
		name            string
		repo, role      string
		version         uint64
		metadata, proof []byte
		want            error
	}{
		{"UnloggedRelease", repo, "targets", 4, []byte(`{"signed":{"_type":"targets","version":4}}`), l.Proof(2, 0, 1), evidence.ErrNotIncluded},
		{"ProofForOtherBytes", repo, "targets", 3, append(bytes.Clone(metadata), ' '), pr, evidence.ErrNotIncluded},
		{"ProofForOtherRepository", "example.com/other", "targets", 3, metadata, pr, evidence.ErrNotIncluded},
		{"ProofForOtherRole", repo, "root", 3, metadata, pr, evidence.ErrNotIncluded},
		{"ProofForOtherIndex", repo, "targets", 3, metadata, l.Proof(3, 0, 1), evidence.ErrNotIncluded},
		{"TooFewCosignatures", repo, "targets", 3, metadata, l.Proof(2, 1), evidence.ErrQuorum},
		{"NoCosignatures", repo, "targets", 3, metadata, l.Proof(2), evidence.ErrQuorum},
		{"UnknownWitnessesCosign", repo, "targets", 3, metadata, withStrangerCosigs(), evidence.ErrQuorum},
		{"DuplicateWitnessCosignatures", repo, "targets", 3, metadata, dupCosig(), evidence.ErrQuorum},
		{"CheckpointFromOtherLogKey", repo, "targets", 3, metadata, replaceNote(pr, other.Checkpoint(0, 1)), checkpoint.ErrNoLogSig},
		{"CheckpointFromUnknownLog", repo, "targets", 3, metadata, replaceNote(pr, evidencetest.NewLog("evil.example/log", 0).Checkpoint()), evidence.ErrUnknownLog},
		{"ProofUnderOlderCheckpoint", repo, "targets", 3, metadata, replaceNote(pr, l.CheckpointAt(4, 0, 1)), evidence.ErrNotIncluded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := evidence.VerifyEntry(tc.repo, tc.role, tc.version, tc.metadata, tc.proof, p)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func replaceNote(proofText, note []byte) []byte {
	i := bytes.Index(proofText, []byte("\n\n"))
	return append(bytes.Clone(proofText[:i+2]), note...)
}

// TestProofMutations: every one-byte change, truncation and extension of a
// valid tlog-proof is refused.
func TestProofMutations(t *testing.T) {
	l, metadata, pr := fixture(t)
	p := mustPolicy(t, l.Policy(2))
	e, _ := entry.New(repo, "targets", 3, metadata)
	leaf := e.Format()
	ok := func(b []byte) bool { _, err := evidence.VerifyInclusion(leaf, b, p); return err == nil }
	if !ok(pr) {
		t.Fatal("valid proof refused")
	}
	for i := range pr {
		for _, c := range []byte{pr[i] ^ 1, pr[i] ^ 0x20, '\n', ' ', '0'} {
			if c == pr[i] {
				continue
			}
			m := bytes.Clone(pr)
			m[i] = c
			if ok(m) {
				t.Errorf("mutation at %d (%q→%q) accepted", i, pr[i], c)
			}
		}
		if ok(pr[:i]) {
			t.Errorf("truncation to %d accepted", i)
		}
	}
	for _, ext := range []string{"\n", " ", "x"} {
		if ok(append(bytes.Clone(pr), ext...)) {
			t.Errorf("extension %q accepted", ext)
		}
	}
}

func TestConsistencyAndFork(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 3)
	for i := 0; i < 10; i++ {
		l.Append([]byte{byte(i)})
	}
	p := mustPolicy(t, l.Policy(2))
	open := func(msg []byte) *checkpoint.Signed {
		c, err := evidence.VerifyCheckpoint(msg, p)
		if err != nil {
			t.Fatal(err)
		}
		return c.Signed
	}
	old, cur := open(l.CheckpointAt(4, 0, 1)), open(l.CheckpointAt(10, 1, 2))
	if err := evidence.CheckConsistency(old, cur, l.Consistency(4, 10)); err != nil {
		t.Fatalf("consistent checkpoints: %v", err)
	}
	if err := evidence.CheckConsistency(cur, old, l.Consistency(4, 10)); err != nil {
		t.Fatalf("consistent checkpoints in reverse order: %v", err)
	}

	// The log forks: a second history that shares the first 4 entries.
	fork := evidencetest.NewLogWithKey(l, l.Origin)
	for i := 0; i < 10; i++ {
		b := byte(i)
		if i >= 6 {
			b = 100 + b
		}
		fork.Append([]byte{b})
	}
	forked := open(fork.CheckpointAt(10, 0, 1))
	err := evidence.CheckConsistency(old, forked, l.Consistency(4, 10))
	var fe *evidence.ForkError
	if !errors.As(err, &fe) {
		t.Fatalf("fork not detected: %v", err)
	}
	if err := evidence.CheckConsistency(old, forked, fork.Consistency(4, 10)); err != nil {
		t.Fatalf("forked tree is consistent with the shared prefix: %v", err)
	}
	sameSize := evidence.CheckConsistency(cur, forked, nil)
	if !errors.As(sameSize, &fe) {
		t.Fatalf("same size, different root not detected: %v", sameSize)
	}

	// The evidence survives encoding and re-verifies on its own.
	ev, err := evidence.ParseFork(fe.Evidence.Format())
	if err != nil {
		t.Fatal(err)
	}
	conclusive, err := evidence.VerifyFork(ev, p)
	if err != nil || !conclusive {
		t.Errorf("VerifyFork = %v, %v; want conclusive", conclusive, err)
	}
	// Evidence made of two consistent checkpoints does not stand.
	honest := evidence.Fork{Old: old.Note, New: cur.Note, Proof: l.Consistency(4, 10)}
	if _, err := evidence.VerifyFork(honest, p); err == nil {
		t.Error("evidence of consistent checkpoints accepted as a fork")
	}
	// Evidence with a checkpoint the log did not sign does not stand.
	forged := evidence.Fork{Old: old.Note, New: evidencetest.NewLog(l.Origin, 0).Checkpoint()}
	if _, err := evidence.VerifyFork(forged, p); err == nil {
		t.Error("evidence with a forged checkpoint accepted")
	}
}

func FuzzParseFork(f *testing.F) {
	l := evidencetest.NewLog("example.com/log", 0)
	l.Append([]byte("a"))
	f.Add(evidence.Fork{Old: l.Checkpoint(), New: l.Checkpoint(), Proof: [][sha256.Size]byte{{1}}}.Format())
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := evidence.ParseFork(b)
		if err == nil && !bytes.Equal(ev.Format(), b) {
			t.Fatalf("non-canonical fork evidence accepted: %q", b)
		}
	})
}

// FuzzProveVerify is the round-trip property: for any tree size and index, a
// proof the log makes verifies, and the same proof for any other leaf does not.
func FuzzProveVerify(f *testing.F) {
	l := evidencetest.NewLog("example.com/log", 2)
	p := mustPolicy(f, l.Policy(1))
	for i := 0; i < 70; i++ {
		l.Append([]byte{byte(i)})
	}
	f.Add(uint8(0), uint8(1))
	f.Add(uint8(5), uint8(64))
	f.Add(uint8(63), uint8(70))
	f.Fuzz(func(t *testing.T, index, size uint8) {
		if size == 0 || size > 70 || index >= size {
			return
		}
		pr := l.ProofAt(uint64(index), uint64(size), 1)
		if _, err := evidence.VerifyInclusion([]byte{index}, pr, p); err != nil {
			t.Fatalf("proof of %d in %d: %v", index, size, err)
		}
		if _, err := evidence.VerifyInclusion([]byte{index + 1}, pr, p); err == nil {
			t.Fatalf("proof of %d in %d verified another leaf", index, size)
		}
	})
}

// TestC2SPSignedNoteVector: the worked example of c2sp.org/signed-note
// verifies with our key parser (testdata/vectors/README.md).
func TestC2SPSignedNoteVector(t *testing.T) {
	vkey := readVector(t, "c2sp/signed-note.vkey")
	msg := []byte(readVector(t, "c2sp/signed-note.note") + "\n")
	v, err := notekey.ParseLogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	if n.Text != "This is an example message.\n" {
		t.Errorf("text = %q", n.Text)
	}
}

// TestPixelWitnessedCheckpoint: the real Pixel checkpoint at size 611 (ECDSA
// log signature) verifies under a policy naming the log and its two
// ArmoredWitness cosigners, given as 0x01 vkeys, with a 2-of-2 quorum.
func TestPixelWitnessedCheckpoint(t *testing.T) {
	msg := []byte(readVector(t, "witnessed-checkpoint/pixel-611.checkpoint") + "\n")
	wkeys := strings.Fields(readVector(t, "witnessed-checkpoint/witnesses.vkeys"))
	text := fmt.Sprintf("log %s\nwitness a %s\nwitness b %s\ngroup both all a b\nquorum both\n",
		readVector(t, "witnessed-checkpoint/log.vkey"), wkeys[0], wkeys[1])
	p := mustPolicy(t, []byte(text))
	// The Pixel log's key name is not its origin; the policy text can only
	// say the key, so the origin is set through the Go API.
	p.Logs[0].Origin = "developers.google.com/android/binary_transparency/0"
	c, err := evidence.VerifyCheckpoint(msg, p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 611 || len(c.Cosigners) != 2 {
		t.Errorf("checkpoint size %d with %d cosigners", c.Size, len(c.Cosigners))
	}
	for _, cs := range c.Cosignatures {
		if cs.Time.Year() < 2024 {
			t.Errorf("cosignature time %v", cs.Time)
		}
	}
	// Each cosignature verifies on its own, too: drop one and 2-of-2 fails.
	lines := strings.Split(strings.TrimSuffix(string(msg), "\n"), "\n")
	oneCosig := []byte(strings.Join(lines[:len(lines)-1], "\n") + "\n")
	if _, err := evidence.VerifyCheckpoint(oneCosig, p); !errors.Is(err, evidence.ErrQuorum) {
		t.Errorf("one cosignature of two: err = %v, want ErrQuorum", err)
	}
}

func readVector(t *testing.T, name string) string {
	b, err := os.ReadFile("../testdata/vectors/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
