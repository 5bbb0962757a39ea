#!/usr/bin/env python3
"""smppgw (terminating mode) against the smpp34 crate's server, same load generator, same run.

For 1 and 4 transceiver binds, window 64, without and with receipts: servers alternate run by
run, 3 runs each (--runs), medians. Per server: msg/s, server CPU seconds (user+sys, from
/proc) per million messages, syscalls and context switches per message (perf stat, when
available), and for smppgw the PDUs carried per read. Prints a table and the ratios.

Then the client case: smpp-load -> smppgw -> `smppgw sim` upstream, 4 ESME binds, 2 upstream
binds, window 64, without and with receipts.

Three traffic shapes (--shapes): `batched`, smpp-load writing a window's worth of submits per
write; `each`, one write per PDU as most ESME libraries write (smpp-load --write-each); and
`perf_esme`, the smpp34 crate's own load generator (no receipts, no latency figures).
With perf available it also counts io_uring_enter and recvfrom per message, and io_uring_enter
per socket read (smppgw's reads from its log line).

usage: perf/compare.py [--runs 3] [--count 1000000] [--cases 1,4] [--shapes batched,each]
                       [--client-only | --no-client] [--shards auto|N] [--json FILE]
"""
import argparse, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GW = os.environ.get("SMPPGW_BIN", os.path.join(ROOT, "target/release/smppgw"))
LOAD = os.path.join(ROOT, "target/release/smpp-load")
SMPP34 = os.path.join(ROOT, "perf/smpp34-server/target/release/smpp34-server")
# The smpp34 crate's own load generator (its `perf_esme` example), built by compare.sh from a
# copy of the crate under target/: a generator we did not write.
PERF_ESME = os.path.join(ROOT, "target/smpp34-src/target/release/examples/perf_esme")
TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, proc, timeout=15):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen")


def cpu_seconds(pid):
    # Sum over all threads: utime (14) + stime (15) of /proc/PID/stat include every thread.
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def have_perf():
    return shutil.which("perf") and subprocess.run(
        ["perf", "stat", "-e", "raw_syscalls:sys_enter", "true"], capture_output=True).returncode == 0


def start(server, port, cfgdir):
    if server == "smppgw":
        cmd = [GW, "run", "--config", cfgdir]
    else:
        cmd = [SMPP34, f"127.0.0.1:{port}"]
    log = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "SMPPGW_LOG": "info"})
    wait_port(port, p)
    return p, log


def run_once(server, binds, receipts, count, cfgdir, perf, each=False):
    port = gw_port if server == "smppgw" else free_port()
    p, log = start(server, port, cfgdir)
    time.sleep(0.3)
    cpu0 = cpu_seconds(p.pid)
    perf_out = None
    if perf:
        perf_out = tempfile.NamedTemporaryFile(suffix=".txt", delete=False).name
        pp = subprocess.Popen(["perf", "stat", "-e", "raw_syscalls:sys_enter,context-switches,"
                               "syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_recvfrom", "-p", str(p.pid),
                               "-o", perf_out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)
    if each == "perf_esme":
        env = {**os.environ, "SMSC_ADDR": f"127.0.0.1:{port}", "SESSIONS": str(binds),
               "COUNT": str(count), "WINDOW": "64"}
        pe = subprocess.run([PERF_ESME], capture_output=True, text=True, timeout=300, env=env)
        m = re.search(r"(\d+) submit_sm in ([\d.]+)s = (\d+) submit_sm/s", pe.stdout + pe.stderr)
        if not m:
            raise RuntimeError("perf_esme: " + pe.stdout + pe.stderr)
        res = {"msg_per_s": float(m.group(3)), "acked": int(m.group(1)), "receipts": 0,
               "p50_ms": float("nan"), "p99_ms": float("nan")}
        out = None
    else:
        args = [LOAD, "--target", f"127.0.0.1:{port}", "--binds", str(binds), "--window", "64",
                "--count", str(count), "--json"]
        if receipts:
            args.append("--receipts")
        if each:
            args.append("--write-each")
        out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    cpu1 = cpu_seconds(p.pid)
    if perf:
        pp.send_signal(signal.SIGINT); pp.wait()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()
    log.seek(0); text = log.read().decode(errors="replace")
    if out is not None:
        res = json.loads(out.stdout.strip().splitlines()[-1])
    acked = max(res["acked"], 1)
    row = {"msg_per_s": res["msg_per_s"], "cpu_s_per_million": (cpu1 - cpu0) / acked * 1e6,
           "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"], "acked": res["acked"], "receipts": res["receipts"]}
    if perf_out:
        ptxt = open(perf_out).read(); os.unlink(perf_out)
        m = re.search(r"([\d,]+)\s+raw_syscalls:sys_enter", ptxt)
        c = re.search(r"([\d,]+)\s+context-switches", ptxt)
        if m: row["syscalls_per_msg"] = int(m.group(1).replace(",", "")) / acked
        if c: row["ctxsw_per_msg"] = int(c.group(1).replace(",", "")) / acked
        u = re.search(r"([\d,]+)\s+syscalls:sys_enter_io_uring_enter", ptxt)
        if u: row["uring_per_msg"] = int(u.group(1).replace(",", "")) / acked
        r = re.search(r"([\d,]+)\s+syscalls:sys_enter_recvfrom", ptxt)
        if r: row["recv_per_msg"] = int(r.group(1).replace(",", "")) / acked
    m = re.search(r"\(([\d.]+) per read\)", text)
    if m: row["pdus_per_read"] = float(m.group(1))
    m = re.search(r"(\d+) PDUs received in (\d+) reads", text)
    if m and "uring_per_msg" in row:
        reads = max(int(m.group(2)), 1)
        row["uring_per_read"] = row["uring_per_msg"] * acked / reads
    return row


