//! Live reload: a route change, a new account and a changed password take effect for the next
//! bind or message without unbinding anyone else (a third-party ESME, Python smpplib, binds
//! with the new account); a broken file is refused with its `file:line` and the old
//! configuration keeps working; a removed account's sessions are unbound; a changed client
//! link rebinds to its new upstream and a new link starts. Reloads come from SIGHUP, from
//! `smppgw reload` and from the admin endpoint's `POST /reload`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::esme::{sm, Esme};
use common::gateway::{free_port, temp_dir, Gateway};
use smppgw::smpp::*;

const REGFILE: &str = "[a]\npassword=pa\n\n[b]\npassword=pb\n";

fn write(gw: &Gateway, name: &str, text: &str) {
    std::fs::write(gw.dir.join(name), text).unwrap();
}

/// `smppgw reload --config DIR`: exit status and what it printed.
fn reload_cli(gw: &Gateway) -> (bool, String) {
    // The test gateways' admin endpoints take a free port: named with --admin.
    let out = Command::new(env!("CARGO_BIN_EXE_smppgw"))
        .args(["reload", "--admin", &gw.admin().to_string()])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn sighup(gw: &Gateway) {
    let ok = Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn submit_ok(e: &mut Esme, to: &str, text: &[u8]) {
    let seq = e.submit_sm(sm("100", to, text, 0));
    let (status, _) = e.response(seq).expect("submit_sm_resp");
    assert_eq!(status, CommandStatus::ROK);
}

/// Polls `e` until `n` deliveries have come or `timeout` passes; then keeps polling briefly
/// to see that no more come.
fn delivered_texts(e: &mut Esme, n: usize, timeout: Duration) -> Vec<String> {
    e.wait_delivered(n, timeout);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(300) {
        e.poll();
    }
    e.delivered
        .iter()
        .filter_map(|p| match &p.body {
            Body::DeliverSm(d) => Some(String::from_utf8_lossy(&d.short_message).into_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn routes_accounts_and_passwords_change_without_unbinding_anyone_else() {
    let peers = common::peers();
    let gw = Gateway::start_with(
        "",
        "",
        REGFILE,
        &[("regexroute.conf", "[default]\n^111.*$=smppserver/a\n")],
    );
    let mut a = Esme::plain(gw.plain);
    a.bind(BindType::Transceiver, "a", "pa").unwrap();
    let mut b = Esme::plain(gw.plain);
    b.bind(BindType::Transmitter, "b", "pb").unwrap();
    submit_ok(&mut b, "1110", b"before the reload");
    assert_eq!(
        delivered_texts(&mut a, 1, Duration::from_secs(10)),
        ["before the reload"]
    );

    let mut t = Esme::tls(gw.tls, &gw.cert_pem);
    t.bind(BindType::Transmitter, "a", "pa").unwrap();

    // A new account c, b's password changed, the route now to c, a new certificate.
    let new_cert =
        smppgw::net::tls::self_signed_pem(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    write(&gw, "certificate.pem", &new_cert);
    write(
        &gw,
        "regfile.conf",
        &format!("{REGFILE}\n[c]\npassword=pc\n").replace("password=pb", "password=pb2"),
    );
    write(&gw, "regexroute.conf", "[default]\n^111.*$=smppserver/c\n");
    let (ok, out) = reload_cli(&gw);
    assert!(ok, "{out}\n{}", gw.log());
    assert!(out.contains("reloaded: configuration version 2"), "{out}");
    assert!(out.contains("account c added"), "{out}");
    assert!(out.contains("account b: password changed"), "{out}");
    assert!(out.contains("regexroute.conf version 2"), "{out}");
    assert!(out.contains("TLS context test_ctx"), "{out}");
    // New handshakes get the new certificate; the session up keeps its own.
    let mut t2 = Esme::tls(gw.tls, &new_cert);
    t2.bind(BindType::Transmitter, "a", "pa").unwrap();
    let mut t3 = Esme::tls(gw.tls, &gw.cert_pem);
    assert!(t3.bind(BindType::Transmitter, "a", "pa").is_err());
    submit_ok(&mut t, "2221", b"over the old handshake");

    // a and b stay bound; b's next message goes to c, held until c binds.
    submit_ok(&mut b, "1111", b"after the reload");
    let rx = Command::new(&peers.python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/smpplib_receiver.py"
        ))
        .args(["127.0.0.1", &gw.plain.port().to_string(), "c", "pc", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = rx.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"text\": \"after the reload\""),
        "smpplib bound as the new account c: {stdout} {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    assert_eq!(
        delivered_texts(&mut a, 1, Duration::from_millis(100)),
        ["before the reload"],
        "the route moved to c: a gets nothing more"
    );
    // b's password: the old one no longer binds, the new one does; b's session stayed.
    let mut b2 = Esme::plain(gw.plain);
    assert!(b2.bind(BindType::Transmitter, "b", "pb").is_err());
    let mut b3 = Esme::plain(gw.plain);
    b3.bind(BindType::Transmitter, "b", "pb2").unwrap();
    submit_ok(&mut b, "2220", b"b is still bound");

    // A broken file (SIGHUP): refused with file:line; the running configuration stays.
    write(
        &gw,
        "regfile.conf",
        &format!("{REGFILE}\n[c]\npassword=pc\n\n[d]\npassword=pd\nmax_binds=many\n"),
    );
    sighup(&gw);
    assert!(
        gw.wait_log("SIGHUP: ", Duration::from_secs(10))
            && gw.wait_log(
                "refused; keeping configuration version 2",
                Duration::from_secs(10)
            ),
        "{}",
        gw.log()
    );
    assert!(gw.log().contains("regfile.conf:"), "{}", gw.log());
    let (ok, out) = reload_cli(&gw);
    assert!(!ok, "{out}");
    assert!(
        out.contains("refused") && out.contains("max_binds"),
        "{out}"
    );
    let mut d = Esme::plain(gw.plain);
    assert!(
        d.bind(BindType::Transmitter, "d", "pd").is_err(),
        "d is not installed"
    );
    let mut b4 = Esme::plain(gw.plain);
    b4.bind(BindType::Transmitter, "b", "pb2").unwrap();

    // b removed (POST /reload on the admin endpoint): its sessions are unbound, a stays.
    write(
        &gw,
        "regfile.conf",
        "[a]\npassword=pa\n\n[c]\npassword=pc\n",
    );
    let admin = gw.admin();
    let answer = smppgw::control::client::request(admin, "POST", "/reload").unwrap();
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert!(answer.body.contains("\"ok\":true"), "{}", answer.body);
    assert!(answer.body.contains("account b removed"), "{}", answer.body);
    for (name, e) in [("b", &mut b), ("b3", &mut b3), ("b4", &mut b4)] {
        let closed = e.until(Duration::from_secs(10), |ev| match ev {
            Event::Closed(_) => Some(()),
            _ => None,
        });
        assert!(closed.is_some(), "{name} was not unbound:\n{}", gw.log());
    }
    let mut b5 = Esme::plain(gw.plain);
    assert!(b5.bind(BindType::Transmitter, "b", "pb2").is_err());
    submit_ok(&mut a, "3330", b"a is still bound");
    let status = smppgw::control::client::request(admin, "GET", "/status").unwrap();
    assert!(
        status.body.contains("\"version\":3"),
        "two reloads installed (two refused): {}",
        status.body
    );
    let get = smppgw::control::client::request(admin, "GET", "/reload").unwrap();
    assert_eq!(get.code, 405);
    // `smppgw status` says the same for people.
    let out = Command::new(env!("CARGO_BIN_EXE_smppgw"))
        .args(["status", "--admin", &admin.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" version 3 "), "{text}");
    assert!(text.contains("account a: 3 binds"), "{text}");
    assert!(text.contains("account c: 0 binds"), "{text}");
    assert!(!text.contains("account b:"), "{text}");
}

#[test]
fn a_changed_link_rebinds_to_its_new_upstream_and_a_new_link_starts() {
    let dir = temp_dir("reload-sims");
    let (rec1, rec2) = (dir.join("one.txt"), dir.join("two.txt"));
    let (p1, p2) = (free_port(), free_port());
    let _sim1 = Gateway::sim_on(p1, &["--record", rec1.to_str().unwrap()]);
    let _sim2 = Gateway::sim_on(p2, &["--record", rec2.to_str().unwrap()]);
    let link = |name: &str, port: u16| {
        format!(
            "\n[{name}]\nserver=127.0.0.1\nport={port}\nsystem_id=gw\nsystem_password=pw\nbind=transmitter\nreconnect=100ms,500ms\n"
        )
    };
    let gw = Gateway::start_with(
        "",
        &format!("[smpp-client]\nclients=up\n{}", link("up", p1)),
        "[a]\npassword=pa\n",
        &[(
            "regexroute.conf",
            "[default]\n^2.*$=smppclient/up\n^3.*$=smppclient/extra\n",
        )],
    );
    gw.wait_bound(1);
    let mut a = Esme::plain(gw.plain);
    a.bind(BindType::Transmitter, "a", "pa").unwrap();
    submit_ok(&mut a, "2000", b"to sim one");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let wait_for = |p: &std::path::Path, text: &str| {
        let t0 = Instant::now();
        while !read(p).contains(text) && t0.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(50));
        }
        read(p).contains(text)
    };
    assert!(wait_for(&rec1, "to sim one"), "{}", gw.log());

    // up now points at sim two; a new link `extra` goes to sim one.
    let ysmpp = std::fs::read_to_string(gw.dir.join("ysmpp.conf")).unwrap();
    let ysmpp = ysmpp
        .replace("clients=up", "clients=up,extra")
        .replace(&format!("port={p1}\n"), &format!("port={p2}\n"))
        + &link("extra", p1);
    write(&gw, "ysmpp.conf", &ysmpp);
    let (ok, out) = reload_cli(&gw);
    assert!(ok, "{out}\n{}", gw.log());
    assert!(
        out.contains("client link up: port changed: rebinding"),
        "{out}"
    );
    assert!(out.contains("client link extra added"), "{out}");
    gw.wait_bound(3);
    submit_ok(&mut a, "2001", b"to sim two");
    submit_ok(&mut a, "3001", b"over the new link");
    assert!(wait_for(&rec2, "to sim two"), "{}", gw.log());
    assert!(wait_for(&rec1, "over the new link"), "{}", gw.log());
    assert!(
        !read(&rec1).contains("to sim two"),
        "the changed link left sim one"
    );
}

#[test]
fn a_link_changed_under_traffic_loses_no_message() {
    let dir = temp_dir("reload-traffic");
    let rec = dir.join("received.txt");
    let port = free_port();
    let _sim = Gateway::sim_on(port, &["--record", rec.to_str().unwrap()]);
    let gw = Gateway::start_with(
        "default_route=up",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={port}\nsystem_id=gw\nsystem_password=pw\nbinds=2\nwindow=32\nreconnect=100ms,500ms\n"
        ),
        "[a]\npassword=pa\n",
        &[],
    );
    gw.wait_bound(2);
    let mut e = Esme::plain(gw.plain);
    e.bind(BindType::Transmitter, "a", "pa").unwrap();
    let n = 3000usize;
    let (mut sent, mut acked) = (0usize, 0usize);
    let mut reloaded = false;
    let t0 = Instant::now();
    while acked < n && t0.elapsed() < Duration::from_secs(60) {
        while sent < n && e.session.in_flight() < 64 {
            let text = format!("r{sent}.");
            e.session
                .send_request(
                    Body::SubmitSm(sm("4477", "3161", text.as_bytes(), 0)),
                    Tlvs::new(),
                    sent as u64,
                    Instant::now(),
                )
                .unwrap();
            sent += 1;
        }
        e.flush();
        e.poll();
        while let Some(ev) = e.events.pop_front() {
            if let Event::Response { pdu, .. } = ev {
                assert_eq!(pdu.command_status, CommandStatus::ROK);
                acked += 1;
            }
        }
        // A third of the way through: the link's window changes; its binds go and come.
        if !reloaded && sent >= n / 3 {
            reloaded = true;
            let ysmpp = std::fs::read_to_string(gw.dir.join("ysmpp.conf")).unwrap();
            write(&gw, "ysmpp.conf", &ysmpp.replace("window=32", "window=16"));
            let r = smppgw::control::client::request(gw.admin(), "POST", "/reload").unwrap();
            assert_eq!(r.code, 200, "{}", r.body);
            assert!(
                r.body.contains("client link up: window changed"),
                "{}",
                r.body
            );
        }
    }
    assert_eq!(acked, n, "every submit answered");
    // Every acknowledged message reaches the upstream, at least once.
    let t1 = Instant::now();
    let (missing, dups) = loop {
        let got = std::fs::read_to_string(&rec).unwrap_or_default();
        let mut seen = std::collections::HashMap::new();
        for line in got.lines() {
            *seen.entry(line.trim().to_string()).or_insert(0usize) += 1;
        }
        let missing = (0..n)
            .filter(|i| !seen.contains_key(&format!("r{i}.")))
            .count();
        let dups: usize = seen.values().map(|c| c - 1).sum();
        if missing == 0 || t1.elapsed() > Duration::from_secs(30) {
            break (missing, dups);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("{n} acknowledged; at the upstream: {missing} missing, {dups} duplicates");
    assert_eq!(missing, 0, "{}", gw.log());
    assert!(
        gw.count_log("): bound") >= 4,
        "the link bound again:\n{}",
        gw.log()
    );
}

#[test]
fn a_new_ca_file_rebinds_its_link_though_its_section_is_the_same() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let make_ca = || {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
    };
    let (ca, other_ca) = (make_ca(), make_ca());
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let dir = temp_dir("reload-ca");
    let server_pem = dir.join("server.pem");
    std::fs::write(
        &server_pem,
        format!("{}{}", leaf.pem(), key.serialize_pem()),
    )
    .unwrap();
    let port = free_port();
    let _sim = Gateway::sim_on(port, &["--tls", server_pem.to_str().unwrap()]);
    let gw = Gateway::start_with(
        "",
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={port}\nsystem_id=gw\nsystem_password=pw\nsslmode=true\nca_file=ca.pem\nsni=localhost\nreconnect=100ms,300ms\n"
        ),
        "[a]\npassword=pa\n",
        &[("ca.pem", &ca.pem())],
    );
    gw.wait_bound(1);
    // Another CA in the same file: the link rebinds and cannot verify the upstream now.
    write(&gw, "ca.pem", &other_ca.pem());
    let (ok, out) = reload_cli(&gw);
    assert!(ok, "{out}");
    assert!(
        out.contains("client link up: its ca_file changed: rebinding"),
        "{out}"
    );
    assert!(
        gw.wait_log("TLS handshake with 127.0.0.1", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    // The right CA again: bound again.
    let bound = gw.count_log("): bound");
    write(&gw, "ca.pem", &ca.pem());
    let (ok, out) = reload_cli(&gw);
    assert!(ok && out.contains("its ca_file changed"), "{out}");
    gw.wait_bound(bound + 1);
    // Nothing changed: nothing rebinds.
    let (ok, out) = reload_cli(&gw);
    assert!(ok && !out.contains("client link up"), "{out}");
}
