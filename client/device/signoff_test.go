package device_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/signoff"
	"golang.org/x/mod/sumdb/note"
)

// attester is a rebuilder's or reviewer's signing key.
type attester struct {
	name, vkey string
	signer     note.Signer
}

func newAttester(t *testing.T, name string) attester {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return attester{name: name, vkey: vkey, signer: s}
}

// require returns the requirement "verdict:k" over the attesters' keys, as
// init's --require reads it from a keys file.
func require(t *testing.T, verdict string, k int, as ...attester) device.Requirement {
	t.Helper()
	var lines []string
	for _, a := range as {
		lines = append(lines, "# "+a.name, a.vkey)
	}
	path := filepath.Join(t.TempDir(), verdict+".keys")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := device.ParseRequire(verdict+":"+strconv.Itoa(k)+":"+path, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// signoffEnv is a device requiring sign-off, with firmware v1 installed
// (signed off) and the evidence the repository serves per target digest.
type signoffEnv struct {
	*env
	mu       sync.Mutex
	evidence map[string][]signoff.Attestation // by subject hex, what the repository serves
	ledger   map[string][]signoff.Attestation // by subject hex, what the ledger answers
	made     int
	// via is how the device takes the release under test: "online"
	// (Update) or "bundle" (InstallBundle of a bundle of fw/image.bin made
	// from the repository, carrying its evidence files).
	via string
}

// run takes the release as e.via says.
func (e *signoffEnv) run() (*device.Result, error) {
	if e.via != "bundle" {
		return e.update()
	}
	path := filepath.Join(e.t.TempDir(), "fw.bundle")
	if err := os.WriteFile(path, e.repo.Bundle("fw/image.bin"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	d := e.open(device.Options{Yes: true})
	defer d.Close()
	return d.InstallBundle(context.Background(), path)
}

func (e *signoffEnv) mustRun() *device.Result {
	e.t.Helper()
	res, err := e.run()
	if err != nil {
		e.t.Fatalf("%s: %v", e.via, err)
	}
	return res
}

// refused runs e.run, which must fail and change nothing.
func (e *signoffEnv) refused() error {
	e.t.Helper()
	before := e.snap()
	res, err := e.run()
	if err == nil {
		e.t.Fatalf("%s succeeded: %+v", e.via, res)
	}
	if !e.snap().equal(before) {
		e.t.Fatal("a refused release changed the device")
	}
	return err
}

// both runs f for the online and the bundle path.
func both(t *testing.T, f func(t *testing.T, via string)) {
	for _, via := range []string{"online", "bundle"} {
		t.Run(via, func(t *testing.T) { f(t, via) })
	}
}

var fixtureTime = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// signoffStart makes a device requiring reqs with v1 installed: the
// attesters in okV1 reproduced v1, those in reviewedV1 reviewed it.
func signoffStart(t *testing.T, reqs []device.Requirement, okV1 []attester, reviewedV1 ...attester) *signoffEnv {
	t.Helper()
	e := &signoffEnv{env: newEnv(t, 2, device.Config{Require: reqs}), evidence: map[string][]signoff.Attestation{}, ledger: map[string][]signoff.Attestation{}}
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	e.repo.Publish()
	for _, a := range okV1 {
		e.attest(a, signoff.Reproduced, "firmware v1", "firmware v1")
	}
	for _, a := range reviewedV1 {
		e.attest(a, signoff.Reviewed, "firmware v1", "")
	}
	if res := e.mustUpdate(); !res.Installed {
		t.Fatalf("initial install of a signed-off release: %+v", res)
	}
	return e
}

func digestHex(data string) string {
	h := sha256.Sum256([]byte(data))
	return hex.EncodeToString(h[:])
}

// statement signs a's statement with verdict about the target with bytes
// data (built: what a built), as of the current targets version.
func (e *signoffEnv) statement(a attester, verdict, data, built string) []byte {
	e.t.Helper()
	return e.statementFrom(a, verdict, data, built, false)
}

// statementFrom is statement, made from a local copy of the source
// ("source_local") when local.
func (e *signoffEnv) statementFrom(a attester, verdict, data, built string, local bool) []byte {
	e.t.Helper()
	s := &signoff.Statement{SourceLocal: local, SubjectName: "fw/image.bin", Subject: sha256.Sum256([]byte(data)), Verdict: verdict,
		Repository: e.repo.ID, Target: "fw/image.bin", TargetsRole: "targets",
		TargetsVersion: uint64(e.repo.Roles["targets"].Signed.Version), Time: fixtureTime.Add(time.Duration(e.made) * time.Second)}
	e.made++ // each statement made is distinct bytes
	if verdict != signoff.Reviewed {
		s.Built = sha256.Sum256([]byte(built))
		s.Provenance = json.RawMessage(`{"source":"https://src.example/fw.tar.gz","revision":"v2","build":"make"}`)
	}
	b, err := signoff.Sign(s, a.signer, a.vkey)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// logged appends env's attestation entry to the log and returns it with a
// tlog-proof cosigned by the witnesses given (default: the repository's).
func (e *signoffEnv) logged(env []byte, cosigners ...int) signoff.Attestation {
	e.t.Helper()
	en, err := signoff.OpenEnvelope(env)
	if err != nil {
		e.t.Fatal(err)
	}
	i := e.repo.Log.Append(en.Entry().Format())
	if cosigners == nil {
		cosigners = e.repo.Cosigners
	}
	return signoff.Attestation{Envelope: env, Proof: e.repo.Log.Proof(i, cosigners...)}
}

// attest makes, logs and publishes (in the repository's evidence file of
// data's digest) a's statement.
func (e *signoffEnv) attest(a attester, verdict, data, built string) {
	e.publish(digestHex(data), e.logged(e.statement(a, verdict, data, built)))
}

// publish adds attestations to the repository's evidence file of subject.
func (e *signoffEnv) publish(subject string, atts ...signoff.Attestation) {
	e.t.Helper()
	e.mu.Lock()
	e.evidence[subject] = append(e.evidence[subject], atts...)
	ev := &signoff.Evidence{Attestations: e.evidence[subject]}
	e.mu.Unlock()
	copy(ev.Subject[:], mustHex(e.t, subject))
	b, err := ev.Format()
	if err != nil {
		e.t.Fatal(err)
	}
	dir := filepath.Join(e.repo.Dir, "metadata", "signoff")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, subject+".json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// held runs an update that must hold the release (no error, nothing
// installed, no trusted state changed) and returns its message.
func (e *signoffEnv) held() string {
	e.t.Helper()
	before := e.snap()
	res, err := e.run()
	if err != nil {
		e.t.Fatalf("%s: a release without its sign-off is held, not an error: %v", e.via, err)
	}
	if res.Installed || res.Action != approval.Hold {
		e.t.Fatalf("release without sign-off: %+v", res)
	}
	if after := e.snap(); !after.equal(before) {
		e.t.Fatal("holding a release changed the trusted state or the installed version")
	}
	return res.Message
}

func wantIn(t *testing.T, msg string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(msg, s) {
			t.Errorf("message %q does not say %q", msg, s)
		}
	}
}

// twoRebuilders is a device requiring 2 of 2 rebuilders, v1 installed,
// taking v2 (published, not yet signed off) via "online" or "bundle".
func twoRebuilders(t *testing.T, via string) (*signoffEnv, attester, attester) {
	a, b := newAttester(t, "rebuilder-a.example"), newAttester(t, "rebuilder-b.example")
	e := signoffStart(t, []device.Requirement{require(t, signoff.Reproduced, 2, a, b)}, []attester{a, b})
	e.via = via
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
	e.repo.Publish()
	return e, a, b
}

// TestSignoffInstallsWithEnoughStatements: 2 of 2 trusted rebuilders
// reproduced v2 and a reviewer reviewed it; the device installs it and
// its summary names who reproduced and who reviewed.
func TestSignoffInstallsWithEnoughStatements(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		a, b, r := newAttester(t, "rebuilder-a.example"), newAttester(t, "rebuilder-b.example"), newAttester(t, "auditor.example")
		e := signoffStart(t, []device.Requirement{require(t, signoff.Reproduced, 2, a, b), require(t, signoff.Reviewed, 1, r)}, []attester{a, b}, r)
		e.via = via
		e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
		e.repo.Publish()
		e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
		e.attest(b, signoff.Reproduced, "firmware v2", "firmware v2")
		e.attest(r, signoff.Reviewed, "firmware v2", "")
		res := e.mustRun()
		if !res.Installed || e.installed("fw/image.bin") != "firmware v2" {
			t.Fatalf("signed-off release: %+v", res)
		}
		text := res.Summary.Text()
		wantIn(t, text, "reproduced by rebuilder-a.example, rebuilder-b.example (2 of 2 required)", "reviewed by auditor.example (1 of 1 required)")
	})
}

// TestSignoffSummaryNamesALocalSource: rebuilder B rebuilt v2 from a local
// copy of the source ("source_local"), A from the fetched declared source.
// B's statement counts (2 of 2: the device installs), and the summary says,
// in text and JSON, that B built from a local copy and A did not.
func TestSignoffSummaryNamesALocalSource(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		e, a, b := twoRebuilders(t, via)
		e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
		e.publish(digestHex("firmware v2"), e.logged(e.statementFrom(b, signoff.Reproduced, "firmware v2", "firmware v2", true)))
		res := e.mustRun()
		if !res.Installed || e.installed("fw/image.bin") != "firmware v2" {
			t.Fatalf("a statement from a local copy counts as any other: %+v", res)
		}
		wantIn(t, res.Summary.Text(), "reproduced by rebuilder-a.example, rebuilder-b.example (2 of 2 required)\n"+
			"      built from a local copy of the source, not the release's declared source fetched and checked: rebuilder-b.example\n")
		j, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Summary struct {
				Signoff []struct {
					Requirements []struct {
						By          []string `json:"by"`
						SourceLocal []string `json:"source_local"`
					} `json:"requirements"`
				} `json:"signoff"`
			} `json:"summary"`
		}
		if err := json.Unmarshal(j, &out); err != nil {
			t.Fatal(err)
		}
		if so := out.Summary.Signoff; len(so) != 1 || len(so[0].Requirements) != 1 || fmt.Sprint(so[0].Requirements[0].SourceLocal) != "[rebuilder-b.example]" {
			t.Errorf("JSON does not name B alone as built from a local copy: %s", j)
		}
	})
}

