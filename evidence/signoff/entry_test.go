package signoff

import (
	"bytes"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence/entry"
)

const exampleEntry = "shiplog/attestation/v1\n" +
	"repo example.com/firmware\n" +
	"subject 2b2078241c74eb8cf1b77140d753f23b073c7bc338600f43432cfb6cfdf1049e\n" +
	"verdict reviewed\n" +
	"key cb39f0f6d246b033068073b728cf5b70a204cda3b1ccb17d8160d12dcd1a5ae3\n" +
	"sha256 a51078eecdb2f32b6adc46054d5bc1605bccc351abafd519295a2533a6d0c64c\n" +
	"length 778\n"

func TestEntryRoundTrip(t *testing.T) {
	e, err := ParseEntry([]byte(exampleEntry))
	if err != nil {
		t.Fatal(err)
	}
	if e.Repo != "example.com/firmware" || e.Verdict != Reviewed || e.Length != 778 || e.Key.String() != "cb39f0f6d246b033068073b728cf5b70a204cda3b1ccb17d8160d12dcd1a5ae3" {
		t.Errorf("ParseEntry = %+v", e)
	}
	if got := string(e.Format()); got != exampleEntry {
		t.Errorf("Format = %q", got)
	}
	if entry.Kind([]byte(exampleEntry)) != EntryHeader {
		t.Error("entry.Kind does not tell an attestation entry")
	}
	if _, err := entry.Parse([]byte(exampleEntry)); err == nil {
		t.Error("an attestation entry parses as a release")
	}
}

func TestParseEntryRejects(t *testing.T) {
	r := func(old, new string) string { return strings.Replace(exampleEntry, old, new, 1) }
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"release header", r(EntryHeader, entry.Header)},
		{"no final newline", strings.TrimSuffix(exampleEntry, "\n")},
		{"unknown verdict", r("verdict reviewed", "verdict approved")},
		{"uppercase hex", r("subject 2b20", "subject 2B20")},
		{"short key", r("key cb39", "key cb3")},
		{"zero length", r("length 778", "length 0")},
		{"leading zero", r("length 778", "length 0778")},
		{"length over the envelope limit", r("length 778", "length 65537")},
		{"swapped lines", r("verdict reviewed\nkey ", "key ") + ""},
		{"extra line", exampleEntry + "x\n"},
		{"double space", r("repo ", "repo  ")},
		{"crlf", strings.ReplaceAll(exampleEntry, "\n", "\r\n")},
		{"too large", exampleEntry + strings.Repeat("x", entry.MaxSize)},
	} {
		if e, err := ParseEntry([]byte(tc.in)); err == nil {
			t.Errorf("%s: ParseEntry = %+v", tc.name, e)
		}
	}
	// Every one-byte change and truncation is refused or parses to an
	// entry that formats to exactly those bytes.
	for i := range exampleEntry {
		m := []byte(exampleEntry)
		m[i] ^= 0x20
		if e, err := ParseEntry(m); err == nil && !bytes.Equal(e.Format(), m) {
			t.Errorf("byte %d changed: accepted non-canonical %q", i, m)
		}
		if _, err := ParseEntry([]byte(exampleEntry[:i])); err == nil {
			t.Errorf("truncated to %d bytes: accepted", i)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add([]byte(exampleEntry))
	f.Add([]byte(EntryHeader + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Format(), b) {
			t.Fatalf("ParseEntry accepted non-canonical %q", b)
		}
		if entry.Kind(b) != EntryHeader {
			t.Fatal("entry.Kind disagrees")
		}
	})
}
