//! An ESME's connection: bind checked against regfile.conf, per-account limits, intake of
//! the messages it submits, and the deliveries (messages, receipts, MO) it receives.
//!
//! Limits, as an ESME meets them:
//! - unknown system_id: bind_resp ESME_RINVSYSID, then close; wrong password: ESME_RINVPASWD
//!   (compared in constant time); bind from an address not in `allowed_ips`, or over
//!   `max_binds`: ESME_RBINDFAIL; the gateway stopping: ESME_RBINDFAIL;
//! - over the account's `rate`: the message is answered ESME_RTHROTTLED;
//! - over the account's `window` of unanswered requests: the gateway stops reading the
//!   socket until answers go out (TCP pushes back; nothing is buffered without bound).
//!
//! Intake: a message is given the gateway's id, routed, logged, and answered with that id
//! once its record is durable (a route file reject is answered at once with its status; a
//! message with no route is accepted and ends undeliverable, with a receipt when asked). The
//! simulator answers at once and schedules its receipt; a gateway without routes and without
//! `default_route` terminates messages itself (answer, then a DELIVRD receipt when asked).
//!
//! The same connection type serves an upstream that called in with outbind: it then becomes
//! that link's receiver, and what it sends is handled as the link's.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use log::{debug, info};

use super::intake::Via;
use super::messages::{now_ms, Reply, Waiter};
use super::state::Mode;
use super::{sim, ConnInbox, Delivery, Outbound, ShardState};
use crate::accounts::{constant_time_eq, AccountState};
use crate::flow::{Outcome, Target};
use crate::ids::{LinkId, MessageId};
use crate::limit::RateLimiter;
use crate::net::conn::{Handler, IoCounts};
use crate::smpp::session::RequestFailure;
use crate::smpp::{
    Address, BindType, Body, COctet, CommandStatus, DestAddress, Event, Pdu, Session, SubmitMulti,
    SubmitMultiResp, SubmitSm, Tlvs, UnsuccessSme,
};

/// The system_id the gateway gives in bind_resp.
pub const SYSTEM_ID: &str = "smppgw";

pub struct EsmeHandler {
    shard: Rc<ShardState>,
    conn: u64,
    peer: Option<SocketAddr>,
    /// The peer's address as CDRs write it (made once).
    peer_text: Bytes,
    account: Option<Arc<AccountState>>,
    bind_type: Option<BindType>,
    receiver: bool,
    window: usize,
    /// Deliveries taken from the inbox, waiting for room in the window.
    backlog: VecDeque<Delivery>,
    /// Deliveries sent, by request tag: the message each one is.
    in_flight: HashMap<u64, MessageId>,
    next_tag: u64,
    /// The simulator's per-session throttle.
    throttle: Option<RateLimiter>,
    /// Set when an upstream called in with outbind: this connection is that link's receiver.
    outbind_link: Option<(LinkId, BindType, bool)>,
    /// This connection's inbox; its delivery count falls as deliveries are done with.
    inbox: Rc<ConnInbox>,
}

impl EsmeHandler {
    pub fn new(
        shard: Rc<ShardState>,
        conn: u64,
        peer: Option<SocketAddr>,
        inbox: Rc<ConnInbox>,
    ) -> EsmeHandler {
        let window = shard.shared.config.general.window;
        EsmeHandler {
            shard,
            conn,
            peer,
            peer_text: peer.map_or_else(Bytes::new, |p| Bytes::from(p.to_string())),
            account: None,
            bind_type: None,
            receiver: false,
            window,
            backlog: VecDeque::new(),
            in_flight: HashMap::new(),
            next_tag: 0,
            throttle: None,
            outbind_link: None,
            inbox,
        }
    }

    fn peer(&self) -> String {
        self.peer
            .map_or("an unknown address".into(), |p| p.to_string())
    }

    fn bind(
        &mut self,
        s: &mut Session,
        seq: u32,
        bind_type: BindType,
        system_id: &COctet,
        password: &COctet,
    ) {
        let shared = self.shard.shared.clone();
        let id = String::from_utf8_lossy(system_id.as_bytes()).into_owned();
        let refuse = |s: &mut Session, status: CommandStatus, why: &str| {
            shared
                .counters(self.shard.id)
                .bind_failures
                .fetch_add(1, Ordering::Relaxed);
            info!(
                "bind {} {id:?} from {} refused: {why} ({})",
                bind_type.name(),
                self.peer(),
                status.name().unwrap_or("?")
            );
            let _ = s.reject_bind(seq, status);
        };
        if shared.is_stopping() {
            return refuse(s, CommandStatus::RBINDFAIL, "the gateway is stopping");
        }
        let Some(account) = shared.accounts.for_bind(&id) else {
            return refuse(
                s,
                CommandStatus::RINVSYSID,
                "no such account in regfile.conf",
            );
        };
        if account.is_removed() {
            return refuse(
                s,
                CommandStatus::RINVSYSID,
                "account removed from regfile.conf",
            );
        }
        if let Some(cfg) = &account.config() {
            if let Some(ip) = self.peer.map(|p| p.ip()) {
                if !cfg.ip_allowed(ip) {
                    return refuse(s, CommandStatus::RBINDFAIL, "address not in allowed_ips");
                }
            }
            if !constant_time_eq(cfg.password.as_bytes(), password.as_bytes()) {
                return refuse(s, CommandStatus::RINVPASWD, "wrong password");
            }
            let binds = account.binds.fetch_add(1, Ordering::Relaxed) + 1;
            if cfg.max_binds > 0 && binds > cfg.max_binds {
                account.binds.fetch_sub(1, Ordering::Relaxed);
                return refuse(
                    s,
                    CommandStatus::RBINDFAIL,
                    &format!("max_binds {} reached", cfg.max_binds),
                );
            }
            self.window = cfg.window;
        } else {
            account.binds.fetch_add(1, Ordering::Relaxed);
        }
        if let Mode::Simulator(sim) = &shared.mode {
            self.throttle = RateLimiter::new(sim.throttle, shared.epoch);
        }
        let me = match shared.mode {
            Mode::Terminating => SYSTEM_ID,
            Mode::Simulator(_) => "smppsim",
        };
        if s.accept_bind(seq, COctet::from_static(me)).is_err() {
            account.binds.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        shared
            .counters(self.shard.id)
            .binds
            .fetch_add(1, Ordering::Relaxed);
        account.rate.bound(self.shard.id, true);
        info!(
            "{id} bound as {} from {} (shard {}, {} binds)",
            bind_type.name(),
            self.peer(),
            self.shard.id,
            account.binds.load(Ordering::Relaxed)
        );
        self.bind_type = Some(bind_type);
        let account_id = account.id;
        self.inbox.account.set(Some(account_id));
        self.account = Some(account);
        if bind_type.receives() {
            self.receiver = true;
            self.shard.add_receiver(account_id, self.conn);
        }
    }

    /// A message-carrying request from the bound ESME.
    fn message(&mut self, s: &mut Session, pdu: &Pdu, now: Instant) {
        let Some(account) = self.account.clone() else {
            return;
        };
        let shared = self.shard.shared.clone();
        // The account's rate counts messages: a submit_multi costs one per destination.
        let cost = match &pdu.body {
            Body::SubmitMulti(m) => m.dests.len().clamp(1, 255) as u32,
            _ => 1,
        };
        let throttled = !account.rate.try_take(self.shard.id, cost, now)
            || self.throttle.as_ref().is_some_and(|r| !r.try_take(1, now));
        if throttled {
            shared
                .counters(self.shard.id)
                .rejected
                .fetch_add(1, Ordering::Relaxed);
            return self.refuse(s, pdu, &account, CommandStatus::RTHROTTLED);
        }
        // Receipts the ESME does not collect are kept for it, up to `queue_limit` per shard;
        // beyond, it may not ask for more.
        let registered_delivery = match &pdu.body {
            Body::SubmitMulti(m) => m.registered_delivery,
            _ => pdu.message().map_or(0, |m| m.registered_delivery.0),
        };
        let limit = shared.config.general.queue_limit;
        if crate::smpp::RegisteredDelivery(registered_delivery).wants_receipt()
            && self
                .shard
                .msgs
                .flow
                .borrow()
                .queued(Target::Esme(account.id))
                >= limit
        {
            self.shard.log_refusal(|| {
                format!(
                    "{}: {limit} receipts already wait for it to bind a receiver; a message asking for one is answered ESME_RMSGQFUL",
                    account.system_id
                )
            });
            shared
                .counters(self.shard.id)
                .rejected
                .fetch_add(1, Ordering::Relaxed);
            return self.refuse(s, pdu, &account, CommandStatus::RMSGQFUL);
        }
        if let Mode::Simulator(opts) = &shared.mode {
            return self.simulate(s, pdu, opts, &account);
        }
        if let Some(status) = self.shard.msgs.log.refusal() {
            self.shard.log_refusal(|| {
                format!(
                    "{}: the message log cannot write; answered {}",
                    account.system_id,
                    status.name().unwrap_or("?")
                )
            });
            shared
                .counters(self.shard.id)
                .rejected
                .fetch_add(1, Ordering::Relaxed);
            return self.refuse(s, pdu, &account, status);
        }
        match &pdu.body {
            Body::SubmitMulti(m) => self.submit_multi(s, pdu, m, &account),
            _ => self.submit(s, pdu, &account),
        }
    }

    /// A request from the ESME (binds are handled apart).
    fn request(&mut self, s: &mut Session, pdu: Pdu, now: Instant) {
        if let Some(m) = &self.shard.metrics {
            m.pdu_in(pdu.command_id());
        }
        match &pdu.body {
            Body::SubmitSm(_) | Body::DataSm(_) | Body::SubmitMulti(_) => {
                self.message(s, &pdu, now)
            }
            other => {
                // Requests the gateway keeps no state for.
                let status = match other {
                    Body::QuerySm(_) => CommandStatus::RQUERYFAIL,
                    Body::CancelSm(_) => CommandStatus::RCANCELFAIL,
                    Body::ReplaceSm(_) => CommandStatus::RREPLACEFAIL,
                    Body::BroadcastSm(_) => CommandStatus::RBCASTFAIL,
                    Body::QueryBroadcastSm(_) => CommandStatus::RBCASTQUERYFAIL,
                    Body::CancelBroadcastSm(_) => CommandStatus::RBCASTCANCELFAIL,
                    _ => CommandStatus::RINVCMDID,
                };
                fail(self.shard.metrics.as_ref(), s, &pdu, status)
            }
        }
    }

    /// Refuses a message before it is routed (with its CDR leg).
    fn refuse(&self, s: &mut Session, pdu: &Pdu, account: &AccountState, status: CommandStatus) {
        self.shard.cdr_submit(
            pdu,
            None,
            None,
            account,
            None,
            status,
            &self.peer_text,
            "smppserver",
        );
        fail(self.shard.metrics.as_ref(), s, pdu, status)
    }

    /// submit_sm or data_sm.
    fn submit(&mut self, s: &mut Session, pdu: &Pdu, account: &AccountState) {
        let Some(view) = pdu.message() else {
            return fail(
                self.shard.metrics.as_ref(),
                s,
                pdu,
                CommandStatus::RINVCMDID,
            );
        };
        let id = self.shard.next_id();
        let decision = self
            .shard
            .decide(pdu, view.source, view.dest, account, id, Via::Smpp);
        match self
            .shard
            .intake(pdu, id, id, account, decision, &self.peer_text, Via::Smpp)
        {
            Ok(lsn) => {
                let text = self.shard.id_text(id);
                let body = match pdu.body {
                    Body::DataSm(_) => Body::DataSmResp(Some(text)),
                    _ => Body::SubmitSmResp(Some(text)),
                };
                self.answer_after(s, lsn, pdu.sequence_number, id, body);
            }
            Err(status) => {
                self.shard
                    .shared
                    .counters(self.shard.id)
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
                fail(self.shard.metrics.as_ref(), s, pdu, status)
            }
        }
    }

    /// submit_multi: each destination is routed and logged on its own, all under the one id
    /// the ESME gets (every destination's receipt names it). The answer lists the
    /// destinations refused in unsuccess_sme, in request order; when all are refused it is
    /// their common error (ESME_RSUBMITFAIL when they differ).
    fn submit_multi(
        &mut self,
        s: &mut Session,
        pdu: &Pdu,
        m: &SubmitMulti,
        account: &AccountState,
    ) {
        let billid = self.shard.next_id();
        let mut unsuccess: Vec<UnsuccessSme> = Vec::new();
        let (mut accepted, mut lsn) = (0usize, 0u64);
        for d in &m.dests {
            let addr = match d {
                DestAddress::Sme(a) => a,
                DestAddress::DistributionList(name) => {
                    self.shard.log_refusal(|| {
                        format!(
                            "{}: submit_multi to distribution list {:?}: the gateway keeps no distribution lists",
                            account.system_id,
                            String::from_utf8_lossy(name.as_bytes())
                        )
                    });
                    unsuccess.push(UnsuccessSme {
                        dest: Address {
                            addr: name.clone(),
                            ..Address::default()
                        },
                        error_status_code: CommandStatus::RINVDLNAME,
                    });
                    continue;
                }
            };
            let part = Pdu {
                command_status: CommandStatus::ROK,
                sequence_number: pdu.sequence_number,
                body: Body::SubmitSm(part_of(m, addr)),
                tlvs: pdu.tlvs.clone(),
            };
            let decision = self
                .shard
                .decide(&part, &m.source, addr, account, billid, Via::Smpp);
            let id = self.shard.next_id();
            match self.shard.intake(
                &part,
                id,
                billid,
                account,
                decision,
                &self.peer_text,
                Via::Smpp,
            ) {
                Ok(l) => {
                    accepted += 1;
                    lsn = lsn.max(l);
                }
                Err(status) => unsuccess.push(UnsuccessSme {
                    dest: addr.clone(),
                    error_status_code: status,
                }),
            }
        }
        let seq = pdu.sequence_number;
        if accepted == 0 {
            let first = unsuccess
                .first()
                .map_or(CommandStatus::RINVNUMDESTS, |u| u.error_status_code);
            let status = if unsuccess.iter().all(|u| u.error_status_code == first) {
                first
            } else {
                CommandStatus::RSUBMITFAIL
            };
            return fail(self.shard.metrics.as_ref(), s, pdu, status);
        }
        let body = Body::SubmitMultiResp(Some(SubmitMultiResp {
            message_id: self.shard.id_text(billid),
            unsuccess: unsuccess.into_iter().collect(),
        }));
        self.answer_after(s, lsn, seq, billid, body);
    }

    /// Answers at once when `lsn` is durable, else once the log gets there; and while the
    /// shard's backlog for its links is over its high-water mark, once it has gone down (an
    /// ESME faster than the upstreams fills its window and waits, instead of the spool
    /// filling; its socket is still read, for the answers to what the gateway sends it).
    fn answer_after(&self, s: &mut Session, lsn: u64, seq: u32, billid: MessageId, body: Body) {
        let w = Waiter::Respond {
            conn: self.conn,
            seq,
            status: CommandStatus::ROK,
            body,
            billid: Some(billid),
            at: Instant::now(),
        };
        if self.shard.backlog_high() {
            return self.shard.hold_answer(lsn, w);
        }
        match w {
            Waiter::Respond { body, .. } if self.shard.is_committed(lsn) => respond(
                self.shard.metrics.as_ref(),
                s,
                seq,
                CommandStatus::ROK,
                body,
            ),
            w => self.shard.after(lsn, w),
        }
    }

    /// The simulator: refuses or throttles as configured, else answers at once (in the
    /// configured id form) and schedules a receipt when asked.
    fn simulate(
        &mut self,
        s: &mut Session,
        pdu: &Pdu,
        opts: &super::SimOptions,
        account: &AccountState,
    ) {
        if let Err(status) = sim::verdict(opts, &self.shard.sim, self.shard.percent()) {
            self.shard
                .shared
                .counters(self.shard.id)
                .rejected
                .fetch_add(1, Ordering::Relaxed);
            return fail(self.shard.metrics.as_ref(), s, pdu, status);
        }
        let id = self.shard.next_id();
        let hex = self.shard.id_text(id);
        let resp_id = sim::in_radix(&hex, opts.msgid.0);
        let receipt_id = sim::in_radix(&hex, opts.msgid.1);
        let parts: Vec<Pdu> = match &pdu.body {
            Body::SubmitMulti(m) => m
                .dests
                .iter()
                .filter_map(|d| match d {
                    DestAddress::Sme(a) => Some(Pdu {
                        command_status: CommandStatus::ROK,
                        sequence_number: pdu.sequence_number,
                        body: Body::SubmitSm(part_of(m, a)),
                        tlvs: pdu.tlvs.clone(),
                    }),
                    DestAddress::DistributionList(_) => None,
                })
                .collect(),
            _ => vec![pdu.clone()],
        };
        for part in &parts {
            let Some(view) = part.message() else { continue };
            if let Some(path) = &opts.record {
                self.shard.sim.record(path, &view.user_data);
            }
            // Bits 1-0: 1 = receipt on success or failure, 3 = on success only (5.0).
            if matches!(view.registered_delivery.0 & 0x03, 1 | 3) {
                let r = sim::receipt(part, receipt_id.as_bytes(), now_ms());
                self.shard
                    .receipt_message(account, id, r, opts.receipt_delay.as_millis() as u64);
            }
        }
        self.shard
            .shared
            .counters(self.shard.id)
            .accepted
            .fetch_add(1, Ordering::Relaxed);
        let body = match pdu.body {
            Body::SubmitMulti(_) => Body::SubmitMultiResp(Some(SubmitMultiResp {
                message_id: resp_id,
                unsuccess: Default::default(),
            })),
            Body::DataSm(_) => Body::DataSmResp(Some(resp_id)),
            _ => Body::SubmitSmResp(Some(resp_id)),
        };
        respond(
            self.shard.metrics.as_ref(),
            s,
            pdu.sequence_number,
            CommandStatus::ROK,
            body,
        );
    }

    /// An upstream called in with outbind: when it names a client link by that link's
    /// system_id and password, this connection becomes that link's receiver (transceiver for a
    /// 5.0 link); otherwise it is closed.
    fn outbind(&mut self, s: &mut Session, o: &crate::smpp::Outbind, now: Instant) {
        let links = &self.shard.shared.links;
        let found = links.iter().position(|l| {
            !l.is_removed()
                && l.config().enabled
                && l.config().bind.receives()
                && l.config().system_id.as_bytes() == o.system_id.as_bytes()
                && constant_time_eq(l.config().system_password.as_bytes(), o.password.as_bytes())
        });
        let Some(i) = found else {
            info!(
                "outbind from {} as {:?} matches no client link; closing",
                self.peer(),
                o.system_id
            );
            s.abort();
            return;
        };
        let link = &links[i];
        let bt = if link.config().interface_version >= 0x50 {
            BindType::Transceiver
        } else {
            BindType::Receiver
        };
        let cfg = link.session_config(self.shard.shared.config.general.max_pdu_size);
        if s.switch_to_esme(cfg).is_err() || s.bind(bt, link.bind(), now).is_err() {
            s.abort();
            return;
        }
        info!(
            "outbind from {} for link {}: binding as {}",
            self.peer(),
            link.config().name,
            bt.name()
        );
        self.outbind_link = Some((i, bt, false));
    }

    /// Sends waiting deliveries while the window has room.
    fn pump(&mut self, s: &mut Session, now: Instant) {
        while s.window_available() > 0 {
            let Some(d) = self.backlog.pop_front() else {
                break;
            };
            let tag = self.next_tag;
            self.next_tag += 1;
            match s.send_request(Body::DeliverSm(d.body), d.tlvs, tag, now) {
                Ok(_) => {
                    self.count(|c| &c.deliveries_sent);
                    if let Some(m) = &self.shard.metrics {
                        m.deliver_out();
                    }
                    self.in_flight.insert(tag, d.id);
                }
                Err(e) => {
                    debug!("deliver_sm not sent ({e:?}); offered again later");
                    self.done_with_delivery();
                    self.shard.report(d.id, Outcome::NoRoom);
                    break;
                }
            }
        }
    }

    /// Adds one to a shared counter.
    fn count(&self, which: impl Fn(&super::state::Counters) -> &std::sync::atomic::AtomicU64) {
        which(self.shard.shared.counters(self.shard.id)).fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery this connection took is done with (answered, or given back).
    fn done_with_delivery(&self) {
        self.inbox
            .deliveries
            .set(self.inbox.deliveries.get().saturating_sub(1));
    }

    /// A request from an upstream that called in with outbind.
    fn on_outbind_event(&mut self, s: &mut Session, event: Event, link: LinkId, bt: BindType) {
        let name = &self.shard.shared.links[link].name;
        match event {
            Event::Bound { .. } => {
                self.outbind_link = Some((link, bt, true));
                self.shard.shared.links[link].bound_rx[self.shard.id]
                    .fetch_add(1, Ordering::Relaxed);
                info!(
                    "link {name}: bound as {} over the upstream's outbind",
                    bt.name()
                );
            }
            Event::Request(pdu) => match pdu.body {
                Body::DeliverSm(_) | Body::DataSm(_) => {
                    let reply = Reply::Conn {
                        conn: self.conn,
                        seq: pdu.sequence_number,
                        command: pdu.command_id(),
                    };
                    self.shard.link_inbound(link, pdu, reply);
                }
                _ => {
                    let status = CommandStatus::RINVCMDID;
                    if let Some(reply) =
                        Pdu::error_reply(pdu.command_id(), pdu.sequence_number, status)
                    {
                        respond(
                            self.shard.metrics.as_ref(),
                            s,
                            pdu.sequence_number,
                            status,
                            reply.body,
                        );
                    }
                }
            },
            Event::Closed(reason) => info!("link {name}: outbind session closed: {reason:?}"),
            _ => {}
        }
    }
}

/// Answers a request with an error status.
fn fail(
    m: Option<&crate::metrics::ShardMetrics>,
    s: &mut Session,
    pdu: &Pdu,
    status: CommandStatus,
) {
    if let Some(reply) = Pdu::error_reply(pdu.command_id(), pdu.sequence_number, status) {
        respond(m, s, pdu.sequence_number, status, reply.body);
    }
}

/// Sends a response, counted by command and status.
fn respond(
    m: Option<&crate::metrics::ShardMetrics>,
    s: &mut Session,
    seq: u32,
    status: CommandStatus,
    body: Body,
) {
    if let Some(m) = m {
        m.pdu_out(&body, status);
    }
    s.respond(seq, status, body, Tlvs::new());
}

/// One destination of a submit_multi as a submit_sm.
fn part_of(m: &SubmitMulti, dest: &Address) -> SubmitSm {
    SubmitSm {
        service_type: m.service_type.clone(),
        source: m.source.clone(),
        dest: dest.clone(),
        esm_class: m.esm_class,
        protocol_id: m.protocol_id,
        priority_flag: m.priority_flag,
        schedule_delivery_time: m.schedule_delivery_time.clone(),
        validity_period: m.validity_period.clone(),
        registered_delivery: m.registered_delivery,
        replace_if_present_flag: m.replace_if_present_flag,
        data_coding: m.data_coding,
        sm_default_msg_id: m.sm_default_msg_id,
        short_message: m.short_message.clone(),
    }
}

impl Handler for EsmeHandler {
    type Outbound = Outbound;

    fn on_event(&mut self, s: &mut Session, event: Event, now: Instant) {
        if let Some((link, bt, _)) = self.outbind_link {
            return self.on_outbind_event(s, event, link, bt);
        }
        match event {
            Event::Outbind(o) => self.outbind(s, &o, now),
            Event::BindRequest {
                sequence_number,
                bind_type,
                bind,
            } => self.bind(
                s,
                sequence_number,
                bind_type,
                &bind.system_id,
                &bind.password,
            ),
            Event::Request(pdu) => self.request(s, pdu, now),
            Event::Response { tag, pdu, .. } => {
                if let Some(id) = self.in_flight.remove(&tag) {
                    self.done_with_delivery();
                    let status = pdu.command_status;
                    let outcome = if status.is_ok() {
                        self.count(|c| &c.deliveries_acked);
                        Outcome::Delivered
                    } else if status.is_temporary() {
                        Outcome::Temporary(status)
                    } else {
                        Outcome::Permanent(status)
                    };
                    self.shard.report(id, outcome);
                }
                self.pump(s, now);
            }
            Event::RequestFailed { tag, reason, .. } => {
                if let Some(id) = self.in_flight.remove(&tag) {
                    self.done_with_delivery();
                    let outcome = match reason {
                        RequestFailure::Timeout => Outcome::Timeout,
                        RequestFailure::SessionClosed => Outcome::Unreachable,
                    };
                    self.shard.report(id, outcome);
                }
            }
            Event::InvalidPdu(e) => info!("invalid PDU from {}: {e}", self.peer()),
            Event::UnexpectedResponse(p) => {
                debug!("unexpected {} from {}", p.command_id(), self.peer())
            }
            Event::Closed(reason) => debug!("session with {} closed: {reason:?}", self.peer()),
            Event::Bound { .. } => {}
        }
    }

    fn on_outbound(&mut self, s: &mut Session, item: Outbound, now: Instant) {
        match item {
            Outbound::Deliver(d) => {
                self.backlog.push_back(d);
                self.pump(s, now);
            }
            Outbound::Respond { seq, status, body } => {
                respond(self.shard.metrics.as_ref(), s, seq, status, body)
            }

            Outbound::Stop => {
                if s.unbind(now).is_err() {
                    s.abort();
                }
            }
        }
    }

    /// Reading stops while the ESME has a window's worth of requests unanswered. (It must not
    /// stop because deliveries to the ESME are backed up: the responses that relieve them
    /// arrive on the same socket. Backed-up deliveries wait in the backlog, bounded by the
    /// inbox, and in the flow.)
    fn can_read(&self, s: &Session) -> bool {
        s.inbound_outstanding() < self.window
    }

    /// Always: the inbox holds answers to this peer's requests, which must not wait, and
    /// deliveries, which its senders bound (see `ConnInbox`).
    fn can_take(&self, _: &Session) -> bool {
        true
    }

    fn on_close(&mut self, _s: &mut Session, why: &str, io: IoCounts) {
        if let Some((link, _, true)) = self.outbind_link {
            self.shard.shared.links[link].bound_rx[self.shard.id].fetch_sub(1, Ordering::Relaxed);
        }
        let c = self.shard.shared.counters(self.shard.id);
        c.reads.fetch_add(io.reads, Ordering::Relaxed);
        c.writes.fetch_add(io.writes, Ordering::Relaxed);
        c.frames_in.fetch_add(io.frames_in, Ordering::Relaxed);
        if let Some(account) = self.account.take() {
            if self.receiver {
                self.shard.remove_receiver(account.id, self.conn);
            }
            account.binds.fetch_sub(1, Ordering::Relaxed);
            account.rate.bound(self.shard.id, false);
            info!(
                "{} ({}) from {} disconnected: {why}",
                account.system_id,
                self.bind_type.map_or("unbound", |b| b.name()),
                self.peer()
            );
        } else {
            debug!("connection from {} closed before bind: {why}", self.peer());
        }
        // Deliveries not answered go back to their flow, to be offered again.
        let ids: Vec<MessageId> = self
            .in_flight
            .drain()
            .map(|(_, id)| id)
            .chain(self.backlog.drain(..).map(|d| d.id))
            .collect();
        self.inbox.deliveries.set(0);
        for id in ids {
            self.shard.report(id, Outcome::Unreachable);
        }
    }
}