// TestSignoffSummaryNamesALocalSourceMismatch: B's mismatch, rebuilt from a
// local copy, refuses v2 all the same; the refused summary says B built
// from a local copy.
func TestSignoffSummaryNamesALocalSourceMismatch(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		e, a, b := twoRebuilders(t, via)
		e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
		e.publish(digestHex("firmware v2"), e.logged(e.statementFrom(b, signoff.Mismatch, "firmware v2", "other bytes", true)))
		err := e.refused()
		if !errors.Is(err, device.ErrMismatch) || !strings.Contains(err.Error(), "rebuilder-b.example") {
			t.Fatalf("a mismatch from a local copy refuses as any other: %v", err)
		}
		if e.via != "online" {
			return
		}
		d := e.open(device.Options{})
		defer d.Close()
		res, err := d.Check(context.Background())
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		so := res.Summary.Signoff
		if len(so) != 1 || fmt.Sprint(so[0].MismatchSourceLocal) != "[rebuilder-b.example]" {
			t.Fatalf("summary of the refused release: %+v", so)
		}
		wantIn(t, res.Summary.Text(), "MISMATCH stated by rebuilder-b.example", "declared source fetched and checked: rebuilder-b.example")
	})
}

// TestSignoffRefusesTooFewStatements: one of the two required rebuilders
// reproduced v2: the device holds it (no error, nothing changed), says how
// many of which kind it found from whom, and installs it on a later check
// once the second statement is logged.
func TestSignoffRefusesTooFewStatements(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		e, a, b := twoRebuilders(t, via)
		e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
		msg := e.held()
		wantIn(t, msg, "1 of 2 required reproduced statements (rebuilder-a.example); none from rebuilder-b.example")
		d := e.open(device.Options{})
		st, err := d.Status()
		d.Close()
		if err != nil || st.Pending == nil || !strings.Contains(st.Pending.Description, "none from rebuilder-b.example") {
			t.Errorf("status does not show the release held for sign-off: %+v, %v", st.Pending, err)
		}
		e.attest(b, signoff.Reproduced, "firmware v2", "firmware v2")
		if res := e.mustRun(); !res.Installed || e.installed("fw/image.bin") != "firmware v2" {
			t.Fatalf("once both statements are logged: %+v", res)
		}
	})
}

