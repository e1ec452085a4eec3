package tufcheck

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var now = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

type key struct {
	pub    *metadata.Key
	signer signature.Signer
}

func newKey(t testing.TB) key {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, 0)
	if err != nil {
		t.Fatal(err)
	}
	return key{k, s}
}

func sign[T metadata.Roles](t testing.TB, m *metadata.Metadata[T], keys ...key) []byte {
	t.Helper()
	m.ClearSignatures()
	for _, k := range keys {
		if _, err := m.Sign(k.signer); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// repo builds root v1 with a 2-of-2 root role and 1-of-1 targets role.
func repo(t testing.TB) (*metadata.Metadata[metadata.RootType], []key, key) {
	root := metadata.Root(now.Add(365 * 24 * time.Hour))
	rk := []key{newKey(t), newKey(t)}
	tk := newKey(t)
	for _, k := range rk {
		if err := root.Signed.AddKey(k.pub, metadata.ROOT); err != nil {
			t.Fatal(err)
		}
	}
	root.Signed.Roles[metadata.ROOT].Threshold = 2
	if err := root.Signed.AddKey(tk.pub, metadata.TARGETS); err != nil {
		t.Fatal(err)
	}
	return root, rk, tk
}

func TestInitialRoot(t *testing.T) {
	root, rk, _ := repo(t)
	if _, err := InitialRoot(sign(t, root, rk...), now); err != nil {
		t.Fatalf("valid root: %v", err)
	}
	if _, err := InitialRoot(sign(t, root, rk[0]), now); !errors.Is(err, ErrThreshold) {
		t.Errorf("root below threshold: got %v, want ErrThreshold", err)
	}
	if _, err := InitialRoot(sign(t, root, rk...), now.Add(400*24*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("expired root: got %v, want ErrExpired", err)
	}
	if _, err := InitialRoot([]byte(`{"signed":`), now); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated root: got %v, want ErrMalformed", err)
	}
}

func TestAttackRootRotationNotSignedByOldKeys(t *testing.T) {
	root, rk, _ := repo(t)
	trusted, err := InitialRoot(sign(t, root, rk...), now)
	if err != nil {
		t.Fatal(err)
	}
	// The attacker replaces both root keys and signs v2 with only the new ones.
	evil := []key{newKey(t), newKey(t)}
	next := metadata.Root(now.Add(24 * time.Hour))
	next.Signed = root.Signed
	next.Signed.Version = 2
	next.Signed.Keys = map[string]*metadata.Key{}
	next.Signed.Roles = map[string]*metadata.Role{}
	for _, r := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		next.Signed.Roles[r] = &metadata.Role{KeyIDs: []string{}, Threshold: 1}
	}
	for _, k := range evil {
		if err := next.Signed.AddKey(k.pub, metadata.ROOT); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NextRoot(trusted, sign(t, next, evil...), now); !errors.Is(err, ErrThreshold) {
		t.Errorf("rotation signed by new keys only: got %v, want ErrThreshold", err)
	}
	if _, err := NextRoot(trusted, sign(t, next, append(evil, rk...)...), now); err != nil {
		t.Errorf("rotation signed by old and new thresholds: %v", err)
	}
	next.Signed.Version = 3
	if _, err := NextRoot(trusted, sign(t, next, append(evil, rk...)...), now); !errors.Is(err, ErrVersion) {
		t.Errorf("skipped root version: got %v, want ErrVersion", err)
	}
}

func TestTargetsAndDelegations(t *testing.T) {
	root, rk, tk := repo(t)
	trusted, err := InitialRoot(sign(t, root, rk...), now)
	if err != nil {
		t.Fatal(err)
	}
	targets := metadata.Targets(now.Add(24 * time.Hour))
	dk := newKey(t)
	targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{{Name: "firmware", KeyIDs: []string{}, Threshold: 1, Paths: []string{"fw/*"}}}}
	if err := targets.Signed.AddKey(dk.pub, "firmware"); err != nil {
		t.Fatal(err)
	}
	tb := sign(t, targets, tk)
	top, err := TopLevelTargets(trusted, tb, now)
	if err != nil {
		t.Fatalf("valid targets: %v", err)
	}
	if _, err := TopLevelTargets(trusted, sign(t, targets, dk), now); !errors.Is(err, ErrThreshold) {
		t.Errorf("targets signed by a key of another role: got %v, want ErrThreshold", err)
	}
	if _, err := TopLevelTargets(trusted, sign(t, root, rk...), now); !errors.Is(err, ErrWrongRole) {
		t.Errorf("root submitted as targets: got %v, want ErrWrongRole", err)
	}
	fw := metadata.Targets(now.Add(24 * time.Hour))
	if _, err := DelegatedTargets(top, "firmware", sign(t, fw, dk), now); err != nil {
		t.Errorf("valid delegated role: %v", err)
	}
	if _, err := DelegatedTargets(top, "firmware", sign(t, fw, tk), now); !errors.Is(err, ErrThreshold) {
		t.Errorf("delegated role signed by the delegator's key: got %v, want ErrThreshold", err)
	}
	if _, err := DelegatedTargets(top, "other", sign(t, fw, dk), now); !errors.Is(err, ErrNoDelegation) {
		t.Errorf("undelegated role: got %v, want ErrNoDelegation", err)
	}
	if _, err := DelegatedTargets(top, "firmware", sign(t, fw, dk), now.Add(48*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("expired delegated role: got %v, want ErrExpired", err)
	}
}

func TestAttackDuplicateSignaturesByOneKey(t *testing.T) {
	root, rk, _ := repo(t)
	b := sign(t, root, rk[0])
	m, _ := metadata.Root().FromBytes(b)
	// The same key's signature twice under one key ID is rejected by go-tuf's
	// parser; under the threshold of 2 it must never count twice.
	m.Signatures = append(m.Signatures, m.Signatures[0])
	dup, _ := m.ToBytes(false)
	if _, err := InitialRoot(dup, now); err == nil {
		t.Error("root with one key's signature twice accepted")
	}
}

func FuzzPeekUnverified(f *testing.F) {
	f.Add([]byte(`{"signed":{"_type":"targets","version":1,"expires":"2030-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := PeekUnverified(b)
		if err == nil && (h.Version < 1 || h.Type == "") {
			t.Fatalf("accepted header %+v", h)
		}
		_, _ = InitialRoot(b, now)
	})
}

// oldParse is how parseRoot and parseTargets read a file before they decoded
// it once: PeekUnverified, the role, then go-tuf's FromBytes.
func oldParse(data []byte, role string) error {
	h, err := PeekUnverified(data)
	if err != nil {
		return err
	}
	if h.Type != role {
		return ErrWrongRole
	}
	if role == metadata.ROOT {
		_, err = metadata.Root().FromBytes(data)
	} else {
		_, err = metadata.Targets().FromBytes(data)
	}
	if err != nil {
		return ErrMalformed
	}
	return nil
}

// FuzzParseDecodesOnceAsBefore checks that decoding once accepts and
// refuses exactly the files the two decodes did, with the same error.
func FuzzParseDecodesOnceAsBefore(f *testing.F) {
	f.Add([]byte(`{"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{}},"signatures":[]}`))
	f.Add([]byte(`{"signed":{"_type":"root","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","keys":{},"roles":{},"consistent_snapshot":true},"signatures":[]}`))
	f.Add([]byte(`{"signed":{"_type":"targets","spec_version":"1.0.31","version":0,"expires":"2030-01-01T00:00:00Z","targets":{}},"signatures":[]}`))
	f.Add([]byte(`{"signed":{"_type":"targets","spec_version":"1.0.31","version":1,"targets":{}},"signatures":[]}`))
	f.Add([]byte(`{"signed":{"_TYPE":"targets","spec_version":"1.0.31","version":1,"expires":null,"targets":{}},"signatures":[]}`))
	f.Add([]byte(`{"signed":`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, role := range []string{metadata.ROOT, metadata.TARGETS} {
			want := oldParse(b, role)
			var err error
			if role == metadata.ROOT {
				_, err = parseRoot(b)
			} else {
				_, err = parseTargets(b)
			}
			if (want == nil) != (err == nil) || errors.Is(err, ErrMalformed) != errors.Is(want, ErrMalformed) ||
				errors.Is(err, ErrWrongRole) != errors.Is(want, ErrWrongRole) {
				t.Fatalf("%s: got %v, before %v", role, err, want)
			}
		}
	})
}
