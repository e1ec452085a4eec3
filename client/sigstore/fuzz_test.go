package sigstore_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/shiplog/shiplog/client/sigstore"
)

// seedBundles adds every vector bundle to the corpus.
func seedBundles(f *testing.F) [][]byte {
	names, _ := filepath.Glob(filepath.Join(vectors, "*", "*.sigstore.json"))
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) < 8 {
		f.Fatalf("found %d vector bundles, want 8", len(out))
	}
	return out
}

func FuzzParseBundle(f *testing.F) {
	for _, b := range seedBundles(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"tlogEntries":[{}]}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := sigstore.ParseBundle(in)
		if err != nil {
			return
		}
		// Round trip: what parsed formats to a bundle that parses the same.
		out := b.Format()
		b2, err := sigstore.ParseBundle(out)
		if err != nil {
			t.Fatalf("formatted bundle does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(b2.Format(), out) {
			t.Fatalf("format is not stable")
		}
	})
}

func FuzzParseHashedRekord(f *testing.F) {
	for _, raw := range seedBundles(f) {
		b, err := sigstore.ParseBundle(raw)
		if err != nil {
			continue
		}
		for _, e := range b.Entries {
			f.Add(e.Body)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := sigstore.ParseHashedRekord(body)
		if err != nil {
			return
		}
		_ = h.VerifySignature()
		if h.Certificate {
			return
		}
		out, err := h.Format()
		if err != nil {
			t.Fatalf("parsed entry does not format: %v", err)
		}
		if !bytes.Equal(out, body) {
			t.Fatalf("accepted a non-canonical body:\n%s\n%s", body, out)
		}
	})
}

// FuzzVerify: Verify never panics and never accepts a bundle for bytes
// other than the artifact's.
func FuzzVerify(f *testing.F) {
	for _, b := range seedBundles(f) {
		f.Add(b)
	}
	artifact := readVector(f, "a.txt")
	p := mustPolicy(f, policyBoth)
	raw := readVector(f, "rekor2-happy-path/bundle.sigstore.json")
	keys := certKey(f, raw)
	keys1 := certKey(f, readVector(f, "happy-path-v0.3/bundle.sigstore.json"))
	for id, k := range keys1 {
		keys[id] = k
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, err := sigstore.Verify(in, append([]byte("not "), artifact...), keys, p); err == nil {
			t.Fatal("bundle verified for other bytes")
		}
		_, _ = sigstore.Verify(in, artifact, keys, p)
	})
}
