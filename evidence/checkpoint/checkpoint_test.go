package checkpoint_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/notekey"
	"golang.org/x/mod/sumdb/note"
)

func logVerifier(t testing.TB, l *evidencetest.Log) note.Verifier {
	v, err := notekey.ParseLogVerifier(l.VKey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func witnessVerifiers(t testing.TB, l *evidencetest.Log) []note.Verifier {
	var vs []note.Verifier
	for _, w := range l.Witnesses {
		v, err := notekey.ParseWitnessVerifier(w.VKey)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func TestOpen(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 3)
	l.Append([]byte("a"))
	l.Append([]byte("b"))
	msg := l.Checkpoint(0, 2)
	s, err := checkpoint.Open(msg, l.Origin, logVerifier(t, l), witnessVerifiers(t, l)...)
	if err != nil {
		t.Fatal(err)
	}
	if s.Size != 2 || s.Origin != l.Origin || !bytes.Equal(s.Note, msg) {
		t.Errorf("Open = %+v", s.Checkpoint)
	}
	if len(s.Cosignatures) != 2 || s.Cosignatures[0].Time.IsZero() {
		t.Errorf("cosignatures = %+v, want 2 with timestamps", s.Cosignatures)
	}
	// Unknown witnesses are ignored, not counted.
	s, err = checkpoint.Open(msg, l.Origin, logVerifier(t, l))
	if err != nil || len(s.Cosignatures) != 0 {
		t.Errorf("Open without witness keys = %v, %d cosignatures", err, len(s.Cosignatures))
	}
}

func TestOpenRejects(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 1)
	l.Append([]byte("a"))
	other := evidencetest.NewLog("example.com/log", 0)
	lv := logVerifier(t, l)
	cosignedOnly, _ := checkpoint.Cosign(l.Body(1).Format(), l.Witnesses[0].Signer)
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"signed by another key of the same name", other.Checkpoint(), checkpoint.ErrNoLogSig},
		{"only a witness cosignature", append(append(l.Body(1).Format(), '\n'), cosignedOnly...), checkpoint.ErrNoLogSig},
		{"wrong origin", evidencetest.NewLogWithKey(l, "example.com/other").Checkpoint(), nil},
		{"too large", append(l.Checkpoint(), bytes.Repeat([]byte("— x AAAA\n"), checkpoint.MaxNoteSize/8)...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkpoint.Open(tc.msg, l.Origin, lv, witnessVerifiers(t, l)...)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseUnverified(t *testing.T) {
	good := "example.com/log\n5\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n"
	if _, err := checkpoint.ParseUnverified([]byte(good)); err != nil {
		t.Fatal(err)
	}
	if c, err := checkpoint.ParseUnverified([]byte(good + "ext\n")); err != nil || len(c.Extensions) != 1 {
		t.Errorf("extension line: %v %+v", err, c)
	}
	for _, bad := range []string{
		"", "example.com/log\n5\n", strings.Replace(good, "\n5\n", "\n05\n", 1), strings.Replace(good, "\n5\n", "\n-5\n", 1),
		strings.Replace(good, "uU=", "uV=", 1), // non-canonical base64 (unused bits)
		strings.Replace(good, "XhRA", "XhR", 1), good + "\n", "\n5\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n",
		strings.TrimSuffix(good, "\n"), "example.com/log\n5\nAAAA\n",
	} {
		if _, err := checkpoint.ParseUnverified([]byte(bad)); err == nil {
			t.Errorf("ParseUnverified(%q) accepted", bad)
		}
	}
}

// TestMutations: every one-byte change, truncation and extension of a valid
// cosigned checkpoint note is refused, or (when it only touches a
// cosignature) loses that cosignature: never does it verify as the original.
func TestMutations(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 2)
	l.Append([]byte("a"))
	msg := l.Checkpoint(0, 1)
	lv, wv := logVerifier(t, l), witnessVerifiers(t, l)
	accepts := func(m []byte) bool {
		s, err := checkpoint.Open(m, l.Origin, lv, wv...)
		return err == nil && len(s.Cosignatures) == 2 && s.Size == 1
	}
	if !accepts(msg) {
		t.Fatal("valid note refused")
	}
	for i := range msg {
		for _, c := range []byte{msg[i] ^ 1, msg[i] ^ 0x20, '\n', ' ', 'A'} {
			if c == msg[i] {
				continue
			}
			m := bytes.Clone(msg)
			m[i] = c
			if accepts(m) {
				t.Errorf("mutation at %d (%q→%q) accepted", i, msg[i], c)
			}
		}
		if accepts(msg[:i]) {
			t.Errorf("truncation to %d accepted", i)
		}
	}
	for _, ext := range []string{"\n", " ", "x", "— x\n"} {
		if accepts(append(bytes.Clone(msg), ext...)) {
			t.Errorf("extension %q accepted", ext)
		}
	}
}

func FuzzOpen(f *testing.F) {
	l := evidencetest.NewLog("example.com/log", 1)
	l.Append([]byte("a"))
	f.Add(l.Checkpoint(0))
	f.Add([]byte("example.com/log\n1\nAAAA\n\n— example.com/log AAAA\n"))
	lv := logVerifier(f, l)
	wv := witnessVerifiers(f, l)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := checkpoint.Open(b, l.Origin, lv, wv...)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(b, s.Checkpoint.Format()) {
			t.Fatalf("accepted note whose body is not canonical: %q", b)
		}
	})
}

func FuzzParseUnverified(f *testing.F) {
	f.Add([]byte("example.com/log\n5\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n"))
	f.Add([]byte("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := checkpoint.ParseUnverified(b)
		if err == nil && !bytes.Equal(c.Format(), b) {
			t.Fatalf("non-canonical body accepted: %q", b)
		}
	})
}

func BenchmarkOpen(b *testing.B) {
	l := evidencetest.NewLog("example.com/log", 3)
	l.Append([]byte("a"))
	msg := l.Checkpoint(0, 1, 2)
	lv, wv := logVerifier(b, l), witnessVerifiers(b, l)
	for b.Loop() {
		if _, err := checkpoint.Open(msg, l.Origin, lv, wv...); err != nil {
			b.Fatal(err)
		}
	}
}

func TestKeyNameMismatch(t *testing.T) {
	// A log key whose name differs from the origin (as some logs use): Open
	// checks the origin line, not the key name.
	skey, vkey, _ := notekey.GenerateLog(rand.Reader, "keyname")
	s, _ := notekey.NewLogSigner(skey)
	v, _ := notekey.ParseLogVerifier(vkey)
	msg, _ := checkpoint.Sign(checkpoint.Checkpoint{Origin: "origin.example"}, s)
	if _, err := checkpoint.Open(msg, "origin.example", v); err != nil {
		t.Error(err)
	}
	if _, err := checkpoint.Open(msg, "keyname", v); err == nil {
		t.Error("wrong origin accepted")
	}
}
