package audit

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// FuzzSplitEntryBundle: a tlog-tiles entry bundle from the ledger never
// panics the splitter, and what it accepts re-encodes to the same bytes.
func FuzzSplitEntryBundle(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c', 0, 0})
	f.Add([]byte{0, 9, 'a'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := splitEntryBundle(b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		for _, e := range es {
			binary.Write(&out, binary.BigEndian, uint16(len(e)))
			out.Write(e)
		}
		if !bytes.Equal(out.Bytes(), b) {
			t.Fatalf("split then join changed the bundle")
		}
	})
}

// FuzzParseExpectedHashes: any hash file either fails or gives hashes that
// are exactly its non-comment lines.
func FuzzParseExpectedHashes(f *testing.F) {
	f.Add([]byte("# ours\n" + "0000000000000000000000000000000000000000000000000000000000000000\n\n"))
	f.Add([]byte("ABCD\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseExpectedHashes(b, "r")
		if err != nil {
			return
		}
		if e.Len() > bytes.Count(b, []byte("\n"))+1 {
			t.Fatalf("more hashes than lines")
		}
	})
}

func TestProgressLine(t *testing.T) {
	got := progressLine(0, 50, 100, 10*time.Second)
	want := "[===============               ]  50% 50/100 entries  5 entries/s  ETA 10s "
	if got != want {
		t.Errorf("progressLine = %q, want %q", got, want)
	}
}

// FuzzSplitMetadataBundle: a metadata bundle never panics the splitter and
// gives exactly the width asked for, re-encoding to the same bytes.
func FuzzSplitMetadataBundle(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, '{', '}', 0, 0, 0, 1, 'x'}, 2)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, 1)
	f.Fuzz(func(t *testing.T, b []byte, w int) {
		ms, err := splitMetadataBundle(b, w)
		if err != nil {
			return
		}
		if len(ms) != w {
			t.Fatalf("%d files, want %d", len(ms), w)
		}
		var out bytes.Buffer
		for _, m := range ms {
			binary.Write(&out, binary.BigEndian, uint32(len(m)))
			out.Write(m)
		}
		if !bytes.Equal(out.Bytes(), b) {
			t.Fatalf("split then join changed the bundle")
		}
	})
}
