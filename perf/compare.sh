#!/usr/bin/env bash
# Builds smppgw, smpp-load and the smpp34 comparison server (perf/smpp34-server), then runs
# perf/compare.py with the given arguments (--runs 3 --count 1000000 --cases 1,4 --json FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin smppgw --bin smpp-load
(cd perf/smpp34-server && cargo build --release)
exec python3 perf/compare.py "$@"