def route_file(rules):
    """The seed's parameter rules, `rules` distinct 7-digit prefix rules to the link (one of
    them matches smpp-load's destination, 31612345678), and a catch-all refusal."""
    lines = ["[default]",
             "${sms_type}^status_report$=if ${submit_info}^HTTP=http://10.10.1.120/status?billid=${billid}&status=${sms_stat}",
             "${module}smppserver=;retries=10",
             "${module}smppclient=;retries=8"]
    lines += [f"^+\\?{3160000 + i}=smppclient/up" for i in range(rules)]
    lines.append(".*=-;error=noroute")
    return "\n".join(lines) + "\n"


def run_client_case(receipts, count, runs, routes=0):
    """smpp-load -> smppgw -> `smppgw sim`: 4 ESME binds, 2 upstream binds, window 64. With
    `routes`, a regexroute.conf of that many prefix rules decides instead of default_route."""
    rows = []
    for _ in range(runs):
        sim_port, port = free_port(), free_port()
        d = tempfile.mkdtemp(prefix="smppgw-client-")
        if routes:
            open(os.path.join(d, "regexroute.conf"), "w").write(route_file(routes))
        default = "" if routes else "default_route=up\n"
        open(os.path.join(d, "ysmpp.conf"), "w").write(
            f"[general]\nshards=auto\n{default}\n[listenerserver plain]\naddr=127.0.0.1\nport={port}\n\n"
            f"[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={sim_port}\nsystem_id=gw\nsystem_password=pw\n"
            f"binds=2\nwindow=64\nmsgid_format=hex\n")
        open(os.path.join(d, "regfile.conf"), "w").write("[demo]\npassword=demo\n")
        sim = subprocess.Popen([GW, "sim", "--listen", f"127.0.0.1:{sim_port}", "--shards", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(sim_port, sim)
        log = tempfile.TemporaryFile()
        gw = subprocess.Popen([GW, "run", "--config", d], stdout=subprocess.DEVNULL, stderr=log)
        wait_port(port, gw)
        time.sleep(1.0)  # the link binds
        cpu0 = cpu_seconds(gw.pid)
        perf_out = None
        if have_perf():
            perf_out = tempfile.NamedTemporaryFile(suffix=".txt", delete=False).name
            pp = subprocess.Popen(["perf", "stat", "-e", "raw_syscalls:sys_enter", "-p", str(gw.pid), "-o", perf_out],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.2)
        args = [LOAD, "--target", f"127.0.0.1:{port}", "--binds", "4", "--window", "64", "--count", str(count), "--json"]
        if receipts:
            args.append("--receipts")
        out = subprocess.run(args, capture_output=True, text=True, timeout=600)
        cpu1 = cpu_seconds(gw.pid)
        syscalls = None
        if perf_out:
            pp.send_signal(signal.SIGINT); pp.wait()
            m = re.search(r"([\d,]+)\s+raw_syscalls:sys_enter", open(perf_out).read())
            os.unlink(perf_out)
            if m:
                syscalls = int(m.group(1).replace(",", ""))
        for p in (gw, sim):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()
        shutil.rmtree(d, ignore_errors=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        if res["acked"] < count:
            sys.exit(f"client case: only {res['acked']} of {count} acknowledged (routes={routes})")
        res["gw_cpu_s_per_million"] = (cpu1 - cpu0) / max(res["acked"], 1) * 1e6
        res["gw_syscalls_per_msg"] = syscalls / max(res["acked"], 1) if syscalls is not None else float("nan")
        rows.append(res)
    keys = ["msg_per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "gw_cpu_s_per_million", "gw_syscalls_per_msg",
            "acked", "receipts"]
    return {k: statistics.median([r[k] for r in rows]) for k in keys}


def main():
    global gw_port
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--cases", default="1,4")
    ap.add_argument("--json")
    ap.add_argument("--client-only", action="store_true", help="only the smppgw -> sim client case")
    ap.add_argument("--shapes", default="batched,each,perf_esme",
                    help="traffic shapes: batched (a window per write), each (one write per PDU), "
                         "perf_esme (the smpp34 crate's own generator)")
    ap.add_argument("--no-client", action="store_true", help="skip the client case")
    ap.add_argument("--shards", default="auto", help="the terminating gateway's shards (auto, or N)")
    a = ap.parse_args()
    for b in (GW, LOAD, SMPP34) + ((PERF_ESME,) if "perf_esme" in a.shapes else ()):
        if not os.path.exists(b):
            sys.exit(f"missing {b}: run perf/compare.sh (it builds everything)")
    cfgdir = tempfile.mkdtemp(prefix="smppgw-compare-")
    gw_port = free_port()
    with open(os.path.join(cfgdir, "ysmpp.conf"), "w") as f:
        f.write(f"[general]\nshards={a.shards}\n\n[listenerserver plain]\naddr=127.0.0.1\nport={gw_port}\n")
    with open(os.path.join(cfgdir, "regfile.conf"), "w") as f:
        f.write("[demo]\npassword=demo\n\n[perf]\npassword=perf\n")
    perf = have_perf()
    results = []
    shapes = a.shapes.split(",")
    for shape in ([] if a.client_only else shapes):
        for binds in [int(x) for x in a.cases.split(",")]:
            for receipts in ((False,) if shape == "perf_esme" else (False, True)):
                rows = {"smppgw": [], "smpp34": []}
                for r in range(a.runs):
                    order = ["smppgw", "smpp34"] if r % 2 == 0 else ["smpp34", "smppgw"]
                    for server in order:
                        rows[server].append(run_once(server, binds, receipts, a.count, cfgdir, perf,
                                                     each=("perf_esme" if shape == "perf_esme" else shape == "each")))
                med = {s: {k: statistics.median([x[k] for x in v if k in x]) for k in v[0]} for s, v in rows.items()}
                results.append({"binds": binds, "receipts": receipts, "shape": shape, "median": med, "runs": rows})
    shutil.rmtree(cfgdir, ignore_errors=True)

    print(f"\nsmppgw vs smpp34 server: window 64, {a.count} messages per run, median of {a.runs} runs, "
          f"{os.cpu_count()} cores shared with the load generator")
    hdr = (f"{'case':30} {'server':7} {'msg/s':>10} {'CPU s/M':>8} {'sysc/msg':>9} {'uring/msg':>9} "
           f"{'uring/read':>10} {'cs/msg':>7} {'PDU/read':>9} {'p50 ms':>7} {'p99 ms':>7}")
    print(hdr); print("-" * len(hdr))
    for res in results:
        shape = {"each": "one write/PDU", "perf_esme": "perf_esme"}.get(res["shape"], "batched")
        case = f"{shape}, {res['binds']} bind{'s' if res['binds'] > 1 else ''}{', receipts' if res['receipts'] else ''}"
        for s in ("smppgw", "smpp34"):
            m = res["median"][s]
            f = lambda k, fmt: (fmt % m[k]) if k in m else ("%" + fmt.lstrip("%").split(".")[0] + "s") % "-"
            print(f"{case:30} {s:7} {m['msg_per_s']:>10.0f} {m['cpu_s_per_million']:>8.2f} {f('syscalls_per_msg', '%9.3f')} "
                  f"{f('uring_per_msg', '%9.3f')} {f('uring_per_read', '%10.2f')} "
                  f"{f('ctxsw_per_msg', '%7.4f')} {f('pdus_per_read', '%9.1f')} {m['p50_ms']:>7.3f} {m['p99_ms']:>7.3f}")
        g, t = res["median"]["smppgw"], res["median"]["smpp34"]
        cpu_ratio = g["cpu_s_per_million"] / max(t["cpu_s_per_million"], 1e-9)
        tput_ratio = g["msg_per_s"] / max(t["msg_per_s"], 1e-9)
        res["cpu_ratio"], res["throughput_ratio"] = cpu_ratio, tput_ratio
        goal = "goal <= 0.5" if res["shape"] in ("each", "perf_esme") else "goal <= 0.75"
        print(f"{'':30} ratio   throughput {tput_ratio:.2f}x, CPU per message {cpu_ratio:.2f}x ({goal})")
    client = {}
    for receipts in ([] if a.no_client else (False, True)):
        client["receipts" if receipts else "plain"] = run_client_case(receipts, a.count, a.runs)
    if not a.no_client:
        client["10k rules"] = run_client_case(False, a.count, a.runs, routes=10_000)
    print(f"\nclient case: smpp-load (4 binds, window 64) -> smppgw (default_route, or a regexroute.conf "
          f"of 10,000 prefix rules) -> smppgw sim "
          f"(2 upstream binds, window 64), {a.count} messages, median of {a.runs} runs")
    print(f"{'':10} {'msg/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'gw CPU s/M':>11} "
          f"{'gw sysc/msg':>12} {'receipts':>9}")
    for k, m in client.items():
        print(f"{k:10} {m['msg_per_s']:>10.0f} {m['p50_ms']:>8.3f} {m['p90_ms']:>8.3f} {m['p99_ms']:>8.3f} "
              f"{m['p999_ms']:>9.3f} {m['gw_cpu_s_per_million']:>11.2f} {m['gw_syscalls_per_msg']:>12.3f} "
              f"{m['receipts']:>9.0f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"servers": results, "client": client}, f, indent=1)


if __name__ == "__main__":
    main()
