package device_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
)

// TestAttackSlowDrip: a mirror that sends the payload one byte at a time,
// never long enough apart to trip the stall timeout, cannot hold the device:
// the download fails with ErrTooSlow under the configured minimum rate, and
// while it runs `status` still reads the state (without the lock) and a
// second writer is kept out. Small configured windows; nothing timed is
// asserted.
func TestAttackSlowDrip(t *testing.T) {
	e := newEnv(t, 2, device.Config{Download: device.DownloadConfig{StallTimeoutSeconds: 60, RateWindowSeconds: 1, MinRateBytesPerSecond: 512}})
	e.mustUpdate()
	payload := make([]byte, 4096)
	e.repo.AddTarget("targets", "fw/image.bin", payload, nil)
	e.repo.Publish()
	dripping := make(chan struct{})
	e.serve("/targets/"+harness.TargetName("fw/image.bin", payload), func(w http.ResponseWriter, r *http.Request) {
		close(dripping)
		w.Header().Set("Content-Length", "4096")
		for i := 0; i < len(payload); i++ {
			w.Write(payload[i : i+1])
			w.(http.Flusher).Flush()
			select {
			case <-time.After(50 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	done := make(chan error, 1)
	d := e.open(device.Options{})
	go func() {
		_, err := d.Update(context.Background())
		d.Close()
		done <- err
	}()
	<-dripping
	if _, err := device.Open(e.dir, device.Options{}); !errors.Is(err, device.ErrInUse) {
		t.Errorf("a second writer opening the device during an update: %v, want ErrInUse", err)
	}
	st, err := device.ReadStatus(e.dir)
	if err != nil {
		t.Fatalf("status during an update: %v", err)
	}
	if st.Repository != e.repo.ID || len(st.Roles) == 0 {
		t.Errorf("status during an update: %+v", st)
	}
	if err := <-done; !errors.Is(err, update.ErrTooSlow) {
		t.Fatalf("update from a dripping mirror: %v, want ErrTooSlow", err)
	}
}
