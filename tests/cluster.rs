//! Several gateway processes as one cluster over a real nats-server on 127.0.0.1, with the
//! Python `smpplib` ESME: an MO arriving on one node for an ESME bound only on another is
//! delivered there (also when it arrived before the ESME bound anywhere); a receipt for a
//! message submitted on one node reaches the originator's receiver bound on another, with
//! the id the first node gave; one node at a time binds a link (its lease), the others hand
//! it their messages, and when the lease holder dies another node takes the link.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    admin_get, admin_status, assert_receipts, bound_receiver, connected, link_node, receiver, Nats,
    Streamed, REGFILE,
};
use common::esme::{sm, Esme};
use common::gateway::{free_port, Gateway};
use common::upstream::FakeUpstream;
use common::WaitKill;
use smppgw::smpp::BindType;

/// Node c: it holds the link MO come over (to `up`), and routes them to `smppserver/demo`.
fn mo_node(nats: &Nats, up: &FakeUpstream) -> Gateway {
    link_node(
        nats,
        "c",
        up.port,
        "bind=transceiver\n",
        "",
        &[(
            "regexroute.conf",
            "[default]\n${module}^smppclient$=smppserver/demo\n",
        )],
    )
}

#[test]
fn an_mo_arriving_on_one_node_reaches_the_esme_bound_on_another() {
    let nats = Nats::start();
    let up = FakeUpstream::start(true);
    // Node c holds the link the MO comes over; node a holds the ESME's receiver.
    let c = mo_node(&nats, &up);
    let a = Gateway::start_with("", &nats.cluster("a"), REGFILE, &[]);
    connected(&c);
    connected(&a);
    c.wait_bound(1);
    // Before any node holds a receiver of demo: held on c.
    up.send_mo("447700900123", "1234", b"MO before any bind");
    let t0 = Instant::now();
    while up.mo_status().is_empty() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(up.mo_status(), vec![smppgw::smpp::CommandStatus::ROK]);
    let rx = bound_receiver(&a, 2, 20);
    up.send_mo("447700900124", "1234", b"MO after the bind on a");
    let out = rx.wait_with_output_or_kill(Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for text in ["MO before any bind", "MO after the bind on a"] {
        assert!(
            stdout.contains(&format!("\"text\": \"{text}\"")),
            "{text}: {stdout}\n--- c\n{}\n--- a\n{}",
            c.log(),
            a.log()
        );
    }
    // Node c never bound demo: the messages went to a over NATS.
    assert!(!c.log().contains("demo bound"), "{}", c.log());
    let status = admin_status(&c);
    assert!(status.contains("\"handoffs_out\":2"), "{status}");
    let status = admin_status(&a);
    assert!(status.contains("\"handoffs_in\":2"), "{status}");
    let metrics = admin_get(&c, "/metrics");
    assert!(
        metrics.contains("smppgw_cluster_handoffs_total{direction=\"out\",result=\"committed\"} 2"),
        "{metrics}"
    );
}

#[test]
fn messages_held_after_the_receiver_unbinds_on_one_node_go_to_it_on_another() {
    let nats = Nats::start();
    let up = FakeUpstream::start(true);
    let c = mo_node(&nats, &up);
    let a = Gateway::start_with("", &nats.cluster("a"), REGFILE, &[]);
    let b = Gateway::start_with("", &nats.cluster("b"), REGFILE, &[]);
    for gw in [&a, &b, &c] {
        connected(gw);
    }
    c.wait_bound(1);
    // Bound on a: one message reaches it there; then it unbinds.
    let rx = bound_receiver(&a, 1, 20);
    up.send_mo("447700900100", "1234", b"to a");
    let out = rx.wait_with_output_or_kill(Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"text\": \"to a\""),
        "{stdout}\n{}",
        c.log()
    );
    // Bound nowhere: held on c.
    let n = 20;
    for i in 0..n {
        // One at a time: the fake upstream's window is smaller than n.
        up.send_mo("447700900101", "1234", format!("held {i}").as_bytes());
        let t0 = Instant::now();
        while up.mo_status().len() < i + 2 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert_eq!(up.mo_status().len(), n + 1, "{}", c.log());
    // Bound on b: every held message goes there, none twice.
    let rx = receiver(b.plain.port(), n);
    let out = rx.wait_with_output_or_kill(Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for i in 0..n {
        assert_eq!(
            stdout.matches(&format!("\"text\": \"held {i}\"")).count(),
            1,
            "held {i}: {stdout}\n--- c\n{}\n--- b\n{}",
            c.log(),
            b.log()
        );
    }
    assert!(!stdout.contains("\"text\": \"to a\""), "{stdout}");
}

#[test]
fn a_receipt_reaches_the_originator_bound_on_another_node_with_the_id_it_was_given() {
    let nats = Nats::start();
    let sim = Gateway::sim(&["--shards", "1"]);
    // Node b forwards to the simulator and gets its receipts; the originator's receiver is on a.
    let b = link_node(
        &nats,
        "b",
        sim.plain.port(),
        "binds=1\n",
        "default_route=up",
        &[],
    );
    let a = Gateway::start_with("", &nats.cluster("a"), REGFILE, &[]);
    connected(&a);
    connected(&b);
    b.wait_bound(1);
    let rx = bound_receiver(&a, 3, 20);
    let mut tx = Esme::plain(b.plain);
    tx.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let seq = tx.submit_sm(sm("1234", &format!("4477009001{i:02}"), b"hello", 1));
        let (status, id) = tx.response(seq).expect("submit_sm_resp");
        assert!(status.is_ok(), "{status:?}");
        ids.push(id.unwrap());
    }
    let out = rx.wait_with_output_or_kill(Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_receipts(&stdout, &ids, &[("b", &b), ("a", &a)]);
    assert!(stdout.contains("stat:DELIVRD"), "{stdout}");
}

#[test]
fn a_node_whose_nats_is_down_still_serves_its_own_esmes() {
    // Nothing listens on this port: the node starts, says NATS is away, and serves.
    let port = free_port();
    let gw = Gateway::start_with(
        "",
        &format!("\n[cluster]\nnats=nats://127.0.0.1:{port}\nnode=alone\nname=test\n"),
        REGFILE,
        &[],
    );
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let seq = e.submit_sm(sm("1234", "447700900100", b"hello", 0));
    let (status, _) = e.response(seq).expect("submit_sm_resp");
    assert!(status.is_ok(), "{status:?}");
    let status = admin_status(&gw);
    assert!(status.contains("\"connected\":false"), "{status}");
    // (Every shard answers /health once it has started: on a loaded machine that can come
    // after the first bind.)
    let t0 = Instant::now();
    let mut health = admin_get(&gw, "/health");
    while !health.starts_with("HTTP/1.1 200") && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        health = admin_get(&gw, "/health");
    }
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("NATS not reachable"),
        "{health}"
    );
    assert!(status.contains("\"node\":\"alone\""), "{status}");
}

