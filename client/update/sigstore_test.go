package update_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/sigstore/sigstoretest"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// rekorRepo is a fixture repository whose targets role is logged in a
// Rekor log (a Sigstore bundle beside each version, no tlog-proof) and
// whose roots stay in the fixture's ledger log: the device's policy names
// both logs.
type rekorRepo struct {
	*harness.RawRepo
	rekor     *sigstoretest.Log
	targetKey crypto.Signer
	policy    *policy.Policy
}

func newRekorRepo(t *testing.T, rk *sigstoretest.Log, rekorQuorum int) *rekorRepo {
	t.Helper()
	r := &rekorRepo{RawRepo: harness.NewRawRepo(t), rekor: rk}
	// Root v2 gives targets an ECDSA key whose private half we hold.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r.targetKey = priv
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	s, _ := signature.LoadECDSASigner(priv, crypto.SHA256)
	for _, old := range r.Root.Signed.Roles[metadata.TARGETS].KeyIDs {
		r.Root.Signed.RevokeKey(old, metadata.TARGETS)
	}
	r.Root.Signed.AddKey(pub, metadata.TARGETS)
	r.Keys[metadata.TARGETS] = []kit.Key{{Pub: pub, Signer: s}}
	r.Root.Signed.Version++
	r.WriteRoot()
	// Both logs in one policy. tlog-policy has one quorum for all logs:
	// either none, or any of "k of the Rekor log's witnesses" and "2 of
	// the ledger's".
	text := "log " + rk.VKey + "\nlog " + r.Log.VKey + "\n"
	if rekorQuorum == 0 {
		text += "quorum none\n"
	} else {
		for i, w := range rk.Witnesses {
			text += fmt.Sprintf("witness r%d %s\n", i, w.VKey)
		}
		for i, w := range r.Log.Witnesses {
			text += fmt.Sprintf("witness f%d %s\n", i, w.VKey)
		}
		text += fmt.Sprintf("group rg %d r0 r1\ngroup fg 2 f0 f1 f2\ngroup q any rg fg\nquorum q\n", rekorQuorum)
	}
	if r.policy, err = policy.Parse([]byte(text)); err != nil {
		t.Fatal(err)
	}
	return r
}

// release publishes a new targets version logged in Rekor: the bundle
// replaces the tlog-proof. cosigners are the Rekor log's witnesses that
// cosign its checkpoint.
func (r *rekorRepo) release(t *testing.T, path string, data []byte, cosigners ...int) string {
	t.Helper()
	r.AddTarget(metadata.TARGETS, path, data, nil)
	r.Stage()
	name := harness.RoleFile(metadata.TARGETS, r.Roles[metadata.TARGETS].Signed.Version)
	r.Remove(name + ".tlog-proof")
	i := r.rekor.Add(r.Read(name), r.targetKey)
	r.Write(name+update.SigstoreSuffix, r.rekor.Bundle(i, "", cosigners...))
	r.Expose()
	return name
}

func (r *rekorRepo) client(t *testing.T) *update.Client {
	return &update.Client{Remote: serve(t, r.RawRepo), Time: harness.Now, Gate: &update.Gate{Policy: r.policy, Repository: r.ID}}
}

func TestSigstoreEvidenceAccepted(t *testing.T) {
	for _, rk := range []*sigstoretest.Log{sigstoretest.NewV1("rekor.example", 42, 0), sigstoretest.NewV2("log.rekor.example", 0)} {
		r := newRekorRepo(t, rk, 0)
		r.release(t, "fw/image.bin", []byte("firmware v2"))
		s, err := r.client(t).Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
		if err != nil {
			t.Fatalf("%s: %v", rk.Origin, err)
		}
		tf, err := s.Target(context.Background(), "fw/image.bin")
		if err != nil {
			t.Fatal(err)
		}
		var buf strings.Builder
		if err := s.Download(context.Background(), tf, &buf); err != nil || buf.String() != "firmware v2" {
			t.Fatalf("download: %v %q", err, buf.String())
		}
		ev := s.Evidence()
		last := ev[len(ev)-1]
		if last.Role != "targets" || last.Source != "sigstore" || last.Origin != rk.Origin {
			t.Errorf("%s: evidence %+v", rk.Origin, last)
		}
		if tr := s.Trusted(); tr.Checkpoints[rk.Origin] == nil {
			t.Errorf("%s: the Rekor checkpoint is not kept: %v", rk.Origin, tr.Checkpoints)
		}
	}
}

