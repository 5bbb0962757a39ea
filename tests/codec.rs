//! The codec against hand-built fixtures and malformed input.
//!
//! Fixtures come from `tests/fixtures/make_pdus.py`, an independent encoder written from the
//! spec tables; every one must decode, name the right command, and re-encode byte-identically.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{fixture, fixtures, hex, to_hex};
use smppgw::smpp::tlv::tag;
use smppgw::smpp::*;

#[test]
fn every_fixture_decodes_and_reencodes_byte_identically() {
    let all = fixtures();
    assert!(all.len() >= 34, "fixture file lost lines");
    for f in &all {
        let pdu = Pdu::decode(&f.bytes).unwrap_or_else(|e| panic!("{} ({}): {e}", f.name, f.note));
        assert_eq!(
            pdu.command_id().name(),
            Some(f.name.as_str()),
            "{} decoded as another command",
            f.name
        );
        let again = pdu.to_bytes();
        assert_eq!(to_hex(&again), to_hex(&f.bytes), "{} ({})", f.name, f.note);
    }
}

#[test]
fn every_command_of_3_4_and_5_0_has_a_fixture() {
    let names: Vec<String> = fixtures().into_iter().map(|f| f.name).collect();
    for (_, name) in COMMAND_TABLE {
        assert!(names.iter().any(|n| n == name), "no fixture for {name}");
    }
}

#[test]
fn spec_bind_transmitter_example_decodes_field_by_field() {
    let pdu = Pdu::decode(&hex(
        "0000001E 00000002 00000000 00000007 65736D6500 70773100 00 34 0000 00",
    ))
    .unwrap();
    assert_eq!(pdu.sequence_number, 7);
    let Body::BindTransmitter(b) = pdu.body else {
        panic!("{:?}", pdu.body)
    };
    assert_eq!(b.system_id.as_str(), Some("esme"));
    assert_eq!(b.password.as_str(), Some("pw1"));
    assert!(b.system_type.is_empty());
    assert_eq!(b.interface_version, 0x34);
    assert_eq!((b.addr_ton, b.addr_npi), (0, 0));
    assert!(b.address_range.is_empty());
}

#[test]
fn submit_sm_fields_are_slices_of_the_frame() {
    let frame = fixture("submit_sm", "160 GSM");
    let pdu = Pdu::decode(&frame).unwrap();
    let Body::SubmitSm(sm) = &pdu.body else {
        panic!()
    };
    assert_eq!(sm.short_message.len(), 160);
    assert_eq!(sm.source.addr.as_str(), Some("447700900123"));
    assert_eq!(sm.dest.addr.as_str(), Some("31612345678"));
    assert_eq!(sm.registered_delivery, 1);
    assert_eq!(pdu.tlvs.get_u16(tag::USER_MESSAGE_REFERENCE), Some(42));
    assert_eq!(pdu.tlvs.get_u16(tag::SOURCE_PORT), Some(1234));
    // Zero-copy: the message and the address point into the frame's memory.
    let range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
    assert!(range.contains(&(sm.short_message.as_ptr() as usize)));
    assert!(range.contains(&(sm.dest.addr.as_bytes().as_ptr() as usize)));
}

#[test]
fn unknown_tlvs_and_unknown_status_survive_reencode() {
    let frame = fixture("submit_sm", "vendor TLV");
    let pdu = Pdu::decode(&frame).unwrap();
    assert_eq!(pdu.tlvs.get(0x1401), Some(&b"vendor"[..]));
    assert_eq!(pdu.to_bytes(), frame);

    let frame = fixture("submit_sm_resp", "vendor status");
    let pdu = Pdu::decode(&frame).unwrap();
    assert_eq!(pdu.command_status, CommandStatus(0x401));
    assert_eq!(pdu.command_status.description(), "Vendor-specific error");
    assert_eq!(pdu.body, Body::SubmitSmResp(None));
    assert_eq!(pdu.to_bytes(), frame);
}

#[test]
fn empty_bodies_on_responses_are_legal() {
    for id in COMMAND_TABLE
        .iter()
        .map(|e| CommandId(e.0))
        .filter(|c| c.is_response())
    {
        let frame = hex(&format!("00000010 {:08X} 00000058 00000001", id.0));
        let pdu = Pdu::decode(&frame).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(pdu.command_status, CommandStatus::RTHROTTLED);
        assert_eq!(pdu.to_bytes(), frame, "{id}");
    }
}

