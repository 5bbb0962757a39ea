//! What nodes say to each other over NATS, as pure code: subjects, hand-offs, answers,
//! announcements.
//!
//! - `smppgw.CLUSTER.esme.SYSTEM_ID`: hand-offs for an ESME (a request; the nodes that hold
//!   a receiver of it subscribe in the queue group `deliver`, so one of them takes each);
//! - `smppgw.CLUSTER.bound`: a node announces that it holds a receiver of an ESME now
//!   (nodes holding messages for it send them at once);
//! - `smppgw.CLUSTER.link.NAME`: hand-offs for an upstream link (the node that holds the
//!   link's lease subscribes, in the same queue group);
//! - `smppgw.CLUSTER.receipt`: a node asks the others about a receipt that matches no message
//!   of its own (every node hears it; the one whose receipt map has it takes it and answers);
//! - the JetStream KV bucket `smppgw_CLUSTER_leases`, key `link.NAME`: which node owns a link's
//!   binds (the value is the node's name; the bucket's max age is the lease).
//!
//! A hand-off is the sending node's name (with its CRC32C) and the message as the message
//! log frames it (length, CRC32C, the `Message` record): a receiver that cannot check it
//! refuses it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::store::record::{encode, read_frame, Record, StoredMessage};

/// Hand-offs start with this (and a version).
const MAGIC: &[u8; 4] = b"SGH1";
/// The CRC salt of a hand-off's frame (not any shard's log).
const SALT: u32 = 0x5347_4831;

/// A system_id as one subject token: itself when it is letters, digits, `-` and `_`; else
/// `=` and its octets in hex (subjects cannot hold spaces, dots, `*` or `>`).
pub fn token(system_id: &[u8]) -> String {
    let plain = !system_id.is_empty()
        && system_id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    if plain {
        String::from_utf8_lossy(system_id).into_owned()
    } else {
        let mut s = String::with_capacity(1 + 2 * system_id.len());
        s.push('=');
        for b in system_id {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// Where hand-offs for `system_id` go.
pub fn esme_subject(cluster: &str, system_id: &[u8]) -> String {
    format!("smppgw.{cluster}.esme.{}", token(system_id))
}

/// Where nodes announce receivers.
pub fn bound_subject(cluster: &str) -> String {
    format!("smppgw.{cluster}.bound")
}

/// Where hand-offs for upstream link `name` go (to the node holding its lease).
pub fn link_subject(cluster: &str, name: &str) -> String {
    format!("smppgw.{cluster}.link.{}", token(name.as_bytes()))
}

/// Where nodes ask each other about receipts.
pub fn receipt_subject(cluster: &str) -> String {
    format!("smppgw.{cluster}.receipt")
}

/// The KV bucket of the cluster's link leases.
pub fn lease_bucket(cluster: &str) -> String {
    format!("smppgw_{cluster}_leases")
}

/// The lease key of link `name` (KV keys take `=` too).
pub fn lease_key(name: &str) -> String {
    format!("link.{}", token(name.as_bytes()))
}

/// Questions about receipts start with this.
const ASK_MAGIC: &[u8; 4] = b"SGR1";

/// A question about a receipt: which node asks, the link it came on, the deliver_sm as
/// received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptAsk {
    pub node: String,
    pub link: String,
    pub pdu: Bytes,
}

/// `[SGR1][node len u16][node][link len u16][link][pdu][CRC32C of all before]`.
pub fn encode_receipt_ask(node: &str, link: &str, pdu: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(12 + node.len() + link.len() + pdu.len());
    out.put_slice(ASK_MAGIC);
    for part in [node.as_bytes(), link.as_bytes()] {
        out.put_u16(part.len().min(u16::MAX as usize) as u16);
        out.put_slice(&part[..part.len().min(u16::MAX as usize)]);
    }
    out.put_slice(pdu);
    let crc = crc32c::crc32c(&out);
    out.put_u32(crc);
    out.freeze()
}

pub fn decode_receipt_ask(b: &Bytes) -> Result<ReceiptAsk, String> {
    if b.len() < 12 || &b[..4] != ASK_MAGIC {
        return Err("not a question about a receipt (SGR1)".into());
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body).to_be_bytes() != crc {
        return Err("its CRC does not match".into());
    }
    let mut at = 4;
    let mut part = || -> Result<String, String> {
        let n = usize::from(u16::from_be_bytes(
            body.get(at..at + 2)
                .ok_or("cut short")?
                .try_into()
                .map_err(|_| "cut short")?,
        ));
        let v = body.get(at + 2..at + 2 + n).ok_or("cut short")?;
        at += 2 + n;
        String::from_utf8(v.to_vec()).map_err(|_| "a name is not UTF-8".to_string())
    };
    let node = part()?;
    let link = part()?;
    Ok(ReceiptAsk {
        node,
        link,
        pdu: b.slice(at..body.len()),
    })
}

/// The queue group of the nodes that take hand-offs.
pub const QUEUE: &str = "deliver";

/// A message from another node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handoff {
    /// The node that sends it (and keeps it until this one has committed it).
    pub node: String,
    /// The message as that node logged it (its id is that node's).
    pub msg: StoredMessage,
}

pub fn encode_handoff(node: &str, msg: &StoredMessage) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + msg.pdu.len());
    out.put_slice(MAGIC);
    let node = &node.as_bytes()[..node.len().min(255)];
    out.put_u8(node.len() as u8);
    out.put_slice(node);
    out.put_u32_le(crc32c::crc32c_append(SALT, node));
    encode(&Record::Message(msg.clone()), SALT, &mut out);
    out.freeze()
}

