"""An smpplib ESME: binds as transceiver, sends a GSM 7-bit message, a UCS2 message and a
long message split with a UDH by smpplib itself, all asking for receipts, and waits for them.

usage: smpplib_client.py HOST PORT SYSTEM_ID PASSWORD
stdout: JSON {"responses": [message ids], "receipts": [{"id", "text"}], "parts": N}
"""
import json
import socket
import sys
import time

import smpplib.client
import smpplib.consts
import smpplib.gsm

host, port, system_id, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
client = smpplib.client.Client(host, port, allow_unknown_opt_params=True, timeout=2)
responses, receipts = [], []
client.set_message_sent_handler(lambda pdu: responses.append(pdu.message_id.decode()))


def received(pdu):
    rid = pdu.receipted_message_id
    receipts.append({
        "id": rid.decode() if isinstance(rid, bytes) else rid,
        "text": pdu.short_message.decode("ascii", "replace"),
        "esm_class": pdu.esm_class,
    })


client.set_message_received_handler(received)
client.connect()
client.bind_transceiver(system_id=system_id, password=password)

parts_sent = 0
for text in ["Hello from smpplib, GSM 7-bit", "Привет из smpplib (UCS2)", "A long message from smpplib. " * 8]:
    parts, coding, esm_class = smpplib.gsm.make_parts(text)
    for part in parts:
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_INTL,
            source_addr="447700900123",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            destination_addr="31612345678",
            short_message=part,
            data_coding=coding,
            esm_class=esm_class,
            registered_delivery=True,
        )
        parts_sent += 1

deadline = time.time() + 15
while (len(receipts) < parts_sent or len(responses) < parts_sent) and time.time() < deadline:
    try:
        client.read_once()
    except (socket.timeout, smpplib.exceptions.ConnectionError):
        pass
client.unbind()
client.disconnect()
print(json.dumps({"responses": responses, "receipts": receipts, "parts": parts_sent}))
