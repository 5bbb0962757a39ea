//! The gateway routing by regexroute.conf: real sockets, a real upstream link, real files, and
//! SIGHUP reloads. ESME `alice` submits; `bob` receives what routes to `smppserver/bob`.

mod common;

use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::Gateway;
use common::upstream::FakeUpstream;
use smppgw::smpp::*;

const REGFILE: &str =
    "[alice]\npassword=a1\n\n[bob]\npassword=b2\n\n[carol]\npassword=c3\nrate=5\n";

const ROUTES: &str = "\
[default]
${module}^smppclient$=smppserver/bob
^+\\?4411=smppclient/up
^+\\?4422=smppserver/bob
^4433=smsc_map
^4434=http
^4444=-;error=forbidden;reason=barred prefix
^4455=smppclient/nosuchlink
^4456=-;error=congestion
^4457=-;error=ESME_RX_R_APPN
";

fn client(port: u16) -> String {
    format!(
        "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={port}\nsystem_id=gw\nsystem_password=pw\nbind=transceiver\nreconnect=100ms,1s\n"
    )
}

fn start(up: &FakeUpstream, general: &str, routes: &str) -> Gateway {
    let gw = Gateway::start_with(
        general,
        &client(up.port),
        REGFILE,
        &[("regexroute.conf", routes)],
    );
    gw.wait_bound(1);
    gw
}

fn bind(gw: &Gateway, who: &str, pw: &str, t: BindType) -> Esme {
    let mut e = Esme::plain(gw.plain);
    e.bind(t, who, pw).expect("bind");
    e
}

fn submit(e: &mut Esme, to: &str, text: &str) -> (CommandStatus, Option<String>) {
    let seq = e.submit_sm(sm("15550001", to, text.as_bytes(), 0));
    e.response(seq).expect("an answer")
}

