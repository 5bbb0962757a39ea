//! Configuration: the embedded default loads, the seed's examples load, and every error
//! message names its file, line and key.

use std::time::Duration;

use smppgw::config::{
    default, Backup, Config, ConfigFiles, ReceiptPolicy, Shards, SyncMode, Yatesmsc,
};
use smppgw::text::Charset;

fn parse(ysmpp: &str, regfile: &str, openssl: &str) -> Result<Config, Vec<String>> {
    parse_files(ConfigFiles {
        ysmpp: Some(ysmpp),
        regfile: Some(regfile),
        openssl: Some(openssl),
        ..ConfigFiles::default()
    })
}

fn parse_files(files: ConfigFiles<'_>) -> Result<Config, Vec<String>> {
    Config::parse(&files).map_err(|errs| errs.iter().map(|e| e.to_string()).collect())
}

fn only_error(ysmpp: &str, regfile: &str, openssl: &str) -> String {
    let errs = parse(ysmpp, regfile, openssl).expect_err("should fail");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.into_iter().next().unwrap()
}

const LISTENER: &str = "[listenerserver a]\naddr=127.0.0.1\nport=2775\n";

#[test]
fn the_embedded_default_loads() {
    let c = parse(default::YSMPP, default::REGFILE, default::OPENSSL).unwrap();
    assert_eq!(c.general.shards, Shards::Auto);
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[0].socket_addr().to_string(), "127.0.0.1:2775");
    assert_eq!(c.listeners[1].socket_addr().to_string(), "127.0.0.1:3550");
    assert_eq!(c.listeners[1].sslcontext.as_deref(), Some("self_signed"));
    assert_eq!(c.account(b"demo").unwrap().password, "demo");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn the_seeds_server_examples_load() {
    let ysmpp = "; server configuration
[smpp-server]
enable=yes
default-service-type=sms

[listenerserver desired-name]
enable=yes
addr=10.0.0.1
port=2775

[listenerserver second-desired-name]
addr=10.0.0.1
port=2776

sslcontext=self_signed
";
    let openssl =
        "[general]\n\n[self_signed]\ndomains=yourcompany-smsc01\ncertificate=certificate.pem\n";
    let regfile =
        "[client1_system_id]\npassword=client1\n\n[client2_system_id]\npassword=client2\n";
    let c = parse(ysmpp, regfile, openssl).unwrap();
    assert_eq!(c.listeners[1].sslcontext.as_deref(), Some("self_signed"));
    assert_eq!(c.server.default_service_type, "sms");
    assert_eq!(c.accounts.len(), 2);
    assert_eq!(
        c.tls.len(),
        1,
        "[general] of openssl.conf is not a TLS context"
    );
    // The seed's system_ids are 17 characters, over SMPP's C16: loaded, with a warning.
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w[0].starts_with("regfile.conf:1: system_id [client1_system_id] is longer than 15"),
        "{w:?}"
    );
}

#[test]
fn unknown_keys_and_sections_warn_and_do_not_fail() {
    let c = parse(
        &format!("[general]\nfancy=1\n[mystery]\nclients=a\n{LISTENER}"),
        "[u]\npassword=p\ncolour=red\n",
        "",
    )
    .unwrap();
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.contains(&"ysmpp.conf:2: fancy: unknown key in [general], ignored".to_string()),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|x| x.starts_with("ysmpp.conf:3: section [mystery] is not used")),
        "{w:?}"
    );
    assert!(
        w.contains(&"regfile.conf:3: colour: unknown key in [u], ignored".to_string()),
        "{w:?}"
    );
}

