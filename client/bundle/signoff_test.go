package bundle_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/harness"
	pb "github.com/shiplog/shiplog/proto/bundle"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"
)

// evidenceFor writes a logged "reviewed" statement about data's digest as
// the repository's evidence file, and returns the file.
func evidenceFor(t *testing.T, r *harness.RawRepo, data []byte) []byte {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "reviewer.example")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	sum := sha256.Sum256(data)
	s := &signoff.Statement{SubjectName: "a.bin", Subject: sum, Verdict: signoff.Reviewed, Repository: r.ID,
		Target: "a.bin", TargetsRole: "targets", TargetsVersion: 2, Time: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	env, err := signoff.Sign(s, signer, vkey)
	if err != nil {
		t.Fatal(err)
	}
	return r.WriteSignoff(sum, r.LogAttestation(env))
}

func TestBundleCarriesSignoffEvidence(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "a.bin", []byte("payload"), nil)
	r.AddTarget("targets", "b.bin", []byte("other"), nil)
	r.Publish()
	ev := evidenceFor(t, r, []byte("payload"))
	good := r.Bundle("a.bin", "b.bin")
	b, err := bundle.Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	e := b.Signoff(sha256.Sum256([]byte("payload")))
	if e == nil || len(e.Attestations) != 1 {
		t.Fatalf("evidence not exposed: %+v", e)
	}
	if b.Signoff(sha256.Sum256([]byte("other"))) != nil {
		t.Error("evidence for a digest the bundle carries none for")
	}

	// Each malformed sign-off list is refused by Open.
	sum := sha256.Sum256([]byte("payload"))
	other := sha256.Sum256([]byte("other"))
	stranger := sha256.Sum256([]byte("not a payload"))
	otherEv := bytes.Replace(ev, []byte(hex.EncodeToString(sum[:])), []byte(hex.EncodeToString(other[:])), 1)
	for name, list := range map[string][]*pb.Signoff{
		"short subject":         {{Subject: sum[:31], Evidence: ev}},
		"subject not a payload": {{Subject: stranger[:], Evidence: bytes.Replace(ev, []byte(hex.EncodeToString(sum[:])), []byte(hex.EncodeToString(stranger[:])), 1)}},
		"evidence about other":  {{Subject: sum[:], Evidence: otherEv}},
		"malformed evidence":    {{Subject: sum[:], Evidence: []byte(`{"subject":"` + hex.EncodeToString(sum[:]) + `"}`)}},
		"empty evidence":        {{Subject: sum[:]}},
		"twice":                 {{Subject: sum[:], Evidence: ev}, {Subject: sum[:], Evidence: ev}},
		"descending":            descending(sum, other, ev, otherEv),
	} {
		t.Run(name, func(t *testing.T) {
			h := proto.Clone(b.Header).(*pb.Header)
			h.Signoffs = list
			head, err := bundle.EncodeHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			data := append(head, good[len(good)-len("payloadother"):]...)
			if _, err := bundle.Open(bytes.NewReader(data), int64(len(data))); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// Both in ascending order is accepted.
	h := proto.Clone(b.Header).(*pb.Header)
	d := descending(sum, other, ev, otherEv)
	h.Signoffs = []*pb.Signoff{d[1], d[0]}
	head, _ := bundle.EncodeHeader(h)
	data := append(head, good[len(good)-len("payloadother"):]...)
	if _, err := bundle.Open(bytes.NewReader(data), int64(len(data))); err != nil {
		t.Errorf("two subjects in order: %v", err)
	}
}

// descending returns the sign-offs (s1, e1) and (s2, e2) in descending
// subject order.
func descending(s1, s2 [32]byte, e1, e2 []byte) []*pb.Signoff {
	if bytes.Compare(s1[:], s2[:]) < 0 {
		s1, s2, e1, e2 = s2, s1, e2, e1
	}
	return []*pb.Signoff{{Subject: s1[:], Evidence: e1}, {Subject: s2[:], Evidence: e2}}
}

// TestAttackBundleSignoffFlood: a header of empty sign-off items is refused
// once it passes MaxSignoffs, as roots, roles and payloads are.
func TestAttackBundleSignoffFlood(t *testing.T) {
	b := hostile(bundle.MaxHeaderSize, []byte{0x3a, 0x00})
	var err error
	got := allocated(func() { _, err = bundle.Open(bytes.NewReader(b), int64(len(b))) })
	if err == nil || !strings.Contains(err.Error(), "too many") {
		t.Errorf("got %v, want too many items", err)
	}
	if got > 2<<20 {
		t.Errorf("Open allocated %d bytes for a refused header, want < 2 MiB", got)
	}
}
