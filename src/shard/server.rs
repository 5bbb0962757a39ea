//! The server side of one connection: binds checked against regfile.conf, per-account
//! limits, and the terminating mode (and simulator) that answers messages itself and sends
//! receipts to the account's receivers.
//!
//! Limits, as an ESME meets them:
//! - unknown system_id: bind_resp ESME_RINVSYSID, then close; wrong password: ESME_RINVPASWD
//!   (compared in constant time); bind from an address not in `allowed_ips`, or over
//!   `max_binds`: ESME_RBINDFAIL; the gateway stopping: ESME_RBINDFAIL;
//! - over the account's `rate`: the message is answered ESME_RTHROTTLED;
//! - over the account's `window` of unanswered requests: the gateway stops reading the
//!   socket until answers go out (TCP pushes back; nothing is buffered without bound).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use log::{debug, info, warn};

use super::routing::Route;
use super::state::{constant_time_eq, AccountState, Mode, RateLimiter};
use super::{ConnInbox, Delivery, Fate, Origin, Outbound, ShardState};
use crate::net::conn::{Handler, IoCounts};
use crate::route::Params;
use crate::smpp::receipt::{MessageState, Receipt, ReceiptDate};
use crate::smpp::session::RequestFailure;
use crate::smpp::tlv::tag;
use crate::smpp::{
    Address, BindType, Body, COctet, CommandId, CommandStatus, DeliverSm, DestAddress, Event, Pdu,
    Session, SubmitMulti, SubmitMultiResp, SubmitSm, Tlvs, UnsuccessSme,
};
use crate::upstream::{ForwardCtx, Submission};

/// The system_id the gateway gives in bind_resp.
pub const SYSTEM_ID: &str = "smppgw";

pub struct ServerHandler {
    shard: Rc<ShardState>,
    conn: u64,
    peer: Option<SocketAddr>,
    account: Option<Arc<AccountState>>,
    bind_type: Option<BindType>,
    receiver: bool,
    window: usize,
    backlog: VecDeque<Delivery>,
    in_flight: HashMap<u64, Delivery>,
    next_tag: u64,
    /// The simulator's per-session throttle.
    throttle: Option<RateLimiter>,
    /// Set when an upstream called in with outbind: this connection is that link's receiver.
    outbind_link: Option<(usize, BindType, bool)>,
    /// This connection's inbox; its delivery count falls as deliveries are done with.
    inbox: Rc<ConnInbox>,
    /// submit_multi requests waiting for their forwarded destinations' answers, by sequence
    /// number (as many as the window lets the ESME have unanswered).
    multis: HashMap<u32, Multi>,
}

/// A submit_multi whose answer waits for upstream links to answer its forwarded destinations.
struct Multi {
    message_id: COctet,
    /// Destinations forwarded and not yet answered.
    waiting: usize,
    /// Destinations accepted (forwarded and answered, or delivered to an ESME).
    accepted: usize,
    /// Forwarded destinations, by index in the request, for their answers.
    forwarded: Vec<(u16, Address)>,
    /// Destinations that failed, with their index in the request (the answer lists them in
    /// request order).
    unsuccess: Vec<(u16, UnsuccessSme)>,
}

impl ServerHandler {
    pub fn new(
        shard: Rc<ShardState>,
        conn: u64,
        peer: Option<SocketAddr>,
        inbox: Rc<ConnInbox>,
    ) -> ServerHandler {
        let window = shard.shared.config.general.window;
        ServerHandler {
            shard,
            conn,
            peer,
            account: None,
            bind_type: None,
            receiver: false,
            window,
            backlog: VecDeque::new(),
            in_flight: HashMap::new(),
            multis: HashMap::new(),
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
                .counters
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
        let Some(account) = shared.account(&id) else {
            return refuse(
                s,
                CommandStatus::RINVSYSID,
                "no such account in regfile.conf",
            );
        };
        if let Some(cfg) = &account.config {
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
        shared.counters.binds.fetch_add(1, Ordering::Relaxed);
        info!(
            "{id} bound as {} from {} (shard {}, {} binds)",
            bind_type.name(),
            self.peer(),
            self.shard.id,
            account.binds.load(Ordering::Relaxed)
        );
        self.bind_type = Some(bind_type);
        if bind_type.receives() {
            self.receiver = true;
            self.shard.add_receiver(&account, self.conn);
        }
        self.account = Some(account);
    }

    /// Answers a message-carrying request and, when asked, schedules its receipt.
    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        s: &mut Session,
        pdu: &Pdu,
        source: &Address,
        dests: &[&Address],
        registered_delivery: u8,
        data_coding: u8,
        text: &[u8],
        now: Instant,
    ) {
        let seq = pdu.sequence_number;
        let id = pdu.command_id();
        let fail = |s: &mut Session, status: CommandStatus| {
            if let Some(reply) = Pdu::error_reply(id, seq, status) {
                s.respond(seq, status, reply.body, Tlvs::new());
            }
        };
        let shared = self.shard.shared.clone();
        let Some(account) = self.account.clone() else {
            return;
        };
        // The account's rate counts messages: a submit_multi costs one per destination.
        let cost = match &pdu.body {
            Body::SubmitMulti(m) => m.dests.len().clamp(1, 255) as u32,
            _ => 1,
        };
        let throttled = account
            .rate
            .as_ref()
            .is_some_and(|r| !r.try_take(cost, now))
            || self.throttle.as_ref().is_some_and(|r| !r.try_take(1, now));
        if throttled {
            shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return fail(s, CommandStatus::RTHROTTLED);
        }
        let mut delay = Duration::ZERO;
        let mut ids = None;
        if let Mode::Simulator(sim) = &shared.mode {
            if sim.throttle_every > 0 && self.shard.count_submit() % sim.throttle_every as u64 == 0
            {
                shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return fail(s, CommandStatus::RTHROTTLED);
            }
            ids = Some(sim.msgid);
            let draw = self.shard.percent();
            if draw < sim.perm_error_pct {
                shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return fail(s, CommandStatus::RSUBMITFAIL);
            }
            if draw < sim.perm_error_pct + sim.temp_error_pct {
                shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return fail(s, CommandStatus::RMSGQFUL);
            }
            delay = sim.receipt_delay;
        }
        // The gateway's id for the message, from intake on: `billid` to the route rules, the
        // id the ESME gets, the key of the receipt mapping.
        let message_id = self.shard.next_message_id();
        if let (Mode::Terminating, Body::SubmitMulti(m)) = (&shared.mode, &pdu.body) {
            if shared.routes.version() != 0 || shared.default_link.is_some() {
                return self.submit_multi(s, pdu, m, account, message_id);
            }
        }
        if let Mode::Terminating = &shared.mode {
            let route = if shared.routes.version() == 0 {
                Route::NoTable
            } else {
                let mut r = self.shard.router.borrow_mut();
                fill_params(&mut r.params, pdu, source, dests, &account.system_id);
                r.params.set("billid", as_text(message_id.as_bytes()));
                r.decide(&shared, self.shard.id)
            };
            let link = match route {
                Route::NoTable => shared.default_link,
                Route::Forward(link) => Some(link),
                Route::Deliver(to) => return self.deliver_local(s, pdu, to, message_id),
                Route::Refuse { status, why } => {
                    self.shard
                        .log_refusal(|| format!("{}: {why}", account.system_id));
                    shared.counters.unrouted.fetch_add(1, Ordering::Relaxed);
                    shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    return fail(s, status);
                }
            };
            if let Some(link) = link {
                // Forwarded: the ESME's answer waits for the upstream's (Outbound::Respond).
                self.shard.forward(
                    link,
                    Submission {
                        body: pdu.body.clone(),
                        tlvs: pdu.tlvs.clone(),
                        ctx: self.forward_ctx(link, seq, id, account, message_id, 0),
                    },
                );
                return;
            }
        }
        // The simulator writes ids as asked; the receipt may use another form (3.3 style).
        let (message_id, receipt_id) = match ids {
            Some((resp, receipt)) => (in_radix(&message_id, resp), in_radix(&message_id, receipt)),
            None => (message_id.clone(), message_id),
        };
        if let Mode::Simulator(sim) = &shared.mode {
            if let Some(path) = &sim.record {
                self.shard.record(path, text);
            }
        }
        let body = match pdu.body {
            Body::SubmitMulti(_) => Body::SubmitMultiResp(Some(SubmitMultiResp {
                message_id: message_id.clone(),
                unsuccess: Default::default(),
            })),
            Body::DataSm(_) => Body::DataSmResp(Some(message_id.clone())),
            _ => Body::SubmitSmResp(Some(message_id.clone())),
        };
        s.respond(seq, CommandStatus::ROK, body, Tlvs::new());
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        // Bits 1-0: 1 = receipt on success or failure, 3 = on success only (5.0).
        if matches!(registered_delivery & 0x03, 1 | 3) {
            let submitted = SystemTime::now();
            for dest in dests {
                let d = receipt(
                    &account,
                    receipt_id.as_bytes(),
                    source,
                    dest,
                    data_coding,
                    text,
                    submitted,
                    Fate::DELIVERED,
                );
                if delay.is_zero() {
                    self.shard.route(d);
                } else {
                    self.shard.route_at(now + delay, d);
                }
            }
        }
    }

    /// A message routed to `smppserver/ID`: acknowledged with a gateway id and delivered as
    /// deliver_sm to a receiver of that account (on any shard; held while none is bound). The
    /// receipt the submitter asked for goes out when the delivery ends (`ShardState::settle`).
    fn deliver_local(
        &mut self,
        s: &mut Session,
        pdu: &Pdu,
        to: Arc<AccountState>,
        message_id: COctet,
    ) {
        let seq = pdu.sequence_number;
        let (Some(body), Some(from)) = (as_deliver_sm(&pdu.body), self.account.clone()) else {
            // Not reached (only submit_sm and data_sm from a bound ESME come here); answered
            // anyway, so that no request is left without a response.
            if let Some(reply) = Pdu::error_reply(pdu.command_id(), seq, CommandStatus::RSYSERR) {
                s.respond(seq, CommandStatus::RSYSERR, reply.body, Tlvs::new());
            }
            return;
        };
        let reply = match pdu.body {
            Body::DataSm(_) => Body::DataSmResp(Some(message_id.clone())),
            _ => Body::SubmitSmResp(Some(message_id.clone())),
        };
        s.respond(seq, CommandStatus::ROK, reply, Tlvs::new());
        let registered_delivery = match &pdu.body {
            Body::SubmitSm(m) => m.registered_delivery,
            Body::DataSm(m) => m.registered_delivery,
            _ => 0,
        };
        self.hand_over(
            &from,
            to,
            body,
            pdu.tlvs.clone(),
            registered_delivery,
            message_id,
        );
    }

    /// Sends a message from `from` to a receiver of `to`, with what its receipt needs when
    /// `registered_delivery` asks for one.
    fn hand_over(
        &self,
        from: &Arc<AccountState>,
        to: Arc<AccountState>,
        body: DeliverSm,
        tlvs: Tlvs,
        registered_delivery: u8,
        message_id: COctet,
    ) {
        self.count(|c| &c.accepted);
        let origin = (registered_delivery & 0x03 != 0).then(|| {
            Box::new(Origin {
                account: from.clone(),
                gateway_id: message_id,
                source: body.source.clone(),
                dest: body.dest.clone(),
                data_coding: body.data_coding,
                text: body.short_message.slice(..body.short_message.len().min(20)),
                submitted: SystemTime::now(),
                registered_delivery,
            })
        });
        self.shard.route(Delivery {
            account: to,
            body,
            tlvs,
            attempts: 0,
            origin,
        });
    }

    /// submit_multi with a route file or a default link: each destination is routed on its
    /// own (`called` = that destination). Destinations for ESMEs are delivered at once;
    /// destinations for links go as submit_sm, and the answer waits for every link's answer.
    /// It carries one gateway id (every destination's receipt names it) and lists the
    /// destinations that failed in unsuccess_sme, in request order. When none succeeds, the
    /// answer is their common error (ESME_RSUBMITFAIL when they differ).
    fn submit_multi(
        &mut self,
        s: &mut Session,
        pdu: &Pdu,
        m: &SubmitMulti,
        account: Arc<AccountState>,
        message_id: COctet,
    ) {
        let shared = self.shard.shared.clone();
        let seq = pdu.sequence_number;
        let mut multi = Multi {
            message_id: message_id.clone(),
            waiting: 0,
            accepted: 0,
            forwarded: Vec::new(),
            unsuccess: Vec::new(),
        };
        for (i, d) in m.dests.iter().enumerate() {
            let i = i as u16;
            let addr = match d {
                DestAddress::Sme(a) => a,
                DestAddress::DistributionList(name) => {
                    let dest = Address {
                        addr: name.clone(),
                        ..Address::default()
                    };
                    self.shard.log_refusal(|| {
                        format!(
                            "{}: submit_multi to distribution list {:?}: the gateway keeps no \
                         distribution lists",
                            account.system_id,
                            String::from_utf8_lossy(name.as_bytes())
                        )
                    });
                    multi
                        .unsuccess
                        .push((i, unsuccess(dest, CommandStatus::RINVDLNAME)));
                    continue;
                }
            };
            let route = if shared.routes.version() == 0 {
                Route::NoTable
            } else {
                let mut r = self.shard.router.borrow_mut();
                fill_params(&mut r.params, pdu, &m.source, &[addr], &account.system_id);
                r.params.set("billid", as_text(message_id.as_bytes()));
                r.decide(&shared, self.shard.id)
            };
            let link = match route {
                Route::NoTable => shared.default_link,
                Route::Forward(link) => Some(link),
                Route::Deliver(to) => {
                    let body = as_deliver_sm(&Body::SubmitSm(part_of(m, addr))).unwrap_or_default();
                    self.hand_over(
                        &account,
                        to,
                        body,
                        pdu.tlvs.clone(),
                        m.registered_delivery,
                        message_id.clone(),
                    );
                    multi.accepted += 1;
                    continue;
                }
                Route::Refuse { status, why } => {
                    self.shard
                        .log_refusal(|| format!("{}: {why}", account.system_id));
                    shared.counters.unrouted.fetch_add(1, Ordering::Relaxed);
                    shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    multi.unsuccess.push((i, unsuccess(addr.clone(), status)));
                    continue;
                }
            };
            let Some(link) = link else {
                // No table, no default link: not reached (the caller checks), but answer
                // sensibly anyway.
                multi
                    .unsuccess
                    .push((i, unsuccess(addr.clone(), CommandStatus::RINVDSTADR)));
                continue;
            };
            multi.waiting += 1;
            multi.forwarded.push((i, addr.clone()));
            self.shard.forward(
                link,
                Submission {
                    body: Body::SubmitSm(part_of(m, addr)),
                    tlvs: pdu.tlvs.clone(),
                    ctx: self.forward_ctx(
                        link,
                        seq,
                        CommandId::SUBMIT_MULTI,
                        account.clone(),
                        message_id.clone(),
                        i,
                    ),
                },
            );
        }
        if multi.waiting == 0 {
            answer_multi(s, seq, multi);
        } else {
            self.multis.insert(seq, multi);
        }
    }

    /// Where a forwarded message's outcome goes: this connection, request `seq`.
    fn forward_ctx(
        &self,
        link: usize,
        seq: u32,
        request: CommandId,
        account: Arc<AccountState>,
        gateway_id: COctet,
        part: u16,
    ) -> ForwardCtx {
        ForwardCtx {
            link,
            shard: self.shard.id,
            conn: self.conn,
            seq,
            request,
            account,
            gateway_id,
            part,
        }
    }

    /// A link's answer for one forwarded destination of a submit_multi.
    fn multi_part(&mut self, s: &mut Session, seq: u32, part: u16, status: CommandStatus) {
        let Some(multi) = self.multis.get_mut(&seq) else {
            return;
        };
        multi.waiting = multi.waiting.saturating_sub(1);
        if status.is_ok() {
            multi.accepted += 1;
        } else if let Some((_, addr)) = multi.forwarded.iter().find(|(i, _)| *i == part) {
            multi
                .unsuccess
                .push((part, unsuccess(addr.clone(), status)));
        }
        if multi.waiting == 0 {
            if let Some(multi) = self.multis.remove(&seq) {
                answer_multi(s, seq, multi);
            }
        }
    }

    /// An upstream called in with outbind: when it names a client link by that link's
    /// system_id and password, this connection becomes that link's receiver (transceiver for a
    /// 5.0 link); otherwise it is closed.
    fn outbind(&mut self, s: &mut Session, o: &crate::smpp::Outbind, now: Instant) {
        let links = &self.shard.shared.links;
        let found = links.iter().position(|l| {
            l.config.enabled
                && l.config.bind.receives()
                && l.config.system_id.as_bytes() == o.system_id.as_bytes()
                && constant_time_eq(l.config.system_password.as_bytes(), o.password.as_bytes())
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
        let bt = if link.config.interface_version >= 0x50 {
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
            link.config.name,
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
            match s.send_request(Body::DeliverSm(d.body.clone()), d.tlvs.clone(), tag, now) {
                Ok(_) => {
                    self.count(|c| &c.receipts_sent);
                    self.in_flight.insert(tag, d);
                }
                Err(e) => {
                    debug!("deliver_sm not sent ({e:?}); rerouting");
                    self.done_with_delivery();
                    let retry = self.shard.shared.config.general.delivery_retry;
                    self.shard.route_at(now + retry, d);
                    break;
                }
            }
        }
    }

    /// Adds one to a shared counter.
    fn count(&self, which: impl Fn(&super::state::Counters) -> &std::sync::atomic::AtomicU64) {
        which(&self.shard.shared.counters).fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery this connection took is done with (answered, or given back to the shard).
    fn done_with_delivery(&self) {
        self.inbox
            .deliveries
            .set(self.inbox.deliveries.get().saturating_sub(1));
    }

    fn retry(&self, mut d: Delivery, now: Instant, why: &str, fate: Fate) {
        d.attempts += 1;
        let general = &self.shard.shared.config.general;
        if d.attempts >= general.delivery_attempts {
            self.count(|c| &c.receipts_dropped);
            warn!(
                "{}: deliver_sm dropped after {} attempts ({why})",
                d.account.system_id, d.attempts
            );
            self.shard.settle(d, fate);
        } else {
            self.shard.route_at(now + general.delivery_retry, d);
        }
    }
}

impl Handler for ServerHandler {
    type Outbound = Outbound;

    fn on_event(&mut self, s: &mut Session, event: Event, now: Instant) {
        if let Some((link, bt, _)) = self.outbind_link {
            // This connection is a client link's receiver (the upstream called in).
            match event {
                Event::Bound { .. } => {
                    self.outbind_link = Some((link, bt, true));
                    self.shard.shared.links[link].bound_rx[self.shard.id]
                        .fetch_add(1, Ordering::Relaxed);
                    info!(
                        "link {}: bound as {} over the upstream's outbind",
                        self.shard.shared.links[link].config.name,
                        bt.name()
                    );
                }
                Event::Request(pdu) => {
                    let status = self.shard.on_link_deliver(link, &pdu);
                    if let Some(reply) =
                        Pdu::error_reply(pdu.command_id(), pdu.sequence_number, status)
                    {
                        let body = match (status.is_ok(), reply.body) {
                            (true, Body::DeliverSmResp(_)) => {
                                Body::DeliverSmResp(Some(COctet::EMPTY))
                            }
                            (true, Body::DataSmResp(_)) => Body::DataSmResp(Some(COctet::EMPTY)),
                            (_, b) => b,
                        };
                        s.respond(pdu.sequence_number, status, body, Tlvs::new());
                    }
                }
                Event::Closed(reason) => info!(
                    "link {}: outbind session closed: {reason:?}",
                    self.shard.shared.links[link].config.name
                ),
                _ => {}
            }
            return;
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
            Event::Request(pdu) => {
                let seq = pdu.sequence_number;
                match &pdu.body {
                    Body::SubmitSm(m) => self.message(
                        s,
                        &pdu,
                        &m.source,
                        &[&m.dest],
                        m.registered_delivery,
                        m.data_coding,
                        &m.short_message,
                        now,
                    ),
                    Body::DataSm(m) => {
                        let payload = pdu.tlvs.get(tag::MESSAGE_PAYLOAD).unwrap_or(&[]).to_vec();
                        self.message(
                            s,
                            &pdu,
                            &m.source,
                            &[&m.dest],
                            m.registered_delivery,
                            m.data_coding,
                            &payload,
                            now,
                        )
                    }
                    Body::SubmitMulti(m) => {
                        let dests: Vec<&Address> = m
                            .dests
                            .iter()
                            .filter_map(|d| match d {
                                crate::smpp::DestAddress::Sme(a) => Some(a),
                                crate::smpp::DestAddress::DistributionList(_) => None,
                            })
                            .collect();
                        self.message(
                            s,
                            &pdu,
                            &m.source,
                            &dests,
                            m.registered_delivery,
                            m.data_coding,
                            &m.short_message,
                            now,
                        )
                    }
                    other => {
                        // Requests the terminating gateway keeps no state for.
                        let status = match other {
                            Body::QuerySm(_) => CommandStatus::RQUERYFAIL,
                            Body::CancelSm(_) => CommandStatus::RCANCELFAIL,
                            Body::ReplaceSm(_) => CommandStatus::RREPLACEFAIL,
                            Body::BroadcastSm(_) => CommandStatus::RBCASTFAIL,
                            Body::QueryBroadcastSm(_) => CommandStatus::RBCASTQUERYFAIL,
                            Body::CancelBroadcastSm(_) => CommandStatus::RBCASTCANCELFAIL,
                            _ => CommandStatus::RINVCMDID,
                        };
                        if let Some(reply) = Pdu::error_reply(pdu.command_id(), seq, status) {
                            s.respond(seq, status, reply.body, Tlvs::new());
                        }
                    }
                }
            }
            Event::Response { tag, pdu, .. } => {
                if let Some(d) = self.in_flight.remove(&tag) {
                    self.done_with_delivery();
                    let status = pdu.command_status;
                    if status.is_ok() {
                        self.count(|c| &c.receipts_acked);
                        self.shard.settle(d, Fate::DELIVERED);
                    } else if status.is_temporary() {
                        self.retry(d, now, "temporary error from the ESME", Fate::BUSY);
                    } else {
                        self.count(|c| &c.receipts_dropped);
                        warn!(
                            "{}: deliver_sm refused by the ESME with {status}",
                            d.account.system_id
                        );
                        self.shard.settle(d, Fate::REFUSED);
                    }
                }
                self.pump(s, now);
            }
            Event::RequestFailed { tag, reason, .. } => {
                if let Some(d) = self.in_flight.remove(&tag) {
                    self.done_with_delivery();
                    match reason {
                        RequestFailure::Timeout => {
                            self.retry(d, now, "no deliver_sm_resp in time", Fate::NO_RESPONSE)
                        }
                        RequestFailure::SessionClosed => self.shard.route_at(now, d),
                    }
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
            Outbound::Respond {
                seq,
                request: CommandId::SUBMIT_MULTI,
                part,
                status,
                ..
            } => self.multi_part(s, seq, part, status),
            Outbound::Respond {
                seq,
                request,
                status,
                message_id,
                ..
            } => {
                let body = match (request, message_id) {
                    (CommandId::DATA_SM, Some(id)) if status.is_ok() => Body::DataSmResp(Some(id)),
                    (_, Some(id)) if status.is_ok() => Body::SubmitSmResp(Some(id)),
                    _ => match Pdu::error_reply(request, seq, status) {
                        Some(p) => p.body,
                        None => return,
                    },
                };
                s.respond(seq, status, body, Tlvs::new());
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
    /// arrive on the same socket. Backed-up deliveries wait in the backlog, then parked on
    /// the shard, both bounded.)
    fn can_read(&self, s: &Session) -> bool {
        s.inbound_outstanding() < self.window
    }

    /// Always: the inbox holds answers to this ESME's requests, which must not wait, and
    /// deliveries, which its senders bound (see `ConnInbox`).
    fn can_take(&self, _: &Session) -> bool {
        true
    }

    fn on_close(&mut self, _s: &mut Session, why: &str, io: IoCounts) {
        if let Some((link, _, true)) = self.outbind_link {
            self.shard.shared.links[link].bound_rx[self.shard.id].fetch_sub(1, Ordering::Relaxed);
        }
        let c = &self.shard.shared.counters;
        c.reads.fetch_add(io.reads, Ordering::Relaxed);
        c.writes.fetch_add(io.writes, Ordering::Relaxed);
        c.frames_in.fetch_add(io.frames_in, Ordering::Relaxed);
        if let Some(account) = self.account.take() {
            if self.receiver {
                self.shard.remove_receiver(&account, self.conn);
            }
            account.binds.fetch_sub(1, Ordering::Relaxed);
            info!(
                "{} ({}) from {} disconnected: {why}",
                account.system_id,
                self.bind_type.map_or("unbound", |b| b.name()),
                self.peer()
            );
        } else {
            debug!("connection from {} closed before bind: {why}", self.peer());
        }
        let now = Instant::now();
        for (_, d) in self.in_flight.drain() {
            self.shard.route_at(now, d);
        }
        for d in self.backlog.drain(..) {
            self.shard.route(d);
        }
        self.inbox.deliveries.set(0);
    }
}

/// The receipt of a message: a deliver_sm from the destination back to the source,
/// esm_class 0x04, the canonical text (`err:` is the TP-Status in decimal),
/// receipted_message_id, message_state and network_error_code (type 3, GSM: the TP-Status).
#[allow(clippy::too_many_arguments)] // the receipt's fields, each from a different place
pub fn receipt(
    account: &Arc<AccountState>,
    message_id: &[u8],
    source: &Address,
    dest: &Address,
    data_coding: u8,
    text: &[u8],
    submitted: SystemTime,
    fate: Fate,
) -> Delivery {
    let done = receipt_date(SystemTime::now());
    // Only ASCII-compatible text is quoted; other codings would be garbage in the receipt.
    let quoted = matches!(data_coding, 0 | 1).then(|| &text[..text.len().min(20)]);
    let delivered = fate.state == MessageState::DELIVERED;
    let err = [
        b'0' + fate.tp_status / 100,
        b'0' + fate.tp_status / 10 % 10,
        b'0' + fate.tp_status % 10,
    ];
    let r = Receipt {
        id: message_id,
        sub: Some(1),
        dlvrd: Some(u32::from(delivered)),
        submit_date: Some(receipt_date(submitted)),
        done_date: Some(done),
        stat: fate.state.stat().as_bytes(),
        err: &err,
        text: quoted,
    };
    let mut out = BytesMut::with_capacity(160);
    r.write(&mut out);
    let mut tlvs = Tlvs::new();
    tlvs.set_cstr(tag::RECEIPTED_MESSAGE_ID, message_id);
    tlvs.set_u8(tag::MESSAGE_STATE, fate.state.0);
    tlvs.set(tag::NETWORK_ERROR_CODE, &[3, 0, fate.tp_status]);
    Delivery {
        account: account.clone(),
        body: DeliverSm {
            source: dest.clone(),
            dest: source.clone(),
            esm_class: 0x04,
            short_message: out.freeze(),
            ..DeliverSm::default()
        },
        tlvs,
        attempts: 0,
        origin: None,
    }
}

/// A hex gateway id written in another radix (the simulator's `--msgid`).
fn in_radix(hex_id: &COctet, radix: crate::smpp::receipt::IdRadix) -> COctet {
    use crate::smpp::receipt::{id_value, IdRadix};
    match (radix, id_value(hex_id.as_bytes(), IdRadix::Hex)) {
        (IdRadix::Decimal, Some(n)) => COctet::from(n.to_string().as_str()),
        (IdRadix::Hex, Some(n)) => COctet::from(format!("{n:X}").as_str()),
        _ => hex_id.clone(),
    }
}

/// A wall-clock time as a receipt date (UTC, with seconds).
pub fn receipt_date(t: SystemTime) -> ReceiptDate {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (y, m, d) = crate::logger::civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    ReceiptDate {
        year: y as u16,
        month: m as u8,
        day: d as u8,
        hour: (s / 3600) as u8,
        minute: (s / 60 % 60) as u8,
        second: None,
    }
}

/// The parameters route rules see for a message from an ESME (Yate's names).
pub fn fill_params(
    p: &mut Params,
    pdu: &Pdu,
    source: &Address,
    dests: &[&Address],
    system_id: &str,
) {
    fill_params_from(p, pdu, source, dests, system_id, "smppserver");
}

/// The parameters for a message that came in through `module` (`smppserver` from an ESME,
/// `smppclient` for MO from an upstream link).
pub fn fill_params_from(
    p: &mut Params,
    pdu: &Pdu,
    source: &Address,
    dests: &[&Address],
    system_id: &str,
    module: &str,
) {
    let (service_type, esm_class, data_coding) = match &pdu.body {
        Body::SubmitSm(m) => (m.service_type.as_bytes(), m.esm_class, m.data_coding),
        Body::DataSm(m) => (m.service_type.as_bytes(), m.esm_class, m.data_coding),
        Body::SubmitMulti(m) => (m.service_type.as_bytes(), m.esm_class, m.data_coding),
        Body::DeliverSm(m) => (m.service_type.as_bytes(), m.esm_class, m.data_coding),
        _ => (&[][..], 0, 0),
    };
    let called = dests.first().map(|d| d.addr.as_bytes()).unwrap_or_default();
    p.set("called", &String::from_utf8_lossy(called));
    p.set("caller", &String::from_utf8_lossy(source.addr.as_bytes()));
    p.set("module", module);
    p.set("submit_info", "SMPP");
    let report = esm_class & 0x3C == 0x04 || esm_class & 0x3C == 0x20;
    p.set("sms_type", if report { "status_report" } else { "sms" });
    // A status report's state (DELIVRD, UNDELIV, ...), from its receipt text.
    let stat = match (&pdu.body, report) {
        (Body::SubmitSm(m) | Body::DeliverSm(m), true) => {
            Receipt::parse(&m.short_message).map(|r| r.stat)
        }
        _ => None,
    };
    match stat {
        Some(st) => p.set("sms_stat", as_text(st)),
        None => p.clear("sms_stat"),
    }
    p.set("system_id", system_id);
    p.set("service_type", &String::from_utf8_lossy(service_type));
    let mut num = itoa(esm_class);
    p.set("esm_class", num.as_str());
    num = itoa(data_coding);
    p.set("data_coding", num.as_str());
}

/// Bytes as text for the route rules (they are ASCII in practice; anything else is replaced).
fn as_text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("?")
}

/// A small number as text without allocating.
struct Num([u8; 3], u8);

impl Num {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0[3 - self.1 as usize..]).unwrap_or("0")
    }
}

fn itoa(v: u8) -> Num {
    let mut out = [b'0'; 3];
    let mut v = v;
    let mut i = 3;
    loop {
        i -= 1;
        out[i] = b'0' + v % 10;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    Num(out, (3 - i) as u8)
}

/// A submit_sm or data_sm as the deliver_sm that carries it to an ESME (`None` for other
/// requests). Scheduling, validity and receipt requests stay with the gateway; the UDHI and
/// reply-path bits of esm_class travel with the message.
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

fn unsuccess(dest: Address, error_status_code: CommandStatus) -> UnsuccessSme {
    UnsuccessSme {
        dest,
        error_status_code,
    }
}

/// The answer to a submit_multi once every destination is settled.
fn answer_multi(s: &mut Session, seq: u32, mut multi: Multi) {
    multi.unsuccess.sort_by_key(|(i, _)| *i);
    if multi.accepted == 0 {
        let first = multi
            .unsuccess
            .first()
            .map_or(CommandStatus::RINVNUMDESTS, |(_, u)| u.error_status_code);
        let status = if multi
            .unsuccess
            .iter()
            .all(|(_, u)| u.error_status_code == first)
        {
            first
        } else {
            CommandStatus::RSUBMITFAIL
        };
        if let Some(reply) = Pdu::error_reply(CommandId::SUBMIT_MULTI, seq, status) {
            s.respond(seq, status, reply.body, Tlvs::new());
        }
        return;
    }
    let body = Body::SubmitMultiResp(Some(SubmitMultiResp {
        message_id: multi.message_id,
        unsuccess: multi.unsuccess.into_iter().map(|(_, u)| u).collect(),
    }));
    s.respond(seq, CommandStatus::ROK, body, Tlvs::new());
}

pub fn as_deliver_sm(body: &Body) -> Option<DeliverSm> {
    match body {
        Body::SubmitSm(m) | Body::DeliverSm(m) => Some(DeliverSm {
            esm_class: m.esm_class & 0xC0,
            schedule_delivery_time: COctet::default(),
            validity_period: COctet::default(),
            registered_delivery: 0,
            replace_if_present_flag: 0,
            ..m.clone()
        }),
        Body::DataSm(m) => Some(DeliverSm {
            service_type: m.service_type.clone(),
            source: m.source.clone(),
            dest: m.dest.clone(),
            esm_class: m.esm_class & 0xC0,
            data_coding: m.data_coding,
            ..DeliverSm::default()
        }),
        _ => None,
    }
}
