//! Whatever decodes re-encodes to the same octets, and decodes again to the same PDU.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use smppgw::smpp::Pdu;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok(pdu) = Pdu::decode(&frame) {
        let again = pdu.to_bytes();
        assert_eq!(&again[..], data, "re-encode differs");
        let back = Pdu::decode(&again).expect("re-encoded PDU decodes");
        assert_eq!(back, pdu);
    }
});
