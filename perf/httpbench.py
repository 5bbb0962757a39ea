#!/usr/bin/env python3
"""The HTTP side, measured with tools we did not write (wrk, nginx) and against Kannel.

1. Submits over HTTP, keep-alive: `wrk` (64 connections, 2 threads, --seconds each) against
   - smppgw's `POST /messages` (JSON, basic auth) and its Kannel-compatible
     `GET /cgi-bin/sendsms`: each 202 means the message is committed to the message log
     (sync=batch: after the fdatasync its commit shares); the gateway forwards to `smppgw sim`
     over 2 binds;
   - Kannel 1.4.5 (Debian's bearerbox + smsbox, store-type=file) `GET /cgi-bin/sendsms`,
     forwarding over SMPP to the same kind of `smppgw sim`: the peer, in the same run.
   - smppgw's `POST /messages` with every message routed to an ESME that is not bound: each
     is committed and waits on disk (the HTTP and log cost without the forwarding leg).
   Requests per second answered 2xx, latency p50/p99 (wrk), CPU seconds per million
   accepted for the gateway (Kannel: bearerbox + smsbox), and how many reached the upstream.
2. Delivery to an HTTP target: `smpp-load` (4 binds, window 64, --count) -> smppgw, routed
   `.*=http` to nginx answering 200 (keep-alive): messages per second from the first submit
   to the last 2xx, and the gateway's CPU per million.

All processes on this machine's cores, loopback only. Needs `wrk`, `nginx` and (for the peer)
`kannel` installed (Debian: apt-get install wrk nginx-light kannel); the peer is skipped with a
note when Kannel is absent. Build first: cargo build --release.

usage: perf/httpbench.py [--seconds 10] [--count 300000] [--connections 64] [--only held] [--json FILE]
"""
import argparse, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import link_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# SMPPGW_BIN: another build of the gateway (an A/B in one session).
GW = os.environ.get("SMPPGW_BIN", os.path.join(ROOT, "target/release/smppgw"))
LOAD = os.path.join(ROOT, "target/release/smpp-load")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_log(path, needle, timeout=20, count=1):
    t0 = time.time()
    while time.time() - t0 < timeout:
        with open(path, errors="replace") as f:
            if f.read().count(needle) >= count:
                return True
        time.sleep(0.05)
    return False


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(p):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()


CONNECTIONS = 64


