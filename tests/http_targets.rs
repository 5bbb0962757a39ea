//! HTTP targets and status reports to HTTP: messages routed to `http` or a URL are POSTed to
//! a real HTTP server the test runs, each answer (200, 400, 503, never) has its outcome and
//! receipt; status reports go to the seed's status URL (its route file verbatim, through a
//! forward proxy the test runs, since its address is not this machine's), to a submit's
//! `callback_url`, and to Kannel `dlr-url` callbacks; MO reaches HTTP; all of it survives a
//! `kill -9`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::esme::{sm, Esme};
use common::gateway::{free_port, temp_dir, Gateway};
use common::http_sink::{HttpSink, Seen};
use common::upstream::FakeUpstream;
use smppgw::smpp::*;

const REGFILE: &str = "[demo]\npassword=demo\n";

fn json(s: &Seen) -> serde_json::Value {
    serde_json::from_str(&s.body).unwrap_or_else(|e| panic!("{e}: {:?}", s.body))
}

fn sm_text(p: &Pdu) -> String {
    match &p.body {
        Body::DeliverSm(d) => String::from_utf8_lossy(&d.short_message).into_owned(),
        other => panic!("{other:?}"),
    }
}

/// Answers by path: /ok 200, /bad 400, /busy 503 twice then 200, /never never.
fn by_path(s: &Seen, before: usize) -> Option<u16> {
    let path = s.target.split('?').next().unwrap_or("");
    match path {
        "/never" => None,
        "/bad" => Some(400),
        "/busy" if before < 2 => Some(503),
        _ => Some(200),
    }
}

#[test]
fn each_answer_of_an_http_target_has_its_outcome_and_receipt() {
    let sink = HttpSink::start(by_path);
    let url = format!("http://{}", sink.addr);
    let routes = format!(
        "[default]\n^1000=http\n^2000=http://{a}/bad?to=${{called}}&from=${{caller}}\n^3000=http://{a}/busy\n^4000=http://{a}/never\n",
        a = sink.addr
    );
    let gw = Gateway::start_with(
        "",
        &format!("[http-target]\nurl={url}/ok\ntimeout=300ms\n"),
        REGFILE,
        &[
            ("regexroute.conf", &routes),
            (
                "yatesmsc.conf",
                "[general]\nretries=2\nretry_interval=100ms,200ms\n",
            ),
        ],
    );
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let mut ids = Vec::new();
    for (to, text) in [
        ("100011", "to the http module"),
        ("200022", "to a target that refuses"),
        ("300033", "to a busy target"),
        ("400044", "to a target that never answers"),
    ] {
        let seq = e.submit_sm(sm("4477 01", to, text.as_bytes(), 1));
        let (st, id) = e.response(seq).expect("an answer");
        assert_eq!(st, CommandStatus::ROK, "{to}\n{}", gw.log());
        ids.push(id.unwrap());
    }
    // Receipts: delivered, refused, delivered after two 503s, undeliverable after 3 tries.
    assert!(
        e.wait_delivered(4, Duration::from_secs(15)),
        "{} receipts\n{}",
        e.delivered.len(),
        gw.log()
    );
    let stat_of = |id: &str| -> String {
        let p = e
            .delivered
            .iter()
            .find(|p| sm_text(p).starts_with(&format!("id:{id} ")))
            .unwrap_or_else(|| panic!("no receipt for {id}: {:?}", e.delivered));
        let t = sm_text(p);
        t.split("stat:").nth(1).unwrap()[..7].to_string()
    };
    assert_eq!(stat_of(&ids[0]), "DELIVRD");
    assert_eq!(stat_of(&ids[1]), "UNDELIV");
    assert_eq!(stat_of(&ids[2]), "DELIVRD");
    assert_eq!(stat_of(&ids[3]), "UNDELIV");
    let seen = sink.seen();
    let on = |p: &str| seen.iter().filter(|s| s.target.starts_with(p)).count();
    assert_eq!(on("/ok"), 1, "{seen:?}");
    assert_eq!(on("/bad"), 1, "a 400 is final: {seen:?}");
    assert_eq!(on("/busy"), 3, "two 503s, then 200: {seen:?}");
    assert_eq!(on("/never"), 3, "retries=2: three tries: {seen:?}");
    // What the target got: JSON with the gateway's id, the text decoded, and the URL's
    // parameters substituted from the message, URL-encoded.
    let ok = seen.iter().find(|s| s.target == "/ok").unwrap();
    assert_eq!(ok.method, "POST");
    let v = json(ok);
    assert_eq!(v["type"], "sms");
    assert_eq!(v["text"], "to the http module");
    assert_eq!(v["to"], "100011");
    assert_eq!(v["id"].as_str().unwrap(), ids[0]);
    assert_eq!(v["origin"], "smppserver/demo");
    let bad = seen.iter().find(|s| s.target.starts_with("/bad")).unwrap();
    assert_eq!(bad.target, "/bad?to=200022&from=4477%2001");
    // Kept alive: the three tries of the busy target share connections with the others.
    let conns: std::collections::HashSet<usize> = seen
        .iter()
        .filter(|s| !s.target.starts_with("/never"))
        .map(|s| s.conn)
        .collect();
    assert!(conns.len() < 5, "connections reused: {seen:?}");
}

