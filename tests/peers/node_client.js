// An npm `smpp` ESME: binds as transceiver over smpp:// or ssmpp:// (TLS), sends a GSM 7-bit
// message (data_coding 0 given explicitly: the package labels GSM text as 1 otherwise), a UCS2
// message and a two-part message with a concatenation UDH, all asking for receipts, and
// waits for the receipts.
//
// usage: node node_client.js URL SYSTEM_ID PASSWORD
// stdout: JSON {"responses": [message ids], "receipts": [{"id", "text"}], "parts": N}
const smpp = require('smpp');
const [url, systemId, password] = process.argv.slice(2);
const out = { responses: [], receipts: [], parts: 0 };
const submits = [
  { data_coding: 0, short_message: 'Hello from node smpp, GSM 7-bit {ok}' },
  { data_coding: 8, short_message: 'Привет из node smpp (UCS2)' },
  { data_coding: 0, short_message: { udh: Buffer.from([5, 0, 3, 0x42, 2, 1]), message: 'part one of a long message ' } },
  { data_coding: 0, short_message: { udh: Buffer.from([5, 0, 3, 0x42, 2, 2]), message: 'and part two.' } },
];
out.parts = submits.length;

function finish(code) {
  console.log(JSON.stringify(out));
  process.exit(code);
}
setTimeout(() => finish(1), 15000);

const session = smpp.connect({ url, auto_enquire_link_period: 10000 }, () => {
  session.bind_transceiver({ system_id: systemId, password }, (pdu) => {
    if (pdu.command_status !== 0) {
      out.bind_status = pdu.command_status;
      return finish(1);
    }
    for (const s of submits) {
      session.submit_sm({
        source_addr_ton: 1, source_addr: '447700900123',
        dest_addr_ton: 1, destination_addr: '31612345678',
        registered_delivery: 1, ...s,
      }, (resp) => {
        if (resp.command_status === 0) out.responses.push(resp.message_id);
        else out.responses.push('error ' + resp.command_status);
      });
    }
  });
});
session.on('deliver_sm', (pdu) => {
  session.send(pdu.response());
  const text = pdu.short_message && pdu.short_message.message !== undefined ? pdu.short_message.message : String(pdu.short_message);
  out.receipts.push({ id: pdu.receipted_message_id, text, esm_class: pdu.esm_class });
  if (out.receipts.length === submits.length) {
    session.unbind(() => { session.close(); finish(0); });
  }
});
session.on('error', (e) => { out.error = String(e); finish(2); });
