#!/usr/bin/env python3
"""Smoke test: bind_transceiver, one submit_sm with registered_delivery=1, expect
submit_sm_resp status 0 and a deliver_sm receipt, ack it, unbind. Usage: smoke_test.py HOST:PORT"""
import socket, struct, sys

host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
seq = 0


def cstr(v):
    return v.encode() + b"\0"


def send(cmd, body, status=0, seq_no=None):
    global seq
    if seq_no is None:
        seq += 1
        seq_no = seq
    s.sendall(struct.pack(">IIII", 16 + len(body), cmd, status, seq_no) + body)
    return seq_no


def recv_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def recv():
    length, cmd, status, seq_no = struct.unpack(">IIII", recv_exact(16))
    return cmd, status, seq_no, recv_exact(length - 16)


def tlvs(data):
    out = {}
    while len(data) >= 4:
        tag, ln = struct.unpack(">HH", data[:4])
        out[tag] = data[4 : 4 + ln]
        data = data[4 + ln :]
    return out


# bind_transceiver: system_id, password, system_type, interface_version, ton, npi, range
send(0x00000009, cstr("bench") + cstr("secret") + cstr("") + bytes([0x34, 0, 0]) + cstr(""))
cmd, status, _, body = recv()
system_id = body.split(b"\0")[0].decode()
print(f"bind_transceiver_resp cmd=0x{cmd:08x} status={status} system_id={system_id}")
assert cmd == 0x80000009 and status == 0

text = b"hello"
submit = (cstr("") + bytes([1, 1]) + cstr("31600000001") + bytes([1, 1]) + cstr("31600000002")
          + bytes([0, 0, 0]) + cstr("") + cstr("") + bytes([1, 0, 0, 0, len(text)]) + text)
sub_seq = send(0x00000004, submit)

message_id = None
receipt = None
while message_id is None or receipt is None:
    cmd, status, seq_no, body = recv()
    if cmd == 0x80000004:
        assert seq_no == sub_seq and status == 0, (seq_no, status)
        message_id = body.split(b"\0")[0].decode()
        print(f"submit_sm_resp status={status} message_id={message_id}"
              f" (before receipt: {receipt is None})")
    elif cmd == 0x00000005:
        off = 0
        off = body.index(b"\0", off) + 1                  # service_type
        off += 2; src_end = body.index(b"\0", off); src = body[off:src_end].decode(); off = src_end + 1
        off += 2; dst_end = body.index(b"\0", off); dst = body[off:dst_end].decode(); off = dst_end + 1
        esm_class = body[off]; off += 3                   # esm_class, protocol_id, priority
        off = body.index(b"\0", off) + 1                  # schedule_delivery_time
        off = body.index(b"\0", off) + 1                  # validity_period
        off += 4                                          # reg_delivery, replace, dcs, default_msg_id
        sm_len = body[off]; off += 1
        sm = body[off : off + sm_len].decode(); off += sm_len
        t = tlvs(body[off:])
        receipt = dict(src=src, dst=dst, esm_class=esm_class, sm=sm,
                       receipted_message_id=t.get(0x001E), message_state=t.get(0x0427))
        print(f"deliver_sm seq={seq_no} esm_class=0x{esm_class:02x} src={src} dst={dst}")
        print(f"  short_message: {sm}")
        print(f"  receipted_message_id={t.get(0x001E)!r} message_state={t.get(0x0427)!r}")
        send(0x80000005, b"\0", seq_no=seq_no)  # deliver_sm_resp
    else:
        print(f"other PDU cmd=0x{cmd:08x} status={status}")

assert receipt["esm_class"] == 0x04
assert receipt["src"] == "31600000002" and receipt["dst"] == "31600000001"
assert receipt["sm"].startswith(f"id:{message_id} sub:001 dlvrd:001 submit date:")
assert "stat:DELIVRD err:000 text:" in receipt["sm"]
assert receipt["receipted_message_id"] == message_id.encode() + b"\0"
assert receipt["message_state"] == b"\x02"

send(0x00000006, b"")
cmd, status, _, _ = recv()
print(f"unbind_resp cmd=0x{cmd:08x} status={status}")
assert cmd == 0x80000006 and status == 0
s.close()
print("SMOKE TEST OK")
