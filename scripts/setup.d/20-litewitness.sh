#!/usr/bin/env bash
# Installs what the witness interop tests and benchmark need: torchwood's
# litewitness v0.6.1 (a tlog-witness nobody here wrote, built through the Go
# module proxy into /usr/local/bin), ssh-agent/ssh-add (litewitness takes its
# key from an ssh-agent) and the sqlite3 CLI. torchwood's own witnessctl
# cannot be built here (its dependency sigsum.org/sigsum-go is not served by
# the module proxy), so the tests add logs to litewitness's SQLite database
# with sqlite3, using litewitness's own schema. Idempotent; fast when done.
set -euo pipefail

version=v0.6.1
bin=/usr/local/bin

if ! { [ -x "$bin/litewitness" ] && go version -m "$bin/litewitness" 2>/dev/null | grep -q "filippo.io/torchwood[[:space:]]*$version"; }; then
	echo "installing litewitness $version into $bin"
	(cd / && GOFLAGS= GOBIN="$bin" go install "filippo.io/torchwood/cmd/litewitness@$version")
fi

missing=()
command -v ssh-agent >/dev/null && command -v ssh-add >/dev/null || missing+=(openssh-client)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
