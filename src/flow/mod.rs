//! A message's life in the gateway, sans-IO: from accepted to final, with retries, failover,
//! validity, receipts, and the message log records that make each step durable.
//!
//! | file | job |
//! |---|---|
//! | `coding` | text between ends that read data_coding 0 differently (account and link `coding`) |
//! | `ends` | how a message ends: its final record, and the receipt it owes (the gateway's or relayed) |
//! | `entry` | what is kept of one message: its whole record, or, parked, the few fields its waiting needs |
//! | `memory` | the memory bound: bodies dropped from memory and read back from the log |
//! | `policy` | retry schedule, failover rules, how an end reads (message_state, TP-Status) |
//! | `receipt` | receipts as PDUs: the gateway's own, and upstream ones read and relayed |
//! | `time` | SMPP times and receipt dates without a clock |
//! | this file | [`Flow`]: one record per message id, its state, its timers, per-target queues, attempts and their results |
//!
//! [`Flow`] is driven like `smpp::Session`: the caller feeds events and the time (Unix
//! milliseconds; the flow never reads a clock) and drains actions.
//!
//! - `accept` a message (appends its record; returns the LSN the originator's answer waits
//!   for), `committed` when the log made LSNs durable (the message is dispatched only then);
//! - `result` of each attempt (accepted by a link, delivered to an ESME, temporary or
//!   permanent error, timeout, target unreachable, receiver without room);
//! - `receipt` from an upstream (matched by the upstream's id, relayed to the originator);
//! - `target_up` when a link binds or an ESME receiver binds (waiting messages go);
//! - `handle_timeout` at `poll_timeout` (retries, scheduled deliveries, expiry, receipts
//!   that never came);
//! - `poll_action`: [`Action::Send`] an attempt, [`Action::Ended`] a message is final,
//!   [`Action::Load`] a body to read back from the log (answered with [`Flow::loaded`]).
//!
//! Memory stays bounded: beyond `policy.memory_messages` bodies, and beyond the first
//! 256 messages (`LOAD_AHEAD`) queued for a target that is down (an ESME that is not bound
//! may stay away for hours), a message that has to wait drops its body. One queued or waiting
//! for a retry or its scheduled time is parked: it keeps ~50 octets (its ids, times, failures;
//! see `entry`) and where its snapshot lies in the log, and its entry is ~136 octets with its
//! key. One forwarded and waiting for its receipt keeps its record without the PDU (a receipt
//! relayed for it needs the record at once). Bodies are read back when their turn comes (a
//! few ahead of the queue's head, so a target that comes up is fed without waiting on each
//! read), when the gateway must quote one in a receipt of its own, and when its segment is
//! compacted. Tables a drained backlog grew are shrunk again.
//!
//! Records are appended through the [`Log`] the caller passes: the message when accepted,
//! each counted failure, the upstream id (the receipt map), the end. A receipt for the
//! originator is itself a message (kind `Receipt`), logged and delivered like any other, so
//! it survives restarts and waits while its ESME is not bound.
//!
//! Per target (a link, an ESME account) messages go in order: while a target is down or has
//! `policy.batch` attempts outstanding, new ones queue behind the waiting ones.

pub mod coding;
mod ends;
mod entry;
mod memory;
pub mod policy;
pub mod receipt;
pub mod time;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use bytes::Bytes;
use hashbrown::HashMap;

pub use policy::{End, Policy};

use crate::ids::{AccountId, HttpId, LinkId, MessageId};
use crate::smpp::receipt::IdKey;
use crate::smpp::{CommandStatus, Pdu, RegisteredDelivery};
use crate::store::record::{Forwarded, Kind, Loc, Record, StoredMessage};
use crate::store::replay::Live;
use crate::text::Charset;
use entry::{Entry, Names};

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Link(LinkId),
    Esme(AccountId),
    /// An HTTP endpoint (scheme, host and port); each message names its own URL there.
    Http(HttpId),
}