pub fn decode_handoff(b: &Bytes) -> Result<Handoff, String> {
    let rest = b
        .strip_prefix(MAGIC)
        .ok_or("not a hand-off (no SGH1 header)")?;
    let (&n, rest) = rest.split_first().ok_or("cut short")?;
    let n = n as usize;
    if rest.len() < n + 4 {
        return Err("cut short".into());
    }
    let crc = u32::from_le_bytes([rest[n], rest[n + 1], rest[n + 2], rest[n + 3]]);
    if crc != crc32c::crc32c_append(SALT, &rest[..n]) {
        return Err("the node name is damaged (CRC)".into());
    }
    let node = std::str::from_utf8(&rest[..n])
        .map_err(|_| "the node name is not UTF-8")?
        .to_string();
    let frame = b.slice(MAGIC.len() + 1 + n + 4..);
    match read_frame(&frame, SALT) {
        Some(Record::Message(msg)) => Ok(Handoff { node, msg }),
        Some(_) => Err("the frame holds no message".into()),
        None => Err("the message frame is damaged (length or CRC)".into()),
    }
}

/// A node's answer to a hand-off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// In the receiver's log, durably: it owns the message now.
    Committed,
    /// The receiver has no room now (its queue for the ESME is full): try later.
    Full,
    /// The receiver cannot take it (its log refuses writes, the message does not decode,
    /// the ESME is unknown there): try later, elsewhere.
    Refused(String),
}

impl Answer {
    pub fn encode(&self) -> Bytes {
        match self {
            Answer::Committed => Bytes::from_static(b"ok"),
            Answer::Full => Bytes::from_static(b"full"),
            Answer::Refused(why) => Bytes::from(format!("no {why}")),
        }
    }

    pub fn decode(b: &[u8]) -> Answer {
        match b {
            b"ok" => Answer::Committed,
            b"full" => Answer::Full,
            other => Answer::Refused(
                String::from_utf8_lossy(other.strip_prefix(b"no ").unwrap_or(other)).into_owned(),
            ),
        }
    }
}

/// `node` holds a receiver of `system_id` now.
pub fn encode_bound(node: &str, system_id: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(node.len() + 1 + system_id.len());
    out.put_slice(node.as_bytes());
    out.put_u8(b'\n');
    out.put_slice(system_id);
    out.freeze()
}

pub fn decode_bound(b: &[u8]) -> Option<(&str, &[u8])> {
    let at = memchr::memchr(b'\n', b)?;
    Some((std::str::from_utf8(&b[..at]).ok()?, &b[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_about_a_receipt_round_trips_and_damage_is_refused() {
        let b = encode_receipt_ask("gw-a", "up1", b"\x00\x00\x00\x10pdu");
        let a = decode_receipt_ask(&b).unwrap();
        assert_eq!((a.node.as_str(), a.link.as_str()), ("gw-a", "up1"));
        assert_eq!(&a.pdu[..], b"\x00\x00\x00\x10pdu");
        for i in 0..b.len() * 8 {
            let mut v = b.to_vec();
            v[i / 8] ^= 1 << (i % 8);
            assert!(decode_receipt_ask(&Bytes::from(v)).is_err(), "bit {i}");
        }
        for n in 0..b.len() {
            assert!(decode_receipt_ask(&b.slice(..n)).is_err(), "cut at {n}");
        }
        assert_eq!(link_subject("smsc", "up.1"), "smppgw.smsc.link.=75702e31");
        assert_eq!(lease_key("up1"), "link.up1");
    }
    use crate::ids::MessageId;
    use crate::store::record::Kind;

    fn message() -> StoredMessage {
        StoredMessage {
            id: MessageId::new(1_700_000_000, 1, 42),
            billid: MessageId::new(1_700_000_000, 0, 41),
            kind: Kind::Receipt,
            origin: Bytes::from_static(b"smppclient/up"),
            target: Bytes::from_static(b"smppserver/esme 1"),
            registered_delivery: 1,
            accepted_ms: 1,
            not_before_ms: 0,
            expires_ms: 99,
            retries: 3,
            failures: 0,
            on_backup: false,
            forwarded: None,
            pdu: Bytes::from_static(
                b"\x00\x00\x00\x10\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x01",
            ),
            report_to: Bytes::new(),
        }
    }

    #[test]
    fn a_handoff_comes_back_as_sent_and_damage_is_refused() {
        let b = encode_handoff("node-a", &message());
        let h = decode_handoff(&b).unwrap();
        assert_eq!((h.node.as_str(), &h.msg), ("node-a", &message()));
        for i in 0..b.len() {
            let mut bad = b.to_vec();
            bad[i] ^= 0x10;
            assert!(decode_handoff(&Bytes::from(bad)).is_err(), "flip at {i}");
        }
        for n in 0..b.len() {
            assert!(decode_handoff(&b.slice(..n)).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn subjects_hold_any_system_id_as_one_token() {
        assert_eq!(esme_subject("c", b"esme_1-x"), "smppgw.c.esme.esme_1-x");
        assert_eq!(esme_subject("c", b"a.b *"), "smppgw.c.esme.=612e62202a");
        assert_ne!(token(b"=61"), token(b"a"));
        assert_eq!(
            decode_bound(&encode_bound("n1", b"a.b")),
            Some(("n1", &b"a.b"[..]))
        );
        for a in [
            Answer::Committed,
            Answer::Full,
            Answer::Refused("log full".into()),
        ] {
            assert_eq!(Answer::decode(&a.encode()), a);
        }
    }
}
