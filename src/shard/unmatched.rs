//! Receipts that match no message, remembered by when they were first seen.
//!
//! A receipt can come before the gateway knows its message's upstream id: the upstream sends
//! it before its submit_sm_resp is handled, or the gateway restarted and is still bringing
//! back its messages, or the submit_sm_resp was lost and the message went again under a new
//! id. Such a receipt is refused with ESME_RX_T_APPN, and the upstream delivers it again
//! later, until it matches or `unmatched_receipt_wait` has passed since it was first seen;
//! only then is it answered ESME_ROK and dropped. The memory is bounded: past [`LIMIT`]
//! receipts the oldest are forgotten (seen again, they wait anew).

use std::collections::VecDeque;

use hashbrown::HashMap;

use crate::ids::LinkId;
use crate::smpp::receipt::IdKey;

/// Receipts remembered at most per shard.
pub const LIMIT: usize = 100_000;
/// A receipt not seen again this long after its wait has passed is forgotten.
const FORGET_AFTER_MS: u64 = 600_000;

/// What to do with a receipt that matched no message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Refuse it for now (ESME_RX_T_APPN); `first` says whether this is its first sighting.
    Defer { first: bool },
    /// Answer it ESME_ROK and drop it: it has waited since `since_ms`.
    Drop { since_ms: u64 },
}

/// First sightings of unmatched receipts, by link and id.
#[derive(Default)]
pub struct Unmatched {
    first: HashMap<(LinkId, IdKey), u64>,
    /// Sightings in time order, for expiry and the bound (entries whose key was forgotten
    /// or seen again later are skipped).
    order: VecDeque<(u64, LinkId, IdKey)>,
}

impl Unmatched {
    /// A receipt of `link` with id `key` matched no message at `now_ms`: deferred while it is
    /// younger than `wait_ms`, else dropped (and forgotten).
    pub fn verdict(&mut self, link: LinkId, key: &IdKey, now_ms: u64, wait_ms: u64) -> Verdict {
        self.expire(now_ms, wait_ms);
        let k = (link, key.clone());
        match self.first.get(&k) {
            Some(&since) if now_ms.saturating_sub(since) >= wait_ms => {
                self.first.remove(&k);
                Verdict::Drop { since_ms: since }
            }
            Some(_) => Verdict::Defer { first: false },
            None if wait_ms == 0 => Verdict::Drop { since_ms: now_ms },
            None => {
                while self.first.len() >= LIMIT {
                    let Some((t, l, old)) = self.order.pop_front() else {
                        break;
                    };
                    let key = (l, old);
                    if self.first.get(&key) == Some(&t) {
                        self.first.remove(&key);
                    }
                }
                self.first.insert(k.clone(), now_ms);
                self.order.push_back((now_ms, k.0, k.1));
                Verdict::Defer { first: true }
            }
        }
    }

    /// A receipt matched its message at last: forgotten.
    pub fn matched(&mut self, link: LinkId, key: &IdKey) {
        if !self.first.is_empty() {
            self.first.remove(&(link, key.clone()));
        }
    }

    /// Receipts remembered now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.first.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Forgets sightings older than the wait and [`FORGET_AFTER_MS`] more (the upstream
    /// stopped sending them), and the oldest sightings past the bound (matched ones leave
    /// theirs behind).
    fn expire(&mut self, now_ms: u64, wait_ms: u64) {
        let horizon = now_ms.saturating_sub(wait_ms.saturating_add(FORGET_AFTER_MS));
        while let Some(&(t, _, _)) = self.order.front() {
            if t >= horizon && self.order.len() <= 2 * LIMIT {
                break;
            }
            let Some((t, l, key)) = self.order.pop_front() else {
                break;
            };
            let key = (l, key);
            if self.first.get(&key) == Some(&t) {
                self.first.remove(&key);
            }
        }
        if self.first.is_empty() {
            self.order.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::receipt::IdRadix;

    fn key(s: &str) -> IdKey {
        IdKey::new(s.as_bytes(), IdRadix::Hex)
    }

    #[test]
    fn a_receipt_is_deferred_until_its_wait_has_passed_then_dropped_once() {
        let mut u = Unmatched::default();
        assert_eq!(
            u.verdict(0, &key("a1"), 1_000, 600),
            Verdict::Defer { first: true }
        );
        assert_eq!(
            u.verdict(0, &key("a1"), 1_500, 600),
            Verdict::Defer { first: false }
        );
        // Another link's receipt with the same id is another receipt.
        assert_eq!(
            u.verdict(1, &key("a1"), 1_500, 600),
            Verdict::Defer { first: true }
        );
        assert_eq!(
            u.verdict(0, &key("a1"), 1_600, 600),
            Verdict::Drop { since_ms: 1_000 }
        );
        // Forgotten once dropped: seen again, it waits anew.
        assert_eq!(
            u.verdict(0, &key("a1"), 1_700, 600),
            Verdict::Defer { first: true }
        );
    }

    #[test]
    fn a_matched_receipt_is_forgotten() {
        let mut u = Unmatched::default();
        u.verdict(0, &key("b2"), 0, 600);
        u.matched(0, &key("b2"));
        assert!(u.is_empty());
    }

    #[test]
    fn no_wait_drops_at_once() {
        let mut u = Unmatched::default();
        assert_eq!(
            u.verdict(0, &key("c3"), 5, 0),
            Verdict::Drop { since_ms: 5 }
        );
        assert!(u.is_empty());
    }

    #[test]
    fn old_sightings_expire_and_the_memory_is_bounded() {
        let mut u = Unmatched::default();
        let forget = 100 + FORGET_AFTER_MS;
        u.verdict(0, &key("d4"), 0, 100);
        u.verdict(0, &key("e5"), 150, 100);
        // d4 (seen at 0) is older than the wait and the grace after it: forgotten; e5 stays.
        u.verdict(0, &key("f6"), forget + 1, 100);
        assert_eq!(u.len(), 2);
        let again = u.verdict(0, &key("d4"), forget + 1, 100);
        assert_eq!(again, Verdict::Defer { first: true });

        let mut u = Unmatched::default();
        for i in 0..LIMIT + 10 {
            u.verdict(0, &key(&format!("{i:x}")), 1, 1_000);
        }
        assert_eq!(u.len(), LIMIT);
        // The oldest went first.
        assert_eq!(
            u.verdict(0, &key("0"), 2, 1_000),
            Verdict::Defer { first: true }
        );
    }
}
