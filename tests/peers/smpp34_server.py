"""An upstream SMSC built on the `smpp34` PyPI package (1.5.0, a PyO3 binding of the Rust
crate smpp34), for the gateway to bind to as an ESME.

usage: smpp34_server.py --port N [--msgid hex|decimal] [--receipts] [--record FILE]

Accepts any bind (smpp34's server accepts every system_id/password), answers enquire_link
and unbind itself (smpp34 may close the socket without sending unbind_resp: a known quirk,
kept on purpose), and answers each submit_sm with a counter as message id: 20 lowercase hex
digits, or the same counter in decimal.

smpp34's SubmitSmEvent does not expose the PDU's sequence_number, so the script listens on
--port itself and relays the bytes unchanged to smpp34 on a private loopback port, reading
the submit_sm_resp PDUs on their way back to learn (sequence_number, message_id). A --record
line ({"seq", "text", "id"}) is written and the receipt (--receipts) sent only after that
submit_sm_resp has been handed to the client's socket, so a receipt never overtakes its
submit_sm_resp.
"""
import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import sys
import time

import smpp34

SUBMIT_SM_RESP = 0x80000004

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--msgid", choices=["hex", "decimal"], default="hex")
parser.add_argument("--receipts", action="store_true")
parser.add_argument("--record")
args = parser.parse_args()

sessions = {}  # session_id -> smpp34.Esme (bound sessions)
pending = {}  # message id -> details of the accepted submit_sm, until its resp passes
counter = 0
background = set()


def next_message_id():
    global counter
    counter += 1
    return f"{counter:020x}" if args.msgid == "hex" else str(counter)


def spawn(coro):
    task = asyncio.ensure_future(coro)
    background.add(task)
    task.add_done_callback(background.discard)


def receipt_target(session_id):
    esme = sessions.get(session_id)
    if esme is None:
        return None
    if esme.can_receive:  # a transceiver: the receipt goes back on the same session
        return esme
    for other in list(sessions.values()):  # else a receiver bind of the same system_id
        if other.can_receive and other.system_id == esme.system_id:
            return other
    return None


async def send_receipt(sub, message_id):
    esme = receipt_target(sub["session_id"])
    if esme is None:
        return
    now = time.strftime("%y%m%d%H%M", time.gmtime())
    text = (f"id:{message_id} sub:001 dlvrd:001 submit date:{sub['date']} done date:{now} "
            f"stat:DELIVRD err:000 text:")
    try:
        await esme.deliver_sm(
            sub["source_addr"],
            text.encode("latin-1"),
            source_addr=sub["destination_addr"],
            source_addr_ton=sub["dest_addr_ton"],
            source_addr_npi=sub["dest_addr_npi"],
            dest_addr_ton=sub["source_addr_ton"],
            dest_addr_npi=sub["source_addr_npi"],
            esm_class=0x04,
            data_coding=0,
            tlvs=[
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\0"),
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes([2])),
            ],
        )
    except Exception as e:  # the session may be gone by now
        print(f"receipt for {message_id} not delivered: {e}", file=sys.stderr, flush=True)


def on_submit_sm_resp(seq, message_id):
    """Called once a submit_sm_resp has been written to the client's socket."""
    sub = pending.pop(message_id, None)
    if sub is None:
        return
    if args.record:
        with open(args.record, "a", encoding="utf-8") as f:
            f.write(json.dumps({"seq": seq, "text": sub["text"], "id": message_id}) + "\n")
    if args.receipts and sub["registered_delivery"] & 3 in (1, 3):
        spawn(send_receipt(sub, message_id))


async def events(server):
    while True:
        ev = await server.next()
        if isinstance(ev, smpp34.Esme):
            sessions[ev.session_id] = ev
        elif isinstance(ev, smpp34.Unbound):
            sessions.pop(ev.session_id, None)
        elif isinstance(ev, smpp34.SubmitSmEvent):
            message_id = next_message_id()
            pending[message_id] = {
                "session_id": ev.session_id,
                "text": ev.short_message.decode("latin-1"),
                "registered_delivery": ev.registered_delivery,
                "source_addr": ev.source_addr,
                "source_addr_ton": ev.source_addr_ton,
                "source_addr_npi": ev.source_addr_npi,
                "destination_addr": ev.destination_addr,
                "dest_addr_ton": ev.dest_addr_ton,
                "dest_addr_npi": ev.dest_addr_npi,
                "date": time.strftime("%y%m%d%H%M", time.gmtime()),
            }
            ev.accept(message_id)


def submit_sm_resps(buf):
    """Takes complete PDUs off the front of buf; returns [(seq, message_id)] of successful
    submit_sm_resps among them."""
    found = []
    while len(buf) >= 16:
        length, command_id, status, seq = struct.unpack(">IIII", buf[:16])
        if length < 16 or len(buf) < length:
            break
        if command_id == SUBMIT_SM_RESP and status == 0:
            body = bytes(buf[16:length])
            found.append((seq, body.split(b"\0", 1)[0].decode("latin-1")))
        del buf[:length]
    return found


async def relay(client_reader, client_writer, inner_port):
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", inner_port)
    except OSError:
        client_writer.transport.abort()
        return

    async def pump(reader, writer, watch):
        buf = bytearray()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
                if watch:
                    buf += data
                    for seq, message_id in submit_sm_resps(buf):
                        on_submit_sm_resp(seq, message_id)
        except (ConnectionError, OSError):
            client_writer.transport.abort()
            up_writer.transport.abort()

    await asyncio.gather(pump(client_reader, up_writer, False), pump(up_reader, client_writer, True))
    for w in (client_writer, up_writer):
        w.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main():
    for attempt in range(5):
        inner_port = free_port()
        server = smpp34.Server("127.0.0.1", inner_port, system_id="SMPP34")
        try:
            await server.start()
            break
        except Exception:
            if attempt == 4:
                raise
    event_task = asyncio.ensure_future(events(server))
    front = await asyncio.start_server(
        lambda r, w: relay(r, w, inner_port), "127.0.0.1", args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    await stop.wait()
    front.close()
    event_task.cancel()
    for task in list(background):
        task.cancel()
    await server.stop()
    # Leave without interpreter finalization: tearing down the extension's tokio runtime
    # there segfaulted now and then (seen with a transmitter + receiver pair bound).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


asyncio.run(main())
