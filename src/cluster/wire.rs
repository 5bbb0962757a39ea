//! What nodes say to each other over NATS, as pure code: subjects, hand-offs, answers,
//! announcements.
//!
//! - `smppgw.CLUSTER.esme.SYSTEM_ID`: hand-offs for an ESME (a request; the nodes that hold
//!   a receiver of it subscribe in the queue group `deliver`, so one of them takes each);
//! - `smppgw.CLUSTER.bound`: a node announces that it holds a receiver of an ESME now
//!   (nodes holding messages for it send them at once).
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
