package proof

import (
	"bytes"
	"strings"
	"testing"
)

const example = "c2sp.org/tlog-proof@v1\n" +
	"extra aGVsbG8=\n" +
	"index 3\n" +
	"4nDpJ3HGVRmb7PbvJvsCxkdBbT6P8xUSNvHRrNdrVWk=\n" +
	"QjOTIVbJ6IfTzn9H3xHs6QWUnjxaV3dD2Ga7JcNNmNw=\n" +
	"\n" +
	"example.com/log\n6\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n\n— example.com/log AAAA\n"

func TestParseFormatRoundTrip(t *testing.T) {
	p, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if p.Index != 3 || len(p.Hashes) != 2 || string(p.Extra) != "hello" || !bytes.HasPrefix(p.Checkpoint, []byte("example.com/log\n")) {
		t.Errorf("Parse = %+v", p)
	}
	if got := string(p.Format()); got != example {
		t.Errorf("Format = %q, want %q", got, example)
	}
	noExtra := strings.Replace(example, "extra aGVsbG8=\n", "", 1)
	p, err = Parse([]byte(noExtra))
	if err != nil || p.Extra != nil || string(p.Format()) != noExtra {
		t.Errorf("without extra: %v %+v", err, p)
	}
	noHashes := "c2sp.org/tlog-proof@v1\nindex 0\n\nexample.com/log\n1\n"
	if p, err := Parse([]byte(noHashes)); err != nil || len(p.Hashes) != 0 {
		t.Errorf("single-leaf proof: %v %+v", err, p)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"wrong header", strings.Replace(example, "@v1", "@v2", 1)},
		{"no index", strings.Replace(example, "index 3\n", "", 1)},
		{"leading zero index", strings.Replace(example, "index 3", "index 03", 1)},
		{"negative index", strings.Replace(example, "index 3", "index -3", 1)},
		{"index before extra", strings.Replace(example, "extra aGVsbG8=\nindex 3\n", "index 3\nextra aGVsbG8=\n", 1)},
		{"short hash", strings.Replace(example, "4nDpJ3HGVRmb7PbvJvsCxkdBbT6P8xUSNvHRrNdrVWk=", "4nDpJ3HGVRmb7PbvJvsCxkdBbT6P8xUSNvHRrNdrVQ==", 1)},
		{"non-canonical hash", strings.Replace(example, "rNdrVWk=", "rNdrVWl=", 1)},
		{"non-canonical extra", strings.Replace(example, "aGVsbG8=", "aGVsbG9=", 1)},
		{"no checkpoint", strings.SplitAfter(example, "\n\n")[0]},
		{"no blank line", strings.Replace(example, "\n\nexample", "\nexample", 1)},
		{"too many hashes", strings.Replace(example, "index 3\n", "index 3\n"+strings.Repeat("4nDpJ3HGVRmb7PbvJvsCxkdBbT6P8xUSNvHRrNdrVWk=\n", MaxHashes), 1)},
		{"too large", example + strings.Repeat("x", MaxSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := Parse([]byte(tc.in)); err == nil {
				t.Errorf("accepted: %+v", p)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Format(), b) {
			t.Fatalf("Parse accepted non-canonical %q", b)
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
