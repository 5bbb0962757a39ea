#!/usr/bin/env python3
"""One table of the headline figures of a perf/run.sh results directory, each beside the peer
measured in the same run where there is one.

usage: perf/summary.py DIR
"""
import json, math, os, sys


def load(d, name):
    try:
        text = open(os.path.join(d, name)).read()
    except OSError:
        return None
    return json.loads(text.replace("NaN", "null"))


def fmt(x, digits=0):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    rows = []
    c = load(d, "compare.json")
    for s in (c or {}).get("servers", []):
        m = s["median"]
        gw, peer = m.get("smppgw", {}), m.get("smpp34", {})
        case = f"{s['shape']}, {s['binds']} bind{'s' if s['binds'] > 1 else ''}{', receipts' if s['receipts'] else ''}"
        rows.append((case, fmt(gw.get("msg_per_s")), fmt(peer.get("msg_per_s")),
                     fmt(gw.get("cpu_s_per_million"), 2), fmt(peer.get("cpu_s_per_million"), 2),
                     fmt(s.get("cpu_ratio"), 2) + "x"))
    e = load(d, "e2e.json")
    for mode in ("batch", "none"):
        runs = (e or {}).get("runs", {}).get(mode) or []
        if runs:
            r = sorted(runs, key=lambda r: r["msg_per_s"])[len(runs) // 2]
            rows.append((f"end to end, receipts, sync={mode}", fmt(r["msg_per_s"]), "-",
                         fmt(r.get("gw_cpu_s_per_m"), 2), "-", "-"))
    h = load(d, "httpbench.json")
    if h:
        gw = h.get("smppgw", {}).get("kannel", {})
        k = h.get("kannel", {}).get("kannel", {})
        ratio = (gw.get("cpu_s_per_m") or 0) / k["cpu_s_per_m"] if k.get("cpu_s_per_m") else None
        rows.append(("HTTP sendsms (peer: Kannel)", fmt(gw.get("ok_rps")), fmt(k.get("ok_rps")),
                     fmt(gw.get("cpu_s_per_m"), 2), fmt(k.get("cpu_s_per_m"), 2),
                     fmt(ratio, 2) + "x" if ratio else "-"))
    sc = load(d, "scenarios.json") or {}
    if "tls" in sc:
        t, p = sc["tls"]["tls"], sc["tls"]["plain"]
        rows.append(("TLS, 4 binds (peer: plain TCP)", fmt(t["msg_per_s"]), fmt(p["msg_per_s"]),
                     fmt(t["server_cpu_s_per_m"], 2), fmt(p["server_cpu_s_per_m"], 2),
                     fmt(t["server_cpu_s_per_m"] / max(p["server_cpu_s_per_m"], 1e-9), 2) + "x"))
    if "active" in sc:
        a = sc["active"]
        rows.append((f"1,000 binds at {a['rate_asked']:,} msg/s: p50/p99 {a['p50_ms']:.2f}/{a['p99_ms']:.2f} ms",
                     fmt(a["msg_per_s"]), "-", fmt(a["server_cpu_s_per_m"], 2), "-", "-"))
    if "held" in sc:
        rows.append((f"held for a receiver not bound: {sc['held']['octets_per_held']:.0f} octets each (goal 256)",
                     "-", "-", "-", "-", "-"))
    if "loadgen" in sc:
        for shape, r in sc["loadgen"].items():
            rows.append((f"smpp-load itself, {shape} (peer column: smpp-load)", fmt(r["msg_per_s"]), "-",
                         fmt(r["server_cpu_s_per_m"], 2), fmt(r["load_cpu_s_per_m"], 2), "-"))
    head = ("scenario", "smppgw msg/s", "peer msg/s", "smppgw CPU s/M", "peer CPU s/M", "CPU ratio")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(r, widths))))


if __name__ == "__main__":
    main()
