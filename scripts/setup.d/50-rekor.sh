#!/usr/bin/env bash
# Builds rekor-server v1.5.4 (Sigstore's Rekor v1 transparency log server)
# through the Go module proxy into $(go env GOPATH)/bin, for the Sigstore
# interop end-to-end test (repo/rekor/e2e_test.go), which runs it on the
# Trillian and PostgreSQL that deploy/trillian/up.sh starts. Also makes sure
# the Trillian binaries and PostgreSQL that up.sh uses are there. Idempotent:
# does nothing when the binaries are present at the right version.
set -euo pipefail
export GOFLAGS=-buildvcs=false
BIN=$(go env GOPATH)/bin
want=v1.5.4
stamp=$BIN/.rekor-server.version
if [ ! -x "$BIN/rekor-server" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	echo "50-rekor: building rekor-server@$want (a few minutes the first time)" >&2
	GOBIN=$BIN go install "github.com/sigstore/rekor/cmd/rekor-server@$want"
	echo "$want" > "$stamp"
fi
for b in trillian_log_server trillian_log_signer createtree; do
	if [ ! -x "$BIN/$b" ]; then
		echo "50-rekor: building $b@v1.8.0" >&2
		GOBIN=$BIN go install -tags postgresql "github.com/google/trillian/cmd/$b@v1.8.0"
	fi
done
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
	echo "50-rekor: installing PostgreSQL" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
