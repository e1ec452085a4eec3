package attestation

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/mod/sumdb/note"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type signer struct {
	vkey string
	s    note.Signer
}

func newSigner(t *testing.T, name string) signer {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return signer{vkey, s}
}

// input returns the logged entry and envelope of a's statement with
// verdict about target data of repository example.com/firmware.
func input(t *testing.T, a signer, verdict, data string, index uint64) Input {
	st := &signoff.Statement{SubjectName: "fw.bin", Subject: sha256.Sum256([]byte(data)), Verdict: verdict, Repository: "example.com/firmware",
		Target: "fw.bin", TargetsRole: "targets", TargetsVersion: 3, Time: now.Add(time.Duration(index) * time.Second)}
	switch verdict {
	case signoff.Reproduced:
		st.Built = st.Subject
	case signoff.Mismatch:
		st.Built = sha256.Sum256([]byte("other bytes"))
	}
	if verdict != signoff.Reviewed {
		st.Provenance = json.RawMessage(`{"source":"https://src.example/fw.tar.gz"}`)
	}
	env, err := signoff.Sign(st, a.s, a.vkey)
	if err != nil {
		t.Fatal(err)
	}
	e, err := signoff.OpenEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return Input{Index: index, Entry: e.Entry().Format(), Envelope: env, LoggedBy: now, Log: "log.example"}
}

func kinds(fs []alert.Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Kind)+"/"+f.Severity.String())
	}
	return strings.Join(out, ",")
}

// TestSignoffMismatchFinding: a logged mismatch is a warning, critical in
// vendor mode for the vendor's own repository; reproduced and reviewed
// statements are recorded without a finding.
func TestSignoffMismatchFinding(t *testing.T) {
	a := newSigner(t, "rebuilder-a.example")
	for _, tc := range []struct {
		verdict string
		vendor  bool
		want    string
	}{
		{signoff.Reproduced, true, ""},
		{signoff.Reviewed, true, ""},
		{signoff.Mismatch, false, "signoff-mismatch/warning"},
		{signoff.Mismatch, true, "signoff-mismatch/critical"},
	} {
		in := input(t, a, tc.verdict, "firmware", 7)
		in.Vendor = tc.vendor
		s, fs := Check(in, nil)
		if s == nil || s.Verdict != tc.verdict || s.Name != "rebuilder-a.example" || s.Index != 7 || kinds(fs) != tc.want {
			t.Errorf("%s vendor=%v: %+v, findings %s; want %s", tc.verdict, tc.vendor, s, kinds(fs), tc.want)
		}
		if tc.want != "" && (fs[0].Evidence["subject"] != s.Subject || fs[0].Repo != "example.com/firmware" || *fs[0].Index != 7) {
			t.Errorf("finding lacks its evidence: %+v", fs[0])
		}
	}
}

// TestSignoffConflictFinding: one key stating reproduced and mismatch about
// one digest is a conflict, whichever came first; another key, another
// digest or a review is not.
func TestSignoffConflictFinding(t *testing.T) {
	a, b := newSigner(t, "rebuilder-a.example"), newSigner(t, "rebuilder-b.example")
	first, _ := Check(input(t, a, signoff.Reproduced, "firmware", 1), nil)
	prior := []Statement{*first}
	if _, fs := Check(input(t, a, signoff.Mismatch, "firmware", 2), prior); kinds(fs) != "signoff-mismatch/warning,signoff-conflict/warning" || fs[1].Evidence["first_index"] != "1" {
		t.Errorf("a's mismatch after its reproduced: %s %+v", kinds(fs), fs)
	}
	m, _ := Check(input(t, a, signoff.Mismatch, "firmware", 3), nil)
	if _, fs := Check(input(t, a, signoff.Reproduced, "firmware", 4), []Statement{*m}); kinds(fs) != "signoff-conflict/warning" {
		t.Errorf("a's reproduced after its mismatch: %s", kinds(fs))
	}
	for name, in := range map[string]Input{
		"another key":    input(t, b, signoff.Mismatch, "firmware", 5),
		"another digest": input(t, a, signoff.Mismatch, "firmware v2", 6),
		"a review":       input(t, a, signoff.Reviewed, "firmware", 7),
	} {
		if _, fs := Check(in, prior); strings.Contains(kinds(fs), "conflict") {
			t.Errorf("%s: %s", name, kinds(fs))
		}
	}
}

// TestAttackAttestationEnvelopeSwapped: the ledger serves another envelope
// (or a forged one, or none) for a logged attestation entry: critical, and
// nothing is recorded.
func TestAttackAttestationEnvelopeSwapped(t *testing.T) {
	a := newSigner(t, "rebuilder-a.example")
	in, other := input(t, a, signoff.Reproduced, "firmware", 1), input(t, a, signoff.Reproduced, "firmware", 2)
	forged := []byte(strings.Replace(string(in.Envelope), `"sig":"`, `"sig":"A`, 1))
	for name, tc := range map[string]struct {
		env  []byte
		want string
	}{
		"another envelope": {other.Envelope, "metadata-mismatch/critical"},
		"forged":           {forged, "metadata-mismatch/critical"},
		"none":             {nil, "metadata-missing/critical"},
	} {
		bad := in
		bad.Envelope = tc.env
		if s, fs := Check(bad, nil); s != nil || kinds(fs) != tc.want {
			t.Errorf("%s: %+v %s", name, s, kinds(fs))
		}
	}
	bad := in
	bad.Entry = append([]byte(nil), in.Entry...)
	bad.Entry[len(bad.Entry)-2] ^= 1
	if s, fs := Check(bad, nil); s != nil || !strings.HasPrefix(kinds(fs), "malformed-entry/critical") && !strings.HasPrefix(kinds(fs), "metadata-mismatch/critical") {
		t.Errorf("altered entry: %+v %s", s, kinds(fs))
	}
}

// TestSignoffMissingAfterDeadline: a vendor release of two targets, one
// reproduced: nothing before the deadline, a finding naming the other
// after it; a release all of whose targets were reproduced is done.
func TestSignoffMissingAfterDeadline(t *testing.T) {
	md := metadata.Targets(now.Add(time.Hour))
	md.Signed.Version = 3
	for _, p := range []string{"app.bin", "fw.bin"} {
		tf, err := metadata.TargetFile().FromBytes(p, []byte(p+" bytes"))
		if err != nil {
			t.Fatal(err)
		}
		md.Signed.Targets[p] = tf
	}
	data, err := md.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPending(9, "example.com/firmware", "targets", 3, now, data)
	if p == nil || len(p.Subjects) != 2 {
		t.Fatalf("pending: %+v", p)
	}
	fw := sha256.Sum256([]byte("fw.bin bytes"))
	reproduced := map[string]bool{hex.EncodeToString(fw[:]): true}
	has := func(s string) bool { return reproduced[s] }
	if f, done := p.Missing(has, now.Add(time.Hour), 24*time.Hour, "log.example"); f != nil || done {
		t.Fatalf("before the deadline: %+v %v", f, done)
	}
	f, done := p.Missing(has, now.Add(25*time.Hour), 24*time.Hour, "log.example")
	if !done || f == nil || f.Kind != alert.KindSignoffMissing || f.Evidence["targets"] != "app.bin" || f.Version != 3 {
		t.Fatalf("after the deadline: %+v %v", f, done)
	}
	app := sha256.Sum256([]byte("app.bin bytes"))
	reproduced[hex.EncodeToString(app[:])] = true
	if f, done := p.Missing(has, now, 24*time.Hour, "log.example"); f != nil || !done {
		t.Fatalf("all reproduced: %+v %v", f, done)
	}
}
