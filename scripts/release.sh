#!/usr/bin/env bash
# Builds the release binaries of shiplog and shiplog-device for linux,
# darwin and windows on amd64 and arm64, reproducibly, and writes
# SHA256SUMS beside them:
#
#   scripts/release.sh v1.2.0 [OUTDIR]          # OUTDIR defaults to dist/
#
# Two runs on one tree give byte-identical files (scripts/release_test.sh
# checks it): -trimpath drops local paths, -buildvcs=false keeps the
# checkout's state out of the build info, -buildid= fixes the build ID,
# CGO_ENABLED=0 makes static binaries without a host C toolchain, and the
# version and revision are stamped with -X (internal/buildinfo) from the
# arguments, not from the clock. SHIPLOG_REVISION overrides the revision
# (default: git rev-parse HEAD, "+dirty" if the tree has changes).
#
# Release builds never set the shiplog_fault tag: the device's
# SHIPLOG_DEVICE_FAULT hook is not in them. Being CGO_ENABLED=0 they have no
# PKCS #11 support (cgo); build from source with cgo on the target for it.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:?usage: scripts/release.sh VERSION [OUTDIR]}"
out="${2:-dist}"
platforms="${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}"
if [ -z "${SHIPLOG_REVISION:-}" ]; then
	SHIPLOG_REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
	if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
		SHIPLOG_REVISION="$SHIPLOG_REVISION+dirty"
	fi
fi

export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -trimpath" # replaces the caller's GOFLAGS: no stray -tags
pkg=github.com/shiplog/shiplog/internal/buildinfo
ldflags="-buildid= -X $pkg.version=$version -X $pkg.revision=$SHIPLOG_REVISION"

mkdir -p "$out"
files=()
for p in $platforms; do
	goos="${p%/*}" goarch="${p#*/}"
	ext=""
	[ "$goos" = windows ] && ext=.exe
	for bin in shiplog shiplog-device; do
		f="$bin-$version-$goos-$goarch$ext"
		echo "== $f"
		GOOS="$goos" GOARCH="$goarch" go build -ldflags="$ldflags" -o "$out/$f" "./cmd/$bin"
		files+=("$f")
	done
done
(
	cd "$out"
	if command -v sha256sum >/dev/null; then
		sha256sum "${files[@]}"
	else
		shasum -a 256 "${files[@]}"
	fi
) >"$out/SHA256SUMS"
echo "wrote $out/SHA256SUMS"
