//! The admin endpoint: `/metrics` read by a third party's Prometheus text parser (Python
//! `prometheus_client`) with counters matching the traffic sent, `/health` turning 503 while
//! a shard stalls (a test hook) and back, `/status`, and malformed or oversized requests
//! answered 400 with the connection closed.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::Gateway;
use smppgw::smpp::*;

const REGFILE: &str = "[demo]\npassword=demo\n";

/// One request; the status code and the body.
fn get(addr: SocketAddr, raw: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    get(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

/// Every sample of a scrape, as `prometheus_client` reads it: (name, labels) -> value.
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

fn parse(text: &str) -> Samples {
    let mut child = Command::new(&common::peers().python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/prom_parse.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse it: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split('\t');
        let (name, labels, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let labels: Vec<(String, String)> = labels
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        m.insert((name.to_string(), labels), value.parse().unwrap());
    }
    m
}

/// The sum of `name` over the samples whose labels include `with`.
fn sum(m: &Samples, name: &str, with: &[(&str, &str)]) -> f64 {
    m.iter()
        .filter(|((n, l), _)| {
            n == name
                && with
                    .iter()
                    .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|(_, v)| *v)
        .sum()
}

#[test]
fn metrics_parse_with_prometheus_client_and_count_the_traffic_sent() {
    let sim = Gateway::sim(&["--shards", "1"]);
    let gw = Gateway::start_with(
        "default_route=up",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nreconnect=100ms,500ms\n",
            sim.plain.port()
        ),
        REGFILE,
        &[],
    );
    gw.wait_bound(1);
    let admin = gw.admin();
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    // One TLS bind, one handshake that fails (a client speaking plain SMPP to the TLS port).
    let mut t = Esme::tls(gw.tls, &gw.cert_pem);
    t.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let mut not_tls = Esme::plain(gw.tls);
    assert!(not_tls.bind(BindType::Transmitter, "demo", "demo").is_err());
    for i in 0..40 {
        let seq = e.submit_sm(sm("4477", "3161", format!("m{i}").as_bytes(), 1));
        assert!(e.response(seq).unwrap().0.is_ok());
    }
    assert!(
        e.wait_delivered(40, Duration::from_secs(10)),
        "the receipts"
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, text) = http_get(admin, "/metrics");
    assert_eq!(code, 200, "{text}");
    let m = parse(&text);
    let accepted = sum(&m, "smppgw_messages_total", &[("stage", "accepted")]);
    assert_eq!(accepted, 40.0, "{text}");
    assert_eq!(
        sum(&m, "smppgw_pdus_in_total", &[("command", "submit_sm")]),
        40.0
    );
    assert_eq!(
        sum(&m, "smppgw_attempts_total", &[("outcome", "accepted")]),
        40.0,
        "forwarded to the link"
    );
    assert_eq!(
        sum(&m, "smppgw_attempts_total", &[("outcome", "delivered")]),
        40.0,
        "the receipts, to the ESME"
    );
    assert_eq!(
        sum(&m, "smppgw_receipts_total", &[("kind", "relayed")]),
        40.0
    );
    assert_eq!(sum(&m, "smppgw_binds", &[("account", "demo")]), 2.0);
    assert_eq!(
        sum(
            &m,
            "smppgw_pdus_out_total",
            &[("command", "submit_sm_resp"), ("status", "ok")]
        ),
        40.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &m,
            "smppgw_pdus_out_total",
            &[("command", "deliver_sm"), ("status", "request")]
        ),
        40.0,
        "the receipts"
    );
    assert_eq!(
        sum(
            &m,
            "smppgw_routes_total",
            &[("decision", "forward"), ("target", "smppclient/up")]
        ),
        40.0,
        "default_route"
    );
    assert_eq!(
        sum(&m, "smppgw_tls_handshakes_total", &[("result", "ok")]),
        1.0
    );
    assert_eq!(
        sum(&m, "smppgw_tls_handshakes_total", &[("result", "failed")]),
        1.0
    );
    assert_eq!(sum(&m, "smppgw_link_up", &[("link", "up")]), 1.0);
    assert_eq!(sum(&m, "smppgw_link_in_flight", &[("link", "up")]), 0.0);
    assert_eq!(sum(&m, "smppgw_config_version", &[]), 1.0);
    assert_eq!(
        sum(
            &m,
            "smppgw_link_binds",
            &[("link", "up"), ("direction", "transmit")]
        ),
        1.0
    );
    // Histograms: every submit's answer, and every message's end (40 and their receipts).
    assert_eq!(sum(&m, "smppgw_submit_response_seconds_count", &[]), 40.0);
    assert_eq!(sum(&m, "smppgw_message_final_seconds_count", &[]), 80.0);
    assert!(sum(&m, "smppgw_log_commit_records_count", &[]) >= 1.0);
    // Per shard, each handle written by its own shard: both shards' labels are there.
    assert!(m.keys().any(|(n, l)| n == "smppgw_pending_messages"
        && l.contains(&("shard".to_string(), "1".to_string()))));

    // The dashboard in tuning/ charts only metrics that exist.
    let dash = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tuning/grafana-smppgw.json"
    ))
    .unwrap();
    for word in dash.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("smppgw_") {
            assert!(
                m.keys().any(|(n, _)| n == word),
                "the dashboard charts {word}, which /metrics does not have"
            );
        }
    }

    let (code, body) = http_get(admin, "/status");
    assert_eq!(code, 200);
    assert!(
        body.contains("\"system_id\":\"demo\",\"binds\":2"),
        "{body}"
    );
    assert!(body.contains("\"name\":\"up\""), "{body}");
    assert!(body.contains("\"accepted\":40"), "{body}");
}

