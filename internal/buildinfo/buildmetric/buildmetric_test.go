package buildmetric

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector())
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != Name || len(mfs[0].Metric) != 1 {
		t.Fatalf("gathered %v, %v", mfs, err)
	}
	var labels []string
	for _, l := range mfs[0].Metric[0].Label {
		labels = append(labels, l.GetName())
	}
	if got := strings.Join(labels, ","); got != "goversion,revision,version" || mfs[0].Metric[0].Gauge.GetValue() != 1 {
		t.Fatalf("labels %s value %v", got, mfs[0].Metric[0].Gauge.GetValue())
	}
}