#[test]
fn every_error_names_file_line_and_key() {
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("bad port", "[listenerserver a]\naddr=127.0.0.1\nport=27x5\n".into(), "", "ysmpp.conf:3: port: \"27x5\" is not a port number (1-65535)"),
        ("port 0", "[listenerserver a]\nport=0\n".into(), "", "ysmpp.conf:2: port: \"0\" is not a port number (1-65535)"),
        ("missing port", "[listenerserver a]\naddr=127.0.0.1\n".into(), "", "ysmpp.conf:1: port: [listenerserver a] needs port=NUMBER"),
        ("bad addr", "[listenerserver a]\naddr=localhost\nport=1\n".into(), "", "ysmpp.conf:2: addr: \"localhost\" is not an IP address"),
        ("bad enable", "[listenerserver a]\nenable=perhaps\nport=1\n".into(), "", "ysmpp.conf:2: enable: \"perhaps\" is not a boolean (yes/no, true/false, on/off, 1/0)"),
        ("nameless listener", "[listenerserver]\nport=1\n".into(), "", "ysmpp.conf:1: listener section needs a name: [listenerserver NAME]"),
        ("bad shards", format!("[general]\nshards=many\n{LISTENER}"), "", "ysmpp.conf:2: shards: \"many\" must be auto or a number of shards (1-1024)"),
        ("bad timer", format!("[general]\nresponse_timeout=10x\n{LISTENER}"), "", "ysmpp.conf:2: response_timeout: \"10x\": unknown unit \"x\" (use us, ms, s, m or h)"),
        ("zero timer", format!("[general]\nsession_init_timeout=0\n{LISTENER}"), "", "ysmpp.conf:2: session_init_timeout: \"0\" must be more than 0"),
        ("pdu size", format!("[general]\nmax_pdu_size=10\n{LISTENER}"), "", "ysmpp.conf:2: max_pdu_size: 10 is out of range (64 to 16m)"),
        ("window 0", format!("[general]\nwindow=0\n{LISTENER}"), "", "ysmpp.conf:2: window: \"0\" must be greater than 0"),
        ("admin", format!("[general]\nadmin=nowhere\n{LISTENER}"), "", "ysmpp.conf:2: admin: \"nowhere\" is not ADDRESS:PORT or off"),
        ("open admin", format!("[general]\nadmin=0.0.0.0:9775\n{LISTENER}"), "", "ysmpp.conf:2: admin: 0.0.0.0:9775 is beyond loopback: set [admin] token= (or user= and password=) so that the endpoint asks who calls"),
        ("short token", format!("[admin]\ntoken=abc\n{LISTENER}"), "", "ysmpp.conf:2: token: must be at least 16 characters"),
        ("user alone", format!("[admin]\nuser=ops\n{LISTENER}"), "", "ysmpp.conf:2: user: user and password go together"),
        ("log level", format!("[general]\nlog_level=loud\n{LISTENER}"), "", "ysmpp.conf:2: log_level: \"loud\" is not error, warn, info, debug, trace or off"),
        ("no value", format!("[general]\nwindow\n{LISTENER}"), "", "ysmpp.conf:2: window: has no value (write key=value)"),
        ("service type", format!("[smpp-server]\ndefault-service-type=toolong\n{LISTENER}"), "", "ysmpp.conf:2: default-service-type: \"toolong\" is longer than service_type allows (5)"),
        ("unknown sslcontext", "[listenerserver a]\nport=1\nsslcontext=nope\n".into(), "", "ysmpp.conf:2: sslcontext: \"nope\" is not a section of openssl.conf (known: none)"),
        ("duplicate listener", format!("{LISTENER}{LISTENER}"), "", "ysmpp.conf:4: listener \"a\" is defined twice"),
        ("same port", format!("{LISTENER}[listenerserver b]\naddr=127.0.0.1\nport=2775\n"), "", "ysmpp.conf:6: port: 127.0.0.1:2775 is already used by listener \"a\""),
    ];
    for (name, ysmpp, openssl, expected) in cases {
        assert_eq!(only_error(&ysmpp, "", openssl), expected, "{name}");
    }
}

#[test]
fn regfile_and_openssl_errors_name_their_file() {
    let cases = [
        ("[u]\n", "", "regfile.conf:1: password: account [u] needs password=..."),
        ("[u]\npassword=123456789\n", "", "regfile.conf:2: password: is longer than 8 characters (SMPP C9): no ESME could send it"),
        ("[u]\npassword=p\nrate=-1\n", "", "regfile.conf:3: rate: \"-1\" must be 0 (no limit) or a positive rate"),
        ("[u]\npassword=p\nmax_binds=x\n", "", "regfile.conf:3: max_binds: \"x\" is not a number of binds"),
        ("[u]\npassword=p\nallowed_ips=10.0.0.0/40\n", "", "regfile.conf:3: allowed_ips: \"10.0.0.0/40\": prefix must be 0-32"),
        ("[u]\npassword=p\n[u]\npassword=q\n", "", "regfile.conf:3: account [u] is defined twice"),
        ("", "[ctx]\ndomains=a\n", "openssl.conf:1: certificate: [ctx] needs certificate=FILE.pem"),
        ("", "[ctx]\ncertificate=\n", "openssl.conf:2: certificate: is empty"),
    ];
    for (regfile, openssl, expected) in cases {
        assert_eq!(only_error(LISTENER, regfile, openssl), expected);
    }
}