#[test]
fn receipt_tlvs_read_back() {
    let pdu = Pdu::decode(&fixture("deliver_sm", "receipt")).unwrap();
    let Body::DeliverSm(d) = &pdu.body else {
        panic!()
    };
    assert_eq!(d.esm_class, 0x04);
    assert_eq!(
        pdu.tlvs.get_cstr(tag::RECEIPTED_MESSAGE_ID),
        Some(&b"0A1B2C3D"[..])
    );
    assert_eq!(pdu.tlvs.get_u8(tag::MESSAGE_STATE), Some(2));
    assert_eq!(
        pdu.tlvs.get(tag::NETWORK_ERROR_CODE),
        Some(&[3u8, 0, 0][..])
    );
    let r = Receipt::parse(&d.short_message).unwrap();
    assert_eq!(r.id, b"0A1B2C3D");
    assert_eq!(r.state(), Some(MessageState::DELIVERED));
}

#[test]
fn submit_multi_destinations_decode() {
    let pdu = Pdu::decode(&fixture("submit_multi", "")).unwrap();
    let Body::SubmitMulti(m) = &pdu.body else {
        panic!()
    };
    assert_eq!(m.dests.len(), 2);
    assert!(matches!(&m.dests[0], DestAddress::Sme(a) if a.addr.as_str() == Some("3161")));
    assert!(
        matches!(&m.dests[1], DestAddress::DistributionList(n) if n.as_str() == Some("friends"))
    );
    let pdu = Pdu::decode(&fixture("submit_multi_resp", "")).unwrap();
    let Body::SubmitMultiResp(Some(r)) = &pdu.body else {
        panic!()
    };
    assert_eq!(r.unsuccess[0].error_status_code, CommandStatus::RINVDSTADR);
}

// ---- framing ---------------------------------------------------------------------------------

fn stream_of_all_fixtures() -> (BytesMut, usize) {
    let mut buf = BytesMut::new();
    let all = fixtures();
    for f in &all {
        buf.put_slice(&f.bytes);
    }
    (buf, all.len())
}

#[test]
fn framer_splits_many_pdus_from_one_buffer() {
    let (mut buf, n) = stream_of_all_fixtures();
    let framer = Framer::default();
    let mut count = 0;
    while let Some(frame) = framer.next_frame(&mut buf).unwrap() {
        Pdu::decode(&frame).unwrap();
        count += 1;
    }
    assert_eq!(count, n);
    assert!(buf.is_empty());
}

