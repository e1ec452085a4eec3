#!/usr/bin/env bash
# Stops what deploy/trillian/up.sh STATE_DIR started, by the PIDs it recorded,
# and the PostgreSQL cluster. Data stays in STATE_DIR.
set -uo pipefail
STATE=${1:?usage: down.sh STATE_DIR}
[ -d "$STATE" ] || exit 0
STATE=$(cd "$STATE" && pwd)
. "$(dirname "$0")/lib.sh"
if [ -f "$STATE/pids" ]; then
	while read -r name pid; do
		kill "$pid" 2>/dev/null && echo "trillian-down: stopped $name ($pid)" >&2
	done < "$STATE/pids"
	sleep 0.5
	while read -r name pid; do kill -9 "$pid" 2>/dev/null; done < "$STATE/pids"
	rm -f "$STATE/pids"
fi
pg_bin
if [ -n "$PGBIN" ] && [ -f "$PGDATA/PG_VERSION" ]; then
	"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
fi
