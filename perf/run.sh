#!/usr/bin/env bash
# Every benchmark scenario in one go: builds in release mode (and the peers), runs each
# script, keeps each one's output and JSON under perf/results/DATE/, and prints where.
#
# usage: perf/run.sh [--quick]
#   --quick: small counts and one run each (a few minutes): every scenario produces numbers,
#            none is held to a speed.
#
# Scenarios (peers measured in the same run):
#   compare.py   terminating server, 1 and 4 binds, window 64, batched / one write per PDU /
#                the smpp34 crate's perf_esme, with and without receipts (peer: the smpp34
#                crate's server), and the client case through to `smppgw sim`
#   e2e.py       store and forward end to end, receipts on, sync=batch and sync=none
#   httpbench.py HTTP submits (wrk) against Kannel, and an HTTP target (nginx); skipped
#                with a note when wrk is not installed
#   idle-memory  10,000 idle binds (RSS)
#   scenarios.py terminating over TLS (against plain, same run), 1,000 active binds at a fixed
#                rate (latency), a slow receiver's held messages (memory per message), and
#                the load generator's own cost beside the server's
# Each runs within its own time bound, on 127.0.0.1 only, and stops by itself. At the end
# perf/summary.py prints one table of the headline figures and perf/charts draws them as SVG
# (plotters) beside the JSON.
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

cargo build --release --bin smppgw --bin smpp-load || exit 1
(cd perf/charts && cargo build --release -q) || exit 1
(cd perf/smpp34-server && cargo build --release) || exit 1
if [ ! -x target/smpp34-src/target/release/examples/perf_esme ]; then
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/smpp34-1.5.1 | head -1)
  rm -rf target/smpp34-src && cp -r "$src" target/smpp34-src
  (cd target/smpp34-src && cargo build --release --example perf_esme) || exit 1
fi

out="perf/results/$(date -u +%Y-%m-%dT%H%M%SZ)"
mkdir -p "$out"
if [ "$quick" = 1 ]; then
  count=100000; runs=1; seconds=3; sessions=1000; held=20000; rate=5000
else
  count=500000; runs=3; seconds=10; sessions=10000; held=100000; rate=20000
fi

status=0
run() {
  local name=$1 bound=$2; shift 2
  echo "== $name"
  if timeout "$bound" "$@" >"$out/$name.txt" 2>&1; then
    tail -n 40 "$out/$name.txt"
  else
    echo "$name: failed or over its ${bound}s bound (see $out/$name.txt)"
    status=1
  fi
}

run compare 1500 python3 perf/compare.py --runs "$runs" --count "$count" --cases 1,4 \
  --shapes batched,each,perf_esme --json "$out/compare.json"
run e2e 1500 python3 perf/e2e.py --runs "$runs" --count "$count" --json "$out/e2e.json"
if command -v wrk >/dev/null; then
  run httpbench 900 python3 perf/httpbench.py --seconds "$seconds" --count "$count" \
    --json "$out/httpbench.json"
else
  echo "== httpbench: skipped (wrk is not installed: apt-get install wrk nginx-light kannel)"
fi
run idle-memory 600 python3 perf/idle-memory.py --sessions "$sessions"
run scenarios 900 python3 perf/scenarios.py --count "$count" --held "$held" --rate "$rate" \
  --seconds "$seconds" --json "$out/scenarios.json"

echo
echo "== summary"
python3 perf/summary.py "$out" | tee "$out/summary.txt"
perf/charts/target/release/perf-charts "$out"

echo
echo "results in $out/ (one .txt per scenario, .json where the script writes one, .svg charts)"
exit $status
