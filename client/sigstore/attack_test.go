package sigstore_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/client/sigstore/sigstoretest"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

type roleKey struct {
	signer crypto.Signer
	keys   map[string]*metadata.Key
	id     string
}

func newRoleKey(t testing.TB, ed bool) roleKey {
	t.Helper()
	var s crypto.Signer
	if ed {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s = priv
	} else {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s = priv
	}
	k, err := metadata.KeyFromPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := k.ID()
	return roleKey{s, map[string]*metadata.Key{id: k}, id}
}

// logs returns one Rekor v1 and one Rekor v2 test log, each with two
// witnesses, and names them.
func testLogs() map[string]*sigstoretest.Log {
	v1 := sigstoretest.NewV1("rekor.example", 1193050959916656506, 2)
	v1.Extension = "Timestamp: 1692374735595899989"
	return map[string]*sigstoretest.Log{"v1": v1, "v2": sigstoretest.NewV2("log.rekor.example", 2)}
}

var metadataBytes = []byte(`{"signed":{"_type":"targets","version":7},"signatures":[]}`)

func TestVerifyKeysAndLogs(t *testing.T) {
	for name, l := range testLogs() {
		for _, ed := range []bool{false, true} {
			k := newRoleKey(t, ed)
			l.Add([]byte("an earlier release"), k.signer)
			i := l.Add(metadataBytes, k.signer)
			l.Add([]byte("a later release"), k.signer)
			ev, err := sigstore.Verify(l.Bundle(i, k.id, 0, 1), metadataBytes, k.keys, mustPolicy(t, string(l.Policy(2))))
			if err != nil {
				t.Fatalf("%s ed25519=%v: %v", name, ed, err)
			}
			if ev.KeyID != k.id || ev.Index != i || len(ev.Checkpoint.Cosigners) != 2 || ev.Checkpoint.Origin != l.Origin {
				t.Errorf("%s ed25519=%v: evidence %+v", name, ed, ev)
			}
		}
	}
}

