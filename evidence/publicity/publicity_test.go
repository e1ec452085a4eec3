package publicity_test

import (
	"errors"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/publicity"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// setup returns a log of 3 witnesses holding 2 entries and its policy with
// a quorum of k.
func setup(t testing.TB, k int) (*evidencetest.Log, *policy.Policy) {
	t.Helper()
	l := evidencetest.NewLog("example.com/log", 3)
	l.Append([]byte("a"))
	l.Append([]byte("b"))
	p, err := policy.Parse(l.Policy(k))
	if err != nil {
		t.Fatal(err)
	}
	return l, p
}

func verified(t testing.TB, l *evidencetest.Log, p *policy.Policy, times map[int]time.Time) *evidence.Checkpoint {
	t.Helper()
	c, err := evidence.VerifyCheckpoint(l.CheckpointAtTimes(l.Size(), times), p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSinceIsWhenTheQuorumIsMet(t *testing.T) {
	l, p := setup(t, 2)
	c := verified(t, l, p, map[int]time.Time{0: t0, 1: t0.Add(time.Hour), 2: t0.Add(2 * time.Hour)})
	got, err := publicity.Since(c, p, 1, t0.Add(72*time.Hour), publicity.DefaultSkew)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Public || !got.Since.Equal(t0.Add(time.Hour)) {
		t.Errorf("Since = %+v, want public since t0+1h (the second of a 2-of-3 quorum)", got)
	}
	if got.Eligible(72*time.Hour, t0.Add(72*time.Hour)) {
		t.Error("eligible 71h after publication with a 72h window")
	}
	if !got.Eligible(72*time.Hour, t0.Add(73*time.Hour)) {
		t.Error("not eligible 72h after publication with a 72h window")
	}
}

// TestYoungCosignaturesHoldTheRelease: a checkpoint whose cosignatures are
// too young proves the entry public, but not for long enough.
func TestYoungCosignaturesHoldTheRelease(t *testing.T) {
	l, p := setup(t, 2)
	now := t0.Add(10 * time.Minute)
	c := verified(t, l, p, map[int]time.Time{0: t0, 1: t0, 2: t0})
	got, err := publicity.Since(c, p, 0, now, publicity.DefaultSkew)
	if err != nil {
		t.Fatal(err)
	}
	if got.Eligible(24*time.Hour, now) {
		t.Errorf("a release cosigned 10 minutes ago is eligible under a 24h window: %+v", got)
	}
	if want := t0.Add(24 * time.Hour); !got.EligibleAt(24 * time.Hour).Equal(want) {
		t.Errorf("EligibleAt = %v, want %v", got.EligibleAt(24*time.Hour), want)
	}
}

// TestQuorumMetOnlyByYoungCosignatures: one old cosignature (a witness that
// saw the entry long ago, or lies) does not make a 2-of-3 quorum old; the
// quorum is met only when the second, young, cosignature counts.
func TestQuorumMetOnlyByYoungCosignatures(t *testing.T) {
	l, p := setup(t, 2)
	now := t0.Add(30 * 24 * time.Hour)
	young := now.Add(-time.Hour)
	c := verified(t, l, p, map[int]time.Time{0: t0, 1: young, 2: young.Add(time.Minute)})
	got, err := publicity.Since(c, p, 0, now, publicity.DefaultSkew)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Since.Equal(young) {
		t.Errorf("Since = %v, want %v (the quorum's second cosignature)", got.Since, young)
	}
	if got.Eligible(72*time.Hour, now) {
		t.Error("a quorum met only by hour-old cosignatures is eligible under a 72h window")
	}
}

// TestFutureDatedCosignatureDoesNotCount: a witness whose clock runs ahead
// (or who dates a cosignature in the future) cannot help meet the quorum
// before the device's clock reaches its timestamp, minus the skew.
func TestFutureDatedCosignatureDoesNotCount(t *testing.T) {
	l, p := setup(t, 2)
	now := t0
	c := verified(t, l, p, map[int]time.Time{0: now.Add(-time.Hour), 1: now.Add(24 * time.Hour)})
	got, err := publicity.Since(c, p, 0, now, publicity.DefaultSkew)
	if err != nil {
		t.Fatal(err)
	}
	if got.Public {
		t.Fatalf("a quorum completed by a future-dated cosignature counts: %+v", got)
	}
	// Within the skew allowance it counts.
	c = verified(t, l, p, map[int]time.Time{0: now.Add(-time.Hour), 1: now.Add(time.Minute)})
	got, err = publicity.Since(c, p, 0, now, publicity.DefaultSkew)
	if err != nil || !got.Public || !got.Since.Equal(now.Add(time.Minute)) {
		t.Errorf("a cosignature one minute ahead (within the skew) = %+v, %v", got, err)
	}
}

// TestDeviceClockBehind: a device whose clock is wrong (reset to the past)
// sees every cosignature in its future: the release is not public for it,
// so it holds rather than installs.
func TestDeviceClockBehind(t *testing.T) {
	l, p := setup(t, 2)
	c := verified(t, l, p, map[int]time.Time{0: t0, 1: t0, 2: t0})
	got, err := publicity.Since(c, p, 0, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), publicity.DefaultSkew)
	if err != nil {
		t.Fatal(err)
	}
	if got.Public {
		t.Errorf("a device whose clock says 2000 counts cosignatures of 2026: %+v", got)
	}
}

// TestWrappedTimestampDoesNotCount: a timestamp of 2^63 or more wraps to
// before the epoch when read as a time; it must not make an entry look old.
func TestWrappedTimestampDoesNotCount(t *testing.T) {
	l, p := setup(t, 1)
	msg := l.CheckpointAt(l.Size())
	sig, err := checkpoint.Cosign(l.Body(l.Size()).Format(), l.TimedSigner(0, 1<<63+5))
	if err != nil {
		t.Fatal(err)
	}
	c, err := evidence.VerifyCheckpoint(append(msg, sig...), p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := publicity.Since(c, p, 0, t0, publicity.DefaultSkew)
	if err != nil || got.Public {
		t.Errorf("wrapped timestamp: %+v, %v; want not public", got, err)
	}
}

func TestUncoveredEntryAndNoQuorum(t *testing.T) {
	l, p := setup(t, 1)
	c := verified(t, l, p, map[int]time.Time{0: t0})
	if _, err := publicity.Since(c, p, 2, t0, 0); !errors.Is(err, publicity.ErrNotCovered) {
		t.Errorf("entry beyond the checkpoint: err = %v, want ErrNotCovered", err)
	}
	none, err := policy.Parse([]byte("log " + l.VKey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := evidence.VerifyCheckpoint(l.CheckpointAtTimes(l.Size(), nil), none)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publicity.Since(c2, none, 0, t0, 0); !errors.Is(err, publicity.ErrNoQuorum) {
		t.Errorf("quorum none: err = %v, want ErrNoQuorum", err)
	}
	if _, err := publicity.Since(c, p, 0, t0, -time.Second); err == nil {
		t.Error("negative skew accepted")
	}
}

func TestLatest(t *testing.T) {
	a := publicity.Publicity{Public: true, Since: t0}
	b := publicity.Publicity{Public: true, Since: t0.Add(time.Hour)}
	if got := publicity.Latest(a, b); !got.Public || !got.Since.Equal(b.Since) {
		t.Errorf("Latest = %+v, want since %v", got, b.Since)
	}
	if got := publicity.Latest(a, publicity.Publicity{}); got.Public {
		t.Error("a release with one unproven entry counts as public")
	}
	if got := publicity.Latest(); got.Public {
		t.Error("a release with no evidence counts as public")
	}
}

// FuzzSince checks the definition against any set of cosignature times:
// the result is one of the counted times, no counted time at or before it
// is in the future beyond the skew, and the quorum is not met just before.
func FuzzSince(f *testing.F) {
	f.Add(int64(0), int64(3600), int64(7200), uint8(7), int64(100000), uint8(2))
	f.Add(int64(-5), int64(99999999), int64(1), uint8(3), int64(10), uint8(1))
	l := evidencetest.NewLog("example.com/log", 3)
	l.Append([]byte("a"))
	pols := map[uint8]*policy.Policy{}
	for k := uint8(1); k <= 3; k++ {
		p, err := policy.Parse(l.Policy(int(k)))
		if err != nil {
			f.Fatal(err)
		}
		pols[k] = p
	}
	f.Fuzz(func(t *testing.T, a, b, c int64, mask uint8, nowOff int64, k uint8) {
		p := pols[k%3+1]
		times := map[int]time.Time{}
		for i, off := range []int64{a, b, c} {
			if mask&(1<<i) != 0 {
				times[i] = t0.Add(time.Duration(off%(1<<40)) * time.Second)
			}
		}
		now := t0.Add(time.Duration(nowOff%(1<<40)) * time.Second)
		cp, err := evidence.VerifyCheckpoint(l.CheckpointAtTimes(1, times), p)
		if err != nil {
			return // quorum not met at all
		}
		got, err := publicity.Since(cp, p, 0, now, publicity.DefaultSkew)
		if err != nil {
			t.Fatal(err)
		}
		limit := now.Add(publicity.DefaultSkew)
		counted := func(at time.Time) int {
			n := 0
			for _, tm := range times {
				tm = time.Unix(tm.Unix(), 0)
				if tm.Unix() > 0 && !tm.After(at) && !tm.After(limit) {
					n++
				}
			}
			return n
		}
		need := int(k%3 + 1)
		if !got.Public {
			if counted(limit) >= need {
				t.Fatalf("not public although %d cosignatures count (need %d)", counted(limit), need)
			}
			return
		}
		if got.Since.After(limit) {
			t.Fatalf("public since %v, beyond now+skew %v", got.Since, limit)
		}
		if counted(got.Since) < need || counted(got.Since.Add(-time.Second)) >= need {
			t.Fatalf("since %v is not the earliest time the quorum of %d is met: %v", got.Since, need, times)
		}
	})
}
