//! Upstream links: the gateway as an ESME of real and misbehaving SMSCs. An ESME submits to
//! the gateway, whose `default_route` forwards to the link; the upstream's receipts come back
//! to the ESME with the gateway's message ids.

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::{free_port, temp_dir, Gateway};
use common::upstream::FakeUpstream;
use smppgw::smpp::tlv::tag;
use smppgw::smpp::*;

const REGFILE: &str = "[demo]\npassword=demo\n";

fn client(port: u16, extra: &str) -> String {
    format!(
        "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={port}\nsystem_id=gw\nsystem_password=pw\nreconnect=100ms,1s\n{extra}\n"
    )
}

fn gateway(port: u16, extra: &str) -> Gateway {
    Gateway::start_with("default_route=up", &client(port, extra), REGFILE, &[])
}

fn esme(gw: &Gateway) -> Esme {
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").expect("bind");
    e
}

/// Submits `n` messages keeping at most `window` in flight; returns each one's status and
/// message id, in the order sent.
fn submit_many(
    e: &mut Esme,
    n: usize,
    window: usize,
    registered_delivery: u8,
) -> Vec<(CommandStatus, Option<String>)> {
    let mut results: Vec<Option<(CommandStatus, Option<String>)>> = vec![None; n];
    let (mut sent, mut done) = (0usize, 0usize);
    let t0 = Instant::now();
    while done < n {
        while sent < n && e.session.in_flight() < window {
            let text = format!("msg {sent}");
            e.session
                .send_request(
                    Body::SubmitSm(sm("4477", "3161", text.as_bytes(), registered_delivery)),
                    Tlvs::new(),
                    sent as u64,
                    Instant::now(),
                )
                .expect("send");
            sent += 1;
        }
        e.poll();
        while let Some(ev) = e.events.pop_front() {
            match ev {
                Event::Response { tag, pdu, .. } => {
                    let id = match &pdu.body {
                        Body::SubmitSmResp(Some(id)) => Some(id.to_string()),
                        _ => None,
                    };
                    results[tag as usize] = Some((pdu.command_status, id));
                    done += 1;
                }
                Event::RequestFailed { tag, .. } => {
                    results[tag as usize] = Some((CommandStatus::RUNKNOWNERR, None));
                    done += 1;
                }
                _ => {}
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{done} of {n} answered"
        );
    }
    results.into_iter().map(|r| r.unwrap()).collect()
}

/// The receipted ids of the receipts an ESME got.
fn receipt_ids(e: &Esme) -> HashSet<String> {
    e.delivered
        .iter()
        .map(|p| {
            let Body::DeliverSm(d) = &p.body else {
                panic!("{p:?}")
            };
            let id = String::from_utf8_lossy(
                p.tlvs
                    .get_cstr(tag::RECEIPTED_MESSAGE_ID)
                    .expect("receipted_message_id"),
            )
            .into_owned();
            let text = Receipt::parse(&d.short_message).expect("receipt text");
            assert_eq!(
                text.id,
                id.as_bytes(),
                "text and TLV carry the same gateway id"
            );
            id
        })
        .collect()
}

fn assert_all_accepted_with_receipts(
    e: &mut Esme,
    results: &[(CommandStatus, Option<String>)],
    what: &str,
) {
    let ids: HashSet<String> = results
        .iter()
        .map(|(st, id)| {
            assert_eq!(*st, CommandStatus::ROK, "{what}");
            id.clone().expect("gateway id")
        })
        .collect();
    assert_eq!(ids.len(), results.len(), "{what}: gateway ids are unique");
    assert!(
        e.wait_delivered(results.len(), Duration::from_secs(30)),
        "{what}: {} of {} receipts",
        e.delivered.len(),
        results.len()
    );
    assert_eq!(
        receipt_ids(e),
        ids,
        "{what}: every receipt names its gateway id"
    );
}

#[test]
fn ten_thousand_submits_through_the_simulator_with_receipts_in_each_msgid_format() {
    for (sim_ids, link_ids, n) in [
        ("hex", "hex", 10_000),
        ("decimal", "decimal", 2_000),
        ("hex/decimal", "hex/decimal", 2_000),
    ] {
        let sim = Gateway::sim(&["--shards", "1", "--msgid", sim_ids]);
        let gw = gateway(
            sim.plain.port(),
            &format!("binds=2\nwindow=50\nmsgid_format={link_ids}\n"),
        );
        gw.wait_bound(2);
        let mut e = esme(&gw);
        let results = submit_many(&mut e, n, 50, 1);
        assert_all_accepted_with_receipts(&mut e, &results, sim_ids);
    }
}

#[test]
fn each_link_bind_type() {
    // transmitter + receiver: submits on the transmitter, receipts on the receiver.
    let sim = Gateway::sim(&["--shards", "1"]);
    let gw = gateway(
        sim.plain.port(),
        "bind=transmitter+receiver\nmsgid_format=hex\n",
    );
    gw.wait_bound(2);
    assert!(
        sim.wait_log("gw bound as transmitter", Duration::from_secs(5))
            && sim.wait_log("gw bound as receiver", Duration::from_secs(5))
    );
    let mut e = esme(&gw);
    let results = submit_many(&mut e, 200, 20, 1);
    assert_all_accepted_with_receipts(&mut e, &results, "pair");

    // transmitter only: accepted, and no receipt can come back.
    let sim = Gateway::sim(&["--shards", "1"]);
    let gw = gateway(sim.plain.port(), "bind=transmitter\n");
    gw.wait_bound(1);
    let mut e = esme(&gw);
    assert!(submit_many(&mut e, 20, 10, 1)
        .iter()
        .all(|r| r.0 == CommandStatus::ROK));
    assert!(!e.wait_delivered(1, Duration::from_millis(500)));

    // receiver only: bound, but nothing can be sent: messages routed there have no route;
    // they are accepted and end undeliverable, with the receipt asked for (TP-Status 0x45).
    let sim = Gateway::sim(&["--shards", "1"]);
    let gw = gateway(sim.plain.port(), "bind=receiver\n");
    gw.wait_bound(1);
    assert!(sim.wait_log("gw bound as receiver", Duration::from_secs(5)));
    let mut e = esme(&gw);
    assert!(submit_many(&mut e, 5, 5, 1)
        .iter()
        .all(|r| r.0 == CommandStatus::ROK));
    assert!(e.wait_delivered(5, Duration::from_secs(5)));
    for p in &e.delivered {
        assert_eq!(p.tlvs.get(tag::NETWORK_ERROR_CODE), Some(&[3, 0, 0x45][..]));
    }
    assert!(
        gw.log().contains("binds as a receiver only"),
        "{}",
        gw.log()
    );
}

struct Peer(Child);
impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn start_peer(mut cmd: Command) -> Peer {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peer");
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 256];
    let t0 = Instant::now();
    let mut seen = String::new();
    while !seen.contains("listening") {
        use std::io::Read;
        let n = out.read(&mut buf).unwrap_or(0);
        assert!(
            n > 0 && t0.elapsed() < Duration::from_secs(20),
            "peer did not start: {seen}"
        );
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // Keep draining its output: a closed pipe would kill it at its next print.
    std::thread::spawn(move || {
        use std::io::Read;
        let mut sink = [0u8; 4096];
        while matches!(out.read(&mut sink), Ok(n) if n > 0) {}
    });
    Peer(child)
}

#[test]
fn ten_thousand_submits_through_the_npm_smpp_server() {
    let peers = common::peers();
    let port = free_port();
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", peers.node_dir.join("node_modules"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/node_server.js"
        ))
        .args([
            "--port",
            &port.to_string(),
            "--msgid",
            "decimal",
            "--receipts",
        ]);
    let _peer = start_peer(cmd);
    let gw = gateway(port, "binds=2\nwindow=50\nmsgid_format=decimal\n");
    gw.wait_bound(2);
    let mut e = esme(&gw);
    let results = submit_many(&mut e, 10_000, 50, 1);
    assert_all_accepted_with_receipts(&mut e, &results, "npm smpp");
}

