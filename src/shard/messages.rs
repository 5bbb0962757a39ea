//! The shard's side of the message flow: it owns the [`Flow`] and the message log, turns the
//! flow's actions into link submissions and deliveries to ESMEs, feeds back their outcomes,
//! and answers what waits for a commit (an ESME's submit_sm_resp, an upstream's
//! deliver_sm_resp). Receipts and MO from links are `inbound`'s.
//!
//! Every message belongs to the shard whose log holds it: the shard whose number its id
//! carries (modulo the shard count, for messages adopted from a run with more shards).
//! Outcomes found on another shard travel back over the mesh to that owner.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hashbrown::HashMap;
use log::{info, warn};

use super::{Delivery, ShardMsg, ShardState, SHARD};
use crate::flow::{Action, Flow, Incoming, Log, Outcome, Target};
use crate::ids::{LinkId, MessageId, ShardId};
use crate::smpp::{as_deliver_sm, Body, CommandId, CommandStatus, Pdu};
use crate::store::log::MessageLog;
use crate::store::read::Reader;
use crate::store::record::{Kind, Loc, Record, StoredMessage};
use crate::store::{segment_key, segment_of, OldSegment};
use crate::upstream::{self, InboundReply, Submission};

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sealed segments a chain keeps before its oldest is compacted.
const SEALED_BEFORE_COMPACTION: usize = 4;

/// The message log of a shard: on disk, or (the simulator) nowhere.
pub enum StoreLog {
    Disk { log: Rc<MessageLog>, chain: u64 },
    Memory { next: Cell<u64> },
}

impl Log for StoreLog {
    fn append(&self, r: &Record) -> (u64, Loc) {
        match self {
            StoreLog::Disk { log, chain } => {
                let (lsn, at) = log.append(r);
                let seg = segment_key(*chain as usize, at.seg);
                (lsn, Loc { seg, ..at })
            }
            StoreLog::Memory { next } => {
                next.set(next.get() + 1);
                (next.get(), Loc::default())
            }
        }
    }
}

impl StoreLog {
    /// What an acknowledgement may rely on.
    pub fn committed(&self) -> u64 {
        match self {
            StoreLog::Disk { log, .. } => log.committed(),
            StoreLog::Memory { next } => next.get(),
        }
    }

    /// Why new messages are refused now, if they are (the disk refuses writes).
    pub fn refusal(&self) -> Option<CommandStatus> {
        match self {
            StoreLog::Disk { log, .. } => log.refusal(),
            StoreLog::Memory { .. } => None,
        }
    }
}

/// How to answer an upstream's deliver_sm or data_sm.
pub enum Reply {
    /// Through the link slot that received it.
    Slot(InboundReply),
    /// Through an ESME-side connection the upstream opened with outbind.
    Conn {
        conn: u64,
        seq: u32,
        command: CommandId,
    },
    /// Another node asked about a receipt (see [`crate::cluster`]): told when this node took
    /// it; otherwise it hears nothing.
    Cluster { token: u64 },
}

/// Something that waits for the log to reach an LSN. (Mostly answers to ESMEs, which carry
/// their body: boxing it would cost an allocation per message for nothing.)
#[allow(clippy::large_enum_variant)]
pub enum Waiter {
    /// An ESME's request, answered with `body`.
    Respond {
        conn: u64,
        seq: u32,
        status: CommandStatus,
        body: Body,
        /// The id the answer gives (taken back if the log cannot write it).
        billid: Option<MessageId>,
        /// When the request came.
        at: Instant,
    },
    /// An upstream's deliver_sm or data_sm.
    Link(Reply, CommandStatus),
    /// Another shard asked about a receipt this shard had: tell it, once logged.
    Remote { shard: ShardId, token: u64 },
    /// An HTTP submit: told ROK once logged, or the refusal (its messages, by billid, are
    /// then taken back).
    Signal {
        signal: Rc<Signal>,
        billids: Vec<MessageId>,
    },
    /// Another node handed this one a message: it is answered once logged (or refused, and
    /// the message taken back, when the log cannot write).
    Cluster { token: u64, billid: MessageId },
}

impl Waiter {
    /// An answer to a client that submitted: refused, and its messages taken back, when the
    /// log cannot write (what upstreams sent stays unanswered until it can).
    fn answers_a_submit(&self) -> bool {
        matches!(
            self,
            Waiter::Respond { .. } | Waiter::Signal { .. } | Waiter::Cluster { .. }
        )
    }
}

