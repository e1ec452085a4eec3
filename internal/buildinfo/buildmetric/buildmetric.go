// Package buildmetric exports the running build as the Prometheus gauge
// shiplog_build_info{version, revision, goversion} = 1, registered on every
// shiplog /metrics endpoint. It is separate from buildinfo so that the device,
// which links no metrics library, can still say its version.
package buildmetric

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shiplog/shiplog/internal/buildinfo"
)

// Name is the metric's name.
const Name = "shiplog_build_info"

// Collector returns a collector of the gauge for this binary.
func Collector() prometheus.Collector {
	i := buildinfo.Read()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        Name,
		Help:        "Always 1; the labels say which build of shiplog is running.",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}
