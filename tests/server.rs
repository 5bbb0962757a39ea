//! The gateway as a process: real TCP and TLS sockets, real configuration files, SIGTERM.
//! Each test starts its own `smppgw run` (two shards) on free ports.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::Gateway;
use common::hex;
use smppgw::smpp::tlv::tag;
use smppgw::smpp::*;

const REGFILE: &str = "[demo]\npassword=demo\n\n[limited]\npassword=lim\nmax_binds=1\nrate=5\n\n[fenced]\npassword=fen\nallowed_ips=10.0.0.0/8\n\n[shared]\npassword=sh\nrate=10\n";

fn connect(gw: &Gateway, tls: bool) -> Esme {
    if tls {
        Esme::tls(gw.tls, &gw.cert_pem)
    } else {
        Esme::plain(gw.plain)
    }
}

fn check_receipt(d: &Pdu, message_id: &str, to: &str) {
    let Body::DeliverSm(m) = &d.body else {
        panic!("{d:?}")
    };
    assert_eq!(m.esm_class, 0x04, "receipt esm_class");
    assert_eq!(
        m.dest.addr.as_str(),
        Some(to),
        "receipt goes back to the source"
    );
    assert_eq!(
        d.tlvs.get_cstr(tag::RECEIPTED_MESSAGE_ID),
        Some(message_id.as_bytes())
    );
    assert_eq!(d.tlvs.get_u8(tag::MESSAGE_STATE), Some(2));
    let r = Receipt::parse(&m.short_message).expect("receipt text");
    assert_eq!(r.id, message_id.as_bytes());
    assert_eq!(r.state(), Some(MessageState::DELIVERED));
}

fn enquire(e: &mut Esme) {
    let seq = e
        .session
        .send_request(Body::EnquireLink, Tlvs::new(), 999, Instant::now())
        .unwrap();
    let got = e.until(Duration::from_secs(5), |ev| match ev {
        Event::Response { pdu, .. } if pdu.sequence_number == seq => Some(pdu.command_id()),
        _ => None,
    });
    assert_eq!(got, Some(CommandId::ENQUIRE_LINK_RESP));
}

/// The shard a bind from this local port landed on, from the gateway's log.
fn shard_of(gw: &Gateway, e_port: u16) -> Option<usize> {
    let needle = format!("127.0.0.1:{e_port} (shard ");
    gw.wait_log(&needle, Duration::from_secs(5));
    let log = gw.log();
    let at = log.find(&needle)? + needle.len();
    log[at..].split(',').next()?.parse().ok()
}

#[test]
fn each_bind_type_over_plain_and_tls_submits_gets_receipts_enquires_and_unbinds() {
    let gw = Gateway::start("", REGFILE);
    for tls in [false, true] {
        // Transceiver: the receipt comes back on the same session.
        let mut trx = connect(&gw, tls);
        trx.bind(BindType::Transceiver, "demo", "demo")
            .expect("bind trx");
        let seq = trx.submit_sm(sm("4477", "3161", b"hello trx", 1));
        let (status, id) = trx.response(seq).expect("submit_sm_resp");
        assert_eq!(status, CommandStatus::ROK);
        let id = id.expect("message id");
        assert_eq!(id.len(), 20, "hex gateway id: {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(
            trx.wait_delivered(1, Duration::from_secs(5)),
            "receipt on the transceiver"
        );
        check_receipt(&trx.delivered[0], &id, "4477");
        enquire(&mut trx);
        assert!(trx.unbind(), "unbind_resp");

        // Receiver and transmitter: the receipt goes to the receiver.
        let mut rx = connect(&gw, tls);
        rx.bind(BindType::Receiver, "demo", "demo")
            .expect("bind rx");
        let mut tx = connect(&gw, tls);
        tx.bind(BindType::Transmitter, "demo", "demo")
            .expect("bind tx");
        let seq = tx.submit_sm(sm("4478", "3162", b"hello rx", 1));
        let (status, id) = tx.response(seq).unwrap();
        assert_eq!(status, CommandStatus::ROK);
        assert!(
            rx.wait_delivered(1, Duration::from_secs(5)),
            "receipt on the receiver"
        );
        check_receipt(&rx.delivered[0], &id.unwrap(), "4478");
        // No receipt asked: none comes.
        let seq = tx.submit_sm(sm("4478", "3162", b"quiet", 0));
        assert_eq!(tx.response(seq).unwrap().0, CommandStatus::ROK);
        enquire(&mut rx);
        enquire(&mut tx);
        assert!(!rx.wait_delivered(2, Duration::from_millis(300)));
        assert!(tx.unbind() && rx.unbind());
    }
}

