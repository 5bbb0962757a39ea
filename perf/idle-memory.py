#!/usr/bin/env python3
"""Resident memory of smppgw with N bound, idle sessions (default 10,000).

Starts target/release/smppgw on a free port, binds N transceivers as fast as it can, waits,
and prints the gateway's RSS before and after, and per session. Goal: under 100 MB at 10,000.

usage: perf/idle-memory.py [--sessions 10000] [--shards auto]
"""
import argparse, os, resource, shutil, signal, socket, struct, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GW = os.path.join(ROOT, "target/release/smppgw")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--shards", default="auto")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    d = tempfile.mkdtemp(prefix="smppgw-idle-")
    open(os.path.join(d, "ysmpp.conf"), "w").write(
        f"[general]\nshards={a.shards}\nmax_connections={a.sessions + 100}\n\n[listenerserver plain]\naddr=127.0.0.1\nport={port}\n")
    open(os.path.join(d, "regfile.conf"), "w").write("[demo]\npassword=demo\n")
    p = subprocess.Popen([GW, "run", "--config", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "SMPPGW_LOG": "warn"})
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        base = rss_kib(p.pid)
        body = b"demo\0demo\0\0\x34\0\0\0"
        bind = struct.pack(">IIII", 16 + len(body), 9, 0, 1) + body
        socks = []
        t0 = time.time()
        for i in range(a.sessions):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(bind)
            socks.append(c)
        ok = 0
        for c in socks:
            c.settimeout(10)
            hdr = b""
            while len(hdr) < 16:
                chunk = c.recv(16 - len(hdr))
                if not chunk:
                    break
                hdr += chunk
            if len(hdr) == 16:
                length, cid, status, seq = struct.unpack(">IIII", hdr)
                rest = length - 16
                while rest > 0:
                    rest -= len(c.recv(rest))
                ok += status == 0
        bound_in = time.time() - t0
        time.sleep(2)
        after = rss_kib(p.pid)
        per = (after - base) * 1024 / max(ok, 1)
        print(f"idle sessions: {ok} of {a.sessions} bound in {bound_in:.1f} s")
        print(f"gateway RSS: {base / 1024:.1f} MiB before, {after / 1024:.1f} MiB with the sessions bound "
              f"({per / 1024:.2f} KiB per session); goal: under 100 MB")
        for c in socks:
            c.close()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
