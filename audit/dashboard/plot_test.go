package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/store"
)

func TestPlot(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var cs []store.CheckpointRecord
	for i := 0; i < 1000; i++ {
		cs = append(cs, store.CheckpointRecord{Seen: t0.Add(time.Duration(i) * time.Minute), Size: uint64(10 + i)})
	}
	p := newPlot(cs)
	if p.N != maxPlotPoints || p.MinSize != 10 || p.MaxSize != 1009 {
		t.Errorf("plot N=%d min=%d max=%d", p.N, p.MinSize, p.MaxSize)
	}
	pts := strings.Fields(p.Points)
	if pts[0] != "30.0,170.0" || pts[len(pts)-1] != "570.0,30.0" {
		t.Errorf("first %s last %s: want the smallest size bottom left, the largest top right", pts[0], pts[len(pts)-1])
	}
	if p := newPlot(nil); p.N != 0 {
		t.Error("empty plot has points")
	}
}
