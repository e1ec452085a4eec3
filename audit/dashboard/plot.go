package dashboard

import (
	"fmt"
	"strings"
	"time"

	"github.com/shiplog/shiplog/audit/store"
)

// plot is a server-rendered SVG line plot of log size over time, in a
// 600×200 view box.
type plot struct {
	Points       string // SVG polyline points
	N            int
	MinSize      uint64
	MaxSize      uint64
	First, Last  string
	LastX, LastY float64 // the latest point, drawn as a dot
}

const plotW, plotH, plotPad = 600.0, 200.0, 30.0

// newPlot plots at most maxPlotPoints checkpoints (evenly sampled, the
// last one always kept).
func newPlot(cs []store.CheckpointRecord) plot {
	if len(cs) == 0 {
		return plot{}
	}
	if len(cs) > maxPlotPoints {
		step := float64(len(cs)-1) / float64(maxPlotPoints-1)
		var s []store.CheckpointRecord
		for i := 0; i < maxPlotPoints; i++ {
			s = append(s, cs[int(float64(i)*step)])
		}
		s[len(s)-1] = cs[len(cs)-1]
		cs = s
	}
	p := plot{N: len(cs), MinSize: cs[0].Size, MaxSize: cs[0].Size,
		First: cs[0].Seen.UTC().Format(time.DateTime), Last: cs[len(cs)-1].Seen.UTC().Format(time.DateTime)}
	for _, c := range cs {
		p.MinSize, p.MaxSize = min(p.MinSize, c.Size), max(p.MaxSize, c.Size)
	}
	t0, t1 := cs[0].Seen, cs[len(cs)-1].Seen
	var b strings.Builder
	for _, c := range cs {
		x := plotPad
		if t1.After(t0) {
			x += (plotW - 2*plotPad) * float64(c.Seen.Sub(t0)) / float64(t1.Sub(t0))
		}
		y := plotH - plotPad
		if p.MaxSize > p.MinSize {
			y -= (plotH - 2*plotPad) * float64(c.Size-p.MinSize) / float64(p.MaxSize-p.MinSize)
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		p.LastX, p.LastY = x, y
	}
	p.Points = strings.TrimSpace(b.String())
	return p
}
