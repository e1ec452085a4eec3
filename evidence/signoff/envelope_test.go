package signoff

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

func TestSignOpenRoundTrip(t *testing.T) {
	k := newKey(t, "rebuilder.example.org")
	s := statement(Reproduced, testRepo, testSubject)
	env := k.sign(t, s)
	e, err := OpenEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	if e.Attester.ID != k.att.ID || e.Attester.Name != "rebuilder.example.org" || !bytes.Equal(e.Raw, env) {
		t.Errorf("OpenEnvelope = %+v", e)
	}
	want, _ := s.Format()
	got, _ := e.Statement.Format()
	if !bytes.Equal(got, want) {
		t.Errorf("statement %s, want %s", got, want)
	}
	en := e.Entry()
	if en.Repo != testRepo || en.Subject != testSubject || en.Verdict != Reproduced || en.Key != k.att.ID || en.SHA256 != sha256.Sum256(env) || en.Length != uint64(len(env)) {
		t.Errorf("Entry = %+v", en)
	}
}

// TestPAEMatchesDSSE: our PAE is the one of the DSSE reference library.
func TestPAEMatchesDSSE(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("x"), []byte(strings.Repeat("payload ", 100))} {
		if got, want := PAE(PayloadType, p), dsse.PAE(PayloadType, p); !bytes.Equal(got, want) {
			t.Errorf("PAE = %q, want %q", got, want)
		}
	}
}

func TestKeyIDIgnoresName(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	a, b := seededKey(t, "a.example", seed), seededKey(t, "b.example", seed)
	if a.att.ID != b.att.ID || a.att.Name == b.att.Name {
		t.Errorf("one key under two names: ids %s and %s", a.att.ID, b.att.ID)
	}
	if id, err := ParseKeyID(a.att.ID.String()); err != nil || id != a.att.ID {
		t.Errorf("ParseKeyID(String()) = %v, %v", id, err)
	}
}

func TestSignRefusesAnotherSigner(t *testing.T) {
	k, other := newKey(t, "a.example"), newKey(t, "a.example")
	if _, err := Sign(statement(Reviewed, testRepo, testSubject), other.signer, k.vkey); err == nil {
		t.Error("Sign with a signer of another key succeeded")
	}
}

func TestParseAttesterRejects(t *testing.T) {
	var name, hash, b64 string
	// A key whose hash has a letter, else "uppercase hash" is the hash
	// itself (8 random hex digits are all decimal about once in 43 keys).
	for hash == strings.ToUpper(hash) {
		var rest string
		name, rest, _ = strings.Cut(newKey(t, "a.example").vkey, "+")
		hash, b64, _ = strings.Cut(rest, "+")
	}
	raw, _ := base64.StdEncoding.DecodeString(b64)
	cos := append([]byte{0x04}, raw[1:]...)
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"no hash", name + "+" + b64},
		{"wrong hash", name + "+00000000+" + b64},
		{"uppercase hash", name + "+" + strings.ToUpper(hash) + "+" + b64},
		{"other name", "b.example+" + hash + "+" + b64},
		{"cosignature type", name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(cos)},
		{"short key", name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(raw[:20])},
		{"extra padding", name + "+" + hash + "+" + b64 + "="},
		{"newline in base64", name + "+" + hash + "+" + b64[:10] + "\n" + b64[10:]},
		{"too long", strings.Repeat("a", 1100) + "+" + hash + "+" + b64},
	} {
		if _, err := ParseAttester(tc.in); err == nil {
			t.Errorf("%s: ParseAttester(%q) succeeded", tc.name, tc.in)
		}
	}
}

func TestParseKeyList(t *testing.T) {
	a, b := newKey(t, "a.example"), newKey(t, "b.example")
	keys, err := ParseKeyList([]byte("# rebuilders\n" + a.vkey + "\n\n  " + b.vkey + "  \n"))
	if err != nil || len(keys) != 2 || keys[0].ID != a.att.ID || keys[1].ID != b.att.ID {
		t.Fatalf("ParseKeyList = %v, %v", keys, err)
	}
	renamed := seededKey(t, "x.example", bytes.Repeat([]byte{1}, 32))
	same := seededKey(t, "y.example", bytes.Repeat([]byte{1}, 32))
	if _, err := ParseKeyList([]byte(renamed.vkey + "\n" + same.vkey + "\n")); err == nil {
		t.Error("ParseKeyList accepted one key under two names")
	}
	if _, err := ParseKeyList([]byte(a.vkey + "\nnot a key\n")); err == nil {
		t.Error("ParseKeyList accepted a malformed line")
	}
}