#[test]
fn ten_thousand_submits_through_the_python_smpp34_server_answering_out_of_order() {
    let peers = common::peers();
    let port = free_port();
    let mut cmd = Command::new(&peers.python);
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/smpp34_server.py"
    ))
    .args(["--port", &port.to_string(), "--msgid", "hex", "--receipts"]);
    let _peer = start_peer(cmd);
    let gw = gateway(port, "binds=1\nwindow=50\nmsgid_format=hex\n");
    gw.wait_bound(1);
    let mut e = esme(&gw);
    let results = submit_many(&mut e, 10_000, 50, 1);
    assert_all_accepted_with_receipts(&mut e, &results, "smpp34");
}

#[test]
fn an_upstream_not_listening_is_retried_with_backoff_not_a_busy_loop() {
    let port = free_port();
    let gw = gateway(port, "reconnect=100ms,800ms\n");
    std::thread::sleep(Duration::from_secs(3));
    let attempts = gw.count_log("cannot connect to");
    // 100, 200, 400, 800, 800... ms with jitter (half to all of each): 4 to 14 in 3 s.
    assert!(
        (4..=14).contains(&attempts),
        "{attempts} attempts in 3 s:\n{}",
        gw.log()
    );
    let cpu = std::fs::read_to_string(format!("/proc/{}/stat", gw.pid())).unwrap();
    let f: Vec<&str> = cpu.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // A shard spinning would take 300 ticks in these 3 s (two: 600); starting (the spool, the
    // first segments zeroed ahead, a debug build) takes about 100 on this VM.
    assert!(ticks < 200, "{ticks} clock ticks of CPU while waiting");
    // Messages are accepted meanwhile and wait for the link; once the upstream listens,
    // they go.
    let mut e = esme(&gw);
    assert_eq!(submit_many(&mut e, 3, 3, 0)[0].0, CommandStatus::ROK);
    let record = temp_dir("record").join("received.txt");
    let _sim = Gateway::sim_on(
        port,
        &["--shards", "1", "--record", record.to_str().unwrap()],
    );
    assert_eq!(
        wait_lines(&record, 3, Duration::from_secs(15)),
        vec!["msg 0", "msg 1", "msg 2"],
        "held messages reach the upstream once it is there:\n{}",
        gw.log()
    );
}

