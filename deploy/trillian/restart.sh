#!/usr/bin/env bash
# Starts one component of deploy/trillian/up.sh STATE_DIR again, with the same
# flags and ports, if it is not running:
#
#   deploy/trillian/restart.sh STATE_DIR log_server|log_signer|postgres|ledger_<i>
set -euo pipefail
STATE=${1:?usage: restart.sh STATE_DIR COMPONENT}
COMPONENT=${2:?usage: restart.sh STATE_DIR COMPONENT}
STATE=$(cd "$STATE" && pwd)
. "$(dirname "$0")/lib.sh"
pg_bin
load_ports
case "$COMPONENT" in
postgres) start_postgres ;;
log_server) start_log_server ;;
log_signer) start_log_signer ;;
ledger_[0-9]*) start_ledger "${COMPONENT#ledger_}" ;;
*) log "unknown component $COMPONENT"; exit 2 ;;
esac
log "started $COMPONENT"
