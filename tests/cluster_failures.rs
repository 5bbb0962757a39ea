//! A cluster through failures, over a real nats-server on 127.0.0.1 with the Python
//! `smpplib` ESME as the receiver: `kill -9` of the node that holds the link mid-traffic,
//! `kill -9` of the node the receiver is bound on, and a restart of nats-server mid-traffic. Every acknowledged message reaches the upstream
//! (`smppgw sim`, recording what it accepts) and every receipt reaches the receiver bound on
//! another node; duplicates are counted and printed. And a node without `[cluster]` never
//! connects to NATS.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cluster::{admin_status, connected, link_node, Nats, Streamed, REGFILE};
use common::esme::{sm, Esme};
use common::gateway::{temp_dir, Gateway};
use smppgw::smpp::*;

/// The simulator (receipts 300 ms after the answer, texts recorded): its record, itself.
fn simulator(tag: &str) -> (PathBuf, Gateway) {
    let record = temp_dir(tag).join("received.txt");
    let sim = Gateway::sim(&[
        "--shards",
        "1",
        "--receipt-delay",
        "300ms",
        "--record",
        record.to_str().unwrap(),
    ]);
    (record, sim)
}

/// Node a: the link to the simulator (2 binds); its messages go there.
fn sim_node(nats: &Nats, sim: &Gateway) -> Gateway {
    let a = link_node(
        nats,
        "a",
        sim.plain.port(),
        "binds=2\nwindow=32\n",
        "default_route=up\nsegment_size=1M",
        &[],
    );
    assert!(
        a.wait_log("holds the lease on link up", Duration::from_secs(10)),
        "{}",
        a.log()
    );
    a.wait_bound(2);
    a
}

/// Node b, with the originator's receiver (smpplib) bound on it.
fn receiver_node(nats: &Nats) -> (Gateway, Streamed) {
    let b = Gateway::start_with("", &nats.cluster("b"), REGFILE, &[]);
    connected(&b);
    let rx = Streamed::start(b.plain.port(), 120);
    assert!(
        b.wait_log("demo bound as receiver", Duration::from_secs(10)),
        "{}",
        b.log()
    );
    (b, rx)
}

/// The texts the simulator recorded, with how often each came.
fn recorded(path: &Path) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in std::fs::read_to_string(path).unwrap_or_default().lines() {
        *m.entry(l.to_string()).or_default() += 1;
    }
    m
}

/// Waits until every acknowledged message is at the upstream and its receipt at `rx` (or
/// among `before`, the ids an earlier receiver got); prints the counts and asserts that
/// nothing is lost and duplicates stay bounded.
fn everything_arrives(
    what: &str,
    record: &Path,
    acked: &HashMap<String, String>,
    rx: &Streamed,
    before: &[String],
) {
    let t0 = Instant::now();
    let mut got = recorded(record);
    while !acked.keys().all(|t| got.contains_key(t)) && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
        got = recorded(record);
    }
    let missing = acked.keys().filter(|t| !got.contains_key(*t)).count();
    let dup_upstream: usize = got.values().map(|n| n - 1).sum();
    let ids: HashSet<String> = acked.values().cloned().collect();
    let still: HashSet<String> = ids
        .iter()
        .filter(|id| !before.contains(id))
        .cloned()
        .collect();
    let mut receipts = before.to_vec();
    receipts.extend(rx.wait_ids(&still, Duration::from_secs(60)));
    let mut seen: HashMap<&String, usize> = HashMap::new();
    for id in &receipts {
        *seen.entry(id).or_default() += 1;
    }
    let lost = ids.iter().filter(|id| !seen.contains_key(id)).count();
    let dup_receipts: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "{what}: {} acknowledged, {} at the upstream ({missing} missing, {dup_upstream} duplicates), {} receipts on the other node ({lost} missing, {dup_receipts} duplicates)",
        acked.len(),
        acked.len() - missing,
        receipts.len(),
    );
    assert_eq!(missing, 0, "{what}: acknowledged and lost");
    assert_eq!(lost, 0, "{what}: receipts lost");
    assert!(
        dup_upstream + dup_receipts <= acked.len() / 2,
        "{what}: duplicates only for what was in flight: {dup_upstream} + {dup_receipts}"
    );
}