#[test]
fn all_errors_of_all_files_come_at_once() {
    let errs = parse(
        "[general]\nwindow=0\n[listenerserver a]\nport=x\n",
        "[u]\n",
        "[c]\n",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn missing_ysmpp_is_an_error_and_missing_regfile_a_warning() {
    let e = Config::parse(&ConfigFiles::default()).unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "ysmpp.conf: file not found; it is required (listeners and [general])"
    );
    let c = Config::parse(&ConfigFiles {
        ysmpp: Some(LISTENER),
        ..ConfigFiles::default()
    })
    .unwrap();
    assert_eq!(
        c.warnings[0].to_string(),
        "regfile.conf: file not found: no ESME can bind"
    );
}

#[test]
fn account_limits_and_allowed_ips() {
    let c = parse(
        LISTENER,
        "[u]\npassword=p\nmax_binds=2\nwindow=5\nrate=100.5\nallowed_ips=10.0.0.0/8, 192.168.1.7\n",
        "",
    )
    .unwrap();
    let a = c.account(b"u").unwrap();
    assert_eq!((a.max_binds, a.window, a.rate), (2, 5, 100.5));
    assert!(a.ip_allowed("10.9.8.7".parse().unwrap()));
    assert!(a.ip_allowed("192.168.1.7".parse().unwrap()));
    assert!(!a.ip_allowed("192.168.1.8".parse().unwrap()));
}

const CLIENT: &str = "[smpp-client]\nclients=up1\n\n[up1]\nenabled=true\nserver=10.1.1.1\nport=2775\nsystem_id=yatesmsc\nsystem_password=myPWD1234\n";

#[test]
fn the_seeds_client_sections_load() {
    let ysmpp = format!(
        "{LISTENER}
; client configuration
[smpp-client]
clients=section-name,with_ssl

[section-name]
enabled=true
server=10.1.1.1
port=2775
system_id=yatesmsc
system_password=myPWD1234

[with_ssl]
enabled=true
server=10.2.2.2
port=2776
system_id=yatesmsc-tls
system_password=myPWD5678
sslmode=true
verify=no
"
    );
    let c = parse(&ysmpp, "", "").unwrap();
    assert_eq!(c.clients.len(), 2);
    let a = &c.clients[0];
    assert_eq!(
        (
            a.name.as_str(),
            a.server.as_str(),
            a.port,
            a.system_id.as_str()
        ),
        ("section-name", "10.1.1.1", 2775, "yatesmsc")
    );
    assert_eq!(a.bind, smppgw::config::LinkBind::Transceiver);
    assert!(!a.tls);
    assert!(c.clients[1].tls && !c.clients[1].verify);
}

#[test]
fn client_options_parse() {
    let ysmpp = format!(
        "{LISTENER}{CLIENT}bind=transmitter+receiver\nbinds=4\nwindow=50\nrate=100\ninterface_version=5.0\nreconnect=500ms,30s\ncoding=latin1\nmsgid_format=hex/decimal\nenquire_link=0\n[general]\ndefault_route=smppclient/up1\n"
    );
    let c = parse(&ysmpp, "", "").unwrap();
    let l = &c.clients[0];
    assert_eq!(l.bind, smppgw::config::LinkBind::Pair);
    assert_eq!(
        (l.binds, l.window, l.rate, l.interface_version),
        (4, 50, 100.0, 0x50)
    );
    assert_eq!(
        (l.reconnect_min.as_millis(), l.reconnect_max.as_secs()),
        (500, 30)
    );
    assert_eq!(l.coding, smppgw::text::Charset::Latin1);
    assert_eq!(l.msgid.resp, smppgw::smpp::receipt::IdRadix::Hex);
    assert_eq!(l.msgid.receipt, smppgw::smpp::receipt::IdRadix::Decimal);
    assert_eq!(l.enquire_link, None);
    assert_eq!(c.general.default_route.as_deref(), Some("up1"));
}

#[test]
fn client_errors_name_file_line_and_key() {
    let base = format!("{LISTENER}{CLIENT}");
    let cases: Vec<(String, &str)> = vec![
        (format!("{base}bind=sideways\n"), "ysmpp.conf:13: bind: \"sideways\" is not transmitter, receiver, transceiver or transmitter+receiver"),
        (format!("{base}interface_version=0x35\n"), "ysmpp.conf:13: interface_version: \"0x35\" must be 0x33, 0x34 or 0x50 (3.3, 3.4 or 5.0)"),
        (format!("{base}reconnect=10s,1s\n"), "ysmpp.conf:13: reconnect: \"10s,1s\": MIN must be more than 0 and MAX at least MIN"),
        (format!("{base}msgid_format=octal\n"), "ysmpp.conf:13: msgid_format: \"octal\" is not hex, decimal or text"),
        (format!("{base}coding=ebcdic\n"), "ysmpp.conf:13: coding: \"ebcdic\" is not gsm7, gsm7-packed, ascii, latin1, ucs2 or utf8"),
        (format!("{base}binds=0\n"), "ysmpp.conf:13: binds: \"0\" must be greater than 0"),
        (format!("{base}sslmode=true\n"), "ysmpp.conf:7: ca_file: client [up1] uses TLS with verify=yes: name the CA certificates with ca_file=FILE.pem (or verify=no)"),
        (format!("{LISTENER}[smpp-client]\nclients=up1\n[up1]\nserver=h\n"), "ysmpp.conf:6: system_id: client [up1] needs system_id=ID"),
        (format!("{LISTENER}[smpp-client]\nclients=up1,ghost\n[up1]\nserver=h\nsystem_id=a\n"), "ysmpp.conf:5: clients: \"ghost\" has no [ghost] section"),
        (format!("{LISTENER}{CLIENT}system_id=averyveryverylongid\n"), "ysmpp.conf:13: system_id: \"averyveryverylongid\" must be 1-16 characters"),
        (format!("{base}[general]\ndefault_route=smppclient/other\n"), "ysmpp.conf:14: default_route: \"other\" is not an enabled client in [smpp-client] clients="),
        (format!("{base}[general]\ndefault_route=smppserver/x\n"), "ysmpp.conf:14: default_route: \"smppserver/x\": only smppclient/ID can be a default route (routes come from regexroute.conf)"),
    ];
    for (ysmpp, expected) in cases {
        assert_eq!(only_error(&ysmpp, "", ""), expected);
    }
}

#[test]
fn a_client_section_not_listed_is_a_warning_with_a_hint() {
    let c = parse(&format!("{LISTENER}[up9]\nserver=h\nsystem_id=a\n"), "", "").unwrap();
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter().any(|w| w.contains(
            "[up9] is not used, ignored (a client section? list it in [smpp-client] clients=)"
        )),
        "{w:?}"
    );
}

