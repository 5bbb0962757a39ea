//! The HTTP submit API, driven by `curl` (a client we did not write) and by raw sockets for
//! what curl will not do (pipelining, a trickling client): messages reach the upstream and
//! bound ESMEs, and every bad request gets its status while the gateway keeps serving.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::gateway::{free_port, temp_dir, Gateway};
use common::WaitKill;

const REGFILE: &str =
    "[demo]\npassword=demo\n\n[rx1]\npassword=rx1\n\n[slow]\npassword=slow\nrate=1\n";

fn link(port: u16) -> String {
    format!(
        "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={port}\nsystem_id=gw\nsystem_password=pw\nbinds=2\nreconnect=100ms,500ms\n"
    )
}

/// `[http]` on a free port, with `extra` keys.
fn http_section(extra: &str) -> (String, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    (
        format!(
            "\n[http]\nenable=yes\naddr=127.0.0.1\nport={}\n{extra}\n",
            addr.port()
        ),
        addr,
    )
}

/// An answer: status, head (lowercased names), body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Runs curl (`-s -i`, 10 s at most) with `args`.
fn curl(args: &[&str]) -> Reply {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl is installed (.ci/run)")
        .wait_with_output_or_kill(Duration::from_secs(15));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_reply(&text).unwrap_or_else(|| panic!("curl {args:?}: {text:?}"))
}

