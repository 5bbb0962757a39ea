//! CDRs: the legs of a message delivered with a receipt, one that fails over, one with no
//! route, one that expires, and an MO, read from the file the gateway writes and checked field
//! by field, joined by billid; logrotate's rename then SIGHUP loses no line; a CDR file that
//! cannot be written is said in the log and counted, never silent.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::{free_port, Gateway};
use common::upstream::FakeUpstream;
use smppgw::cdr::COLUMNS;
use smppgw::smpp::*;

const REGFILE: &str = "[demo]\npassword=demo\n\n[rx1]\npassword=rx1\n";

/// One CDR line, by column name.
#[derive(Debug, Clone)]
struct Line(HashMap<&'static str, String>);

impl Line {
    fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |s| s.as_str())
    }
}

fn read(path: &Path) -> Vec<Line> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), COLUMNS.len(), "a whole line: {l:?}");
            Line(
                COLUMNS
                    .iter()
                    .zip(cols)
                    .map(|(k, v)| (*k, v.to_string()))
                    .collect(),
            )
        })
        .collect()
}

/// The legs of `billid`, in the order they were written.
fn legs<'a>(lines: &'a [Line], billid: &str) -> Vec<&'a Line> {
    lines.iter().filter(|l| l.get("billid") == billid).collect()
}

fn leg_names(legs: &[&Line]) -> Vec<String> {
    legs.iter().map(|l| l.get("leg").to_string()).collect()
}

/// Waits until the file holds `n` lines for `billid` (the control shard writes every 50 ms).
fn wait_legs(path: &Path, billid: &str, n: usize, timeout: Duration) -> Vec<Line> {
    let t0 = Instant::now();
    loop {
        let lines = read(path);
        if legs(&lines, billid).len() >= n || t0.elapsed() > timeout {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn submit(e: &mut Esme, to: &str, text: &str, rd: u8, validity: &str) -> String {
    let mut m = sm("4477", to, text.as_bytes(), rd);
    m.validity_period = validity.into();
    let seq = e.submit_sm(m);
    let (st, id) = e.response(seq).unwrap();
    assert!(st.is_ok(), "{to}: {st:?}");
    id.unwrap()
}

#[test]
fn every_leg_of_delivered_failed_over_unrouted_expired_and_mo_messages_is_written() {
    let up = Gateway::sim(&["--shards", "1"]);
    let backup = Gateway::sim(&["--shards", "1"]);
    let mo = FakeUpstream::start(true);
    let down = free_port();
    let gw = Gateway::start_with(
        "",
        &format!(
            "[smpp-client]\nclients=up,backup,down,mo\n\n\
             [up]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nreconnect=100ms,500ms\n\n\
             [backup]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nreconnect=100ms,500ms\n\n\
             [down]\nserver=127.0.0.1\nport={down}\nsystem_id=gw\nsystem_password=pw\nreconnect=100ms,500ms\n\n\
             [mo]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nbind=transceiver\nreconnect=100ms,500ms\n\n\
             [cdr]\nfile=cdr/smppgw.cdr\n",
            up.plain.port(),
            backup.plain.port(),
            mo.port
        ),
        REGFILE,
        &[
            (
                "regexroute.conf",
                "[default]\n${module}^smppclient$=smppserver/demo\n^1=smppclient/up\n^2=smppclient/down\n^3=smppclient/nosuch\n^4=smppserver/rx1\n",
            ),
            ("yatesmsc.conf", "[general]\nbackup_smpp_gw=backup\nsmppgw_address=10.9.8.7:2775\n"),
        ],
    );
    gw.wait_bound(3);
    let path = gw.dir.join("cdr/smppgw.cdr");
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let peer = e_local(&gw);

    // Delivered, with a receipt.
    let a = submit(&mut e, "1111", "delivered", 1, "");
    // (The receipt's attempt ends when this ESME answers it: read it first.)
    assert!(
        e.wait_delivered(1, Duration::from_secs(10)),
        "the receipt reached the ESME"
    );
    let lines = wait_legs(&path, &a, 4, Duration::from_secs(10));
    let l = legs(&lines, &a);
    assert_eq!(
        leg_names(&l),
        ["submit", "attempt", "final", "receipt"],
        "{:?}",
        l.iter()
            .map(|x| (x.get("leg"), x.get("outcome")))
            .collect::<Vec<_>>()
    );
    let (s, at, fin, rc) = (l[0], l[1], l[2], l[3]);
    assert_eq!(
        (s.get("module"), s.get("direction"), s.get("system_id")),
        ("smppserver", "incoming", "demo")
    );
    assert_eq!((s.get("caller"), s.get("called")), ("4477", "1111"));
    assert_eq!(s.get("target"), "smppclient/up");
    assert_eq!(
        (s.get("msgid"), s.get("segments"), s.get("data_coding")),
        (a.as_str(), "1", "0")
    );
    assert_eq!(
        (s.get("status"), s.get("status_name")),
        ("0x00000000", "ESME_ROK")
    );
    assert_eq!(
        (s.get("address"), s.get("outcome")),
        (peer.as_str(), "accepted")
    );
    assert_eq!(
        (at.get("module"), at.get("direction"), at.get("system_id")),
        ("smppclient", "outgoing", "up")
    );
    assert_eq!(at.get("outcome"), "accepted");
    assert!(!at.get("upstream_id").is_empty());
    assert_eq!(at.get("address"), format!("127.0.0.1:{}", up.plain.port()));
    assert_eq!(fin.get("upstream_id"), at.get("upstream_id"));
    assert_eq!(
        (
            fin.get("message_state"),
            fin.get("tp_status"),
            fin.get("outcome")
        ),
        ("DELIVRD", "0x00", "delivered")
    );
    assert!(fin.get("latency").parse::<u64>().is_ok());
    assert_eq!(
        (rc.get("system_id"), rc.get("target")),
        ("demo", "smppserver/demo")
    );
    assert_ne!(rc.get("msgid"), a, "the receipt is a message of its own");
    // One line for the relayed receipt: its delivery to the ESME is in it (no attempt leg).
    assert_eq!(
        (
            rc.get("direction"),
            rc.get("outcome"),
            rc.get("status_name")
        ),
        ("outgoing", "delivered", "ESME_ROK")
    );
    assert!(rc.get("latency").parse::<u64>().is_ok());

    // The primary is down from the start: once to the backup.
    let b = submit(&mut e, "2222", "failed over", 0, "");
    let lines = wait_legs(&path, &b, 4, Duration::from_secs(10));
    let l = legs(&lines, &b);
    assert_eq!(
        leg_names(&l),
        ["submit", "attempt", "attempt", "final"],
        "{l:#?}"
    );
    assert_eq!(
        (
            l[1].get("system_id"),
            l[1].get("outcome"),
            l[1].get("backup")
        ),
        ("down", "unreachable", "no")
    );
    assert_eq!(
        (
            l[2].get("system_id"),
            l[2].get("outcome"),
            l[2].get("backup")
        ),
        ("backup", "accepted", "yes")
    );
    assert_eq!(
        (l[3].get("message_state"), l[3].get("backup")),
        ("ACCEPTD", "yes")
    );

    // No route (a link the configuration does not have): accepted, ended undeliverable.
    let c = submit(&mut e, "3333", "nowhere", 0, "");
    let lines = wait_legs(&path, &c, 2, Duration::from_secs(10));
    let l = legs(&lines, &c);
    assert_eq!(leg_names(&l), ["submit", "final"], "{l:#?}");
    assert_eq!(l[0].get("target"), "");
    assert_eq!(
        (
            l[1].get("message_state"),
            l[1].get("tp_status"),
            l[1].get("outcome")
        ),
        ("UNDELIV", "0x45", "undelivered")
    );
    // Where no peer address is known, smppgw_address stands in.
    assert_eq!(l[1].get("address"), "10.9.8.7:2775");

    // For an ESME that never binds, with a validity period of 2 s: expired.
    let d = submit(&mut e, "4444", "expires", 0, "000000000002000R");
    let lines = wait_legs(&path, &d, 3, Duration::from_secs(10));
    let l = legs(&lines, &d);
    assert_eq!(leg_names(&l), ["submit", "attempt", "final"], "{l:#?}");
    assert_eq!(
        (l[1].get("outcome"), l[1].get("target")),
        ("unreachable", "smppserver/rx1"),
        "tried once, then it waits for rx1 (no failover for an ESME's messages)"
    );
    assert_eq!(
        (
            l[2].get("message_state"),
            l[2].get("tp_status"),
            l[2].get("target")
        ),
        ("EXPIRED", "0x46", "smppserver/rx1")
    );
    assert!(l[2].get("latency").parse::<u64>().unwrap() >= 2000);

    // An MO from a link, delivered to demo.
    let before: usize = read(&path).iter().filter(|l| l.get("leg") == "mo").count();
    assert_eq!(before, 0);
    mo.send_mo("447700900123", "1234", b"an MO");
    assert!(
        e.wait_delivered(2, Duration::from_secs(10)),
        "the MO reached demo"
    );
    let t0 = Instant::now();
    let mo_line = loop {
        let lines = read(&path);
        if let Some(m) = lines.iter().find(|l| l.get("leg") == "mo") {
            let id = m.get("billid").to_string();
            if legs(&lines, &id).len() >= 3 || t0.elapsed() > Duration::from_secs(10) {
                break legs(&lines, &id).into_iter().cloned().collect::<Vec<_>>();
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no MO leg");
        std::thread::sleep(Duration::from_millis(50));
    };
    let l: Vec<&Line> = mo_line.iter().collect();
    assert_eq!(leg_names(&l), ["mo", "attempt", "final"], "{l:#?}");
    assert_eq!(
        (
            l[0].get("module"),
            l[0].get("system_id"),
            l[0].get("caller"),
            l[0].get("called")
        ),
        ("smppclient", "mo", "447700900123", "1234")
    );
    assert_eq!(l[0].get("target"), "smppserver/demo");
    assert_eq!(
        (l[1].get("system_id"), l[1].get("outcome")),
        ("demo", "delivered")
    );
    assert_eq!(l[2].get("message_state"), "DELIVRD");
}

/// The local address of the gateway's only ESME connection, as the CDR writes it.
fn e_local(gw: &Gateway) -> String {
    assert!(gw.wait_log("demo bound as transceiver from ", Duration::from_secs(5)));
    let log = gw.log();
    let at = log.find("demo bound as transceiver from ").expect("bound") + 31;
    log[at..].split(' ').next().unwrap().to_string()
}

#[test]
fn logrotate_rename_then_sighup_loses_no_line() {
    let gw = Gateway::start_with(
        "",
        "[cdr]\nfile=smppgw.cdr\n",
        REGFILE,
        &[("regexroute.conf", "[default]\n.*=smppserver/rx1\n")],
    );
    let path = gw.dir.join("smppgw.cdr");
    let rotated = gw.dir.join("smppgw.cdr.1");
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut ids = Vec::new();
    for i in 0..400 {
        if i == 200 {
            // As logrotate does: rename, then signal; lines in between go to the old file.
            std::fs::rename(&path, &rotated).unwrap();
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(gw.pid() as i32, libc::SIGHUP) };
        }
        ids.push(submit(&mut e, "3161", &format!("r{i}"), 0, ""));
    }
    let t0 = Instant::now();
    let (old, new) = loop {
        let (old, new) = (read(&rotated), read(&path));
        let submits = old.iter().chain(&new).filter(|l| l.get("leg") == "submit");
        if submits.count() >= 400 || t0.elapsed() > Duration::from_secs(10) {
            break (old, new);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        gw.wait_log("opened again", Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    assert!(
        !old.is_empty() && !new.is_empty(),
        "{} {}",
        old.len(),
        new.len()
    );
    let mut got: Vec<String> = old
        .iter()
        .chain(&new)
        .filter(|l| l.get("leg") == "submit")
        .map(|l| l.get("billid").to_string())
        .collect();
    got.sort();
    ids.sort();
    assert!(
        got == ids,
        "each submit's leg once, in one file or the other: {} of {}",
        got.len(),
        ids.len()
    );
    eprintln!(
        "{} lines before the rotation, {} after",
        old.len(),
        new.len()
    );
}

#[test]
fn a_cdr_writer_that_falls_behind_drops_nothing_silently() {
    // Test hooks: a queue of one batch, and a writer that stalls 1.5 s per round.
    let mut gw = Gateway::start_env(
        "",
        "[cdr]\nfile=cdr/smppgw.cdr\n",
        REGFILE,
        &[("regexroute.conf", "[default]\n.*=smppserver/rx1\n")],
        &[("SMPPGW_CDR_QUEUE", "1"), ("SMPPGW_CDR_STALL_MS", "1500")],
    );
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    for i in 0..300 {
        submit(&mut e, "3161", &format!("m{i}"), 0, "");
    }
    assert!(
        gw.wait_log(
            "CDR records dropped: the CDR writer fell behind",
            Duration::from_secs(10)
        ),
        "{}",
        gw.log()
    );
    drop(e);
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
    // Every leg (300 submits, and the first attempt at rx1 on each shard that has its
    // messages, which finds it not bound; nothing ends) is written or counted lost.
    let summary = log
        .lines()
        .find(|l| l.contains("CDRs: "))
        .unwrap_or_else(|| panic!("{log}"));
    let n: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (written, lost) = (n[n.len() - 2], n[n.len() - 1]);
    eprintln!("{summary}");
    assert!((301..=302).contains(&(written + lost)), "{summary}");
    assert!(lost > 0, "{summary}");
    let on_disk = read(&gw.dir.join("cdr/smppgw.cdr")).len() as u64;
    assert_eq!(on_disk, written);
}

#[test]
fn finals_a_crash_kept_from_the_cdr_file_are_written_after_the_restart_and_only_once() {
    // Test hook: the CDR writer stalls a minute before its first round, so nothing reaches
    // the file before the kill.
    let mut gw = Gateway::start_env(
        "",
        "[cdr]\nfile=cdr/smppgw.cdr\n",
        REGFILE,
        &[("regexroute.conf", "[default]\n.*=smppclient/nowhere\n")],
        &[("SMPPGW_CDR_STALL_MS", "60000")],
    );
    let path = gw.dir.join("cdr/smppgw.cdr");
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    // No such link: each message is logged, then ends undeliverable at once.
    let ids: Vec<String> = (0..40)
        .map(|i| submit(&mut e, "3161", &format!("m{i}"), 0, ""))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(read(&path).is_empty(), "the writer is stalled");
    drop(e);
    gw.kill();
    gw.restart();
    assert!(
        gw.wait_log(
            "messages ended after the CDR file's checkpoint; their final CDRs are written again",
            Duration::from_secs(5)
        ),
        "{}",
        gw.log()
    );
    for id in &ids {
        let l = wait_legs(&path, id, 1, Duration::from_secs(10));
        let finals: Vec<&Line> = legs(&l, id)
            .into_iter()
            .filter(|x| x.get("leg") == "final")
            .collect();
        assert_eq!(finals.len(), 1, "{id}:\n{}", gw.log());
        assert_eq!(finals[0].get("outcome"), "undelivered");
        assert_eq!(finals[0].get("system_id"), "demo");
        assert_eq!(
            (finals[0].get("message_state"), finals[0].get("tp_status")),
            ("UNDELIV", "0x45"),
            "as the live leg says it"
        );
    }
    // A clean stop and start, twice: nothing is written again.
    for _ in 0..2 {
        let (code, log) = gw.stop();
        assert_eq!(code, Some(0), "{log}");
        gw.restart();
    }
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
    let lines = read(&path);
    for id in &ids {
        let finals = legs(&lines, id)
            .iter()
            .filter(|x| x.get("leg") == "final")
            .count();
        assert_eq!(finals, 1, "{id} written once:\n{log}");
    }
    assert_eq!(lines.len(), ids.len(), "only the final legs came back");
}

#[test]
fn a_cdr_file_that_refuses_writes_loses_no_final() {
    // /dev/full: every write fails (ENOSPC). The lines are kept and tried again; the ends they
    // hold never count as written, so the next start, with a file that takes them, writes
    // every final again from the message log.
    let mut gw = Gateway::start_with(
        "",
        "[cdr]\nfile=/dev/full\n",
        REGFILE,
        &[("regexroute.conf", "[default]\n.*=smppclient/nowhere\n")],
    );
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let ids: Vec<String> = (0..30)
        .map(|i| submit(&mut e, "3161", &format!("f{i}"), 0, ""))
        .collect();
    assert!(
        gw.wait_log("CDR file: write failed", Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    drop(e);
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
    let ysmpp = std::fs::read_to_string(gw.dir.join("ysmpp.conf")).unwrap();
    std::fs::write(
        gw.dir.join("ysmpp.conf"),
        ysmpp.replace("file=/dev/full", "file=cdr/smppgw.cdr"),
    )
    .unwrap();
    gw.restart();
    let path = gw.dir.join("cdr/smppgw.cdr");
    for id in &ids {
        let l = wait_legs(&path, id, 1, Duration::from_secs(10));
        let finals = legs(&l, id)
            .iter()
            .filter(|x| x.get("leg") == "final")
            .count();
        assert_eq!(finals, 1, "{id}:\n{}", gw.log());
    }
}
