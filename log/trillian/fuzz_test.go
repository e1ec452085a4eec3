package trillian

import (
	"bytes"
	"testing"

	ledger "github.com/shiplog/shiplog/log"
)

// FuzzTruncateBundle: a cached entry bundle read back from the shared cache
// is parsed before it is served; whatever the bytes, truncateBundle never
// panics and returns either an error or a prefix of the input made of the
// first width entries of a 256-entry bundle.
func FuzzTruncateBundle(f *testing.F) {
	var full []leaf
	for i := 0; i < 256; i++ {
		full = append(full, leaf{value: bytes.Repeat([]byte{byte(i)}, i%7)})
	}
	f.Add(entryBundle(full), uint8(0))
	f.Add(entryBundle(full), uint8(3))
	f.Add(entryBundle(full[:5]), uint8(2))
	f.Add([]byte{0xff, 0xff, 1}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, width uint8) {
		out, err := truncateBundle(b, width)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(b, out) {
			t.Fatal("not a prefix of the cached bundle")
		}
		es, err := ledger.ParseBundle(out)
		if err != nil {
			t.Fatal(err)
		}
		if want := int(width); want != 0 && len(es) != want || want == 0 && len(es) != 256 {
			t.Fatalf("%d entries for width %d", len(es), width)
		}
	})
}
