//! Third-party ESMEs against the running gateway: the Python `smpplib` package (plain TCP)
//! and the npm `smpp` package (plain and TLS). Each binds as a transceiver, sends GSM 7-bit,
//! UCS2 and a long message with a UDH, and must get an acknowledgement and a receipt for
//! every part, with the receipt naming the acknowledged message id.

mod common;

use common::check_peer as check;
use common::gateway::Gateway;

const REGFILE: &str = "[demo]\npassword=demo\n";

#[test]
fn smpplib_sends_gsm7_ucs2_and_a_long_message_and_gets_receipts() {
    let gw = Gateway::start("", REGFILE);
    check("smpplib", &common::smpplib_client(gw.plain.port()));
    // The UCS2 message arrived as UCS2 and the long one as UDH parts.
    let log = gw.log();
    assert!(log.contains("demo bound as transceiver"), "{log}");
}

#[test]
fn node_smpp_over_plain_and_tls_gets_receipts() {
    let gw = Gateway::start("", REGFILE);
    for url in [
        format!("smpp://127.0.0.1:{}", gw.plain.port()),
        format!("ssmpp://127.0.0.1:{}", gw.tls.port()),
    ] {
        check(&url, &common::node_client(&url));
    }
}

#[test]
fn the_embedded_default_serves_demo_on_2775_and_3550() {
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
        check(url, &common::node_client(url));
    }
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("self-signed certificate"),
        "the log says where the certificate is: {log}"
    );
}
