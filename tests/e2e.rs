//! End to end through the gateway with third-party peers: the Python `smpplib` and npm
//! `smpp` ESMEs submit GSM 7-bit, UCS2 and long (UDH) messages through the gateway to an
//! upstream (`smppgw sim`, and the npm `smpp` package's server), and match every receipt the
//! upstream sends back, rewritten with the gateway's ids; a mobile-originated message from
//! the upstream reaches an `smpplib` receiver.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::gateway::{free_port, temp_dir, Gateway};
use common::upstream::FakeUpstream;
use common::{check_peer, WaitKill};

const REGFILE: &str = "[demo]\npassword=demo\n";

fn gateway(port: u16) -> Gateway {
    Gateway::start_with(
        "default_route=up",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={port}\nsystem_id=gw\nsystem_password=pw\nbinds=2\nmsgid_format=hex\nreconnect=100ms,500ms\n"
        ),
        REGFILE,
        &[],
    )
}

/// Runs the smpplib and npm smpp clients (plain, and npm over TLS too) against the gateway.
fn third_party_clients(gw: &Gateway) {
    check_peer("smpplib", &common::smpplib_client(gw.plain.port()));
    for url in [
        format!("smpp://127.0.0.1:{}", gw.plain.port()),
        format!("ssmpp://127.0.0.1:{}", gw.tls.port()),
    ] {
        check_peer(&url, &common::node_client(&url));
    }
}

/// Whether `hay` contains `needle`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn smpplib_and_node_smpp_through_the_gateway_to_the_simulator() {
    let record = temp_dir("e2e-sim").join("received.bin");
    let sim = Gateway::sim(&["--shards", "1", "--record", record.to_str().unwrap()]);
    let gw = gateway(sim.plain.port());
    gw.wait_bound(2);
    third_party_clients(&gw);
    // What reached the upstream is what the ESMEs sent, byte for byte: GSM 7-bit text, UCS2
    // (UTF-16BE) and the concatenation headers of the long messages.
    let got = std::fs::read(&record).unwrap();
    assert!(contains(&got, b"Hello from smpplib, GSM 7-bit"));
    let ucs2: Vec<u8> = "Привет"
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    assert!(contains(&got, &ucs2), "UCS2 passes through untouched");
    assert!(contains(&got, &[5, 0, 3, 0x42, 2, 1]) && contains(&got, &[5, 0, 3, 0x42, 2, 2]));
}

struct Peer(Child);
impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn smpplib_and_node_smpp_through_the_gateway_to_the_npm_smpp_server() {
    let peers = common::peers();
    let port = free_port();
    let mut up = Peer(
        Command::new("node")
            .env("NODE_PATH", peers.node_dir.join("node_modules"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/peers/node_server.js"
            ))
            .args(["--port", &port.to_string(), "--msgid", "hex", "--receipts"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "npm smpp server did not start"
        );
        assert!(up.0.try_wait().unwrap().is_none(), "npm smpp server exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gw = gateway(port);
    gw.wait_bound(2);
    third_party_clients(&gw);
}

#[test]
fn a_mobile_originated_message_reaches_an_smpplib_receiver() {
    let peers = common::peers();
    let up = FakeUpstream::start(true);
    let gw = Gateway::start_with(
        "",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nbind=transceiver\nreconnect=100ms,500ms\n",
            up.port
        ),
        REGFILE,
        &[("regexroute.conf", "[default]\n${module}^smppclient$=smppserver/demo\n")],
    );
    gw.wait_bound(1);
    // Sent before the receiver binds: held, then delivered.
    up.send_mo("447700900123", "1234", b"MO before the bind");
    let t0 = Instant::now();
    while up.mo_status().is_empty() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rx = Command::new(&peers.python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/smpplib_receiver.py"
        ))
        .args([
            "127.0.0.1",
            &gw.plain.port().to_string(),
            "demo",
            "demo",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        gw.wait_log("demo bound as receiver", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    up.send_mo("447700900124", "1234", b"MO after the bind");
    let out = rx.wait_with_output_or_kill(Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"text\": \"MO before the bind\""),
        "{stdout}\n{}",
        gw.log()
    );
    assert!(
        stdout.contains("\"text\": \"MO after the bind\""),
        "{stdout}"
    );
    assert!(stdout.contains("\"source\": \"447700900123\""), "{stdout}");
    assert_eq!(
        up.mo_status(),
        vec![
            smppgw::smpp::CommandStatus::ROK,
            smppgw::smpp::CommandStatus::ROK
        ]
    );
}

#[test]
fn text_is_transcoded_only_between_ends_that_read_data_coding_0_differently() {
    use common::esme::{sm, Esme};
    use smppgw::smpp::BindType;
    let record = temp_dir("coding").join("received.bin");
    let sim = Gateway::sim(&["--shards", "1", "--record", record.to_str().unwrap()]);
    let gw = Gateway::start_with(
        "default_route=up",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\ncoding=gsm7\n",
            sim.plain.port()
        ),
        "[latin]\npassword=l\ncoding=latin1\n\n[gsm]\npassword=g\n",
        &[],
    );
    gw.wait_bound(1);
    // An ESME whose data_coding 0 is Latin-1: "café" arrives upstream in GSM 7-bit.
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "latin", "l").unwrap();
    let s = e.submit_sm(sm("1", "2", b"caf\xe9 latin", 0));
    assert!(e.response(s).unwrap().0.is_ok());
    // An ESME that speaks GSM 7-bit like the link: its octets pass untouched, as does UCS2.
    let mut g = Esme::plain(gw.plain);
    g.bind(BindType::Transmitter, "gsm", "g").unwrap();
    let s = g.submit_sm(sm("1", "2", b"caf\x05 gsm", 0));
    assert!(g.response(s).unwrap().0.is_ok());
    let mut u = sm("1", "2", &[0x00, 0xE9], 0);
    u.data_coding = 8;
    let s = e.submit_sm(u);
    assert!(e.response(s).unwrap().0.is_ok());
    let t0 = Instant::now();
    let got = loop {
        let got = std::fs::read(&record).unwrap_or_default();
        if contains(&got, b"gsm") && contains(&got, b"latin") && contains(&got, &[0x00, 0xE9])
            || t0.elapsed() > Duration::from_secs(10)
        {
            break got;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(contains(&got, b"caf\x05 latin"), "{got:?}");
    assert!(contains(&got, b"caf\x05 gsm"), "{got:?}");
    assert!(contains(&got, &[0x00, 0xE9]), "UCS2 untouched: {got:?}");
}