#[test]
fn new_connections_spread_evenly_over_the_shards() {
    let gw = Gateway::start("", REGFILE);
    let mut shards = [0usize; 2];
    let mut esmes = Vec::new();
    // One after the other, as an ESME opens its binds: the kernel's SO_REUSEPORT hash alone
    // puts them on any shard; the gateway hands each to the shard that serves the fewest.
    // After each, the two differ by one at most (by the hash alone, 16 connections in a row
    // would stay that even about once in 250 runs).
    for _ in 0..16 {
        let s = TcpStream::connect(gw.plain).unwrap();
        let p = s.local_addr().unwrap().port();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut e = Esme::over(Box::new(s), common::esme::config());
        e.bind(BindType::Transceiver, "demo", "demo").unwrap();
        shards[shard_of(&gw, p).expect("its shard in the log")] += 1;
        assert!(
            shards[0].abs_diff(shards[1]) <= 1,
            "{shards:?}\n{}",
            gw.log()
        );
        esmes.push(e);
    }
    assert_eq!(shards, [8, 8]);
    // And they work where they landed.
    for e in &mut esmes {
        let seq = e.submit_sm(sm("4477", "3161", b"spread", 0));
        assert_eq!(e.response(seq).unwrap().0, CommandStatus::ROK);
    }
}

#[test]
fn receipts_reach_a_receiver_bound_on_another_shard() {
    let gw = Gateway::start("", REGFILE);
    let port = |s: &TcpStream| s.local_addr().unwrap().port();
    // Bind a transmitter, then receivers until one lands on the other shard.
    let tx_sock = TcpStream::connect(gw.plain).unwrap();
    let tx_port = port(&tx_sock);
    tx_sock
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut tx = Esme::over(Box::new(tx_sock), common::esme::config());
    tx.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let tx_shard = shard_of(&gw, tx_port).expect("tx shard in log");
    let mut rx = None;
    for _ in 0..40 {
        let s = TcpStream::connect(gw.plain).unwrap();
        let p = port(&s);
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut e = Esme::over(Box::new(s), common::esme::config());
        e.bind(BindType::Receiver, "demo", "demo").unwrap();
        if shard_of(&gw, p) != Some(tx_shard) {
            rx = Some(e);
            break;
        }
        assert!(e.unbind());
    }
    let mut rx = rx.expect("a receiver on the other shard within 40 binds");
    for i in 0..10 {
        let seq = tx.submit_sm(sm("4477", "3161", format!("cross {i}").as_bytes(), 1));
        assert_eq!(tx.response(seq).unwrap().0, CommandStatus::ROK);
    }
    assert!(
        rx.wait_delivered(10, Duration::from_secs(5)),
        "got {}",
        rx.delivered.len()
    );
}

#[test]
fn wrong_password_and_unknown_system_id_are_refused_then_closed() {
    let gw = Gateway::start("", REGFILE);
    let mut e = Esme::plain(gw.plain);
    assert_eq!(
        e.bind(BindType::Transceiver, "demo", "nope"),
        Err(CloseReason::BindRejected(CommandStatus::RINVPASWD))
    );
    let mut e = Esme::plain(gw.plain);
    assert_eq!(
        e.bind(BindType::Transmitter, "nobody", "x"),
        Err(CloseReason::BindRejected(CommandStatus::RINVSYSID))
    );
    // The gateway closes after the refusal.
    let t0 = Instant::now();
    while !e.eof && t0.elapsed() < Duration::from_secs(5) {
        e.poll();
    }
    assert!(e.eof, "connection closed after bind refusal");
    assert!(
        gw.wait_log(
            "refused: wrong password (ESME_RINVPASWD)",
            Duration::from_secs(2)
        ),
        "{}",
        gw.log()
    );
}