// TestSignoffRefusesNoEvidence: nobody attested v2 and the repository
// serves no evidence file (404): held, naming both missing rebuilders.
func TestSignoffRefusesNoEvidence(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		e, _, _ := twoRebuilders(t, via)
		wantIn(t, e.held(), "0 of 2 required reproduced statements; none from rebuilder-a.example, rebuilder-b.example")
	})
}

// TestSignoffRefusesOneKeyCountedTwice: rebuilder A (or whoever holds its
// key) signs two statements, two distinct envelopes, both logged: they
// count as one attester.
func TestSignoffRefusesOneKeyCountedTwice(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		e, a, _ := twoRebuilders(t, via)
		e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
		e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
		if n := len(e.evidence[digestHex("firmware v2")]); n != 2 {
			t.Fatalf("%d statements served, want A's two", n)
		}
		wantIn(t, e.held(), "1 of 2 required reproduced statements")
	})
}

// TestSignoffRefusesStatementAboutAnotherDigest: rebuilder B's statement,
// logged and proven, is about v1's digest; served as evidence for v2 it
// does not count.
func TestSignoffRefusesStatementAboutAnotherDigest(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		e, a, b := twoRebuilders(t, via)
		e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
		e.publish(digestHex("firmware v2"), e.logged(e.statement(b, signoff.Reproduced, "firmware v1", "firmware v1")))
		wantIn(t, e.held(), "1 of 2 required reproduced statements (rebuilder-a.example); none from rebuilder-b.example")
	})
}

