#!/usr/bin/env bash
# Installs the third-party SMPP peers the tests talk to, into target/peers/ (idempotent).
# Used by .ci/run and, when missing, by the tests themselves (tests/common/peers.rs).
#   Python: smpplib (client; its GSM splitting is our cross-check).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peers="$root/target/peers"
mkdir -p "$peers"
venv="$peers/venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import smpplib' 2>/dev/null; then
  tmp="$(mktemp -d "$peers/venv.XXXXXX")"
  python3 -m venv "$tmp"
  "$tmp/bin/pip" install --quiet --disable-pip-version-check smpplib==2.2.4 six==1.16.0
  rm -rf "$venv"
  mv "$tmp" "$venv" 2>/dev/null || rm -rf "$tmp"
fi
"$venv/bin/python" -c 'import smpplib; print("smpplib ready")'
