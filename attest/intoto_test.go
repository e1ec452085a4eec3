package attest_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	ita1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/shiplog/shiplog/attest"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/signoff"
)

// The in-toto interop tests prove, with the in-toto project's reference
// library (github.com/in-toto/attestation/go/v1, a test-only dependency:
// evidence/signoff parses statements itself so that the device links no
// protobuf), that what shiplog attest signs is a valid in-toto Statement v1,
// and that a statement made by the reference library is read by
// evidence/signoff as the same sign-off.

const provenanceJSON = `{"source":{"uri":"https://example.com/src/fw-1.4.0.tar.gz","digest":{"sha256":"` +
	"1111111111111111111111111111111111111111111111111111111111111111" + `"}},"revision":"v1.4.0",` +
	`"build":{"command":"go build -trimpath -ldflags=-buildid= -o app.bin .","toolchain":"go1.26","output":"app.bin"}}`

func release() *attest.Release {
	return &attest.Release{Target: "fw/app.bin", SHA256: sha256.Sum256([]byte("firmware")), Role: "targets", Version: 7,
		ProvenanceJSON: json.RawMessage(provenanceJSON)}
}

// producedStatements are the statements shiplog attest makes (the three
// verdicts, and a rebuild from a local copy), each signed and opened again:
// the payload bytes are what the ledger logs. Keyed by case name.
func producedStatements(t *testing.T) map[string]produced {
	t.Helper()
	skey, vkey, err := notekey.GenerateLog(rand.Reader, "rebuilder.example.org")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := notekey.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	rel := release()
	sts := map[string]*signoff.Statement{
		signoff.Reproduced: attest.Statement("example.com/firmware", rel, &attest.Result{Verdict: signoff.Reproduced, Subject: rel.SHA256, Built: rel.SHA256}, now),
		"reproduced from a local copy": attest.Statement("example.com/firmware", rel,
			&attest.Result{Verdict: signoff.Reproduced, Subject: rel.SHA256, Built: rel.SHA256, SourceLocal: true}, now),
		signoff.Mismatch: attest.Statement("example.com/firmware", rel, &attest.Result{Verdict: signoff.Mismatch, Subject: rel.SHA256, Built: sha256.Sum256([]byte("other"))}, now),
		signoff.Reviewed: attest.ReviewStatement("example.com/firmware", rel, now),
	}
	out := map[string]produced{}
	for verdict, st := range sts {
		env, err := signoff.Sign(st, signer, vkey)
		if err != nil {
			t.Fatalf("%s: %v", verdict, err)
		}
		opened, err := signoff.OpenEnvelope(env)
		if err != nil {
			t.Fatalf("%s: %v", verdict, err)
		}
		var dsse struct {
			PayloadType string `json:"payloadType"`
			Payload     []byte `json:"payload"`
		}
		if err := json.Unmarshal(opened.Raw, &dsse); err != nil {
			t.Fatal(err)
		}
		if dsse.PayloadType != "application/vnd.in-toto+json" {
			t.Errorf("%s: payloadType %q, want in-toto's", verdict, dsse.PayloadType)
		}
		out[verdict] = produced{st.Verdict, st.SourceLocal, dsse.Payload}
	}
	return out
}

type produced struct {
	verdict     string
	sourceLocal bool
	payload     []byte
}

// TestProducedStatementsAreValidInToto: the reference library parses each
// statement shiplog attest signs (strictly: unknown fields refused) and
// Validate accepts it, with the subject, predicate type and predicate the
// spec says.
func TestProducedStatementsAreValidInToto(t *testing.T) {
	rel := release()
	for name, p := range producedStatements(t) {
		verdict, payload := p.verdict, p.payload
		var st ita1.Statement
		if err := (protojson.UnmarshalOptions{}).Unmarshal(payload, &st); err != nil {
			t.Fatalf("%s: the in-toto library does not parse our statement: %v\n%s", name, err, payload)
		}
		if err := st.Validate(); err != nil {
			t.Fatalf("%s: in-toto Validate: %v\n%s", name, err, payload)
		}
		if st.GetType() != ita1.StatementTypeUri || st.GetPredicateType() != signoff.PredicateType {
			t.Errorf("%s: _type %q predicateType %q", name, st.GetType(), st.GetPredicateType())
		}
		subj := st.GetSubject()
		if len(subj) != 1 || subj[0].GetName() != rel.Target || subj[0].GetDigest()["sha256"] != hex.EncodeToString(rel.SHA256[:]) || len(subj[0].GetDigest()) != 1 {
			t.Errorf("%s: subject %v", name, subj)
		}
		pred := st.GetPredicate().AsMap()
		if pred["verdict"] != verdict || pred["repository"] != "example.com/firmware" || pred["target"] != rel.Target ||
			pred["targets_role"] != "targets" || pred["targets_version"] != float64(7) || pred["time"] != "2026-12-03T12:00:00Z" {
			t.Errorf("%s: predicate %v", name, pred)
		}
		_, hasProvenance := pred["provenance"]
		if hasProvenance == (verdict == signoff.Reviewed) {
			t.Errorf("%s: provenance present = %v", name, hasProvenance)
		}
		if local, _ := pred["source_local"].(bool); local != p.sourceLocal {
			t.Errorf("%s: source_local %v, want %v", name, pred["source_local"], p.sourceLocal)
		}
	}
}

