//! The flow's memory bound: bodies of waiting messages dropped beyond `memory_messages` (and
//! beyond the first [`LOAD_AHEAD`] of a target that is down) and read back from the log when
//! their turn comes, when a receipt must quote them, or when their segment is compacted (see
//! the module's overview). A message that waits in a queue or for a retry keeps less than its
//! body: it is parked (see `entry`), its whole record read back with its body.

use super::{append, Action, End, Flow, Log, St, Target};
use crate::ids::MessageId;
use crate::smpp::CommandStatus;
use crate::store::record::{Record, StoredMessage};

/// Messages ahead in a queue whose bodies are read back before their turn.
pub(super) const LOAD_AHEAD: usize = 256;
/// Bodies read back at most per [`Flow::compact`] call.
const COMPACT_LOADS: usize = 4096;
/// Tables of this many slots or fewer are never shrunk; larger ones are when a quarter or
/// less is used (to twice what is used), checked every [`TRIM_EVERY`] ends.
const TRIM_MIN: usize = 4096;
pub(super) const TRIM_EVERY: u64 = 1024;

impl Flow {
    /// Asks for the bodies of the first messages of `target`'s queue that are only on disk,
    /// unless enough are on their way already.
    pub(super) fn load_ahead(&mut self, target: Target) {
        let Some(q) = self.queues.get_mut(&target) else {
            return;
        };
        if q.loading >= LOAD_AHEAD / 2 {
            return;
        }
        let mut asked = 0;
        for id in q.ids.iter().take(LOAD_AHEAD) {
            let Some(e) = self.msgs.get_mut(id) else {
                continue;
            };
            if e.st == St::Queued && e.spilled() && !e.loading {
                e.loading = true;
                e.queue_load = true;
                asked += 1;
                self.actions.push_back(Action::Load {
                    id: *id,
                    at: e.snap,
                });
            }
        }
        q.loading += asked;
    }

    /// Asks for the body of one message (its end needs it, or its segment is compacted).
    pub(super) fn load(&mut self, id: MessageId) {
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        if e.loading || !e.spilled() {
            return;
        }
        e.loading = true;
        self.actions.push_back(Action::Load { id, at: e.snap });
    }

    /// Drops the body of a message that waits, when its snapshot can be read back and more
    /// than `memory_messages` are in memory, or its target is down with more than
    /// [`LOAD_AHEAD`] messages waiting (those wait for a bind that may be hours away; the first
    /// ones keep theirs, to go at once when it comes). A message queued or waiting for a retry
    /// is parked; one waiting for its receipt drops its PDU only (a receipt relayed for it
    /// needs its record at once).
    pub(super) fn spill(&mut self, id: MessageId) {
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        if e.parked() || e.loading || !e.snap.on_disk() {
            return;
        }
        let long_wait = self
            .queues
            .get(&e.target)
            .is_some_and(|q| q.down && q.ids.len() > LOAD_AHEAD);
        if self.resident <= self.policy.memory_messages && !long_wait {
            return;
        }
        let had_body = !e.spilled();
        let parkable = matches!(e.st, St::Queued | St::Later)
            && e.receipt_key.is_none()
            && e.msg().is_some_and(|m| m.forwarded.is_none());
        if parkable {
            e.park(&mut self.names);
        } else if let Some(m) = e.msg_mut() {
            m.pdu = bytes::Bytes::new();
        }
        if had_body {
            self.resident -= 1;
            self.stats.spilled += 1;
        }
    }

    /// Gives back what a drained backlog left: a million messages held for an ESME make
    /// tables of a million slots, which stay that large after they are delivered unless
    /// shrunk.
    pub(super) fn trim(&mut self) {
        fn sparse(len: usize, cap: usize) -> bool {
            cap > TRIM_MIN && len.saturating_mul(4) < cap
        }
        if sparse(self.msgs.len(), self.msgs.capacity()) {
            self.msgs.shrink_to(self.msgs.len() * 2);
        }
        if sparse(self.receipts.len(), self.receipts.capacity()) {
            self.receipts.shrink_to(self.receipts.len() * 2);
        }
        self.prune_timers();
        if sparse(self.timers.len(), self.timers.capacity()) {
            self.timers.shrink_to(self.timers.len() * 2);
        }
        for q in self.queues.values_mut() {
            if sparse(q.ids.len(), q.ids.capacity()) {
                q.ids.shrink_to(q.ids.len() * 2);
            }
        }
    }

