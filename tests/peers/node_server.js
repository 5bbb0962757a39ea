// An upstream SMSC built on the npm `smpp` package (0.6.0-rc.4), for the gateway to bind to
// as an ESME; plain TCP, or TLS when --tls-cert and --tls-key are given.
//
// usage: node node_server.js --port N [--msgid hex|decimal] [--receipts] [--record FILE]
//                            [--tls-cert FILE --tls-key FILE]
// Resolves `smpp` the usual way: run it with NODE_PATH=target/peers/node/node_modules.
//
// Accepts any bind, answers enquire_link and unbind (unbind_resp, then closes the socket), and
// answers each submit_sm with a counter as message id (20 lowercase hex digits, or decimal).
const fs = require('fs');
const smpp = require('smpp');

function parseArgs(argv) {
  const opts = { port: null, msgid: 'hex', receipts: false, record: null, tlsCert: null, tlsKey: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') opts.port = parseInt(value(), 10);
    else if (a === '--msgid') opts.msgid = value();
    else if (a === '--receipts') opts.receipts = true;
    else if (a === '--record') opts.record = value();
    else if (a === '--tls-cert') opts.tlsCert = value();
    else if (a === '--tls-key') opts.tlsKey = value();
    else usage(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.port)) usage('--port is required');
  if (opts.msgid !== 'hex' && opts.msgid !== 'decimal') usage('--msgid must be hex or decimal');
  if (!opts.tlsCert !== !opts.tlsKey) usage('--tls-cert and --tls-key go together');
  return opts;
}

function usage(msg) {
  console.error(`node_server.js: ${msg}`);
  console.error('usage: node node_server.js --port N [--msgid hex|decimal] [--receipts] [--record FILE] [--tls-cert FILE --tls-key FILE]');
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

// The package hands short_message over already decoded (by data_coding, UDH split off); the
// record wants the raw octets as latin-1, so keep each inbound PDU's bytes next to it.
const fromBuffer = smpp.PDU.prototype.fromBuffer;
smpp.PDU.prototype.fromBuffer = function (buffer) {
  Object.defineProperty(this, 'rawBuffer', { value: buffer, enumerable: false });
  return fromBuffer.call(this, buffer);
};

// short_message octets of a raw submit_sm PDU.
function rawShortMessage(buf) {
  let off = 16;
  const cstr = () => { const end = buf.indexOf(0, off); off = end + 1; };
  cstr(); off += 2; cstr(); off += 2; cstr(); // service_type, source ton/npi/addr, dest ton/npi/addr
  off += 3; cstr(); cstr(); off += 4; // esm_class, protocol_id, priority; times; rd, replace, dcs, default id
  const len = buf[off];
  return buf.subarray(off + 1, off + 1 + len);
}

let counter = 0;
function nextMessageId() {
  counter += 1;
  return opts.msgid === 'hex' ? counter.toString(16).padStart(20, '0') : String(counter);
}

function stamp(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

const bound = new Set(); // sessions that have bound: session.bindMode, session.systemId

function receiptTarget(session) {
  if (session.bindMode === 'transceiver') return session;
  for (const other of bound) {
    if (other.bindMode === 'receiver' && other.systemId === session.systemId && !other.closed) return other;
  }
  return null;
}

function onSession(session) {
  session.on('error', (e) => console.error(`session error: ${e.message}`));
  session.on('close', () => bound.delete(session));

  const onBind = (mode) => (pdu) => {
    session.bindMode = mode;
    session.systemId = pdu.system_id;
    bound.add(session);
    session.send(pdu.response({ system_id: 'NODESMSC' }));
  };
  session.on('bind_transmitter', onBind('transmitter'));
  session.on('bind_receiver', onBind('receiver'));
  session.on('bind_transceiver', onBind('transceiver'));
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    bound.delete(session);
    session.send(pdu.response());
    session.close();
  });
  session.on('unknown', (pdu) => session.send(pdu.response())); // generic_nack

  session.on('submit_sm', (pdu) => {
    const messageId = nextMessageId();
    const submitted = new Date();
    const raw = pdu.rawBuffer ? rawShortMessage(pdu.rawBuffer) : Buffer.alloc(0);
    session.send(pdu.response({ message_id: messageId }));
    if (opts.record) {
      fs.appendFileSync(opts.record, JSON.stringify({
        seq: pdu.sequence_number, text: raw.toString('latin1'), id: messageId,
      }) + '\n');
    }
    if (!opts.receipts || ![1, 3].includes(pdu.registered_delivery & 3)) return;
    const target = receiptTarget(session);
    if (!target) return;
    const text = `id:${messageId} sub:001 dlvrd:001 submit date:${stamp(submitted)} ` +
      `done date:${stamp(new Date())} stat:DELIVRD err:000 text:`;
    target.deliver_sm({
      source_addr_ton: pdu.dest_addr_ton, source_addr_npi: pdu.dest_addr_npi,
      source_addr: pdu.destination_addr,
      dest_addr_ton: pdu.source_addr_ton, dest_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.source_addr,
      esm_class: 0x04, data_coding: 0,
      short_message: Buffer.from(text, 'latin1'),
      receipted_message_id: messageId,
      message_state: 2,
    });
  });
}

const serverOptions = {};
if (opts.tlsCert) {
  serverOptions.cert = fs.readFileSync(opts.tlsCert);
  serverOptions.key = fs.readFileSync(opts.tlsKey);
}
const server = smpp.createServer(serverOptions, onSession);
server.on('error', (e) => {
  console.error(`server error: ${e.message}`);
  process.exit(1);
});
if (opts.tlsCert) server.on('tlsClientError', (e) => console.error(`tls client error: ${e.message}`));
server.listen(opts.port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${opts.port}\n`);
});

function shutdown() {
  server.close();
  for (const s of server.sessions.slice()) s.destroy();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
