//! Two session state machines, an ESME and an SMSC, wired together in memory and driven by a
//! fake clock (in the style of quinn-proto's test `Pair`). No sockets, no sleeping: time moves
//! only when a test moves it.

mod common;

use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use common::hex;
use smppgw::smpp::session::RequestFailure;
use smppgw::smpp::*;

struct Pair {
    now: Instant,
    esme: Session,
    smsc: Session,
    esme_events: Vec<Event>,
    smsc_events: Vec<Event>,
    /// When false, bytes from the SMSC to the ESME are dropped (a dead peer or path).
    smsc_to_esme: bool,
    smsc_to_esme_bytes: BytesMut,
    /// command_id of every PDU the ESME put on the wire.
    esme_sent: Vec<CommandId>,
}

fn config() -> SessionConfig {
    SessionConfig {
        window: 10,
        response_timeout: Duration::from_secs(5),
        session_init_timeout: Some(Duration::from_secs(10)),
        enquire_link_interval: Some(Duration::from_secs(30)),
        enquire_link_timeout: Duration::from_secs(5),
        inactivity_timeout: None,
        ..SessionConfig::default()
    }
}

impl Pair {
    fn new() -> Pair {
        Pair::with(config(), config())
    }

    fn with(esme: SessionConfig, smsc: SessionConfig) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            esme: Session::new(Role::Esme, esme, now),
            smsc: Session::new(Role::Smsc, smsc, now),
            esme_events: Vec::new(),
            smsc_events: Vec::new(),
            smsc_to_esme: true,
            smsc_to_esme_bytes: BytesMut::new(),
            esme_sent: Vec::new(),
        }
    }

    /// Moves bytes both ways until both sides are quiet; collects events.
    fn drive(&mut self) {
        for _ in 0..100 {
            while let Some(e) = self.esme.poll_event() {
                self.esme_events.push(e);
            }
            while let Some(e) = self.smsc.poll_event() {
                self.smsc_events.push(e);
            }
            let mut a = BytesMut::new();
            self.esme.poll_transmit(&mut a);
            let mut b = BytesMut::new();
            self.smsc.poll_transmit(&mut b);
            if a.is_empty() && b.is_empty() {
                break;
            }
            let mut peek = a.clone();
            while let Ok(Some(f)) = Framer::default().next_frame(&mut peek) {
                self.esme_sent.push(Header::parse(&f).unwrap().command_id);
            }
            self.smsc.handle_input(&mut a, self.now);
            if self.smsc_to_esme {
                self.esme.handle_input(&mut b, self.now);
            } else {
                self.smsc_to_esme_bytes.extend_from_slice(&b);
            }
        }
    }

    /// Advances the clock by `d`, firing every timer on the way in order.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [self.esme.poll_timeout(), self.smsc.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            self.esme.handle_timeout(self.now);
            self.smsc.handle_timeout(self.now);
            self.drive();
        }
        self.now = end;
    }

    fn bind(&mut self, bind_type: BindType, password: &str) {
        let bind = Bind {
            system_id: "client1".into(),
            password: password.into(),
            ..Bind::default()
        };
        self.esme.bind(bind_type, bind, self.now).unwrap();
        self.drive();
        let (seq, req) = match self.smsc_events.pop() {
            Some(Event::BindRequest {
                sequence_number,
                bind,
                bind_type: bt,
            }) => {
                assert_eq!(bt, bind_type);
                (sequence_number, bind)
            }
            other => panic!("expected BindRequest, got {other:?}"),
        };
        if req.password.as_str() == Some("secret") {
            self.smsc.accept_bind(seq, "smppgw".into()).unwrap();
        } else {
            self.smsc
                .reject_bind(seq, CommandStatus::RINVPASWD)
                .unwrap();
        }
        self.drive();
    }

    fn bound(bind_type: BindType) -> Pair {
        let mut p = Pair::new();
        p.bind(bind_type, "secret");
        assert_eq!(p.esme.state(), State::Bound(bind_type));
        assert_eq!(p.smsc.state(), State::Bound(bind_type));
        p.esme_events.clear();
        p
    }

    fn submit(&mut self, tag: u64, text: &str) -> Result<u32, SendError> {
        let sm = SubmitSm {
            source: Address::new(1, 1, "4477"),
            dest: Address::new(1, 1, "3161"),
            short_message: bytes::Bytes::copy_from_slice(text.as_bytes()),
            ..SubmitSm::default()
        };
        self.esme
            .send_request(Body::SubmitSm(sm), Tlvs::new(), tag, self.now)
    }

    fn smsc_requests(&mut self) -> Vec<Pdu> {
        let mut out = Vec::new();
        self.smsc_events.retain(|e| match e {
            Event::Request(p) => {
                out.push(p.clone());
                false
            }
            _ => true,
        });
        out
    }
}