// TestSignoffRefusesStatementNotInTheLog: rebuilder B's statement was never
// logged; it is served with the proof of A's entry.
func TestSignoffRefusesStatementNotInTheLog(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		e, a, b := twoRebuilders(t, via)
		la := e.logged(e.statement(a, signoff.Reproduced, "firmware v2", "firmware v2"))
		e.publish(digestHex("firmware v2"), la, signoff.Attestation{Envelope: e.statement(b, signoff.Reproduced, "firmware v2", "firmware v2"), Proof: la.Proof})
		wantIn(t, e.held(), "1 of 2 required reproduced statements (rebuilder-a.example); none from rebuilder-b.example")
	})
}

// TestSignoffRefusesCheckpointWithoutQuorum: rebuilder B's statement is
// logged, but its proof's checkpoint is cosigned by one witness where the
// device's policy needs two.
func TestSignoffRefusesCheckpointWithoutQuorum(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		e, a, b := twoRebuilders(t, via)
		e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
		e.publish(digestHex("firmware v2"), e.logged(e.statement(b, signoff.Reproduced, "firmware v2", "firmware v2"), 0))
		wantIn(t, e.held(), "1 of 2 required reproduced statements (rebuilder-a.example); none from rebuilder-b.example")
	})
}

// TestSignoffRefusesTrustedMismatch: rebuilder A reproduced v2, rebuilder
// B built other bytes and said so in the log: the device refuses v2 with
// an error naming B, and changes nothing.
func TestSignoffRefusesTrustedMismatch(t *testing.T) {
	both(t, func(t *testing.T, via string) {
		e, a, b := twoRebuilders(t, via)
		e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
		e.attest(b, signoff.Mismatch, "firmware v2", "firmware v2 as built from the source")
		err := e.refused()
		if !errors.Is(err, device.ErrMismatch) || !strings.Contains(err.Error(), "rebuilder-b.example") {
			t.Fatalf("trusted mismatch: %v", err)
		}
	})
}

// TestSignoffFromLedger: the repository serves no evidence; the device
// asks the ledger for the statements of its trusted keys and installs.
func TestSignoffFromLedger(t *testing.T) {
	e, a, b := twoRebuilders(t, "online")
	e.withSignoffLedger()
	for _, x := range []attester{a, b} {
		at := e.logged(e.statement(x, signoff.Reproduced, "firmware v2", "firmware v2"))
		e.mu.Lock()
		e.ledger[digestHex("firmware v2")] = append(e.ledger[digestHex("firmware v2")], at)
		e.mu.Unlock()
	}
	if res := e.mustUpdate(); !res.Installed || e.installed("fw/image.bin") != "firmware v2" {
		t.Fatalf("statements from the ledger: %+v", res)
	}
}

