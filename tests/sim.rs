//! `smppgw sim`: the SMSC simulator that later issues use as an upstream. Any system_id binds;
//! errors, throttling and receipt delay come from the command line.

mod common;

use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::Gateway;
use smppgw::smpp::*;

fn statuses(e: &mut Esme, n: usize) -> Vec<CommandStatus> {
    let seqs: Vec<u32> = (0..n)
        .map(|i| e.submit_sm(sm("1", "2", format!("m{i}").as_bytes(), 0)))
        .collect();
    seqs.iter()
        .map(|s| e.response(*s).expect("response").0)
        .collect()
}

#[test]
fn any_account_binds_and_errors_come_in_the_configured_shares() {
    let sim = Gateway::sim(&["--shards", "1", "--perm-errors", "100"]);
    let mut e = Esme::plain(sim.plain);
    e.bind(BindType::Transceiver, "anyone", "anything").unwrap();
    assert!(statuses(&mut e, 5)
        .iter()
        .all(|s| *s == CommandStatus::RSUBMITFAIL));

    let sim = Gateway::sim(&["--shards", "1", "--temp-errors", "100"]);
    let mut e = Esme::plain(sim.plain);
    e.bind(BindType::Transmitter, "upstream", "x").unwrap();
    assert!(statuses(&mut e, 5)
        .iter()
        .all(|s| *s == CommandStatus::RMSGQFUL));

    let sim = Gateway::sim(&["--shards", "1", "--temp-errors", "50"]);
    let mut e = Esme::plain(sim.plain);
    e.bind(BindType::Transmitter, "upstream", "x").unwrap();
    let st = statuses(&mut e, 400);
    let temp = st.iter().filter(|s| **s == CommandStatus::RMSGQFUL).count();
    assert!(
        (120..=280).contains(&temp),
        "about half temporary errors: {temp} of 400"
    );
}

#[test]
fn throttling_answers_rthrottled_beyond_the_rate() {
    let sim = Gateway::sim(&["--shards", "1", "--throttle", "10"]);
    let mut e = Esme::plain(sim.plain);
    e.bind(BindType::Transceiver, "a", "b").unwrap();
    let st = statuses(&mut e, 30);
    let ok = st.iter().filter(|s| s.is_ok()).count();
    assert!(
        (10..=11).contains(&ok),
        "a burst of one second's worth: {st:?}"
    );
    assert!(st.contains(&CommandStatus::RTHROTTLED));
}

#[test]
fn receipts_come_after_the_configured_delay() {
    let sim = Gateway::sim(&["--shards", "1", "--receipt-delay", "400ms"]);
    let mut e = Esme::plain(sim.plain);
    e.bind(BindType::Transceiver, "a", "b").unwrap();
    let t0 = Instant::now();
    let seq = e.submit_sm(sm("1", "2", b"late receipt", 1));
    let (status, id) = e.response(seq).unwrap();
    assert!(status.is_ok());
    assert!(e.wait_delivered(1, Duration::from_secs(5)));
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(380),
        "receipt after {waited:?}"
    );
    let Body::DeliverSm(d) = &e.delivered[0].body else {
        panic!()
    };
    assert_eq!(
        Receipt::parse(&d.short_message).unwrap().id,
        id.unwrap().as_bytes()
    );
}