#[test]
fn bind_transceiver_binds_both_sides_and_reports_sc_interface_version() {
    let mut p = Pair::new();
    p.bind(BindType::Transceiver, "secret");
    assert_eq!(
        p.esme_events,
        vec![Event::Bound {
            bind_type: BindType::Transceiver,
            system_id: Some("smppgw".into()),
            sc_interface_version: Some(0x34),
        }]
    );
    assert_eq!(p.esme.state(), State::Bound(BindType::Transceiver));
    assert_eq!(p.smsc.state(), State::Bound(BindType::Transceiver));
    assert_eq!(p.smsc.peer_interface_version(), Some(0x34));
}

#[test]
fn bind_with_wrong_password_gets_rinvpaswd_and_both_sides_close() {
    let mut p = Pair::new();
    p.bind(BindType::Transmitter, "wrong");
    let reason = CloseReason::BindRejected(CommandStatus::RINVPASWD);
    assert_eq!(p.esme.state(), State::Closed(reason));
    assert_eq!(p.smsc.state(), State::Closed(reason));
    assert!(p.esme_events.contains(&Event::Closed(reason)));
}

#[test]
fn a_window_of_10_submits_answered_out_of_order_matches_every_response() {
    let mut p = Pair::bound(BindType::Transmitter);
    let mut seqs = Vec::new();
    for tag in 0..10u64 {
        seqs.push(p.submit(tag, &format!("message {tag}")).unwrap());
    }
    assert_eq!(p.submit(10, "one too many"), Err(SendError::WindowFull));
    assert_eq!(p.esme.window_available(), 0);
    p.drive();
    let requests = p.smsc_requests();
    assert_eq!(requests.len(), 10);
    assert_eq!(p.smsc.inbound_outstanding(), 10);
    // Answer in a scrambled order; message id = "id-" + the text's number.
    for i in [7usize, 2, 9, 0, 5, 1, 8, 3, 6, 4] {
        let req = &requests[i];
        let Body::SubmitSm(sm) = &req.body else {
            panic!()
        };
        let n = String::from_utf8_lossy(&sm.short_message).replace("message ", "");
        p.smsc.respond(
            req.sequence_number,
            CommandStatus::ROK,
            Body::SubmitSmResp(Some(format!("id-{n}").as_str().into())),
            Tlvs::new(),
        );
    }
    p.drive();
    assert_eq!(p.smsc.inbound_outstanding(), 0);
    assert_eq!(p.esme_events.len(), 10);
    for e in &p.esme_events {
        let Event::Response { tag, request, pdu } = e else {
            panic!("{e:?}")
        };
        assert_eq!(*request, CommandId::SUBMIT_SM);
        assert_eq!(
            pdu.body,
            Body::SubmitSmResp(Some(format!("id-{tag}").as_str().into()))
        );
        assert_eq!(pdu.sequence_number, seqs[*tag as usize]);
    }
    assert_eq!(p.esme.in_flight(), 0);
    assert!(p.submit(11, "window open again").is_ok());
}

#[test]
fn enquire_link_is_sent_on_idle_and_answered_without_bothering_the_application() {
    let mut p = Pair::bound(BindType::Transceiver);
    let first = p.esme.poll_timeout().unwrap();
    assert_eq!(first, p.now + Duration::from_secs(30));
    p.advance(Duration::from_secs(31));
    assert!(p.esme_events.is_empty(), "{:?}", p.esme_events);
    assert!(
        p.smsc_events
            .iter()
            .all(|e| !matches!(e, Event::Request(_))),
        "{:?}",
        p.smsc_events
    );
    assert!(matches!(p.esme.state(), State::Bound(_)));
    // An hour of idleness: an enquire_link every 30 s, each answered, and still bound.
    p.esme_sent.clear();
    p.advance(Duration::from_secs(3600));
    let sent = p
        .esme_sent
        .iter()
        .filter(|c| **c == CommandId::ENQUIRE_LINK)
        .count();
    assert!(
        (115..=121).contains(&sent),
        "{sent} enquire_links in an hour"
    );
    assert_eq!(p.esme.state(), State::Bound(BindType::Transceiver));
    assert_eq!(p.smsc.state(), State::Bound(BindType::Transceiver));
}

#[test]
fn an_unanswered_request_expires_and_its_late_response_is_unexpected() {
    let mut p = Pair::bound(BindType::Transmitter);
    let seq = p.submit(42, "no answer").unwrap();
    p.drive();
    let req = p.smsc_requests().pop().unwrap();
    p.advance(Duration::from_secs(4));
    assert!(p.esme_events.is_empty());
    p.advance(Duration::from_secs(2));
    assert_eq!(
        p.esme_events,
        vec![Event::RequestFailed {
            tag: 42,
            sequence_number: seq,
            request: CommandId::SUBMIT_SM,
            reason: RequestFailure::Timeout,
        }]
    );
    p.esme_events.clear();
    p.smsc.respond(
        req.sequence_number,
        CommandStatus::ROK,
        Body::SubmitSmResp(Some("late".into())),
        Tlvs::new(),
    );
    p.drive();
    assert!(matches!(&p.esme_events[..], [Event::UnexpectedResponse(_)]));
}

#[test]
fn a_silent_peer_is_declared_dead_within_enquire_link_plus_its_timeout() {
    let mut p = Pair::bound(BindType::Transmitter);
    p.smsc_to_esme = false;
    let seq = p.submit(7, "lost").unwrap();
    p.drive();
    // The response timer (5 s) fires first and hands the submit back...
    p.advance(Duration::from_secs(6));
    assert_eq!(
        p.esme_events,
        vec![Event::RequestFailed {
            tag: 7,
            sequence_number: seq,
            request: CommandId::SUBMIT_SM,
            reason: RequestFailure::Timeout,
        }]
    );
    // ...then the idle enquire_link at 30 s goes unanswered for 5 s: the link is dead.
    p.advance(Duration::from_secs(28));
    assert!(matches!(p.esme.state(), State::Bound(_)));
    p.advance(Duration::from_secs(2));
    assert_eq!(
        p.esme.state(),
        State::Closed(CloseReason::EnquireLinkTimeout)
    );
    assert_eq!(
        p.esme_events.last(),
        Some(&Event::Closed(CloseReason::EnquireLinkTimeout))
    );
}