// TestInTotoStatementParsesAsSignoff: a statement built and serialised by
// the reference library (its ResourceDescriptor, Statement, Validate and
// protojson) is read by evidence/signoff as the statement it describes, and
// signs and verifies like our own.
func TestInTotoStatementParsesAsSignoff(t *testing.T) {
	rel := release()
	built := sha256.Sum256([]byte("backdoored"))
	var prov map[string]any
	if err := json.Unmarshal([]byte(provenanceJSON), &prov); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		verdict string
		pred    map[string]any
	}{
		{signoff.Reproduced, map[string]any{"built": map[string]any{"sha256": hex.EncodeToString(rel.SHA256[:])}, "provenance": prov}},
		{signoff.Mismatch, map[string]any{"built": map[string]any{"sha256": hex.EncodeToString(built[:])}, "provenance": prov}},
		{signoff.Reviewed, map[string]any{}},
	} {
		tc.pred["verdict"], tc.pred["repository"], tc.pred["target"] = tc.verdict, "example.com/firmware", rel.Target
		tc.pred["targets_role"], tc.pred["targets_version"], tc.pred["time"] = "targets", 7, "2026-12-03T12:00:00Z"
		pred, err := structpb.NewStruct(tc.pred)
		if err != nil {
			t.Fatal(err)
		}
		st := &ita1.Statement{
			Type:          ita1.StatementTypeUri,
			Subject:       []*ita1.ResourceDescriptor{{Name: rel.Target, Digest: map[string]string{"sha256": hex.EncodeToString(rel.SHA256[:])}}},
			PredicateType: signoff.PredicateType,
			Predicate:     pred,
		}
		if err := st.Validate(); err != nil {
			t.Fatal(err)
		}
		b, err := protojson.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := signoff.ParseStatement(b)
		if err != nil {
			t.Fatalf("%s: evidence/signoff refuses the reference library's statement: %v\n%s", tc.verdict, err, b)
		}
		if got.Verdict != tc.verdict || got.Subject != rel.SHA256 || got.SubjectName != rel.Target || got.Repository != "example.com/firmware" ||
			got.Target != rel.Target || got.TargetsRole != "targets" || got.TargetsVersion != 7 ||
			!got.Time.Equal(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: parsed %+v", tc.verdict, got)
		}
		switch tc.verdict {
		case signoff.Reproduced:
			if got.Built != rel.SHA256 || len(got.Provenance) == 0 {
				t.Errorf("reproduced: built %x provenance %s", got.Built, got.Provenance)
			}
		case signoff.Mismatch:
			if got.Built != built || len(got.Provenance) == 0 {
				t.Errorf("mismatch: built %x provenance %s", got.Built, got.Provenance)
			}
		case signoff.Reviewed:
			if got.Built != [sha256.Size]byte{} || got.Provenance != nil {
				t.Errorf("reviewed: built %x provenance %s", got.Built, got.Provenance)
			}
		}
	}
}

// TestInTotoStatementWithoutOurPredicateRefused: valid in-toto is not
// enough: a statement the reference library accepts but whose predicate
// type is not shiplog's, or that has two subjects, is not a sign-off.
func TestInTotoStatementWithoutOurPredicateRefused(t *testing.T) {
	rel := release()
	digest := map[string]string{"sha256": hex.EncodeToString(rel.SHA256[:])}
	pred, err := structpb.NewStruct(map[string]any{"verdict": "reviewed", "repository": "example.com/firmware", "target": rel.Target,
		"targets_role": "targets", "targets_version": 7, "time": "2026-12-03T12:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*ita1.Statement{
		"SLSA provenance predicate type": {Type: ita1.StatementTypeUri, Subject: []*ita1.ResourceDescriptor{{Name: rel.Target, Digest: digest}},
			PredicateType: "https://slsa.dev/provenance/v1", Predicate: pred},
		"two subjects": {Type: ita1.StatementTypeUri, Subject: []*ita1.ResourceDescriptor{{Name: rel.Target, Digest: digest}, {Name: "other", Digest: digest}},
			PredicateType: signoff.PredicateType, Predicate: pred},
	} {
		if err := st.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := protojson.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signoff.ParseStatement(b); err == nil {
			t.Errorf("%s: evidence/signoff accepted it", name)
		}
	}
}
