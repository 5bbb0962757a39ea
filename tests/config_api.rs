//! The configuration API on the admin endpoint, against the gateway as a process: accounts
//! added, changed and deleted while ESMEs (the Python `smpplib` among them) bind; a client
//! link added to a running upstream and used; route files refused and installed; stale
//! writes refused; the files, comments and all, after a restart; bad requests; the CLI.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::Gateway;
use common::upstream::FakeUpstream;
use smppgw::control::client::{request_with, Answer};
use smppgw::smpp::*;

const TOKEN: &str = "0123456789abcdef-test-token";
const REGFILE: &str =
    "; ESME accounts, kept by hand and by the API\n[demo]\n; the demo account\npassword=demo\n";
const ROUTES: &str = "; routes\n[default]\n^99=smppserver/demo\n";

fn auth() -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {TOKEN}"))]
}

fn call(gw: &Gateway, method: &str, path: &str, extra: &[(&str, String)], body: &str) -> Answer {
    let mut headers = auth();
    headers.extend_from_slice(extra);
    request_with(gw.admin(), method, path, &headers, body.as_bytes()).unwrap()
}

fn json(a: &Answer) -> serde_json::Value {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {} {}", a.code, a.body))
}

/// A gateway whose admin endpoint asks for [`TOKEN`]; with `routes`, a route file (without,
/// it terminates every message itself, with a DELIVRD receipt).
fn gateway(routes: Option<&str>) -> Gateway {
    let files: Vec<(&str, &str)> = routes.map(|r| ("regexroute.conf", r)).into_iter().collect();
    Gateway::start_with(
        "",
        &format!("[admin]\ntoken={TOKEN}\naudit=audit.log\n"),
        REGFILE,
        &files,
    )
}

fn bind(gw: &Gateway, system_id: &str, password: &str) -> Result<Esme, CloseReason> {
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transceiver, system_id, password)
        .map(|_| e)
}

fn smpplib(gw: &Gateway, system_id: &str, password: &str) -> std::process::Output {
    Command::new(&common::peers().python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/smpplib_client.py"
        ))
        .args([
            "127.0.0.1",
            &gw.plain.port().to_string(),
            system_id,
            password,
        ])
        .output()
        .unwrap()
}

#[test]
fn an_account_added_changed_and_deleted_over_the_api_binds_and_unbinds_at_once() {
    let mut gw = gateway(None);
    let a = call(&gw, "GET", "/config/accounts", &[], "");
    assert_eq!(a.code, 200, "{}", a.body);
    assert_eq!(json(&a)[0]["password"], "***", "secrets are never shown");
    let version = a.etag.clone().expect("an ETag");

    // Added: a third-party ESME binds with it at once.
    let put = call(
        &gw,
        "PUT",
        "/config/accounts/acme",
        &[("If-Match", version.clone())],
        r#"{"password":"first1","max_binds":4,"window":32}"#,
    );
    assert_eq!(put.code, 201, "{}\n{}", put.body, gw.log());
    assert_ne!(put.etag.as_ref(), Some(&version));
    common::check_peer("smpplib (new account)", &smpplib(&gw, "acme", "first1"));

    // The password changes: a bind up stays, a new bind needs the new password.
    let mut up = bind(&gw, "acme", "first1").expect("bind with the first password");
    let put = call(
        &gw,
        "PUT",
        "/config/accounts/acme",
        &[],
        r#"{"password":"second2","max_binds":4,"window":32}"#,
    );
    assert_eq!(put.code, 200, "{}", put.body);
    assert!(
        bind(&gw, "acme", "first1").is_err(),
        "the old password binds no more"
    );
    common::check_peer("smpplib (new password)", &smpplib(&gw, "acme", "second2"));
    let seq = up.submit_sm(sm("4477", "99123", b"still bound", 0));
    let (st, _) = up
        .response(seq)
        .expect("the bind up before the change still answers");
    assert!(st.is_ok(), "{st:?}");

    // Written back as shown, "***" keeps the password.
    let shown = json(&call(&gw, "GET", "/config/accounts/acme", &[], ""));
    assert_eq!(shown["password"], "***");
    assert_eq!(shown["window"], "32");
    let put = call(&gw, "PUT", "/config/accounts/acme", &[], &shown.to_string());
    assert_eq!(put.code, 200, "{}", put.body);
    bind(&gw, "acme", "second2").expect("the password stayed");

    // Deleted: its binds are unbound.
    let del = call(&gw, "DELETE", "/config/accounts/acme", &[], "");
    assert_eq!(del.code, 200, "{}", del.body);
    let closed = up.until(Duration::from_secs(10), |e| match e {
        Event::Closed(r) => Some(*r),
        _ => None,
    });
    assert!(
        closed.is_some(),
        "the deleted account's bind was not closed"
    );
    assert!(bind(&gw, "acme", "second2").is_err());
    assert_eq!(call(&gw, "GET", "/config/accounts/acme", &[], "").code, 404);

    // The files hold every change, with their comments, after a restart; the audit file
    // has a line per change.
    let put = call(
        &gw,
        "PUT",
        "/config/accounts/later",
        &[],
        r#"{"password":"later3","allowed_ips":["127.0.0.1","10.0.0.0/8"]}"#,
    );
    assert_eq!(put.code, 201, "{}", put.body);
    gw.kill();
    gw.restart();
    let regfile = std::fs::read_to_string(gw.dir.join("regfile.conf")).unwrap();
    assert!(
        regfile.starts_with("; ESME accounts, kept by hand and by the API\n[demo]\n; the demo account\npassword=demo\n"),
        "{regfile}"
    );
    assert!(
        regfile.contains("[later]\npassword=later3\nallowed_ips=127.0.0.1,10.0.0.0/8\n"),
        "{regfile}"
    );
    assert!(!regfile.contains("acme"), "{regfile}");
    bind(&gw, "later", "later3").expect("an account added over the API binds after a restart");
    let audit = std::fs::read_to_string(gw.dir.join("audit.log")).unwrap();
    assert_eq!(audit.lines().count(), 5, "{audit}");
    assert!(audit.lines().all(|l| l.split('\t').count() == 6), "{audit}");
    assert!(audit.contains("\ttoken\t127.0.0.1:"), "{audit}");
    assert!(audit.contains("DELETE /config/accounts/acme"), "{audit}");
}

#[test]
fn a_client_link_added_over_the_api_binds_to_a_running_upstream_and_carries_messages() {
    let upstream = FakeUpstream::start(true);
    let gw = gateway(Some(ROUTES));
    let link = format!(
        r#"{{"server":"127.0.0.1","port":{},"system_id":"gw","system_password":"pw","bind":"transceiver","reconnect":"100ms,500ms"}}"#,
        upstream.port
    );
    let put = call(&gw, "PUT", "/config/clients/up2", &[], &link);
    assert_eq!(put.code, 201, "{}\n{}", put.body, gw.log());
    gw.wait_bound(1);
    let routes = format!("{ROUTES}^77=smppclient/up2\n");
    let put = call(&gw, "PUT", "/config/routes", &[], &routes);
    assert_eq!(put.code, 200, "{}", put.body);
    let mut e = bind(&gw, "demo", "demo").unwrap();
    let seq = e.submit_sm(sm("4477", "77123", b"through up2", 0));
    assert!(e.response(seq).unwrap().0.is_ok());
    let got = upstream.wait_received(1, Duration::from_secs(10));
    assert_eq!(got, vec![b"through up2".to_vec()], "{}", gw.log());
    let clients = json(&call(&gw, "GET", "/config/clients", &[], ""));
    assert_eq!(clients[0]["name"], "up2");
    assert_eq!(clients[0]["system_password"], "***");
    let ysmpp = std::fs::read_to_string(gw.dir.join("ysmpp.conf")).unwrap();
    assert!(ysmpp.contains("[smpp-client]\nclients=up2\n"), "{ysmpp}");

    // Changed: the running link rebinds with its new settings.
    let mut changed: serde_json::Value = serde_json::from_str(&link).unwrap();
    changed["window"] = "20".into();
    changed["system_password"] = "***".into();
    let put = call(&gw, "PUT", "/config/clients/up2", &[], &changed.to_string());
    assert_eq!(put.code, 200, "{}", put.body);
    assert!(put.body.contains("rebinding"), "{}", put.body);
    gw.wait_bound(2);

    // Explained as `smppgw route` would.
    let x = call(
        &gw,
        "POST",
        "/config/routes/explain",
        &[],
        r#"{"called":"77123","caller":"4477"}"#,
    );
    assert_eq!(x.code, 200, "{}", x.body);
    assert_eq!(json(&x)["target"], "smppclient/up2", "{}", x.body);

    // Deleted: the link unbinds and its section goes.
    let put = call(&gw, "PUT", "/config/routes", &[], ROUTES);
    assert_eq!(put.code, 200, "{}", put.body);
    let del = call(&gw, "DELETE", "/config/clients/up2", &[], "");
    assert_eq!(del.code, 200, "{}", del.body);
    let t0 = Instant::now();
    while upstream
        .state
        .open
        .load(std::sync::atomic::Ordering::SeqCst)
        > 0
        && t0.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        upstream
            .state
            .open
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "{}",
        gw.log()
    );
    let ysmpp = std::fs::read_to_string(gw.dir.join("ysmpp.conf")).unwrap();
    assert!(!ysmpp.contains("[up2]"), "{ysmpp}");
}

