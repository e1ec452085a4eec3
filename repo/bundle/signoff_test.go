package bundle_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cbundle "github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/repo/bundle"
	"golang.org/x/mod/sumdb/note"
)

// TestBuildCarriesSignoffEvidence: the evidence the repository serves for
// a payload's digest travels in the bundle, and inspect names who signed.
func TestBuildCarriesSignoffEvidence(t *testing.T) {
	r := repo(t)
	skey, vkey, err := note.GenerateKey(rand.Reader, "rebuilder-a.example")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	sum := sha256.Sum256([]byte("firmware v1"))
	env, err := signoff.Sign(&signoff.Statement{SubjectName: "fw/image.bin", Subject: sum, Verdict: signoff.Reviewed,
		Repository: r.ID, Target: "fw/image.bin", TargetsRole: "targets", TargetsVersion: 2, Time: harness.Now}, signer, vkey)
	if err != nil {
		t.Fatal(err)
	}
	ev := r.WriteSignoff(sum, r.LogAttestation(env))
	b := build(t, r, bundle.Options{Policy: r.Policy(2)})
	bu, err := cbundle.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(bu.Header.Signoffs) != 1 || !bytes.Equal(bu.Header.Signoffs[0].Evidence, ev) || bu.Signoff(sum) == nil {
		t.Fatalf("signoffs %+v", bu.Header.Signoffs)
	}
	if err := verify(r, b, update.Trusted{Root: r.RootBytes(1)}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.bundle")
	os.WriteFile(path, b, 0o644)
	in, err := bundle.Inspect(path)
	if err != nil || len(in.Signoffs) != 1 || in.Signoffs[0].Attestations != 1 || in.Signoffs[0].Attesters[0] != "rebuilder-a.example" {
		t.Fatalf("inspect: %+v %v", in, err)
	}
	var out bytes.Buffer
	in.Print(&out)
	if !strings.Contains(out.String(), "1 statement(s) by rebuilder-a.example") {
		t.Errorf("inspect output: %s", out.String())
	}

	// A rebuilder that built from a local copy is named as such.
	lskey, lvkey, _ := note.GenerateKey(rand.Reader, "rebuilder-b.example")
	lsigner, _ := note.NewSigner(lskey)
	local, err := signoff.Sign(&signoff.Statement{SubjectName: "fw/image.bin", Subject: sum, Verdict: signoff.Reproduced,
		Repository: r.ID, Target: "fw/image.bin", TargetsRole: "targets", TargetsVersion: 2, Built: sum,
		Provenance: []byte(`{"source":{"uri":"file:///src"}}`), SourceLocal: true, Time: harness.Now}, lsigner, lvkey)
	if err != nil {
		t.Fatal(err)
	}
	ev = r.WriteSignoff(sum, r.LogAttestation(env), r.LogAttestation(local))
	os.WriteFile(path, build(t, r, bundle.Options{Policy: r.Policy(2)}), 0o644)
	if in, err = bundle.Inspect(path); err != nil || len(in.Signoffs) != 1 || strings.Join(in.Signoffs[0].SourceLocal, ",") != "rebuilder-b.example" {
		t.Fatalf("inspect: %+v %v", in, err)
	}
	out.Reset()
	in.Print(&out)
	if !strings.Contains(out.String(), "not the fetched declared source: rebuilder-b.example") {
		t.Errorf("inspect output: %s", out.String())
	}

	// A file that is not the evidence of its digest is refused, not carried.
	other := sha256.Sum256([]byte("other"))
	bad := bytes.Replace(ev, []byte(hexOf(sum)), []byte(hexOf(other)), 1)
	os.WriteFile(filepath.Join(r.Dir, "metadata", "signoff", hexOf(sum)+".json"), bad, 0o644)
	var buf bytes.Buffer
	if _, err := bundle.Build(context.Background(), bundle.Options{Dir: r.Dir, Targets: []string{"fw/image.bin"}, Time: harness.Now}, &buf); err == nil {
		t.Error("built a bundle with evidence about another digest")
	}
}

func hexOf(b [32]byte) string { return hex.EncodeToString(b[:]) }