    /// Whether message `id` waits for its body (a read-back that fails for a message that
    /// ended meanwhile is nothing to report).
    pub fn is_loading(&self, id: MessageId) -> bool {
        self.msgs.get(&id).is_some_and(|e| e.loading)
    }

    /// The record of message `id` read back from the log, its latest snapshot (`None`: it
    /// could not be read; the message ends undeliverable, and the caller says why).
    pub fn loaded(&mut self, log: &dyn Log, id: MessageId, snap: Option<StoredMessage>, now: u64) {
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        if !e.loading {
            return;
        }
        e.loading = false;
        let target = e.target;
        if std::mem::take(&mut e.queue_load) {
            if let Some(q) = self.queues.get_mut(&target) {
                q.loading = q.loading.saturating_sub(1);
            }
        }
        let Some(snap) = snap.filter(|m| !m.pdu.is_empty() && m.id == id) else {
            self.stats.unreadable += 1;
            // Nothing to send and nothing to quote: it ends here, without a receipt.
            if let Some(e) = self.msgs.get_mut(&id) {
                e.no_receipt();
                e.unpark(id, None, &self.names);
                e.st = St::Later;
            }
            self.finish(log, id, End::LOST, CommandStatus::RSYSERR, None, now);
            // The queue goes on past it.
            return self.pull(target, now);
        };
        e.unpark(id, Some(snap), &self.names);
        self.resident += 1;
        self.stats.loaded += 1;
        let compacted = std::mem::take(&mut e.compact_on_load);
        if compacted {
            self.snapshot_again(log, id);
        }
        let Some(e) = self.msgs.get(&id) else {
            return;
        };
        match e.st {
            St::Finishing(end, status) => self.finish(log, id, end, status, None, now),
            St::Queued => {
                // Behind a target that went down meanwhile, it waits on disk again.
                if self.is_down(target) {
                    self.spill(id);
                }
            }
            St::Later | St::AwaitingReceipt => self.spill(id),
            St::Uncommitted | St::InFlight => {}
        }
        // Whatever the body was read for, the queue is offered again: its head may be this
        // one, or one that waited behind it.
        self.pull(target, now);
    }

    /// Writes the state of every message whose latest snapshot is in segment `seg` again, so
    /// that `seg` holds nothing live and can be deleted. Messages whose body is only on disk
    /// are read back first (at most a few thousand per call): call again until
    /// [`Flow::live_in`] says `seg` is empty.
    pub fn compact(&mut self, log: &dyn Log, seg: u64) {
        let ids: Vec<MessageId> = self
            .msgs
            .iter()
            .filter(|(_, e)| e.snap.seg == seg)
            .map(|(id, _)| *id)
            .collect();
        let mut loads = 0;
        for id in ids {
            let Some(e) = self.msgs.get_mut(&id) else {
                continue;
            };
            if !e.spilled() {
                self.snapshot_again(log, id);
                continue;
            }
            if e.compact_on_load {
                continue;
            }
            if loads < COMPACT_LOADS {
                loads += 1;
                e.compact_on_load = true;
                if e.loading {
                    continue;
                }
                self.load(id);
            }
        }
    }

    /// Writes a message's whole state again at the end of the log (its old snapshot's
    /// segment no longer keeps it).
    pub(super) fn snapshot_again(&mut self, log: &dyn Log, id: MessageId) {
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        // (Read back first when it was parked.)
        let Some(m) = e.msg() else {
            return;
        };
        let (_, new) = append(&mut self.last_lsn, log, &Record::Message(m.clone()));
        let old = std::mem::replace(&mut e.snap, new);
        *self.seg_live.entry(new.seg).or_default() += 1;
        if let Some(n) = self.seg_live.get_mut(&old.seg) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.seg_live.remove(&old.seg);
            }
        }
    }
}