#[test]
fn messages_go_where_the_route_file_says_and_refusals_say_why() {
    let up = FakeUpstream::start(true);
    let gw = start(&up, "", ROUTES);
    let mut alice = bind(&gw, "alice", "a1", BindType::Transceiver);
    let mut bob = bind(&gw, "bob", "b2", BindType::Receiver);

    // smppclient/up: forwarded; the answer carries the gateway's id, the upstream got the text.
    let (st, id) = submit(&mut alice, "+441100", "to the link");
    assert_eq!(st, CommandStatus::ROK);
    assert!(id.is_some_and(|i| i.len() == 20));
    assert_eq!(
        up.wait_received(1, Duration::from_secs(5)),
        vec![b"to the link".to_vec()]
    );

    // smppserver/bob: acknowledged and delivered to bob as deliver_sm.
    let (st, _) = submit(&mut alice, "442200", "hello bob");
    assert_eq!(st, CommandStatus::ROK);
    assert!(
        bob.wait_delivered(1, Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    match &bob.delivered[0].body {
        Body::DeliverSm(d) => {
            assert_eq!(&d.short_message[..], b"hello bob");
            assert_eq!(d.dest.addr.as_bytes(), b"442200");
            assert_eq!(d.source.addr.as_bytes(), b"15550001");
            assert_eq!(d.esm_class & 0x3C, 0, "a message, not a receipt");
        }
        other => panic!("{other:?}"),
    }

    // Targets the gateway does not serve, `http` with no [http-target] url, and unknown
    // links: no route. Accepted (a
    // store-and-forward SMSC answers before it knows the fate), ended undeliverable with the
    // reason in the log, and the receipt asked for says so: UNDELIV, TP-Status 0x45 (no
    // interworking available). Nothing is sent anywhere.
    let mut unrouted = Vec::new();
    for (to, why) in [
        ("443300", "module smsc_map is not served by this gateway"),
        (
            "443400",
            "route to http, but ysmpp.conf [http-target] has no url=",
        ),
        (
            "445500",
            "route to smppclient/nosuchlink, but ysmpp.conf has no such client link",
        ),
        (
            "999999",
            "no rule in regexroute.conf routes it and there is no default_route",
        ),
    ] {
        let seq = alice.submit_sm(sm("15550001", to, b"nowhere", 1));
        let (st, id) = alice.response(seq).expect("an answer");
        assert_eq!(st, CommandStatus::ROK, "{to}");
        unrouted.push(id.expect("a message id"));
        assert!(
            gw.wait_log(
                &format!("no route: alice: {to}: {why}"),
                Duration::from_secs(3)
            ),
            "{to}: {why}\n{}",
            gw.log()
        );
        // One refusal line a second per shard at most.
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert!(
        alice.wait_delivered(4, Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    for (p, id) in alice.delivered.iter().zip(&unrouted) {
        assert_eq!(
            p.tlvs.get(tlv::tag::RECEIPTED_MESSAGE_ID),
            Some(format!("{id}\0").as_bytes())
        );
        assert_eq!(
            p.tlvs.get(tlv::tag::NETWORK_ERROR_CODE),
            Some(&[3, 0, 0x45][..])
        );
        assert!(sm_text(p).contains("stat:UNDELIV err:069 text:nowhere"));
    }
    // A reject: refused at once, nothing logged or sent.
    let (st, id) = submit(&mut alice, "444400", "nowhere");
    assert_eq!((st, id), (CommandStatus::RINVDSTADR, None));
    assert!(gw.wait_log(
        "rejected by the rules: error=forbidden reason=barred prefix",
        Duration::from_secs(3)
    ));
    std::thread::sleep(Duration::from_millis(1100));
    // A reject's error picks the status: Yate's names, or an SMPP status by name.
    for (to, status) in [
        ("445600", CommandStatus::RTHROTTLED),
        ("445700", CommandStatus::RX_R_APPN),
    ] {
        let (st, _) = submit(&mut alice, to, "nowhere");
        assert_eq!(st, status, "{to}");
    }
    assert!(
        gw.wait_log(
            "error=congestion; the ESME gets ESME_RTHROTTLED (0x00000058)",
            Duration::from_secs(3)
        ),
        "{}",
        gw.log()
    );
    assert_eq!(up.received().len(), 1);
    assert_eq!(bob.delivered.len(), 1);
    assert!(
        gw.log().contains(
            "regexroute.conf:8: smppclient/nosuchlink: no such client link in ysmpp.conf"
        ),
        "{}",
        gw.log()
    );
}

#[test]
fn unrouted_messages_take_default_route_and_mo_is_routed_to_an_esme() {
    let up = FakeUpstream::start(true);
    let gw = start(&up, "default_route=up", ROUTES);
    let mut alice = bind(&gw, "alice", "a1", BindType::Transmitter);
    let mut bob = bind(&gw, "bob", "b2", BindType::Receiver);
    let (st, _) = submit(&mut alice, "999999", "by default");
    assert_eq!(st, CommandStatus::ROK);
    assert_eq!(
        up.wait_received(1, Duration::from_secs(5)),
        vec![b"by default".to_vec()]
    );

    // A mobile-originated deliver_sm from the link: module=smppclient, routed to bob.
    up.send_mo("447700", "1234", b"MO text");
    assert!(
        bob.wait_delivered(1, Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    match &bob.delivered[0].body {
        Body::DeliverSm(d) => assert_eq!(&d.short_message[..], b"MO text"),
        other => panic!("{other:?}"),
    }
    let t0 = Instant::now();
    while up.mo_status().is_empty() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(up.mo_status(), vec![CommandStatus::ROK]);
}

#[test]
fn sighup_installs_a_new_table_and_keeps_the_running_one_when_the_new_one_is_broken() {
    let up = FakeUpstream::start(true);
    let gw = start(&up, "", "[default]\n^4411=smppclient/up\n");
    let mut alice = bind(&gw, "alice", "a1", BindType::Transmitter);
    let _bob = bind(&gw, "bob", "b2", BindType::Receiver);
    assert_eq!(submit(&mut alice, "550000", "x").0, CommandStatus::ROK);
    assert!(gw.wait_log(
        "550000: no rule in regexroute.conf routes it",
        Duration::from_secs(3)
    ));

    let hup = |gw: &Gateway| {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(gw.pid() as i32, libc::SIGHUP) };
    };
    std::fs::write(
        gw.dir.join("regexroute.conf"),
        "[default]\n^55=smppserver/bob\n",
    )
    .unwrap();
    hup(&gw);
    assert!(
        gw.wait_log(
            "regexroute.conf version 2 replaces version 1",
            Duration::from_secs(5)
        ),
        "{}",
        gw.log()
    );
    assert_eq!(submit(&mut alice, "550000", "x").0, CommandStatus::ROK);

    std::fs::write(
        gw.dir.join("regexroute.conf"),
        "[default]\n^55=smppserver/bob\n^\\(66=x\n",
    )
    .unwrap();
    hup(&gw);
    assert!(
        gw.wait_log(
            "refused; keeping configuration version 2",
            Duration::from_secs(5)
        ),
        "{}",
        gw.log()
    );
    assert!(
        gw.log().contains("regexroute.conf:3: regex"),
        "{}",
        gw.log()
    );
    assert_eq!(
        submit(&mut alice, "550001", "x").0,
        CommandStatus::ROK,
        "the running table stays"
    );
}

#[test]
fn a_broken_route_file_stops_the_gateway_from_starting() {
    let dir = common::gateway::temp_dir("broken-routes");
    let port = common::gateway::free_port();
    std::fs::write(
        dir.join("ysmpp.conf"),
        format!("[general]\nshards=1\n[listenerserver plain]\naddr=127.0.0.1\nport={port}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("regfile.conf"), REGFILE).unwrap();
    std::fs::write(dir.join("regexroute.conf"), "[default]\n^\\(1=x\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smppgw"))
        .args(["run", "--config"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("regexroute.conf:2: regex \"^\\\\(1\": \\( is never closed by \\)"),
        "{err}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );
}

#[test]
fn rules_see_billid_and_the_state_of_a_status_report() {
    let up = FakeUpstream::start(true);
    let routes = "[default]\n\
        ${sms_type}^status_report$=if ${sms_stat}^DELIVRD$=smppserver/bob\n\
        ${sms_type}^status_report$=-;error=unexpected_state\n\
        ^4466=if ${billid}^[0-9a-f]\\{20\\}$=smppserver/bob\n";
    let gw = start(&up, "", routes);
    let mut alice = bind(&gw, "alice", "a1", BindType::Transmitter);
    let mut bob = bind(&gw, "bob", "b2", BindType::Receiver);
    // The gateway's id is billid: 20 hex digits.
    assert_eq!(
        submit(&mut alice, "446600", "billed").0,
        CommandStatus::ROK,
        "{}",
        gw.log()
    );
    assert!(bob.wait_delivered(1, Duration::from_secs(5)));
    // A status report submitted by an ESME: sms_type and sms_stat come from esm_class and
    // the receipt text.
    let report = |stat: &str| {
        let mut m = sm("15550001", "1234", format!("id:77 sub:001 dlvrd:001 submit date:2611291200 done date:2611291201 stat:{stat} err:000 text:").as_bytes(), 0);
        m.esm_class = 0x04;
        m
    };
    let seq = alice.submit_sm(report("DELIVRD"));
    assert_eq!(
        alice.response(seq).unwrap().0,
        CommandStatus::ROK,
        "{}",
        gw.log()
    );
    assert!(bob.wait_delivered(2, Duration::from_secs(5)));
    let seq = alice.submit_sm(report("UNDELIV"));
    assert_eq!(alice.response(seq).unwrap().0, CommandStatus::RINVDSTADR);
    assert!(
        gw.wait_log("error=unexpected_state", Duration::from_secs(3)),
        "{}",
        gw.log()
    );
}

fn sm_text(p: &Pdu) -> String {
    match &p.body {
        Body::DeliverSm(d) => String::from_utf8_lossy(&d.short_message).into_owned(),
        other => panic!("{other:?}"),
    }
}

/// Checks a receipt from 442200 to 15550001 for message `id`: its state, TP-Status, and
/// words of its text.
fn check_receipt(p: &Pdu, id: &str, state: MessageState, tp: u8, words: &str) {
    let Body::DeliverSm(d) = &p.body else {
        panic!("{p:?}")
    };
    assert_eq!(d.esm_class, 0x04, "a receipt");
    assert_eq!(d.source.addr.as_bytes(), b"442200");
    assert_eq!(d.dest.addr.as_bytes(), b"15550001");
    assert_eq!(
        p.tlvs.get(tlv::tag::RECEIPTED_MESSAGE_ID),
        Some(format!("{id}\0").as_bytes())
    );
    assert_eq!(p.tlvs.get(tlv::tag::MESSAGE_STATE), Some(&[state.0][..]));
    assert_eq!(
        p.tlvs.get(tlv::tag::NETWORK_ERROR_CODE),
        Some(&[3, 0, tp][..])
    );
    let text = sm_text(p);
    assert!(text.starts_with(&format!("id:{id} ")), "{text}");
    assert!(text.contains(words), "{text}");
}

/// Polls `bob` (who answers deliveries) and `alice` until alice has `n` deliveries.
fn receipts(alice: &mut Esme, bob: &mut Esme, n: usize) -> bool {
    let t0 = Instant::now();
    while alice.delivered.len() < n && t0.elapsed() < Duration::from_secs(5) {
        bob.poll();
        alice.poll();
    }
    alice.delivered.len() >= n
}

#[test]
fn a_message_to_another_esme_gets_the_receipt_its_submitter_asked_for() {
    let up = FakeUpstream::start(true);
    let gw = start(&up, "", ROUTES);
    let mut alice = bind(&gw, "alice", "a1", BindType::Transceiver);
    let mut bob = bind(&gw, "bob", "b2", BindType::Receiver);
    let send = |alice: &mut Esme, rd: u8, text: &str| -> String {
        let seq = alice.submit_sm(sm("15550001", "442200", text.as_bytes(), rd));
        let (st, id) = alice.response(seq).expect("an answer");
        assert_eq!(st, CommandStatus::ROK);
        id.expect("a message id")
    };

    // registered_delivery 1, bob accepts: DELIVRD, TP-Status 0 (received by the SME).
    let id = send(&mut alice, 1, "hello bob");
    assert!(receipts(&mut alice, &mut bob, 1), "{}", gw.log());
    assert_eq!(bob.delivered.len(), 1);
    check_receipt(
        &alice.delivered[0],
        &id,
        MessageState::DELIVERED,
        0x00,
        "dlvrd:001 ",
    );
    assert!(sm_text(&alice.delivered[0]).contains("stat:DELIVRD err:000 text:hello bob"));

    // Bob refuses for good from now on. Asked for success only (3): no receipt. Then, failure
    // only (2): UNDELIV, TP-Status 0x42 (connection rejected by the SME).
    bob.deliver_status = CommandStatus::RX_P_APPN;
    send(&mut alice, 3, "success only");
    let t0 = Instant::now();
    while bob.delivered.len() < 2 && t0.elapsed() < Duration::from_secs(5) {
        bob.poll();
    }
    assert_eq!(bob.delivered.len(), 2);
    let id = send(&mut alice, 2, "failure only");
    assert!(receipts(&mut alice, &mut bob, 2), "{}", gw.log());
    check_receipt(
        &alice.delivered[1],
        &id,
        MessageState::UNDELIVERABLE,
        0x42,
        "dlvrd:000 ",
    );
    assert!(sm_text(&alice.delivered[1]).contains("stat:UNDELIV err:066"));
    assert!(
        gw.wait_log(
            "from smppserver/alice to smppserver/bob: UNDELIV (TP-Status 0x42, connection rejected by the SME)",
            Duration::from_secs(3)
        ),
        "{}",
        gw.log()
    );

    // Bob accepts again. Failure only (2): no receipt; none (0): none; the next receipt alice
    // sees is the one for the message that asked for it.
    bob.deliver_status = CommandStatus::ROK;
    send(&mut alice, 2, "no receipt");
    send(&mut alice, 0, "no receipt either");
    let id = send(&mut alice, 1, "last");
    assert!(receipts(&mut alice, &mut bob, 3), "{}", gw.log());
    check_receipt(
        &alice.delivered[2],
        &id,
        MessageState::DELIVERED,
        0x00,
        "text:last",
    );
    std::thread::sleep(Duration::from_millis(300));
    bob.poll();
    alice.poll();
    assert_eq!(alice.delivered.len(), 3, "{:?}", alice.delivered);
    assert_eq!(bob.delivered.len(), 6);
}

/// Sends a submit_multi and waits for its answer: status, message id, and the destinations
/// that failed (address, status).
fn submit_multi(
    e: &mut Esme,
    dests: &[DestAddress],
    text: &str,
    registered_delivery: u8,
) -> (CommandStatus, Option<String>, Vec<(String, CommandStatus)>) {
    let m = SubmitMulti {
        source: Address::new(1, 1, "15550001"),
        dests: dests.to_vec(),
        registered_delivery,
        short_message: text.as_bytes().to_vec().into(),
        ..SubmitMulti::default()
    };
    let seq = e
        .session
        .send_request(Body::SubmitMulti(m), Tlvs::new(), 99, Instant::now())
        .expect("submit_multi allowed");
    e.flush();
    e.until(Duration::from_secs(10), |ev| match ev {
        Event::Response { pdu, .. } if pdu.sequence_number == seq => Some(match &pdu.body {
            Body::SubmitMultiResp(Some(r)) => (
                pdu.command_status,
                Some(r.message_id.to_string()),
                r.unsuccess
                    .iter()
                    .map(|u| (u.dest.addr.to_string(), u.error_status_code))
                    .collect(),
            ),
            _ => (pdu.command_status, None, Vec::new()),
        }),
        _ => None,
    })
    .expect("an answer")
}

#[test]
fn submit_multi_routes_each_destination_and_lists_the_ones_that_failed() {
    let up = FakeUpstream::start(true);
    *up.state.refuse_prefix.lock().unwrap() = Some("441199".into());
    let gw = start(&up, "", ROUTES);
    let mut alice = bind(&gw, "alice", "a1", BindType::Transceiver);
    let mut bob = bind(&gw, "bob", "b2", BindType::Receiver);
    let sme = |a: &str| DestAddress::Sme(Address::new(1, 1, a));

    // To the link (accepted), to bob, to a distribution list (refused at once), to a module
    // the gateway does not serve (no route: accepted, ends undeliverable), and to the link
    // again (which refuses it after the answer: it ends undeliverable).
    let (st, id, failed) = submit_multi(
        &mut alice,
        &[
            sme("441100"),
            sme("442200"),
            DestAddress::DistributionList("friends".into()),
            sme("443300"),
            sme("44119900"),
        ],
        "to many",
        1,
    );
    assert_eq!(st, CommandStatus::ROK, "{}", gw.log());
    let id = id.expect("a message id");
    assert_eq!(id.len(), 20);
    assert_eq!(
        failed,
        vec![("friends".to_string(), CommandStatus::RINVDLNAME)]
    );
    // Bob gets his copy; alice the receipts of the three destinations that ended, all under
    // the submit_multi's id: DELIVRD (bob), 0x45 (no route), 0x40 (refused by the upstream).
    assert!(receipts(&mut alice, &mut bob, 3), "{}", gw.log());
    let Body::DeliverSm(d) = &bob.delivered[0].body else {
        panic!("{:?}", bob.delivered[0])
    };
    assert_eq!(d.dest.addr.as_bytes(), b"442200");
    assert_eq!(&d.short_message[..], b"to many");
    let mut ends: Vec<u8> = alice
        .delivered
        .iter()
        .map(|p| {
            assert!(
                sm_text(p).starts_with(&format!("id:{id} ")),
                "{}",
                sm_text(p)
            );
            p.tlvs.get(tlv::tag::NETWORK_ERROR_CODE).unwrap()[2]
        })
        .collect();
    ends.sort();
    assert_eq!(ends, vec![0x00, 0x40, 0x45]);
    // The upstream keeps only what it accepted.
    assert_eq!(up.received(), vec![b"to many".to_vec()]);
    assert!(gw.wait_log(
        "alice: submit_multi to distribution list \"friends\"",
        Duration::from_secs(3)
    ));

    // Every destination refused: their common error, or ESME_RSUBMITFAIL when they differ.
    std::thread::sleep(Duration::from_millis(1100));
    let (st, id, _) = submit_multi(&mut alice, &[sme("444400"), sme("444401")], "x", 0);
    assert_eq!((st, id), (CommandStatus::RINVDSTADR, None));
    let (st, _, _) = submit_multi(&mut alice, &[sme("444400"), sme("445600")], "x", 0);
    assert_eq!(st, CommandStatus::RSUBMITFAIL);
    assert_eq!(up.received().len(), 1);
}

#[test]
fn a_message_an_esme_keeps_failing_or_never_answers_ends_in_an_undeliverable_receipt() {
    let up = FakeUpstream::start(true);
    let gw = start(
        &up,
        "delivery_attempts=2\ndelivery_retry=100ms\nresponse_timeout=500ms",
        ROUTES,
    );
    let mut alice = bind(&gw, "alice", "a1", BindType::Transceiver);
    let mut bob = bind(&gw, "bob", "b2", BindType::Receiver);
    let send = |alice: &mut Esme, text: &str| -> String {
        let seq = alice.submit_sm(sm("15550001", "442200", text.as_bytes(), 1));
        let (st, id) = alice.response(seq).expect("an answer");
        assert_eq!(st, CommandStatus::ROK);
        id.expect("a message id")
    };

    // A temporary error on each of the two tries: UNDELIV, 0x61 (SME busy).
    bob.deliver_status = CommandStatus::RX_T_APPN;
    let id = send(&mut alice, "busy");
    assert!(receipts(&mut alice, &mut bob, 1), "{}", gw.log());
    assert_eq!(bob.delivered.len(), 2, "two tries");
    check_receipt(
        &alice.delivered[0],
        &id,
        MessageState::UNDELIVERABLE,
        0x61,
        "stat:UNDELIV err:097",
    );

    // Bob stops reading: no deliver_sm_resp within response_timeout, twice: UNDELIV, 0x62.
    let id = send(&mut alice, "silent");
    let t0 = Instant::now();
    while alice.delivered.len() < 2 && t0.elapsed() < Duration::from_secs(10) {
        alice.poll();
    }
    assert_eq!(alice.delivered.len(), 2, "{}", gw.log());
    check_receipt(
        &alice.delivered[1],
        &id,
        MessageState::UNDELIVERABLE,
        0x62,
        "stat:UNDELIV err:098",
    );
    assert!(t0.elapsed() >= Duration::from_millis(1000), "two timeouts");
    assert!(gw
        .log()
        .contains("(TP-Status 0x62, no response from the SME)"));
}

#[test]
fn a_submit_multi_costs_the_account_one_message_per_destination() {
    let up = FakeUpstream::start(true);
    let gw = start(&up, "", ROUTES);
    // carol may send 5 messages a second: a submit_multi to 5 ESME destinations takes them all.
    let mut carol = bind(&gw, "carol", "c3", BindType::Transmitter);
    let sme = |a: &str| DestAddress::Sme(Address::new(1, 1, a));
    let dests: Vec<DestAddress> = (0..5).map(|i| sme(&format!("44220{i}"))).collect();
    let (st, id, failed) = submit_multi(&mut carol, &dests, "five", 0);
    assert_eq!((st, failed.len()), (CommandStatus::ROK, 0), "{}", gw.log());
    assert!(id.is_some());
    let (st, _) = submit(&mut carol, "442200", "one more");
    assert_eq!(st, CommandStatus::RTHROTTLED);
    // A submit_multi to more destinations than a second's worth still passes on a full
    // bucket (it costs the whole bucket).
    std::thread::sleep(Duration::from_millis(1100));
    let many: Vec<DestAddress> = (0..20).map(|i| sme(&format!("4422{i:02}"))).collect();
    let (st, _, failed) = submit_multi(&mut carol, &many, "twenty", 0);
    assert_eq!((st, failed.len()), (CommandStatus::ROK, 0));
}