#[test]
fn kill_9_of_the_link_node_mid_traffic_loses_no_message_and_no_receipt() {
    let nats = Nats::start();
    let (record, _sim) = simulator("cluster-crash");
    let mut a = sim_node(&nats, &_sim);
    let (b, rx) = receiver_node(&nats);
    let mut e = Esme::plain(a.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut acked = HashMap::new();
    let mut next = 0;
    e.submit_until("crash", &mut next, &mut acked, 1_500);
    a.kill();
    drop(e);
    a.restart();
    assert!(
        a.wait_log_after(
            "---- restarted ----",
            "holds the lease on link up",
            Duration::from_secs(10)
        ),
        "{}",
        a.log()
    );
    everything_arrives("kill -9 of the link node", &record, &acked, &rx, &[]);
    let status = admin_status(&b);
    assert!(status.contains("\"handoffs_in\":"), "{status}");
}

#[test]
fn kill_9_of_the_receiver_node_mid_traffic_loses_no_receipt() {
    let nats = Nats::start();
    let (record, sim) = simulator("cluster-rx-crash");
    let a = sim_node(&nats, &sim);
    let (mut b, rx) = receiver_node(&nats);
    let mut e = Esme::plain(a.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut acked = HashMap::new();
    e.submit_until("rx crash", &mut 0, &mut acked, 1_500);
    // Some receipts reached the receiver on b, most are on their way (300 ms later): b dies.
    let t0 = Instant::now();
    while rx.receipt_ids().len() < 100 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    b.kill();
    let before = rx.receipt_ids();
    drop(rx);
    b.restart();
    assert!(
        b.wait_log_after(
            "---- restarted ----",
            "connected to NATS",
            Duration::from_secs(10)
        ),
        "{}",
        b.log()
    );
    let rx = Streamed::start(b.plain.port(), 120);
    everything_arrives(
        "kill -9 of the receiver node",
        &record,
        &acked,
        &rx,
        &before,
    );
    assert!(
        before.len() < acked.len(),
        "b died after all receipts: {}",
        before.len()
    );
}

#[test]
fn a_restart_of_nats_server_mid_traffic_loses_nothing_and_a_node_without_cluster_never_connects() {
    let mut nats = Nats::start();
    let (record, sim) = simulator("cluster-nats");
    let a = sim_node(&nats, &sim);
    let (b, rx) = receiver_node(&nats);
    // A node without [cluster]: it serves, and never connects to NATS.
    let alone = Gateway::start_with("", "", REGFILE, &[]);
    let mut e = Esme::plain(alone.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let seq = e.submit_sm(sm("1234", "447700900100", b"alone", 0));
    assert!(e.response(seq).expect("submit_sm_resp").0.is_ok());
    let clients = nats.clients();
    assert_eq!(clients.len(), 2, "only the two cluster nodes: {clients:?}");
    assert!(!alone.log().contains("NATS"), "{}", alone.log());

    let mut e = Esme::plain(a.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut acked = HashMap::new();
    let mut next = 0;
    e.submit_until("nats", &mut next, &mut acked, 500);
    nats.kill();
    assert!(
        a.wait_log("lost NATS", Duration::from_secs(10)),
        "{}",
        a.log()
    );
    // While NATS is away: accepted, forwarded, their receipts held on a.
    e.submit_until("nats", &mut next, &mut acked, 1_000);
    nats.restart();
    e.submit_until("nats", &mut next, &mut acked, 1_500);
    everything_arrives("nats-server restarted", &record, &acked, &rx, &[]);
    assert_eq!(a.count_log("lost the lease"), 0, "{}", a.log());
    drop(b);
}
