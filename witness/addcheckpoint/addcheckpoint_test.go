package addcheckpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

func specExample(t testing.TB) []byte {
	b, err := os.ReadFile("../../testdata/witness/c2sp-example-request.txt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSpecExampleRequest parses the request body of the C2SP tlog-witness
// spec's example.
func TestSpecExampleRequest(t *testing.T) {
	body := specExample(t)
	r, err := ParseRequest(body)
	if err != nil {
		t.Fatalf("ParseRequest(spec example) = %v", err)
	}
	if r.OldSize != 20852014 {
		t.Errorf("OldSize = %d, want 20852014", r.OldSize)
	}
	if len(r.Proof) != 4 {
		t.Fatalf("len(Proof) = %d, want 4", len(r.Proof))
	}
	if got := base64.StdEncoding.EncodeToString(r.Proof[3][:]); got != "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=" {
		t.Errorf("Proof[3] = %s", got)
	}
	if !bytes.HasPrefix(r.Checkpoint, []byte("example.com/behind-the-sofa\n20852163\n")) {
		t.Errorf("Checkpoint = %q", r.Checkpoint)
	}
	if got := r.Format(); !bytes.Equal(got, body) {
		t.Errorf("Format() does not reproduce the spec example:\n%s", got)
	}
}

func validRequest() *Request {
	return &Request{
		OldSize:    3,
		Proof:      [][sha256.Size]byte{sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))},
		Checkpoint: []byte("example.com/log\n5\nQrtXrQZCCvpIgsSmOsah7HdICzMLLyDfxToMql9WTjY=\n\n— example.com/log AAAAAAAA\n"),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, r := range []*Request{validRequest(), {OldSize: 0, Checkpoint: []byte("o\n0\nx\n\n— o x\n")}} {
		got, err := ParseRequest(r.Format())
		if err != nil {
			t.Fatalf("ParseRequest(Format()) = %v", err)
		}
		if !bytes.Equal(got.Format(), r.Format()) {
			t.Errorf("round trip changed the request:\n%s\n%s", got.Format(), r.Format())
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	h := base64.StdEncoding.EncodeToString(make([]byte, 32))
	note := "o\n1\n" + h + "\n\n— o AAAA\n"
	tests := map[string]string{
		"empty":              "",
		"no old line":        "\n" + note,
		"no blank line":      "old 0\n" + note[:len(note)-len("\n— o AAAA\n")],
		"leading zero":       "old 01\n\n" + note,
		"negative":           "old -1\n\n" + note,
		"plus sign":          "old +1\n\n" + note,
		"space":              "old  1\n\n" + note,
		"overflow":           "old 18446744073709551616\n\n" + note,
		"uppercase":          "OLD 1\n\n" + note,
		"short hash":         "old 1\n" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n\n" + note,
		"long hash":          "old 1\n" + base64.StdEncoding.EncodeToString(make([]byte, 33)) + "\n\n" + note,
		"unpadded hash":      "old 1\n" + strings.TrimRight(h, "=") + "\n\n" + note,
		"non-canonical hash": "old 1\n" + h[:42] + "B=\n\n" + note,
		"empty note":         "old 1\n\n",
		"no final newline":   "old 1\n\n" + note[:len(note)-1],
		"too many proofs":    "old 1\n" + strings.Repeat(h+"\n", 64) + "\n" + note,
		"CRLF":               "old 1\r\n\r\n" + note,
		"too large":          "old 1\n\n" + strings.Repeat("x", MaxRequestSize),
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			if r, err := ParseRequest([]byte(body)); err == nil {
				t.Errorf("ParseRequest accepted %q as %+v", body, r)
			}
		})
	}
	if _, err := ParseRequest([]byte("old 1\n" + strings.Repeat(h+"\n", 63) + "\n" + note)); err != nil {
		t.Errorf("ParseRequest refused 63 proof lines: %v", err)
	}
}

// TestMutations checks that no truncation of a valid request parses into a
// request that formats differently (everything accepted is canonical).
func TestMutations(t *testing.T) {
	body := validRequest().Format()
	for i := 0; i < len(body); i++ {
		for _, mutated := range [][]byte{body[:i], append(append([]byte{}, body[:i]...), body[i+1:]...)} {
			if r, err := ParseRequest(mutated); err == nil && !bytes.Equal(r.Format(), mutated) {
				t.Errorf("non-canonical body accepted: %q", mutated)
			}
		}
	}
}

func TestSize(t *testing.T) {
	for _, n := range []uint64{0, 1, 3, 1 << 63} {
		got, err := ParseSize(FormatSize(n))
		if err != nil || got != n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", n, got, err)
		}
	}
	for _, bad := range []string{"", "\n", "3", "03\n", "3\n\n", " 3\n", "3 \n", "-3\n", "3\r\n", "18446744073709551616\n"} {
		if n, err := ParseSize([]byte(bad)); err == nil {
			t.Errorf("ParseSize(%q) = %d, want error", bad, n)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(specExample(f))
	f.Add(validRequest().Format())
	f.Add([]byte("old 0\n\no\n0\nx\n\n— o x\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Format(), body) {
			t.Errorf("accepted non-canonical body %q", body)
		}
		if len(r.Proof) > MaxProofLines || len(r.Checkpoint) > MaxNoteSize {
			t.Errorf("limits not enforced")
		}
	})
}

func FuzzParseSize(f *testing.F) {
	f.Add([]byte("3\n"))
	f.Add([]byte("0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseSize(b)
		if err == nil && !bytes.Equal(FormatSize(n), b) {
			t.Errorf("accepted non-canonical size %q", b)
		}
	})
}
