#!/usr/bin/env bash
# Installs Debian's chromium for the auditor dashboard's browser test
# (audit/dashboard, driven with chromedp). Idempotent: quick when present.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium
