//! Upstream links: the gateway as an ESME of the SMSCs named in `[smpp-client]`.
//!
//! Each link has `binds` bind slots spread over the shards (slot i on shard i mod shards; a
//! transmitter+receiver link runs two sessions per slot). A slot is one task that connects,
//! binds, serves, and on any loss reconnects after a jittered exponential backoff between the
//! link's `reconnect` bounds; being one sequential task, it never has two bind attempts in
//! flight.
//!
//! Messages for a link queue on the shard that sends them ([`LocalLink`]); that shard's bound
//! transmitter slots take them while their window has room and the link's rate allows (every
//! PDU counts one segment against `rate`). A shard with no bound transmitter of the link hands
//! the message over the mesh to one that has; with none anywhere the message fails at once
//! as [`Failure::LinkDown`], so the caller can go elsewhere.
//!
//! What an upstream's answers mean ([`Outcome`]):
//! - ROK: accepted, with the upstream's message id;
//! - ESME_RTHROTTLED: not a failure: the message goes back to the front of the queue and the
//!   slot pauses (100 ms, doubling to 5 s, reset by the next success), so order is kept;
//! - ESME_RMSGQFUL and other temporary statuses: [`Failure::Temporary`], counted against the
//!   message's retries (an upstream whose queue stays full is retried with backoff, then
//!   failed over); permanent ones: [`Failure::Permanent`];
//! - while half a window of our answers to the upstream's requests (receipts waiting for
//!   the shard's log) is owed and answers flow, new submits wait (OWED_HOLD_MAX at most): an
//!   upstream whose receipts come back slower than it takes submits queues them for us until
//!   it refuses submits, each refusal a retry;
//! - no answer within `response_timeout`: [`Failure::Timeout`] (temporary);
//! - the connection lost with messages in flight: they go back to the front of the queue, in
//!   their order, for the next bound slot: handed back, never dropped.
//!
//! A link knows nothing of the shard that runs it: it reports through a [`LinkSink`] (an
//! outcome per message id, each deliver_sm or data_sm the upstream sends with the means to
//! answer it once the shard has logged it), and takes messages from its [`LocalLink`] queue.

use std::collections::{BTreeMap, VecDeque};
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use glommio::channels::local_channel::{LocalReceiver, LocalSender};
use log::{info, warn};

use crate::config::ClientLink;
use crate::ids::{LinkId, MessageId, ShardId};
use crate::limit::RateLimiter;
use crate::net::conn::{drive, DriverLimits, Handler, IoCounts};
use crate::smpp::session::RequestFailure;
use crate::smpp::{
    Bind, BindType, Body, COctet, CloseReason, CommandId, CommandStatus, Event, Pdu, Role, Session,
    SessionConfig, Tlvs,
};

/// A link as all shards see it: its configuration and live counters.
///
/// A reload that changes the link swaps its configuration and bumps its generation; each
/// shard then stops the link's slots (their sessions unbind, what was in flight goes back to
/// the queue) and starts new ones with the new settings. Its queue, counters and id stay.
pub struct LinkShared {
    pub index: usize,
    /// The section name (a link is this name for as long as the gateway runs).
    pub name: String,
    config: ArcSwap<ClientLink>,
    /// `smppclient/NAME`, as routes and the message log name it (static: its clones count nothing).
    pub target: bytes::Bytes,
    /// Bound transmitting (and receiving) sessions per shard.
    pub bound_tx: Box<[AtomicU32]>,
    pub bound_rx: Box<[AtomicU32]>,
    rate: ArcSwapOption<RateLimiter>,
    tls: ArcSwapOption<rustls::ClientConfig>,
    /// Bumped by every reload that changes or removes the link.
    generation: AtomicU64,
    /// Gone from ysmpp.conf (a reload): no slots run, routes to it find no link.
    removed: AtomicBool,
    /// Whether the link can take messages (a transmitter bound on some shard), as the control
    /// shard last worked it out: it alone writes it, every shard reads it.
    healthy: AtomicBool,
    epoch: Instant,
    pub connect_attempts: AtomicU64,
    pub binds: AtomicU64,
    /// Messages sent and not yet answered, and waiting in shard queues (all shards).
    pub in_flight: std::sync::atomic::AtomicI64,
    pub queued: std::sync::atomic::AtomicI64,
    pub status: Mutex<LinkStatus>,
}

/// The last state change of a link, for the log and the control shard.
#[derive(Clone, Debug)]
pub struct LinkStatus {
    pub state: String,
    pub last_error: Option<String>,
    pub since: SystemTime,
}

