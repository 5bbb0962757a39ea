//! The SMPP session state machine, for both roles (ESME and SMSC), without IO or clock.
//!
//! Shaped like quinn-proto's `Connection`: the caller feeds bytes with
//! [`Session::handle_input`] and time with [`Session::handle_timeout`], drains output with
//! [`Session::poll_transmit`] and [`Session::poll_event`], and asks [`Session::poll_timeout`]
//! when to call back. Every call takes `now`; the session never reads a clock and never
//! touches a socket, so two sessions can be wired together in memory and driven by a fake
//! clock (see `tests/session.rs`).
//!
//! What the session does by itself:
//! - frames and decodes input; answers undecodable PDUs with the response (or generic_nack)
//!   carrying the status [`Pdu::decode`] chose, and closes on unframeable input;
//! - enforces which PDUs each side may send in each state (`SMPP.md` section 5): a PDU out of
//!   place is answered `ESME_RINVBNDSTS`, a second bind `ESME_RALYBND`;
//! - numbers its requests (1..0x7FFFFFFF, wrapping, skipping numbers still in flight), keeps
//!   the request window with a deadline per request, and matches responses on
//!   (sequence_number, command_id);
//! - answers enquire_link, sends its own on idle and declares the link dead when nothing comes
//!   back in time; runs the session-init and inactivity timers; performs the unbind handshake.
//!
//! What it leaves to the application: authenticating binds (SMSC role: [`Event::BindRequest`]
//! then [`Session::accept_bind`] or [`Session::reject_bind`]), and answering requests
//! ([`Event::Request`] then [`Session::respond`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::codec::{COctet, DecodeError};
use super::frame::{FrameError, Framer, DEFAULT_MAX_PDU_SIZE};
use super::pdu::{Bind, Body, Outbind, Pdu};
use super::tlv::{tag, Tlvs};
use super::window::{Pending, Purpose, Window};
use super::{CommandId, CommandStatus};

/// Highest sequence number; the next one is 1.
pub const MAX_SEQUENCE_NUMBER: u32 = 0x7FFF_FFFF;

/// Which end of the link this session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The application side: binds, submits, receives deliveries.
    Esme,
    /// The message centre side: accepts binds, delivers.
    Smsc,
}

/// The three bind types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BindType {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindType {
    /// The bind request id.
    pub const fn command_id(self) -> CommandId {
        match self {
            BindType::Transmitter => CommandId::BIND_TRANSMITTER,
            BindType::Receiver => CommandId::BIND_RECEIVER,
            BindType::Transceiver => CommandId::BIND_TRANSCEIVER,
        }
    }

    pub const fn from_command_id(id: CommandId) -> Option<BindType> {
        match id.request() {
            CommandId::BIND_TRANSMITTER => Some(BindType::Transmitter),
            CommandId::BIND_RECEIVER => Some(BindType::Receiver),
            CommandId::BIND_TRANSCEIVER => Some(BindType::Transceiver),
            _ => None,
        }
    }

    /// The bind request body of this type.
    pub fn request(self, bind: Bind) -> Body {
        match self {
            BindType::Transmitter => Body::BindTransmitter(bind),
            BindType::Receiver => Body::BindReceiver(bind),
            BindType::Transceiver => Body::BindTransceiver(bind),
        }
    }

    /// The bind response body of this type.
    pub fn response(self, system_id: Option<COctet>) -> Body {
        match self {
            BindType::Transmitter => Body::BindTransmitterResp(system_id),
            BindType::Receiver => Body::BindReceiverResp(system_id),
            BindType::Transceiver => Body::BindTransceiverResp(system_id),
        }
    }

    /// May the ESME submit on this bind?
    pub const fn transmits(self) -> bool {
        matches!(self, BindType::Transmitter | BindType::Transceiver)
    }

    /// May the SMSC deliver on this bind?
    pub const fn receives(self) -> bool {
        matches!(self, BindType::Receiver | BindType::Transceiver)
    }

    pub const fn name(self) -> &'static str {
        match self {
            BindType::Transmitter => "transmitter",
            BindType::Receiver => "receiver",
            BindType::Transceiver => "transceiver",
        }
    }
}

/// Session states (`SMPP.md` section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Connected, not bound. An ESME may have its bind in flight.
    Open,
    /// ESME side: the SMSC sent outbind; the ESME binds next.
    Outbound,
    Bound(BindType),
    /// We sent unbind and wait for unbind_resp.
    Unbinding,
    /// Over: flush what [`Session::poll_transmit`] still holds, then close the transport.
    Closed(CloseReason),
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The unbind handshake completed (we sent unbind, or answered the peer's).
    Unbound,
    /// The SMSC refused the bind with this status (either side of the refusal).
    BindRejected(CommandStatus),
    /// Not bound within the session-init timer.
    SessionInitTimeout,
    /// enquire_link went unanswered: the peer or the path is dead.
    EnquireLinkTimeout,
    /// Our unbind went unanswered.
    UnbindTimeout,
    /// The input could not be framed (command_length out of range).
    InvalidFrame(FrameError),
    /// The application closed the session without unbinding.
    Aborted,
}

/// Why one of our requests got no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFailure {
    /// The response timer expired.
    Timeout,
    /// The session closed with the request in flight; it may or may not have been processed.
    SessionClosed,
}

/// What the application learns from the session.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// SMSC role: a bind request to authenticate. Answer with [`Session::accept_bind`] or
    /// [`Session::reject_bind`] using this sequence number.
    BindRequest {
        sequence_number: u32,
        bind_type: BindType,
        bind: Bind,
    },
    /// ESME role: the SMSC accepted our bind.
    Bound {
        bind_type: BindType,
        /// The SMSC's system_id from bind_resp.
        system_id: Option<COctet>,
        /// sc_interface_version from bind_resp; `None` means the SMSC has no TLV support.
        sc_interface_version: Option<u8>,
    },
    /// ESME role: the SMSC asked us to bind (outbind). Call [`Session::bind`] next.
    Outbind(Outbind),
    /// A request from the peer. Answer with [`Session::respond`] (alert_notification takes no
    /// answer).
    Request(Pdu),
    /// The response to one of our requests. Its `command_status` says how it went; it may be
    /// a generic_nack.
    Response {
        tag: u64,
        request: CommandId,
        pdu: Pdu,
    },
    /// One of our requests will get no response.
    RequestFailed {
        tag: u64,
        sequence_number: u32,
        request: CommandId,
        reason: RequestFailure,
    },
    /// A response to no request of ours (late, after expiry, or a peer bug). Dropped.
    UnexpectedResponse(Pdu),
    /// The peer sent a PDU we could not decode; it has been answered with `error.status`.
    InvalidPdu(DecodeError),
    /// The session is over. Flush [`Session::poll_transmit`] and close the transport.
    Closed(CloseReason),
}

/// Why a send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The request window is full; wait for responses.
    WindowFull,
    /// This side may not send this PDU in this state (wrong bind type, not bound, ...).
    NotAllowed { command_id: CommandId, state: State },
    /// The session is closed or unbinding.
    Closed,
}

/// Timers and limits. Durations of `None` turn a timer off.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub max_pdu_size: u32,
    /// Our requests in flight at most (the application's; the session's own do not count).
    pub window: usize,
    /// How long a request may wait for its response.
    pub response_timeout: Duration,
    /// How long a connection may stay unbound.
    pub session_init_timeout: Option<Duration>,
    /// Send enquire_link after this long without receiving anything.
    pub enquire_link_interval: Option<Duration>,
    /// How long to wait for any PDU after sending enquire_link before declaring the link dead.
    pub enquire_link_timeout: Duration,
    /// Unbind after this long without a PDU other than enquire_link in either direction.
    pub inactivity_timeout: Option<Duration>,
    /// interface_version we send in bind and in sc_interface_version.
    pub interface_version: u8,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_pdu_size: DEFAULT_MAX_PDU_SIZE,
            window: 10,
            response_timeout: Duration::from_secs(60),
            session_init_timeout: Some(Duration::from_secs(10)),
            enquire_link_interval: Some(Duration::from_secs(30)),
            enquire_link_timeout: Duration::from_secs(10),
            inactivity_timeout: None,
            interface_version: 0x34,
        }
    }
}

/// One SMPP session. See the module docs for the contract.
pub struct Session {
    role: Role,
    config: SessionConfig,
    framer: Framer,
    state: State,
    window: Window,
    next_seq: u32,
    out: BytesMut,
    events: VecDeque<Event>,
    opened_at: Instant,
    last_rx: Instant,
    /// Last PDU other than enquire_link in either direction.
    last_activity: Instant,
    /// Set while our enquire_link waits for any sign of life from the peer.
    enquire_deadline: Option<Instant>,
    /// SMSC role: a bind request is with the application.
    bind_pending: Option<(u32, BindType, u8)>,
    /// Requests from the peer not answered yet.
    inbound_outstanding: usize,
    /// interface_version the peer declared (bind, or sc_interface_version).
    peer_interface_version: Option<u8>,
    /// Frames received, for the PDUs-per-read figure.
    frames_received: u64,
}

impl Session {
    pub fn new(role: Role, config: SessionConfig, now: Instant) -> Session {
        Session {
            role,
            framer: Framer::new(config.max_pdu_size),
            window: Window::new(),
            config,
            state: State::Open,
            next_seq: 1,
            // Allocated on first use: ten thousand idle sessions must stay small.
            out: BytesMut::new(),
            events: VecDeque::new(),
            opened_at: now,
            last_rx: now,
            last_activity: now,
            enquire_deadline: None,
            bind_pending: None,
            inbound_outstanding: 0,
            peer_interface_version: None,
            frames_received: 0,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    /// Application requests in flight.
    pub fn in_flight(&self) -> usize {
        self.window.app_in_flight()
    }

    /// How many more requests the window takes now.
    pub fn window_available(&self) -> usize {
        self.config
            .window
            .saturating_sub(self.window.app_in_flight())
    }

    /// Requests from the peer the application has not answered yet.
    pub fn inbound_outstanding(&self) -> usize {
        self.inbound_outstanding
    }

    /// When the last PDU arrived (or the session opened).
    pub fn last_received(&self) -> Instant {
        self.last_rx
    }

    /// Frames received so far.
    pub fn frames_received(&self) -> u64 {
        self.frames_received
    }

    /// The peer's interface_version; TLVs must not be sent to a peer at 0x33 or below.
    pub fn peer_interface_version(&self) -> Option<u8> {
        self.peer_interface_version
    }

    /// True when output is waiting for [`Session::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// Moves all pending output into `buf` (without copying when `buf` is empty).
    pub fn poll_transmit(&mut self, buf: &mut BytesMut) {
        if buf.is_empty() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.extend_from_slice(&self.out);
            self.out.clear();
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next instant at which [`Session::handle_timeout`] has work to do.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let mut t = self.window.next_deadline();
        let mut add = |d: Option<Instant>| {
            if let Some(d) = d {
                t = Some(t.map_or(d, |t: Instant| t.min(d)));
            }
        };
        match self.state {
            State::Open | State::Outbound => {
                add(self.config.session_init_timeout.map(|d| self.opened_at + d));
            }
            State::Bound(_) => {
                add(self.enquire_link_due());
                add(self
                    .config
                    .inactivity_timeout
                    .map(|d| self.last_activity + d));
            }
            _ => {}
        }
        add(self.enquire_deadline);
        t
    }

    fn enquire_link_due(&self) -> Option<Instant> {
        match self.enquire_deadline {
            Some(_) => None,
            None => self.config.enquire_link_interval.map(|d| self.last_rx + d),
        }
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if self.enquire_deadline.is_some_and(|d| now >= d) {
            self.close(CloseReason::EnquireLinkTimeout);
            return;
        }
        while let Some((seq, p)) = self.window.pop_expired(now) {
            match p.purpose {
                Purpose::App(tag) => self.events.push_back(Event::RequestFailed {
                    tag,
                    sequence_number: seq,
                    request: p.command_id,
                    reason: RequestFailure::Timeout,
                }),
                Purpose::Bind => {
                    self.close(CloseReason::SessionInitTimeout);
                    return;
                }
                Purpose::Unbind => {
                    self.close(CloseReason::UnbindTimeout);
                    return;
                }
            }
        }
        match self.state {
            State::Open | State::Outbound => {
                if let Some(d) = self.config.session_init_timeout {
                    if now >= self.opened_at + d {
                        self.close(CloseReason::SessionInitTimeout);
                    }
                }
            }
            State::Bound(_) => {
                if let Some(d) = self.config.inactivity_timeout {
                    if now >= self.last_activity + d {
                        let _ = self.unbind(now);
                        return;
                    }
                }
                if self.enquire_link_due().is_some_and(|due| now >= due) {
                    let seq = self.alloc_seq();
                    self.emit(&Pdu::new(seq, Body::EnquireLink));
                    self.enquire_deadline = Some(now + self.config.enquire_link_timeout);
                }
            }
            _ => {}
        }
    }

    /// Consumes every complete PDU at the front of `buf`; a partial PDU stays for next time.
    pub fn handle_input(&mut self, buf: &mut BytesMut, now: Instant) {
        while !self.is_closed() {
            match self.framer.next_frame(buf) {
                Ok(Some(frame)) => self.handle_frame(&frame, now),
                Ok(None) => break,
                Err(e) => {
                    self.emit(&e.reply());
                    buf.clear();
                    self.close(CloseReason::InvalidFrame(e));
                }
            }
        }
    }

    /// Handles one complete frame (as split off by [`Framer`]).
    pub fn handle_frame(&mut self, frame: &Bytes, now: Instant) {
        if self.is_closed() {
            return;
        }
        self.last_rx = now;
        self.frames_received += 1;
        // Any PDU proves the peer alive.
        self.enquire_deadline = None;
        match Pdu::decode(frame) {
            Ok(pdu) => self.handle_pdu(pdu, now),
            Err(e) => {
                if let Some(reply) = Pdu::error_reply(e.command_id, e.sequence_number, e.status) {
                    self.emit(&reply);
                }
                self.events.push_back(Event::InvalidPdu(e));
            }
        }
    }

    fn handle_pdu(&mut self, pdu: Pdu, now: Instant) {
        let id = pdu.command_id();
        if id != CommandId::ENQUIRE_LINK && id != CommandId::ENQUIRE_LINK_RESP {
            self.last_activity = now;
        }
        if id.is_response() {
            return self.handle_response(pdu);
        }
        let seq = pdu.sequence_number;
        match id {
            CommandId::ENQUIRE_LINK => {
                self.emit(&Pdu::response(
                    seq,
                    CommandStatus::ROK,
                    Body::EnquireLinkResp,
                ));
            }
            CommandId::UNBIND if matches!(self.state, State::Bound(_) | State::Unbinding) => {
                self.emit(&Pdu::response(seq, CommandStatus::ROK, Body::UnbindResp));
                self.close(CloseReason::Unbound);
            }
            CommandId::BIND_RECEIVER
            | CommandId::BIND_TRANSMITTER
            | CommandId::BIND_TRANSCEIVER
                if self.role == Role::Smsc =>
            {
                self.handle_bind_request(pdu)
            }
            CommandId::OUTBIND if self.state == State::Open && self.bind_pending.is_none() => {
                // An ESME session moves to OUTBOUND. A server-side session reports it too: the
                // peer is an SMSC calling us back, and the application may turn this session
                // into an ESME one (`switch_to_esme`) or close it.
                if let Body::Outbind(o) = pdu.body {
                    if self.role == Role::Esme {
                        self.state = State::Outbound;
                    }
                    self.events.push_back(Event::Outbind(o));
                }
            }
            _ if may_send(self.role.peer(), self.state, id) => {
                if id.response().is_some() {
                    self.inbound_outstanding += 1;
                }
                self.events.push_back(Event::Request(pdu));
            }
            _ => self.refuse(id, seq, CommandStatus::RINVBNDSTS),
        }
    }

    fn handle_bind_request(&mut self, pdu: Pdu) {
        let id = pdu.command_id();
        let seq = pdu.sequence_number;
        if matches!(self.state, State::Bound(_)) || self.bind_pending.is_some() {
            return self.refuse(id, seq, CommandStatus::RALYBND);
        }
        if self.state != State::Open {
            return self.refuse(id, seq, CommandStatus::RINVBNDSTS);
        }
        let (
            Some(bind_type),
            Body::BindReceiver(bind) | Body::BindTransmitter(bind) | Body::BindTransceiver(bind),
        ) = (BindType::from_command_id(id), pdu.body)
        else {
            return;
        };
        self.bind_pending = Some((seq, bind_type, bind.interface_version));
        self.events.push_back(Event::BindRequest {
            sequence_number: seq,
            bind_type,
            bind,
        });
    }

    fn handle_response(&mut self, pdu: Pdu) {
        let id = pdu.command_id();
        let seq = pdu.sequence_number;
        let Some(p) = self.window.take(seq, id) else {
            // The session's own enquire_links are not in the window; their answers end here.
            if id != CommandId::ENQUIRE_LINK_RESP {
                self.events.push_back(Event::UnexpectedResponse(pdu));
            }
            return;
        };
        match p.purpose {
            Purpose::App(tag) => self.events.push_back(Event::Response {
                tag,
                request: p.command_id,
                pdu,
            }),
            Purpose::Unbind => self.close(CloseReason::Unbound),
            Purpose::Bind => {
                let Some(bind_type) = BindType::from_command_id(p.command_id) else {
                    return;
                };
                if pdu.command_status.is_ok() && id != CommandId::GENERIC_NACK {
                    let sc_interface_version = pdu.tlvs.get_u8(tag::SC_INTERFACE_VERSION);
                    self.peer_interface_version = sc_interface_version.or(Some(0x33));
                    self.state = State::Bound(bind_type);
                    let system_id = match pdu.body {
                        Body::BindReceiverResp(s)
                        | Body::BindTransmitterResp(s)
                        | Body::BindTransceiverResp(s) => s,
                        _ => None,
                    };
                    self.events.push_back(Event::Bound {
                        bind_type,
                        system_id,
                        sc_interface_version,
                    });
                } else {
                    self.close(CloseReason::BindRejected(pdu.command_status));
                }
            }
        }
    }

    /// Answers a request we will not serve: its own response, or generic_nack for requests
    /// that have none.
    fn refuse(&mut self, id: CommandId, seq: u32, status: CommandStatus) {
        if let Some(reply) = Pdu::error_reply(id, seq, status) {
            self.emit(&reply);
        }
    }

    fn emit(&mut self, pdu: &Pdu) {
        pdu.encode(&mut self.out);
    }

    fn alloc_seq(&mut self) -> u32 {
        loop {
            let seq = self.next_seq;
            self.next_seq = if seq >= MAX_SEQUENCE_NUMBER {
                1
            } else {
                seq + 1
            };
            if !self.window.contains(seq) {
                return seq;
            }
        }
    }

    /// Sets the next sequence number (for tests of the wrap, and for resuming a numbering).
    pub fn set_next_sequence_number(&mut self, seq: u32) {
        self.next_seq = seq.clamp(1, MAX_SEQUENCE_NUMBER);
    }

    fn close(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.state = State::Closed(reason);
        for (seq, p) in self.window.drain() {
            if let Purpose::App(tag) = p.purpose {
                self.events.push_back(Event::RequestFailed {
                    tag,
                    sequence_number: seq,
                    request: p.command_id,
                    reason: RequestFailure::SessionClosed,
                });
            }
        }
        self.events.push_back(Event::Closed(reason));
    }

    // ---- application calls ----------------------------------------------------------------

    /// ESME role: sends a bind of this type (interface_version is taken from the config when
    /// the given one is 0). Returns its sequence number; [`Event::Bound`] follows, or the
    /// session closes with [`CloseReason::BindRejected`].
    pub fn bind(
        &mut self,
        bind_type: BindType,
        mut bind: Bind,
        now: Instant,
    ) -> Result<u32, SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        let id = bind_type.command_id();
        let in_flight = self.window.contains_purpose(Purpose::Bind);
        if self.role != Role::Esme
            || in_flight
            || !matches!(self.state, State::Open | State::Outbound)
        {
            return Err(SendError::NotAllowed {
                command_id: id,
                state: self.state,
            });
        }
        if bind.interface_version == 0 {
            bind.interface_version = self.config.interface_version;
        }
        let seq = self.send(bind_type.request(bind), Tlvs::new(), Purpose::Bind, now);
        Ok(seq)
    }

    /// SMSC role: accepts the bind with this sequence number; the session is bound from now.
    /// sc_interface_version is added when the ESME declared 0x34 or later.
    pub fn accept_bind(
        &mut self,
        sequence_number: u32,
        system_id: COctet,
    ) -> Result<(), SendError> {
        let Some((seq, bind_type, version)) = self.bind_pending else {
            return Err(SendError::NotAllowed {
                command_id: CommandId::BIND_TRANSMITTER_RESP,
                state: self.state,
            });
        };
        if seq != sequence_number || self.is_closed() {
            return Err(SendError::NotAllowed {
                command_id: bind_type
                    .command_id()
                    .response()
                    .unwrap_or(CommandId::GENERIC_NACK),
                state: self.state,
            });
        }
        self.bind_pending = None;
        let mut resp = Pdu::response(seq, CommandStatus::ROK, bind_type.response(Some(system_id)));
        if version >= 0x34 {
            resp.tlvs
                .set_u8(tag::SC_INTERFACE_VERSION, self.config.interface_version);
        }
        self.emit(&resp);
        self.peer_interface_version = Some(version);
        self.state = State::Bound(bind_type);
        Ok(())
    }

    /// SMSC role: refuses the bind (ESME_RINVPASWD, ESME_RINVSYSID, ESME_RBINDFAIL, ...);
    /// the session closes once the response is flushed.
    pub fn reject_bind(
        &mut self,
        sequence_number: u32,
        status: CommandStatus,
    ) -> Result<(), SendError> {
        let Some((seq, bind_type, _)) = self.bind_pending else {
            return Err(SendError::Closed);
        };
        if seq != sequence_number {
            return Err(SendError::Closed);
        }
        self.bind_pending = None;
        self.emit(&Pdu::response(seq, status, bind_type.response(None)));
        self.close(CloseReason::BindRejected(status));
        Ok(())
    }

    /// Turns an unbound SMSC-role session whose peer sent outbind into an ESME-role session
    /// in the OUTBOUND state, ready for [`Session::bind`].
    pub fn switch_to_esme(&mut self, config: SessionConfig) -> Result<(), SendError> {
        if self.role != Role::Smsc || self.state != State::Open || self.bind_pending.is_some() {
            return Err(SendError::NotAllowed {
                command_id: CommandId::OUTBIND,
                state: self.state,
            });
        }
        self.role = Role::Esme;
        self.framer = Framer::new(config.max_pdu_size);
        self.config = config;
        self.state = State::Outbound;
        Ok(())
    }

    /// SMSC role: asks the ESME to bind on this connection.
    pub fn outbind(&mut self, outbind: Outbind) -> Result<(), SendError> {
        if self.role != Role::Smsc || self.state != State::Open {
            return Err(SendError::NotAllowed {
                command_id: CommandId::OUTBIND,
                state: self.state,
            });
        }
        let seq = self.alloc_seq();
        self.emit(&Pdu::new(seq, Body::Outbind(outbind)));
        Ok(())
    }

    /// Sends a request; `tag` comes back in the [`Event::Response`] or
    /// [`Event::RequestFailed`] for it. Returns the sequence number used.
    pub fn send_request(
        &mut self,
        body: Body,
        tlvs: Tlvs,
        tag: u64,
        now: Instant,
    ) -> Result<u32, SendError> {
        let id = body.command_id();
        if self.is_closed() || self.state == State::Unbinding {
            return Err(SendError::Closed);
        }
        if id.is_response()
            || !may_send(self.role, self.state, id)
            || BindType::from_command_id(id).is_some()
        {
            return Err(SendError::NotAllowed {
                command_id: id,
                state: self.state,
            });
        }
        if self.window.app_in_flight() >= self.config.window {
            return Err(SendError::WindowFull);
        }
        Ok(self.send(body, tlvs, Purpose::App(tag), now))
    }

    fn send(&mut self, body: Body, tlvs: Tlvs, purpose: Purpose, now: Instant) -> u32 {
        let seq = self.alloc_seq();
        let command_id = body.command_id();
        let pdu = Pdu {
            command_status: CommandStatus::ROK,
            sequence_number: seq,
            body,
            tlvs,
        };
        self.emit(&pdu);
        if command_id.response().is_some() {
            self.window.insert(
                seq,
                Pending {
                    command_id,
                    purpose,
                    deadline: now + self.config.response_timeout,
                },
            );
        }
        if command_id != CommandId::ENQUIRE_LINK {
            self.last_activity = now;
        }
        seq
    }

    /// Answers a request from the peer.
    pub fn respond(&mut self, sequence_number: u32, status: CommandStatus, body: Body, tlvs: Tlvs) {
        self.inbound_outstanding = self.inbound_outstanding.saturating_sub(1);
        self.emit(&Pdu {
            command_status: status,
            sequence_number,
            body,
            tlvs,
        });
    }

    /// Starts the unbind handshake. Requests in flight may still be answered; new ones are
    /// refused. The session closes on unbind_resp or when it times out.
    pub fn unbind(&mut self, now: Instant) -> Result<(), SendError> {
        if !matches!(self.state, State::Bound(_)) {
            return Err(SendError::NotAllowed {
                command_id: CommandId::UNBIND,
                state: self.state,
            });
        }
        self.state = State::Unbinding;
        self.send(Body::Unbind, Tlvs::new(), Purpose::Unbind, now);
        Ok(())
    }

    /// Ends the session at once, without unbind; requests in flight are reported failed.
    pub fn abort(&mut self) {
        self.close(CloseReason::Aborted);
    }
}

impl Role {
    pub const fn peer(self) -> Role {
        match self {
            Role::Esme => Role::Smsc,
            Role::Smsc => Role::Esme,
        }
    }
}

/// May `sender` send request `id` in `state`? (`SMPP.md` section 5; binds and outbind are
/// handled by the session itself.)
pub fn may_send(sender: Role, state: State, id: CommandId) -> bool {
    let bound = match state {
        State::Bound(b) => Some(b),
        _ => None,
    };
    let tx = bound.is_some_and(BindType::transmits);
    let rx = bound.is_some_and(BindType::receives);
    match id {
        CommandId::ENQUIRE_LINK | CommandId::GENERIC_NACK => !matches!(state, State::Closed(_)),
        CommandId::UNBIND => bound.is_some(),
        CommandId::BIND_RECEIVER | CommandId::BIND_TRANSMITTER | CommandId::BIND_TRANSCEIVER => {
            sender == Role::Esme && matches!(state, State::Open | State::Outbound)
        }
        CommandId::OUTBIND => sender == Role::Smsc && state == State::Open,
        CommandId::SUBMIT_SM
        | CommandId::SUBMIT_MULTI
        | CommandId::QUERY_SM
        | CommandId::CANCEL_SM
        | CommandId::REPLACE_SM
        | CommandId::BROADCAST_SM
        | CommandId::QUERY_BROADCAST_SM
        | CommandId::CANCEL_BROADCAST_SM => sender == Role::Esme && tx,
        CommandId::DELIVER_SM | CommandId::ALERT_NOTIFICATION => sender == Role::Smsc && rx,
        CommandId::DATA_SM => match sender {
            Role::Esme => tx,
            Role::Smsc => rx,
        },
        _ => false,
    }
}
