package signoff

import (
	"bytes"
	"strings"
	"testing"
)

func TestStatementRoundTrip(t *testing.T) {
	for _, v := range []string{Reproduced, Mismatch, Reviewed} {
		s := statement(v, testRepo, testSubject)
		b, err := s.Format()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseStatement(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", v, err, b)
		}
		b2, err := got.Format()
		if err != nil || !bytes.Equal(b, b2) {
			t.Errorf("%s: round trip: %v\n%s\n%s", v, err, b, b2)
		}
		if got.Verdict != v || got.Subject != testSubject || got.Repository != testRepo || !got.Time.Equal(testTime) || got.SourceLocal {
			t.Errorf("%s: parsed %+v", v, got)
		}
	}
}

// TestStatementRecordsALocalSource: a rebuild from a local copy of the
// source (attest rebuild --source-dir) says so in the signed statement, so
// that nobody counting it mistakes it for a rebuild from the declared,
// digest-checked source; the field round-trips and is absent otherwise.
func TestStatementRecordsALocalSource(t *testing.T) {
	for _, v := range []string{Reproduced, Mismatch} {
		s := statement(v, testRepo, testSubject)
		s.SourceLocal = true
		b, err := s.Format()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`,"source_local":true,"time":`)) {
			t.Errorf("%s: the encoding does not carry source_local: %s", v, b)
		}
		got, err := ParseStatement(b)
		if err != nil || !got.SourceLocal {
			t.Fatalf("%s: %v, %+v", v, err, got)
		}
		s.SourceLocal = false
		if b, _ := s.Format(); bytes.Contains(b, []byte("source_local")) {
			t.Errorf("%s: a fetched source is written as a field: %s", v, b)
		}
	}
	s := statement(Reviewed, testRepo, testSubject)
	s.SourceLocal = true
	if _, err := s.Format(); err == nil {
		t.Error("Format of a reviewed statement with source_local succeeded")
	}
}

func TestParseStatementRejects(t *testing.T) {
	rep, _ := statement(Reproduced, testRepo, testSubject).Format()
	rev, _ := statement(Reviewed, testRepo, testSubject).Format()
	r := func(in []byte, old, new string) string { return strings.Replace(string(in), old, new, 1) }
	hexSubject := string(rep[strings.Index(string(rep), `"sha256":"`)+10:][:64])
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"not an object", `[]`},
		{"trailing data", string(rep) + "{}"},
		{"unknown predicate field", r(rep, `"verdict"`, `"extra":1,"verdict"`)},
		{"unknown top field", r(rep, `"_type"`, `"extra":1,"_type"`)},
		{"duplicate key", r(rep, `"verdict":"reproduced"`, `"verdict":"reproduced","verdict":"reproduced"`)},
		{"case-folded key", r(rep, `"verdict"`, `"Verdict"`)},
		{"duplicate key in provenance", r(rep, `"revision":"v1.4.0"`, `"revision":"v1.4.0","Revision":"x"`)},
		{"missing time", r(rep, `,"time":"2026-12-03T12:00:00Z"`, ``)},
		{"wrong statement type", r(rep, "Statement/v1", "Statement/v0.1")},
		{"wrong predicate type", r(rep, "signoff/v1", "signoff/v2")},
		{"two subjects", r(rep, `"subject":[`, `"subject":[{"name":"b","digest":{"sha256":"`+hexSubject+`"}},`)},
		{"no subject", r(rev, `"subject":[{"name":"app.bin","digest":{"sha256":"`+hexSubject+`"}}]`, `"subject":[]`)},
		{"extra digest", r(rev, `{"sha256":"`+hexSubject+`"}`, `{"sha256":"`+hexSubject+`","sha512":"00"}`)},
		{"uppercase subject", r(rev, hexSubject, strings.ToUpper(hexSubject))},
		{"short subject", r(rev, hexSubject, hexSubject[:62])},
		{"unknown verdict", r(rev, `"reviewed"`, `"approved"`)},
		{"reviewed with built", r(rev, `"time"`, `"built":{"sha256":"`+hexSubject+`"},"time"`)},
		{"reproduced without provenance", r(rep, `"provenance":`+string(testProv)+`,`, ``)},
		{"reproduced of other bytes", r(rep, `"built":{"sha256":"`+hexSubject[:60], `"built":{"sha256":"`+"0000"+hexSubject[4:60])},
		{"provenance not an object", r(rep, `"provenance":`+string(testProv), `"provenance":"x"`)},
		{"repository with space", r(rev, testRepo, "example.com firmware")},
		{"empty target", r(rev, `"target":"app.bin"`, `"target":""`)},
		{"version zero", r(rev, `"targets_version":3`, `"targets_version":0`)},
		{"version leading zero", r(rev, `"targets_version":3`, `"targets_version":03`)},
		{"version float", r(rev, `"targets_version":3`, `"targets_version":3.0`)},
		{"version as string", r(rev, `"targets_version":3`, `"targets_version":"3"`)},
		{"version too large", r(rev, `"targets_version":3`, `"targets_version":9223372036854775808`)},
		{"local time", r(rev, `12:00:00Z`, `12:00:00+01:00`)},
		{"fractional time", r(rev, `12:00:00Z`, `12:00:00.5Z`)},
		{"source_local false", r(rep, `"time"`, `"source_local":false,"time"`)},
		{"source_local as string", r(rep, `"time"`, `"source_local":"true","time"`)},
		{"source_local null", r(rep, `"time"`, `"source_local":null,"time"`)},
		{"source_local twice", r(rep, `"time"`, `"source_local":true,"source_local":true,"time"`)},
		{"reviewed with source_local", r(rev, `"time"`, `"source_local":true,"time"`)},
		{"too large", r(rev, `"target":"app.bin"`, `"target":"`+strings.Repeat("a", MaxStatementSize)+`"`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == string(rep) || tc.in == string(rev) {
				t.Fatal("the mutation did not apply")
			}
			if s, err := ParseStatement([]byte(tc.in)); err == nil {
				t.Errorf("ParseStatement accepted %s: %+v", tc.in, s)
			}
		})
	}
}

func TestStatementFormatRefusesInvalid(t *testing.T) {
	s := statement(Reproduced, testRepo, testSubject)
	s.Built[0] ^= 1
	if _, err := s.Format(); err == nil {
		t.Error("Format of a reproduced statement with another built digest succeeded")
	}
}

func FuzzParseStatement(f *testing.F) {
	for _, v := range []string{Reproduced, Mismatch, Reviewed} {
		b, _ := statement(v, testRepo, testSubject).Format()
		f.Add(b)
	}
	local := statement(Mismatch, testRepo, testSubject)
	local.SourceLocal = true
	b, _ := local.Format()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatement(b)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("ParseStatement accepted an invalid statement: %v", err)
		}
		out, err := s.Format()
		if err != nil {
			if strings.Contains(err.Error(), "too large") {
				return // formatting escapes may grow a statement near the limit
			}
			t.Fatalf("Format of a parsed statement: %v", err)
		}
		s2, err := ParseStatement(out)
		if err != nil || s2.Verdict != s.Verdict || s2.Subject != s.Subject || s2.Repository != s.Repository || !s2.Time.Equal(s.Time) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