#[test]
fn store_and_queue_keys_of_general_default_to_batch_commits_and_bounded_queues() {
    let g = parse(LISTENER, "", "").unwrap().general;
    assert_eq!(g.spool_dir, "spool");
    assert_eq!(g.sync, SyncMode::Batch);
    assert_eq!(g.sync_window, Duration::ZERO);
    assert_eq!(g.segment_size, 64 << 20);
    assert_eq!(g.memory_messages, 1_000_000);
    assert_eq!(g.queue_limit, 100_000);
}

#[test]
fn store_and_queue_keys_of_general_parse() {
    let g = parse(
        &format!("[general]\nspool_dir=/var/spool/smppgw\nsync=none\nsync_window=200us\nsegment_size=256M\nmemory_messages=1000\nqueue_limit=1\n{LISTENER}"),
        "",
        "",
    )
    .unwrap()
    .general;
    assert_eq!(g.spool_dir, "/var/spool/smppgw");
    assert_eq!(g.sync, SyncMode::None);
    assert_eq!(g.sync_window, Duration::from_micros(200));
    assert_eq!(g.segment_size, 256 << 20);
    assert_eq!((g.memory_messages, g.queue_limit), (1000, 1));
    let g = parse(
        &format!("[general]\nsync=Batch\nsync_window=2ms\nsegment_size=1g\n{LISTENER}"),
        "",
        "",
    )
    .unwrap()
    .general;
    assert_eq!(
        (g.sync, g.sync_window, g.segment_size),
        (SyncMode::Batch, Duration::from_millis(2), 1 << 30)
    );
}

