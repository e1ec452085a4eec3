#!/usr/bin/env bash
# Debian's Prometheus server and promtool, for deploy/'s tests: `promtool check`
# on the deployment's configuration and rules, and a live Prometheus that
# scrapes a real ledger and auditor until an alert fires. Idempotent: quick
# when present. The package would start a service; there is no init system
# here, and the test runs its own server, so policy-rc.d refuses the start.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
	exit 0
fi
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus promtool
