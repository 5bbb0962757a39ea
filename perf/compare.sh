#!/usr/bin/env bash
# Builds smppgw, smpp-load and the smpp34 comparison server (perf/smpp34-server), then runs
# perf/compare.py with the given arguments (--runs 3 --count 1000000 --cases 1,4 --json FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin smppgw --bin smpp-load
(cd perf/smpp34-server && cargo build --release)
# The smpp34 crate's own load generator (its perf_esme example), from a copy of the crate the
# build above brought into cargo's registry; under target/, never committed.
if [ ! -x target/smpp34-src/target/release/examples/perf_esme ]; then
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/smpp34-1.5.1 | head -1)
  rm -rf target/smpp34-src && cp -r "$src" target/smpp34-src
  (cd target/smpp34-src && cargo build --release --example perf_esme)
fi
exec python3 perf/compare.py "$@"
