package repo

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressThreshold is the file size from which Add shows a progress bar.
const progressThreshold = 32 << 20

// progress draws a one-line progress bar ("\r"-updated) on a terminal. It
// is an io.Writer counting the bytes that pass through it; it redraws at
// most ten times a second.
type progress struct {
	w     io.Writer
	label string
	total int64
	n     int64
	last  time.Time
}

func newProgress(w io.Writer, label string, total int64) *progress {
	return &progress{w: w, label: label, total: total}
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || p.n == p.total {
		p.last = now
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.n) / float64(p.total)
	}
	fill := int(frac * width)
	fill = min(max(fill, 0), width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %s/%s", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		frac*100, mib(p.n), mib(p.total))
}

func (p *progress) done() {
	p.draw()
	fmt.Fprintln(p.w)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