#[test]
fn broken_route_files_are_refused_with_every_error_and_the_old_routes_keep_working() {
    let gw = gateway(Some(ROUTES));
    let mut e = bind(&gw, "demo", "demo").unwrap();
    let before = std::fs::read_to_string(gw.dir.join("regexroute.conf")).unwrap();
    let broken = "[default]\n^3[=x\n^2=smppserver/demo\n^5[=y\n";
    let put = call(&gw, "PUT", "/config/routes", &[], broken);
    assert_eq!(put.code, 422, "{}", put.body);
    let errors = json(&put)["errors"].as_array().unwrap().clone();
    let text: Vec<&str> = errors.iter().filter_map(|e| e.as_str()).collect();
    assert!(
        text.iter().any(|e| e.contains("regexroute.conf:2")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|e| e.contains("regexroute.conf:4")),
        "{text:?}"
    );
    assert_eq!(
        std::fs::read_to_string(gw.dir.join("regexroute.conf")).unwrap(),
        before,
        "a refused write changes nothing"
    );
    // The old table still routes: ^99 delivers to demo.
    let seq = e.submit_sm(sm("4477", "99000", b"old routes", 0));
    assert!(e.response(seq).unwrap().0.is_ok());
    let t0 = Instant::now();
    while e.delivered.is_empty() && t0.elapsed() < Duration::from_secs(10) {
        e.poll();
    }
    assert_eq!(e.delivered.len(), 1, "{}", gw.log());

    let good = "; new routes\n[default]\n^98=smppserver/demo\n";
    let put = call(&gw, "PUT", "/config/routes", &[], good);
    assert_eq!(put.code, 200, "{}", put.body);
    let got = call(&gw, "GET", "/config/routes", &[], "");
    assert_eq!(got.body, good);
    let seq = e.submit_sm(sm("4477", "98000", b"new routes", 0));
    assert!(e.response(seq).unwrap().0.is_ok());
    let t0 = Instant::now();
    while e.delivered.len() < 2 && t0.elapsed() < Duration::from_secs(10) {
        e.poll();
    }
    assert_eq!(e.delivered.len(), 2, "^98 delivers now: {}", gw.log());
}