/// The lines of a simulator's record file once it has `n` of them (or when `timeout` ends).
fn wait_lines(path: &std::path::Path, n: usize, timeout: Duration) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= n || t0.elapsed() > timeout {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_upstream_that_never_answers_bind_is_retried_one_attempt_at_a_time() {
    let up = FakeUpstream::start(false);
    let gw = gateway(up.port, "response_timeout=500ms\nreconnect=100ms,400ms\n");
    std::thread::sleep(Duration::from_secs(3));
    assert!(gw.count_log("SessionInitTimeout") >= 2, "{}", gw.log());
    let conns = up
        .state
        .connections
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=8).contains(&conns), "{conns} connections in 3 s");
    assert_eq!(
        up.state.max_open.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "never two bind attempts at once for one slot"
    );
}

#[test]
fn an_upstream_that_goes_silent_is_declared_dead_and_in_flight_messages_are_handed_back() {
    let up = FakeUpstream::start(true);
    let gw = gateway(
        up.port,
        "binds=1\nwindow=10\nenquire_link=500ms\nresponse_timeout=1500ms\n",
    );
    gw.wait_bound(1);
    let mut e = esme(&gw);
    assert!(submit_many(&mut e, 5, 5, 0)
        .iter()
        .all(|r| r.0 == CommandStatus::ROK));
    up.set_silent(true);
    // Five more go out and meet silence.
    let seqs: Vec<u32> = (5..10)
        .map(|i| e.submit_sm(sm("1", "2", format!("msg {i}").as_bytes(), 0)))
        .collect();
    assert!(
        gw.wait_log("handed back", Duration::from_secs(10)),
        "link declared dead:\n{}",
        gw.log()
    );
    up.set_silent(false);
    gw.wait_bound(2);
    for s in seqs {
        assert_eq!(
            e.response(s).unwrap().0,
            CommandStatus::ROK,
            "handed-back message delivered after the rebind"
        );
    }
    let got: HashSet<Vec<u8>> = up.received().into_iter().collect();
    for i in 0..10 {
        assert!(
            got.contains(format!("msg {i}").as_bytes()),
            "msg {i} reached the upstream"
        );
    }
}

