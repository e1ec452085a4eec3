#!/usr/bin/env bash
# Cross-checks the six platforms a vendor, auditor or device uses: for each
# of linux, darwin and windows on amd64 and arm64 it builds shiplog and
# shiplog-device (and the device with the tests' shiplog_fault tag), runs
# go vet on every package the two binaries link (vet type-checks the
# packages' tests too), and compiles and links those packages' test
# binaries (go test -exec=true, which is go test -c for many packages). Running the tests needs the platform itself; this proves
# they build there.
#
#   scripts/crossbuild.sh                      # all six
#   PLATFORMS="windows/amd64" scripts/crossbuild.sh
#   CROSS_SKIP_TEST_BINARIES=1 scripts/crossbuild.sh   # build and vet only
#
# On Windows the tests of log/pgstore and log/trillian are not compiled:
# they run a real Trillian and PostgreSQL through Trillian's testdb package,
# which uses Unix rlimits (their code is in the binary and is built).
#
# Cross builds have no C toolchain, so they are CGO_ENABLED=0: PKCS #11 keys
# (internal/keyref, cgo) are then reported as unavailable; KMS keys work.
set -euo pipefail
cd "$(dirname "$0")/.."

platforms="${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}"
export CGO_ENABLED=0
pkgs=$(go list -deps ./cmd/shiplog ./cmd/shiplog-device | grep '^github.com/shiplog/shiplog/')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for p in $platforms; do
	export GOOS="${p%/*}" GOARCH="${p#*/}"
	echo "== $GOOS/$GOARCH: build"
	go build -o "$out/$GOOS-$GOARCH/" ./cmd/shiplog ./cmd/shiplog-device
	go build -tags shiplog_fault -o "$out/$GOOS-$GOARCH/fault/" ./cmd/shiplog-device
	testpkgs="$pkgs"
	if [ "$GOOS" = windows ]; then
		testpkgs=$(echo "$pkgs" | grep -v -e '/log/pgstore$' -e '/log/trillian$')
	fi
	echo "== $GOOS/$GOARCH: vet"
	# shellcheck disable=SC2086
	go vet $testpkgs
	if [ -z "${CROSS_SKIP_TEST_BINARIES:-}" ]; then
		echo "== $GOOS/$GOARCH: test binaries"
		# shellcheck disable=SC2086
		# Links every test binary (as go test -c would) and "runs" it with
		# true: a binary of another platform cannot run here.
		go test -count=1 -exec=true $testpkgs >/dev/null
	fi
	rm -rf "${out:?}/$GOOS-$GOARCH"
done
echo "crossbuild: ok ($platforms)"