#[test]
fn health_turns_503_while_a_shard_stalls_and_bad_requests_are_refused() {
    // Test hook: shard 1 blocks its thread for 2.5 s, 1.5 s after it starts.
    let gw = Gateway::start_env(
        "",
        "",
        REGFILE,
        &[],
        &[("SMPPGW_TEST_STALL", "1:1500:2500")],
    );
    let admin = gw.admin();
    // Until each shard has ticked once it says "not started": healthy within a moment.
    let t0 = Instant::now();
    let (mut code, mut body) = http_get(admin, "/health");
    while code != 200 && t0.elapsed() < Duration::from_millis(1000) {
        assert!(body.contains("has not started"), "{body}");
        std::thread::sleep(Duration::from_millis(20));
        (code, body) = http_get(admin, "/health");
    }
    assert_eq!((code, body.trim()), (200, "{\"status\":\"ok\"}"));
    let t0 = Instant::now();
    let mut seen = None;
    while t0.elapsed() < Duration::from_secs(10) {
        let (code, body) = http_get(admin, "/health");
        if code == 503 {
            seen = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let body = seen.unwrap_or_else(|| panic!("never 503\n{}", gw.log()));
    assert!(body.contains("\"status\":\"unhealthy\""), "{body}");
    assert!(body.contains("shard 1 has not answered"), "{body}");
    // And healthy again once it runs.
    let t0 = Instant::now();
    loop {
        let (code, _) = http_get(admin, "/health");
        if code == 200 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "still unhealthy");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Malformed: 400 and the connection closed (read_to_end returns).
    let (code, body) = get(admin, b"BLAH\x01 /metrics\r\n\r\n");
    assert_eq!(code, 400, "{body}");
    // Oversized head: 431.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let (code, body) = get(admin, big.as_bytes());
    assert_eq!(code, 431, "{body}");
    assert!(body.contains("8192 octets"), "{body}");
    assert_eq!(http_get(admin, "/nope").0, 404);
    assert_eq!(
        get(
            admin,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        )
        .0,
        405
    );
}
