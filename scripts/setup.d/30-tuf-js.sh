#!/usr/bin/env bash
# Installs tuf-js 5.0.1 (the npm TUF client; 5.x is the last line that runs
# on node 20) into /opt/shiplog-npm for the repository compatibility test
# (repo/compat_tufjs_test.go). Idempotent: does nothing when it is there.
set -euo pipefail
dir=/opt/shiplog-npm
want=5.0.1
if [ -f "$dir/node_modules/tuf-js/package.json" ] &&
	grep -q "\"version\": \"$want\"" "$dir/node_modules/tuf-js/package.json"; then
	exit 0
fi
if ! command -v npm >/dev/null; then
	echo "30-tuf-js: npm not found; install node 20 (apt-get install nodejs npm)" >&2
	exit 1
fi
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"name":"shiplog-npm","private":true}' > package.json
npm install --no-audit --no-fund --save-exact "tuf-js@$want"
