// Package buildinfo says which build of shiplog is running: the module
// version, the VCS revision and the Go version, read from the build
// information the Go linker embeds (runtime/debug.ReadBuildInfo).
//
// Release builds (scripts/release.sh) build with -buildvcs=false so that two
// builds of one tree are byte-identical; they stamp the version and revision
// with -ldflags "-X github.com/shiplog/shiplog/internal/buildinfo.version=…
// -X …revision=…", which take precedence over what the build info says.
// A `go run` or `go build` in a checkout reports "(devel)" and the checkout's
// revision, with "+dirty" when the tree had changes.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags -X by release builds; empty otherwise.
var (
	version  string
	revision string
)

// Info identifies a build.
type Info struct {
	// Version is the module version ("v1.2.3", or "(devel)" for a build from
	// a checkout).
	Version string `json:"version"`
	// Revision is the VCS revision, with "+dirty" when the checkout was
	// modified, or "unknown".
	Revision string `json:"revision"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Read returns the running binary's build information.
func Read() Info {
	i := Info{Version: "(devel)", Revision: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		i = fromBuildInfo(bi, i)
	}
	if version != "" {
		i.Version = version
	}
	if revision != "" {
		i.Revision = revision
	}
	return i
}

func fromBuildInfo(bi *debug.BuildInfo, i Info) Info {
	if v := bi.Main.Version; v != "" {
		i.Version = v
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if dirty {
			rev += "+dirty"
		}
		i.Revision = rev
	}
	return i
}

// String is the one line `shiplog version` prints, e.g.
// "shiplog v1.2.0 (revision 3b5da9c…, go1.26.8, linux/amd64)".
func (i Info) String() string {
	return i.Version + " (revision " + short(i.Revision) + ", " + i.GoVersion + ", " + i.Platform + ")"
}

func short(rev string) string {
	base, dirty := strings.CutSuffix(rev, "+dirty")
	if len(base) > 12 {
		base = base[:12]
	}
	if dirty {
		base += "+dirty"
	}
	return base
}