#[test]
fn stale_versions_bad_bodies_and_missing_credentials_are_refused() {
    let gw = gateway(Some(ROUTES));
    let v = call(&gw, "GET", "/config/general", &[], "").etag.unwrap();
    // Two operators read version v; the first write wins, the second is told 409.
    let first = call(
        &gw,
        "PUT",
        "/config/general",
        &[("If-Match", v.clone())],
        r#"{"log_level":"debug"}"#,
    );
    assert_eq!(first.code, 200, "{}", first.body);
    let second = call(
        &gw,
        "PUT",
        "/config/general",
        &[("If-Match", v.clone())],
        r#"{"retries":3}"#,
    );
    assert_eq!(second.code, 409, "{}", second.body);
    let general = json(&call(&gw, "GET", "/config/general", &[], ""));
    assert_eq!(general["log_level"], "debug");
    assert!(general.get("retries").is_none(), "{general}");

    // Eight writers at once, all for the same version: one wins, seven are told 409.
    let v = call(&gw, "GET", "/config/accounts", &[], "").etag.unwrap();
    let codes: Vec<u16> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (gw, v) = (&gw, v.clone());
                s.spawn(move || {
                    let body = format!(r#"{{"password":"w{i}-pass"}}"#);
                    call(
                        gw,
                        "PUT",
                        &format!("/config/accounts/w{i}"),
                        &[("If-Match", v)],
                        &body,
                    )
                    .code
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(codes.iter().filter(|&&c| c == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 409).count(), 7, "{codes:?}");

    // Eight writers at once without If-Match: each edit is made from the files as they are
    // when its turn comes, so none loses another's account.
    let codes: Vec<u16> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let gw = &gw;
                s.spawn(move || {
                    let body = format!(r#"{{"password":"n{i}-pass"}}"#);
                    call(gw, "PUT", &format!("/config/accounts/n{i}"), &[], &body).code
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(codes.iter().all(|&c| c == 201), "{codes:?}");
    let regfile = std::fs::read_to_string(gw.dir.join("regfile.conf")).unwrap();
    for i in 0..8 {
        assert!(
            regfile.contains(&format!("[n{i}]\n")),
            "n{i} lost:\n{regfile}"
        );
    }
    // If-None-Match: * creates only what is not there yet.
    let star = [("If-None-Match", "*".to_string())];
    let a = call(
        &gw,
        "PUT",
        "/config/accounts/n0",
        &star,
        r#"{"password":"other"}"#,
    );
    assert_eq!(a.code, 409, "{}", a.body);

    // Each body changes nothing: (body, status, what the answer names).
    let bad = [
        ("{\"password\": ", 400, "JSON"),
        (r#"{"password":"p","colour":"blue"}"#, 400, "colour"),
        (r#"{"password":"p","window":"many"}"#, 422, "regfile.conf:"),
    ];
    for (body, status, names) in bad {
        let a = call(&gw, "PUT", "/config/accounts/x", &[], body);
        assert_eq!(a.code, status, "{body}: {}", a.body);
        assert!(a.body.contains(names), "{body}: {}", a.body);
    }
    let big = format!("{{\"password\":\"{}\"}}", "p".repeat(2 << 20));
    let a = call(&gw, "PUT", "/config/accounts/x", &[], &big);
    assert_eq!(a.code, 413, "{}", a.body);
    let a = request_with(gw.admin(), "GET", "/config/accounts", &[], b"").unwrap();
    assert_eq!(a.code, 401, "{}", a.body);
    let wrong = [("Authorization", "Bearer nope".to_string())];
    let a = request_with(gw.admin(), "PUT", "/config/accounts/x", &wrong, b"{}").unwrap();
    assert_eq!(a.code, 401, "{}", a.body);
    // /metrics (and /health) stay open for scrapers.
    let a = request_with(gw.admin(), "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(a.code, 200, "{}", a.body);
    assert!(!std::fs::read_to_string(gw.dir.join("regfile.conf"))
        .unwrap()
        .contains("[x]"));

    // A listener is written, and reported as needing a restart.
    let port = common::gateway::free_port();
    let body = format!(r#"{{"addr":"127.0.0.1","port":{port}}}"#);
    let a = call(&gw, "PUT", "/config/listeners/extra", &[], &body);
    assert_eq!(a.code, 201, "{}", a.body);
    assert!(
        json(&a)["restart_needed"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{}",
        a.body
    );
    let listeners = json(&call(&gw, "GET", "/config/listeners", &[], ""));
    assert_eq!(
        listeners.as_array().map(|l| l.len()),
        Some(3),
        "{listeners}"
    );
    let ysmpp = std::fs::read_to_string(gw.dir.join("ysmpp.conf")).unwrap();
    assert!(
        ysmpp.contains(&format!(
            "[listenerserver extra]\naddr=127.0.0.1\nport={port}\n"
        )),
        "{ysmpp}"
    );
}

#[test]
fn the_cli_sets_gets_and_deletes_against_a_running_gateway() {
    let gw = gateway(Some(ROUTES));
    let dir = gw.dir.to_str().unwrap().to_string();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_smppgw"))
            .arg("config")
            .args(args)
            .args(["--config", &dir])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = cli(&["set", "accounts", "cli1", "password=cli-pw", "window=8"]);
    assert!(ok, "{out}");
    assert!(out.contains("account cli1 added"), "{out}");
    bind(&gw, "cli1", "cli-pw").expect("bind");
    let (ok, out) = cli(&["set", "accounts", "cli1", "window=16"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["get", "accounts", "cli1"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("window=16\n") && out.contains("password=***\n"),
        "{out}"
    );
    bind(&gw, "cli1", "cli-pw").expect("set kept the password");
    let (ok, out) = cli(&["set", "accounts", "cli1", "colour=red"]);
    assert!(!ok && out.contains("colour"), "{out}");
    let (ok, out) = cli(&["delete", "accounts", "cli1"]);
    assert!(ok, "{out}");
    assert!(bind(&gw, "cli1", "cli-pw").is_err());
    let admin: SocketAddr = gw.admin();
    let out = Command::new(env!("CARGO_BIN_EXE_smppgw"))
        .args(["config", "get", "accounts", "--admin", &admin.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "no credentials: refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

#[test]
fn over_https_with_basic_auth_curl_changes_an_account() {
    // [admin] sslcontext: HTTPS, verified by curl against the test certificate; basic auth.
    let gw = Gateway::start_with(
        "",
        "[admin]\nuser=ops\npassword=ops-secret\nsslcontext=test_ctx\n",
        REGFILE,
        &[],
    );
    assert!(
        gw.wait_log("admin endpoint on https://", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    let log = gw.log();
    let at = log.rfind("admin endpoint on https://").unwrap() + "admin endpoint on https://".len();
    let addr = log[at..].split_whitespace().next().unwrap().to_string();
    let begin = gw.cert_pem.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end =
        gw.cert_pem.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    let ca = gw.dir.join("ca.pem");
    std::fs::write(&ca, &gw.cert_pem[begin..end]).unwrap();
    let port = addr.rsplit(':').next().unwrap();
    let curl = |args: &[&str]| -> (String, String) {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "-w", "\n%{http_code}", "--cacert"])
            .arg(&ca)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(args)
            .output()
            .expect("curl is installed (.ci/run)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.to_string(), body.to_string())
    };
    let url = format!("https://localhost:{port}/config/accounts/tls1");
    let (code, body) = curl(&[
        "-u",
        "ops:ops-secret",
        "-X",
        "PUT",
        "-d",
        r#"{"password":"tls-pw"}"#,
        &url,
    ]);
    assert_eq!(code, "201", "{body}\n{}", gw.log());
    let (code, body) = curl(&["-u", "ops:wrong", &url]);
    assert_eq!(code, "401", "{body}");
    let (code, body) = curl(&["-u", "ops:ops-secret", &url]);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("\"password\":\"***\""), "{body}");
    bind(&gw, "tls1", "tls-pw").expect("the account added over HTTPS binds");
    // Plain HTTP to the HTTPS endpoint gets nowhere.
    let plain = request_with(addr.parse().unwrap(), "GET", "/health", &[], b"");
    assert!(plain.is_err() || plain.is_ok_and(|a| a.code != 200));
}
