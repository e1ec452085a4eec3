package repo

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"repository":"example.com/fw","ledger":"http://127.0.0.1:1","expires":{"root":"8760h","targets":"2160h","delegated":"2160h","snapshot":"168h","timestamp":"24h"}}`))
	f.Add([]byte(`{"repository":"x","expires":{"root":"1m","targets":"1m","delegated":"1m","snapshot":"1m","timestamp":"1m"},"extra":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		// What parses re-encodes to something that parses to the same.
		c2, err := ParseConfig(c.Format())
		if err != nil {
			t.Fatalf("re-encoded config does not parse: %v", err)
		}
		if !bytes.Equal(c.Format(), c2.Format()) {
			t.Fatal("config does not round-trip")
		}
	})
}

func FuzzParsePublishResponse(f *testing.F) {
	f.Add([]byte(`{"index":3,"leaf_hash":"0000000000000000000000000000000000000000000000000000000000000000","entry":"shiplog/release/v1\n","duplicate":false,"proof":"c2sp.org/tlog-proof@v1\nindex 3\n\nx\n"}`))
	f.Add([]byte(`{"index":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parsePublishResponse(b)
		if err == nil && len(r.LeafHash) != 64 {
			t.Fatal("accepted a leaf hash of the wrong length")
		}
	})
}

func FuzzValidTargetPath(f *testing.F) {
	for _, s := range []string{"fw/app.bin", "a", "../x", "a//b", "/a", "a\\b", "é/ü.bin"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidTargetPath(p) != nil {
			return
		}
		// A valid path stays inside DIR/targets.
		stored := storedName(p, "00")
		if bytes.HasPrefix([]byte(stored), []byte("/")) || bytes.Contains([]byte("/"+stored+"/"), []byte("/../")) {
			t.Fatalf("valid path %q escapes: %q", p, stored)
		}
	})
}

// FuzzParseRoleRecord: the ledger's role record parser returns either an
// error or a canonical SHA-256 hex string, whatever the bytes.
func FuzzParseRoleRecord(f *testing.F) {
	f.Add([]byte(`{"index":2,"sha256":"ebbb08662929863ab705527beff3f7a4bf14b981ece4ce1da44a8d2f78b38752","version":2}`))
	f.Add([]byte(`{"index":2,"sha256":"EBBB08662929863ab705527beff3f7a4bf14b981ece4ce1da44a8d2f78b38752","version":2}`))
	f.Add([]byte(`{"sha256":"00","version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sum, err := parseRoleRecord(b)
		if err != nil {
			return
		}
		d, derr := hex.DecodeString(sum)
		if derr != nil || len(d) != 32 || hex.EncodeToString(d) != sum {
			t.Fatalf("accepted sha256 %q", sum)
		}
	})
}
