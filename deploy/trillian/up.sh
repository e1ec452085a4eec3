#!/usr/bin/env bash
# Starts Google Trillian v1.8.0 (log server + signer) on a private PostgreSQL
# cluster, all on 127.0.0.1 free ports, for the ledger's Trillian backend.
#
#   deploy/trillian/up.sh STATE_DIR [LEDGER_REPLICAS]
#
# Installs PostgreSQL (Debian) and builds the Trillian binaries through the Go
# module proxy if they are missing; creates the cluster, the databases
# (trillian, shiplog), the schema (once) and a LOG tree (once). Writes
# STATE_DIR/env (shell-sourceable: TRILLIAN_ADDR, TRILLIAN_TREE_ID,
# SHIPLOG_PG_URI, ...) and STATE_DIR/pids. Ports are chosen once and kept in
# STATE_DIR/ports, so re-running up.sh on the same STATE_DIR starts whatever
# is not running with the same flags and ports, and leaves the rest alone.
# With LEDGER_REPLICAS > 0 it also builds shiplog from this repository into
# STATE_DIR/bin, creates a ledger on the tree in STATE_DIR/ledger once
# (shiplog ledger init --storage trillian; witness policy "quorum none": add
# witnesses before real use) and starts that many `shiplog ledger serve`
# replicas (ledger_0, ledger_1, ...), listed in the env file as LEDGER_URLS.
# deploy/trillian/kill.sh and restart.sh act on one component; down.sh stops
# everything.
set -euo pipefail

STATE=${1:?usage: up.sh STATE_DIR [LEDGER_REPLICAS]}
REPLICAS=${2:-0}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
export GOFLAGS=-buildvcs=false
. "$(dirname "$0")/lib.sh"

# 1. PostgreSQL binaries.
pg_bin
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
	log "installing PostgreSQL"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	pg_bin
fi

# 2. Trillian binaries (postgresql build tag keeps them small).
for b in trillian_log_server trillian_log_signer createtree; do
	if [ ! -x "$BIN/$b" ]; then
		log "building $b@$TRILLIAN_VERSION"
		GOBIN=$BIN go install -tags postgresql "github.com/google/trillian/cmd/$b@$TRILLIAN_VERSION"
	fi
done
SCHEMA=$(go env GOMODCACHE)/github.com/google/trillian@$TRILLIAN_VERSION/storage/postgresql/schema/storage.sql
if [ ! -f "$SCHEMA" ]; then
	(cd "$STATE" && go mod download -x "github.com/google/trillian@$TRILLIAN_VERSION" >/dev/null 2>&1 || true)
fi
[ -f "$SCHEMA" ] || { log "schema not found at $SCHEMA"; exit 1; }

# 3. A private cluster owned by postgres (initdb and postgres refuse root).
[ "$(id -u)" = 0 ] && chown postgres "$STATE"
if [ ! -f "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	[ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
	chmod 700 "$PGDATA"
	"${RUNAS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust >/dev/null
fi
load_ports
start_postgres
PSQL=("$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
"${PSQL[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname='trillian'" | grep -q 1 ||
	"${PSQL[@]}" -d postgres -c "CREATE DATABASE trillian"
"${PSQL[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname='shiplog'" | grep -q 1 ||
	"${PSQL[@]}" -d postgres -c "CREATE DATABASE shiplog"
# The schema is not re-runnable: apply it once, in one transaction.
if ! "${PSQL[@]}" -d trillian -c "SELECT to_regclass('public.trees')" | grep -q trees; then
	log "creating the Trillian schema"
	"${PSQL[@]}" -d trillian -1 -f "$SCHEMA" >/dev/null
fi

# 4. Log server and signer on their own ports (both default to 8090).
start_log_server
start_log_signer

# 5. One LOG tree, created once.
if [ ! -s "$STATE/tree_id" ]; then
	"$BIN/createtree" --admin_server="127.0.0.1:$RPC" --tree_type=LOG --max_root_duration=0s > "$STATE/tree_id.new" 2>>"$STATE/createtree.log"
	mv "$STATE/tree_id.new" "$STATE/tree_id"
fi

SHIPLOG_PG_URI="postgresql:///shiplog?host=127.0.0.1&port=$PGPORT&user=postgres"

# 6. Ledger replicas on the tree, if asked for.
LEDGER_URLS=""
if [ "$REPLICAS" -gt 0 ]; then
	ROOT=$(cd "$(dirname "$0")/../.." && pwd)
	mkdir -p "$STATE/bin"
	(cd "$ROOT" && go build -o "$STATE/bin/shiplog" ./cmd/shiplog)
	if [ ! -f "$STATE/ledger/config.json" ]; then
		"$SHIPLOG" ledger init -d "$STATE/ledger" --origin "${LEDGER_ORIGIN:-local.shiplog.test/log}" --storage trillian \
			--trillian-addr "127.0.0.1:$RPC" --trillian-tree-id "$(cat "$STATE/tree_id")" --postgres-uri "$SHIPLOG_PG_URI" >/dev/null
	fi
	for i in $(seq 0 $((REPLICAS - 1))); do
		start_ledger "$i"
		LEDGER_URLS="$LEDGER_URLS http://127.0.0.1:$LHTTP"
	done
fi

cat > "$STATE/env" <<ENV
TRILLIAN_ADDR=127.0.0.1:$RPC
TRILLIAN_TREE_ID=$(cat "$STATE/tree_id")
TRILLIAN_SIGNER_ADDR=127.0.0.1:$SRPC
SHIPLOG_PG_URI='$SHIPLOG_PG_URI'
PGPORT=$PGPORT
PGBIN=$PGBIN
LEDGER_DIR=$STATE/ledger
LEDGER_URLS='${LEDGER_URLS# }'
ENV
log "up: $(tr '\n' ' ' < "$STATE/env")"
