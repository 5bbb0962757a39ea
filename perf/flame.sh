#!/usr/bin/env bash
# Records a flamegraph of smppgw under one scenario into perf/results/flame-SCENARIO.svg.
#
# usage: perf/flame.sh [terminating|each|receipts|client] [SECONDS]
#   terminating  smpp-load (4 binds, window 64, batched) -> smppgw terminating
#   each         the same with one write per PDU (smpp-load --write-each)
#   receipts     batched, every message asking for a receipt
#   client       smpp-load -> smppgw (default_route) -> smppgw sim, receipts on
#
# Builds smppgw with frame pointers into target/prof (perf walks the stack by them), installs
# the `inferno` crate's tools into target/tools on first use, runs the load for SECONDS
# (default 10) while `perf record -g` samples the gateway at 999 Hz, and folds the stacks.
# Reading it: the width of a frame is its share of the gateway's samples; kernel frames under
# `syscall`, `io_uring_enter` and `__send`/`recv` are the socket cost, `flow`/`store` frames the
# message path, `session`/`pdu` frames the protocol core.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-terminating}
seconds=${2:-10}
case "$scenario" in terminating|each|receipts|client) ;; *) sed -n '2,8p' "$0"; exit 2 ;; esac
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 2; }

RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=target/prof \
  cargo build --release --bin smppgw --bin smpp-load
if [ ! -x target/tools/bin/inferno-flamegraph ]; then
  cargo install --root target/tools inferno
fi
GW=target/prof/release/smppgw
LOAD=target/prof/release/smpp-load
work=$(mktemp -d "${TMPDIR:-/tmp}/smppgw-flame-XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gw_port=$(port)
extra=""
if [ "$scenario" = client ]; then
  sim_port=$(port)
  "$GW" sim --listen "127.0.0.1:$sim_port" --shards 1 2>"$work/sim.log" &
  pids+=($!)
  extra="default_route=up
spool_dir=$work/spool
[smpp-client]
clients=up
[up]
server=127.0.0.1
port=$sim_port
system_id=gw
system_password=pw
binds=2
window=64"
fi
cat >"$work/ysmpp.conf" <<EOF
[general]
shards=auto
admin=off
$extra
[listenerserver plain]
addr=127.0.0.1
port=$gw_port
EOF
printf '[demo]\npassword=demo\n' >"$work/regfile.conf"
"$GW" run --config "$work" 2>"$work/gw.log" &
gw=$!
pids+=("$gw")
for _ in $(seq 100); do
  grep -q 'listener "plain"' "$work/gw.log" 2>/dev/null && break
  sleep 0.1
done
if [ "$scenario" = client ]; then
  for _ in $(seq 100); do
    [ "$(grep -c '): bound' "$work/gw.log")" -ge 2 ] && break
    sleep 0.1
  done
fi

args=(--target "127.0.0.1:$gw_port" --binds 4 --window 64 --duration "$((seconds + 2))s")
case "$scenario" in
  each) args+=(--write-each) ;;
  receipts|client) args+=(--receipts) ;;
esac
"$LOAD" "${args[@]}" >"$work/load.txt" 2>&1 &
pids+=($!)
sleep 1
perf record -F 999 -g -p "$gw" -o "$work/perf.data" -- sleep "$seconds" >/dev/null 2>&1
mkdir -p perf/results
out="perf/results/flame-$scenario.svg"
perf script -i "$work/perf.data" 2>/dev/null \
  | target/tools/bin/inferno-collapse-perf \
  | target/tools/bin/inferno-flamegraph --title "smppgw: $scenario ($seconds s)" >"$out"
wait "${pids[-1]}" 2>/dev/null || true
tail -4 "$work/load.txt"
echo "flamegraph: $out"
