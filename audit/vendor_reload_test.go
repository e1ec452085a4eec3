package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/replay"
)

// TestVendorModeSeesReleasesMadeAfterStart: a long-running auditor started
// before the vendor's next release must not report that release: the set of
// expected releases is re-read when an entry is not in it, and the vendor
// writes its metadata file a moment after the entry is logged.
func TestVendorModeSeesReleasesMadeAfterStart(t *testing.T) {
	honest, stolen := sha256.Sum256([]byte("release 2")), sha256.Sum256([]byte("stolen"))
	loads := 0
	load := func() (*Expected, error) {
		loads++
		hs := []byte{}
		if loads >= 3 { // the vendor's file appears on the third read
			hs = []byte(hex.EncodeToString(honest[:]) + "\n")
		}
		return ParseExpectedHashes(hs, "r")
	}
	e, _ := load()
	e.WithReload(load, 2*time.Second)
	rel := func(sum [32]byte) *replay.Release {
		return &replay.Release{Repo: "r", Role: "targets", Version: 2, SHA256: hex.EncodeToString(sum[:])}
	}
	if f, bad := e.check(rel(honest)); bad {
		t.Errorf("honest release made after start reported: %+v", f)
	}
	start := time.Now()
	if _, bad := e.check(rel(stolen)); !bad {
		t.Error("release the vendor never made not reported")
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("reported after %v, before the grace period", d)
	}
}