#[test]
fn store_and_queue_errors_name_file_line_and_key() {
    let cases = [
        ("sync=always", "ysmpp.conf:2: sync: \"always\" is not batch or none"),
        ("sync_window=5x", "ysmpp.conf:2: sync_window: \"5x\": unknown unit \"x\" (use us, ms, s, m or h)"),
        ("segment_size=512k", "ysmpp.conf:2: segment_size: \"512k\" is out of range (1M to 1G)"),
        ("segment_size=2G", "ysmpp.conf:2: segment_size: \"2G\" is out of range (1M to 1G)"),
        ("segment_size=big", "ysmpp.conf:2: segment_size: \"big\" is not a size in octets (for example 4096, 64k, 1m)"),
        ("memory_messages=99", "ysmpp.conf:2: memory_messages: \"99\" must be at least 100"),
        ("memory_messages=lots", "ysmpp.conf:2: memory_messages: \"lots\" is not a number of messages"),
        ("queue_limit=0", "ysmpp.conf:2: queue_limit: \"0\" must be greater than 0"),
    ];
    for (line, expected) in cases {
        assert_eq!(
            only_error(&format!("[general]\n{line}\n{LISTENER}"), "", ""),
            expected
        );
    }
}

#[test]
fn the_cdr_section_names_its_file_format_and_rotation() {
    let c = parse(
        &format!(
            "[cdr]\nfile=cdr/gw.cdr\nformat=${{billid}};${{leg}}\nrotate_size=10M\n{LISTENER}"
        ),
        "",
        "",
    )
    .unwrap();
    assert_eq!(c.cdr.file.as_deref(), Some("cdr/gw.cdr"));
    assert_eq!(c.cdr.rotate_size, 10 << 20);
    assert_eq!(
        c.cdr.template,
        smppgw::cdr::Template::parse("${billid};${leg}").unwrap()
    );
    // Without a [cdr] file: no CDRs.
    assert_eq!(parse(LISTENER, "", "").unwrap().cdr.file, None);
    let cases = [
        (
            "format=${billid}\t${nope}",
            "ysmpp.conf:2: format: ${nope} is not a CDR column",
        ),
        (
            "format=${billid",
            "ysmpp.conf:2: format: \"${billid\" is not closed with }",
        ),
        (
            "rotate_size=100",
            "ysmpp.conf:2: rotate_size: \"100\" must be 0 or at least 4K",
        ),
    ];
    for (line, expected) in cases {
        let got = only_error(&format!("[cdr]\n{line}\n{LISTENER}"), "", "");
        assert!(got.starts_with(expected), "{got}");
    }
}

#[test]
fn an_account_says_what_data_coding_0_means_and_how_long_messages_are_receipted() {
    let c = parse(
        LISTENER,
        "[plain]\npassword=p\n[fancy]\npassword=p\ncoding=utf8\nreceipts=message\n",
        "",
    )
    .unwrap();
    let plain = c.account(b"plain").unwrap();
    assert_eq!(plain.coding, Charset::Gsm7, "a link's default");
    assert_eq!(plain.receipts, ReceiptPolicy::PerPart);
    let fancy = c.account(b"fancy").unwrap();
    assert_eq!(
        (fancy.coding, fancy.receipts),
        (Charset::Utf8, ReceiptPolicy::Message)
    );
}

#[test]
fn account_coding_and_receipts_errors_name_file_line_and_key() {
    let cases = [
        ("coding=ebcdic", "regfile.conf:3: coding: \"ebcdic\" is not gsm7, gsm7-packed, ascii, latin1, ucs2 or utf8"),
        ("receipts=whole", "regfile.conf:3: receipts: \"whole\" is not per-part or message"),
    ];
    for (line, expected) in cases {
        assert_eq!(
            only_error(LISTENER, &format!("[u]\npassword=p\n{line}\n"), ""),
            expected
        );
    }
}

