#!/usr/bin/env bash
# Runs the comparison and prints each case's mean time and the ratio smpp34 / smppgw
# (above 1.0 means smppgw is faster). Extra arguments go to criterion, e.g.
#   ./run.sh --measurement-time 5
set -euo pipefail
cd "$(dirname "$0")"
cargo bench --bench compare -- "$@" >/tmp/codec-compare.log 2>&1 || { cat /tmp/codec-compare.log; exit 1; }
python3 - <<'PY'
import json, pathlib
root = pathlib.Path("target/criterion")
def mean(group, fn):
    p = root / group / fn / "new" / "estimates.json"
    return json.loads(p.read_text())["mean"]["point_estimate"] if p.exists() else None
goals = {"decode": 1.5, "encode": 1.0, "framing": 1.5}
print(f"{'case':34} {'smppgw':>12} {'smpp34':>12} {'ratio':>7}  goal")
for g in sorted(d.name for d in root.iterdir() if d.is_dir() and d.name != "report"):
    theirs = mean(g, "smpp34")
    for fn in ("smppgw", "smppgw_fresh_buffer"):
        ours = mean(g, fn)
        if ours is None or theirs is None:
            continue
        label = g + ("" if fn == "smppgw" else " (fresh buf)")
        goal = goals[g.split("_")[0]]
        ratio = theirs / ours
        verdict = "ok" if ratio >= goal else "MISSED"
        if fn != "smppgw":
            goal, verdict = "-", "info (Pdu::to_bytes, a tests/tools path)"
        unit = lambda ns: f"{ns:9.1f} ns" if ns < 1e5 else f"{ns/1e3:9.1f} us"
        print(f"{label:34} {unit(ours):>12} {unit(theirs):>12} {ratio:6.2f}x  >={goal} {verdict}")
PY