/// Where a status report goes when not to its originator ESME: the route rules (a rule for
/// `sms_type=status_report` naming a URL) or the URL its message was submitted with. The
/// shard provides it; the flow stays free of routing and IO.
pub trait ReportRouter {
    /// The target and its name as records write it (the URL) for `report`, the deliver_sm
    /// that reports on `msg`; `None`: the originator.
    fn route(&self, msg: &StoredMessage, report: &Pdu) -> Option<(Target, Bytes)>;
}

/// Where records go: the shard's message log, or a test's list.
pub trait Log {
    /// Appends a record; returns its LSN and where it lies (a zero length: it cannot be read
    /// back, and messages keep their bodies in memory).
    fn append(&self, record: &Record) -> (u64, Loc);
}

/// How an attempt went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A link accepted it: the upstream's id as written, and as the receipt map keys it.
    Accepted {
        upstream_id: Bytes,
        key: IdKey,
    },
    /// Another node of the cluster committed it to its log: that node owns it now (and
    /// delivers it, forwards it, relays its receipt). `node`: its name.
    HandedOver {
        node: Bytes,
    },
    /// The ESME it was for acknowledged it.
    Delivered,
    Temporary(CommandStatus),
    Permanent(CommandStatus),
    /// No answer in time: it may or may not have arrived.
    Timeout,
    /// The target is down: no bound transmitter, no bound receiver.
    Unreachable,
    /// The target is up but has no room now (a receiver's inbox is full).
    NoRoom,
}

/// What the flow asks of its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Attempt a delivery: `pdu` is the stored request (a submit for a link, anything that
    /// becomes a deliver_sm for an ESME). The result comes back through [`Flow::result`].
    Send {
        id: MessageId,
        /// The id its originator knows (a status report's: the message it reports on).
        billid: MessageId,
        kind: Kind,
        target: Target,
        /// An HTTP target's URL, as the record names it (empty for other targets).
        to: Bytes,
        pdu: Bytes,
        /// Where it came from (`smppserver/ID`, `smppclient/ID`): whose coding its text is in.
        origin: Bytes,
    },
    /// A message is final (for the log and counters; its record is appended already).
    /// Read the body of message `id` back from the log, at `at`; hand it to [`Flow::loaded`].
    Load { id: MessageId, at: Loc },
    /// An attempt came back (only with `policy.legs`: for the CDR's attempt leg).
    Attempted {
        id: MessageId,
        billid: MessageId,
        kind: Kind,
        target: Target,
        outcome: &'static str,
        status: Option<CommandStatus>,
        upstream_id: Option<Bytes>,
        /// Milliseconds from the attempt to its outcome.
        latency_ms: u64,
        failures: u16,
        on_backup: bool,
    },
    Ended {
        id: MessageId,
        billid: MessageId,
        kind: Kind,
        /// Where it came from, as records name it (`smppserver/ID`, `smppclient/ID`).
        origin: Bytes,
        target: Option<Target>,
        end: End,
        /// The command_status that decided it (ROK when none did).
        status: CommandStatus,
        failures: u16,
        on_backup: bool,
        /// When it was accepted (Unix ms), and the upstream's id when a link took it.
        accepted_ms: u64,
        upstream_id: Option<Bytes>,
        /// The LSN of its final record and where that record lies: the CDR writer's
        /// checkpoint (a final whose CDR a crash kept from the file is written after replay).
        lsn: u64,
        at: Loc,
    },
}

/// The shard's numbering of message ids.
#[derive(Clone, Copy, Debug)]
pub struct IdGen {
    pub epoch_secs: u32,
    pub shard: u8,
    pub next: u64,
}

impl IdGen {
    pub fn next_id(&mut self) -> MessageId {
        let id = MessageId::new(self.epoch_secs, self.shard, self.next);
        self.next += 1;
        id
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Logged, not yet durable.
    Uncommitted,
    /// In its target's queue.
    Queued,
    InFlight,
    /// Waiting for its next try (or its scheduled time).
    Later,
    /// Forwarded; the upstream's receipt is awaited.
    AwaitingReceipt,
    /// Final, its end known, its body on its way back from the log for the receipt that
    /// quotes it.
    Finishing(End, CommandStatus),
}

#[derive(Default)]
struct Queue {
    ids: VecDeque<MessageId>,
    down: bool,
    in_flight: usize,
    /// Bodies of its messages being read back for their turn (not for a receipt or a
    /// compaction: those do not hold the queue's read-ahead back).
    loading: usize,
    /// No room: offer again at this time.
    blocked_until: u64,
}

/// A message as the caller hands it to [`Flow::accept`] or [`Flow::restore`].
pub struct Incoming {
    pub msg: StoredMessage,
    /// `None`: no route (it ends at once with a receipt, when one was asked for).
    pub target: Option<Target>,
    pub origin: Option<AccountId>,
    pub zero: Charset,
}

/// The lifecycle of every message of one shard.
pub struct Flow {
    policy: Policy,
    /// The backup gateway and its name, as records write it.
    backup: Option<(Target, Bytes)>,
    ids: IdGen,
    msgs: HashMap<MessageId, Entry>,
    queues: HashMap<Target, Queue>,
    timers: BinaryHeap<Reverse<(u64, MessageId)>>,
    receipts: HashMap<(LinkId, IdKey), MessageId>,
    uncommitted: VecDeque<(u64, MessageId)>,
    seg_live: HashMap<u64, u32>,
    actions: VecDeque<Action>,
    /// The LSN of the latest record this flow appended.
    last_lsn: u64,
    committed_lsn: u64,
    /// Ids in the queues of links that are up (see [`Flow::backlog`]), kept as queues change.
    link_backlog: usize,
    /// Messages whose body is in memory.
    resident: usize,
    /// Origin names of parked messages.
    names: Names,
    /// Messages ended (the tables are checked for room to give back every so many).
    ended: u64,
    stats: FlowStats,
    reports: Option<Box<dyn ReportRouter>>,
}

/// What the memory bound did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Bodies dropped from memory (the message waits with its body only in the log).
    pub spilled: u64,
    /// Bodies read back.
    pub loaded: u64,
    /// Bodies that could not be read back (their messages ended undeliverable).
    pub unreadable: u64,
}

impl Flow {
    pub fn new(policy: Policy, backup: Option<(Target, Bytes)>, ids: IdGen) -> Flow {
        Flow {
            policy,
            backup,
            ids,
            msgs: HashMap::new(),
            queues: HashMap::new(),
            timers: BinaryHeap::new(),
            receipts: HashMap::new(),
            uncommitted: VecDeque::new(),
            seg_live: HashMap::new(),
            actions: VecDeque::new(),
            last_lsn: 0,
            committed_lsn: 0,
            link_backlog: 0,
            resident: 0,
            names: Names::default(),
            ended: 0,
            stats: FlowStats::default(),
            reports: None,
        }
    }

    /// Status reports go where `r` says (else to their originator).
    pub fn set_report_router(&mut self, r: Box<dyn ReportRouter>) {
        self.reports = Some(r);
    }

    /// A reload changed the policy or the backup gateway: messages take them from their next
    /// step on (a message already on the backup stays there).
    pub fn set_policy(&mut self, policy: Policy, backup: Option<(Target, Bytes)>) {
        self.policy = policy;
        self.backup = backup;
    }

    /// Messages whose body is in memory.
    pub fn resident(&self) -> usize {
        self.resident
    }

    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// A new message id of this shard.
    pub fn next_id(&mut self) -> MessageId {
        self.ids.next_id()
    }