#[test]
fn an_upstream_killed_and_restarted_is_rebound_once_per_slot() {
    let mut sim = Gateway::sim(&["--shards", "1"]);
    let port = sim.plain.port();
    let gw = gateway(port, "binds=2\n");
    gw.wait_bound(2);
    sim.kill();
    assert!(gw.wait_log("reconnecting in", Duration::from_secs(10)));
    let sim = Gateway::sim_on(port, &["--shards", "1"]);
    gw.wait_bound(4);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        sim.count_log("gw bound as transceiver"),
        2,
        "exactly one bind per slot:\n{}",
        sim.log()
    );
    let mut e = esme(&gw);
    assert!(submit_many(&mut e, 10, 10, 0)
        .iter()
        .all(|r| r.0 == CommandStatus::ROK));
}

#[test]
fn an_upstream_throttling_every_third_submit_loses_nothing_and_keeps_order() {
    let record = temp_dir("record").join("received.txt");
    let sim = Gateway::sim(&[
        "--shards",
        "1",
        "--throttle-every",
        "3",
        "--record",
        record.to_str().unwrap(),
    ]);
    let gw = gateway(sim.plain.port(), "binds=1\nwindow=1\n");
    gw.wait_bound(1);
    let mut e = esme(&gw);
    let results = submit_many(&mut e, 30, 30, 0);
    assert!(
        results.iter().all(|r| r.0 == CommandStatus::ROK),
        "{results:?}"
    );
    let lines = wait_lines(&record, 30, Duration::from_secs(15));
    let expected: Vec<String> = (0..30).map(|i| format!("msg {i}")).collect();
    assert_eq!(lines, expected, "each message once, in order");
    assert!(gw.count_log("upstream answered ESME_RTHROTTLED") >= 9);
}

#[test]
fn a_tls_upstream_with_a_test_ca_and_a_wrong_certificate_rejected() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let make_ca = || {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
    };
    let ca = make_ca();
    let other_ca = make_ca();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let dir = temp_dir("tls-up");
    let server_pem = dir.join("server.pem");
    std::fs::write(
        &server_pem,
        format!("{}{}", leaf.pem(), key.serialize_pem()),
    )
    .unwrap();
    let sim = Gateway::sim(&["--shards", "1", "--tls", server_pem.to_str().unwrap()]);
    let tls = "sslmode=true\nca_file=ca.pem\nsni=localhost\n";

    let good = Gateway::start_with(
        "default_route=up",
        &client(sim.plain.port(), tls),
        REGFILE,
        &[("ca.pem", &ca.pem())],
    );
    good.wait_bound(1);
    let mut e = esme(&good);
    assert_eq!(
        submit_many(&mut e, 3, 3, 0)
            .iter()
            .filter(|r| r.0.is_ok())
            .count(),
        3
    );

    let bad = Gateway::start_with(
        "default_route=up",
        &client(sim.plain.port(), tls),
        REGFILE,
        &[("ca.pem", &other_ca.pem())],
    );
    assert!(
        bad.wait_log("TLS handshake with", Duration::from_secs(10)),
        "{}",
        bad.log()
    );
    assert_eq!(
        bad.count_log("): bound"),
        0,
        "never bound to an unverified upstream"
    );
}

