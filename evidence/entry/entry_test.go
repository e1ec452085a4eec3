package entry

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

const example = "shiplog/release/v1\n" +
	"repo example.com/firmware\n" +
	"role targets\n" +
	"version 7\n" +
	"sha256 0d6b6e2d0b0f5d3f8c6c9b9a1e5c0e6b2f6f4a3d2c1b0a99887766554433221f\n" +
	"length 1234\n"

func TestParseFormatRoundTrip(t *testing.T) {
	e, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if e.Repo != "example.com/firmware" || e.Role != "targets" || e.Version != 7 || e.Length != 1234 {
		t.Errorf("Parse = %+v", e)
	}
	if got := string(e.Format()); got != example {
		t.Errorf("Format = %q, want %q", got, example)
	}
}

// TestSpecExample checks the worked example of docs/spec/entry.md, whose
// values were computed independently with sha256sum.
func TestSpecExample(t *testing.T) {
	metadata := []byte(`{"signatures":[],"signed":{"_type":"targets","expires":"2030-01-01T00:00:00Z","spec_version":"1.0.31","targets":{},"version":7}}`)
	e, err := New("example.com/firmware", "targets", 7, metadata)
	if err != nil {
		t.Fatal(err)
	}
	want := "shiplog/release/v1\nrepo example.com/firmware\nrole targets\nversion 7\n" +
		"sha256 375e94ed27d55076e205de93a4a97fc974018861da2f1d1d3a23135686c85787\nlength 128\n"
	if got := string(e.Format()); got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
	lh := e.LeafHash()
	if got, want := hex.EncodeToString(lh[:]), "e1181a2355ea679be6478c552452b0f5eda962dd7214bd1ea776ab07212dfe4b"; got != want {
		t.Errorf("LeafHash = %s, want %s", got, want)
	}
	if !e.Matches("example.com/firmware", "targets", metadata) || e.Matches("example.com/firmware", "targets", append(metadata, ' ')) {
		t.Error("Matches disagrees with the bytes")
	}
}

func TestParseRejects(t *testing.T) {
	valid := example
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"no final newline", strings.TrimSuffix(valid, "\n")},
		{"wrong header", strings.Replace(valid, "v1", "v2", 1)},
		{"leading zero version", strings.Replace(valid, "version 7", "version 07", 1)},
		{"zero version", strings.Replace(valid, "version 7", "version 0", 1)},
		{"plus version", strings.Replace(valid, "version 7", "version +7", 1)},
		{"version too large", strings.Replace(valid, "version 7", "version 9223372036854775808", 1)},
		{"zero length", strings.Replace(valid, "length 1234", "length 0", 1)},
		{"uppercase hex", strings.Replace(valid, "0d6b", "0D6B", 1)},
		{"short hash", strings.Replace(valid, "0d6b", "0d6", 1)},
		{"double space", strings.Replace(valid, "repo ", "repo  ", 1)},
		{"space in repo", strings.Replace(valid, "example.com/firmware", "example.com firmware", 1)},
		{"empty role", strings.Replace(valid, "role targets", "role ", 1)},
		{"swapped lines", strings.Replace(strings.Replace(valid, "repo example.com/firmware\n", "", 1), "role targets\n", "role targets\nrepo example.com/firmware\n", 1)},
		{"extra line", valid + "extra x\n"},
		{"crlf", strings.ReplaceAll(valid, "\n", "\r\n")},
		{"non-ascii role", strings.Replace(valid, "role targets", "role tärgets", 1)},
		{"too large", valid + strings.Repeat("x", MaxSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if e, err := Parse([]byte(tc.in)); err == nil {
				t.Errorf("Parse(%q) = %+v, want error", tc.in, e)
			}
		})
	}
}

// TestMutations checks that every one-byte change, truncation and extension
// of a valid entry is refused or parses to a different entry: no two
// encodings mean the same entry.
func TestMutations(t *testing.T) {
	valid := []byte(example)
	orig, _ := Parse(valid)
	check := func(b []byte) {
		e, err := Parse(b)
		if err == nil && e == orig {
			t.Errorf("mutation %q parses to the original entry", b)
		}
		if err == nil && !bytes.Equal(e.Format(), b) {
			t.Errorf("mutation %q accepted in non-canonical form", b)
		}
	}
	for i := range valid {
		for _, c := range []byte{0, ' ', '\n', '0', 'a', 'A', 0x7f, 0xff, valid[i] ^ 1} {
			if c == valid[i] {
				continue
			}
			m := bytes.Clone(valid)
			m[i] = c
			check(m)
		}
		check(valid[:i])
	}
	for _, c := range []byte{'\n', ' ', 'x', 0} {
		check(append(bytes.Clone(valid), c))
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New("", "targets", 1, []byte("x")); err == nil {
		t.Error("empty repository id accepted")
	}
	if _, err := New("r", "targets", 1, nil); err == nil {
		t.Error("empty metadata accepted")
	}
	if _, err := New("r", strings.Repeat("a", MaxRoleLength+1), 1, []byte("x")); err == nil {
		t.Error("over-long role accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("shiplog/release/v1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Format(), b) {
			t.Fatalf("Parse accepted non-canonical %q", b)
		}
		e2, err := Parse(e.Format())
		if err != nil || e2 != e {
			t.Fatalf("round trip: %v, %+v != %+v", err, e2, e)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	in := []byte(example)
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLeafHash(b *testing.B) {
	e, _ := Parse([]byte(example))
	for b.Loop() {
		e.LeafHash()
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{example, Header},
		{"shiplog/attestation/v1\nrepo x\n", AttestationHeader},
		{"shiplog/other/v9\n", "shiplog/other/v9"},
		{"", ""},
		{"\nrepo x\n", ""},
		{"no newline", ""},
		{strings.Repeat("x", 64) + "\n", strings.Repeat("x", 64)},
		{strings.Repeat("x", 65) + "\n", ""},
	} {
		if got := Kind([]byte(tc.in)); got != tc.want {
			t.Errorf("Kind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
