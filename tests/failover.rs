//! Failover to `backup_smpp_gw` (yatesmsc.conf): the primary link down from the start,
//! killed mid-run, or answering only temporary errors; the backup's permanent errors trusted
//! (`smppgw_trusted=true`: final at once) or not (retried like temporary ones); and a
//! message that waits for a link that never comes, until its validity period ends.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::{free_port, temp_dir, Gateway};
use smppgw::smpp::tlv::tag;
use smppgw::smpp::*;

const REGFILE: &str = "[demo]\npassword=demo\n";

/// Two client links, `up` (primary) and `backup`.
fn links(primary: u16, backup: u16) -> String {
    format!(
        "[smpp-client]\nclients=up,backup\n\n\
         [up]\nserver=127.0.0.1\nport={primary}\nsystem_id=gw\nsystem_password=pw\nwindow=16\nreconnect=100ms,500ms\n\n\
         [backup]\nserver=127.0.0.1\nport={backup}\nsystem_id=gw\nsystem_password=pw\nwindow=16\nreconnect=100ms,500ms\n"
    )
}

fn gateway(primary: u16, backup: u16, yatesmsc: &str) -> Gateway {
    Gateway::start_with(
        "default_route=up",
        &links(primary, backup),
        REGFILE,
        &[("yatesmsc.conf", yatesmsc)],
    )
}

fn sim(record: &Path, extra: &[&str]) -> Gateway {
    let mut args = vec!["--shards", "1", "--record", record.to_str().unwrap()];
    args.extend_from_slice(extra);
    Gateway::sim(&args)
}

fn record(tag: &str) -> PathBuf {
    temp_dir(tag).join("received.txt")
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until the records together hold every text of `want`.
fn wait_all(paths: &[&Path], want: &HashSet<String>, timeout: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        let got: HashSet<String> = paths.iter().flat_map(|p| lines(p)).collect();
        if want.is_subset(&got) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Submits `n` messages (window 16); returns text -> gateway id of those answered ROK.
fn submit(e: &mut Esme, n: usize, prefix: &str, rd: u8) -> HashMap<String, String> {
    let mut acked = HashMap::new();
    let mut pending: HashMap<u32, String> = HashMap::new();
    let mut i = 0;
    let t0 = Instant::now();
    while acked.len() + pending.len() < n || !pending.is_empty() {
        while pending.len() < 16 && i < n {
            let text = format!("{prefix} {i}");
            i += 1;
            pending.insert(e.submit_sm(sm("4477", "3161", text.as_bytes(), rd)), text);
        }
        e.poll();
        while let Some(ev) = e.events.pop_front() {
            if let Event::Response { pdu, .. } = ev {
                if let Some(text) = pending.remove(&pdu.sequence_number) {
                    assert!(pdu.command_status.is_ok(), "{}", pdu.command_status);
                    if let Body::SubmitSmResp(Some(id)) = &pdu.body {
                        acked.insert(text, id.to_string());
                    }
                }
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(30));
    }
    acked
}

/// The receipts' (receipted id, network_error_code TP-Status).
fn receipts(e: &Esme) -> HashMap<String, u8> {
    e.delivered
        .iter()
        .map(|p| {
            let id = String::from_utf8_lossy(p.tlvs.get_cstr(tag::RECEIPTED_MESSAGE_ID).unwrap())
                .into_owned();
            (
                id,
                p.tlvs.get(tag::NETWORK_ERROR_CODE).map_or(0xFF, |v| v[2]),
            )
        })
        .collect()
}

#[test]
fn a_primary_down_from_the_start_sends_every_message_to_the_backup_once() {
    let b = record("backup");
    let backup = sim(&b, &[]);
    let gw = gateway(
        free_port(),
        backup.plain.port(),
        "[general]\nbackup_smpp_gw=backup\n",
    );
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let acked = submit(&mut e, 100, "down", 1);
    let want: HashSet<String> = acked.keys().cloned().collect();
    assert!(
        wait_all(&[&b], &want, Duration::from_secs(15)),
        "{}",
        gw.log()
    );
    assert_eq!(lines(&b).len(), 100, "each message once");
    // The backup's receipts come back under the gateway's ids.
    assert!(
        e.wait_delivered(100, Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    let r = receipts(&e);
    let ids: HashSet<String> = acked.values().cloned().collect();
    assert_eq!(r.keys().cloned().collect::<HashSet<_>>(), ids);
    assert!(r.values().all(|tp| *tp == 0));
    assert!(
        gw.log().contains("backup_smpp_gw smppclient/backup"),
        "{}",
        gw.log()
    );
}

#[test]
fn a_primary_killed_mid_run_loses_nothing_the_rest_goes_to_the_backup() {
    let (a, b) = (record("primary"), record("backup"));
    let mut primary = sim(&a, &[]);
    let backup = sim(&b, &[]);
    let gw = gateway(
        primary.plain.port(),
        backup.plain.port(),
        "[general]\nbackup_smpp_gw=smppclient/backup\n",
    );
    gw.wait_bound(2);
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut acked = submit(&mut e, 500, "before", 0);
    primary.kill();
    acked.extend(submit(&mut e, 500, "after", 0));
    let want: HashSet<String> = acked.keys().cloned().collect();
    assert!(
        wait_all(&[&a, &b], &want, Duration::from_secs(20)),
        "{}",
        gw.log()
    );
    let on_backup = lines(&b).len();
    eprintln!(
        "primary killed mid-run: {} acknowledged, {} at the primary, {on_backup} at the backup",
        want.len(),
        lines(&a).len()
    );
    assert!(on_backup >= 400, "the rest went to the backup: {on_backup}");
}

#[test]
fn a_primary_answering_only_temporary_errors_fails_over_after_its_retries() {
    let (a, b) = (record("primary"), record("backup"));
    let primary = sim(&a, &["--temp-errors", "100"]);
    let backup = sim(&b, &[]);
    let gw = gateway(
        primary.plain.port(),
        backup.plain.port(),
        "[general]\nbackup_smpp_gw=backup\nretries=2\nretry_interval=100ms,200ms\n",
    );
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let acked = submit(&mut e, 50, "busy", 0);
    let want: HashSet<String> = acked.keys().cloned().collect();
    assert!(
        wait_all(&[&b], &want, Duration::from_secs(20)),
        "{}",
        gw.log()
    );
    assert!(lines(&a).is_empty(), "the primary accepted nothing");
    assert_eq!(lines(&b).len(), 50);
}

/// Sends `n` messages asking for receipts while the primary is down and the backup refuses
/// everything for good; returns the receipts and the log.
fn refused_by_the_backup(trusted: bool) -> (HashMap<String, u8>, String) {
    let b = record("refusing");
    let backup = sim(&b, &["--perm-errors", "100"]);
    let gw = gateway(
        free_port(),
        backup.plain.port(),
        &format!(
            "[general]\nbackup_smpp_gw=backup\nsmppgw_trusted={trusted}\nretries=2\nretry_interval=100ms,100ms\n"
        ),
    );
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let acked = submit(&mut e, 5, "refused", 1);
    assert!(e.wait_delivered(5, Duration::from_secs(15)), "{}", gw.log());
    let r = receipts(&e);
    let ids: HashSet<String> = acked.values().cloned().collect();
    assert_eq!(r.keys().cloned().collect::<HashSet<_>>(), ids);
    (r, gw.log())
}

#[test]
fn the_backups_permanent_errors_are_final_when_trusted_and_retried_when_not() {
    // Trusted: the first refusal ends the message (UNDELIV, TP-Status 0x40).
    let (r, log) = refused_by_the_backup(true);
    assert!(r.values().all(|tp| *tp == 0x40), "{r:?}");
    assert!(
        log.contains("to smppclient/backup: UNDELIV (TP-Status 0x40"),
        "{log}"
    );
    assert!(!log.contains("3 failures on the backup"), "{log}");
    // Untrusted: retried like a temporary error, then ended with the same status.
    let (r, log) = refused_by_the_backup(false);
    assert!(r.values().all(|tp| *tp == 0x40), "{r:?}");
    assert!(
        log.contains("last status ESME_RSUBMITFAIL (0x45: submit_sm or submit_multi failed), 3 failures on the backup"),
        "{log}"
    );
}

#[test]
fn a_message_waiting_for_a_link_that_never_comes_expires_with_its_validity() {
    // No backup: messages wait for the link; this one may wait 2 seconds.
    let gw = Gateway::start_with(
        "default_route=up",
        &links(free_port(), free_port()),
        REGFILE,
        &[],
    );
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let mut m = sm("4477", "3161", b"short-lived", 1);
    m.validity_period = "000000000002000R".into();
    let t0 = Instant::now();
    let seq = e.submit_sm(m);
    let (st, id) = e.response(seq).unwrap();
    assert_eq!(st, CommandStatus::ROK, "waits instead of being refused");
    assert!(e.wait_delivered(1, Duration::from_secs(10)), "{}", gw.log());
    assert!(t0.elapsed() >= Duration::from_millis(1900));
    let p = &e.delivered[0];
    assert_eq!(
        p.tlvs.get_cstr(tag::RECEIPTED_MESSAGE_ID),
        Some(id.unwrap().as_bytes())
    );
    assert_eq!(p.tlvs.get_u8(tag::MESSAGE_STATE), Some(3), "EXPIRED");
    assert_eq!(p.tlvs.get(tag::NETWORK_ERROR_CODE), Some(&[3, 0, 0x46][..]));
}
