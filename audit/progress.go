package audit

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line catch-up bar: done/total entries, entries per
// second since the start, and the time left at that rate.
type progress struct {
	w           io.Writer
	start       time.Time
	from, total uint64
	last        time.Time
	drawn       bool
}

func newProgress(w io.Writer, from, total uint64, now time.Time) *progress {
	return &progress{w: w, start: now, from: from, total: total}
}

// update redraws the bar for done entries, at most twice a second.
func (p *progress) update(done uint64, now time.Time) {
	if p.w == nil || (now.Sub(p.last) < 500*time.Millisecond && done < p.total) {
		return
	}
	p.last, p.drawn = now, true
	fmt.Fprint(p.w, "\r"+progressLine(p.from, done, p.total, now.Sub(p.start)))
}

func (p *progress) done() {
	if p.w != nil && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// progressLine formats the bar. It is pure, for tests.
func progressLine(from, done, total uint64, elapsed time.Duration) string {
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done-from) / s
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s] %3.0f%% %d/%d entries  %.0f entries/s  ETA %s ", bar, frac*100, done, total, rate, eta)
}