impl LinkShared {
    pub fn new(
        index: usize,
        config: ClientLink,
        shards: usize,
        tls: Option<Arc<rustls::ClientConfig>>,
        epoch: Instant,
    ) -> LinkShared {
        LinkShared {
            index,
            name: config.name.clone(),
            rate: ArcSwapOption::new(RateLimiter::new(config.rate, epoch).map(Arc::new)),
            target: crate::ids::static_name(format!("smppclient/{}", config.name)),
            config: ArcSwap::from_pointee(config),
            bound_tx: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            bound_rx: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            tls: ArcSwapOption::new(tls),
            generation: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            healthy: AtomicBool::new(false),
            epoch,
            connect_attempts: AtomicU64::new(0),
            binds: AtomicU64::new(0),
            in_flight: Default::default(),
            queued: Default::default(),
            status: Mutex::new(LinkStatus {
                state: "starting".into(),
                last_error: None,
                since: SystemTime::now(),
            }),
        }
    }

    /// Its section as last loaded (a guard: no reference count written).
    pub fn config(&self) -> arc_swap::Guard<Arc<ClientLink>> {
        self.config.load()
    }

    /// Bumped by every reload that changes or removes the link: slots started under another
    /// generation stop.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a reload removed it.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Whether the link can take messages, as the control shard last said.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// The control shard's view, from the binds of every shard; true when it changed.
    pub fn update_health(&self) -> bool {
        let up = !self.is_removed() && self.bound_tx_total() > 0;
        self.healthy.swap(up, Ordering::AcqRel) != up
    }

    /// A reload changed (or brought back) the link: new settings, and new slots on every
    /// shard.
    pub fn replace(&self, config: ClientLink, tls: Option<Arc<rustls::ClientConfig>>) {
        self.rate
            .store(RateLimiter::new(config.rate, self.epoch).map(Arc::new));
        self.tls.store(tls);
        self.config.store(Arc::new(config));
        self.removed.store(false, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.set_status("rebinding", None);
    }

    /// A reload removed the link: its slots stop on every shard.
    pub fn remove(&self) {
        self.removed.store(true, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.set_status("removed", None);
    }

    /// A shard other than `me` with a bound transmitter of this link.
    pub fn shard_with_tx(&self, me: usize) -> Option<usize> {
        let n = self.bound_tx.len();
        (1..n)
            .map(|i| (me + i) % n)
            .find(|&s| self.bound_tx[s].load(Ordering::Relaxed) > 0)
    }

    /// One line for the log: binds up, in flight, queued, last error and since when.
    pub fn summary(&self) -> String {
        let st = self
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let since = st.since.elapsed().map_or(0, |d| d.as_secs());
        format!(
            "link {}: {} transmitters and {} receivers bound of {} slots, {} in flight, {} queued, {} for {since}s{}",
            self.name,
            self.bound_tx_total(),
            self.bound_rx_total(),
            self.config().binds,
            self.in_flight.load(Ordering::Relaxed),
            self.queued.load(Ordering::Relaxed),
            st.state,
            st.last_error.map_or(String::new(), |e| format!(", last error: {e}"))
        )
    }

    pub fn bound_tx_total(&self) -> u32 {
        self.bound_tx
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    pub fn bound_rx_total(&self) -> u32 {
        self.bound_rx
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    fn set_status(&self, state: &str, error: Option<String>) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.state = state.to_string();
        if error.is_some() {
            s.last_error = error;
        }
        s.since = SystemTime::now();
    }

    /// The session settings of this link's binds.
    pub fn session_config(&self, max_pdu_size: u32) -> SessionConfig {
        let c = self.config();
        SessionConfig {
            max_pdu_size,
            window: c.window,
            response_timeout: c.response_timeout,
            session_init_timeout: Some(c.response_timeout),
            enquire_link_interval: c.enquire_link,
            enquire_link_timeout: c.response_timeout,
            inactivity_timeout: None,
            interface_version: c.interface_version,
        }
    }

    /// The bind request of this link.
    pub fn bind(&self) -> Bind {
        let c = self.config();
        Bind {
            system_id: COctet::from(c.system_id.as_str()),
            password: COctet::from(c.system_password.as_str()),
            system_type: COctet::from(c.system_type.as_str()),
            interface_version: c.interface_version,
            addr_ton: 0,
            addr_npi: 0,
            address_range: COctet::from(c.address_range.as_str()),
        }
    }
}

/// One message for a link.
pub struct Submission {
    /// submit_sm or data_sm.
    pub body: Body,
    pub tlvs: Tlvs,
    /// The message it is; its outcome is reported under this id.
    pub id: MessageId,
}

/// Why a link did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The upstream answered with a temporary error (try again later or elsewhere).
    Temporary(CommandStatus),
    /// The upstream refused the message for good.
    Permanent(CommandStatus),
    /// The upstream did not answer in time; it may or may not have the message.
    Timeout,
    /// No bound transmitter anywhere.
    LinkDown,
}

/// What became of a message given to a link.
pub enum Outcome {
    /// Accepted; the upstream's message id.
    Accepted(COctet),
    Failed(Failure),
}

/// Work for a slot's session.
pub enum LinkCmd {
    /// Messages are waiting in the link's queue on this shard.
    Kick,
    /// Answer a deliver_sm or data_sm the upstream sent (once the shard has logged it).
    Respond {
        seq: u32,
        command: CommandId,
        status: CommandStatus,
    },
    /// Unbind and stop: the gateway is stopping.
    Stop,
}

/// How to answer one deliver_sm or data_sm of an upstream's, later.
pub struct InboundReply {
    tx: Rc<LocalSender<LinkCmd>>,
    pub seq: u32,
    pub command: CommandId,
}

impl InboundReply {
    /// Sends the answer through the slot that received the request (dropped if that session
    /// is gone: the upstream sends it again on its next bind).
    pub fn send(self, status: CommandStatus) {
        let _ = self.tx.try_send(LinkCmd::Respond {
            seq: self.seq,
            command: self.command,
            status,
        });
    }
}

/// What a link tells the shard that runs it.
pub trait LinkSink {
    /// What became of message `id`.
    fn outcome(&self, link: LinkId, id: MessageId, outcome: Outcome);
    /// The upstream sent a deliver_sm or data_sm (a receipt or an MO): the shard answers it
    /// through `reply`, at once or once it is logged.
    fn inbound(&self, link: LinkId, pdu: Pdu, reply: InboundReply);
    /// The gateway is stopping: do not reconnect.
    fn stopping(&self) -> bool;
    /// A uniform draw in [0, 100), for jitter.
    fn draw(&self) -> f64;
    /// Whether this node may bind `link` now (in a cluster, the node holding its lease).
    fn may_bind(&self, _link: LinkId) -> bool {
        true
    }
}

/// The answer to a deliver_sm or data_sm of `command` with `status`.
pub fn inbound_answer(command: CommandId, seq: u32, status: CommandStatus) -> Option<Body> {
    let reply = Pdu::error_reply(command, seq, status)?;
    Some(match (status.is_ok(), reply.body) {
        (true, Body::DeliverSmResp(_)) => Body::DeliverSmResp(Some(COctet::EMPTY)),
        (true, Body::DataSmResp(_)) => Body::DataSmResp(Some(COctet::EMPTY)),
        (_, b) => b,
    })
}

/// A link's queue and slots on one shard.
pub struct LocalLink {
    pub shared: Arc<LinkShared>,
    pub queue: std::cell::RefCell<VecDeque<Submission>>,
    pub slots: std::cell::RefCell<Vec<Rc<LocalSender<LinkCmd>>>>,
    /// The link's generation its slots here were started under, and how its upstream writes
    /// message ids under that generation (read per accepted message).
    pub generation: std::cell::Cell<u64>,
    pub msgid: std::cell::Cell<crate::config::MsgIdFormat>,
    /// Since when messages wait here with no bound transmitter (see `strand_check`).
    stranded_since: std::cell::Cell<Option<Instant>>,
    /// The upstream's `server:port`, as records write it (set again when a reload changes
    /// the link).
    pub address: std::cell::RefCell<bytes::Bytes>,
}

/// How long messages may wait in a link's queue on a shard with no bound transmitter (its
/// slots replaced by a reload, the new ones not bound yet) before they go back as link down.
pub const STRANDED: Duration = Duration::from_secs(5);

/// Messages a link queues on one shard at most; beyond, the shard keeps them.
pub const MAX_QUEUED: usize = 20_000;

impl LocalLink {
    pub fn new(shared: Arc<LinkShared>) -> LocalLink {
        let address = std::cell::RefCell::new(LocalLink::address_of(&shared));
        let msgid = std::cell::Cell::new(shared.config().msgid);
        LocalLink {
            shared,
            queue: Default::default(),
            slots: Default::default(),
            generation: Default::default(),
            msgid,
            stranded_since: Default::default(),
            address,
        }
    }

    /// `server:port` of the link's settings now.
    pub fn address_of(shared: &LinkShared) -> bytes::Bytes {
        let c = shared.config();
        crate::ids::static_name(format!("{}:{}", c.server, c.port))
    }

    /// Queues a message for this shard's bound transmitters; gives it back when the queue is
    /// full.
    #[allow(clippy::result_large_err)] // the Err hands the message back
    pub fn push(&self, sub: Submission) -> Result<(), Submission> {
        if self.queue.borrow().len() >= MAX_QUEUED {
            return Err(sub);
        }
        self.queue.borrow_mut().push_back(sub);
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        self.kick();
        Ok(())
    }

    /// Hands every queued message back to the shard as link down.
    pub fn give_back(&self, sink: &dyn LinkSink, link: LinkId) {
        let waiting: Vec<Submission> = self.queue.borrow_mut().drain(..).collect();
        if !waiting.is_empty() {
            self.shared
                .queued
                .fetch_sub(waiting.len() as i64, Ordering::Relaxed);
            for sub in waiting {
                sink.outcome(link, sub.id, Outcome::Failed(Failure::LinkDown));
            }
        }
    }

    /// Messages queued while no transmitter of the link is bound on this shard (a reload
    /// replaced its slots and the new ones have not bound): after [`STRANDED`], they go back
    /// as link down. Called on the shard's tick.
    pub fn strand_check(&self, sink: &dyn LinkSink, shard: ShardId, now: Instant) {
        let idle = !self.queue.borrow().is_empty()
            && self.shared.bound_tx[shard].load(Ordering::Relaxed) == 0;
        match (idle, self.stranded_since.get()) {
            (false, _) => self.stranded_since.set(None),
            (true, None) => self.stranded_since.set(Some(now)),
            (true, Some(t)) if now.duration_since(t) >= STRANDED => {
                self.stranded_since.set(None);
                self.give_back(sink, self.shared.index);
            }
            (true, Some(_)) => {}
        }
    }

    /// Wakes the local slots (a message was queued).
    pub fn kick(&self) {
        for s in self.slots.borrow().iter() {
            if s.len() == 0 {
                let _ = s.try_send(LinkCmd::Kick);
            }
        }
    }
}

/// Submits held for our answers to the upstream's requests: while an answer went within
/// OWED_IDLE, and for OWED_HOLD_MAX in all until fewer are owed.
const OWED_IDLE: Duration = Duration::from_millis(5);
const OWED_HOLD_MAX: Duration = Duration::from_millis(20);
/// Pause after ESME_RTHROTTLED: doubles from the first to the last.
const THROTTLE_PAUSE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Until when submits wait for our answers to the upstream's requests (`owed` of them
/// outstanding, our window `window`): none when fewer than half a window are owed, when no
/// answer went for OWED_IDLE (they are not flowing: waiting would not help), or when this
/// hold (since `since`, kept across calls) has lasted OWED_HOLD_MAX.
fn owed_hold(
    owed: usize,
    window: usize,
    since: &mut Option<Instant>,
    last_answer: Instant,
    now: Instant,
) -> Option<Instant> {
    if owed * 2 < window {
        *since = None;
        return None;
    }
    let since = *since.get_or_insert(now);
    let until = (since + OWED_HOLD_MAX).min(last_answer + OWED_IDLE);
    (now < until).then_some(until)
}

/// One bind of a link: the session handler.
pub struct LinkHandler {
    sink: Rc<dyn LinkSink>,
    local: Rc<LocalLink>,
    /// This slot's own inbox, for answers to the upstream's requests.
    me: Rc<LocalSender<LinkCmd>>,
    shard: ShardId,
    link: LinkId,
    slot: usize,
    bind_type: BindType,
    /// Messages sent, by tag (send order), with when they were sent.
    /// By tag, in send order; boxed so that the tree moves pointers, not messages.
    in_flight: BTreeMap<u64, Box<(Instant, Submission)>>,
    next_tag: u64,
    paused_until: Option<Instant>,
    pause: Duration,
    rate_wait: Option<Instant>,
    /// When an answer to the upstream's requests last went, and when a hold on submits for
    /// those answers ends.
    last_answer: Instant,
    hold_since: Option<Instant>,
    owed_wait: Option<Instant>,
    bound: bool,
    stopping: bool,
    /// The link's generation this slot was started under.
    generation: u64,
}

impl LinkHandler {
    fn shared(&self) -> &Arc<LinkShared> {
        &self.local.shared
    }

    fn name(&self) -> String {
        format!(
            "link {} slot {} ({}, shard {})",
            self.shared().name,
            self.slot,
            self.bind_type.name(),
            self.shard
        )
    }

    /// Sends queued messages while the window has room, the link is not paused and the rate
    /// allows.
    fn pump(&mut self, s: &mut Session, now: Instant) {
        if !self.bound || !self.bind_type.transmits() || self.stopping {
            return;
        }
        if self.paused_until.is_some_and(|t| t > now) {
            return;
        }
        self.paused_until = None;
        self.rate_wait = None;
        // The upstream waits for our answers to half a window of its requests (receipts
        // waiting for our log): a new submit now would only add to the receipts it queues for
        // us, until it refuses submits (ESME_RMSGQFUL, each one a retry). Submits wait while
        // those answers flow, for OWED_HOLD_MAX at most: answers that do not flow (a receipt
        // no shard matches is answered after seconds) hold nothing back for long.
        self.owed_wait = owed_hold(
            s.inbound_outstanding(),
            s.in_flight() + s.window_available(),
            &mut self.hold_since,
            self.last_answer,
            now,
        );
        if self.owed_wait.is_some() {
            return;
        }
        let local = self.local.clone();
        while s.window_available() > 0 {
            if let Some(rate) = &*local.shared.rate.load() {
                if !local.queue.borrow().is_empty() && !rate.try_take(1, now) {
                    self.rate_wait = Some(rate.available_at(1, now));
                    break;
                }
            }
            let Some(sub) = local.queue.borrow_mut().pop_front() else {
                break;
            };
            let tag = self.next_tag;
            self.next_tag += 1;
            match s.send_request(sub.body.clone(), sub.tlvs.clone(), tag, now) {
                Ok(_) => {
                    local.shared.queued.fetch_sub(1, Ordering::Relaxed);
                    local.shared.in_flight.fetch_add(1, Ordering::Relaxed);
                    self.in_flight.insert(tag, Box::new((now, sub)));
                }
                Err(_) => {
                    local.queue.borrow_mut().push_front(sub);
                    break;
                }
            }
        }
    }

    /// Pauses sending after ESME_RTHROTTLED (100 ms, doubling to 5 s, reset
    /// by the next success); says so once per pause, not once per answer.
    fn pause_for(&mut self, status: CommandStatus, now: Instant) {
        if self.paused_until.is_some_and(|t| t > now) {
            return;
        }
        self.paused_until = Some(now + self.pause);
        info!(
            "{}: upstream answered {}; pausing {:?}",
            self.name(),
            status.name().unwrap_or("?"),
            self.pause
        );
        self.pause = (self.pause * 2).min(THROTTLE_PAUSE.1);
    }

    /// Puts messages back at the front of the queue, keeping their order.
    fn hand_back(&mut self, subs: Vec<Submission>) {
        let local = &self.local;
        local
            .shared
            .in_flight
            .fetch_sub(subs.len() as i64, Ordering::Relaxed);
        local
            .shared
            .queued
            .fetch_add(subs.len() as i64, Ordering::Relaxed);
        let mut q = local.queue.borrow_mut();
        for sub in subs.into_iter().rev() {
            q.push_front(sub);
        }
        drop(q);
        local.kick();
    }

    fn set_bound(&mut self, bound: bool) {
        if self.bound == bound {
            return;
        }
        self.bound = bound;
        let sh = self.shared().clone();
        let delta = |a: &AtomicU32| {
            if bound {
                a.fetch_add(1, Ordering::Relaxed);
            } else {
                a.fetch_sub(1, Ordering::Relaxed);
            }
        };
        if self.bind_type.transmits() {
            delta(&sh.bound_tx[self.shard]);
        }
        if self.bind_type.receives() {
            delta(&sh.bound_rx[self.shard]);
        }
    }
}

impl Handler for LinkHandler {
    type Outbound = LinkCmd;

    fn on_start(&mut self, s: &mut Session, now: Instant) {
        let bind = self.shared().bind();
        let _ = s.bind(self.bind_type, bind, now);
    }

    fn on_event(&mut self, s: &mut Session, event: Event, now: Instant) {
        match event {
            Event::Bound { system_id, .. } => {
                self.set_bound(true);
                self.shared().binds.fetch_add(1, Ordering::Relaxed);
                let up = system_id.map_or(String::new(), |i| format!(" (upstream system_id {i})"));
                info!("{}: bound{up}", self.name());
                self.shared().set_status("bound", None);
                self.pump(s, now);
            }
            Event::Response { tag, pdu, .. } => {
                if let Some(entry) = self.in_flight.remove(&tag) {
                    let (_, sub) = *entry;
                    self.shared().in_flight.fetch_sub(1, Ordering::Relaxed);
                    let status = pdu.command_status;
                    let id = match &pdu.body {
                        Body::SubmitSmResp(Some(id)) | Body::DataSmResp(Some(id)) => {
                            Some(id.clone())
                        }
                        _ => None,
                    };
                    if status.is_ok() && pdu.command_id() != CommandId::GENERIC_NACK {
                        self.pause = THROTTLE_PAUSE.0;
                        self.sink.outcome(
                            self.link,
                            sub.id,
                            Outcome::Accepted(id.unwrap_or_default()),
                        );
                    } else if status == CommandStatus::RTHROTTLED {
                        // Not the message's fault: it goes first again after a pause.
                        self.shared().in_flight.fetch_add(1, Ordering::Relaxed);
                        self.pause_for(status, now);
                        self.hand_back(vec![sub]);
                        return;
                    } else if status == CommandStatus::RMSGQFUL {
                        // The upstream's queue is full: the message counts a temporary failure,
                        // retried later with its own backoff, or failed over.
                        self.sink.outcome(
                            self.link,
                            sub.id,
                            Outcome::Failed(Failure::Temporary(status)),
                        );
                    } else if status.is_temporary() {
                        self.sink.outcome(
                            self.link,
                            sub.id,
                            Outcome::Failed(Failure::Temporary(status)),
                        );
                    } else {
                        self.sink.outcome(
                            self.link,
                            sub.id,
                            Outcome::Failed(Failure::Permanent(status)),
                        );
                    }
                }
                self.pump(s, now);
            }
            // The session is closing: what it had in flight stays in `in_flight` and goes back
            // to the queue, in send order, when the connection is over (`on_close`).
            Event::RequestFailed {
                reason: RequestFailure::SessionClosed,
                ..
            } => {}
            Event::RequestFailed { tag, .. } => {
                if let Some(entry) = self.in_flight.remove(&tag) {
                    let sent = entry.0;
                    if s.last_received() <= sent {
                        // Nothing at all came from the upstream since this was sent: the link
                        // is dead, not the message. It goes back with the others when the
                        // session closes.
                        warn!(
                            "{}: no answer and nothing else from the upstream for {:?}; declaring the link dead",
                            self.name(),
                            now - sent
                        );
                        self.in_flight.insert(tag, entry);
                        s.abort();
                    } else {
                        self.shared().in_flight.fetch_sub(1, Ordering::Relaxed);
                        let (_, sub) = *entry;
                        self.sink
                            .outcome(self.link, sub.id, Outcome::Failed(Failure::Timeout));
                    }
                }
            }
            Event::Request(pdu) => match pdu.body {
                Body::DeliverSm(_) | Body::DataSm(_) => {
                    let reply = InboundReply {
                        tx: self.me.clone(),
                        seq: pdu.sequence_number,
                        command: pdu.command_id(),
                    };
                    self.sink.inbound(self.link, pdu, reply);
                }
                _ => {
                    let status = CommandStatus::RINVCMDID;
                    if let Some(reply) =
                        Pdu::error_reply(pdu.command_id(), pdu.sequence_number, status)
                    {
                        s.respond(pdu.sequence_number, status, reply.body, Tlvs::new());
                    }
                }
            },
            Event::Closed(CloseReason::BindRejected(status)) => {
                let msg = format!("bind refused by the upstream: {status}");
                warn!("{}: {msg}", self.name());
                self.shared().set_status("bind refused", Some(msg));
            }
            Event::Closed(reason) => {
                self.set_bound(false);
                let msg = format!("session closed: {reason:?}");
                if reason != CloseReason::Unbound {
                    warn!("{}: {msg}", self.name());
                }
                self.shared().set_status("down", Some(msg));
            }
            Event::InvalidPdu(e) => warn!("{}: invalid PDU from the upstream: {e}", self.name()),
            _ => {}
        }
    }

    fn on_outbound(&mut self, s: &mut Session, item: LinkCmd, now: Instant) {
        match item {
            LinkCmd::Kick => self.pump(s, now),
            LinkCmd::Respond {
                seq,
                command,
                status,
            } => {
                if let Some(body) = inbound_answer(command, seq, status) {
                    s.respond(seq, status, body, Tlvs::new());
                }
                self.last_answer = now;
                // A kick is not sent while the inbox holds anything (this answer, say): look
                // at the queue here too.
                self.pump(s, now);
            }
            LinkCmd::Stop => {
                self.stopping = true;
                if s.unbind(now).is_err() {
                    s.abort();
                }
            }
        }
    }

    fn can_read(&self, _: &Session) -> bool {
        true
    }

    fn can_take(&self, _: &Session) -> bool {
        true
    }

    fn next_wakeup(&self) -> Option<Instant> {
        [self.paused_until, self.rate_wait, self.owed_wait]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_wakeup(&mut self, s: &mut Session, now: Instant) {
        self.pump(s, now);
    }

    fn on_close(&mut self, _: &mut Session, why: &str, _: IoCounts) {
        self.set_bound(false);
        let left: Vec<Submission> = std::mem::take(&mut self.in_flight)
            .into_values()
            .map(|entry| entry.1)
            .collect();
        if !left.is_empty() {
            warn!(
                "{}: {} messages in flight handed back ({why})",
                self.name(),
                left.len()
            );
            self.hand_back(left);
        }
        // The last transmitter of the link on this shard is gone: what waits in its queue
        // goes back to the shard as link down (to the backup, or to wait for the link) —
        // unless a reload replaced the slot: the new slots take the queue (see
        // `LocalLink::strand_check` for when they never bind).
        let replaced = !self.shared().is_removed() && self.shared().generation() != self.generation;
        if self.bind_type.transmits()
            && !replaced
            && self.shared().bound_tx[self.shard].load(Ordering::Relaxed) == 0
        {
            self.local.give_back(&*self.sink, self.link);
        }
    }
}

/// How often a slot on standby looks whether its node holds the link's lease now.
const LEASE_POLL: Duration = Duration::from_millis(250);

/// The next reconnect delay: doubled per failure between the link's bounds, with jitter
/// (between half and all of it) so that slots and gateways do not reconnect in step.
fn backoff(cfg: &ClientLink, failures: u32, draw_percent: f64) -> Duration {
    let base = cfg.reconnect_min.as_secs_f64() * 2f64.powi(failures.min(30) as i32);
    let capped = base.min(cfg.reconnect_max.as_secs_f64());
    Duration::from_secs_f64(capped * (0.5 + draw_percent / 200.0))
}

/// One bind slot, until the gateway stops or a reload changes the link (its generation is no
/// longer `generation`). (Each argument is a different piece of the slot's world; a struct to
/// carry them would only be unpacked here.)
#[allow(clippy::too_many_arguments)]
pub async fn run_slot(
    sink: Rc<dyn LinkSink>,
    local: Rc<LocalLink>,
    shard: ShardId,
    slot: usize,
    bind_type: BindType,
    me: Rc<LocalSender<LinkCmd>>,
    inbox: LocalReceiver<LinkCmd>,
    max_pdu_size: u32,
    generation: u64,
) {
    let shared = local.shared.clone();
    let cfg_now = shared.config.load_full();
    let cfg = &*cfg_now;
    let tls_now = shared.tls.load_full();
    let name = format!(
        "link {} slot {} ({}, shard {})",
        cfg.name,
        slot,
        bind_type.name(),
        shard
    );
    let replaced = || shared.generation() != generation;
    let mut failures = 0u32;
    while !sink.stopping() && !replaced() {
        if !sink.may_bind(shared.index) {
            // Another node of the cluster holds the link's lease: wait until this one does.
            shared.set_status("standby", None);
            while !sink.stopping() && !replaced() && !sink.may_bind(shared.index) {
                glommio::timer::sleep(LEASE_POLL).await;
            }
            continue;
        }
        shared.connect_attempts.fetch_add(1, Ordering::Relaxed);
        let target = format!("{}:{}", cfg.server, cfg.port);
        let connected = async {
            let addr = resolve(&cfg.server, cfg.port).await?;
            glommio::net::TcpStream::connect_timeout(addr, cfg.response_timeout)
                .await
                .map_err(|e| format!("cannot connect to {target}: {e}"))
        }
        .await;
        let was_bound;
        match connected {
            Err(e) => {
                shared.set_status("connecting", Some(e.clone()));
                let delay = backoff(cfg, failures, sink.draw());
                warn!("{name}: {e}; retry in {delay:.1?}");
                failures += 1;
                sleep_unless_stopping(&*sink, delay, &replaced).await;
                continue;
            }
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                info!(
                    "{name}: connected to {target}{}",
                    if cfg.tls { ", TLS handshake" } else { "" }
                );
                let session = Session::new(
                    Role::Esme,
                    shared.session_config(max_pdu_size),
                    Instant::now(),
                );
                let handler = LinkHandler {
                    sink: sink.clone(),
                    local: local.clone(),
                    me: me.clone(),
                    shard,
                    link: shared.index,
                    slot,
                    bind_type,
                    in_flight: BTreeMap::new(),
                    next_tag: 0,
                    paused_until: None,
                    pause: THROTTLE_PAUSE.0,
                    rate_wait: None,
                    last_answer: Instant::now(),
                    hold_since: None,
                    owed_wait: None,
                    bound: false,
                    stopping: false,
                    generation,
                };
                let limits = DriverLimits {
                    write_timeout: cfg.response_timeout,
                    write_each: false,
                    gather: true,
                };
                let binds_before = shared.binds.load(Ordering::Relaxed);
                let stream = crate::net::direct::Direct::new(stream);
                match &tls_now {
                    None => drive(stream, session, handler, &inbox, limits).await,
                    Some(tls) => {
                        let host = cfg.sni.clone().unwrap_or_else(|| cfg.server.clone());
                        let server_name =
                            match rustls::pki_types::ServerName::try_from(host.clone()) {
                                Ok(n) => n,
                                Err(e) => {
                                    warn!("{name}: {host:?} is not a TLS server name: {e}");
                                    sleep_unless_stopping(&*sink, cfg.reconnect_max, &replaced)
                                        .await;
                                    continue;
                                }
                            };
                        let connector = futures_rustls::TlsConnector::from(tls.clone());
                        match glommio::timer::timeout(cfg.response_timeout, async {
                            connector
                                .connect(server_name, stream)
                                .await
                                .map_err(Into::into)
                        })
                        .await
                        {
                            Ok(s) => drive(s, session, handler, &inbox, limits).await,
                            Err(e) => {
                                let msg = format!("TLS handshake with {target} failed: {e}");
                                shared.set_status("tls failed", Some(msg.clone()));
                                warn!("{name}: {msg}");
                            }
                        }
                    }
                }
                was_bound = shared.binds.load(Ordering::Relaxed) > binds_before;
            }
        }
        if sink.stopping() || replaced() {
            break;
        }
        failures = if was_bound { 0 } else { failures + 1 };
        let delay = backoff(cfg, failures.saturating_sub(1), sink.draw());
        info!("{name}: reconnecting in {delay:.1?}");
        sleep_unless_stopping(&*sink, delay, &replaced).await;
    }
}

/// The address of `host`: parsed when it is one, else looked up on glommio's blocking pool
/// (getaddrinfo may hang; a shard must not).
async fn resolve(host: &str, port: u16) -> Result<std::net::SocketAddr, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    let target = format!("{host}:{port}");
    let lookup = target.clone();
    glommio::executor()
        .spawn_blocking(move || lookup.to_socket_addrs().map(|mut a| a.next()))
        .await
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .ok_or_else(|| format!("{target} resolves to no address"))
}

/// Sleeps, waking early when the gateway stops or the slot is replaced.
async fn sleep_unless_stopping(sink: &dyn LinkSink, d: Duration, replaced: &dyn Fn() -> bool) {
    let end = Instant::now() + d;
    while !sink.stopping() && !replaced() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        glommio::timer::sleep((end - now).min(Duration::from_millis(50))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submits_wait_for_owed_answers_only_while_they_flow_and_not_for_long() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut since = None;
        // Fewer than half a window owed: no hold.
        assert_eq!(owed_hold(31, 64, &mut since, t0, t0), None);
        assert_eq!(since, None);
        // Half owed, an answer just went: held until answers stop or OWED_IDLE passes.
        assert_eq!(owed_hold(32, 64, &mut since, t0, t0), Some(ms(5)));
        // Answers keep going: held, never past OWED_HOLD_MAX from the start.
        assert_eq!(owed_hold(40, 64, &mut since, ms(4), ms(4)), Some(ms(9)));
        assert_eq!(owed_hold(40, 64, &mut since, ms(18), ms(18)), Some(ms(20)));
        assert_eq!(owed_hold(40, 64, &mut since, ms(20), ms(20)), None);
        // Still owed after the longest hold: submits go (the hold does not start again).
        assert_eq!(owed_hold(40, 64, &mut since, ms(25), ms(25)), None);
        // Fewer owed: a later hold may start again.
        assert_eq!(owed_hold(10, 64, &mut since, ms(26), ms(26)), None);
        assert_eq!(owed_hold(33, 64, &mut since, ms(27), ms(27)), Some(ms(32)));
        // Answers that do not flow (an unmatched receipt waits seconds for its answer): no
        // hold at all.
        let mut since = None;
        assert_eq!(owed_hold(64, 64, &mut since, t0, ms(100)), None);
    }

    #[test]
    fn backoff_doubles_within_bounds_with_jitter() {
        let mut c = crate::config::Config::parse(&crate::config::ConfigFiles {
            ysmpp: Some("[smpp-client]\nclients=a\n[a]\nserver=h\nsystem_id=x\nreconnect=1s,8s\n"),
            ..Default::default()
        })
        .unwrap();
        let l = c.clients.remove(0);
        assert_eq!(backoff(&l, 0, 100.0), Duration::from_secs(1));
        assert_eq!(backoff(&l, 0, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(&l, 2, 100.0), Duration::from_secs(4));
        assert_eq!(backoff(&l, 10, 100.0), Duration::from_secs(8));
        assert!(backoff(&l, 10, 50.0) >= Duration::from_secs(4));
    }
}