def wrk(url, seconds, script=None):
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    r = {"raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            v = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
            r[f"p{pct}_ms"] = v
    r["ok"] = r.get("requests", 0) - r["non2xx"]
    r["ok_rps"] = r["ok"] / seconds
    return r


def start_sim(work, tag):
    port = free_port()
    log = os.path.join(work, f"sim-{tag}.log")
    p = subprocess.Popen([GW, "sim", "--listen", f"127.0.0.1:{port}", "--shards", "1"],
                         stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                         env={**os.environ, "SMPPGW_LOG": "info"})
    if not wait_port(port):
        raise RuntimeError("sim did not start: " + open(log).read())
    return p, port, log


def sim_acknowledged(log):
    m = re.findall(r"(\d+) messages acknowledged", open(log, errors="replace").read())
    return int(m[-1]) if m else 0


def gateway(work, extra, routes=None, sim_port=None):
    http_port, smpp_port, admin = free_port(), free_port(), free_port()
    link = ""
    general = ""
    if sim_port:
        general = "default_route=up\n"
        link = link_section(sim_port)
    with open(os.path.join(work, "ysmpp.conf"), "w") as f:
        f.write(f"""[general]
shards=auto
sync=batch
queue_limit=100000000
spool_dir={work}/spool
admin=127.0.0.1:{admin}
{general}[smpp-server]
enable=yes
[listenerserver plain]
addr=127.0.0.1
port={smpp_port}
[http]
enable=yes
addr=127.0.0.1
port={http_port}
{link}{extra}""")
    with open(os.path.join(work, "regfile.conf"), "w") as f:
        f.write("[demo]\npassword=demo\n")
    if routes:
        with open(os.path.join(work, "regexroute.conf"), "w") as f:
            f.write(routes)
    log = os.path.join(work, "gw.log")
    p = subprocess.Popen([GW, "run", "--config", work], stdout=subprocess.DEVNULL,
                         stderr=open(log, "w"), env={**os.environ, "SMPPGW_LOG": "info"})
    if not wait_log(log, "listener \"http\""):
        raise RuntimeError("gateway did not start: " + open(log).read())
    if sim_port and not wait_log(log, "): bound", count=2):
        raise RuntimeError("link did not bind: " + open(log).read())
    return p, http_port, smpp_port, admin, log


def metric_sum(admin, name, label=""):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    total = 0.0
    for l in text.splitlines():
        if l.startswith(name + "{") and label in l:
            total += float(l.rsplit(" ", 1)[1])
    return total


def smppgw_held(args):
    """Accepted and committed only: every message routed to an ESME that is not bound, so
    each waits on disk (the HTTP and message-log cost without a forwarding leg)."""
    work = tempfile.mkdtemp(prefix="smppgw-held-", dir=os.path.join(ROOT, "target"))
    gw, http_port, _, _, gw_log = gateway(
        work, "", routes="[default]\n.*=smppserver/rx\n")
    with open(os.path.join(work, "regfile.conf"), "a") as f:
        f.write("[rx]\npassword=rx\n")
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write(POST_LUA)
    try:
        cpu0 = cpu_seconds(gw.pid)
        r = wrk(f"http://127.0.0.1:{http_port}/messages", args.seconds, lua)
        r["cpu_s_per_m"] = (cpu_seconds(gw.pid) - cpu0) / max(r["ok"], 1) * 1e6
    finally:
        stop(gw)
    log = open(gw_log, errors="replace").read()
    m = re.search(r"message log: (\d+) records in (\d+) commits \(([\d.]+) per commit\)", log)
    if m:
        r["records_per_commit"] = float(m.group(3))
    shutil.rmtree(work, ignore_errors=True)
    return r


POST_LUA = ('wrk.method = "POST"\n'
            'wrk.body = \'{"from":"1234","to":"447700900001","text":"hello over http"}\'\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["Authorization"] = "Basic ZGVtbzpkZW1v"\n')


def smppgw_submits(args):
    out = {}
    work = tempfile.mkdtemp(prefix="smppgw-http-", dir=os.path.join(ROOT, "target"))
    sim, sim_port, sim_log = start_sim(work, "gw")
    gw, http_port, _, _, gw_log = gateway(work, "", sim_port=sim_port)
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write(POST_LUA)
    try:
        for name, url, script in [
            ("json", f"http://127.0.0.1:{http_port}/messages", lua),
            ("kannel", f"http://127.0.0.1:{http_port}/cgi-bin/sendsms?username=demo&password=demo&from=1234&to=447700900001&text=hello+over+http", None),
        ]:
            cpu0 = cpu_seconds(gw.pid)
            r = wrk(url, args.seconds, script)
            r["cpu_s_per_m"] = (cpu_seconds(gw.pid) - cpu0) / max(r["ok"], 1) * 1e6
            out[name] = r
        time.sleep(2)
    finally:
        stop(gw); stop(sim)
    accepted = sum(r["ok"] for r in out.values())
    out["reached_upstream"] = sim_acknowledged(sim_log)
    out["accepted"] = accepted
    log = open(gw_log, errors="replace").read()
    m = re.search(r"message log: (\d+) records in (\d+) commits \(([\d.]+) per commit\)", log)
    if m:
        out["records_per_commit"] = float(m.group(3))
    shutil.rmtree(work, ignore_errors=True)
    return out


def kannel_submits(args):
    if not (shutil.which("bearerbox") and shutil.which("smsbox")):
        return {"skipped": "kannel is not installed (apt-get install kannel)"}
    work = tempfile.mkdtemp(prefix="kannel-http-", dir=os.path.join(ROOT, "target"))
    sim, sim_port, sim_log = start_sim(work, "kannel")
    admin, box, send = free_port(), free_port(), free_port()
    conf = os.path.join(work, "kannel.conf")
    with open(conf, "w") as f:
        f.write(f"""group = core
admin-port = {admin}
admin-password = perf
admin-interface = 127.0.0.1
smsbox-port = {box}
smsbox-interface = 127.0.0.1
log-file = "{work}/bearerbox.log"
log-level = 4
store-type = file
store-location = "{work}/kannel.store"
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = {sim_port}
transceiver-mode = true
smsc-username = kannel
smsc-password = kannel
system-type = ""
max-pending-submits = 64

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box}
sendsms-port = {send}
sendsms-interface = 127.0.0.1
log-file = "{work}/smsbox.log"
log-level = 4

group = sendsms-user
username = demo
password = demo
max-messages = 1

group = sms-service
keyword = default
text = "ok"
""")
    bb = subprocess.Popen(["bearerbox", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sb = None
    out = {}
    try:
        if not wait_port(box):
            raise RuntimeError("bearerbox did not start")
        sb = subprocess.Popen(["smsbox", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(send):
            raise RuntimeError("smsbox did not start")
        if not wait_log(sim_log, "bound as transceiver"):
            raise RuntimeError("kannel did not bind to the simulator")
        cpu0 = cpu_seconds(bb.pid) + cpu_seconds(sb.pid)
        r = wrk(f"http://127.0.0.1:{send}/cgi-bin/sendsms?username=demo&password=demo&from=1234&to=447700900001&text=hello+over+http",
                args.seconds)
        r["cpu_s_per_m"] = (cpu_seconds(bb.pid) + cpu_seconds(sb.pid) - cpu0) / max(r["ok"], 1) * 1e6
        out["kannel"] = r
        # What Kannel queued reaches the upstream after the load: give it time.
        t0 = time.time()
        time.sleep(2)
    finally:
        stop(sb); stop(bb); stop(sim)
    out["reached_upstream"] = sim_acknowledged(sim_log)
    out["accepted"] = out.get("kannel", {}).get("ok", 0)
    shutil.rmtree(work, ignore_errors=True)
    return out


def http_target(args):
    if not shutil.which("nginx"):
        return {"skipped": "nginx is not installed"}
    work = tempfile.mkdtemp(prefix="smppgw-httpt-", dir=os.path.join(ROOT, "target"))
    sink = free_port()
    nconf = os.path.join(work, "nginx.conf")
    with open(nconf, "w") as f:
        f.write(f"""worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx.err;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {work}/body;
    server {{
        listen 127.0.0.1:{sink};
        location / {{ return 200 "ok"; }}
    }}
}}
""")
    ng = subprocess.Popen(["nginx", "-c", nconf, "-p", work], stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(work, "nginx.out"), "w"))
    gw = None
    out = {}
    try:
        if not wait_port(sink):
            raise RuntimeError("nginx did not start: " + open(os.path.join(work, "nginx.out")).read())
        gw, _, smpp_port, admin, _ = gateway(
            work, f"[http-target]\nurl=http://127.0.0.1:{sink}/sink\nconnections=32\n",
            routes="[default]\n.*=http\n")
        cpu0 = cpu_seconds(gw.pid)
        t0 = time.time()
        load = subprocess.run([LOAD, "--target", f"127.0.0.1:{smpp_port}", "--binds", "4",
                               "--window", "64", "--count", str(args.count), "--json"],
                              capture_output=True, text=True, timeout=900)
        line = [l for l in load.stdout.splitlines() if l.startswith("{")]
        acked = json.loads(line[-1]).get("acked", 0) if line else 0
        delivered = 0.0
        while time.time() - t0 < 600:
            delivered = metric_sum(admin, "smppgw_http_target_requests_total", 'result="delivered"')
            if delivered >= acked:
                break
            time.sleep(0.05)
        elapsed = time.time() - t0
        out = {"acked": acked, "delivered": int(delivered), "seconds": elapsed,
               "msg_per_s": delivered / elapsed,
               "cpu_s_per_m": (cpu_seconds(gw.pid) - cpu0) / max(delivered, 1) * 1e6}
    finally:
        stop(gw); stop(ng)
    shutil.rmtree(work, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--count", type=int, default=300000)
    ap.add_argument("--connections", type=int, default=64,
                    help="wrk's kept-alive connections (-c)")
    ap.add_argument("--only", choices=["held"],
                    help="run one case only (held: HTTP and the log, nothing forwarded)")
    ap.add_argument("--json")
    args = ap.parse_args()
    global CONNECTIONS
    CONNECTIONS = args.connections
    for b in (GW, LOAD):
        if not os.path.exists(b):
            sys.exit(f"{b} missing: cargo build --release first")
    if not shutil.which("wrk"):
        sys.exit("wrk missing: apt-get install wrk")
    if args.only == "held":
        r = smppgw_held(args)
        print(f"held, wrk -t2 -c{CONNECTIONS}: {r['ok_rps']:.0f} 2xx/s, p50 {r.get('p50_ms', 0):.2f} ms, "
              f"p99 {r.get('p99_ms', 0):.2f} ms, {r['cpu_s_per_m']:.1f} CPU s/M, "
              f"{r.get('records_per_commit', float('nan')):.1f} records per fdatasync")
        return
    res = {"smppgw": smppgw_submits(args), "kannel": kannel_submits(args),
           "held": smppgw_held(args), "http_target": http_target(args)}
    g, k, t = res["smppgw"], res["kannel"], res["http_target"]
    print(f"{'HTTP submits, wrk -t2 -c' + str(CONNECTIONS):<44} {'2xx/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU s/M':>8}")
    rows = [("smppgw POST /messages (JSON)", g["json"]),
            ("smppgw GET /cgi-bin/sendsms", g["kannel"]),
            ("smppgw POST /messages, held (not forwarded)", res["held"])]
    if "kannel" in k:
        rows.append(("Kannel 1.4.5 GET /cgi-bin/sendsms", k["kannel"]))
    for name, r in rows:
        print(f"{name:<44} {r['ok_rps']:>9.0f} {r.get('p50_ms', float('nan')):>8.2f} "
              f"{r.get('p99_ms', float('nan')):>8.2f} {r['cpu_s_per_m']:>8.1f}")
    print(f"smppgw: {g['accepted']} accepted, {g['reached_upstream']} at the upstream; "
          f"{g.get('records_per_commit', float('nan')):.1f} records per fdatasync")
    if "kannel" in k:
        print(f"Kannel: {k['accepted']} accepted, {k['reached_upstream']} at the upstream")
        kr = k["kannel"]
        print(f"ratio smppgw sendsms / Kannel sendsms: {g['kannel']['ok_rps'] / max(kr['ok_rps'], 1):.2f}x throughput, "
              f"{g['kannel']['cpu_s_per_m'] / max(kr['cpu_s_per_m'], 1e-9):.2f}x CPU per message")
    else:
        print(f"Kannel: {k.get('skipped')}")
    if "msg_per_s" in t:
        print(f"HTTP target (smpp-load 4 binds -> smppgw -> nginx): {t['delivered']} of {t['acked']} "
              f"delivered, {t['msg_per_s']:.0f} msg/s, {t['cpu_s_per_m']:.1f} CPU s/M")
    else:
        print(f"HTTP target: {t.get('skipped')}")
    if args.json:
        for r in (g.get("json"), g.get("kannel"), k.get("kannel"), res["held"]):
            if r:
                r.pop("raw", None)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