#[test]
fn framer_waits_for_partial_pdus_byte_by_byte() {
    let (whole, n) = stream_of_all_fixtures();
    let framer = Framer::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for &b in whole.iter() {
        buf.put_u8(b);
        while let Some(f) = framer.next_frame(&mut buf).unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(frames.len(), n);
    let rebuilt: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
    assert_eq!(&rebuilt[..], &whole[..]);
}

#[test]
fn command_length_under_16_is_fatal_and_answered_rinvcmdlen() {
    let framer = Framer::default();
    for len in [0u32, 1, 15] {
        let mut buf = BytesMut::from(&hex(&format!("{len:08X} 00000015 00000000 00000009"))[..]);
        let err = framer.next_frame(&mut buf).unwrap_err();
        assert_eq!(err.command_length, len);
        assert_eq!(err.sequence_number, 9);
        let reply = err.reply();
        assert_eq!(reply.body, Body::GenericNack);
        assert_eq!(reply.command_status, CommandStatus::RINVCMDLEN);
        assert_eq!(reply.sequence_number, 9);
    }
}

#[test]
fn command_length_over_the_limit_fails_before_the_body_arrives() {
    let framer = Framer::new(4096);
    let mut buf = BytesMut::from(&hex("80000000 00000004")[..]);
    let err = framer.next_frame(&mut buf).unwrap_err();
    assert_eq!(err.command_length, 0x8000_0000);
    assert_eq!(err.command_id, Some(CommandId::SUBMIT_SM));
    assert_eq!(err.sequence_number, 0, "sequence not yet readable");
    let mut buf = BytesMut::from(&hex("00001001 00000004 00000000 00000003")[..]);
    assert_eq!(
        framer.next_frame(&mut buf).unwrap_err().command_length,
        4097
    );
    let mut buf = BytesMut::from(&hex("00001000 00000004 00000000 00000003")[..]);
    assert_eq!(
        framer.next_frame(&mut buf).unwrap(),
        None,
        "at the limit: wait for the body"
    );
}

#[test]
fn truncated_frames_wait_for_more() {
    let framer = Framer::default();
    let frame = fixture("submit_sm", "160 GSM");
    for cut in [0, 1, 3, 4, 15, 16, frame.len() - 1] {
        let mut buf = BytesMut::from(&frame[..cut]);
        assert_eq!(framer.next_frame(&mut buf).unwrap(), None, "cut at {cut}");
        assert_eq!(buf.len(), cut);
    }
}

// ---- malformed bodies ------------------------------------------------------------------------

fn expect_error(frame: &Bytes, status: CommandStatus, field: &str) -> DecodeError {
    let e = Pdu::decode(frame).expect_err("decode should fail");
    assert_eq!(e.status, status, "{e}");
    assert_eq!(e.field, field, "{e}");
    e
}

/// Builds a frame with a correct command_length around a body.
fn frame(id: u32, seq: u32, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32(16 + body.len() as u32);
    b.put_u32(id);
    b.put_u32(0);
    b.put_u32(seq);
    b.put_slice(body);
    b.freeze()
}

#[test]
fn unknown_command_id_is_answered_generic_nack_rinvcmdid() {
    let e = expect_error(
        &frame(0x0000_0099, 4, b""),
        CommandStatus::RINVCMDID,
        "command_id",
    );
    let reply = Pdu::error_reply(e.command_id, e.sequence_number, e.status).unwrap();
    assert_eq!(reply.body, Body::GenericNack);
    assert_eq!(reply.sequence_number, 4);
    expect_error(
        &frame(0x8000_0099, 4, b""),
        CommandStatus::RINVCMDID,
        "command_id",
    );
}

#[test]
fn c_string_without_nul_or_over_its_maximum_gets_the_fields_status() {
    // system_id is C16: 16 characters leave no room for the NUL.
    let e = expect_error(
        &frame(0x2, 1, b"0123456789abcdef\0pw\0\0\x34\0\0\0"),
        CommandStatus::RINVSYSID,
        "system_id",
    );
    assert_eq!(e.kind, FieldErrorKind::TooLong);
    // password runs to the end of the PDU without a NUL.
    let e = expect_error(
        &frame(0x2, 1, b"esme\0pw"),
        CommandStatus::RINVPASWD,
        "password",
    );
    assert_eq!(e.kind, FieldErrorKind::MissingNul);
    // destination_addr over C21.
    let mut body = b"\0\x01\x01123\0\x01\x01".to_vec();
    body.extend_from_slice(&[b'9'; 21]);
    body.extend_from_slice(b"\0\0\0\0\0\0\x01\0\0\0\0");
    expect_error(
        &frame(0x4, 1, &body),
        CommandStatus::RINVDSTADR,
        "destination_addr",
    );
    // service_type over C6.
    expect_error(
        &frame(0x4, 1, b"ABCDEFG\0"),
        CommandStatus::RINVSERTYP,
        "service_type",
    );
    // schedule_delivery_time neither empty nor 16 characters.
    let body = b"\0\x01\x011\0\x01\x012\0\0\0\x00250314\0\0\x01\0\0\0\0";
    let e = expect_error(
        &frame(0x4, 1, body),
        CommandStatus::RINVSCHED,
        "schedule_delivery_time",
    );
    assert_eq!(e.kind, FieldErrorKind::BadTime);
}

#[test]
fn errors_map_to_the_response_of_the_request() {
    let e = expect_error(
        &frame(0x4, 77, b"ABCDEFG\0"),
        CommandStatus::RINVSERTYP,
        "service_type",
    );
    let reply = Pdu::error_reply(e.command_id, e.sequence_number, e.status).unwrap();
    assert_eq!(reply.body, Body::SubmitSmResp(None));
    assert_eq!(
        (reply.sequence_number, reply.command_status),
        (77, CommandStatus::RINVSERTYP)
    );
    assert_eq!(reply.to_bytes(), hex("00000010 80000004 00000015 0000004D"));
}

#[test]
fn sm_length_past_the_end_is_rinvmsglen() {
    let body = b"\0\x01\x011\0\x01\x012\0\0\0\0\0\0\x01\0\0\0\xA0short";
    let e = expect_error(
        &frame(0x4, 1, body),
        CommandStatus::RINVMSGLEN,
        "short_message",
    );
    assert_eq!(e.kind, FieldErrorKind::BadMessageLength);
}

#[test]
fn body_ending_inside_the_mandatory_part_is_rinvcmdlen() {
    // submit_sm whose body stops after the destination address.
    expect_error(
        &frame(0x4, 1, b"\0\x01\x011\0\x01\x012\0"),
        CommandStatus::RINVCMDLEN,
        "esm_class",
    );
    // bind with nothing after system_id.
    expect_error(
        &frame(0x9, 1, b"esme\0"),
        CommandStatus::RINVCMDLEN,
        "password",
    );
    // A frame whose command_length disagrees with its size.
    let mut f = BytesMut::from(&frame(0x15, 1, b"")[..]);
    f.put_u8(0);
    expect_error(&f.freeze(), CommandStatus::RINVCMDLEN, "command_length");
}

#[test]
fn tlv_lengths_past_the_end_are_rinvtlvstream() {
    let base = fixture("submit_sm", "160 GSM");
    let mut with_bad = BytesMut::from(&base[..]);
    with_bad.put_slice(&hex("0424 0010 4142")); // message_payload claims 16 octets, has 2
    let n = with_bad.len() as u32;
    with_bad[..4].copy_from_slice(&n.to_be_bytes());
    let e = expect_error(
        &with_bad.freeze(),
        CommandStatus::RINVTLVSTREAM,
        "message_payload",
    );
    assert_eq!(e.kind, FieldErrorKind::TlvStream);

    // Fewer than four octets where a TLV header should be.
    let mut short = BytesMut::from(&base[..]);
    short.put_slice(&hex("0204 00"));
    let n = short.len() as u32;
    short[..4].copy_from_slice(&n.to_be_bytes());
    expect_error(&short.freeze(), CommandStatus::RINVTLVSTREAM, "tlv");
}

#[test]
fn known_tlv_with_a_wrong_length_is_rinvparlen() {
    let base = fixture("submit_sm", "160 GSM");
    let mut b = BytesMut::from(&base[..]);
    b.put_slice(&hex("020C 0003 010203")); // sar_msg_ref_num is two octets
    let n = b.len() as u32;
    b[..4].copy_from_slice(&n.to_be_bytes());
    let e = expect_error(&b.freeze(), CommandStatus::RINVPARLEN, "sar_msg_ref_num");
    assert_eq!(e.kind, FieldErrorKind::TlvLength);
}

#[test]
fn submit_multi_rejects_zero_destinations_and_bad_flags() {
    expect_error(
        &frame(0x21, 1, b"\0\x01\x011\0\0"),
        CommandStatus::RINVNUMDESTS,
        "number_of_dests",
    );
    expect_error(
        &frame(0x21, 1, b"\0\x01\x011\0\x01\x03"),
        CommandStatus::RINVDESTFLAG,
        "dest_flag",
    );
}

#[test]
fn generic_nack_is_never_answered() {
    assert_eq!(
        Pdu::error_reply(CommandId::GENERIC_NACK, 3, CommandStatus::RINVCMDLEN),
        None
    );
    // Requests with no response of their own are answered by generic_nack.
    let r = Pdu::error_reply(CommandId::ALERT_NOTIFICATION, 3, CommandStatus::RINVBNDSTS).unwrap();
    assert_eq!(r.body, Body::GenericNack);
}

#[test]
fn decode_never_panics_on_any_prefix_or_bit_flip_of_the_fixtures() {
    for f in fixtures() {
        let b = &f.bytes;
        for cut in 0..b.len() {
            let mut part = BytesMut::from(&b[..cut]);
            if cut >= 4 {
                part[..4].copy_from_slice(&(cut as u32).to_be_bytes());
            }
            let _ = Pdu::decode(&part.freeze());
        }
        for i in 16..b.len() {
            for bit in 0..8 {
                let mut m = BytesMut::from(&b[..]);
                m[i] ^= 1 << bit;
                if let Ok(p) = Pdu::decode(&m.clone().freeze()) {
                    // Whatever decodes must re-encode to the same octets.
                    assert_eq!(&p.to_bytes()[..], &m[..], "{} byte {i} bit {bit}", f.name);
                }
            }
        }
    }
}