// Each bad input (docs/sigstore.md) is refused with its own reason.
func TestBadBundlesRefused(t *testing.T) {
	for name, l := range testLogs() {
		k := newRoleKey(t, name == "v2")
		i := l.Add(metadataBytes, k.signer)
		l.Add([]byte("next"), k.signer)
		p := mustPolicy(t, string(l.Policy(1)))
		good := l.Bundle(i, k.id, 0)
		if _, err := sigstore.Verify(good, metadataBytes, k.keys, p); err != nil {
			t.Fatalf("%s: good bundle: %v", name, err)
		}
		edit := func(f func(b *sigstore.UnverifiedBundle)) []byte {
			b, err := sigstore.ParseBundle(good)
			if err != nil {
				t.Fatal(err)
			}
			f(b)
			return b.Format()
		}
		other := sigstoretest.NewV2("log.rekor.example", 1) // same origin, another key
		other.Add(metadataBytes, k.signer)
		for _, tc := range []struct {
			attack string
			bundle []byte
			data   []byte
			keys   map[string]*metadata.Key
			want   error
		}{
			{"digest for other bytes", good, []byte(`{"signed":{"_type":"targets","version":8}}`), k.keys, sigstore.ErrDigestMismatch},
			{"signed by a key the role does not list", good, metadataBytes, newRoleKey(t, false).keys, sigstore.ErrKeyNotListed},
			{"wrong inclusion path", edit(func(b *sigstore.UnverifiedBundle) { b.Entries[0].Proof.Hashes[0][3] ^= 1 }), metadataBytes, k.keys, sigstore.ErrNotIncluded},
			{"wrong index", edit(func(b *sigstore.UnverifiedBundle) { b.Entries[0].Proof.Index++ }), metadataBytes, k.keys, sigstore.ErrNotIncluded},
			{"checkpoint for another tree", edit(func(b *sigstore.UnverifiedBundle) {
				b.Entries[0].Proof.Checkpoint = l.Checkpoint(1, 0) // a genuine, older checkpoint
			}), metadataBytes, k.keys, sigstore.ErrOtherTree},
			{"missing log signature", edit(func(b *sigstore.UnverifiedBundle) {
				env := b.Entries[0].Proof.Checkpoint
				b.Entries[0].Proof.Checkpoint = env[:strings.Index(string(env), "\n\n")+2]
			}), metadataBytes, k.keys, checkpoint.ErrNoLogSig},
			{"log signature replaced by a witness's", edit(func(b *sigstore.UnverifiedBundle) {
				env := string(b.Entries[0].Proof.Checkpoint)
				lines := strings.Split(strings.TrimSuffix(env, "\n"), "\n")
				b.Entries[0].Proof.Checkpoint = []byte(strings.Join(append(lines[:len(lines)-2], lines[len(lines)-1]), "\n") + "\n")
			}), metadataBytes, k.keys, checkpoint.ErrNoLogSig},
			{"log not named in the policy", edit(func(b *sigstore.UnverifiedBundle) {
				b.Entries[0] = other.Entry(0, 0)
			}), metadataBytes, k.keys, nil},
			{"cosignatures short of the quorum", l.Bundle(i, k.id), metadataBytes, k.keys, evidence.ErrQuorum},
			{"no inclusion proof", edit(func(b *sigstore.UnverifiedBundle) { b.Entries[0].Proof = nil }), metadataBytes, k.keys, sigstore.ErrNoInclusionProof},
			{"no checkpoint", edit(func(b *sigstore.UnverifiedBundle) { b.Entries[0].Proof.Checkpoint = nil }), metadataBytes, k.keys, sigstore.ErrNoCheckpoint},
			{"bundle signature differs from the entry's", edit(func(b *sigstore.UnverifiedBundle) { b.Signature = []byte("other") }), metadataBytes, k.keys, sigstore.ErrBundleMismatch},
			{"bundle digest differs from the entry's", edit(func(b *sigstore.UnverifiedBundle) { b.Digest = make([]byte, len(b.Digest)) }), metadataBytes, k.keys, sigstore.ErrBundleMismatch},
			{"not a hashedrekord", edit(func(b *sigstore.UnverifiedBundle) { b.Entries[0].Kind = "intoto" }), metadataBytes, k.keys, sigstore.ErrUnsupportedKind},
		} {
			_, err := sigstore.Verify(tc.bundle, tc.data, tc.keys, p)
			if err == nil {
				t.Errorf("%s: %s: accepted", name, tc.attack)
				continue
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("%s: %s: got %v, want %v", name, tc.attack, err, tc.want)
			}
		}
	}
}

// TestForgedSignatureRefused: an entry whose signature is not over the
// digest by its key (a log that accepted garbage) is refused even though
// it is included and its key is the role's.
func TestForgedSignatureRefused(t *testing.T) {
	for name, l := range testLogs() {
		k := newRoleKey(t, name == "v1")
		h, err := sigstore.NewHashedRekord(l.Version(), metadataBytes, k.signer)
		if err != nil {
			t.Fatal(err)
		}
		h.Signature[len(h.Signature)-1] ^= 1
		body, err := h.Format()
		if err != nil {
			t.Fatal(err)
		}
		i := l.AddBody(body)
		b, _ := sigstore.ParseBundle(l.Bundle(i, k.id))
		_, err = sigstore.Verify(b.Format(), metadataBytes, k.keys, mustPolicy(t, string(l.Policy(0))))
		if !errors.Is(err, sigstore.ErrBadSignature) && !errors.Is(err, sigstore.ErrBundleMismatch) {
			t.Errorf("%s: got %v, want ErrBadSignature", name, err)
		}
	}
}