    /// Messages not final.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Messages queued for `target` (not yet attempted, or waiting for it to come up).
    pub fn queued(&self, target: Target) -> usize {
        self.queues.get(&target).map_or(0, |q| q.ids.len())
    }

    /// Messages queued for links that are up (they only wait for room): the backlog new
    /// messages from ESMEs would join. Links that are down are not counted (their messages
    /// wait for the link, not for the gateway), nor are ESMEs (what relieves them, their
    /// deliver_sm_resp, comes on the sockets a backlog would stop reading). Kept as the
    /// queues change: asked at every submit.
    pub fn backlog(&self) -> usize {
        self.link_backlog
    }

    /// Marks a target down or up, keeping [`Flow::backlog`] in step.
    fn set_down(&mut self, target: Target, down: bool) {
        let q = self.queues.entry(target).or_default();
        if q.down != down && matches!(target, Target::Link(_)) {
            if down {
                self.link_backlog = self.link_backlog.saturating_sub(q.ids.len());
            } else {
                self.link_backlog += q.ids.len();
            }
        }
        q.down = down;
    }

    /// Messages whose latest snapshot is in segment `seg` (a key, as [`Loc::seg`]).
    pub fn live_in(&self, seg: u64) -> u32 {
        self.seg_live.get(&seg).copied().unwrap_or(0)
    }

    /// Upstream ids waiting for their receipts.
    pub fn awaiting_receipts(&self) -> usize {
        self.receipts.len()
    }