#[test]
fn account_limits_max_binds_rate_and_allowed_ips() {
    let gw = Gateway::start("", REGFILE);
    let mut first = Esme::plain(gw.plain);
    first.bind(BindType::Transceiver, "limited", "lim").unwrap();
    let mut second = Esme::plain(gw.plain);
    assert_eq!(
        second.bind(BindType::Transceiver, "limited", "lim"),
        Err(CloseReason::BindRejected(CommandStatus::RBINDFAIL))
    );
    // rate=5: a burst of 5, then throttled.
    let seqs: Vec<u32> = (0..12)
        .map(|i| first.submit_sm(sm("1", "2", format!("{i}").as_bytes(), 0)))
        .collect();
    let statuses: Vec<CommandStatus> = seqs.iter().map(|s| first.response(*s).unwrap().0).collect();
    let ok = statuses.iter().filter(|s| s.is_ok()).count();
    assert!((5..=6).contains(&ok), "{statuses:?}");
    assert!(statuses.contains(&CommandStatus::RTHROTTLED));
    let mut fenced = Esme::plain(gw.plain);
    assert_eq!(
        fenced.bind(BindType::Transmitter, "fenced", "fen"),
        Err(CloseReason::BindRejected(CommandStatus::RBINDFAIL))
    );
    assert!(
        gw.wait_log("address not in allowed_ips", Duration::from_secs(5)),
        "{}",
        gw.log()
    );
}

#[test]
fn an_account_rate_holds_across_binds_on_both_shards() {
    let gw = Gateway::start("", REGFILE);
    // Two binds, one per shard (connections spread): each shard takes from its own share
    // (5/s each), and together they get the account's 10/s, not 10/s each.
    let mut esmes: Vec<(Esme, usize)> = (0..2)
        .map(|_| {
            let s = TcpStream::connect(gw.plain).unwrap();
            let p = s.local_addr().unwrap().port();
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let mut e = Esme::over(Box::new(s), common::esme::config());
            e.bind(BindType::Transmitter, "shared", "sh").unwrap();
            let shard = shard_of(&gw, p).expect("its shard");
            (e, shard)
        })
        .collect();
    assert_ne!(esmes[0].1, esmes[1].1, "one bind per shard\n{}", gw.log());
    let mut ok = [0usize; 2];
    for (i, (e, _)) in esmes.iter_mut().enumerate() {
        let seqs: Vec<u32> = (0..15)
            .map(|k| e.submit_sm(sm("1", "2", format!("{k}").as_bytes(), 0)))
            .collect();
        ok[i] = seqs
            .iter()
            .filter(|s| e.response(**s).unwrap().0.is_ok())
            .count();
    }
    assert!(
        (4..=6).contains(&ok[0]) && (4..=6).contains(&ok[1]),
        "each bind gets its shard's half of the burst: {ok:?}"
    );
    // One goes: the other's shard takes the whole rate.
    let (mut gone, _) = esmes.remove(0);
    assert!(gone.unbind());
    drop(gone);
    std::thread::sleep(Duration::from_millis(1200));
    let (e, _) = &mut esmes[0];
    let seqs: Vec<u32> = (0..15)
        .map(|k| e.submit_sm(sm("1", "2", format!("x{k}").as_bytes(), 0)))
        .collect();
    let alone = seqs
        .iter()
        .filter(|s| e.response(**s).unwrap().0.is_ok())
        .count();
    assert!(
        (9..=11).contains(&alone),
        "the whole rate for the one left: {alone}"
    );
}

#[test]
fn submit_before_bind_gets_rinvbndsts() {
    let gw = Gateway::start("", REGFILE);
    let mut s = TcpStream::connect(gw.plain).unwrap();
    s.write_all(&common::fixture("submit_sm", "160 GSM"))
        .unwrap();
    let reply = read_pdu(&mut s).expect("a response");
    assert_eq!(reply.body, Body::SubmitSmResp(None));
    assert_eq!(reply.command_status, CommandStatus::RINVBNDSTS);
    assert_eq!(reply.sequence_number, 10);
}

