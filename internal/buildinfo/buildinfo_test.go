package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/shiplog/shiplog", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "3b5da9c0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}}
	i := fromBuildInfo(bi, Info{Version: "(devel)", Revision: "unknown", Platform: "linux/amd64"})
	if i.Version != "v1.2.0" || i.Revision != "3b5da9c0123456789abcdef+dirty" || i.GoVersion != "go1.26.8" {
		t.Fatalf("got %+v", i)
	}
	if s := i.String(); s != "v1.2.0 (revision 3b5da9c01234+dirty, go1.26.8, linux/amd64)" {
		t.Fatalf("String() = %q", s)
	}
}

func TestReadStampOverrides(t *testing.T) {
	defer func(v, r string) { version, revision = v, r }(version, revision)
	version, revision = "v9.9.9", "release"
	i := Read()
	if i.Version != "v9.9.9" || i.Revision != "release" || !strings.HasPrefix(i.GoVersion, "go") {
		t.Fatalf("got %+v", i)
	}
}