#[test]
fn an_upstream_calling_in_with_outbind_is_bound_as_receiver() {
    use std::io::Write;
    // The link's own slot points nowhere; the upstream calls in instead.
    let gw = gateway(free_port(), "bind=receiver\nreconnect=10s,10s\n");
    let mut s = std::net::TcpStream::connect(gw.plain).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    Pdu::new(
        1,
        Body::Outbind(Outbind {
            system_id: "gw".into(),
            password: "pw".into(),
        }),
    )
    .encode(&mut bytes::BytesMut::new());
    s.write_all(
        &Pdu::new(
            1,
            Body::Outbind(Outbind {
                system_id: "gw".into(),
                password: "pw".into(),
            }),
        )
        .to_bytes(),
    )
    .unwrap();
    let bind = read_pdu(&mut s).expect("the gateway binds");
    let Body::BindReceiver(b) = &bind.body else {
        panic!("{bind:?}")
    };
    assert_eq!(
        (b.system_id.as_str(), b.password.as_str()),
        (Some("gw"), Some("pw"))
    );
    s.write_all(
        &Pdu::response(
            bind.sequence_number,
            CommandStatus::ROK,
            Body::BindReceiverResp(Some("up".into())),
        )
        .to_bytes(),
    )
    .unwrap();
    assert!(
        gw.wait_log(
            "bound as receiver over the upstream's outbind",
            Duration::from_secs(5)
        ),
        "{}",
        gw.log()
    );

    // Wrong credentials: closed without a bind.
    let mut s = std::net::TcpStream::connect(gw.plain).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        &Pdu::new(
            1,
            Body::Outbind(Outbind {
                system_id: "gw".into(),
                password: "nope".into(),
            }),
        )
        .to_bytes(),
    )
    .unwrap();
    assert!(read_pdu(&mut s).is_none(), "closed");
}

fn read_pdu(s: &mut std::net::TcpStream) -> Option<Pdu> {
    use std::io::Read;
    let mut buf = bytes::BytesMut::new();
    loop {
        if let Ok(Some(f)) = Framer::default().next_frame(&mut buf) {
            return Pdu::decode(&f).ok();
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn links_unbind_cleanly_when_the_gateway_stops() {
    let sim = Gateway::sim(&["--shards", "1"]);
    let mut gw = gateway(sim.plain.port(), "binds=2\n");
    gw.wait_bound(2);
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
    let t0 = Instant::now();
    while sim.count_log("gw (transceiver) from") < 2 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        sim.count_log("disconnected: session closed (Unbound)"),
        2,
        "{}",
        sim.log()
    );
}

#[test]
fn an_account_with_receipts_per_message_gets_one_receipt_for_a_long_message() {
    let sim = Gateway::sim(&["--shards", "1"]);
    let gw = Gateway::start_with(
        "default_route=up",
        &client(sim.plain.port(), "binds=1\n"),
        "[demo]\npassword=demo\n\n[whole]\npassword=w\nreceipts=message\n",
        &[],
    );
    gw.wait_bound(1);
    let part = |seq: u8, text: &str| {
        let mut m = sm(
            "4477",
            "3161",
            &[&[5, 0, 3, 0x42, 3, seq][..], text.as_bytes()].concat(),
            1,
        );
        m.esm_class = 0x40;
        m
    };
    // Per part (the default): three receipts.
    let mut e = esme(&gw);
    for seq in 1..=3 {
        let s = e.submit_sm(part(seq, "part"));
        assert!(e.response(s).unwrap().0.is_ok());
    }
    assert!(e.wait_delivered(3, Duration::from_secs(5)));
    // receipts=message: one, for the last part.
    let mut w = Esme::plain(gw.plain);
    w.bind(BindType::Transceiver, "whole", "w").expect("bind");
    let mut last = None;
    for seq in 1..=3 {
        let s = w.submit_sm(part(seq, "part"));
        let (st, id) = w.response(s).unwrap();
        assert!(st.is_ok());
        last = id;
    }
    assert!(w.wait_delivered(1, Duration::from_secs(5)), "{}", gw.log());
    assert!(!w.wait_delivered(2, Duration::from_millis(700)));
    assert_eq!(
        w.delivered[0].tlvs.get_cstr(tag::RECEIPTED_MESSAGE_ID),
        last.as_deref().map(str::as_bytes)
    );
}