func TestOpenEnvelopeRejects(t *testing.T) {
	k := newKey(t, "a.example")
	env := string(k.sign(t, statement(Reviewed, testRepo, testSubject)))
	u, err := ParseEnvelope([]byte(env))
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.StdEncoding.EncodeToString(u.Sig)
	payload := base64.StdEncoding.EncodeToString(u.Payload)
	r := func(old, new string) string { return strings.Replace(env, old, new, 1) }
	other := newKey(t, "a.example")
	for _, tc := range []struct{ name, in string }{
		{"two signatures", r(`"signatures":[`, `"signatures":[{"keyid":"`+k.vkey+`","sig":"`+sig+`"},`)},
		{"no signature", r(`[{"keyid":"`+k.vkey+`","sig":"`+sig+`"}]`, `[]`)},
		{"other payload type", r(PayloadType, "application/json")},
		{"unknown field", r(`"payloadType"`, `"x":1,"payloadType"`)},
		{"duplicate field", r(`"payloadType":"`+PayloadType+`"`, `"payloadType":"`+PayloadType+`","payloadType":"`+PayloadType+`"`)},
		{"extra padding in payload", r(payload, payload+"==")},
		{"newline in payload", r(payload, payload[:10]+`\n`+payload[10:])},
		{"other key", r(k.vkey, other.vkey)},
		{"signature of other payload", r(payload, base64.StdEncoding.EncodeToString([]byte(`{}`)))},
		{"short sig", r(sig, sig[:40])},
		{"trailing data", env + "\n{}"},
		{"too large", r(`"payloadType"`, `"pad":"`+strings.Repeat("a", MaxEnvelopeSize)+`","payloadType"`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == env {
				t.Fatal("the mutation did not apply")
			}
			if e, err := OpenEnvelope([]byte(tc.in)); err == nil {
				t.Errorf("OpenEnvelope accepted %s: %+v", tc.in, e)
			}
		})
	}
	if _, err := OpenEnvelope([]byte(r(payload, base64.StdEncoding.EncodeToString([]byte(`{}`))))); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a payload the key did not sign: %v, want ErrBadSignature", err)
	}
}

// TestOpenEnvelopeRefusesEveryMutation: every one-byte change, truncation
// and extension of a signed envelope is refused.
func TestOpenEnvelopeRefusesEveryMutation(t *testing.T) {
	k := newKey(t, "a.example")
	env := k.sign(t, statement(Reviewed, testRepo, testSubject))
	for i := range env {
		m := bytes.Clone(env)
		m[i] ^= 0x01
		if _, err := OpenEnvelope(m); err == nil {
			t.Errorf("byte %d flipped (%q): accepted", i, m[max(0, i-10):min(len(m), i+10)])
		}
		if _, err := OpenEnvelope(env[:i]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", i)
		}
	}
	for _, ext := range []string{"x", " {}", "\x00"} {
		if _, err := OpenEnvelope(append(bytes.Clone(env), ext...)); err == nil {
			t.Errorf("extended with %q: accepted", ext)
		}
	}
}

func FuzzOpenEnvelope(f *testing.F) {
	k := seededKey(f, "a.example", bytes.Repeat([]byte{3}, 32))
	for _, v := range []string{Reproduced, Mismatch, Reviewed} {
		f.Add(k.sign(f, statement(v, testRepo, testSubject)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseEnvelope(b)
		if err != nil {
			return
		}
		if !bytes.Equal(u.Raw, b) || len(u.Sig) != 64 {
			t.Fatalf("ParseEnvelope = %+v", u)
		}
		e, err := u.Verify()
		if err != nil {
			return
		}
		if err := e.Statement.Validate(); err != nil {
			t.Fatalf("verified envelope with an invalid statement: %v", err)
		}
		en := e.Entry()
		if p, err := ParseEntry(en.Format()); err != nil || p != en {
			t.Fatalf("entry round trip: %v", err)
		}
	})
}

func FuzzParseKeyList(f *testing.F) {
	k := seededKey(f, "a.example", bytes.Repeat([]byte{3}, 32))
	f.Add([]byte("# keys\n" + k.vkey + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseKeyList(b)
		if err != nil {
			return
		}
		seen := map[KeyID]bool{}
		for _, a := range keys {
			if seen[a.ID] {
				t.Fatal("a key twice")
			}
			seen[a.ID] = true
			if b, err := ParseAttester(a.VKey); err != nil || b.ID != a.ID {
				t.Fatalf("reparse: %v", err)
			}
		}
	})
}
