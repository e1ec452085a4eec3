#!/usr/bin/env bash
# Kills (SIGKILL) one component that deploy/trillian/up.sh STATE_DIR started,
# by its recorded PID, to test crash recovery:
#
#   deploy/trillian/kill.sh STATE_DIR log_server|log_signer|postgres|ledger_<i>
#
# PostgreSQL's postmaster is killed with its backends (its children), as a
# machine crash would; committed transactions survive (fsync=on).
set -euo pipefail
STATE=${1:?usage: kill.sh STATE_DIR COMPONENT}
COMPONENT=${2:?usage: kill.sh STATE_DIR COMPONENT}
STATE=$(cd "$STATE" && pwd)
. "$(dirname "$0")/lib.sh"
case "$COMPONENT" in
log_server | log_signer | postgres | ledger_[0-9]*) ;;
*) log "unknown component $COMPONENT"; exit 2 ;;
esac
pid=$(pid_of "$COMPONENT")
[ -n "$pid" ] || { log "$COMPONENT is not running"; exit 0; }
children=()
if [ "$COMPONENT" = postgres ]; then
	# Stop the postmaster first so that it forks no backend between listing
	# its children and killing them: a backend that survives keeps the old
	# shared memory attached, and the next start refuses to run.
	kill -STOP "$pid" 2>/dev/null || true
	mapfile -t children < <(pgrep -P "$pid" || true)
fi
kill -9 "$pid" "${children[@]}" 2>/dev/null || true
# Wait until every killed process is gone (a zombie counts as gone: it holds
# no memory and no port).
for p in "$pid" "${children[@]}"; do
	for _ in $(seq 1 200); do alive "$p" || break; sleep 0.05; done
	if alive "$p"; then log "$COMPONENT process $p survived SIGKILL"; exit 1; fi
done
log "killed $COMPONENT ($pid)"
