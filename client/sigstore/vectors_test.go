package sigstore_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The Sigstore logs' keys as policy vkeys (testdata/sigstore/README.md).
const (
	rekorV1VKey = "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc="
	rekorV2VKey = "log2025-alpha1.rekor.sigstage.dev+f30d5a99+AT5/gERB6AWme8IEtcwaqcZi0hp8ocV4+JRcUnVlQfKP"
	vectors     = "../../testdata/sigstore"
)

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPolicy(t testing.TB, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// certKey returns the signing certificate's public key of a vector bundle,
// as the one key of a TUF role: the vectors are signed by Fulcio
// certificates, not by TUF keys.
func certKey(t testing.TB, bundle []byte) map[string]*metadata.Key {
	t.Helper()
	var b struct {
		VerificationMaterial struct {
			Certificate          *struct{ RawBytes string }
			X509CertificateChain *struct{ Certificates []struct{ RawBytes string } }
		}
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	var raw string
	if c := b.VerificationMaterial.Certificate; c != nil {
		raw = c.RawBytes
	} else {
		raw = b.VerificationMaterial.X509CertificateChain.Certificates[0].RawBytes
	}
	der, _ := base64.StdEncoding.DecodeString(raw)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := k.ID()
	return map[string]*metadata.Key{id: k}
}

func otherKey(t testing.TB) map[string]*metadata.Key {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := k.ID()
	return map[string]*metadata.Key{id: k}
}

var (
	policyV1   = "log " + rekorV1VKey + " https://rekor.sigstore.dev\nquorum none\n"
	policyV2   = "log " + rekorV2VKey + "\nquorum none\n"
	policyBoth = "log " + rekorV1VKey + "\nlog " + rekorV2VKey + "\nquorum none\n"
)

// TestVectors runs the device's rule on the real Sigstore bundles: every
// happy case verifies, every _fail case fails for its stated reason.
func TestVectors(t *testing.T) {
	artifact := readVector(t, "a.txt")
	for _, tc := range []struct {
		dir    string
		policy string
		want   error // nil: verifies
	}{
		{"rekor2-happy-path", policyV2, nil},
		{"rekor2-checkpoint-cosigned", policyV2, nil},
		{"happy-path-v0.3", policyV1, nil},
		{"happy-path-v0.3", policyBoth, nil},
		{"rekor2-happy-path", policyBoth, nil},
		// "The log checkpoint has had log signature removed".
		{"rekor2-checkpoint-missing-log-signature_fail", policyV2, checkpoint.ErrNoLogSig},
		// "the inclusion proof is removed … Clients should NOT be querying the log".
		{"rekor2-no-inclusion-proof_fail", policyV2, sigstore.ErrNoInclusionProof},
		// "The inclusion proof is old and is not valid for this entry"; it
		// has no checkpoint either (its path is checked in TestVectorStaleProof).
		{"invalid-inclusion-proof_fail", policyV1, sigstore.ErrNoCheckpoint},
		// "the checkpoint is self consistent but does not apply to this bundle".
		{"checkpoint-wrong-roothash_fail", policyV1, sigstore.ErrOtherTree},
		// A log not named in the policy.
		{"rekor2-happy-path", policyV1, evidence.ErrUnknownLog},
		{"happy-path-v0.3", policyV2, evidence.ErrUnknownLog},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			b := readVector(t, tc.dir+"/bundle.sigstore.json")
			ev, err := sigstore.Verify(b, artifact, certKey(t, b), mustPolicy(t, tc.policy))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if ev.Entry.Certificate != true || ev.Checkpoint.Size != ev.Checkpoint.Signed.Size {
					t.Errorf("evidence = %+v", ev)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestVectorIndexes checks what the device reports for the two logs: a
// Rekor v1 inclusion index is relative to the shard, not the global index.
func TestVectorIndexes(t *testing.T) {
	artifact := readVector(t, "a.txt")
	for _, tc := range []struct {
		dir             string
		policy          string
		index, size     uint64
		logIndex        int64
		origin, leafHex string
	}{
		{"rekor2-happy-path", policyV2, 735, 736, 735, "log2025-alpha1.rekor.sigstage.dev", "78470eff2921878c2141726b650bf349099c37850a731f287a6accf35d40441f"},
		{"happy-path-v0.3", policyV1, 75408392, 75408393, 79571823, "rekor.sigstore.dev - 2605736670972794746", "aee3c920bb1132e929ed20e1c194579a60e95849f7a554e0033fdd26ee221629"},
	} {
		b := readVector(t, tc.dir+"/bundle.sigstore.json")
		ev, err := sigstore.Verify(b, artifact, certKey(t, b), mustPolicy(t, tc.policy))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Index != tc.index || ev.Checkpoint.Size != tc.size || ev.LogIndex != tc.logIndex || ev.Checkpoint.Origin != tc.origin {
			t.Errorf("%s: index %d size %d logIndex %d origin %q", tc.dir, ev.Index, ev.Checkpoint.Size, ev.LogIndex, ev.Checkpoint.Origin)
		}
		if got := hexs(ev.LeafHash[:]); got != tc.leafHex {
			t.Errorf("%s: leaf %s, want %s", tc.dir, got, tc.leafHex)
		}
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

// TestVectorStaleProof is the invalid-inclusion-proof_fail case's stated
// reason: its path, from an older leaf, does not lead to its claimed root.
func TestVectorStaleProof(t *testing.T) {
	b, err := sigstore.ParseBundle(readVector(t, "invalid-inclusion-proof_fail/bundle.sigstore.json"))
	if err != nil {
		t.Fatal(err)
	}
	e := b.Entries[0]
	err = sigstore.CheckInclusion(e.Proof.Index, e.Proof.Hashes, sigstore.LeafHash(e.Body), e.Proof.TreeSize, e.Proof.RootHash)
	if !errors.Is(err, sigstore.ErrNotIncluded) {
		t.Fatalf("CheckInclusion = %v, want ErrNotIncluded", err)
	}
}

// TestVectorCheckpointExtension: a Rekor v1 checkpoint with a "Timestamp:"
// extension line verifies (sigstore.js provenance, an intoto entry), but
// the entry kind is not one a device accepts.
func TestVectorCheckpointExtension(t *testing.T) {
	raw := readVector(t, "sigstore-go/sigstore.js@2.0.0-provenance.sigstore.json")
	b, err := sigstore.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	inc, err := sigstore.VerifyInclusion(&b.Entries[0], mustPolicy(t, policyV1))
	if err != nil {
		t.Fatal(err)
	}
	if len(inc.Checkpoint.Extensions) != 1 || !strings.HasPrefix(inc.Checkpoint.Extensions[0], "Timestamp: ") || inc.Index != 27657874 {
		t.Errorf("checkpoint %+v index %d", inc.Checkpoint.Checkpoint, inc.Index)
	}
	if _, err := sigstore.Verify(raw, []byte("x"), otherKey(t), mustPolicy(t, policyV1)); !errors.Is(err, sigstore.ErrUnsupportedKind) {
		t.Errorf("Verify = %v, want ErrUnsupportedKind", err)
	}
}

// TestUnknownWitnessIgnored: the witness.example cosignature on the Rekor
// v2 checkpoint is ignored, not counted: a policy needing one witness of
// its own is not satisfied by it, and is once that witness cosigns.
func TestUnknownWitnessIgnored(t *testing.T) {
	artifact := readVector(t, "a.txt")
	raw := readVector(t, "rekor2-checkpoint-cosigned/bundle.sigstore.json")
	skey, vkey, _, err := notekey.GenerateWitness(rand.Reader, "w1.example")
	if err != nil {
		t.Fatal(err)
	}
	_, vkey2, _, _ := notekey.GenerateWitness(rand.Reader, "w2.example")
	one := mustPolicy(t, "log "+rekorV2VKey+"\nwitness w1 "+vkey+"\nquorum w1\n")
	two := mustPolicy(t, "log "+rekorV2VKey+"\nwitness w1 "+vkey+"\nwitness w2 "+vkey2+"\ngroup g 2 w1 w2\nquorum g\n")
	keys := certKey(t, raw)
	if _, err := sigstore.Verify(raw, artifact, keys, one); !errors.Is(err, evidence.ErrQuorum) {
		t.Fatalf("unknown cosignature counted: Verify = %v, want ErrQuorum", err)
	}

	// Cosign the checkpoint with w1: now one policy witness has signed.
	b, _ := sigstore.ParseBundle(raw)
	env := b.Entries[0].Proof.Checkpoint
	body := env[:strings.Index(string(env), "\n\n")+1]
	ws, err := notekey.NewWitnessSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := checkpoint.Cosign(body, ws)
	if err != nil {
		t.Fatal(err)
	}
	b.Entries[0].Proof.Checkpoint = checkpoint.AddSignatures(env, lines)
	cosigned := b.Format()
	ev, err := sigstore.Verify(cosigned, artifact, keys, one)
	if err != nil {
		t.Fatalf("Verify with w1's cosignature: %v", err)
	}
	if len(ev.Checkpoint.Cosigners) != 1 || ev.Checkpoint.Cosigners[0].Name != "w1" {
		t.Errorf("cosigners = %v", ev.Checkpoint.Cosigners)
	}
	// Two cosignatures on the note (w1 and witness.example) do not make two
	// of the policy's witnesses.
	if _, err := sigstore.Verify(cosigned, artifact, keys, two); !errors.Is(err, evidence.ErrQuorum) {
		t.Fatalf("Verify with 2-of-2 = %v, want ErrQuorum", err)
	}
}
