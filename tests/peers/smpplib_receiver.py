"""An smpplib ESME that binds as a receiver and collects the deliver_sm it gets (MO).

usage: smpplib_receiver.py HOST PORT SYSTEM_ID PASSWORD COUNT [SECONDS]
stdout: JSON {"messages": [{"source", "dest", "text", "esm_class"}]}, after COUNT messages or
SECONDS (default 20). With COUNT 0 it streams instead: one JSON object per message and line as
each comes, until SECONDS pass or it is killed.
"""
import json
import socket
import sys
import time

import smpplib.client

host, port, system_id, password, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 20.0
stream = count == 0
client = smpplib.client.Client(host, port, allow_unknown_opt_params=True, timeout=1)
messages = []


def received(pdu):
    m = {
        "source": pdu.source_addr.decode(),
        "dest": pdu.destination_addr.decode(),
        "text": pdu.short_message.decode("latin-1"),
        "esm_class": pdu.esm_class,
    }
    if stream:
        print(json.dumps(m), flush=True)
    else:
        messages.append(m)


client.set_message_received_handler(received)
client.connect()
client.bind_receiver(system_id=system_id, password=password)
print("bound", file=sys.stderr, flush=True)
deadline = time.time() + seconds
while (stream or len(messages) < count) and time.time() < deadline:
    try:
        client.read_once()
    except (socket.timeout, smpplib.exceptions.ConnectionError):
        pass
client.unbind()
client.disconnect()
if not stream:
    print(json.dumps({"messages": messages}))