/// What an HTTP request waits on: the status the log's commit (or refusal) gives.
#[derive(Default)]
pub struct Signal {
    status: Cell<Option<CommandStatus>>,
    waker: RefCell<Option<std::task::Waker>>,
}

impl Signal {
    pub fn set(&self, status: CommandStatus) {
        self.status.set(Some(status));
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub async fn wait(&self) -> CommandStatus {
        futures_lite::future::poll_fn(|cx| match self.status.get() {
            Some(s) => std::task::Poll::Ready(s),
            None => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }
}

/// The flow, the log and what waits on them.
pub struct Messages {
    pub flow: RefCell<Flow>,
    pub log: StoreLog,
    waiters: RefCell<VecDeque<(u64, Waiter)>>,
    pub(super) lookups: RefCell<HashMap<u64, super::inbound::Lookup>>,
    pub(super) next_token: Cell<u64>,
    /// Receipts that matched no message, by when they were first seen.
    pub(super) unmatched: RefCell<super::unmatched::Unmatched>,
    /// Segments of earlier runs this shard adopted, oldest first per chain, and this run's
    /// own sealed segments from `own_oldest` on.
    old: RefCell<Vec<OldSegment>>,
    own_oldest: Cell<u64>,
    /// Files to delete once the log reaches the LSN (their messages were written again).
    deletions: RefCell<Vec<(u64, std::path::PathBuf)>>,
    last_housekeeping: Cell<Option<Instant>>,
    /// `run_flow` is draining the flow's actions.
    running: Cell<bool>,
    /// Segments open for reading bodies back.
    reader: Reader,
}

impl Messages {
    pub fn new(flow: Flow, log: StoreLog, old: Vec<OldSegment>, first_seq: u64) -> Messages {
        Messages {
            flow: RefCell::new(flow),
            log,
            waiters: RefCell::new(VecDeque::new()),
            lookups: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            unmatched: Default::default(),
            old: RefCell::new(old),
            own_oldest: Cell::new(first_seq),
            deletions: RefCell::new(Vec::new()),
            last_housekeeping: Cell::new(None),
            running: Cell::new(false),
            reader: Reader::default(),
        }
    }
}

impl ShardState {
    /// The shard that owns message `id`.
    pub fn owner_of(&self, id: MessageId) -> ShardId {
        id.shard() as usize % self.shared.shards.max(1)
    }

    /// A new message id of this shard.
    pub fn next_id(&self) -> MessageId {
        self.msgs.flow.borrow_mut().next_id()
    }

    /// Hands a message to the flow; returns the LSN its answer waits for.
    pub fn accept(&self, inc: Incoming) -> u64 {
        let lsn = self
            .msgs
            .flow
            .borrow_mut()
            .accept(&self.msgs.log, inc, now_ms());
        self.run_flow();
        lsn
    }

    /// Whether the log has made `lsn` durable (an answer may go now).
    pub fn is_committed(&self, lsn: u64) -> bool {
        self.msgs.log.committed() >= lsn
    }

    /// Runs `w` once the log reaches `lsn` (now, if it has).
    pub fn after(&self, lsn: u64, w: Waiter) {
        if self.is_committed(lsn) {
            self.fire(w);
        } else {
            self.msgs.waiters.borrow_mut().push_back((lsn, w));
        }
    }

    /// The log made everything up to `lsn` durable.
    pub fn on_commit(&self, lsn: u64) {
        self.msgs.flow.borrow_mut().committed(lsn, now_ms());
        loop {
            let next = {
                let mut w = self.msgs.waiters.borrow_mut();
                match w.front() {
                    Some((l, _)) if *l <= lsn => w.pop_front().map(|x| x.1),
                    _ => None,
                }
            };
            match next {
                Some(w) => self.fire(w),
                None => break,
            }
        }
        self.delete_committed(lsn);
        self.run_flow();
    }

    /// Deletes the segments whose deletion waited for the log to reach `lsn`.
    fn delete_committed(&self, lsn: u64) {
        let due: Vec<std::path::PathBuf> = {
            let mut d = self.msgs.deletions.borrow_mut();
            // A segment also waits for the CDRs of the ends that made it useless.
            let go = |l: u64| l <= lsn && self.cdrs_past(l);
            let due = d
                .iter()
                .filter(|(l, _)| go(*l))
                .map(|(_, p)| p.clone())
                .collect();
            d.retain(|(l, _)| !go(*l));
            due
        };
        for path in due {
            self.msgs.reader.forget(&path);
            if let StoreLog::Disk { log, chain } = &self.msgs.log {
                let seq = path
                    .file_stem()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse::<u64>().ok());
                let own = path.parent()
                    == Some(&crate::store::shard_dir(
                        std::path::Path::new(&self.spool),
                        *chain as usize,
                    ));
                if let (Some(seq), true) = (seq, own) {
                    log.forget(seq);
                }
            }
            remove_segment(path);
        }
    }

    fn fire(&self, w: Waiter) {
        match w {
            Waiter::Respond {
                conn,
                seq,
                status,
                body,
                at,
                ..
            } => {
                if let Some(m) = &self.metrics {
                    m.submit_response.record(at.elapsed().as_secs_f64());
                }
                self.respond(conn, seq, status, body)
            }
            Waiter::Link(reply, status) => self.reply(reply, status),
            Waiter::Remote { shard, token } => {
                self.send_to(shard, ShardMsg::ReceiptFound { token, found: true })
            }
            Waiter::Signal { signal, .. } => signal.set(CommandStatus::ROK),
            Waiter::Cluster { token, .. } => {
                self.cluster_answer(token, crate::cluster::wire::Answer::Committed)
            }
        }
    }

    /// Answers an upstream's deliver_sm or data_sm.
    pub fn reply(&self, reply: Reply, status: CommandStatus) {
        match reply {
            Reply::Slot(r) => r.send(status),
            Reply::Conn { conn, seq, command } => {
                if let Some(body) = upstream::inbound_answer(command, seq, status) {
                    self.respond(conn, seq, status, body);
                }
            }
            Reply::Cluster { token } => self.cluster_answer(
                token,
                if status.is_ok() {
                    crate::cluster::wire::Answer::Committed
                } else {
                    crate::cluster::wire::Answer::Refused(format!("{status:?}"))
                },
            ),
        }
    }

    /// Drains the flow's actions. Without a disk to wait for (the simulator, `sync=none`),
    /// what was appended is committed here. An attempt's outcome known at once (a target
    /// that is down) feeds the flow from inside this loop; the outer loop takes the actions
    /// that produces, so nothing here recurses.
    pub fn run_flow(&self) {
        if self.msgs.running.replace(true) {
            return;
        }
        self.drain_flow();
        self.msgs.running.set(false);
        self.release_intake();
    }

    fn drain_flow(&self) {
        loop {
            let action = {
                let mut flow = self.msgs.flow.borrow_mut();
                let committed = self.msgs.log.committed();
                if committed > flow.committed_lsn() {
                    flow.committed(committed, now_ms());
                }
                flow.poll_action()
            };
            if let Some(
                a @ Action::Ended {
                    kind,
                    end,
                    accepted_ms,
                    ..
                },
            ) = &action
            {
                if let Some(m) = &self.metrics {
                    let ms = now_ms().saturating_sub(*accepted_ms);
                    m.message_final.record(ms as f64 / 1000.0);
                    if *kind == Kind::Receipt && end.delivered() {
                        m.receipts_relayed.increment(1);
                    }
                }
                self.cdr_of(a);
            }
            match action {
                Some(Action::Send {
                    id,
                    billid,
                    kind,
                    target: Target::Http(h),
                    to,
                    pdu,
                    origin,
                }) => {
                    if let Some(me) = SHARD.with(|s| s.borrow().clone()) {
                        me.http_send(h, id, billid, kind, to, pdu, origin);
                    }
                }
                Some(Action::Send {
                    id,
                    kind,
                    target,
                    pdu,
                    origin,
                    ..
                }) => self.attempt(id, kind, target, &pdu, &origin),
                Some(Action::Load { id, at }) => self.load_body(id, at),
                Some(
                    a @ Action::Attempted {
                        outcome, on_backup, ..
                    },
                ) => {
                    if let Some(m) = &self.metrics {
                        m.attempt(outcome, on_backup);
                    }
                    self.cdr_of(&a)
                }
                Some(Action::Ended {
                    id,
                    billid,
                    kind,
                    origin,
                    target,
                    end,
                    status,
                    failures,
                    on_backup,
                    ..
                }) => {
                    let c = self.shared.counters(self.id);
                    if end.delivered() || end == crate::flow::End::FORWARDED {
                        c.delivered
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else {
                        c.undelivered
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.log_undelivered(|| {
                            let what = match kind {
                                Kind::Receipt => "receipt of message",
                                _ => "message",
                            };
                            let part = if billid == id {
                                String::new()
                            } else {
                                format!(" (part {id})")
                            };
                            let to = target.map_or("nowhere".into(), |t| self.shared.target_name(t));
                            let last = if status.is_ok() {
                                String::new()
                            } else {
                                format!(", last status {status}")
                            };
                            let tries = match (failures, on_backup) {
                                (0, false) => String::new(),
                                (f, b) => format!(
                                    ", {f} failures{}",
                                    if b { " on the backup" } else { "" }
                                ),
                            };
                            format!(
                                "{what} {billid}{part} from {} to {to}: {} (TP-Status 0x{:02X}, {}){last}{tries}",
                                String::from_utf8_lossy(&origin),
                                end.state.stat(),
                                end.tp_status,
                                end.meaning(),
                            )
                        });
                    }
                }
                None => break,
            }
        }
    }

    /// Reads a message's body back from the log for the flow (off the shard's thread: the
    /// flow goes on meanwhile).
    fn load_body(&self, id: MessageId, at: Loc) {
        let shard = self.self_rc();
        glommio::spawn_local(async move {
            let snap = match shard.read_body(at).await {
                Ok(m) => Some(m),
                Err(e) => {
                    if shard.msgs.flow.borrow().is_loading(id) {
                        warn!(
                            "message {id}: its body cannot be read back from the message log ({e}); it ends undeliverable"
                        );
                    }
                    None
                }
            };
            shard
                .msgs
                .flow
                .borrow_mut()
                .loaded(&shard.msgs.log, id, snap, now_ms());
            shard.run_flow();
        })
        .detach();
    }

    async fn read_body(&self, at: Loc) -> Result<StoredMessage, String> {
        let StoreLog::Disk { log, chain } = &self.msgs.log else {
            return Err("no message log".into());
        };
        let path = self.segment_path(at.seg)?;
        let (c, seq) = segment_of(at.seg);
        let off = if c as u64 == *chain && log.is_own(seq) {
            // Written by this run: where the record went in the file is known once its
            // commit is written (with sync=none it may not be yet).
            loop {
                if let Some(p) = log.file_offset(seq, at.off) {
                    break p;
                }
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
        } else {
            at.off
        };
        self.msgs.reader.read_message(&path, off, at.len).await
    }

    /// The file of segment `key`.
    fn segment_path(&self, key: u64) -> Result<std::path::PathBuf, String> {
        let (chain, seq) = segment_of(key);
        if let StoreLog::Disk { log, chain: own } = &self.msgs.log {
            if chain as u64 == *own && log.is_own(seq) {
                let dir = crate::store::shard_dir(std::path::Path::new(&self.spool), self.id);
                return Ok(dir.join(crate::store::segment_name(seq)));
            }
        }
        self.msgs
            .old
            .borrow()
            .iter()
            .find(|s| s.chain == chain && s.seq == seq)
            .map(|s| s.path.clone())
            .ok_or_else(|| format!("segment {seq} of shard-{chain} is not in the spool"))
    }

    /// Reads a body back before the shards serve (a blocking read: the start only).
    pub fn read_body_now(&self, at: Loc) -> Result<Bytes, String> {
        let path = self.segment_path(at.seg)?;
        crate::store::read_message(&path, at)
    }

    /// Feeds an attempt's outcome to the flow of the message's owner.
    pub fn report(&self, id: MessageId, outcome: Outcome) {
        let owner = self.owner_of(id);
        if owner == self.id {
            if let Outcome::Accepted { upstream_id, .. } = &outcome {
                log::debug!(
                    "message {id}: forwarded, upstream id {:?}",
                    String::from_utf8_lossy(upstream_id)
                );
            }
            self.msgs
                .flow
                .borrow_mut()
                .result(&self.msgs.log, id, outcome, now_ms());
            self.run_flow();
        } else {
            self.send_to(owner, ShardMsg::Outcome { id, outcome });
        }
    }

    /// One attempt of the flow's.
    fn attempt(&self, id: MessageId, kind: Kind, target: Target, stored: &Bytes, origin: &[u8]) {
        // An ESME bound on no shard of this node may be bound on another node; a link may be
        // another node's (its lease).
        if self.shared.cluster.is_some() && self.hand_off(id, target, stored) {
            return;
        }
        let Ok(mut pdu) = Pdu::decode(stored) else {
            // Not reached: the log holds what the gateway encoded.
            warn!("message {id}: its stored PDU does not decode; ending it");
            return self.report(id, Outcome::Permanent(CommandStatus::RSYSERR));
        };
        // Text between ends that read data_coding 0 differently is transcoded; receipts are
        // the gateway's own ASCII.
        if !self.live().uniform_coding
            && kind != Kind::Receipt
            && !matches!(target, Target::Http(_))
        {
            let from = self.shared.coding_named(origin);
            let to = self.shared.coding_of(target);
            if let Err(why) = crate::flow::coding::adapt(&mut pdu, from, to) {
                self.log_refusal(|| {
                    format!(
                        "message {id} to {}: cannot be transcoded: {why}",
                        self.shared.target_name(target)
                    )
                });
                return self.report(id, Outcome::Permanent(CommandStatus::RINVDCS));
            }
        }
        match target {
            Target::Link(link) => self.submit(
                link,
                Submission {
                    body: pdu.body,
                    tlvs: pdu.tlvs,
                    id,
                },
            ),
            // Sent by `http_send`, never here.
            Target::Http(_) => self.report(id, Outcome::Unreachable),
            Target::Esme(account) => {
                let body = match (kind, &pdu.body) {
                    // Receipts and MO are deliver_sm already and go as they are.
                    (Kind::Receipt | Kind::Mo, Body::DeliverSm(d)) => d.clone(),
                    (_, b) => match as_deliver_sm(b) {
                        Some(d) => d,
                        None => {
                            return self.report(id, Outcome::Permanent(CommandStatus::RINVCMDID))
                        }
                    },
                };
                self.deliver(Delivery {
                    id,
                    account,
                    body,
                    tlvs: pdu.tlvs,
                });
            }
        }
    }

    /// Hands a message to a link: this shard's queue when it has a bound transmitter of the
    /// link, else a shard that has one; with none anywhere, the link is down.
    pub fn submit(&self, link: LinkId, sub: Submission) {
        let Some(l) = self.link(link) else {
            return self.report(sub.id, Outcome::Unreachable);
        };
        if l.shared.bound_tx[self.id].load(std::sync::atomic::Ordering::Relaxed) > 0 {
            if let Err(sub) = l.push(sub) {
                self.report(sub.id, Outcome::NoRoom);
            }
        } else if let Some(peer) = l.shared.shard_with_tx(self.id) {
            self.send_to(peer, ShardMsg::Submit { link, sub });
        } else {
            self.report(sub.id, Outcome::Unreachable);
        }
    }

    /// The log cannot write: the answers that wait for it become refusals, and their messages
    /// are taken back (they are not durable, and the ESME is told so). What upstreams sent
    /// (receipts, MO) stays unanswered until the log writes again: they send it again anyway.
    fn refuse_waiting(&self, status: CommandStatus) {
        let waiting: Vec<(u64, Waiter)> = self.msgs.waiters.borrow_mut().drain(..).collect();
        let ms = now_ms();
        for (lsn, w) in waiting {
            match w {
                Waiter::Respond {
                    conn,
                    seq,
                    body,
                    billid,
                    ..
                } => {
                    if let Some(b) = billid {
                        self.msgs
                            .flow
                            .borrow_mut()
                            .cancel(&self.msgs.log, b, status, ms);
                    }
                    let command = match body {
                        Body::DataSmResp(_) => CommandId::DATA_SM,
                        Body::SubmitMultiResp(_) => CommandId::SUBMIT_MULTI,
                        _ => CommandId::SUBMIT_SM,
                    };
                    if let Some(reply) = Pdu::error_reply(command, seq, status) {
                        self.respond(conn, seq, status, reply.body);
                    }
                }
                Waiter::Signal { signal, billids } => {
                    for b in billids {
                        self.msgs
                            .flow
                            .borrow_mut()
                            .cancel(&self.msgs.log, b, status, ms);
                    }
                    signal.set(status);
                }
                Waiter::Cluster { token, billid } => {
                    self.msgs
                        .flow
                        .borrow_mut()
                        .cancel(&self.msgs.log, billid, status, ms);
                    self.cluster_answer(
                        token,
                        crate::cluster::wire::Answer::Refused(format!(
                            "its log refuses writes ({status})"
                        )),
                    );
                }
                other => self.msgs.waiters.borrow_mut().push_back((lsn, other)),
            }
        }
        self.run_flow();
    }

    /// Periodic work: the flow's timers, targets that came up, lookups, housekeeping of the
    /// log's segments.
    pub fn flow_tick(&self, now: Instant) {
        if let Some(status) = self.msgs.log.refusal() {
            if self
                .msgs
                .waiters
                .borrow()
                .iter()
                .any(|(_, w)| w.answers_a_submit())
            {
                self.refuse_waiting(status);
            }
        }
        let ms = now_ms();
        {
            let mut flow = self.msgs.flow.borrow_mut();
            if flow.poll_timeout().is_some_and(|t| t <= ms) {
                flow.handle_timeout(&self.msgs.log, ms);
            }
            for t in flow.waiting_targets() {
                if self.shared.reachable(t) {
                    flow.target_up(t, ms);
                }
            }
        }
        self.run_flow();
        if !self.msgs.lookups.borrow().is_empty() {
            self.retry_lookups(now);
        }
        let due = self
            .msgs
            .last_housekeeping
            .get()
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if due {
            self.msgs.last_housekeeping.set(Some(now));
            self.housekeeping();
        }
    }

    /// Deletes segments none of whose messages is live, oldest first in each chain;
    /// compacts the oldest of a chain that keeps too many. A segment goes once the records
    /// that made it useless (the ends of its messages, or their snapshots written again) are
    /// durable: until then a crash would need it.
    fn housekeeping(&self) {
        let StoreLog::Disk { log, chain } = &self.msgs.log else {
            return;
        };
        // This run's own sealed segments join the list as the log moves on.
        let active = log.active_segment();
        let dir = crate::store::shard_dir(std::path::Path::new(&self.spool), self.id);
        while self.msgs.own_oldest.get() < active {
            let seq = self.msgs.own_oldest.get();
            self.msgs.old.borrow_mut().push(OldSegment {
                chain: *chain as usize,
                seq,
                path: dir.join(crate::store::segment_name(seq)),
            });
            self.msgs.own_oldest.set(seq + 1);
        }
        let pending: Vec<std::path::PathBuf> = self
            .msgs
            .deletions
            .borrow()
            .iter()
            .map(|(_, p)| p.clone())
            .collect();
        let mut old = self.msgs.old.borrow_mut();
        let mut chains: Vec<usize> = old.iter().map(|s| s.chain).collect();
        chains.sort_unstable();
        chains.dedup();
        for c in chains {
            loop {
                let in_chain: Vec<usize> = (0..old.len()).filter(|&i| old[i].chain == c).collect();
                let Some(&first) = in_chain.iter().min_by_key(|&&i| old[i].seq) else {
                    break;
                };
                let seg = &old[first];
                if pending.contains(&seg.path) {
                    break;
                }
                let key = segment_key(seg.chain, seg.seq);
                let mut live = self.msgs.flow.borrow().live_in(key);
                if live > 0 && in_chain.len() > SEALED_BEFORE_COMPACTION {
                    // Written again at the end of the log; those only on disk are read back
                    // first, so this may take a few rounds.
                    self.msgs.flow.borrow_mut().compact(&self.msgs.log, key);
                    let left = self.msgs.flow.borrow().live_in(key);
                    if left < live {
                        info!(
                            "message log (shard {}): segment {} compacted ({} messages written again{})",
                            self.id,
                            seg.path.display(),
                            live - left,
                            if left > 0 { format!(", {left} being read back") } else { String::new() }
                        );
                    }
                    live = left;
                }
                if live > 0 {
                    break;
                }
                let removed = old.remove(first);
                let lsn = self.msgs.flow.borrow().last_lsn();
                self.msgs.deletions.borrow_mut().push((lsn, removed.path));
            }
        }
        drop(old);
        let written = match &self.msgs.log {
            StoreLog::Disk { log, .. } => log.written(),
            StoreLog::Memory { next } => next.get(),
        };
        self.delete_committed(written);
    }
}

/// Deletes a segment file off the shard's thread of control (an unlink can block).
fn remove_segment(path: std::path::PathBuf) {
    glommio::spawn_local(async move {
        if let Err(e) = glommio::io::remove(&path).await {
            warn!("cannot delete {}: {e}", path.display());
        }
    })
    .detach();
}
