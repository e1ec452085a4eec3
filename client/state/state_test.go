package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func sample() *State {
	return &State{Root: []byte(`{"signed":{}}`), Timestamp: []byte("ts"), Targets: map[string][]byte{"targets": []byte("t")},
		Checkpoints: map[string][]byte{"log.example": []byte("cp")},
		Installed:   &Manifest{ID: "v2-abc", TargetsVersion: 2, Files: map[string]File{"fw/a.bin": {Length: 3, SHA256: "00"}}}}
}

func TestRoundTrip(t *testing.T) {
	st := Store{Dir: t.TempDir()}
	if _, err := st.Load(); !errors.Is(err, ErrNoState) {
		t.Fatalf("empty dir: %v", err)
	}
	if err := st.Create(sample()); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(sample()); err == nil {
		t.Fatal("Create overwrote a state")
	}
	s, err := st.Load()
	if err != nil || s.InstalledID() != "v2-abc" {
		t.Fatalf("load: %+v %v", s, err)
	}
	next := sample()
	next.Installed.ID = "v3-def"
	if err := st.Commit(s, next); err != nil {
		t.Fatal(err)
	}
	// s is stale now: a second commit from it is refused.
	if err := st.Commit(s, sample()); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale commit: %v", err)
	}
	if s2, _ := st.Load(); s2.InstalledID() != "v3-def" {
		t.Fatalf("after commit: %q", s2.InstalledID())
	}
}

// TestCorruptStateDetected: every one-byte change and every truncation of
// the state file is reported as corrupt, and Commit does not overwrite it.
func TestCorruptStateDetected(t *testing.T) {
	b, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x20
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
	for n := 0; n < len(b); n += 7 {
		if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	st := Store{Dir: t.TempDir()}
	st.Create(sample())
	s, _ := st.Load()
	path := filepath.Join(st.Dir, FileName)
	raw, _ := os.ReadFile(path)
	raw[len(raw)-2] ^= 1
	os.WriteFile(path, raw, 0o600)
	if err := st.Commit(s, sample()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("commit over corrupt state: %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, raw) {
		t.Fatal("corrupt state overwritten")
	}
}

func TestLockExcludes(t *testing.T) {
	st := Store{Dir: t.TempDir()}
	unlock, err := st.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lock(); err == nil {
		t.Fatal("second lock taken")
	}
	unlock()
	if u, err := st.Lock(); err != nil {
		t.Fatal(err)
	} else {
		u()
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := Encode(sample())
	f.Add(b)
	f.Add([]byte(header + "sha256 00\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
	})
}
