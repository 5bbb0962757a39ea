//! Small identifiers every layer shares: the gateway's message id and the indexes that name a
//! client link or an account without a string lookup on the data path.
//!
//! A [`MessageId`] is what an ESME gets in submit_sm_resp and finds again in its receipts (as
//! 20 lower-case hex digits), what route rules see as `billid`, and the key of a message in the
//! message log. It is built from the second the shard's numbering started, the shard that gave
//! it and a counter, so ids are unique across shards and across restarts (a restart numbers
//! from a later second than any id its log holds).

use std::fmt;

/// Octets of a message id written out (hex digits).
pub const MESSAGE_ID_LEN: usize = 20;

/// Each octet's two lower-case hex digits.
static HEX_PAIRS: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [digits[i >> 4], digits[i & 0xF]];
        i += 1;
    }
    t
};

/// A gateway message id: 32 bits of seconds, 8 bits of shard, 40 bits of counter.
///
/// Kept as two 64-bit words, high first (so the derived order is the number's), not as a
/// `u128`: a `u128` is aligned to 16 octets, and every table the flow keys by id (one entry per
/// message waiting, a timer, a queue slot) would pad to it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageId([u64; 2]);

impl MessageId {
    /// The id `counter` of a numbering that `shard` started at `epoch_secs`.
    pub const fn new(epoch_secs: u32, shard: u8, counter: u64) -> MessageId {
        MessageId::of(
            (epoch_secs as u128) << 48 | (shard as u128) << 40 | (counter as u128 & 0xFF_FFFF_FFFF),
        )
    }

    const fn of(v: u128) -> MessageId {
        MessageId([(v >> 64) as u64, v as u64])
    }

    const fn value(self) -> u128 {
        (self.0[0] as u128) << 64 | self.0[1] as u128
    }

    /// The 80-bit value (for the message log).
    pub const fn to_u128(self) -> u128 {
        self.value()
    }

    /// From the message log's 80-bit value (higher bits are dropped).
    pub const fn from_u128(v: u128) -> MessageId {
        MessageId::of(v & ((1u128 << 80) - 1))
    }

    /// The second the numbering started (the high part).
    pub const fn epoch_secs(self) -> u32 {
        (self.value() >> 48) as u32
    }

    /// The shard that gave the id.
    pub const fn shard(self) -> u8 {
        (self.value() >> 40) as u8
    }

    pub const fn counter(self) -> u64 {
        (self.value() & 0xFF_FFFF_FFFF) as u64
    }

    /// The id as the ESME sees it: 20 lower-case hex digits.
    pub fn to_hex(self) -> [u8; MESSAGE_ID_LEN] {
        // Its 10 octets, two digits each (written on every answer and every CDR line).
        let octets = self.value().to_be_bytes();
        let mut out = [0u8; MESSAGE_ID_LEN];
        for (pair, &o) in out
            .chunks_exact_mut(2)
            .zip(&octets[16 - MESSAGE_ID_LEN / 2..])
        {
            pair.copy_from_slice(&HEX_PAIRS[o as usize]);
        }
        out
    }

    /// Reads 20 hex digits (either case); `None` for anything else.
    pub fn parse_hex(s: &[u8]) -> Option<MessageId> {
        if s.len() != MESSAGE_ID_LEN {
            return None;
        }
        let mut v: u128 = 0;
        for &c in s {
            let d = (c as char).to_digit(16)?;
            v = v << 4 | d as u128;
        }
        Some(MessageId::of(v))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        f.write_str(std::str::from_utf8(&hex).unwrap_or("?"))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A client link: its index in `[smpp-client] clients=` order.
pub type LinkId = usize;

/// An ESME account: its index in the gateway's account table (regfile.conf order, then the
/// accounts the simulator makes on first bind).
pub type AccountId = usize;

/// An HTTP endpoint (scheme, host, port): its index in the gateway's table of them.
pub type HttpId = usize;

/// A data shard: its index in the executor pool.
pub type ShardId = usize;

/// A name that lives as long as the process (an account's or a link's `smppserver/ID`,
/// `smppclient/ID`), as `Bytes` whose clones and drops count nothing: every message and CDR leg
/// carries one, and a shared count would be a cache line written by every core per message.
/// Made once per account or link (reloads keep the ones they had).
pub fn static_name(name: String) -> bytes::Bytes {
    bytes::Bytes::from_static(Box::leak(name.into_bytes().into_boxed_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_form_round_trips_and_keeps_its_parts() {
        let id = MessageId::new(0x6751_2f00, 3, 0x12_3456_789A);
        assert_eq!(&id.to_hex(), b"67512f0003123456789a");
        assert_eq!(MessageId::parse_hex(b"67512F0003123456789A"), Some(id));
        assert_eq!(id.epoch_secs(), 0x6751_2f00);
        assert_eq!(id.shard(), 3);
        assert_eq!(id.counter(), 0x12_3456_789A);
        assert_eq!(MessageId::from_u128(id.to_u128()), id);
        assert_eq!(MessageId::parse_hex(b"67512f0003123456789"), None);
        assert_eq!(MessageId::parse_hex(b"67512f0003123456789g"), None);
    }

    #[test]
    fn ids_order_by_time_then_shard_then_counter() {
        assert!(MessageId::new(2, 0, 0) > MessageId::new(1, 255, 0xFF_FFFF_FFFF));
        assert!(MessageId::new(1, 1, 0) > MessageId::new(1, 0, 5));
    }
}