#[test]
fn the_seeds_route_file_sends_status_reports_of_http_submits_to_its_status_url() {
    // The seed's status URL is on 10.10.1.120; this machine reaches only 127.0.0.1: the
    // gateway goes through a forward proxy (`[http-target] proxy=`), which the test runs and
    // which sees the absolute URL.
    let proxy = HttpSink::start(|_, _| Some(200));
    let sim = Gateway::sim(&["--shards", "1", "--receipt-delay", "50ms"]);
    let http_port = free_port();
    let gw = Gateway::start_with(
        "default_route=up",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nreconnect=100ms,500ms\n\n[http]\nenable=yes\naddr=127.0.0.1\nport={http_port}\n\n[http-target]\nproxy=http://{}\n",
            sim.plain.port(),
            proxy.addr
        ),
        REGFILE,
        &[(
            "regexroute.conf",
            include_str!("fixtures/seed-regexroute.conf"),
        )],
    );
    gw.wait_bound(1);
    let out = Command::new("curl")
        .args([
            "-s",
            "-u",
            "demo:demo",
            "--data-binary",
            r#"{"to":"447700900555","text":"status to the seed's URL","registered_delivery":1}"#,
            &format!("http://127.0.0.1:{http_port}/messages"),
        ])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    let id = body
        .split("\"id\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("{body}\n{}", gw.log()))
        .to_string();
    let seen = proxy.wait(1, Duration::from_secs(10));
    assert_eq!(seen.len(), 1, "{seen:?}\n{}", gw.log());
    assert_eq!(
        seen[0].target,
        format!("http://10.10.1.120/status?billid={id}&status=DELIVRD")
    );
    let v = json(&seen[0]);
    assert_eq!(v["type"], "status_report");
    assert_eq!(v["billid"].as_str().unwrap(), id);
    assert_eq!(v["stat"], "DELIVRD");
    assert_eq!(v["tp_status"], 0);
    // An SMPP submit's report is not sent there: it waits for its ESME as always.
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, "demo", "demo").unwrap();
    let seq = e.submit_sm(sm("4477", "447700900556", b"over smpp", 1));
    assert_eq!(e.response(seq).unwrap().0, CommandStatus::ROK);
    assert!(e.wait_delivered(1, Duration::from_secs(10)), "{}", gw.log());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(proxy.seen().len(), 1);
}

