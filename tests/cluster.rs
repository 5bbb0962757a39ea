//! Several gateway processes as one cluster over a real nats-server on 127.0.0.1, with the
//! Python `smpplib` ESME: an MO arriving on one node for an ESME bound only on another is
//! delivered there (also when it arrived before the ESME bound anywhere), and a receipt for
//! a message submitted on one node reaches the originator's receiver bound on another, with
//! the id the first node gave.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::{free_port, Gateway};
use common::upstream::FakeUpstream;
use common::WaitKill;
use smppgw::smpp::BindType;

const REGFILE: &str = "[demo]\npassword=demo\n";

/// A nats-server on 127.0.0.1, stopped when dropped.
struct Nats {
    child: Child,
    port: u16,
}

impl Nats {
    fn start() -> Nats {
        let port = free_port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is not installed (.ci/run installs Debian's nats-server)");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nats { child, port }
    }

    fn cluster(&self, node: &str) -> String {
        format!(
            "\n[cluster]\nnats=nats://127.0.0.1:{}\nnode={node}\nname=test\nhandoff_timeout=1s\n",
            self.port
        )
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An smpplib receiver of `demo` on `port`, collecting `count` deliveries.
fn receiver(port: u16, count: usize) -> Child {
    Command::new(&common::peers().python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/smpplib_receiver.py"
        ))
        .args([
            "127.0.0.1",
            &port.to_string(),
            "demo",
            "demo",
            &count.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn connected(gw: &Gateway) {
    assert!(
        gw.wait_log("connected to NATS", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
}

/// Node c: it holds the link MO come over (to `up`), and routes them to `smppserver/demo`.
fn link_node(nats: &Nats, up: &FakeUpstream) -> Gateway {
    Gateway::start_with(
        "",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nbind=transceiver\nreconnect=100ms,500ms\n{}",
            up.port,
            nats.cluster("c")
        ),
        REGFILE,
        &[("regexroute.conf", "[default]\n${module}^smppclient$=smppserver/demo\n")],
    )
}

#[test]
fn an_mo_arriving_on_one_node_reaches_the_esme_bound_on_another() {
    let nats = Nats::start();
    let up = FakeUpstream::start(true);
    // Node c holds the link the MO comes over; node a holds the ESME's receiver.
    let c = link_node(&nats, &up);
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
    let rx = receiver(a.plain.port(), 2);
    assert!(
        a.wait_log("demo bound as receiver", Duration::from_secs(10)),
        "{}",
        a.log()
    );
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
    let c = link_node(&nats, &up);
    let a = Gateway::start_with("", &nats.cluster("a"), REGFILE, &[]);
    let b = Gateway::start_with("", &nats.cluster("b"), REGFILE, &[]);
    for gw in [&a, &b, &c] {
        connected(gw);
    }
    c.wait_bound(1);
    // Bound on a: one message reaches it there; then it unbinds.
    let rx = receiver(a.plain.port(), 1);
    assert!(
        a.wait_log("demo bound as receiver", Duration::from_secs(10)),
        "{}",
        a.log()
    );
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
    let b = Gateway::start_with(
        "default_route=up",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nbinds=1\nreconnect=100ms,500ms\n{}",
            sim.plain.port(),
            nats.cluster("b")
        ),
        REGFILE,
        &[],
    );
    let a = Gateway::start_with("", &nats.cluster("a"), REGFILE, &[]);
    connected(&a);
    connected(&b);
    b.wait_bound(1);
    let rx = receiver(a.plain.port(), 3);
    assert!(
        a.wait_log("demo bound as receiver", Duration::from_secs(10)),
        "{}",
        a.log()
    );
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
    for id in &ids {
        assert!(
            stdout.contains(&format!("id:{id} ")),
            "receipt for {id}: {stdout}\n--- b\n{}\n--- a\n{}",
            b.log(),
            a.log()
        );
    }
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
    let health = admin_get(&gw, "/health");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("NATS not reachable"),
        "{health}"
    );
    assert!(status.contains("\"node\":\"alone\""), "{status}");
}

fn admin_status(gw: &Gateway) -> String {
    let out = admin_get(gw, "/status");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.replace([' ', '\n'], "")
}

fn admin_get(gw: &Gateway, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(gw.admin()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
