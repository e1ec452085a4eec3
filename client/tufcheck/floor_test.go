package tufcheck

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// rotated returns a copy of root (version +1) whose targets role has the
// given keys and threshold.
func rotated(t *testing.T, root *metadata.Metadata[metadata.RootType], threshold int, keys ...key) *Root {
	t.Helper()
	b, err := root.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	next, err := metadata.Root().FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	next.Signed.Version++
	for _, id := range next.Signed.Roles[metadata.TARGETS].KeyIDs {
		if err := next.Signed.RevokeKey(id, metadata.TARGETS); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		if err := next.Signed.AddKey(k.pub, metadata.TARGETS); err != nil {
			t.Fatal(err)
		}
	}
	next.Signed.Roles[metadata.TARGETS].Threshold = threshold
	return next
}

func targetsV(t *testing.T, version int64, keys ...key) *Targets {
	t.Helper()
	m := metadata.Targets(now.Add(time.Hour))
	m.Signed.Version = version
	b := sign(t, m, keys...)
	out, err := metadata.Targets().FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVersionPoisoningFloor: the stolen-key release at the largest version
// binds the targets role only while the root's targets keys still accept it.
func TestVersionPoisoningFloor(t *testing.T) {
	root, _, stolen := repo(t)
	fresh := newKey(t)
	poisoned := targetsV(t, math.MaxInt64, stolen)
	for _, tc := range []struct {
		name string
		root *Root
		want int64
	}{
		{"same keys", root, math.MaxInt64},
		{"stolen key replaced", rotated(t, root, 1, fresh), 0},
		{"key added, stolen kept", rotated(t, root, 1, stolen, fresh), math.MaxInt64},
		{"threshold raised to 2", rotated(t, root, 2, stolen, fresh), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TargetsFloor(tc.root, poisoned); got != tc.want {
				t.Errorf("TargetsFloor = %d, want %d", got, tc.want)
			}
		})
	}
	if got := TargetsFloor(root, nil); got != 0 {
		t.Errorf("TargetsFloor with nothing trusted = %d, want 0", got)
	}
	if err := CheckAboveFloor("targets", 2, math.MaxInt64); !errors.Is(err, ErrVersion) {
		t.Errorf("CheckAboveFloor(2, max) = %v, want ErrVersion", err)
	}
	if err := CheckAboveFloor("targets", 2, 0); err != nil {
		t.Errorf("CheckAboveFloor(2, 0) = %v", err)
	}
	if err := CheckAboveFloor("targets", 2, 2); !errors.Is(err, ErrVersion) {
		t.Errorf("CheckAboveFloor(2, 2) = %v, want ErrVersion", err)
	}
}

// TestVersionPoisoningFloorDelegated: a delegated role's sequence belongs
// to the keys its delegator lists for it.
func TestVersionPoisoningFloorDelegated(t *testing.T) {
	stolen, fresh := newKey(t), newKey(t)
	delegator := func(k key) *Targets {
		m := metadata.Targets(now.Add(time.Hour))
		m.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{{Name: "firmware", KeyIDs: []string{}, Threshold: 1, Paths: []string{"fw/*"}}}}
		if err := m.Signed.AddKey(k.pub, "firmware"); err != nil {
			t.Fatal(err)
		}
		return m
	}
	poisoned := targetsV(t, math.MaxInt64, stolen)
	if got := DelegatedFloor(delegator(stolen), "firmware", poisoned); got != math.MaxInt64 {
		t.Errorf("same keys: DelegatedFloor = %d, want max", got)
	}
	if got := DelegatedFloor(delegator(fresh), "firmware", poisoned); got != 0 {
		t.Errorf("rotated keys: DelegatedFloor = %d, want 0", got)
	}
	if got := DelegatedFloor(delegator(stolen), "other", poisoned); got != 0 {
		t.Errorf("role no longer delegated: DelegatedFloor = %d, want 0", got)
	}
}

// TestDelegatorCurrentAfterRotation: a targets role whose signatures the
// current keys no longer accept (the stolen key rotated out, the threshold
// raised) is not a delegator, whatever it delegates; one the current keys
// still accept is.
func TestDelegatorCurrentAfterRotation(t *testing.T) {
	root, _, stolen := repo(t)
	fresh := newKey(t)
	thiefs := targetsV(t, 2, stolen)
	if !TargetsCurrent(root, thiefs) {
		t.Error("targets signed by the root's targets key is not current")
	}
	if TargetsCurrent(rotated(t, root, 1, fresh), thiefs) || TargetsCurrent(rotated(t, root, 2, stolen, fresh), thiefs) {
		t.Error("targets the rotated root's keys do not accept is current")
	}
	if !TargetsCurrent(rotated(t, root, 1, stolen, fresh), thiefs) {
		t.Error("targets still signed by one of the current keys is not current")
	}
	if TargetsCurrent(root, nil) {
		t.Error("no targets is current")
	}
	d := targetsV(t, 1, fresh)
	d.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{{Name: "apps", KeyIDs: []string{}, Threshold: 1, Paths: []string{"apps/*"}}}}
	if err := d.Signed.AddKey(fresh.pub, "apps"); err != nil {
		t.Fatal(err)
	}
	if DelegatedCurrent(d, "apps", thiefs) || !DelegatedCurrent(d, "apps", targetsV(t, 3, fresh)) || DelegatedCurrent(d, "other", targetsV(t, 3, fresh)) {
		t.Error("DelegatedCurrent does not follow the keys the delegator lists")
	}
}
