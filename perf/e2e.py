#!/usr/bin/env python3
"""Store-and-forward end to end: smpp-load -> smppgw -> `smppgw sim`, receipts on.

All three processes on this machine. The gateway acknowledges each submit once its record is
in the message log (sync=batch: after the fdatasync its commit shares; sync=none: at once),
forwards it over its link (2 binds, window 64) to the simulator, which acknowledges and sends
a receipt; the gateway matches it to its own id and relays it to the load generator.

Per sync mode (alternating, --runs each, medians):
- flat out: submits acknowledged per second, receipts per second from the first send to the
  last receipt (what made the whole round trip: in = out), p50/p99 submit latency;
- the message log: records per commit (records per fdatasync), fdatasync p50/p99;
- then at half the flat-out rate of that mode (--rate, over the same binds): p50/p99 submit
  latency.

usage: perf/e2e.py [--runs 3] [--count 1000000] [--binds 4] [--window 64] [--spool DIR]
                   [--json FILE] [--ops [--ops-rates 15000,20000] [--ops-modes off,default,cdr]
                   | --cluster]
--cluster measures issue 15's cost on the single-node path: sync=batch with [cluster] on (a
nats-server started on 127.0.0.1, the one tests/peers/setup.sh installs) against off,
alternating, --runs each.
--ops measures issue 11's cost instead: sync=batch with CDRs and metrics off (admin=off),
metrics only (the admin endpoint on), and CDRs and metrics on, alternating, --runs each;
gateway CPU seconds per million messages (from /proc) and delivered msg/s; flat out, then at
each of --ops-rates (default 15000,20000 msg/s, --rate-seconds each), where CPU per message
is steady enough to show a cost of a few percent.
--spool picks the disk the log goes to (default: a directory under target/, on the disk the
checkout is on; tmpfs would measure nothing: it has no fdatasync cost).
"""
import argparse, json, os, re, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# SMPPGW_BIN: another build of the gateway (an A/B in one session); the simulator stays this one.
GW = os.environ.get("SMPPGW_BIN", os.path.join(ROOT, "target/release/smppgw"))
SIM = os.path.join(ROOT, "target/release/smppgw")
LOAD = os.path.join(ROOT, "target/release/smpp-load")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_log(path, needle, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        with open(path, errors="replace") as f:
            if needle in f.read():
                return True
        time.sleep(0.05)
    return False


def count_log(path, needle):
    with open(path, errors="replace") as f:
        return f.read().count(needle)


def link_section(sim_port):
    """The client link `up` to a simulator on `sim_port`: 2 transceiver binds, window 64."""
    return f"""[smpp-client]
clients=up
[up]
server=127.0.0.1
port={sim_port}
system_id=gw
system_password=pw
bind=transceiver
binds=2
window=64
"""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(sync, args, rate=None, ops="default"):
    """ops: "default" (metrics on: the admin endpoint's default), "off" (admin=off: no
    metrics), "cdr" (metrics and CDRs on)."""
    work = tempfile.mkdtemp(prefix="smppgw-e2e-", dir=args.spool)
    extra = {"default": "admin=127.0.0.1:0\n", "off": "admin=off\n",
             "cdr": "admin=127.0.0.1:0\n", "cluster": "admin=127.0.0.1:0\n"}[ops]
    cdr = f"[cdr]\nfile={work}/cdr/smppgw.cdr\n" if ops == "cdr" else ""
    if ops == "cluster":
        cdr = f"[cluster]\nnats=nats://127.0.0.1:{args.nats_port}\nnode=n1\nname=perf\n"
    sim_port, gw_port = free_port(), free_port()
    with open(os.path.join(work, "ysmpp.conf"), "w") as f:
        f.write(f"""[general]
shards=auto
default_route=up
sync={sync}
spool_dir={work}/spool
{extra}[smpp-server]
enable=yes
[listenerserver plain]
addr=127.0.0.1
port={gw_port}
{link_section(sim_port)}{cdr}""")
    with open(os.path.join(work, "regfile.conf"), "w") as f:
        f.write("[demo]\npassword=demo\n")
    sim_log, gw_log = os.path.join(work, "sim.log"), os.path.join(work, "gw.log")
    env = {**os.environ, "SMPPGW_LOG": "info"}
    sim = subprocess.Popen([SIM, "sim", "--listen", f"127.0.0.1:{sim_port}", "--shards", "1"],
                           stdout=subprocess.DEVNULL, stderr=open(sim_log, "w"), env=env)
    gw = subprocess.Popen([GW, "run", "--config", work], stdout=subprocess.DEVNULL,
                          stderr=open(gw_log, "w"), env=env)
    try:
        if not wait_log(gw_log, "listener \"plain\""):
            raise RuntimeError("gateway did not start: " + open(gw_log).read())
        t0 = time.time()
        while count_log(gw_log, "): bound") < 2:
            if time.time() - t0 > 20:
                raise RuntimeError("link did not bind: " + open(gw_log).read())
            time.sleep(0.05)
        binds = args.rate_binds if rate else args.binds
        cmd = [LOAD, "--target", f"127.0.0.1:{gw_port}", "--binds", str(binds),
               "--window", str(args.window), "--receipts", "--json"]
        if rate:
            cmd += ["--rate", str(int(rate)), "--duration", f"{args.rate_seconds}s"]
        else:
            cmd += ["--count", str(args.count)]
        cpu0 = cpu_seconds(gw.pid)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        gw_cpu = cpu_seconds(gw.pid) - cpu0
        line = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if not line:
            raise RuntimeError("smpp-load: " + out.stdout + out.stderr)
        r = json.loads(line[-1])
        r["gw_cpu_s_per_m"] = gw_cpu / max(r.get("acked", 0), 1) * 1e6
    finally:
        gw.send_signal(signal.SIGTERM)
        try:
            gw.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gw.kill()
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
    log = open(gw_log, errors="replace").read()
    m = re.search(r"message log: (\d+) records in (\d+) commits \(([\d.]+) per commit\); fdatasync p50 (\d+) us, p99 (\d+) us", log)
    if m:
        r["records"], r["commits"] = int(m.group(1)), int(m.group(2))
        r["records_per_commit"] = float(m.group(3))
        r["fdatasync_p50_us"], r["fdatasync_p99_us"] = int(m.group(4)), int(m.group(5))
    cdr_file = os.path.join(work, "cdr", "smppgw.cdr")
    if os.path.exists(cdr_file):
        # Attempts that did not go (the simulator refusing while its receipts wait for us):
        # each is a line, and work.
        with open(cdr_file, errors="replace") as f:
            legs = [l.split("\t", 3)[2] for l in f if l.count("\t") >= 3]
        r["cdr_lines"] = len(legs)
        r["cdr_attempt_legs"] = legs.count("attempt")
    subprocess.run(["rm", "-rf", work])
    return r


def med(rs, key):
    v = [r[key] for r in rs if key in r]
    return statistics.median(v) if v else float("nan")


def compare(args, modes, rate=None):
    """sync=batch runs of each (ops mode, name), alternating, --runs each, flat out or at a
    fixed rate; a table against the first mode. Returns the runs by mode."""
    res = {m: [] for m, _ in modes}
    how = f"at {rate:,}/s" if rate else "flat out"
    for i in range(args.runs):
        for m, name in modes:
            r = run("batch", args, rate=rate, ops=m)
            res[m].append(r)
            legs = (f", {r['cdr_lines']:,} CDR lines ({r['cdr_attempt_legs']:,} attempt legs)"
                    if "cdr_lines" in r else "")
            print(f"run {i + 1} {name} {how}: {r['receipts_per_s']:.0f} delivered/s, "
                  f"gateway {r['gw_cpu_s_per_m']:.1f} CPU-s per million{legs}", flush=True)
    print()
    print(f"{how}:")
    print("| | gateway CPU s / M msgs (median) | delivered msg/s (median) | CPU vs first | throughput vs first |")
    print("|---|---|---|---|---|")
    base = modes[0][0]
    base_cpu, base_rate = med(res[base], "gw_cpu_s_per_m"), med(res[base], "receipts_per_s")
    for m, name in modes:
        c, r = med(res[m], "gw_cpu_s_per_m"), med(res[m], "receipts_per_s")
        print(f"| {name} | {c:.1f} | {r:,.0f} | {c / base_cpu - 1:+.1%} | {r / base_rate - 1:+.1%} |")
    return res


def ops(args):
    """Flat out, CPU per message moves with how the three processes happen to share the two
    cores (batch sizes follow the scheduling): about +-10% run to run. At a fixed rate below
    saturation (--ops-rates) every mode does the same work in the same rhythm, and CPU per
    message repeats within about 2%: that is where a cost of a few percent can be seen."""
    names = {"off": "CDRs and metrics off", "default": "metrics on", "cdr": "CDRs and metrics on"}
    modes = [(m, names[m]) for m in args.ops_modes.split(",")]
    res = {"flat": compare(args, modes)}
    for rate in [int(r) for r in args.ops_rates.split(",") if r]:
        print()
        res[f"rate_{rate}"] = compare(args, modes, rate=rate)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


def cluster(args):
    """Issue 15's cost: the single-node pipeline with [cluster] on (a nats-server on 127.0.0.1;
    the load generator's binds are transceivers, so receipts stay on the node) against off."""
    args.nats_port = free_port()
    server = os.path.join(ROOT, "target/peers/venv/bin/nats-server")  # tests/peers/setup.sh
    if not os.path.exists(server):
        subprocess.run([os.path.join(ROOT, "tests/peers/setup.sh")], check=True)
    store = tempfile.mkdtemp(prefix="smppgw-nats-", dir=args.spool)
    # JetStream on: the node takes its link's lease, as in a real cluster.
    nats = subprocess.Popen([server, "-a", "127.0.0.1", "-p", str(args.nats_port), "-js", "-sd", store],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        compare(args, [("default", "cluster off"), ("cluster", "cluster on")])
    finally:
        nats.kill()
        nats.wait()
        subprocess.run(["rm", "-rf", store])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--binds", type=int, default=4)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--rate-seconds", type=int, default=10)
    ap.add_argument("--rate-binds", type=int, default=None, help="binds of the half-rate runs (default: --binds)")
    ap.add_argument("--spool", default=os.path.join(ROOT, "target"))
    ap.add_argument("--json")
    ap.add_argument("--ops", action="store_true", help="CDRs and metrics on against off")
    ap.add_argument("--ops-rates", default="15000,20000",
                    help="fixed rates (msg/s, for --rate-seconds) the --ops modes are also compared at")
    ap.add_argument("--ops-modes", default="off,default,cdr",
                    help="which of off (CDRs and metrics off), default (metrics on) and cdr (both on) --ops compares, the first the base")
    ap.add_argument("--cluster", action="store_true", help="[cluster] on (local nats-server) against off")
    args = ap.parse_args()
    if args.rate_binds is None:
        args.rate_binds = args.binds
    for exe in (GW, LOAD):
        if not os.path.exists(exe):
            sys.exit(f"{exe} missing: cargo build --release --bin smppgw --bin smpp-load")
    if args.ops:
        return ops(args)
    if args.cluster:
        return cluster(args)
    results = {"none": [], "batch": []}
    for i in range(args.runs):
        for sync in ("none", "batch"):
            r = run(sync, args)
            results[sync].append(r)
            print(f"run {i + 1} sync={sync}: {r['msg_per_s']:.0f} acked/s, {r['receipts_per_s']:.0f} receipts/s, "
                  f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, receipts {r['receipts']}/{r['acked']}, "
                  f"{r.get('records_per_commit', float('nan')):.1f} records/commit", flush=True)
    half = {}
    for sync in ("none", "batch"):
        rate = med(results[sync], "receipts_per_s") / 2
        half[sync] = run(sync, args, rate=rate)
        half[sync]["rate"] = rate
        h = half[sync]
        print(f"half rate sync={sync} ({rate:.0f}/s for {args.rate_seconds} s): p50 {h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms", flush=True)
    print()
    print("| sync | acked msg/s | delivered msg/s (receipts) | p50 ms | p99 ms | records / fdatasync | fdatasync p50 / p99 us | p99 ms at half rate |")
    print("|---|---|---|---|---|---|---|---|")
    for sync in ("none", "batch"):
        rs = results[sync]
        print(f"| {sync} | {med(rs, 'msg_per_s'):,.0f} | {med(rs, 'receipts_per_s'):,.0f} | {med(rs, 'p50_ms'):.2f} | "
              f"{med(rs, 'p99_ms'):.2f} | {med(rs, 'records_per_commit'):.1f} | "
              f"{med(rs, 'fdatasync_p50_us'):.0f} / {med(rs, 'fdatasync_p99_us'):.0f} | {half[sync]['p99_ms']:.2f} |")
    ratio = med(results["batch"], "receipts_per_s") / med(results["none"], "receipts_per_s")
    print(f"\nsync=batch / sync=none (delivered): {ratio:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": results, "half": half}, f, indent=1)


if __name__ == "__main__":
    main()
