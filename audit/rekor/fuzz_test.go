package rekor

import (
	"encoding/binary"
	"testing"
)

func FuzzSplitBundle(f *testing.F) {
	f.Add([]byte{0, 1, 'a', 0, 2, 'b', 'c'})
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := splitBundle(b)
		if err != nil {
			return
		}
		// Re-encoding what was split gives the input back.
		var out []byte
		for _, e := range es {
			out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
			out = append(out, e...)
		}
		if string(out) != string(b) {
			t.Fatalf("split %x into %d entries that re-encode as %x", b, len(es), out)
		}
	})
}

func FuzzParseV1Entry(f *testing.F) {
	f.Add([]byte(`{"24296fb24b8ad77a":{"body":"eyJhIjoxfQ==","logIndex":3,"integratedTime":1}}`), int64(3))
	f.Add([]byte(`{}`), int64(0))
	f.Add([]byte(`{"a":{"body":"","logIndex":0},"b":{}}`), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, i int64) {
		body, err := parseV1Entry(b, i)
		if err == nil && (len(body) == 0 || len(body) > 64<<10) {
			t.Fatalf("accepted a body of %d bytes", len(body))
		}
	})
}