    /// The LSN of the latest record this flow appended.
    pub fn last_lsn(&self) -> u64 {
        self.last_lsn
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next time [`Flow::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<u64> {
        let t = self.timers.peek().map(|Reverse((t, _))| *t);
        let q = self
            .queues
            .values()
            .filter(|q| q.blocked_until > 0)
            .map(|q| q.blocked_until)
            .min();
        match (t, q) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A message accepted: its record is appended; the LSN returned is the one its answer
    /// waits for. It is attempted once [`Flow::committed`] reaches that LSN. Without a target
    /// it ends at once as unroutable (with a receipt when asked).
    pub fn accept(&mut self, log: &dyn Log, inc: Incoming, now: u64) -> u64 {
        let (lsn, at) = append(&mut self.last_lsn, log, &Record::Message(inc.msg.clone()));
        let id = inc.msg.id;
        let Some(target) = inc.target else {
            self.end_unrouted(log, inc, now);
            return self.last_lsn;
        };
        self.insert(id, inc, target, St::Uncommitted, at);
        self.uncommitted.push_back((lsn, id));
        self.last_lsn
    }

    /// Brings back a message the log held at start (already durable).
    pub fn restore(
        &mut self,
        log: &dyn Log,
        live: Live,
        inc: Incoming,
        receipt_key: Option<(LinkId, IdKey)>,
        now: u64,
    ) {
        let id = inc.msg.id;
        let Some(primary) = inc.target else {
            // (The caller brings the body back first: the receipt quotes it.)
            self.end_unrouted(log, inc, now);
            return;
        };
        let target = match (&self.backup, inc.msg.on_backup) {
            (Some((b, _)), true) => *b,
            _ => primary,
        };
        let awaiting = inc.msg.forwarded.is_some();
        let wants = RegisteredDelivery(inc.msg.registered_delivery).wants_receipt();
        self.insert(id, inc, target, St::Later, live.snapshot);
        if awaiting {
            match receipt_key.filter(|_| wants) {
                Some(key) => {
                    let wake = self.msgs.get(&id).and_then(|e| e.msg()).map_or(now, |m| {
                        m.accepted_ms.saturating_add(self.policy.receipt_wait_ms)
                    });
                    if let Some(e) = self.msgs.get_mut(&id) {
                        e.st = St::AwaitingReceipt;
                        e.receipt_key = Some(Box::new(key.clone()));
                    }
                    self.receipts.insert(key, id);
                    self.set_wake(id, wake.max(now));
                    self.spill(id);
                }
                None => self.finish(log, id, End::FORWARDED, CommandStatus::ROK, None, now),
            }
            return;
        }
        self.ready(id, now);
    }

    fn insert(&mut self, id: MessageId, inc: Incoming, target: Target, st: St, snap: Loc) {
        *self.seg_live.entry(snap.seg).or_default() += 1;
        if !inc.msg.pdu.is_empty() {
            self.resident += 1;
        }
        self.msgs.insert(
            id,
            Entry::new(inc.msg, target, inc.origin, inc.zero, st, snap),
        );
    }

    /// The highest LSN [`Flow::committed`] was told of.
    pub fn committed_lsn(&self) -> u64 {
        self.committed_lsn
    }

    /// Takes back messages of `billid` that are logged but not yet durable: their originator
    /// is answered with an error (the log cannot write), so they must never be delivered.
    /// Their final record follows them into the log, so a later replay drops them too.
    pub fn cancel(&mut self, log: &dyn Log, billid: MessageId, status: CommandStatus, now: u64) {
        let ids: Vec<MessageId> = self
            .msgs
            .iter()
            .filter(|(_, e)| e.billid() == billid && e.st == St::Uncommitted)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(e) = self.msgs.get_mut(&id) {
                e.no_receipt();
            }
            self.finish(
                log,
                id,
                End::new(crate::smpp::MessageState::REJECTED, 0x40),
                status,
                None,
                now,
            );
        }
    }

    /// Lets a message just accepted be attempted before its record is durable here: one that
    /// another node's log keeps until this node answers it committed (a status report handed
    /// over in a cluster). A crash before the commit loses nothing: the sender offers it again,
    /// a duplicate. Saves the delivery the wait for this node's fdatasync.
    pub fn attempt_before_commit(&mut self, id: MessageId, now: u64) {
        if self.msgs.get(&id).is_some_and(|e| e.st == St::Uncommitted) {
            self.ready(id, now);
        }
    }

    /// The log made everything up to `lsn` durable: those messages are attempted.
    pub fn committed(&mut self, lsn: u64, now: u64) {
        self.committed_lsn = self.committed_lsn.max(lsn);
        while let Some(&(l, id)) = self.uncommitted.front() {
            if l > lsn {
                break;
            }
            self.uncommitted.pop_front();
            if self.msgs.get(&id).is_some_and(|e| e.st == St::Uncommitted) {
                self.ready(id, now);
            }
        }
    }

    /// A message that may go now, or at its scheduled time, or never (expired).
    fn ready(&mut self, id: MessageId, now: u64) {
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        let not_before = e.msg().map_or(0, |m| m.not_before_ms);
        if not_before > now {
            e.st = St::Later;
            let at = not_before.min(e.expires_ms());
            self.set_wake(id, at);
            self.spill(id);
            return;
        }
        self.enqueue(id, false, now);
    }

    /// Puts a message in its target's queue (at the front when it was first in line before)
    /// and offers the queue.
    fn enqueue(&mut self, id: MessageId, front: bool, now: u64) {
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        e.st = St::Queued;
        let (target, expires) = (e.target, e.expires_ms());
        let q = self.queues.entry(target).or_default();
        if front {
            // Back in line where it stood: attempts that come back in order (a link that went
            // down with a window in flight) keep their order.
            let at = q.ids.iter().position(|x| *x > id).unwrap_or(q.ids.len());
            q.ids.insert(at, id);
        } else {
            q.ids.push_back(id);
        }
        if !q.down && matches!(target, Target::Link(_)) {
            self.link_backlog += 1;
        }
        self.pull(target, now);
        // Still queued (its target is down or busy): only expiry can end it now.
        if self.msgs.get(&id).is_some_and(|e| e.st == St::Queued) {
            self.set_wake(id, expires);
            self.spill(id);
        }
    }

    /// Dispatches queued messages of `target` while it is up and has room.
    fn pull(&mut self, target: Target, now: u64) {
        let batch = self.policy.batch;
        loop {
            let Some(q) = self.queues.get_mut(&target) else {
                return;
            };
            if q.down || q.in_flight >= batch || q.blocked_until > now {
                return;
            }
            let Some(&id) = q.ids.front() else {
                return;
            };
            let e = self.msgs.get_mut(&id);
            let stale = e
                .as_ref()
                .is_none_or(|e| e.st != St::Queued || e.target != target);
            if !stale && e.as_ref().is_some_and(|e| e.spilled()) {
                // Its turn, its body still on disk: read it (and a few behind it) back; the
                // queue goes on when it is here.
                return self.load_ahead(target);
            }
            q.ids.pop_front();
            if matches!(target, Target::Link(_)) {
                self.link_backlog = self.link_backlog.saturating_sub(1);
            }
            // (Not spilled, so whole.)
            let Some(e) = e.filter(|_| !stale) else {
                continue;
            };
            let Some(m) = e.msg() else {
                continue;
            };
            let send = Action::Send {
                id,
                billid: m.billid,
                kind: m.kind,
                target,
                // Only an HTTP target needs it (its URL): no reference count per message else.
                to: match target {
                    Target::Http(_) => m.target.clone(),
                    _ => Bytes::new(),
                },
                pdu: m.pdu.clone(),
                origin: m.origin.clone(),
            };
            q.in_flight += 1;
            e.st = St::InFlight;
            e.wake = 0;
            e.set_sent_ms(now);
            self.actions.push_back(send);
        }
    }

    /// How an attempt went.
    pub fn result(&mut self, log: &dyn Log, id: MessageId, outcome: Outcome, now: u64) {
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        if e.st != St::InFlight {
            return;
        }
        let target = e.target;
        if let Some(q) = self.queues.get_mut(&target) {
            q.in_flight = q.in_flight.saturating_sub(1);
            // An attempt came back: the target has room again.
            q.blocked_until = 0;
        }
        if self.policy.legs {
            let (name, status, upstream_id) = match &outcome {
                Outcome::Accepted { upstream_id, .. } => (
                    "accepted",
                    Some(CommandStatus::ROK),
                    Some(upstream_id.clone()),
                ),
                Outcome::HandedOver { node } => {
                    ("handed_over", Some(CommandStatus::ROK), Some(node.clone()))
                }
                Outcome::Delivered => ("delivered", Some(CommandStatus::ROK), None),
                Outcome::Temporary(s) => ("temporary", Some(*s), None),
                Outcome::Permanent(s) => ("permanent", Some(*s), None),
                Outcome::Timeout => ("timeout", None, None),
                Outcome::Unreachable => ("unreachable", None, None),
                Outcome::NoRoom => ("no_room", None, None),
            };
            self.actions.push_back(Action::Attempted {
                id,
                billid: e.billid(),
                kind: e.kind(),
                target,
                outcome: name,
                status,
                upstream_id,
                latency_ms: now.saturating_sub(e.sent_ms()),
                failures: e.failures(),
                on_backup: e.on_backup(),
            });
        }
        match outcome {
            Outcome::Accepted { upstream_id, key } => {
                let Target::Link(link) = target else {
                    return self.finish(log, id, End::FORWARDED, CommandStatus::ROK, None, now);
                };
                // (In flight, so whole.)
                let Some(m) = e.msg_mut() else {
                    return;
                };
                let name = m.target_name(&self.backup).clone();
                append(
                    &mut self.last_lsn,
                    log,
                    &Record::Forwarded {
                        id,
                        link: name.clone(),
                        upstream_id: upstream_id.clone(),
                    },
                );
                m.forwarded = Some(Box::new(Forwarded {
                    link: name,
                    upstream_id,
                }));
                if RegisteredDelivery(m.registered_delivery).wants_receipt() {
                    e.st = St::AwaitingReceipt;
                    e.receipt_key = Some(Box::new((link, key.clone())));
                    self.receipts.insert((link, key), id);
                    self.set_wake(id, now.saturating_add(self.policy.receipt_wait_ms));
                    self.spill(id);
                } else {
                    self.finish(log, id, End::FORWARDED, CommandStatus::ROK, None, now);
                }
            }
            Outcome::HandedOver { .. } => {
                self.finish(log, id, End::FORWARDED, CommandStatus::ROK, None, now)
            }
            Outcome::Delivered => {
                self.finish(log, id, End::DELIVERED, CommandStatus::ROK, None, now)
            }
            Outcome::Temporary(s) => self.failed(log, id, s, End::BUSY, now),
            Outcome::Timeout => self.failed(log, id, CommandStatus::ROK, End::NO_RESPONSE, now),
            Outcome::Permanent(s) => {
                if e.on_backup() && !self.policy.trusted {
                    self.failed(log, id, s, End::refused_upstream(s), now);
                } else {
                    let end = match target {
                        Target::Esme(_) | Target::Http(_) => End::REFUSED,
                        Target::Link(_) => End::refused_upstream(s),
                    };
                    self.finish(log, id, end, s, None, now);
                }
            }
            Outcome::Unreachable => {
                if self.can_fail_over(id) {
                    self.fail_over(log, id, CommandStatus::ROK, now);
                } else {
                    self.set_down(target, true);
                    self.enqueue(id, true, now);
                }
            }
            Outcome::NoRoom => {
                // Offered again when an attempt to the target comes back, or after a pause
                // when none is out.
                let q = self.queues.entry(target).or_default();
                q.blocked_until = now.saturating_add(self.policy.busy_retry_ms).max(1);
                self.enqueue(id, true, now);
                return;
            }
        }
        self.pull(target, now);
    }

    /// Whether a message may go to the backup gateway now: one for a link (a message for an
    /// ESME waits for that ESME to bind), not there yet.
    fn can_fail_over(&self, id: MessageId) -> bool {
        match (&self.backup, self.msgs.get(&id)) {
            (Some((b, _)), Some(e)) => {
                !e.on_backup() && *b != e.target && matches!(e.target, Target::Link(_))
            }
            _ => false,
        }
    }

    /// Sends a message to the backup gateway, once.
    fn fail_over(&mut self, log: &dyn Log, id: MessageId, status: CommandStatus, now: u64) {
        let Some((backup, _)) = self.backup.clone() else {
            return;
        };
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        e.set_attempts(0, true);
        e.target = backup;
        append(
            &mut self.last_lsn,
            log,
            &Record::Attempt {
                id,
                failures: 0,
                on_backup: true,
                status: status.0,
            },
        );
        self.enqueue(id, false, now);
    }

    /// A temporary failure counted: retry later, fail over when the retries are used up,
    /// else end with `exhausted`.
    fn failed(
        &mut self,
        log: &dyn Log,
        id: MessageId,
        status: CommandStatus,
        exhausted: End,
        now: u64,
    ) {
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        let failures = e.failures().saturating_add(1);
        e.set_attempts(failures, e.on_backup());
        let retries = e.msg().map_or(0, |m| m.retries);
        if failures > retries {
            if self.can_fail_over(id) {
                return self.fail_over(log, id, status, now);
            }
            return self.finish(log, id, exhausted, status, None, now);
        }
        if now >= e.expires_ms() {
            return self.finish(log, id, End::EXPIRED, status, None, now);
        }
        append(
            &mut self.last_lsn,
            log,
            &Record::Attempt {
                id,
                failures,
                on_backup: e.on_backup(),
                status: status.0,
            },
        );
        e.st = St::Later;
        let at = now
            .saturating_add(
                self.policy
                    .retry_delay_ms(failures, matches!(e.target, Target::Esme(_))),
            )
            .min(e.expires_ms());
        self.set_wake(id, at);
        self.spill(id);
    }

    /// A target is up (a link bound a transmitter, an ESME bound a receiver): its queue goes.
    pub fn target_up(&mut self, target: Target, now: u64) {
        if self.queues.contains_key(&target) {
            self.set_down(target, false);
        }
        if let Some(q) = self.queues.get_mut(&target) {
            q.blocked_until = 0;
        }
        self.pull(target, now);
    }

    /// A message's record as the flow keeps it (its body may be only in the log; `None`
    /// also while it is parked: queued or waiting for a retry with only a few fields in
    /// memory).
    pub fn message(&self, id: MessageId) -> Option<&StoredMessage> {
        self.msgs.get(&id).and_then(|e| e.msg())
    }

    /// Whether a target is known to be down (its messages wait for it).
    pub fn is_down(&self, target: Target) -> bool {
        self.queues.get(&target).is_some_and(|q| q.down)
    }

    /// Targets that are down with messages waiting (to be checked when links or receivers
    /// come up).
    pub fn waiting_targets(&self) -> Vec<Target> {
        self.queues
            .iter()
            .filter(|(_, q)| q.down && !q.ids.is_empty())
            .map(|(t, _)| *t)
            .collect()
    }

    fn set_wake(&mut self, id: MessageId, at: u64) {
        if let Some(e) = self.msgs.get_mut(&id) {
            if e.wake != at {
                e.wake = at;
                self.timers.push(Reverse((at, id)));
            }
        }
        self.prune_timers();
    }

    /// Timers of messages that moved on stay in the heap until their time; when they
    /// outnumber the live ones, the heap is rebuilt from the live ones.
    fn prune_timers(&mut self) {
        if self.timers.len() > 2 * self.msgs.len() + 4096 {
            self.timers = self
                .msgs
                .iter()
                .filter(|(_, e)| e.wake > 0)
                .map(|(id, e)| Reverse((e.wake, *id)))
                .collect();
        }
    }

    /// Retries, scheduled messages, expiry, receipts that never came, receivers with room
    /// again.
    pub fn handle_timeout(&mut self, log: &dyn Log, now: u64) {
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(e) = self.msgs.get(&id) else {
                continue;
            };
            if e.wake != at {
                continue;
            }
            let expired = now >= e.expires_ms();
            match e.st {
                St::Queued | St::Later if expired => {
                    self.finish(log, id, End::EXPIRED, CommandStatus::ROK, None, now)
                }
                St::Later => {
                    if let Some(e) = self.msgs.get_mut(&id) {
                        e.wake = 0;
                    }
                    self.enqueue(id, false, now);
                }
                St::AwaitingReceipt => {
                    self.finish(log, id, End::RECEIPT_LOST, CommandStatus::ROK, None, now)
                }
                St::Queued | St::InFlight | St::Uncommitted | St::Finishing(..) => {}
            }
        }
        let blocked: Vec<Target> = self
            .queues
            .iter()
            .filter(|(_, q)| q.blocked_until > 0 && q.blocked_until <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in blocked {
            if let Some(q) = self.queues.get_mut(&t) {
                q.blocked_until = 0;
            }
            self.pull(t, now);
        }
    }
}

/// Appends a record, remembering the latest LSN (a free function, so that it can run while an
/// entry of the flow is borrowed).
fn append(last_lsn: &mut u64, log: &dyn Log, r: &Record) -> (u64, Loc) {
    let (lsn, at) = log.append(r);
    *last_lsn = (*last_lsn).max(lsn);
    (lsn, at)
}

impl StoredMessage {
    /// The name of the target the message goes to now (the backup's after failover).
    fn target_name<'a>(&'a self, backup: &'a Option<(Target, Bytes)>) -> &'a Bytes {
        match (self.on_backup, backup) {
            (true, Some((_, name))) => name,
            _ => &self.target,
        }
    }
}
