"""An smpplib ESME that binds as a receiver and collects the deliver_sm it gets (MO).

usage: smpplib_receiver.py HOST PORT SYSTEM_ID PASSWORD COUNT
stdout: JSON {"messages": [{"source", "dest", "text", "esm_class"}]}
"""
import json
import socket
import sys
import time

import smpplib.client

host, port, system_id, password, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
client = smpplib.client.Client(host, port, allow_unknown_opt_params=True, timeout=1)
messages = []


def received(pdu):
    messages.append({
        "source": pdu.source_addr.decode(),
        "dest": pdu.destination_addr.decode(),
        "text": pdu.short_message.decode("latin-1"),
        "esm_class": pdu.esm_class,
    })


client.set_message_received_handler(received)
client.connect()
client.bind_receiver(system_id=system_id, password=password)
print("bound", file=sys.stderr, flush=True)
deadline = time.time() + 20
while len(messages) < count and time.time() < deadline:
    try:
        client.read_once()
    except (socket.timeout, smpplib.exceptions.ConnectionError):
        pass
client.unbind()
client.disconnect()
print(json.dumps({"messages": messages}))
