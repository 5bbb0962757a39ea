//! The message log keeps what the gateway acknowledged: `kill -9` under load and a restart
//! at once, messages held for an ESME that is not bound across a restart, receipts for
//! messages forwarded before a crash, and a disk that refuses writes.
//!
//! The upstream is `smppgw sim` recording every text it accepts; the counts are printed
//! (acknowledged, delivered, duplicates) so that a run shows them.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::{temp_dir, Gateway};
use common::upstream::FakeUpstream;
use smppgw::smpp::tlv::tag;
use smppgw::smpp::*;

const REGFILE: &str = "[demo]\npassword=demo\n\n[rx1]\npassword=rx1\n";

fn link(port: u16, extra: &str) -> String {
    format!(
        "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={port}\nsystem_id=gw\nsystem_password=pw\nbinds=2\nwindow=32\nreconnect=100ms,500ms\n{extra}\n"
    )
}

/// The texts a simulator's record file holds, with how often each came.
fn recorded(path: &Path) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in std::fs::read_to_string(path).unwrap_or_default().lines() {
        *m.entry(l.to_string()).or_default() += 1;
    }
    m
}

/// Waits until every text of `want` is in the record.
fn wait_recorded(path: &Path, want: &HashSet<String>, timeout: Duration) -> HashMap<String, usize> {
    let t0 = Instant::now();
    loop {
        let got = recorded(path);
        if want.iter().all(|t| got.contains_key(t)) || t0.elapsed() > timeout {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A simulator (receipts `receipt_delay` after the answer, accepted texts recorded) and a
/// gateway forwarding everything to it over 2 binds, bound: the record's path, both.
fn two_hop(tag: &str, receipt_delay: &str) -> (std::path::PathBuf, Gateway, Gateway) {
    let record = temp_dir(tag).join("received.txt");
    let sim = Gateway::sim(&[
        "--shards",
        "1",
        "--receipt-delay",
        receipt_delay,
        "--record",
        record.to_str().unwrap(),
    ]);
    // Small segments: the runs roll over several, each zeroed ahead while the one before
    // fills, and replay reads across them.
    let gw = Gateway::start_with(
        "default_route=up\nsegment_size=1M",
        &link(sim.plain.port(), ""),
        REGFILE,
        &[],
    );
    gw.wait_bound(2);
    (record, sim, gw)
}

/// The last `n` lines of a log.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The receipted ids of the receipts an ESME got.
fn receipted(e: &Esme) -> Vec<String> {
    e.delivered
        .iter()
        .filter_map(|p| p.tlvs.get_cstr(tag::RECEIPTED_MESSAGE_ID))
        .map(|id| String::from_utf8_lossy(id).into_owned())
        .collect()
}

#[test]
fn every_acknowledged_message_reaches_the_upstream_after_kill_9_under_load() {
    // Receipts come a while after the answer, so that some are still due at the crash.
    let (record, sim, mut gw) = two_hop("crash", "300ms");
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();

    // Submit flat out with a window of 64; kill the gateway after 3,000 answers.
    let mut acked: HashMap<String, String> = HashMap::new(); // text -> gateway id
    e.submit_until("crash", &mut 0, &mut acked, 3_000);
    gw.kill();
    let receipts_before: HashSet<String> = receipted(&e).into_iter().collect();
    drop(e);

    gw.restart();
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let want: HashSet<String> = acked.keys().cloned().collect();
    let got = wait_recorded(&record, &want, Duration::from_secs(30));
    let missing: Vec<&String> = want.iter().filter(|t| !got.contains_key(*t)).collect();
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    let unacked_delivered = got.keys().filter(|t| !want.contains(*t)).count();
    eprintln!(
        "kill -9 under load: {} acknowledged, {} of them at the upstream, {} missing, {} duplicates at the upstream, {} unacknowledged also delivered",
        want.len(),
        want.len() - missing.len(),
        missing.len(),
        duplicates,
        unacked_delivered
    );
    assert!(
        missing.is_empty(),
        "acknowledged and lost: {missing:?}\n{}",
        gw.log()
    );
    assert!(
        duplicates <= 2 * 32 + 64,
        "duplicates only for what was in flight at the crash: {duplicates}"
    );

    // Every acknowledged message's receipt reaches the ESME, before or after the crash, with
    // the gateway's id.
    let ids: HashSet<String> = acked.values().cloned().collect();
    let t0 = Instant::now();
    let mut all: HashSet<String> = receipts_before.clone();
    while !ids.is_subset(&all) && t0.elapsed() < Duration::from_secs(30) {
        e.poll();
        all.extend(receipted(&e));
    }
    let lost: Vec<&String> = ids.difference(&all).collect();
    eprintln!(
        "receipts: {} before the crash, {} after, {} of {} acknowledged messages without one",
        receipts_before.len(),
        e.delivered.len(),
        lost.len(),
        ids.len()
    );
    assert!(
        lost.is_empty(),
        "{} receipts lost (the first: {:?})\n{}\n---- the upstream (smppgw sim), last lines ----\n{}",
        lost.len(),
        lost.iter().take(10).collect::<Vec<_>>(),
        gw.log(),
        tail(&sim.log(), 150)
    );
    assert!(
        gw.log().contains("messages from the spool resumed"),
        "{}",
        gw.log()
    );
}

#[test]
fn receipts_for_messages_forwarded_before_a_crash_reach_the_originator_after_the_restart() {
    let (record, _sim, mut gw) = two_hop("receipts", "3s");
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut ids = HashSet::new();
    let mut texts = HashSet::new();
    for i in 0..200 {
        let text = format!("receipt {i}");
        let seq = e.submit_sm(sm("4477", "3161", text.as_bytes(), 1));
        let (st, id) = e.response(seq).unwrap();
        assert!(st.is_ok());
        ids.insert(id.unwrap());
        texts.insert(text);
    }
    // All 200 forwarded (the upstream has them), none of their receipts back yet: crash.
    let got = wait_recorded(&record, &texts, Duration::from_secs(10));
    assert_eq!(got.len(), 200);
    gw.kill();
    gw.restart();
    let mut rx = Esme::plain(gw.plain);
    rx.bind(BindType::Receiver, "demo", "demo").unwrap();
    assert!(
        rx.wait_delivered(200, Duration::from_secs(20)),
        "{} of 200 receipts after the restart\n{}",
        rx.delivered.len(),
        gw.log()
    );
    let back: HashSet<String> = receipted(&rx).into_iter().collect();
    eprintln!(
        "receipts after kill -9: {} of 200, all under the gateway's ids: {}",
        back.len(),
        back == ids
    );
    assert_eq!(back, ids);
}

#[test]
fn messages_for_an_esme_that_is_not_bound_wait_on_disk_across_a_restart() {
    let mut gw = Gateway::start_with(
        "",
        "",
        REGFILE,
        &[("regexroute.conf", "[default]\n^99=smppserver/rx1\n")],
    );
    // From several connections, so that both shards hold some (SO_REUSEPORT spreads them).
    let mut esmes: Vec<Esme> = (0..6).map(|_| Esme::plain(gw.plain)).collect();
    for e in &mut esmes {
        e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    }
    for i in 0..500 {
        let e = &mut esmes[i % 6];
        let seq = e.submit_sm(sm(
            "4477",
            &format!("99{i:04}"),
            format!("held {i}").as_bytes(),
            0,
        ));
        assert!(e.response(seq).unwrap().0.is_ok());
    }
    drop(esmes);
    gw.kill();
    gw.restart();
    let resumed = |gw: &Gateway| {
        gw.log()
            .rsplit("---- restarted ----")
            .next()
            .unwrap_or("")
            .lines()
            .filter_map(|l| l.split("shard ").nth(1))
            .filter_map(|l| l.split(": ").nth(1))
            .filter_map(|l| l.strip_suffix(" wait for receipts)").map(|_| l))
            .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
            .sum::<usize>()
    };
    let t0 = Instant::now();
    while resumed(&gw) < 500 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(resumed(&gw), 500, "{}", gw.log());
    // Housekeeping runs (every second) on the segments the restart adopted, and the gateway
    // dies again: nothing it resumed may be lost with them.
    std::thread::sleep(Duration::from_millis(2500));
    gw.kill();
    gw.restart();
    let t0 = Instant::now();
    while resumed(&gw) < 500 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(resumed(&gw), 500, "{}", gw.log());
    let want: HashSet<Vec<u8>> = (0..500).map(|i| format!("held {i}").into_bytes()).collect();
    let rx = receive_held(&gw, &want);
    // Delivered and acknowledged: gone from the spool; a restart delivers nothing again.
    std::thread::sleep(Duration::from_millis(500));
    drop(rx);
    gw.restart();
    let mut rx = Esme::plain(gw.plain);
    rx.bind(BindType::Receiver, "rx1", "rx1").unwrap();
    assert!(!rx.wait_delivered(1, Duration::from_secs(1)));
}

#[test]
fn a_disk_that_refuses_writes_refuses_new_submits_and_loses_nothing() {
    let record = temp_dir("full").join("received.txt");
    let sim = Gateway::sim(&["--shards", "1", "--record", record.to_str().unwrap()]);
    let gw = Gateway::start_with(
        "default_route=up\nsegment_size=1M",
        &link(sim.plain.port(), ""),
        REGFILE,
        &[],
    );
    gw.wait_bound(2);
    // Room for about one segment per shard, then no more.
    gw.set_fsize(Some(1 << 20));
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut acked = HashSet::new();
    let mut refused = 0usize;
    let mut refused_texts = HashSet::new();
    let text = |i: usize| format!("full {i:06} {}", "x".repeat(140));
    // A window of 16: the answers to messages logged but not yet committed when the writes
    // began to fail wait for the disk (they are answered, ROK, once it takes writes again).
    let mut pending: std::collections::HashMap<u32, String> = Default::default();
    let mut i = 0;
    let t0 = Instant::now();
    while refused < 20 {
        while pending.len() < 16 {
            let t = text(i);
            i += 1;
            pending.insert(e.submit_sm(sm("4477", "3161", t.as_bytes(), 0)), t);
        }
        e.poll();
        while let Some(ev) = e.events.pop_front() {
            if let Event::Response { pdu, .. } = ev {
                let Some(t) = pending.remove(&pdu.sequence_number) else {
                    continue;
                };
                match pdu.command_status {
                    CommandStatus::ROK => {
                        acked.insert(t);
                    }
                    st => {
                        assert!(
                            st == CommandStatus::RMSGQFUL || st == CommandStatus::RSYSERR,
                            "{st}"
                        );
                        refused += 1;
                        refused_texts.insert(t);
                    }
                }
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never refused\n{}",
            gw.log()
        );
    }
    // The refusals can reach the ESME before the logger has written its line.
    assert!(
        gw.wait_log("new messages are refused", Duration::from_secs(5)),
        "the log says why:\n{}",
        gw.log()
    );
    // Space returns: the gateway recovers by itself, and what it acknowledged arrives.
    gw.set_fsize(None);
    assert!(
        gw.wait_log("writes succeed again", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    // What waited for the disk is answered now.
    let t0 = Instant::now();
    while !pending.is_empty() && t0.elapsed() < Duration::from_secs(10) {
        e.poll();
        while let Some(ev) = e.events.pop_front() {
            if let Event::Response { pdu, .. } = ev {
                if let Some(t) = pending.remove(&pdu.sequence_number) {
                    if pdu.command_status.is_ok() {
                        acked.insert(t);
                    }
                }
            }
        }
    }
    let seq = e.submit_sm(sm("4477", "3161", b"after the disk came back", 0));
    assert_eq!(e.response(seq).unwrap().0, CommandStatus::ROK);
    acked.insert("after the disk came back".into());
    let got = wait_recorded(&record, &acked, Duration::from_secs(20));
    let missing = acked.iter().filter(|t| !got.contains_key(*t)).count();
    let refused_delivered = refused_texts
        .iter()
        .filter(|t| got.contains_key(*t))
        .count();
    eprintln!(
        "disk refusing writes: {} acknowledged, {refused} refused, {missing} missing, {refused_delivered} refused and delivered anyway",
        acked.len()
    );
    assert_eq!(missing, 0, "{}", gw.log());
    assert_eq!(refused_delivered, 0, "a refused message is never delivered");
}

/// Submits `n` messages to `99…` numbers (each text `"{prefix} {i}"`), each acknowledged.
fn submit_held(e: &mut Esme, prefix: &str, n: usize) -> HashSet<Vec<u8>> {
    let mut texts = HashSet::new();
    for i in 0..n {
        let text = format!("{prefix} {i}");
        let seq = e.submit_sm(sm("4477", &format!("99{i:04}"), text.as_bytes(), 0));
        assert!(e.response(seq).unwrap().0.is_ok());
        texts.insert(text.into_bytes());
    }
    texts
}

/// Binds rx1 as a receiver and waits for `want` (exactly those texts, each once).
fn receive_held(gw: &Gateway, want: &HashSet<Vec<u8>>) -> Esme {
    let mut rx = Esme::plain(gw.plain);
    rx.bind(BindType::Receiver, "rx1", "rx1").unwrap();
    assert!(
        rx.wait_delivered(want.len(), Duration::from_secs(30)),
        "{} of {}\n{}",
        rx.delivered.len(),
        want.len(),
        gw.log()
    );
    let got: Vec<Vec<u8>> = rx
        .delivered
        .iter()
        .map(|p| match &p.body {
            Body::DeliverSm(d) => d.short_message.to_vec(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got.len(), want.len(), "no duplicates");
    assert_eq!(&got.into_iter().collect::<HashSet<_>>(), want);
    rx
}

#[test]
fn beyond_memory_messages_waiting_messages_live_on_disk_and_all_are_delivered_also_after_kill_9() {
    // 100 bodies per shard in memory; 1,200 messages wait for rx1 on one shard.
    let mut gw = Gateway::start_with(
        "memory_messages=100",
        "",
        REGFILE,
        &[("regexroute.conf", "[default]\n^99=smppserver/rx1\n")],
    );
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let first = submit_held(&mut e, "first", 1200);
    let rx = receive_held(&gw, &first);
    drop(rx);
    // Again, and the gateway dies with them on disk: the restart keeps 100 bodies per shard
    // in memory and reads the rest back as they go.
    let second = submit_held(&mut e, "second", 1200);
    drop(e);
    gw.kill();
    gw.restart();
    assert!(
        gw.wait_log(
            "messages beyond memory_messages stay on disk",
            Duration::from_secs(5)
        ),
        "{}",
        gw.log()
    );
    let rx = receive_held(&gw, &second);
    drop(rx);
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("message bodies left memory for the log"))
        .unwrap_or_else(|| panic!("{log}"));
    eprintln!("{line}");
    assert!(
        !log.contains("unreadable") && !log.contains("cannot be read back"),
        "{log}"
    );
}

#[test]
fn beyond_memory_messages_receipts_are_still_relayed_for_messages_waiting_on_disk() {
    let record = temp_dir("mem-receipts").join("received.txt");
    let sim = Gateway::sim(&[
        "--shards",
        "1",
        "--receipt-delay",
        "2s",
        "--record",
        record.to_str().unwrap(),
    ]);
    let mut gw = Gateway::start_with(
        "default_route=up\nmemory_messages=100",
        &link(sim.plain.port(), ""),
        REGFILE,
        &[],
    );
    gw.wait_bound(2);
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let mut ids = HashSet::new();
    for i in 0..600 {
        let seq = e.submit_sm(sm("4477", "3161", format!("dlr {i}").as_bytes(), 1));
        let (st, id) = e.response(seq).unwrap();
        assert!(st.is_ok());
        ids.insert(id.unwrap());
    }
    assert!(
        e.wait_delivered(600, Duration::from_secs(30)),
        "{} of 600 receipts\n{}",
        e.delivered.len(),
        gw.log()
    );
    let back: HashSet<String> = receipted(&e).into_iter().collect();
    assert_eq!(back, ids);
    drop(e);
    let (_, log) = gw.stop();
    // Most waited for their receipts with their bodies on disk only (and none had to be read
    // back: an upstream's receipt is relayed as it came).
    let line = log
        .lines()
        .find(|l| l.contains("message bodies left memory for the log"))
        .unwrap_or_else(|| panic!("{log}"));
    eprintln!("{line}");
    let spilled: u64 = line
        .split("shard ")
        .nth(1)
        .and_then(|r| r.split(": ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(spilled >= 400, "{line}");
}

#[test]
fn a_receipt_that_comes_before_its_message_is_known_is_refused_for_now_then_matched() {
    // The upstream sends each receipt at once and its submit_sm_resp 3 s later: past the 2 s
    // the shards look for an owner. Refused for now (ESME_RX_T_APPN), then delivered again and
    // matched. A receipt for an id the gateway never had is refused until
    // unmatched_receipt_wait (1 s here) has passed, then answered ESME_ROK and dropped.
    let up = FakeUpstream::start(true);
    *up.state.receipt_first.lock().unwrap() = Some(Duration::from_secs(3));
    let gw = Gateway::start_with(
        "default_route=up\nunmatched_receipt_wait=1s",
        &link(up.port, ""),
        REGFILE,
        &[],
    );
    gw.wait_bound(2);
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let seq = e.submit_sm(sm("4477", "3161", b"early receipt", 1));
    let (st, id) = e.response(seq).unwrap();
    assert!(st.is_ok());
    assert!(
        e.wait_delivered(1, Duration::from_secs(15)),
        "no receipt: {:?}\n{}",
        up.receipt_status(),
        gw.log()
    );
    assert_eq!(receipted(&e), vec![id.unwrap()]);
    // The upstream hears its ESME_ROK about when the ESME gets the receipt: wait for it.
    let t0 = Instant::now();
    while up.receipt_status().last().map(|(_, s)| *s) != Some(CommandStatus::ROK)
        && t0.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let statuses: Vec<CommandStatus> = up.receipt_status().iter().map(|(_, s)| *s).collect();
    assert_eq!(
        statuses.first(),
        Some(&CommandStatus::RX_T_APPN),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&CommandStatus::ROK), "{statuses:?}");

    up.send_receipt_for("DEADBEEF");
    let t0 = Instant::now();
    let orphan = || -> Vec<CommandStatus> {
        up.receipt_status()
            .iter()
            .filter(|(id, _)| id == "DEADBEEF")
            .map(|(_, s)| *s)
            .collect()
    };
    while orphan().last() != Some(&CommandStatus::ROK) && t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = orphan();
    assert_eq!(got.first(), Some(&CommandStatus::RX_T_APPN), "{got:?}");
    assert_eq!(
        got.last(),
        Some(&CommandStatus::ROK),
        "{got:?}\n{}",
        gw.log()
    );
    assert!(
        gw.wait_log("answered and dropped", Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    e.poll();
    assert_eq!(e.delivered.len(), 1, "the dropped receipt reached nobody");
}

#[test]
fn deliveries_to_a_receiver_that_vanishes_right_after_binding_are_offered_again() {
    // 2,000 messages wait for rx1. Receivers bind and drop their socket at once, again and
    // again, while the gateway hands them deliveries: whatever it had handed to a connection
    // that closed must come back to the flow (not wait as in flight for ever). A last
    // receiver then gets every one.
    let gw = Gateway::start_with(
        "",
        "",
        REGFILE,
        &[("regexroute.conf", "[default]\n^99=smppserver/rx1\n")],
    );
    let mut tx = Esme::plain(gw.plain);
    tx.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut pending = Vec::new();
    for i in 0..2_000 {
        pending.push(tx.submit_sm(sm(
            "4477",
            &format!("99{i:04}"),
            format!("vanish {i}").as_bytes(),
            0,
        )));
        if pending.len() == 64 {
            for seq in pending.drain(..) {
                assert!(tx.response(seq).unwrap().0.is_ok());
            }
        }
    }
    for seq in pending.drain(..) {
        assert!(tx.response(seq).unwrap().0.is_ok());
    }
    for _ in 0..20 {
        // A raw bind_receiver: bound, it answers nothing and closes, with deliveries on
        // their way to it (and some read by the kernel, never answered).
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(gw.plain).unwrap();
        let body = b"rx1\0rx1\0\0\x34\0\0\0";
        let mut pdu = Vec::new();
        pdu.extend_from_slice(&((16 + body.len()) as u32).to_be_bytes());
        pdu.extend_from_slice(&1u32.to_be_bytes()); // bind_receiver
        pdu.extend_from_slice(&0u32.to_be_bytes());
        pdu.extend_from_slice(&1u32.to_be_bytes());
        pdu.extend_from_slice(body);
        s.write_all(&pdu).unwrap();
        let mut head = [0u8; 16];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head[4..12], &[0x80, 0, 0, 1, 0, 0, 0, 0], "bound");
        std::thread::sleep(Duration::from_millis(5));
        drop(s);
    }
    let mut rx = Esme::plain(gw.plain);
    rx.bind(BindType::Receiver, "rx1", "rx1").unwrap();
    let t0 = Instant::now();
    let mut texts: HashSet<Vec<u8>> = HashSet::new();
    while texts.len() < 2_000 && t0.elapsed() < Duration::from_secs(30) {
        rx.poll();
        texts.extend(rx.delivered.drain(..).filter_map(|p| match p.body {
            Body::DeliverSm(d) => Some(d.short_message.to_vec()),
            _ => None,
        }));
    }
    assert_eq!(texts.len(), 2_000, "{}", gw.log());
}