fn parse_with_yatesmsc(ysmpp: &str, regfile: &str, yatesmsc: &str) -> Result<Config, Vec<String>> {
    parse_files(ConfigFiles {
        ysmpp: Some(ysmpp),
        regfile: Some(regfile),
        yatesmsc: Some(yatesmsc),
        ..ConfigFiles::default()
    })
}

#[test]
fn without_yatesmsc_conf_there_is_no_backup_and_every_key_has_its_default() {
    let c = parse(LISTENER, "", "").unwrap();
    assert!(
        c.warnings.is_empty(),
        "a missing yatesmsc.conf does not warn: {:?}",
        c.warnings
    );
    let y = &c.yatesmsc;
    assert_eq!(y.backup, None);
    assert!(!y.smppgw_trusted);
    assert_eq!(y.smppgw_address, None);
    assert_eq!(y.retries, 5);
    assert_eq!(
        (y.retry_interval_min, y.retry_interval_max),
        (Duration::from_secs(1), Duration::from_secs(300))
    );
    assert_eq!(y.validity, Duration::from_secs(48 * 3600));
    assert_eq!(y.max_validity, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(*y, Yatesmsc::default());
    let empty = parse_with_yatesmsc(LISTENER, "", "").unwrap();
    assert_eq!(
        (empty.yatesmsc, empty.warnings),
        (Yatesmsc::default(), vec![])
    );
}

const SEED_YATESMSC: &str = "[general]

; system_id from SMPP client connection for backup gateway
backup_smpp_gw=OUTBOUND_SYS_ID
; or
;backup_smpp_gw=smppclient/OUTBOUND_SYS_ID
; or
;backup_smpp_gw=smppserver/INBOUND_SYS_ID

; trust the SMPP GW enough to act on the permanent errors
;smppgw_trusted=true

; address to use in CDR if resolving SMPP GW name fails
;smppgw_address=foo.example.com:9000
";

#[test]
fn the_seeds_three_backup_smpp_gw_forms_load() {
    let ysmpp = format!("{LISTENER}[smpp-client]\nclients=OUTBOUND_SYS_ID\n[OUTBOUND_SYS_ID]\nserver=10.1.1.1\nsystem_id=yatesmsc\n");
    let regfile = "[INBOUND_SYS_ID]\npassword=secret\n";
    let load = |yatesmsc: &str| {
        let c = parse_with_yatesmsc(&ysmpp, regfile, yatesmsc).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        c.yatesmsc
    };
    let y = load(SEED_YATESMSC);
    assert_eq!(
        y.backup,
        Some(Backup::Client("OUTBOUND_SYS_ID".into())),
        "a bare ID is a client link"
    );
    assert!(!y.smppgw_trusted);
    let y =
        load(&SEED_YATESMSC.replace(";backup_smpp_gw=smppclient/", "backup_smpp_gw=smppclient/"));
    assert_eq!(y.backup, Some(Backup::Client("OUTBOUND_SYS_ID".into())));
    let y = load(
        &SEED_YATESMSC
            .replace(";backup_smpp_gw=smppserver/", "backup_smpp_gw=smppserver/")
            .replace(";smppgw_", "smppgw_"),
    );
    assert_eq!(y.backup, Some(Backup::Server("INBOUND_SYS_ID".into())));
    assert_eq!(
        y.backup.as_ref().map(|b| b.to_string()).as_deref(),
        Some("smppserver/INBOUND_SYS_ID")
    );
    assert!(y.smppgw_trusted);
    assert_eq!(y.smppgw_address.as_deref(), Some("foo.example.com:9000"));
}

#[test]
fn retries_and_validity_parse() {
    let y = parse_with_yatesmsc(
        LISTENER,
        "",
        "[general]\nbackup_smpp_gw=\nsmppgw_address=[2001:db8::1]:9000\nretries=0\nretry_interval=2s,10m\nvalidity=12h\nmax_validity=2d\n",
    )
    .unwrap()
    .yatesmsc;
    assert_eq!(y.backup, None, "an empty backup_smpp_gw is no backup");
    assert_eq!(y.smppgw_address.as_deref(), Some("[2001:db8::1]:9000"));
    assert_eq!(y.retries, 0);
    assert_eq!(
        (y.retry_interval_min, y.retry_interval_max),
        (Duration::from_secs(2), Duration::from_secs(600))
    );
    assert_eq!(
        (y.validity, y.max_validity),
        (
            Duration::from_secs(12 * 3600),
            Duration::from_secs(2 * 86_400)
        )
    );
    let y = parse_with_yatesmsc(LISTENER, "", "[general]\nmax_validity=1d\n")
        .unwrap()
        .yatesmsc;
    assert_eq!(
        y.validity,
        Duration::from_secs(86_400),
        "the default validity is cut to max_validity"
    );
}

#[test]
fn yatesmsc_errors_name_file_line_and_key() {
    let ysmpp = format!("{LISTENER}{CLIENT}[off]\nenabled=no\nserver=h\nsystem_id=x\n")
        .replace("clients=up1", "clients=up1,off");
    let cases = [
        ("backup_smpp_gw=ghost", "yatesmsc.conf:2: backup_smpp_gw: \"ghost\" is not an enabled client in ysmpp.conf [smpp-client] clients="),
        ("backup_smpp_gw=smppclient/off", "yatesmsc.conf:2: backup_smpp_gw: \"off\" is not an enabled client in ysmpp.conf [smpp-client] clients="),
        ("backup_smpp_gw=smppserver/nobody", "yatesmsc.conf:2: backup_smpp_gw: \"nobody\" is not an account in regfile.conf"),
        ("backup_smpp_gw=smsc_map/up1", "yatesmsc.conf:2: backup_smpp_gw: \"smsc_map/up1\" is not smppclient/ID or smppserver/ID (a bare ID is smppclient/ID)"),
        ("smppgw_trusted=maybe", "yatesmsc.conf:2: smppgw_trusted: \"maybe\" is not a boolean (yes/no, true/false, on/off, 1/0)"),
        ("smppgw_address=foo.example.com", "yatesmsc.conf:2: smppgw_address: \"foo.example.com\" is not HOST:PORT (for example foo.example.com:9000)"),
        ("smppgw_address=", "yatesmsc.conf:2: smppgw_address: \"\" is not HOST:PORT (for example foo.example.com:9000)"),
        ("smppgw_address=foo:99999", "yatesmsc.conf:2: smppgw_address: \"foo:99999\": \"99999\" is not a port number (1-65535)"),
        ("retries=1001", "yatesmsc.conf:2: retries: \"1001\" must be a number of retries (0-1000)"),
        ("retry_interval=5m,1s", "yatesmsc.conf:2: retry_interval: \"5m,1s\": MIN must be more than 0 and MAX at least MIN"),
        ("retry_interval=1s,2s,3s", "yatesmsc.conf:2: retry_interval: \"1s,2s,3s\": write MIN,MAX (for example 1s,60s)"),
        ("validity=0", "yatesmsc.conf:2: validity: \"0\" must be more than 0"),
        ("validity=8d", "yatesmsc.conf:2: validity: \"8d\" is longer than max_validity (7d)"),
        ("max_validity=1w", "yatesmsc.conf:2: max_validity: \"1w\": unknown unit \"w\" (use us, ms, s, m or h)"),
    ];
    for (line, expected) in cases {
        let errs =
            parse_with_yatesmsc(&ysmpp, "[u]\npassword=p\n", &format!("[general]\n{line}\n"))
                .expect_err(line);
        assert_eq!(errs, vec![expected.to_string()], "{line}");
    }
    // A max_validity in error is not compared with validity as well.
    let errs =
        parse_with_yatesmsc(LISTENER, "", "[general]\nvalidity=30d\nmax_validity=x\n").unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
}

#[test]
fn yatesmsc_conf_keys_and_sections_for_yatesmsc_itself_warn_and_load() {
    let c = parse_with_yatesmsc(
        LISTENER,
        "",
        "stray=1\n[general]\nretries=3\nsms_dbg=on\n[map]\nsccp=local\n",
    )
    .unwrap();
    assert_eq!(c.yatesmsc.retries, 3);
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            "yatesmsc.conf:1: stray: outside any [section], ignored",
            "yatesmsc.conf:4: sms_dbg: unknown key in [general], ignored",
            "yatesmsc.conf:5: section [map] is not used, ignored",
        ]
    );
}