// TestEveryByteOfEvidenceMatters flips every byte of the entry body and of
// the checkpoint note, and every bit of each proof hash: each one must be
// refused.
func TestEveryByteOfEvidenceMatters(t *testing.T) {
	for name, l := range testLogs() {
		k := newRoleKey(t, false)
		for j := 0; j < 5; j++ {
			l.Add([]byte{byte(j)}, k.signer)
		}
		i := l.Add(metadataBytes, k.signer)
		l.Add([]byte("x"), k.signer)
		p := mustPolicy(t, string(l.Policy(1)))
		good, _ := sigstore.ParseBundle(l.Bundle(i, k.id, 1))
		try := func(what string, f func(b *sigstore.UnverifiedBundle)) {
			b, _ := sigstore.ParseBundle(good.Format())
			f(b)
			if _, err := sigstore.Verify(b.Format(), metadataBytes, k.keys, p); err == nil {
				t.Errorf("%s: %s: accepted", name, what)
			}
		}
		for j := range good.Entries[0].Body {
			try("body byte", func(b *sigstore.UnverifiedBundle) { b.Entries[0].Body[j] ^= 0x01 })
		}
		for j := range good.Entries[0].Proof.Checkpoint {
			try("checkpoint byte", func(b *sigstore.UnverifiedBundle) { b.Entries[0].Proof.Checkpoint[j] ^= 0x01 })
		}
		for h := range good.Entries[0].Proof.Hashes {
			for bit := 0; bit < 256; bit++ {
				try("proof bit", func(b *sigstore.UnverifiedBundle) { b.Entries[0].Proof.Hashes[h][bit/8] ^= 1 << (bit % 8) })
			}
		}
		try("truncated proof", func(b *sigstore.UnverifiedBundle) {
			b.Entries[0].Proof.Hashes = b.Entries[0].Proof.Hashes[:len(b.Entries[0].Proof.Hashes)-1]
		})
		try("extended proof", func(b *sigstore.UnverifiedBundle) {
			b.Entries[0].Proof.Hashes = append(b.Entries[0].Proof.Hashes, [32]byte{})
		})
	}
}

func TestParseBundleStrict(t *testing.T) {
	good := string(readVector(t, "rekor2-happy-path/bundle.sigstore.json"))
	if _, err := sigstore.ParseBundle([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, in string }{
		{"unknown field", strings.Replace(good, `"mediaType"`, `"extra": 1, "mediaType"`, 1)},
		{"duplicate field", strings.Replace(good, `"mediaType": `, `"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "mediaType": `, 1)},
		{"duplicate field in another case", strings.Replace(good, `"mediaType": `, `"MediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "mediaType": `, 1)},
		{"unknown media type", strings.Replace(good, `bundle.v0.3+json`, `bundle.v9+json`, 1)},
		{"numeric index", strings.Replace(good, `"logIndex": "735"`, `"logIndex": 735`, 1)},
		{"non-canonical index", strings.Replace(good, `"logIndex": "735"`, `"logIndex": "0735"`, 1)},
		{"negative index", strings.Replace(good, `"logIndex": "735"`, `"logIndex": "-735"`, 1)},
		{"non-canonical base64", strings.Replace(good, `"rootHash": "rs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI="`, `"rootHash": "rs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDJ="`, 1)},
		{"short hash", strings.Replace(good, `"rootHash": "rs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI="`, `"rootHash": "rs1Y"`, 1)},
		{"no entries", strings.Replace(good, `"tlogEntries": [`, `"tlogEntries": [], "x": [`, 1)},
		{"trailing data", good + "{}"},
		{"not JSON", "-----BEGIN"},
	} {
		if _, err := sigstore.ParseBundle([]byte(tc.in)); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := sigstore.ParseBundle(make([]byte, sigstore.MaxBundleSize+1)); err == nil {
		t.Error("oversized bundle accepted")
	}
}

func TestParseHashedRekordCanonical(t *testing.T) {
	k := newRoleKey(t, false)
	for _, v := range []string{"0.0.1", "0.0.2"} {
		h, err := sigstore.NewHashedRekord(v, metadataBytes, k.signer)
		if err != nil {
			t.Fatal(err)
		}
		body, err := h.Format()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sigstore.ParseHashedRekord(body); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		for _, bad := range []string{
			strings.Replace(string(body), `{"apiVersion"`, `{ "apiVersion"`, 1),
			strings.Replace(string(body), `"kind":"hashedrekord"`, `"kind":"hashedrekord","kind":"hashedrekord"`, 1),
			strings.Replace(string(body), `"kind":"hashedrekord"`, `"Kind":"hashedrekord"`, 1),
			strings.Replace(string(body), `"kind":"hashedrekord",`, ``, 1) + " ",
			strings.Replace(string(body), `"apiVersion":"`+v+`"`, `"apiVersion":"0.0.3"`, 1),
		} {
			if _, err := sigstore.ParseHashedRekord([]byte(bad)); err == nil {
				t.Errorf("%s: accepted %s", v, bad)
			}
		}
	}
}