#[test]
fn callback_urls_and_kannel_dlr_urls_get_their_reports_also_after_kill_9() {
    let sink = HttpSink::start(|_, _| Some(200));
    // The upstream's receipts come 3 s after its answer: the gateway is killed in between.
    let record = temp_dir("http-cb").join("received.txt");
    let sim = Gateway::sim(&[
        "--shards",
        "1",
        "--receipt-delay",
        "3s",
        "--record",
        record.to_str().unwrap(),
    ]);
    let http_port = free_port();
    let mut gw = Gateway::start_with(
        "default_route=up",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nreconnect=100ms,500ms\n\n[http]\nenable=yes\naddr=127.0.0.1\nport={http_port}\n",
            sim.plain.port()
        ),
        REGFILE,
        &[],
    );
    gw.wait_bound(1);
    let api = format!("http://127.0.0.1:{http_port}");
    let cb = format!("http://{}/cb", sink.addr);
    let out = Command::new("curl")
        .args([
            "-s",
            "-u",
            "demo:demo",
            "--data-binary",
            &format!(
                r#"{{"to":"447700900777","text":"json with a callback","callback_url":"{cb}"}}"#
            ),
            &format!("{api}/messages"),
        ])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(body.contains("\"accepted\":1"), "{body}\n{}", gw.log());
    // Kannel's smsbox style: dlr-mask and a dlr-url with its escapes.
    let dlr = format!(
        "http://{}/dlr?type=%d&id=%I&to=%P&from=%p&text=%A",
        sink.addr
    );
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "-G",
            "--data-urlencode",
            "username=demo",
            "--data-urlencode",
            "password=demo",
            "--data-urlencode",
            "from=Shop",
            "--data-urlencode",
            "to=447700900888",
            "--data-urlencode",
            "text=kannel with a dlr-url",
            "--data-urlencode",
            "dlr-mask=3",
            "--data-urlencode",
            &format!("dlr-url={dlr}"),
            &format!("{api}/cgi-bin/sendsms"),
        ])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(head.contains("0: Accepted for delivery"), "{head}");
    let kannel_id = head
        .lines()
        .find_map(|l| l.strip_prefix("X-Message-Id: "))
        .unwrap()
        .trim()
        .to_string();
    // Both forwarded; then the gateway dies before any receipt.
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&record)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", gw.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    gw.kill();
    assert!(sink.seen().is_empty());
    gw.restart();
    let seen = sink.wait(2, Duration::from_secs(15));
    assert_eq!(seen.len(), 2, "{seen:?}\n{}", gw.log());
    let json_cb = seen.iter().find(|s| s.target == "/cb").expect("callback");
    let v = json(json_cb);
    assert_eq!(v["type"], "status_report");
    assert_eq!(v["stat"], "DELIVRD");
    let kannel = seen.iter().find(|s| s.target.starts_with("/dlr")).unwrap();
    assert_eq!(kannel.method, "GET");
    assert!(
        kannel.target.starts_with(&format!(
            "/dlr?type=1&id={kannel_id}&to=447700900888&from=Shop&text=id%3A"
        )),
        "{}",
        kannel.target
    );
    // Nothing twice.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.seen().len(), 2, "{:?}", sink.seen());
}

#[test]
fn mobile_originated_messages_and_esme_submits_reach_http() {
    let sink = HttpSink::start(|_, _| Some(200));
    let up = FakeUpstream::start(true);
    let gw = Gateway::start_with(
        "",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={}\nsystem_id=gw\nsystem_password=pw\nbind=transceiver\nreconnect=100ms,500ms\n\n[http-target]\nurl=http://{}/inbox\n",
            up.port, sink.addr
        ),
        REGFILE,
        &[(
            "regexroute.conf",
            "[default]\n${module}^smppclient$=http\n${module}^smppserver$=http\n",
        )],
    );
    gw.wait_bound(1);
    up.send_mo("447700900123", "1234", "MO to HTTP: ü".as_bytes());
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "demo", "demo").unwrap();
    let seq = e.submit_sm(sm("4477", "3161", b"submit to HTTP", 0));
    assert_eq!(e.response(seq).unwrap().0, CommandStatus::ROK);
    let seen = sink.wait(2, Duration::from_secs(10));
    assert_eq!(seen.len(), 2, "{seen:?}\n{}", gw.log());
    let mo = seen
        .iter()
        .map(json)
        .find(|v| v["origin"] == "smppclient/up")
        .expect("the MO");
    assert_eq!(mo["from"], "447700900123");
    assert_eq!(mo["to"], "1234");
    let sub = seen
        .iter()
        .map(json)
        .find(|v| v["origin"] == "smppserver/demo")
        .expect("the submit");
    assert_eq!(sub["text"], "submit to HTTP");
    assert_eq!(up.mo_status(), vec![CommandStatus::ROK]);
}

