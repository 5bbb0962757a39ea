//! The request window: our requests that the peer has not answered yet.
//!
//! Keyed by sequence number, each with the caller's tag and a deadline. Deadlines are
//! `now + response_timeout` with one timeout per session, so they arrive in order; an
//! insertion-ordered queue therefore yields the earliest deadline at its front. Answered
//! requests leave the map at once and the queue lazily; the queue is compacted whenever it
//! holds more than twice the live entries, so memory stays bounded by the window.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use super::CommandId;

/// What a pending request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// An application request; its answer is an event carrying the tag.
    App(u64),
    /// The session's own bind.
    Bind,
    /// The session's own unbind.
    Unbind,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub command_id: CommandId,
    pub purpose: Purpose,
    pub deadline: Instant,
}

/// Sequence numbers are our own and dense: a multiplicative hash is enough.
#[derive(Default)]
pub(crate) struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) struct Window {
    pending: HashMap<u32, Pending, BuildHasherDefault<SeqHasher>>,
    order: VecDeque<(Instant, u32)>,
    /// Application requests in flight (the bind and unbind do not count).
    app: usize,
}

impl Window {
    /// An empty window; it allocates when the first request goes out.
    pub fn new() -> Window {
        Window {
            pending: HashMap::default(),
            order: VecDeque::new(),
            app: 0,
        }
    }

    pub fn app_in_flight(&self) -> usize {
        self.app
    }

    pub fn contains_purpose(&self, purpose: Purpose) -> bool {
        self.pending.values().any(|p| p.purpose == purpose)
    }

    pub fn contains(&self, seq: u32) -> bool {
        self.pending.contains_key(&seq)
    }

    pub fn insert(&mut self, seq: u32, p: Pending) {
        if matches!(p.purpose, Purpose::App(_)) {
            self.app += 1;
        }
        self.pending.insert(seq, p);
        self.order.push_back((p.deadline, seq));
        if self.order.len() > 2 * self.pending.len() + 32 {
            let pending = &self.pending;
            self.order
                .retain(|(d, s)| pending.get(s).is_some_and(|p| p.deadline == *d));
        }
    }

    /// Removes the request a response answers: same sequence number, and the response's id
    /// matches the request's (generic_nack answers anything).
    pub fn take(&mut self, seq: u32, response: CommandId) -> Option<Pending> {
        let p = self.pending.get(&seq)?;
        if response != CommandId::GENERIC_NACK && p.command_id != response.request() {
            return None;
        }
        self.remove(seq)
    }

    fn remove(&mut self, seq: u32) -> Option<Pending> {
        let p = self.pending.remove(&seq)?;
        if matches!(p.purpose, Purpose::App(_)) {
            self.app -= 1;
        }
        Some(p)
    }

    fn is_live(&self, entry: &(Instant, u32)) -> bool {
        self.pending
            .get(&entry.1)
            .is_some_and(|p| p.deadline == entry.0)
    }

    /// The earliest deadline of a pending request.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(front) = self.order.front() {
            if self.is_live(front) {
                return Some(front.0);
            }
            self.order.pop_front();
        }
        None
    }

    /// Removes and returns one request whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(u32, Pending)> {
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        let (_, seq) = self.order.pop_front()?;
        self.remove(seq).map(|p| (seq, p))
    }

    /// Removes every pending request (the session is closing).
    pub fn drain(&mut self) -> impl Iterator<Item = (u32, Pending)> + '_ {
        self.app = 0;
        let mut all: Vec<(u32, Pending)> = self.pending.drain().collect();
        all.sort_by_key(|(_, p)| p.deadline);
        self.order.clear();
        all.into_iter()
    }
}
