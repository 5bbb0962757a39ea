#!/usr/bin/env python3
"""The scenarios compare.py and e2e.py do not cover, each with its own time bound:

  tls       terminating server over TLS, 4 binds, window 64: msg/s, latency, CPU s per
            million messages, and the ratio to the same run in plain TCP
  active    1,000 binds submitting at a fixed total rate (--rate, 20,000 msg/s): latency
            p50/p99/p99.9 at that rate, and whether the rate was held
  held      a slow ESME receiver: --held messages (100,000) routed to an account that is not
            bound, held in the spool; the gateway's RSS per held message (goal: under 256
            octets); then the receiver binds: how fast they all come out, RSS after
  loadgen   smpp-load against smppgw, with the generator's own CPU per million messages beside
            the server's: the generator must cost well under what it measures

usage: perf/scenarios.py [--only tls,active,held,loadgen] [--count 500000] [--held 100000]
                         [--rate 20000] [--seconds 10] [--json FILE]
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GW = os.environ.get("SMPPGW_BIN", os.path.join(ROOT, "target/release/smppgw"))
LOAD = os.path.join(ROOT, "target/release/smpp-load")
TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Gateway:
    """smppgw on a temporary configuration directory (plain and TLS listeners)."""

    def __init__(self, general="", routes=None, regfile="[demo]\npassword=demo\n"):
        self.dir = tempfile.mkdtemp(prefix="smppgw-perf-")
        self.plain, self.tls = free_port(), free_port()
        cert = os.path.join(self.dir, "certificate.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-keyout", cert, "-out", cert + ".crt"],
            check=True, capture_output=True)
        with open(cert, "a") as f:
            f.write(open(cert + ".crt").read())
        open(os.path.join(self.dir, "openssl.conf"), "w").write(
            "[perf]\ncertificate=certificate.pem\ndomains=localhost\n")
        open(os.path.join(self.dir, "ysmpp.conf"), "w").write(
            f"[general]\nshards=auto\nadmin=off\nmax_connections=20000\n{general}\n"
            f"[listenerserver plain]\naddr=127.0.0.1\nport={self.plain}\n\n"
            f"[listenerserver tls]\naddr=127.0.0.1\nport={self.tls}\nsslcontext=perf\n")
        open(os.path.join(self.dir, "regfile.conf"), "w").write(regfile)
        if routes is not None:
            open(os.path.join(self.dir, "regexroute.conf"), "w").write(routes)
        self.log = open(os.path.join(self.dir, "gateway.log"), "w")
        self.p = subprocess.Popen([GW, "run", "--config", self.dir], stdout=self.log,
                                  stderr=subprocess.STDOUT, env={**os.environ, "SMPPGW_LOG": "warn"})
        t0 = time.time()
        while time.time() - t0 < 20:
            if self.p.poll() is not None:
                raise RuntimeError("smppgw exited: " + open(self.log.name).read()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.plain), timeout=0.2).close(); break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.3)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def load(port, *args, bound=300):
    """Runs smpp-load; returns (its JSON, its own CPU seconds)."""
    cmd = [LOAD, "--target", f"127.0.0.1:{port}", "--json", *map(str, args)]
    t0 = os.times()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=bound)
    t1 = os.times()
    own = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if not line:
        raise RuntimeError(f"smpp-load gave no JSON: {out.stdout[-1000:]} {out.stderr[-1000:]}")
    return json.loads(line[-1]), own


def measured(gw, *args):
    c0 = cpu_seconds(gw.p.pid)
    r, own = load(*args)
    server = cpu_seconds(gw.p.pid) - c0
    r["server_cpu_s_per_m"] = server / max(r["acked"], 1) * 1e6
    r["load_cpu_s_per_m"] = own / max(r["acked"], 1) * 1e6
    return r


def tls(a):
    gw = Gateway()
    try:
        # A first run warms the gateway up (its first connections grow buffers and tables);
        # then plain and TLS alternate, twice each, and the better of each pair counts.
        load(gw.plain, "--binds", 4, "--window", 64, "--count", max(a.count // 5, 10_000))
        runs = {"plain": [], "tls": []}
        for _ in range(2):
            runs["plain"].append(measured(gw, gw.plain, "--binds", 4, "--window", 64, "--count", a.count))
            runs["tls"].append(measured(gw, gw.tls, "--tls", "--binds", 4, "--window", 64, "--count", a.count))
    finally:
        gw.stop()
    plain = max(runs["plain"], key=lambda r: r["msg_per_s"])
    over = max(runs["tls"], key=lambda r: r["msg_per_s"])
    print(f"tls: {over['msg_per_s']:,.0f} msg/s over TLS against {plain['msg_per_s']:,.0f} plain "
          f"({over['msg_per_s'] / plain['msg_per_s']:.2f}x); CPU {over['server_cpu_s_per_m']:.2f} "
          f"against {plain['server_cpu_s_per_m']:.2f} s per million "
          f"({over['server_cpu_s_per_m'] / max(plain['server_cpu_s_per_m'], 1e-9):.2f}x); "
          f"p99 {over['p99_ms']:.2f} ms against {plain['p99_ms']:.2f} ms (better of two runs each)")
    return {"plain": plain, "tls": over}


def active(a):
    gw = Gateway()
    try:
        count = a.rate * a.seconds
        r = measured(gw, gw.plain, "--binds", 1000, "--window", 8, "--rate", a.rate,
                     "--count", count, "--threads", 2)
    finally:
        gw.stop()
    held = r["msg_per_s"] >= 0.95 * a.rate
    print(f"active: 1,000 binds at {a.rate:,} msg/s asked: {r['msg_per_s']:,.0f} msg/s "
          f"({'held' if held else 'NOT held'}), latency p50 {r['p50_ms']:.2f} ms, p99 "
          f"{r['p99_ms']:.2f} ms, p99.9 {r['p999_ms']:.2f} ms; CPU {r['server_cpu_s_per_m']:.2f} s per million")
    r["rate_asked"] = a.rate
    r["rate_held"] = held
    return r


def drain(port, system_id, password, expect, bound=120):
    """Binds a receiver and acknowledges deliver_sm until `expect` came (or `bound` seconds
    passed); returns (delivered, seconds from the bind to the last one)."""
    import struct
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = system_id.encode() + b"\0" + password.encode() + b"\0" + b"\0" + bytes([0x34, 0, 0]) + b"\0"
    s.sendall(struct.pack(">IIII", 16 + len(body), 0x00000001, 0, 1) + body)
    t0, last, got, buf = time.time(), time.time(), 0, b""
    s.settimeout(1.0)
    while got < expect and time.time() - t0 < bound:
        try:
            data = s.recv(1 << 20)
        except socket.timeout:
            continue
        if not data:
            break
        buf += data
        out, at = [], 0
        while len(buf) - at >= 16:
            n, cmd, _status, seq = struct.unpack_from(">IIII", buf, at)
            if n < 16 or len(buf) - at < n:
                break
            if cmd == 0x00000005:
                got += 1
                last = time.time()
                out.append(struct.pack(">IIII", 17, 0x80000005, 0, seq) + b"\0")
            elif cmd == 0x00000015:
                out.append(struct.pack(">IIII", 16, 0x80000015, 0, seq))
            elif cmd == 0x80000001 and _status != 0:
                raise RuntimeError(f"bind_receiver refused: 0x{_status:08X}")
            at += n
        buf = buf[at:]
        if out:
            s.sendall(b"".join(out))
    s.close()
    return got, last - t0


def held(a):
    regfile = "[demo]\npassword=demo\n\n[rx1]\npassword=rx1\n"
    # The defaults but for the queue limit: a queue of a target that is down keeps the bodies
    # of its first messages in memory and parks the rest (their records in the log).
    gw = Gateway(general="queue_limit=1000000",
                 routes="[default]\n.*=smppserver/rx1\n", regfile=regfile)
    try:
        time.sleep(0.5)
        base = rss_kib(gw.p.pid)
        r, _ = load(gw.plain, "--binds", 4, "--window", 64, "--count", a.held)
        time.sleep(2)
        after = rss_kib(gw.p.pid)
        per = (after - base) * 1024 / max(r["acked"], 1)
        print(f"held: {r['acked']:,} messages held for a receiver that is not bound; RSS "
              f"{base / 1024:.1f} MiB before, {after / 1024:.1f} MiB after: {per:.0f} octets per "
              f"held message (goal: under 256)")
        # The receiver binds: every held message comes out, read back from the log.
        got, secs = drain(gw.plain, "rx1", "rx1", r["acked"])
        time.sleep(2)
        drained = rss_kib(gw.p.pid)
        print(f"held: rx1 bound and received {got:,} of {r['acked']:,} in {secs:.2f} s "
              f"({got / max(secs, 1e-9):,.0f} msg/s); RSS {drained / 1024:.1f} MiB after")
    finally:
        gw.stop()
    return {"held": r["acked"], "rss_before_kib": base, "rss_after_kib": after,
            "octets_per_held": per, "goal_octets": 256, "drained": got,
            "drain_s": secs, "rss_drained_kib": drained}


def loadgen(a):
    gw = Gateway()
    try:
        out = {}
        for shape in ("batched", "each"):
            extra = ["--write-each"] if shape == "each" else []
            r = measured(gw, gw.plain, "--binds", 4, "--window", 64, "--count", a.count, *extra)
            out[shape] = r
            print(f"loadgen ({shape}): {r['msg_per_s']:,.0f} msg/s; smpp-load {r['load_cpu_s_per_m']:.2f} "
                  f"CPU s per million, the gateway {r['server_cpu_s_per_m']:.2f} "
                  f"(generator/server {r['load_cpu_s_per_m'] / max(r['server_cpu_s_per_m'], 1e-9):.2f})")
    finally:
        gw.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="tls,active,held,loadgen")
    ap.add_argument("--count", type=int, default=500_000)
    ap.add_argument("--held", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=20_000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args()
    results, failed = {}, False
    for name in a.only.split(","):
        try:
            results[name] = {"tls": tls, "active": active, "held": held, "loadgen": loadgen}[name](a)
        except Exception as e:  # one scenario failing does not hide the others
            print(f"{name}: failed: {e}", file=sys.stderr)
            failed = True
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