#[test]
fn the_check_summary_shows_store_queues_backup_retries_and_validity() {
    let defaults = parse(LISTENER, "[u]\npassword=p\n", "").unwrap().summary();
    for line in [
        "store: spool spool, sync batch (each commit as soon as the previous fdatasync ends), segments of 64M",
        "queues per shard: 1000000 message bodies in memory, 100000 messages waiting per target (then ESME_RMSGQFUL)",
        "  u: max binds unlimited, window 64, rate unlimited, from anywhere, coding gsm7, receipts per-part",
        "backup gateway: none",
        "retries: 5 after temporary failures (unless the route sets retries), 1s doubling up to 5m",
        "validity: 2d when the ESME gives none, at most 7d",
    ] {
        assert!(defaults.lines().any(|l| l == line), "{line:?} not in\n{defaults}");
    }
    let set = parse_with_yatesmsc(
        &format!("[general]\nsync=none\nsegment_size=1G\nqueue_limit=50\n{LISTENER}{CLIENT}"),
        "",
        "[general]\nbackup_smpp_gw=up1\nsmppgw_trusted=yes\nsmppgw_address=gw.example.com:2775\nretries=8\nretry_interval=500ms,1h\nvalidity=6h\n",
    )
    .unwrap()
    .summary();
    for line in [
        "store: spool spool, sync none (NO fdatasync: acknowledged messages can be lost in a crash), segments of 1G",
        "queues per shard: 1000000 message bodies in memory, 50 messages waiting per target (then ESME_RMSGQFUL)",
        "backup gateway: smppclient/up1, trusted (its permanent errors are final), CDR address gw.example.com:2775",
        "retries: 8 after temporary failures (unless the route sets retries), 500ms doubling up to 1h",
        "validity: 6h when the ESME gives none, at most 7d",
    ] {
        assert!(set.lines().any(|l| l == line), "{line:?} not in\n{set}");
    }
    let window = parse(&format!("[general]\nsync_window=2ms\n{LISTENER}"), "", "")
        .unwrap()
        .summary();
    assert!(
        window.contains("sync batch (records gathered for 2ms)"),
        "{window}"
    );
}

