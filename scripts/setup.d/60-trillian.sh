#!/usr/bin/env bash
# Pre-installs what the ledger's Trillian backend tests start through
# deploy/trillian/up.sh: PostgreSQL (Debian) and trillian_log_server,
# trillian_log_signer and createtree v1.8.0 built through the Go module proxy
# into $(go env GOPATH)/bin with -tags postgresql. Idempotent: quick when
# everything is there.
set -euo pipefail
export GOFLAGS=-buildvcs=false
BIN=$(go env GOPATH)/bin
for b in trillian_log_server trillian_log_signer createtree; do
	if [ ! -x "$BIN/$b" ]; then
		echo "60-trillian: building $b@v1.8.0" >&2
		GOBIN=$BIN go install -tags postgresql "github.com/google/trillian/cmd/$b@v1.8.0"
	fi
done
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
	echo "60-trillian: installing PostgreSQL" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
command -v python3 >/dev/null || {
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null
}
