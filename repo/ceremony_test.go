package repo

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ceremonyRepo is an initialised repository whose root needs three keys
// and whose targets needs two, none signed yet.
func ceremonyRepo(t *testing.T) (*fixture, []*keys.Private, []*keys.Private) {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir() + "/repo", keys: map[string]*keys.Private{}}
	rootKeys := []*keys.Private{genKey(t, keys.Ed25519), genKey(t, keys.ECDSAP256), genKey(t, keys.Ed25519)}
	targetsKeys := []*keys.Private{genKey(t, keys.Ed25519), genKey(t, keys.Ed25519)}
	ks := map[string][]*metadata.Key{}
	for _, k := range rootKeys {
		ks["root"] = append(ks["root"], k.Public)
	}
	for _, k := range targetsKeys {
		ks["targets"] = append(ks["targets"], k.Public)
	}
	for _, role := range []string{"snapshot", "timestamp"} {
		f.keys[role] = genKey(t, keys.Ed25519)
		ks[role] = []*metadata.Key{f.keys[role].Public}
	}
	if err := Init(f.dir, InitOptions{Repository: "example.com/fw", Keys: ks, Thresholds: map[string]int{"root": 3, "targets": 2}}); err != nil {
		t.Fatal(err)
	}
	return f, rootKeys, targetsKeys
}

// roundTrip encodes and parses, as the files between machines do.
func roundTrip[T any](t *testing.T, v *T, parse func([]byte) (*T, error)) *T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func exportReq(t *testing.T, f *fixture, roles ...string) *SignRequest {
	t.Helper()
	r := f.open()
	defer r.Close()
	req, err := r.ExportRequest(roles)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, req, ParseSignRequest)
}

func signReq(t *testing.T, req *SignRequest, k *keys.Private) *Signatures {
	t.Helper()
	s, _, err := SignRequestWith(req, k)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, s, ParseSignatures)
}

func importSigs(f *fixture, s *Signatures) ([]SignResult, error) {
	r := f.open()
	defer r.Close()
	return r.ImportSignatures(s)
}

func TestCeremonyThresholdsAboveOne(t *testing.T) {
	f, rootKeys, targetsKeys := ceremonyRepo(t)
	req := exportReq(t, f)
	if len(req.Roles) != 2 {
		t.Fatalf("request has %d roles, want root and targets", len(req.Roles))
	}
	var last []SignResult
	for _, k := range append(append([]*keys.Private{}, rootKeys...), targetsKeys...) {
		res, err := importSigs(f, signReq(t, req, k))
		if err != nil {
			t.Fatal(err)
		}
		last = res
	}
	r := f.open()
	defer r.Close()
	for _, role := range []string{"root", "targets"} {
		auth, err := r.authorities(r.working(), role)
		if err != nil {
			t.Fatal(err)
		}
		if !allMet(auth) {
			t.Errorf("%s not ready after every keyholder signed: %+v", role, auth)
		}
	}
	if !last[0].Ready {
		t.Errorf("last import not ready: %+v", last)
	}
}

// TestCeremonyAttackSignatureOverOtherBytes: a signature made for an
// earlier request cannot be attached after the staged role changed (the
// keyholder reviewed other content than what would be published).
func TestCeremonyAttackSignatureOverOtherBytes(t *testing.T) {
	f, _, targetsKeys := ceremonyRepo(t)
	req := exportReq(t, f, "targets")
	sig := signReq(t, req, targetsKeys[0])
	f.add(map[string]string{"evil.bin": "not what was reviewed"})
	before := snapshotDir(t, f.dir)
	if _, err := importSigs(f, sig); !errors.Is(err, ErrOtherBytes) {
		t.Fatalf("err = %v, want ErrOtherBytes", err)
	}
	if c := changedFiles(before, snapshotDir(t, f.dir)); len(c) != 0 {
		t.Errorf("refused import changed %v", c)
	}
}

// TestCeremonyAttackNonRoleKey: a signature by a key that is not the role's
// (here a targets key offered for root, and an outsider's key) is refused,
// even if the signature file claims otherwise.
func TestCeremonyAttackNonRoleKey(t *testing.T) {
	f, _, targetsKeys := ceremonyRepo(t)
	req := exportReq(t, f, "root")
	if _, _, err := SignRequestWith(req, targetsKeys[0]); err == nil {
		t.Error("a targets key signed a root-only request")
	}
	// Forge a request listing the outsider as a root key, as a tampered
	// request would, and try to import what it signs.
	outsider := genKey(t, keys.Ed25519)
	req.Roles[0].Authorities[0].KeyIDs = append(req.Roles[0].Authorities[0].KeyIDs, outsider.ID)
	sig := signReq(t, req, outsider)
	if _, err := importSigs(f, sig); err == nil || !strings.Contains(err.Error(), "not a key of root") {
		t.Fatalf("err = %v, want 'not a key of root'", err)
	}
}