#[test]
fn the_tuning_examples_load() {
    for dir in ["small-node", "large-node", "tls-edge"] {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tuning/examples")
            .join(dir);
        let read = |name: &str| std::fs::read_to_string(base.join(name)).ok();
        let (ysmpp, regfile, openssl) = (
            read("ysmpp.conf"),
            read("regfile.conf"),
            read("openssl.conf"),
        );
        let cfg = smppgw::config::Config::parse(&smppgw::config::model::ConfigFiles {
            ysmpp: ysmpp.as_deref(),
            regfile: regfile.as_deref(),
            openssl: openssl.as_deref(),
            yatesmsc: None,
        })
        .unwrap_or_else(|e| panic!("{dir}: {e:?}"));
        assert!(cfg.warnings.is_empty(), "{dir}: {:?}", cfg.warnings);
    }
}

#[test]
fn http_sections_name_their_bad_values() {
    let e = only_error(&format!("{LISTENER}[http]\nenable=yes\nport=0\n"), "", "");
    assert!(
        e.contains("ysmpp.conf:") && e.contains("port") && e.contains("1-65535"),
        "{e}"
    );
    let e = only_error(&format!("{LISTENER}[http-target]\ntimeout=0s\n"), "", "");
    assert!(e.contains("timeout"), "{e}");
    let e = only_error(&format!("{LISTENER}[http-target]\nurl=ftp://x/\n"), "", "");
    assert!(e.contains("url"), "{e}");
    let e = only_error(
        &format!("{LISTENER}[http]\nenable=yes\nsslcontext=nope\n"),
        "",
        "",
    );
    assert!(e.contains("sslcontext") && e.contains("nope"), "{e}");
    let ok = parse(
        &format!("{LISTENER}[http]\nenable=yes\nport=8080\n[http-target]\nurl=http://127.0.0.1:9/x\ntimeout=2s\n"),
        "",
        "",
    )
    .unwrap();
    assert_eq!(ok.http.unwrap().port, 8080);
    assert_eq!(ok.http_target.timeout, Duration::from_secs(2));
}