// The gate refuses each bad Sigstore bundle, so nothing is trusted.
func TestSigstoreAttacksRefused(t *testing.T) {
	for _, tc := range []struct {
		attack string
		spoil  func(t *testing.T, r *rekorRepo, name string)
	}{
		{"unlogged release (no bundle, no proof)", func(t *testing.T, r *rekorRepo, name string) {
			r.Remove(name + update.SigstoreSuffix)
		}},
		{"bundle signed by a key the role does not list", func(t *testing.T, r *rekorRepo, name string) {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			r.Write(name+update.SigstoreSuffix, r.rekor.Bundle(r.rekor.Add(r.Read(name), other), ""))
		}},
		{"bundle for other bytes", func(t *testing.T, r *rekorRepo, name string) {
			r.Write(name+update.SigstoreSuffix, r.rekor.Bundle(r.rekor.Add([]byte("other bytes"), r.targetKey), ""))
		}},
		{"log not named in the policy", func(t *testing.T, r *rekorRepo, name string) {
			other := sigstoretest.NewV2("other.rekor.example", 0)
			r.Write(name+update.SigstoreSuffix, other.Bundle(other.Add(r.Read(name), r.targetKey), ""))
		}},
		{"cosignatures short of the quorum", nil},
	} {
		t.Run(tc.attack, func(t *testing.T) {
			rk := sigstoretest.NewV2("log.rekor.example", 2)
			quorum := 0
			if tc.spoil == nil {
				quorum = 2
			}
			r := newRekorRepo(t, rk, quorum)
			name := r.release(t, "fw/image.bin", []byte("firmware v2"), 0) // one cosignature
			if tc.spoil != nil {
				tc.spoil(t, r, name)
			}
			_, err := r.client(t).Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
			if !errors.Is(err, update.ErrUnlogged) {
				t.Fatalf("Refresh = %v, want ErrUnlogged", err)
			}
			t.Logf("%q", err)
		})
	}
}

// TestSigstoreStaleCheckpointRefused: a device that holds a newer
// checkpoint of the Rekor log refuses a bundle proven only under an older
// one (checkpoints only move forward; offline, nothing can show the two
// consistent), and accepts it under a checkpoint of its own size.
func TestSigstoreStaleCheckpointRefused(t *testing.T) {
	rk := sigstoretest.NewV2("log.rekor.example", 2)
	r := newRekorRepo(t, rk, 1)
	r.release(t, "fw/image.bin", []byte("firmware v2"), 0)
	for i := 0; i < 5; i++ {
		rk.Add([]byte{byte(i)}, r.targetKey)
	}
	newer := rk.Checkpoint(rk.Size(), 0)
	_, err := r.client(t).Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1), Checkpoints: map[string][]byte{rk.Origin: newer}})
	if !errors.Is(err, update.ErrStaleCheckpoint) {
		t.Fatalf("Refresh = %v, want ErrStaleCheckpoint", err)
	}
	// A bundle proven under the device's own checkpoint passes.
	name := harness.RoleFile(metadata.TARGETS, r.Roles[metadata.TARGETS].Signed.Version)
	i := rk.Add(r.Read(name), r.targetKey)
	r.Write(name+update.SigstoreSuffix, rk.Bundle(i, "", 0))
	s, err := r.client(t).Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1), Checkpoints: map[string][]byte{rk.Origin: newer}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Trusted().Checkpoints[rk.Origin]; string(got) == string(newer) {
		t.Error("the device's checkpoint did not move forward")
	}
}

// rekorV1Server serves a test Rekor v1 log's consistency proofs as
// /api/v1/log/proof does; corrupt flips a bit of every answer.
func rekorV1Server(t *testing.T, rk *sigstoretest.Log, corrupt *bool) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := strconv.ParseUint(r.URL.Query().Get("firstSize"), 10, 64)
		b, _ := strconv.ParseUint(r.URL.Query().Get("lastSize"), 10, 64)
		if r.URL.Path != "/api/v1/log/proof" || r.URL.Query().Get("treeID") != "42" || a == 0 || b > rk.Size() {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var hs []string
		for _, h := range rk.ConsistencyProof(a, b) {
			if *corrupt {
				h[0] ^= 1
			}
			hs = append(hs, hex.EncodeToString(h))
		}
		json.NewEncoder(w).Encode(map[string]any{"hashes": hs})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSigstoreRekorV1Consistency: a device holding a Rekor v1 checkpoint
// accepts a newer one only with a consistency proof from the log (Rekor v1
// has no witnesses), and reports a fork when the proof does not verify.
func TestSigstoreRekorV1Consistency(t *testing.T) {
	rk := sigstoretest.NewV1("rekor.example", 42, 0)
	corrupt := false
	url := rekorV1Server(t, rk, &corrupt)
	r := newRekorRepo(t, rk, 0)
	r.policy = mustParse(t, "log "+rk.VKey+" "+url+"\nlog "+r.Log.VKey+"\nquorum none\n")
	r.release(t, "fw/image.bin", []byte("firmware v2"))
	s, err := r.client(t).Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
	if err != nil {
		t.Fatal(err)
	}
	held := s.Trusted().Checkpoints
	rk.Add([]byte("someone else's entry"), r.targetKey)
	r.release(t, "fw/image.bin", []byte("firmware v3"))

	c := r.client(t)
	if _, err := c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1), Checkpoints: held}); !errors.Is(err, update.ErrUnvouched) {
		t.Fatalf("without Rekor consistency proofs: %v, want ErrUnvouched", err)
	}
	c.Gate.Rekor = &update.RekorConsistency{}
	if _, err := c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1), Checkpoints: held}); err != nil {
		t.Fatalf("with Rekor consistency proofs: %v", err)
	}
	corrupt = true
	var fork *evidence.ForkError
	if _, err := c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1), Checkpoints: held}); !errors.As(err, &fork) {
		t.Fatalf("with a bad consistency proof: %v, want a ForkError", err)
	}
}

func mustParse(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