func TestCeremonyRefusesForgedSignature(t *testing.T) {
	f, rootKeys, _ := ceremonyRepo(t)
	sig := signReq(t, exportReq(t, f, "root"), rootKeys[0])
	sig.Signed[0].Sig = strings.Repeat("00", 64)
	if _, err := importSigs(f, sig); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("err = %v", err)
	}
	sig = signReq(t, exportReq(t, f, "root"), rootKeys[0])
	sig.Repository = "example.com/other"
	if _, err := importSigs(f, sig); err == nil {
		t.Fatal("signatures for another repository imported")
	}
}

func TestParseSignRequestRefusesTampering(t *testing.T) {
	f, _, _ := ceremonyRepo(t)
	req := exportReq(t, f, "root")
	// Other bytes under the same hash.
	bad := *req
	bad.Roles = []RequestRole{req.Roles[0]}
	bad.Roles[0].Canonical = append([]byte(nil), req.Roles[0].Canonical...)
	bad.Roles[0].Canonical[len(bad.Roles[0].Canonical)-2] ^= 1
	b, _ := json.Marshal(bad)
	if _, err := ParseSignRequest(b); err == nil {
		t.Error("request with bytes not matching their hash accepted")
	}
	// Bytes of another role.
	bad.Roles[0] = req.Roles[0]
	bad.Roles[0].Role = "targets"
	b, _ = json.Marshal(bad)
	if _, err := ParseSignRequest(b); err == nil {
		t.Error("root bytes accepted as a targets request")
	}
	for _, s := range []string{"", "{}", `{"request":"shiplog/sign-request/v1","repository":"x","roles":[]}`, `{"request":"shiplog/sign-request/v1","extra":1}`} {
		if _, err := ParseSignRequest([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzParseSignRequest(f *testing.F) {
	f.Add([]byte(`{"request":"shiplog/sign-request/v1","repository":"x","roles":[{"role":"root","version":1,"sha256":"","canonical":"e30=","authorities":[],"changes":[]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseSignRequest(b)
		if err != nil {
			return
		}
		for _, rr := range req.Roles {
			if _, err := describeSigned(rr); err != nil {
				t.Fatalf("accepted request with undescribable role: %v", err)
			}
		}
	})
}

func FuzzParseSignatures(f *testing.F) {
	f.Add([]byte(`{"signatures":"shiplog/signatures/v1","repository":"x","signed":[{"role":"root","version":1,"sha256":"00","keyid":"00","sig":"00"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseSignatures(b); err == nil && len(s.Signed) == 0 {
			t.Fatal("accepted an empty signature file")
		}
	})
}

// TestCeremonySummaryShowsCapabilityEscalation: a keyholder asked to sign a
// targets version that gives an existing target new capabilities, with the
// same bytes, saw only "v2 -> v3": the request's changes and the signer's
// own reading of the canonical bytes now name the capabilities, so the
// update's "bomb radius" is reviewed where it is signed.
func TestCeremonySummaryShowsCapabilityEscalation(t *testing.T) {
	f := newFixture(t)
	stage := func(in TargetInput) {
		t.Helper()
		r := f.open()
		defer r.Close()
		if _, err := r.Add(AddOptions{Targets: []TargetInput{in}, Replace: true}); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "app.bin")
	os.WriteFile(file, []byte("app"), 0o644)
	stage(TargetInput{Path: "app.bin", File: file, Capabilities: []string{"network"}})
	f.sign(f.keys["targets"], "targets")
	f.publish(true)
	stage(TargetInput{Path: "app.bin", File: file, Capabilities: []string{"camera", "network"}, Custom: json.RawMessage(`{"release_notes":"video"}`)})
	req := exportReq(t, f, "targets")
	changes := strings.Join(req.Roles[0].Changes, "\n")
	for _, want := range []string{"target app.bin GAINS capabilities: camera", "target app.bin custom metadata changed"} {
		if !strings.Contains(changes, want) {
			t.Errorf("request changes lack %q:\n%s", want, changes)
		}
	}
	if strings.Contains(changes, "replaced") {
		t.Errorf("same bytes reported as replaced:\n%s", changes)
	}
	_, facts, err := SignRequestWith(req, f.keys["targets"])
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, line := range facts {
		seen = seen || !strings.Contains(line, "per the exporter") && strings.Contains(line, "app.bin") && strings.Contains(line, "capabilities: camera, network")
	}
	if !seen {
		t.Errorf("the signer's reading of the bytes does not name the capabilities: %+v", facts)
	}
}