#[test]
fn requests_in_flight_when_the_link_dies_are_handed_back() {
    let cfg = SessionConfig {
        response_timeout: Duration::from_secs(120),
        ..config()
    };
    let mut p = Pair::with(cfg.clone(), cfg);
    p.bind(BindType::Transmitter, "secret");
    p.esme_events.clear();
    p.smsc_to_esme = false;
    let s1 = p.submit(1, "a").unwrap();
    let s2 = p.submit(2, "b").unwrap();
    p.drive();
    p.advance(Duration::from_secs(36));
    assert_eq!(
        p.esme.state(),
        State::Closed(CloseReason::EnquireLinkTimeout)
    );
    let failed: Vec<(u64, u32, RequestFailure)> = p
        .esme_events
        .iter()
        .filter_map(|e| match e {
            Event::RequestFailed {
                tag,
                sequence_number,
                reason,
                ..
            } => Some((*tag, *sequence_number, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            (1, s1, RequestFailure::SessionClosed),
            (2, s2, RequestFailure::SessionClosed)
        ]
    );
}

#[test]
fn unbind_handshake_closes_both_sides_cleanly() {
    let mut p = Pair::bound(BindType::Transceiver);
    p.esme.unbind(p.now).unwrap();
    assert_eq!(p.esme.state(), State::Unbinding);
    assert_eq!(p.submit(1, "too late"), Err(SendError::Closed));
    p.drive();
    assert_eq!(p.smsc.state(), State::Closed(CloseReason::Unbound));
    assert_eq!(p.esme.state(), State::Closed(CloseReason::Unbound));
    assert!(p.esme_events.contains(&Event::Closed(CloseReason::Unbound)));
}

#[test]
fn unanswered_unbind_times_out() {
    let mut p = Pair::bound(BindType::Transceiver);
    p.smsc_to_esme = false;
    p.esme.unbind(p.now).unwrap();
    p.drive();
    p.advance(Duration::from_secs(6));
    assert_eq!(p.esme.state(), State::Closed(CloseReason::UnbindTimeout));
}

#[test]
fn submit_before_bind_gets_rinvbndsts() {
    let mut p = Pair::new();
    let mut wire = BytesMut::from(&common::fixture("submit_sm", "160 GSM")[..]);
    p.smsc.handle_input(&mut wire, p.now);
    let mut out = BytesMut::new();
    p.smsc.poll_transmit(&mut out);
    let reply = Pdu::decode(&out.split().freeze()).unwrap();
    assert_eq!(reply.body, Body::SubmitSmResp(None));
    assert_eq!(reply.command_status, CommandStatus::RINVBNDSTS);
    assert_eq!(reply.sequence_number, 10);
    assert!(p.smsc.poll_event().is_none());
    // The ESME side refuses to even send it.
    assert!(matches!(
        p.submit(1, "x"),
        Err(SendError::NotAllowed { .. })
    ));
}

#[test]
fn second_bind_gets_ralybnd() {
    let mut p = Pair::bound(BindType::Transmitter);
    let mut wire = BytesMut::from(
        &hex("0000001E 00000002 00000000 00000063 65736D6500 70773100 00 34 0000 00")[..],
    );
    p.smsc.handle_input(&mut wire, p.now);
    let mut out = BytesMut::new();
    p.smsc.poll_transmit(&mut out);
    let reply = Pdu::decode(&out.freeze()).unwrap();
    assert_eq!(reply.body, Body::BindTransmitterResp(None));
    assert_eq!(reply.command_status, CommandStatus::RALYBND);
    assert_eq!(reply.sequence_number, 0x63);
    assert_eq!(p.smsc.state(), State::Bound(BindType::Transmitter));
}

#[test]
fn the_smsc_may_not_deliver_on_a_transmitter_bind() {
    let mut p = Pair::bound(BindType::Transmitter);
    let r = p
        .smsc
        .send_request(Body::DeliverSm(DeliverSm::default()), Tlvs::new(), 1, p.now);
    assert!(matches!(
        r,
        Err(SendError::NotAllowed {
            command_id: CommandId::DELIVER_SM,
            ..
        })
    ));
    // ...and an ESME receiving one anyway answers RINVBNDSTS.
    let mut wire = BytesMut::new();
    Pdu::new(5, Body::DeliverSm(DeliverSm::default())).encode(&mut wire);
    p.esme.handle_input(&mut wire, p.now);
    let mut out = BytesMut::new();
    p.esme.poll_transmit(&mut out);
    let reply = Pdu::decode(&out.freeze()).unwrap();
    assert_eq!(
        (reply.body, reply.command_status),
        (Body::DeliverSmResp(None), CommandStatus::RINVBNDSTS)
    );
}

#[test]
fn deliver_sm_flows_to_a_receiver_and_is_answered() {
    let mut p = Pair::bound(BindType::Receiver);
    let dlr = DeliverSm {
        esm_class: 0x04,
        short_message: bytes::Bytes::from_static(b"id:1 stat:DELIVRD"),
        ..DeliverSm::default()
    };
    p.smsc
        .send_request(Body::DeliverSm(dlr), Tlvs::new(), 9, p.now)
        .unwrap();
    p.drive();
    let Some(Event::Request(req)) = p.esme_events.pop() else {
        panic!("{:?}", p.esme_events)
    };
    p.esme.respond(
        req.sequence_number,
        CommandStatus::ROK,
        Body::DeliverSmResp(Some(COctet::EMPTY)),
        Tlvs::new(),
    );
    p.drive();
    assert!(matches!(
        p.smsc_events.pop(),
        Some(Event::Response { tag: 9, .. })
    ));
}

#[test]
fn a_connection_that_never_binds_is_closed_by_the_session_init_timer() {
    let mut p = Pair::new();
    p.advance(Duration::from_secs(9));
    assert_eq!(p.smsc.state(), State::Open);
    p.advance(Duration::from_secs(2));
    assert_eq!(
        p.smsc.state(),
        State::Closed(CloseReason::SessionInitTimeout)
    );
}

#[test]
fn inactivity_unbinds_even_while_enquire_links_flow() {
    let cfg = SessionConfig {
        inactivity_timeout: Some(Duration::from_secs(300)),
        ..config()
    };
    let mut p = Pair::with(config(), cfg);
    p.bind(BindType::Transceiver, "secret");
    p.advance(Duration::from_secs(299));
    assert!(matches!(p.smsc.state(), State::Bound(_)));
    p.advance(Duration::from_secs(2));
    assert_eq!(p.smsc.state(), State::Closed(CloseReason::Unbound));
    assert_eq!(p.esme.state(), State::Closed(CloseReason::Unbound));
}

#[test]
fn sequence_numbers_wrap_to_1_and_skip_numbers_in_flight() {
    let mut p = Pair::bound(BindType::Transmitter);
    p.esme.set_next_sequence_number(0x7FFF_FFFE);
    assert_eq!(p.submit(0, "a").unwrap(), 0x7FFF_FFFE);
    assert_eq!(p.submit(1, "b").unwrap(), 0x7FFF_FFFF);
    assert_eq!(p.submit(2, "c").unwrap(), 1);
    // 2 is still free, 3 will be taken, then wrap around onto the in-flight numbers.
    let s = p.submit(3, "d").unwrap();
    assert_eq!(s, 2);
    p.esme.set_next_sequence_number(0x7FFF_FFFE);
    assert_eq!(
        p.submit(4, "e").unwrap(),
        3,
        "0x7FFFFFFE, 0x7FFFFFFF, 1 and 2 are in flight"
    );
}

#[test]
fn garbage_bytes_get_generic_nack_rinvcmdlen_and_close() {
    let mut p = Pair::new();
    let mut wire = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
    p.smsc.handle_input(&mut wire, p.now);
    let mut out = BytesMut::new();
    p.smsc.poll_transmit(&mut out);
    let reply = Pdu::decode(&out.freeze()).unwrap();
    assert_eq!(
        (reply.body, reply.command_status),
        (Body::GenericNack, CommandStatus::RINVCMDLEN)
    );
    assert!(matches!(
        p.smsc.state(),
        State::Closed(CloseReason::InvalidFrame(_))
    ));
}

#[test]
fn unknown_command_is_nacked_and_the_session_carries_on() {
    let mut p = Pair::bound(BindType::Transceiver);
    let mut wire = BytesMut::from(&hex("00000010 00000077 00000000 00000005")[..]);
    p.smsc.handle_input(&mut wire, p.now);
    let mut out = BytesMut::new();
    p.smsc.poll_transmit(&mut out);
    let reply = Pdu::decode(&out.freeze()).unwrap();
    assert_eq!(
        (reply.body, reply.command_status, reply.sequence_number),
        (Body::GenericNack, CommandStatus::RINVCMDID, 5)
    );
    assert!(matches!(p.smsc.poll_event(), Some(Event::InvalidPdu(_))));
    assert_eq!(p.smsc.state(), State::Bound(BindType::Transceiver));
    assert!(p.submit(1, "still works").is_ok());
}

#[test]
fn a_generic_nack_completes_the_request_it_answers() {
    let mut p = Pair::bound(BindType::Transmitter);
    let seq = p.submit(5, "x").unwrap();
    p.drive();
    let mut nack = BytesMut::new();
    Pdu::response(seq, CommandStatus::RSYSERR, Body::GenericNack).encode(&mut nack);
    p.esme.handle_input(&mut nack, p.now);
    match p.esme.poll_event() {
        Some(Event::Response { tag: 5, pdu, .. }) => {
            assert_eq!(pdu.command_status, CommandStatus::RSYSERR)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn outbind_leads_the_esme_to_bind_as_receiver() {
    let mut p = Pair::new();
    p.smsc
        .outbind(Outbind {
            system_id: "smsc".into(),
            password: "pw".into(),
        })
        .unwrap();
    p.drive();
    assert!(
        matches!(p.esme_events.pop(), Some(Event::Outbind(o)) if o.system_id.as_str() == Some("smsc"))
    );
    assert_eq!(p.esme.state(), State::Outbound);
    p.bind(BindType::Receiver, "secret");
    assert_eq!(p.esme.state(), State::Bound(BindType::Receiver));
}

#[test]
fn input_split_at_every_byte_is_handled_like_one_read() {
    let mut p = Pair::new();
    let mut wire = BytesMut::new();
    Pdu::new(
        1,
        Body::BindTransceiver(Bind {
            system_id: "a".into(),
            ..Bind::default()
        }),
    )
    .encode(&mut wire);
    Pdu::new(2, Body::EnquireLink).encode(&mut wire);
    let mut buf = BytesMut::new();
    while wire.has_remaining() {
        buf.extend_from_slice(&wire.split_to(1));
        p.smsc.handle_input(&mut buf, p.now);
    }
    assert!(matches!(
        p.smsc.poll_event(),
        Some(Event::BindRequest {
            sequence_number: 1,
            ..
        })
    ));
    let mut out = BytesMut::new();
    p.smsc.poll_transmit(&mut out);
    let reply = Pdu::decode(&out.freeze()).unwrap();
    assert_eq!(
        (reply.body, reply.sequence_number),
        (Body::EnquireLinkResp, 2)
    );
}
