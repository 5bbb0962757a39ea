#!/usr/bin/env python3
"""Cross-node hand-off (issue 15): receipts for messages submitted on one node, delivered to
the originator's receiver bound on another node of the cluster.

nats-server (target/peers/venv/bin/nats-server, from tests/peers/setup.sh; JetStream with
sync_interval: always, as the README's deployment section sets it), `smppgw sim` as the
upstream, node a (the link to the simulator, 2 binds) and node b (no link), sync=batch, all on
this machine. smpp-load submits on a (2 transmitters, window 64, receipts asked) and binds one
receiver, on a ("local": no hand-off) or on b ("remote": every receipt is handed from a to b
over NATS). Alternating, --runs each:
- flat out, --count messages: receipts per second (first send to last receipt), CPU seconds of
  both nodes per million messages;
- at each of --rates msg/s for --seconds: submit-to-receipt latency p50/p99/p99.9, so that
  the difference remote - local is what a hand-off adds.

usage: perf/cluster.py [--runs 3] [--count 100000] [--rates 200,2000] [--seconds 10] [--json FILE]
"""
import argparse, json, os, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import ROOT, GW, LOAD, free_port, wait_log, count_log, cpu_seconds, link_section  # noqa: E402

NATS = os.path.join(ROOT, "target/peers/venv/bin/nats-server")


def node(work, name, nats_port, sim_port=None):
    d = os.path.join(work, name)
    os.makedirs(d)
    port = free_port()
    link = ""
    if sim_port:
        link = link_section(sim_port)
    with open(os.path.join(d, "ysmpp.conf"), "w") as f:
        f.write(f"""[general]
shards=auto
{"default_route=up" if sim_port else ""}
sync=batch
spool_dir={d}/spool
admin=127.0.0.1:{free_port()}
[smpp-server]
enable=yes
[listenerserver plain]
addr=127.0.0.1
port={port}
{link}[cluster]
nats=nats://127.0.0.1:{nats_port}
node={name}
name=perf
""")
    with open(os.path.join(d, "regfile.conf"), "w") as f:
        f.write("[demo]\npassword=demo\n")
    log = os.path.join(d, "gw.log")
    env = {**os.environ, "SMPPGW_LOG": "info"}
    p = subprocess.Popen([GW, "run", "--config", d], stdout=subprocess.DEVNULL,
                         stderr=open(log, "w"), env=env)
    if not wait_log(log, "connected to NATS"):
        raise RuntimeError(f"node {name} did not start: " + open(log).read())
    return p, port, log


def load(args, a_port, rx_port, rate):
    cmd = [LOAD, "--target", f"127.0.0.1:{a_port}", "--binds", "2", "--bind", "tx",
           "--receivers", "1", "--receivers-target", f"127.0.0.1:{rx_port}",
           "--window", "64", "--receipts", "--json"]
    cmd += ["--rate", str(rate), "--duration", f"{args.seconds}s"] if rate else ["--count", str(args.count)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if not line:
        raise RuntimeError("smpp-load: " + out.stdout + out.stderr)
    return json.loads(line[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--rates", default="200,2000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    if not os.path.exists(NATS):
        subprocess.run([os.path.join(ROOT, "tests/peers/setup.sh")], check=True)
    work = tempfile.mkdtemp(prefix="smppgw-cluster-", dir=os.path.join(ROOT, "target"))
    nats_port, sim_port = free_port(), free_port()
    with open(os.path.join(work, "nats.conf"), "w") as f:
        f.write(f"listen: 127.0.0.1:{nats_port}\njetstream {{\n  store_dir: \"{work}/nats\"\n  sync_interval: always\n}}\n")
    procs = []
    try:
        procs.append(subprocess.Popen([NATS, "-c", os.path.join(work, "nats.conf")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([GW, "sim", "--listen", f"127.0.0.1:{sim_port}", "--shards", "1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        a, a_port, a_log = node(work, "a", nats_port, sim_port)
        procs.append(a)
        b, b_port, b_log = node(work, "b", nats_port)
        procs.append(b)
        t0 = time.time()
        while count_log(a_log, "): bound") < 2:
            if time.time() - t0 > 20:
                raise RuntimeError("link did not bind: " + open(a_log).read())
            time.sleep(0.05)
        res = {"local": [], "remote": []}
        for i in range(args.runs):
            for mode, rx in (("local", a_port), ("remote", b_port)):
                cpu0 = cpu_seconds(a.pid) + cpu_seconds(b.pid)
                r = load(args, a_port, rx, None)
                cpu = cpu_seconds(a.pid) + cpu_seconds(b.pid) - cpu0
                r["nodes_cpu_s_per_m"] = cpu / max(r["acked"], 1) * 1e6
                line = (f"run {i + 1} {mode}: {r['receipts']} receipts of {r['acked']}, "
                        f"{r['receipts_per_s']:.0f} receipts/s, nodes {r['nodes_cpu_s_per_m']:.1f} CPU-s/M")
                for rate in rates:
                    lat = load(args, a_port, rx, rate)
                    for k in ("receipt_p50_ms", "receipt_p99_ms", "receipt_p999_ms", "receipts_timed"):
                        r[f"{rate}_{k}"] = lat[k]
                    line += (f"; at {rate}/s receipt p50 {lat['receipt_p50_ms']:.2f} ms "
                             f"p99 {lat['receipt_p99_ms']:.2f} ms p99.9 {lat['receipt_p999_ms']:.2f} ms")
                res[mode].append(r)
                print(line, flush=True)
        med = lambda m, k: statistics.median(r[k] for r in res[m])
        print()
        head = "".join(f" receipt p50 / p99 / p99.9 at {rate}/s |" for rate in rates)
        print(f"| receiver on | receipts/s flat out ({args.count:,} msgs) | CPU-s/M (both nodes) |{head}")
        print("|---|---|---|" + "---|" * len(rates))
        for m in ("local", "remote"):
            cells = "".join(f" {med(m, f'{rate}_receipt_p50_ms'):.2f} / {med(m, f'{rate}_receipt_p99_ms'):.2f} / "
                            f"{med(m, f'{rate}_receipt_p999_ms'):.2f} ms |" for rate in rates)
            print(f"| {'node a (no hand-off)' if m == 'local' else 'node b (hand-off)'} | "
                  f"{med(m, 'receipts_per_s'):,.0f} | {med(m, 'nodes_cpu_s_per_m'):.1f} |{cells}")
        print()
        for rate in rates:
            d = lambda q: med('remote', f'{rate}_receipt_{q}_ms') - med('local', f'{rate}_receipt_{q}_ms')
            print(f"a hand-off adds at {rate}/s: p50 {d('p50'):+.2f} ms, p99 {d('p99'):+.2f} ms")
        print(f"throughput with hand-offs: {med('remote', 'receipts_per_s') / med('local', 'receipts_per_s') - 1:+.1%}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
