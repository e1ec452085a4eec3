package tufcheck

import (
	"errors"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// sameResult fails unless two checks of one file agree: both accept (the
// same version), or both refuse with the same sentinel and message.
func sameResult[T metadata.Roles](t *testing.T, what string, got *metadata.Metadata[T], gotErr error, want *metadata.Metadata[T], wantErr error) {
	t.Helper()
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("%s: decoded once: %v, from bytes: %v", what, gotErr, wantErr)
	}
	for _, sentinel := range []error{ErrMalformed, ErrWrongRole, ErrThreshold, ErrExpired, ErrVersion, ErrNoDelegation} {
		if errors.Is(gotErr, sentinel) != errors.Is(wantErr, sentinel) {
			t.Fatalf("%s: decoded once: %v, from bytes: %v", what, gotErr, wantErr)
		}
	}
	if (got == nil) != (want == nil) {
		t.Fatalf("%s: decoded once returned %v, from bytes %v", what, got != nil, want != nil)
	}
}

// checkDecodedAgrees runs every check on b both ways.
func checkDecodedAgrees(t *testing.T, b []byte, trusted *Root, delegator *Targets, at time.Time) {
	t.Helper()
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, "firmware"} {
		u := DecodeUnverified(b, role)
		h, herr := u.Header()
		wh, wherr := PeekUnverified(b)
		if (herr == nil) != (wherr == nil) || h.Type != wh.Type || h.Version != wh.Version || !h.Expires.Equal(wh.Expires) {
			t.Fatalf("%s: header %+v %v, PeekUnverified %+v %v", role, h, herr, wh, wherr)
		}
		switch role {
		case metadata.ROOT:
			r, err := InitialRootDecoded(u, at)
			wr, werr := InitialRoot(b, at)
			sameResult(t, "initial root", r, err, wr, werr)
			r, err = NextRootDecoded(trusted, u, at)
			wr, werr = NextRoot(trusted, b, at)
			sameResult(t, "next root", r, err, wr, werr)
		case metadata.TARGETS:
			tt, err := TopLevelTargetsDecoded(trusted, u, at)
			wt, werr := TopLevelTargets(trusted, b, at)
			sameResult(t, "targets", tt, err, wt, werr)
		default:
			for _, name := range []string{"firmware", "other"} {
				tt, err := DelegatedTargetsDecoded(delegator, name, u, at)
				wt, werr := DelegatedTargets(delegator, name, b, at)
				sameResult(t, "delegated "+name, tt, err, wt, werr)
			}
		}
	}
}

// decodedFixture is a repository with valid and invalid files of each role.
func decodedFixture(t testing.TB) (trusted *Root, delegator *Targets, files [][]byte) {
	root, rk, tk := repo(t)
	rb := sign(t, root, rk...)
	trusted, err := InitialRoot(rb, now)
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
	if delegator, err = TopLevelTargets(trusted, tb, now); err != nil {
		t.Fatal(err)
	}
	fw := metadata.Targets(now.Add(24 * time.Hour))
	next := metadata.Root(now.Add(24 * time.Hour))
	next.Signed = root.Signed
	next.Signed.Version = 2
	files = [][]byte{rb, sign(t, root, rk[0]), tb, sign(t, targets, dk), sign(t, fw, dk), sign(t, fw, tk),
		sign(t, next, rk...), sign(t, next, rk[1]), []byte(`{"signed":`), nil}
	return trusted, delegator, files
}

// TestDecodedOnceChecksAsFromBytes: the checks on a file decoded once
// accept and refuse exactly as the checks on its bytes, with the same
// error, for every role and at times before and after expiry.
func TestDecodedOnceChecksAsFromBytes(t *testing.T) {
	trusted, delegator, files := decodedFixture(t)
	for _, b := range files {
		for _, at := range []time.Time{now, now.Add(48 * time.Hour)} {
			checkDecodedAgrees(t, b, trusted, delegator, at)
		}
	}
}

func FuzzDecodedOnceChecksAsFromBytes(f *testing.F) {
	trusted, delegator, files := decodedFixture(f)
	for _, b := range files {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodedAgrees(t, b, trusted, delegator, now) })
}
