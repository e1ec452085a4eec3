#!/usr/bin/env bash
# Installs what the hardware-key tests need: SoftHSM2 (a PKCS #11 token in
# software: /usr/lib/softhsm/libsofthsm2.so and softhsm2-util; 2.6 has the
# PKCS #11 3.0 Ed25519 mechanisms) and a C compiler (shiplog loads PKCS #11
# libraries through cgo). The tests make their own tokens in temporary
# directories (SOFTHSM2_CONF); nothing is configured system-wide.
# Idempotent; fast when done.
set -euo pipefail

missing=()
command -v softhsm2-util >/dev/null && [ -e /usr/lib/softhsm/libsofthsm2.so ] || missing+=(softhsm2)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