fn parse_reply(text: &str) -> Option<Reply> {
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

fn post_json(addr: SocketAddr, user: &str, body: &str) -> Reply {
    curl(&[
        "-u",
        user,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        &format!("http://{addr}/messages"),
    ])
}

/// The ids a JSON answer gives, in order.
fn ids(body: &str) -> Vec<String> {
    body.split("\"id\":\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

fn recorded(path: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn wait_recorded(path: &std::path::Path, n: usize) -> Vec<Vec<u8>> {
    let t0 = Instant::now();
    loop {
        let got = recorded(path);
        if got.len() >= n || t0.elapsed() > Duration::from_secs(10) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn json_and_kannel_submits_reach_the_upstream_with_the_ids_they_were_given() {
    let record = temp_dir("http-rec").join("received.txt");
    let sim = Gateway::sim(&["--shards", "1", "--record", record.to_str().unwrap()]);
    let (http, addr) = http_section("");
    let gw = Gateway::start_with(
        "default_route=up",
        &format!("{}{http}", link(sim.plain.port())),
        REGFILE,
        &[],
    );
    gw.wait_bound(2);
    // Two recipients, one text: one id each.
    let r = post_json(
        addr,
        "demo:demo",
        r#"{"from":"Shop","to":["+447700900001","07700900002"],"text":"json hello","registered_delivery":false}"#,
    );
    assert_eq!(r.status, 202, "{}\n{}", r.body, gw.log());
    let json_ids = ids(&r.body);
    assert_eq!(json_ids.len(), 2, "{}", r.body);
    assert!(r.body.contains("\"accepted\":2"), "{}", r.body);
    // A long text: cut into parts, one id for the message.
    let long = "long ".repeat(60);
    let r = post_json(
        addr,
        "demo:demo",
        &format!(r#"{{"to":"447700900003","text":"{long}"}}"#),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(r.body.contains("\"parts\":2"), "{}", r.body);
    // Kannel's sendsms, GET and POST form; its answer text, the id in a header.
    let r = curl(&[&format!(
        "http://{addr}/cgi-bin/sendsms?username=demo&password=demo&from=1234&to=447700900004&text=kannel+get"
    )]);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body, "0: Accepted for delivery\n");
    assert!(r.head.contains("x-message-id: "), "{}", r.head);
    let r = curl(&[
        "--data",
        "user=demo&pass=demo&to=447700900005&text=kannel%20post",
        &format!("http://{addr}/cgi-bin/sendsms"),
    ]);
    assert_eq!(r.status, 202, "{}", r.body);
    let got = wait_recorded(&record, 6);
    let texts: HashSet<Vec<u8>> = got.iter().cloned().collect();
    assert!(texts.contains(b"json hello".as_slice()), "{got:?}");
    assert!(texts.contains(b"kannel get".as_slice()), "{got:?}");
    assert!(texts.contains(b"kannel post".as_slice()), "{got:?}");
    let parts: Vec<&Vec<u8>> = got.iter().filter(|l| l.starts_with(&[5, 0, 3])).collect();
    assert_eq!(parts.len(), 2, "{got:?}");
    let joined: Vec<u8> = parts.iter().flat_map(|p| p[6..].to_vec()).collect();
    assert_eq!(joined, long.as_bytes());
    assert_eq!(got.len(), 6, "each message once: {got:?}");
    // The CDR-worthy part: the ids are the gateway's, distinct.
    let distinct: HashSet<&String> = json_ids.iter().collect();
    assert_eq!(distinct.len(), 2);
}

#[test]
fn an_http_submit_routed_to_an_esme_reaches_an_smpplib_receiver() {
    let peers = common::peers();
    let (http, addr) = http_section("");
    let gw = Gateway::start_with(
        "",
        &http,
        REGFILE,
        &[(
            "regexroute.conf",
            "[default]\n${submit_info}^HTTP$=smppserver/rx1\n",
        )],
    );
    let rx = Command::new(&peers.python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/smpplib_receiver.py"
        ))
        .args(["127.0.0.1", &gw.plain.port().to_string(), "rx1", "rx1", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        gw.wait_log("rx1 bound as receiver", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    let r = post_json(
        addr,
        "demo:demo",
        r#"{"from":"4477001","to":"447700900123","text":"from http to smpp"}"#,
    );
    assert_eq!(r.status, 202, "{}\n{}", r.body, gw.log());
    let r = curl(&[&format!(
        "http://{addr}/cgi-bin/sendsms?user=demo&pass=demo&from=Shop&to=447700900124&text=kannel+to+smpp"
    )]);
    assert_eq!(r.status, 202, "{}", r.body);
    let out = rx.wait_with_output_or_kill(Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"text\": \"from http to smpp\""),
        "{stdout}\n{}",
        gw.log()
    );
    assert!(stdout.contains("\"text\": \"kannel to smpp\""), "{stdout}");
    assert!(stdout.contains("\"source\": \"Shop\""), "{stdout}");
}

/// Writes `req` on a new connection and reads until the peer closes (or 5 s).
fn raw(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn bad_requests_get_their_status_and_the_gateway_keeps_serving() {
    let (http, addr) = http_section("max_body=2K\nrequest_timeout=500ms");
    let gw = Gateway::start_with("", &http, REGFILE, &[]);
    assert!(gw.wait_log("listener \"http\"", Duration::from_secs(10)));
    let good = r#"{"to":"1234","text":"good"}"#;
    let still_serving = || {
        let r = post_json(addr, "demo:demo", good);
        assert_eq!(r.status, 202, "{}\n{}", r.body, gw.log());
    };
    still_serving();
    // Malformed JSON, unknown fields, wrong types: 400 with a reason per field.
    let r = post_json(addr, "demo:demo", "{\"to\":");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("\"body\":\"not JSON"), "{}", r.body);
    let r = post_json(addr, "demo:demo", r#"{"to":[1],"text":"x","colour":"red"}"#);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("\"colour\":\"unknown field"), "{}", r.body);
    assert!(
        r.body.contains("\"to\":\"a list of strings\""),
        "{}",
        r.body
    );
    let r = post_json(addr, "demo:demo", r#"{"to":"12ab","text":"x"}"#);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("is not a number"), "{}", r.body);
    still_serving();
    // Oversized: 413, told from Content-Length.
    let big = format!(r#"{{"to":"1","text":"{}"}}"#, "x".repeat(3000));
    let r = post_json(addr, "demo:demo", &big);
    assert_eq!(r.status, 413, "{}", r.body);
    // Wrong credentials: 401 with a challenge; Kannel's endpoint: 403, as Kannel answers.
    let r = post_json(addr, "demo:nope", good);
    assert_eq!(r.status, 401);
    assert!(r.head.contains("www-authenticate: basic"), "{}", r.head);
    let r = post_json(addr, "nobody:demo", good);
    assert_eq!(r.status, 401);
    let r = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        good,
        &format!("http://{addr}/messages"),
    ]);
    assert_eq!(r.status, 401);
    let r = curl(&[&format!(
        "http://{addr}/cgi-bin/sendsms?username=demo&password=bad&to=1&text=x"
    )]);
    assert_eq!(r.status, 403);
    assert_eq!(r.body, "Authorization failed for sendsms\n");
    let r = curl(&[&format!(
        "http://{addr}/cgi-bin/sendsms?username=demo&password=demo&to=1"
    )]);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("text: missing"), "{}", r.body);
    // Paths and methods.
    assert_eq!(curl(&[&format!("http://{addr}/nope")]).status, 404);
    assert_eq!(
        curl(&["-u", "demo:demo", &format!("http://{addr}/messages")]).status,
        405
    );
    still_serving();
    // Over the account's rate (slow: 1 a second): 429 with Retry-After.
    let statuses: Vec<u16> = (0..4)
        .map(|_| post_json(addr, "slow:slow", good).status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}\n{}", gw.log());
    assert!(statuses.contains(&202), "{statuses:?}");
    // Pipelined: three requests in one write, three answers in order, then the close the
    // last one asked for.
    let body = r#"{"to":"1","text":"pipelined"}"#;
    let auth = "Authorization: Basic ZGVtbzpkZW1v\r\n";
    let one = |close: bool| {
        format!(
            "POST /messages HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
    };
    let req = format!("{}GET /nope HTTP/1.1\r\n\r\n{}", one(false), one(true));
    let out = raw(addr, req.as_bytes());
    let statuses: Vec<&str> = out
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &out[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["202", "404", "202"], "{out}");
    // A client that trickles its request: 408 once request_timeout has passed, and the
    // connection closes; others are served meanwhile.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.write_all(b"POST /messages HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    still_serving();
    let t0 = Instant::now();
    let mut out = String::new();
    let _ = slow.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408 "), "{out:?}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // Not HTTP at all: 400 and closed.
    let out = raw(addr, b"\x16\x03\x01 hello\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 400 "), "{out:?}");
    // A head that never ends: 431.
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'y', 9000));
    let out = raw(addr, &huge);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out:?}");
    still_serving();
    // What the metrics say: answers by endpoint and status, summed over the shards.
    let metrics = curl(&[&format!("http://{}/metrics", gw.admin())]).body;
    let total = |api: &str, status: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("smppgw_http_requests_total{")
                    && l.contains(&format!("api=\"{api}\""))
                    && l.contains(&format!("status=\"{status}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(total("messages", "202") >= 6.0, "{metrics}");
    // Refused while framing (before the path is known): `other`.
    assert_eq!(total("other", "413"), 1.0, "{metrics}");
    assert_eq!(total("sendsms", "403"), 1.0, "{metrics}");
    assert_eq!(total("other", "431"), 1.0, "{metrics}");
}

#[test]
fn while_the_log_refuses_writes_submits_get_503_and_none_is_delivered() {
    let record = temp_dir("http-full").join("received.txt");
    let sim = Gateway::sim(&["--shards", "1", "--record", record.to_str().unwrap()]);
    let (http, addr) = http_section("");
    let gw = Gateway::start_with(
        "default_route=up\nsegment_size=1M",
        &format!("{}{http}", link(sim.plain.port())),
        REGFILE,
        &[],
    );
    gw.wait_bound(2);
    let r = post_json(addr, "demo:demo", r#"{"to":"1","text":"before"}"#);
    assert_eq!(r.status, 202, "{}", r.body);
    // Room for part of a segment, then no more: submits fill it, then are refused.
    gw.set_fsize(Some(1 << 19));
    let text = "y".repeat(150);
    let mut refused = Vec::new();
    let mut accepted = HashSet::new();
    let t0 = Instant::now();
    let mut i = 0;
    while refused.len() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never refused\n{}",
            gw.log()
        );
        // Kannel's endpoint: one request per curl would take minutes; keep-alive through
        // one curl with many URLs.
        let urls: Vec<String> = (0..50)
            .map(|k| {
                format!(
                    "http://{addr}/cgi-bin/sendsms?user=demo&pass=demo&to=1&text=full{:05}{text}",
                    i + k
                )
            })
            .collect();
        i += 50;
        // One line per transfer: its status and its URL (the text is in it), so that what
        // was refused and what was accepted are told apart exactly, whatever order or
        // failures the transfers have.
        let mut args = vec![
            "-s",
            "--max-time",
            "20",
            "-w",
            "%{http_code} %{url_effective}\\n",
        ];
        for u in &urls {
            args.extend(["-o", "/dev/null", u.as_str()]);
        }
        let out = Command::new("curl").args(&args).output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (code, url) = line.split_once(' ').unwrap_or((line, ""));
            let Some(t) = url.split("&text=").nth(1) else {
                continue;
            };
            match code {
                "202" => {
                    accepted.insert(t.to_string());
                }
                "503" => refused.push(t.to_string()),
                other => panic!("{other}: {line}"),
            }
        }
    }
    // Space returns: the gateway takes submits again by itself.
    gw.set_fsize(None);
    assert!(
        gw.wait_log("writes succeed again", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    let r = post_json(addr, "demo:demo", r#"{"to":"1","text":"after"}"#);
    assert_eq!(r.status, 202, "{}", r.body);
    accepted.insert("after".into());
    let got: HashSet<String> = wait_recorded(&record, accepted.len() + 1)
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect();
    let missing = accepted.iter().filter(|t| !got.contains(*t)).count();
    let refused_delivered = refused.iter().filter(|t| got.contains(*t)).count();
    eprintln!(
        "HTTP with a disk refusing writes: {} accepted, {} refused, {missing} missing, {refused_delivered} refused and delivered",
        accepted.len(),
        refused.len()
    );
    assert_eq!(missing, 0, "{}", gw.log());
    assert_eq!(refused_delivered, 0);
}
