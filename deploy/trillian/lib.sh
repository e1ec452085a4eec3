# Shared by up.sh, restart.sh, kill.sh and down.sh: how each component of the
# local Trillian deployment starts, on ports fixed in STATE/ports the first time.
# Source it after setting STATE. Every process started is recorded in
# STATE/pids as "<component> <pid>" (postgres: STATE/pgdata/postmaster.pid).

TRILLIAN_VERSION=v1.8.0
BIN=${TRILLIAN_BIN:-$(go env GOPATH)/bin}
PGDATA=$STATE/pgdata
RUNAS=()
if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); fi

log() { echo "trillian: $*" >&2; }

# free_port prints a free port in 20000-26999, below the kernel's ephemeral
# range: a port from that range could be taken, while its component is down
# for a restart, by any outgoing connection (or a client's TCP self-connect
# as it retries). The range also avoids the documentation's example ports.
free_port() {
	python3 - <<'PY'
import random, socket
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception:
    low = 32768
if low <= 21000:
    low = 32768
for _ in range(1000):
    port = random.randrange(20000, min(27000, low))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port below the ephemeral range")
PY
}

pg_bin() {
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
}

# load_ports reads STATE/ports, choosing free ports the first time.
load_ports() {
	if [ ! -s "$STATE/ports" ]; then
		cat > "$STATE/ports.new" <<PORTS
PGPORT=$(free_port)
RPC=$(free_port)
HTTP=$(free_port)
SRPC=$(free_port)
SHTTP=$(free_port)
PORTS
		mv "$STATE/ports.new" "$STATE/ports"
	fi
	. "$STATE/ports"
	PGURI="postgresql:///trillian?host=127.0.0.1&port=$PGPORT&user=postgres"
}

# alive PID: the process runs (a zombie, killed but not yet reaped, does not).
alive() {
	if [ -d /proc/self ]; then
		local stat
		stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
		stat=${stat##*) } # the state follows the command name in parentheses
		[ -n "$stat" ] && [ "${stat%% *}" != Z ]
	else
		kill -0 "$1" 2>/dev/null
	fi
}

# pid_of COMPONENT prints the recorded pid if that process is alive.
pid_of() {
	local pid
	if [ "$1" = postgres ]; then
		pid=$(head -1 "$PGDATA/postmaster.pid" 2>/dev/null || true)
	else
		pid=$(awk -v c="$1" '$1 == c { p = $2 } END { print p }' "$STATE/pids" 2>/dev/null || true)
	fi
	if [ -n "$pid" ] && alive "$pid"; then echo "$pid"; fi
}

record_pid() {
	touch "$STATE/pids"
	grep -v "^$1 " "$STATE/pids" > "$STATE/pids.new" || true
	echo "$1 $2" >> "$STATE/pids.new"
	mv "$STATE/pids.new" "$STATE/pids"
}

# wait_port PORT PID LOGFILE waits until something listens on 127.0.0.1:PORT,
# for up to a minute (a loaded machine can take more than ten seconds to
# start a server that connects to PostgreSQL first); it fails at once, with
# the end of LOGFILE, if process PID exits first.
wait_port() {
	for _ in $(seq 1 1200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		if ! alive "$2"; then
			log "process $2 exited before listening on 127.0.0.1:$1; $3 ends with:"
			tail -n 5 "$3" >&2 || true
			return 1
		fi
		sleep 0.05
	done
	log "nothing listens on 127.0.0.1:$1 after a minute; $3 ends with:"
	tail -n 5 "$3" >&2 || true
	return 1
}

start_postgres() {
	[ -n "$(pid_of postgres)" ] && return 0
	# A SIGKILLed postmaster leaves its pid file and, for a moment, its shared
	# memory; pg_ctl handles a stale pid file, and the start is retried while
	# the old server's memory is still being released.
	local try
	for try in 1 2 3 4 5; do
		if "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$STATE/postgres.log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$PGDATA -c fsync=on -c max_connections=600" \
			start >/dev/null; then
			return 0
		fi
		log "postgres did not start (attempt $try); its log ends with:"
		tail -n 5 "$STATE/postgres.log" >&2 || true
		sleep "$try"
	done
	return 1
}

start_log_server() {
	[ -n "$(pid_of log_server)" ] && return 0
	"$BIN/trillian_log_server" --storage_system=postgresql --quota_system=postgresql \
		--postgresql_uri="$PGURI" --rpc_endpoint="127.0.0.1:$RPC" --http_endpoint="127.0.0.1:$HTTP" \
		>>"$STATE/log_server.log" 2>&1 &
	record_pid log_server $!
	wait_port "$RPC" $! "$STATE/log_server.log"
}

start_log_signer() {
	[ -n "$(pid_of log_signer)" ] && return 0
	"$BIN/trillian_log_signer" --storage_system=postgresql --quota_system=postgresql \
		--postgresql_uri="$PGURI" --rpc_endpoint="127.0.0.1:$SRPC" --http_endpoint="127.0.0.1:$SHTTP" \
		--force_master --batch_size=1000 --sequencer_interval=20ms \
		>>"$STATE/log_signer.log" 2>&1 &
	record_pid log_signer $!
}

# Ledger replicas: `shiplog ledger serve -d STATE/ledger` processes named
# ledger_<i>, each on ports kept in STATE/ports.
SHIPLOG=${SHIPLOG:-$STATE/bin/shiplog}

ledger_ports() {
	if ! grep -q "^LEDGER_HTTP_$1=" "$STATE/ports"; then
		{ echo "LEDGER_HTTP_$1=$(free_port)"; echo "LEDGER_GRPC_$1=$(free_port)"; } >> "$STATE/ports"
	fi
	. "$STATE/ports"
	eval "LHTTP=\$LEDGER_HTTP_$1 LGRPC=\$LEDGER_GRPC_$1"
}

start_ledger() {
	ledger_ports "$1"
	[ -n "$(pid_of "ledger_$1")" ] && return 0
	"$SHIPLOG" ledger serve -d "$STATE/ledger" --http-listen "127.0.0.1:$LHTTP" --grpc-listen "127.0.0.1:$LGRPC" \
		>>"$STATE/ledger_$1.log" 2>&1 &
	record_pid "ledger_$1" $!
	wait_port "$LHTTP" $! "$STATE/ledger_$1.log"
}
