//! Joining the parts of long messages.
//!
//! Parts are keyed by (source, destination, reference), as 23.040 ties them, and may arrive in
//! any order; a part seen twice is ignored. A message is released complete when its last part
//! arrives, or incomplete (with what did arrive) when its timer runs out or when the memory
//! bound forces the oldest out, so a lost part never holds memory forever and never makes the
//! gateway drop what it has. Time is a parameter, as everywhere in the core.
//!
//! The payloads are opaque `Bytes` (the text of each part without its UDH); decoding is the
//! caller's, because each part may need its own fill bits.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::udh::{Udh, UdhError};
use crate::smpp::tlv::{tag, Tlvs};

/// Which long message a part belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageKey {
    pub source: Bytes,
    pub dest: Bytes,
    pub reference: u16,
}

/// Where a part sits in its message, from the UDH or the SAR TLVs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartInfo {
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
    /// Octets of UDH at the front of the user data (0 with SAR).
    pub udh_len: usize,
}

/// Reads a message's part information: the UDH concatenation element when esm_class has UDHI,
/// otherwise the three SAR TLVs (all three or none, as the spec says). `Ok(None)` for a
/// message that is not a part.
pub fn part_info(
    esm_class: u8,
    user_data: &[u8],
    tlvs: &Tlvs,
) -> Result<Option<PartInfo>, UdhError> {
    if esm_class & 0x40 != 0 {
        let (udh, udh_len) = Udh::parse(user_data)?;
        if let Some(c) = udh.concat() {
            return Ok(Some(PartInfo {
                reference: c.reference,
                total: c.total,
                seq: c.seq,
                udh_len,
            }));
        }
    }
    let sar = (
        tlvs.get_u16(tag::SAR_MSG_REF_NUM),
        tlvs.get_u8(tag::SAR_TOTAL_SEGMENTS),
        tlvs.get_u8(tag::SAR_SEGMENT_SEQNUM),
    );
    Ok(match sar {
        (Some(reference), Some(total), Some(seq)) if total >= 1 && (1..=total).contains(&seq) => {
            Some(PartInfo {
                reference,
                total,
                seq,
                udh_len: 0,
            })
        }
        _ => None,
    })
}

/// What became of a part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The message is whole: its parts in order.
    Complete(Vec<Bytes>),
    /// Stored; more parts are awaited.
    Pending,
    /// This part number was already stored; ignored.
    Duplicate,
    /// total or seq out of range (0, or seq over total); ignored.
    Invalid,
}

/// A message released before all its parts came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incomplete {
    pub key: MessageKey,
    pub total: u8,
    /// The parts that did arrive, by number, in order.
    pub parts: Vec<(u8, Bytes)>,
    pub reason: ReleaseReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseReason {
    /// Its timer ran out.
    Timeout,
    /// The memory bound made room for newer messages.
    MemoryBound,
    /// A part with the same key but another total arrived: the reference was reused.
    Superseded,
}

struct Partial {
    total: u8,
    parts: Vec<Option<Bytes>>,
    have: usize,
    bytes: usize,
    deadline: Instant,
}

/// Holds the parts of unfinished long messages.
pub struct Reassembler {
    timeout: Duration,
    max_bytes: usize,
    pending: HashMap<MessageKey, Partial>,
    /// Keys in arrival order of their first part, with that part's deadline (for expiry and
    /// eviction; stale entries are skipped).
    order: VecDeque<(Instant, MessageKey)>,
    bytes: usize,
    released: VecDeque<Incomplete>,
}

impl Reassembler {
    /// `timeout`: how long the first part waits for the rest. `max_bytes`: payload octets held
    /// at most, across all messages.
    pub fn new(timeout: Duration, max_bytes: usize) -> Reassembler {
        Reassembler {
            timeout,
            max_bytes,
            pending: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            released: VecDeque::new(),
        }
    }

    /// Messages waiting for parts.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Payload octets held.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// Adds one part.
    pub fn insert(
        &mut self,
        key: MessageKey,
        total: u8,
        seq: u8,
        data: Bytes,
        now: Instant,
    ) -> Outcome {
        if total == 0 || seq == 0 || seq > total {
            return Outcome::Invalid;
        }
        if total == 1 {
            return Outcome::Complete(vec![data]);
        }
        if self.pending.get(&key).is_some_and(|p| p.total != total) {
            self.release(&key, ReleaseReason::Superseded);
        }
        let len = data.len();
        let p = self.pending.entry(key.clone()).or_insert_with(|| {
            let deadline = now + self.timeout;
            self.order.push_back((deadline, key.clone()));
            Partial {
                total,
                parts: vec![None; total as usize],
                have: 0,
                bytes: 0,
                deadline,
            }
        });
        let slot = &mut p.parts[seq as usize - 1];
        if slot.is_some() {
            return Outcome::Duplicate;
        }
        *slot = Some(data);
        p.have += 1;
        p.bytes += len;
        self.bytes += len;
        if p.have == p.total as usize {
            let done = self.pending.remove(&key).map(|p| {
                self.bytes -= p.bytes;
                p.parts.into_iter().flatten().collect()
            });
            return Outcome::Complete(done.unwrap_or_default());
        }
        while self.bytes > self.max_bytes {
            let Some(oldest) = self.oldest_key() else {
                break;
            };
            if oldest == key && self.pending.len() == 1 {
                // The only message is the one being built: keep it, the bound is per store.
                break;
            }
            self.release(&oldest, ReleaseReason::MemoryBound);
        }
        Outcome::Pending
    }

    fn oldest_key(&mut self) -> Option<MessageKey> {
        while let Some((deadline, key)) = self.order.front() {
            if self
                .pending
                .get(key)
                .is_some_and(|p| p.deadline == *deadline)
            {
                return Some(key.clone());
            }
            self.order.pop_front();
        }
        None
    }

    fn release(&mut self, key: &MessageKey, reason: ReleaseReason) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes -= p.bytes;
            let parts = p
                .parts
                .into_iter()
                .enumerate()
                .filter_map(|(i, d)| d.map(|d| (i as u8 + 1, d)))
                .collect();
            self.released.push_back(Incomplete {
                key: key.clone(),
                total: p.total,
                parts,
                reason,
            });
        }
    }

    /// When the next incomplete message times out.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.oldest_key()
            .and_then(|k| self.pending.get(&k).map(|p| p.deadline))
    }

    /// Releases every message whose timer has run out by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(key) = self.oldest_key() {
            match self.pending.get(&key) {
                Some(p) if p.deadline <= now => self.release(&key, ReleaseReason::Timeout),
                _ => break,
            }
        }
    }

    /// The next message released incomplete (by timeout, memory bound or supersession).
    pub fn poll_released(&mut self) -> Option<Incomplete> {
        self.released.pop_front()
    }
}
