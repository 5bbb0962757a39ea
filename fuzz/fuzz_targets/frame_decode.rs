//! Any byte stream: framing, decoding, and an SMSC session fed with it must never panic.
#![no_main]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use smppgw::smpp::{Framer, Pdu, Role, Session, SessionConfig};

fuzz_target!(|data: &[u8]| {
    // Framing and decoding alone.
    let framer = Framer::new(4096);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = framer.next_frame(&mut buf) {
        let _ = Pdu::decode(&frame);
    }

    // The same bytes through both session roles, in two reads, with time moving on.
    let now = Instant::now();
    for role in [Role::Smsc, Role::Esme] {
        let mut s = Session::new(role, SessionConfig::default(), now);
        let (a, b) = data.split_at(data.len() / 2);
        let mut buf = BytesMut::from(a);
        s.handle_input(&mut buf, now);
        buf.extend_from_slice(b);
        s.handle_input(&mut buf, now + Duration::from_secs(1));
        s.handle_timeout(now + Duration::from_secs(100));
        while s.poll_event().is_some() {}
        let mut out = BytesMut::new();
        s.poll_transmit(&mut out);
    }
});