#[test]
fn https_serves_the_api_and_https_targets_are_verified() {
    for trusted in [false, true] {
        let port = free_port();
        let target_tls = if trusted {
            "[http-target]\nca_file=certificate.pem\n"
        } else {
            ""
        };
        let gw = Gateway::start_with(
            "",
            &format!(
                "[http]\nenable=yes\naddr=127.0.0.1\nport={port}\nsslcontext=test_ctx\n\n{target_tls}"
            ),
            REGFILE,
            &[
                (
                    "regexroute.conf",
                    &format!("[default]\n^5000=https://localhost:{port}/nothing\n"),
                ),
                ("yatesmsc.conf", "[general]\nretries=0\n"),
            ],
        );
        // The API over TLS, its certificate checked by curl.
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                gw.dir.join("certificate.pem").to_str().unwrap(),
                "-u",
                "demo:demo",
                "--data-binary",
                r#"{"to":"500011","text":"over https","registered_delivery":1}"#,
                &format!("https://localhost:{port}/messages"),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "202", "{}", gw.log());
        // The message goes to an https target: the same API, at a path it does not serve.
        // Without the CA its certificate is refused (temporary, then no retries left); with
        // it, the TLS session stands and the 404 is final.
        let want = if trusted {
            "HTTP 404 (final)"
        } else {
            "TLS: invalid peer certificate"
        };
        assert!(
            gw.wait_log(want, Duration::from_secs(10)),
            "trusted={trusted}: {want}\n{}",
            gw.log()
        );
    }
}

#[test]
fn an_smpplib_esme_submits_to_http_and_gets_its_receipts() {
    let sink = HttpSink::start(|_, _| Some(200));
    let gw = Gateway::start_with(
        "",
        &format!("[http-target]\nurl=http://{}/inbox\n", sink.addr),
        REGFILE,
        &[("regexroute.conf", "[default]\n${module}^smppserver$=http\n")],
    );
    let out = common::smpplib_client(gw.plain.port());
    common::check_peer("smpplib", &out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let parts = v["parts"].as_u64().unwrap() as usize;
    assert!(parts >= 4, "{v}");
    assert_eq!(
        v["receipts"].as_array().unwrap().len(),
        parts,
        "{v}\n{}",
        gw.log()
    );
    for r in v["receipts"].as_array().unwrap() {
        assert!(r["text"].as_str().unwrap().contains("stat:DELIVRD"), "{r}");
    }
    let seen = sink.wait(parts, Duration::from_secs(10));
    assert_eq!(seen.len(), parts, "{seen:?}");
    let texts: Vec<String> = seen
        .iter()
        .map(|s| json(s)["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        texts.contains(&"Hello from smpplib, GSM 7-bit".to_string()),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"Привет из smpplib (UCS2)".to_string()),
        "{texts:?}"
    );
    // The long message's parts: their UDH apart, their texts in order make the whole.
    let mut long: Vec<(String, String)> = seen
        .iter()
        .map(json)
        .filter(|v| v["udh"].is_string())
        .map(|v| {
            (
                v["udh"].as_str().unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    long.sort();
    let whole: String = long.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(whole, "A long message from smpplib. ".repeat(8));
}
