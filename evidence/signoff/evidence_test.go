package signoff

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestEvidenceRoundTrip(t *testing.T) {
	l := newLedger(t)
	a := newKey(t, "a.example")
	l.attest(a.sign(t, statement(Reproduced, testRepo, testSubject)))
	l.attest(a.sign(t, statement(Reviewed, testRepo, testSubject)))
	e := &Evidence{Subject: testSubject, Attestations: l.evidence(), Truncated: true}
	b, err := e.Format()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEvidence(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := got.Format()
	if !bytes.Equal(b, b2) || got.Subject != testSubject || !got.Truncated || len(got.Attestations) != 2 || !bytes.Equal(got.Attestations[1].Envelope, l.envs[1]) {
		t.Errorf("round trip: %s", b2)
	}
	empty, _ := (&Evidence{Subject: testSubject}).Format()
	if !strings.Contains(string(empty), `"attestations":[]`) {
		t.Errorf("no attestations formats as %s", empty)
	}
	if _, err := (&Evidence{Attestations: make([]Attestation, MaxAttestations+1)}).Format(); err == nil {
		t.Error("Format of too many attestations succeeded")
	}
}

func TestParseEvidenceRejects(t *testing.T) {
	l := newLedger(t)
	l.attest(newKey(t, "a.example").sign(t, statement(Reviewed, testRepo, testSubject)))
	b, _ := (&Evidence{Subject: testSubject, Attestations: l.evidence()}).Format()
	valid := string(b)
	env := base64.StdEncoding.EncodeToString(l.envs[0])
	r := func(old, new string) string { return strings.Replace(valid, old, new, 1) }
	many := `"attestations":[` + strings.Repeat(`{"envelope":"`+env+`","proof":"x"},`, MaxAttestations) + `{`
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"trailing data", valid + "{}"},
		{"unknown field", r(`"truncated"`, `"x":1,"truncated"`)},
		{"duplicate field", r(`"truncated":false`, `"truncated":false,"truncated":true`)},
		{"missing truncated", r(`,"truncated":false`, ``)},
		{"truncated as string", r(`"truncated":false`, `"truncated":"false"`)},
		{"uppercase subject", r(`"subject":"`, `"subject":"`+"AB")},
		{"attestations null", `{"subject":"` + strings.Repeat("0", 64) + `","attestations":null,"truncated":false}`},
		{"unknown attestation field", r(`"envelope"`, `"x":1,"envelope"`)},
		{"envelope not canonical base64", r(env, env+"==")},
		{"empty envelope", r(env, "")},
		{"malformed proof", r(`"proof":"c2sp.org/tlog-proof@v1`, `"proof":"c2sp.org/tlog-proof@v2`)},
		{"too many attestations", r(`"attestations":[{`, many)},
		{"too large", r(`"truncated"`, `"pad":"`+strings.Repeat("a", MaxEvidenceSize)+`","truncated"`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == valid {
				t.Fatal("the mutation did not apply")
			}
			if e, err := ParseEvidence([]byte(tc.in)); err == nil {
				t.Errorf("ParseEvidence accepted %.200s: %+v", tc.in, e)
			}
		})
	}
}

func FuzzParseEvidence(f *testing.F) {
	l := newLedger(f)
	k := seededKey(f, "a.example", bytes.Repeat([]byte{5}, 32))
	l.attest(k.sign(f, statement(Reproduced, testRepo, testSubject)))
	b, _ := (&Evidence{Subject: testSubject, Attestations: l.evidence()}).Format()
	f.Add(b)
	f.Add([]byte(`{"subject":"` + strings.Repeat("0", 64) + `","attestations":[],"truncated":false}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvidence(b)
		if err != nil {
			return
		}
		out, err := e.Format()
		if err != nil {
			t.Fatalf("Format of parsed evidence: %v", err)
		}
		e2, err := ParseEvidence(out)
		if err != nil || e2.Subject != e.Subject || len(e2.Attestations) != len(e.Attestations) || e2.Truncated != e.Truncated {
			t.Fatalf("round trip: %v", err)
		}
	})
}