/// A node forwarding everything to link `up` (to `sim`).
fn sim_node(nats: &Nats, sim: &Gateway, node: &str) -> Gateway {
    link_node(
        nats,
        node,
        sim.plain.port(),
        "binds=1\n",
        "default_route=up",
        &[],
    )
}

fn wait_status(gw: &Gateway, needle: &str) {
    let t0 = Instant::now();
    loop {
        let s = admin_status(gw);
        if s.contains(needle) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{needle} not in {s}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Submits `n` messages asking for receipts on `tx`: their ids.
fn submit(tx: &mut Esme, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let seq = tx.submit_sm(sm("1234", &format!("44770090{i:04}"), tag.as_bytes(), 1));
            let (status, id) = tx.response(seq).expect("submit_sm_resp");
            assert!(status.is_ok(), "{status:?}");
            id.unwrap()
        })
        .collect()
}

#[test]
fn one_node_binds_a_link_the_others_hand_it_their_messages_and_another_takes_it_when_it_dies() {
    let nats = Nats::start();
    let sim = Gateway::sim(&["--shards", "1"]);
    // Every node has the link; c comes first and takes its lease.
    let mut c = sim_node(&nats, &sim, "c");
    assert!(
        c.wait_log("holds the lease on link up", Duration::from_secs(10)),
        "{}",
        c.log()
    );
    c.wait_bound(1);
    let a = sim_node(&nats, &sim, "a");
    let b = sim_node(&nats, &sim, "b");
    for gw in [&a, &b] {
        connected(gw);
        wait_status(gw, "\"up\":{\"owner\":\"c\",\"mine\":false}");
    }
    // The originator's receiver on a, its transmitter on b: b hands its messages to c (the
    // link's node), c hands their receipts to a.
    let rx = Streamed::start(a.plain.port(), 120);
    assert!(
        a.wait_log("demo bound as receiver", Duration::from_secs(10)),
        "{}",
        a.log()
    );
    let mut tx = Esme::plain(b.plain);
    tx.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let first = submit(&mut tx, 3, "through c");
    wait_status(&b, "\"handoffs_out\":3");
    assert_eq!(a.count_log("): bound"), 0, "{}", a.log());
    assert_eq!(b.count_log("): bound"), 0, "{}", b.log());
    // Their receipts reach a through c (what c holds when it dies waits for it to come back).
    rx.expect_ids(&first, &[("c", &c), ("a", &a)]);

    // c dies: a or b takes the link after the lease (2 s) runs out.
    c.kill();
    let t0 = Instant::now();
    let taker = loop {
        if let Some(gw) = [&a, &b]
            .into_iter()
            .find(|gw| gw.log().contains("holds the lease on link up"))
        {
            break gw;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "nobody took the link\n--- a\n{}\n--- b\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    taker.wait_bound(1);
    let after = submit(&mut tx, 3, "after c died");
    rx.expect_ids(&after, &[("b", &b), ("a", &a)]);
    // Only the taker binds the link now.
    let other = if std::ptr::eq(taker, &a) { &b } else { &a };
    assert_eq!(other.count_log("): bound"), 0, "{}", other.log());
}

#[test]
fn a_receipt_that_lands_on_another_node_is_asked_about_and_taken_by_the_node_with_its_message() {
    // No JetStream: no leases, both nodes bind the link, and the upstream sends the receipts
    // on b's bind although a forwarded the messages.
    let nats = Nats::start_with(false);
    let up = FakeUpstream::start(true);
    let node = |name: &str| {
        link_node(
            &nats,
            name,
            up.port,
            "bind=transceiver\nbinds=1\n",
            "default_route=up",
            &[],
        )
    };
    let a = node("a");
    connected(&a);
    a.wait_bound(1);
    let b = node("b");
    connected(&b);
    b.wait_bound(1);
    assert!(
        b.wait_log("no JetStream bucket", Duration::from_secs(10)),
        "{}",
        b.log()
    );
    *up.state.receipt_conn.lock().unwrap() = Some(2);
    let rx = bound_receiver(&a, 5, 20);
    let mut tx = Esme::plain(a.plain);
    tx.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let ids = submit(&mut tx, 5, "asked about");
    up.wait_received(5, Duration::from_secs(10));
    for n in 1..=5 {
        up.send_receipt_for(&format!("F{n:08}"));
    }
    let out = rx.wait_with_output_or_kill(Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_receipts(&stdout, &ids, &[("a", &a), ("b", &b)]);
    assert!(
        up.receipt_status()
            .iter()
            .filter(|(_, s)| s.is_ok())
            .count()
            >= 5,
        "{:?}",
        up.receipt_status()
    );
    assert!(
        admin_status(&b).contains("\"receipts_taken_elsewhere\":5"),
        "{}",
        admin_status(&b)
    );
    assert!(
        admin_status(&a).contains("\"receipts_taken_here\":5"),
        "{}",
        admin_status(&a)
    );
}