fn read_pdu(s: &mut TcpStream) -> Option<Pdu> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = bytes::BytesMut::new();
    let framer = Framer::default();
    loop {
        if let Ok(Some(f)) = framer.next_frame(&mut buf) {
            return Pdu::decode(&f).ok();
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads until the peer closes (true) or the time is up (false).
fn closed_within(s: &mut TcpStream, d: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t0 = Instant::now();
    let mut chunk = [0u8; 4096];
    while t0.elapsed() < d {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn garbage_and_bad_command_lengths_get_generic_nack_rinvcmdlen_and_close() {
    let gw = Gateway::start("", REGFILE);
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (
            "length 0",
            hex("00000000 00000015 00000000 00000001").to_vec(),
        ),
        (
            "length 15",
            hex("0000000F 00000015 00000000 00000002").to_vec(),
        ),
        (
            "length 2^31",
            hex("80000000 00000004 00000000 00000003").to_vec(),
        ),
    ];
    for (name, bytes) in inputs {
        let mut s = TcpStream::connect(gw.plain).unwrap();
        s.write_all(&bytes).unwrap();
        let reply = read_pdu(&mut s).unwrap_or_else(|| panic!("{name}: no reply"));
        assert_eq!(reply.body, Body::GenericNack, "{name}");
        assert_eq!(reply.command_status, CommandStatus::RINVCMDLEN, "{name}");
        assert!(
            closed_within(&mut s, Duration::from_secs(3)),
            "{name}: not closed"
        );
    }
}

#[test]
fn a_half_sent_pdu_is_closed_by_the_session_init_and_inactivity_timers() {
    let gw = Gateway::start(
        "session_init_timeout=1s\ninactivity_timeout=1s\nresponse_timeout=1s",
        REGFILE,
    );
    // Unbound: half a bind, never completed.
    let mut s = TcpStream::connect(gw.plain).unwrap();
    let bind = hex("0000001F 00000009 00000000 00000001 64656D6F00 64656D6F00 00 34 0000 00");
    s.write_all(&bind[..10]).unwrap();
    let t0 = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(5)),
        "session-init timer closes it"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "not before the timer: {:?}",
        t0.elapsed()
    );

    // Bound, then half a submit_sm: inactivity unbinds, and the unanswered unbind closes.
    let mut s = TcpStream::connect(gw.plain).unwrap();
    s.write_all(&bind).unwrap();
    let resp = read_pdu(&mut s).unwrap();
    assert_eq!(resp.command_status, CommandStatus::ROK);
    let submit = common::fixture("submit_sm", "160 GSM");
    s.write_all(&submit[..40]).unwrap();
    let unbind = read_pdu(&mut s).expect("the gateway unbinds an inactive session");
    assert_eq!(unbind.body, Body::Unbind);
    assert!(closed_within(&mut s, Duration::from_secs(5)));
}

#[test]
fn a_client_that_never_reads_is_cut_off_with_bounded_memory() {
    let gw = Gateway::start(
        "response_timeout=2s\nwindow=10\nenquire_link_interval=1s\nenquire_link_timeout=1s\nqueue_limit=20000",
        REGFILE,
    );
    let rss_before = gw.rss_kib();
    let mut s = TcpStream::connect(gw.plain).unwrap();
    s.write_all(&hex(
        "0000001F 00000009 00000000 00000001 64656D6F00 64656D6F00 00 34 0000 00",
    ))
    .unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    // Submits asking for receipts, as fast as the socket takes them, never reading.
    let pdu = {
        let mut p = Pdu::new(2, Body::SubmitSm(sm("4477", "3161", &[b'x'; 160], 1)));
        p.sequence_number = 2;
        p.to_bytes()
    };
    let mut batch = Vec::new();
    for _ in 0..256 {
        batch.extend_from_slice(&pdu);
    }
    let t0 = Instant::now();
    let mut sent = 0usize;
    while t0.elapsed() < Duration::from_secs(20) {
        match s.write_all(&batch) {
            Ok(()) => sent += 256,
            Err(_) => break,
        }
    }
    // The gateway reads until its own writes stop moving, then cuts the peer off (its write
    // timeout, or its unanswered enquire_link), holding bounded memory meanwhile: responses
    // of one read at a time, and at most `queue_limit` receipts kept for the ESME (beyond
    // it, submits asking for receipts are answered ESME_RMSGQFUL).
    assert!(
        gw.wait_log("demo (transceiver) from", Duration::from_secs(15)),
        "the gateway gives up on the peer that never reads:\n{}",
        gw.log()
    );
    let log = gw.log();
    assert!(
        log.contains("write failed") || log.contains("EnquireLinkTimeout"),
        "{log}"
    );
    let rss_after = gw.rss_kib();
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory bounded: {rss_before} KiB -> {rss_after} KiB after {sent} submits"
    );
}

#[test]
fn a_thousand_concurrent_binds() {
    let _ = smppgw::net::sys::raise_nofile();
    let gw = Gateway::start("", REGFILE);
    let bind = hex("0000001F 00000009 00000000 00000001 64656D6F00 64656D6F00 00 34 0000 00");
    let mut socks: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(gw.plain).expect("connect");
            s.write_all(&bind).unwrap();
            s
        })
        .collect();
    let mut ok = 0;
    for s in socks.iter_mut() {
        if let Some(p) = read_pdu(s) {
            if p.command_status.is_ok()
                && p.body == Body::BindTransceiverResp(Some("smppgw".into()))
            {
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 1000);
    // All 1000 are still bound: one more enquire_link on the last one is answered.
    let last = socks.last_mut().unwrap();
    last.write_all(&hex("00000010 00000015 00000000 00000009"))
        .unwrap();
    let r = read_pdu(last).unwrap();
    assert_eq!(r.body, Body::EnquireLinkResp);
    drop(socks);
}

#[test]
fn sigterm_during_load_loses_no_acknowledged_response() {
    let mut gw = Gateway::start("", REGFILE);
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let mut acked = 0u64;
    let mut sent = 0u64;
    let t0 = Instant::now();
    let mut stopped = false;
    loop {
        while e.session.window_available() > 0 && !stopped {
            if e.session
                .send_request(
                    Body::SubmitSm(sm("1", "2", b"load", 0)),
                    Tlvs::new(),
                    sent,
                    Instant::now(),
                )
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        e.poll();
        while let Some(ev) = e.events.pop_front() {
            if let Event::Response { pdu, .. } = ev {
                if pdu.command_status.is_ok() {
                    acked += 1;
                }
            }
        }
        if !stopped && t0.elapsed() > Duration::from_millis(500) {
            // SIGTERM mid-load, from another thread so that this one keeps reading.
            let pid = gw.pid();
            std::thread::spawn(move || {
                // SAFETY: kill(2) on the child's pid.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            });
            stopped = true;
        }
        if e.eof || e.session.is_closed() || t0.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "clean exit:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("messages acknowledged"))
        .expect("summary line");
    let server_acked: u64 = line
        .split(" messages acknowledged")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(acked > 0);
    assert_eq!(
        server_acked, acked,
        "every acknowledgement the gateway counted reached the ESME: {line}"
    );
    assert!(
        matches!(e.session.state(), State::Closed(CloseReason::Unbound)),
        "the gateway unbound the session: {:?}",
        e.session.state()
    );
}

#[test]
fn tls_1_2_and_tls_1_3_clients_both_bind_and_submit() {
    let gw = Gateway::start("", REGFILE);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(gw.cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        let mut e = Esme::tls_with(gw.tls, std::sync::Arc::new(cfg));
        e.bind(BindType::Transceiver, "demo", "demo")
            .unwrap_or_else(|r| panic!("{version:?}: {r:?}"));
        let seq = e.submit_sm(sm("1", "2", b"tls", 0));
        assert_eq!(
            e.response(seq).unwrap().0,
            CommandStatus::ROK,
            "{version:?}"
        );
        assert!(e.unbind());
    }
}
