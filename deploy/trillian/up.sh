#!/usr/bin/env bash
# Starts Google Trillian v1.8.0 (log server + signer) on a private PostgreSQL
# cluster, all on 127.0.0.1 free ports, for the ledger's Trillian backend.
#
#   deploy/trillian/up.sh STATE_DIR
#
# Installs PostgreSQL (Debian) and builds the Trillian binaries through the Go
# module proxy if they are missing; creates the cluster, the database, the
# schema (once) and a LOG tree (once). Writes STATE_DIR/env (shell-sourceable:
# TRILLIAN_ADDR, TRILLIAN_TREE_ID, SHIPLOG_PG_URI, ...) and STATE_DIR/pids.
# Stop everything with deploy/trillian/down.sh STATE_DIR. Re-running on the
# same STATE_DIR restarts the same database and tree.
set -euo pipefail

STATE=${1:?usage: up.sh STATE_DIR}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
TRILLIAN_VERSION=v1.8.0
BIN=${TRILLIAN_BIN:-$(go env GOPATH)/bin}
export GOFLAGS=-buildvcs=false

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

log() { echo "trillian-up: $*" >&2; }

# 1. PostgreSQL binaries.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
	log "installing PostgreSQL"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
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
PGDATA=$STATE/pgdata
RUNAS=()
if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); chown postgres "$STATE"; fi
if [ ! -f "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	[ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
	chmod 700 "$PGDATA"
	"${RUNAS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust >/dev/null
fi
: > "$STATE/pids.new"
PGPORT=$(free_port)
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$STATE/postgres.log" -w \
	-o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$PGDATA -c fsync=on" start >/dev/null
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
PGURI="postgresql:///trillian?host=127.0.0.1&port=$PGPORT&user=postgres"

# 4. Log server and signer on their own ports (both default to 8090).
RPC=$(free_port); HTTP=$(free_port); SRPC=$(free_port); SHTTP=$(free_port)
"$BIN/trillian_log_server" --storage_system=postgresql --quota_system=postgresql \
	--postgresql_uri="$PGURI" --rpc_endpoint="127.0.0.1:$RPC" --http_endpoint="127.0.0.1:$HTTP" \
	>"$STATE/log_server.log" 2>&1 &
echo "log_server $!" >> "$STATE/pids.new"
"$BIN/trillian_log_signer" --storage_system=postgresql --quota_system=postgresql \
	--postgresql_uri="$PGURI" --rpc_endpoint="127.0.0.1:$SRPC" --http_endpoint="127.0.0.1:$SHTTP" \
	--force_master --batch_size=1000 --sequencer_interval=20ms \
	>"$STATE/log_signer.log" 2>&1 &
echo "log_signer $!" >> "$STATE/pids.new"
mv "$STATE/pids.new" "$STATE/pids"

# Wait for the log server's gRPC port.
for i in $(seq 1 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$RPC") 2>/dev/null; then break; fi
	sleep 0.1
done

# 5. One LOG tree, created once.
if [ ! -s "$STATE/tree_id" ]; then
	"$BIN/createtree" --admin_server="127.0.0.1:$RPC" --tree_type=LOG --max_root_duration=0s > "$STATE/tree_id.new"
	mv "$STATE/tree_id.new" "$STATE/tree_id"
fi

cat > "$STATE/env" <<ENV
TRILLIAN_ADDR=127.0.0.1:$RPC
TRILLIAN_TREE_ID=$(cat "$STATE/tree_id")
TRILLIAN_SIGNER_ADDR=127.0.0.1:$SRPC
SHIPLOG_PG_URI='postgresql:///shiplog?host=127.0.0.1&port=$PGPORT&user=postgres'
PGPORT=$PGPORT
PGBIN=$PGBIN
ENV
log "up: $(tr '\n' ' ' < "$STATE/env")"