// withSignoffLedger serves the ledger's proof API and its attestations
// query from e.ledger, keeping only the key ids asked for.
func (e *signoffEnv) withSignoffLedger() {
	e.withLedger()
	proofs := e.env.ledger
	mux := http.NewServeMux()
	mux.Handle("/v1/", proofs)
	mux.HandleFunc("GET /v1/attestations", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("repo") != e.repo.ID {
			http.NotFound(w, r)
			return
		}
		keys := map[string]bool{}
		for _, k := range q["key"] {
			keys[k] = true
		}
		ev := &signoff.Evidence{}
		copy(ev.Subject[:], mustHex(e.t, q.Get("subject")))
		e.mu.Lock()
		for _, at := range e.ledger[q.Get("subject")] {
			en, err := signoff.OpenEnvelope(at.Envelope)
			if err == nil && (len(keys) == 0 || keys[en.Attester.ID.String()]) {
				ev.Attestations = append(ev.Attestations, at)
			}
		}
		e.mu.Unlock()
		b, err := ev.Format()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	e.env.mu.Lock()
	e.env.ledger = mux
	e.env.mu.Unlock()
}

// TestSignoffStatus: status and check show the requirements and the
// sign-off found.
func TestSignoffStatus(t *testing.T) {
	e, a, _ := twoRebuilders(t, "online")
	e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
	d := e.open(device.Options{})
	defer d.Close()
	st, err := d.Status()
	if err != nil || len(st.Require) != 1 || st.Require[0].K != 2 || st.Require[0].N != 2 ||
		strings.Join(st.Require[0].Attesters, ",") != "rebuilder-a.example,rebuilder-b.example" {
		t.Fatalf("status requirements: %+v, %v", st.Require, err)
	}
	res, err := d.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Summary.Signoff) != 1 || res.Summary.Signoff[0].Met || len(res.Summary.Signoff[0].Requirements) != 1 ||
		strings.Join(res.Summary.Signoff[0].Requirements[0].By, ",") != "rebuilder-a.example" {
		t.Fatalf("check's sign-off: %+v", res.Summary.Signoff)
	}
	wantIn(t, res.Message, "none from rebuilder-b.example")
}

// TestParseRequire: --require verdict:k:file, strictly.
func TestParseRequire(t *testing.T) {
	a, b := newAttester(t, "rebuilder-a.example"), newAttester(t, "rebuilder-b.example")
	// The same key under another name is the same attester.
	parts := strings.SplitN(a.vkey, "+", 3)
	typed, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	alias := fmt.Sprintf("other.example+%08x+%s", notekey.KeyID("other.example", typed), parts[2])
	if _, err := note.NewVerifier(alias); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"two.keys":                 "# two rebuilders\n" + a.vkey + "\n\n" + b.vkey + "\n",
		"dir:with:colons/one.keys": a.vkey + "\n",
		"dup.keys":                 a.vkey + "\n" + a.vkey + "\n",
		"empty.keys":               "# nobody\n",
		"bad.keys":                 "not a key\n",
		"renamed.keys":             a.vkey + "\n" + alias + "\n",
	}
	read := func(p string) ([]byte, error) {
		s, ok := files[p]
		if !ok {
			return nil, os.ErrNotExist
		}
		return []byte(s), nil
	}
	for _, tc := range []struct {
		flag string
		k, n int
	}{{"reproduced:2:two.keys", 2, 2}, {"reviewed:1:two.keys", 1, 2}, {"reproduced:1:dir:with:colons/one.keys", 1, 1}} {
		r, err := device.ParseRequire(tc.flag, read)
		if err != nil || r.K != tc.k || len(r.Keys) != tc.n {
			t.Errorf("%s: %+v, %v", tc.flag, r, err)
		}
	}
	for _, bad := range []string{"reproduced:3:two.keys", "reproduced:0:two.keys", "mismatch:1:two.keys", "reproduced:01:two.keys",
		"reproduced:-1:two.keys", "reproduced:1:", "reproduced:1", "reproduced", "reproduced:1:dup.keys", "reproduced:1:empty.keys",
		"reproduced:1:bad.keys", "reproduced:1:missing.keys", "reproduced:2:renamed.keys"} {
		if r, err := device.ParseRequire(bad, read); err == nil {
			t.Errorf("%s accepted: %+v", bad, r)
		}
	}
}

// TestSignoffBundleCheckedOnWhatItCarries: a bundle made before the
// rebuilders attested carries no evidence; the device holds it even though
// the repository online now serves the statements (a bundle is checked
// offline).
func TestSignoffBundleCheckedOnWhatItCarries(t *testing.T) {
	e, a, b := twoRebuilders(t, "bundle")
	path := filepath.Join(t.TempDir(), "early.bundle")
	if err := os.WriteFile(path, e.repo.Bundle("fw/image.bin"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.attest(a, signoff.Reproduced, "firmware v2", "firmware v2")
	e.attest(b, signoff.Reproduced, "firmware v2", "firmware v2")
	d := e.open(device.Options{Yes: true})
	res, err := d.InstallBundle(context.Background(), path)
	d.Close()
	if err != nil || res.Installed || res.Action != approval.Hold || !strings.Contains(res.Message, "0 of 2 required reproduced statements") {
		t.Fatalf("bundle without sign-off evidence: %+v, %v", res, err)
	}
	if res := e.mustRun(); !res.Installed {
		t.Fatalf("a bundle made after the statements: %+v", res)
	}
}
