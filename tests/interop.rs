//! Third-party ESMEs against the running gateway: the Python `smpplib` package (plain TCP)
//! and the npm `smpp` package (plain and TLS). Each binds as a transceiver, sends GSM 7-bit,
//! UCS2 and a long message with a UDH, and must get an acknowledgement and a receipt for
//! every part, with the receipt naming the acknowledged message id.

mod common;

use std::process::Command;

use common::check_peer as check;
use common::gateway::Gateway;

const REGFILE: &str = "[demo]\npassword=demo\n";

#[test]
fn smpplib_sends_gsm7_ucs2_and_a_long_message_and_gets_receipts() {
    let peers = common::peers();
    let gw = Gateway::start("", REGFILE);
    let out = Command::new(&peers.python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/smpplib_client.py"
        ))
        .args(["127.0.0.1", &gw.plain.port().to_string(), "demo", "demo"])
        .output()
        .unwrap();
    check("smpplib", &out);
    // The UCS2 message arrived as UCS2 and the long one as UDH parts.
    let log = gw.log();
    assert!(log.contains("demo bound as transceiver"), "{log}");
}

#[test]
fn node_smpp_over_plain_and_tls_gets_receipts() {
    let peers = common::peers();
    let gw = Gateway::start("", REGFILE);
    for url in [
        format!("smpp://127.0.0.1:{}", gw.plain.port()),
        format!("ssmpp://127.0.0.1:{}", gw.tls.port()),
    ] {
        let out = Command::new("node")
            .env("NODE_PATH", peers.node_dir.join("node_modules"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/peers/node_client.js"
            ))
            .args([url.as_str(), "demo", "demo"])
            .output()
            .unwrap();
        check(&url, &out);
    }
}

#[test]
fn the_embedded_default_serves_demo_on_2775_and_3550() {
    let peers = common::peers();
    let mut gw = Gateway::embedded_default();
    assert!(
        gw.wait_log(
            "listener \"tls\" on 127.0.0.1:3550",
            std::time::Duration::from_secs(5)
        ),
        "{}",
        gw.log()
    );
    for url in ["smpp://127.0.0.1:2775", "ssmpp://127.0.0.1:3550"] {
        let out = Command::new("node")
            .env("NODE_PATH", peers.node_dir.join("node_modules"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/peers/node_client.js"
            ))
            .args([url, "demo", "demo"])
            .output()
            .unwrap();
        check(url, &out);
    }
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("self-signed certificate"),
        "the log says where the certificate is: {log}"
    );
}
