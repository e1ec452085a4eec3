#!/usr/bin/env bash
# Runs every test of shiplog on a fresh Debian machine with Go: installs what
# the tests need, starts the servers they use on 127.0.0.1, runs go vet and
# go test, and stops what it started. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
go mod download

# Each part of the system that needs outside tools (a reference witness, a
# browser, node packages, a database) installs them in its own setup script.
# They must be idempotent and quick when everything is already there.
for setup in scripts/setup.d/*.sh; do
	[ -e "$setup" ] || continue
	echo "== setup: $setup"
	bash "$setup"
done

echo "== go vet"
go vet ./...

# The other five platforms (linux/amd64 is the run below): every one builds
# both binaries and vets every package they link; the two that differ most
# from this machine (windows/amd64, darwin/arm64) also link every test
# binary. Linking all test binaries for all six doubles a cold run's time;
# `bash scripts/crossbuild.sh` does it all.
echo "== cross-platform builds (linux, darwin, windows on amd64 and arm64)"
PLATFORMS="windows/amd64 darwin/arm64" bash scripts/crossbuild.sh
PLATFORMS="linux/arm64 darwin/amd64 windows/arm64" CROSS_SKIP_TEST_BINARIES=1 bash scripts/crossbuild.sh

echo "== go test"
go test -count=1 -timeout 25m ./...
