//! Delivery receipt text: what real SMSCs send, parsed tolerantly; what we write, canonically.

use bytes::BytesMut;
use smppgw::smpp::receipt::{id_value, IdKey, IdRadix};
use smppgw::smpp::{MessageState, Receipt, ReceiptDate};

#[test]
fn the_de_facto_format_parses_field_by_field() {
    let text = b"id:0A1B2C3D sub:001 dlvrd:001 submit date:2503141530 done date:2503141531 stat:DELIVRD err:000 text:Hello world";
    let r = Receipt::parse(text).unwrap();
    assert_eq!(r.id, b"0A1B2C3D");
    assert_eq!((r.sub, r.dlvrd), (Some(1), Some(1)));
    assert_eq!(
        r.submit_date,
        Some(ReceiptDate {
            year: 2025,
            month: 3,
            day: 14,
            hour: 15,
            minute: 30,
            second: None
        })
    );
    assert_eq!(r.done_date.unwrap().minute, 31);
    assert_eq!(r.state(), Some(MessageState::DELIVERED));
    assert_eq!(r.err_code(), Some(0));
    assert_eq!(r.text, Some(&b"Hello world"[..]));
}

#[test]
fn dates_with_seconds_or_four_digit_years_parse() {
    let with_seconds = Receipt::parse(
        b"id:1 submit date:250314153012 done date:250314153113 stat:UNDELIV err:001",
    )
    .unwrap();
    assert_eq!(with_seconds.submit_date.unwrap().second, Some(12));
    assert_eq!(with_seconds.state(), Some(MessageState::UNDELIVERABLE));
    let long_year =
        Receipt::parse(b"id:1 submit date:202503141530 done date:20250314153113 stat:EXPIRED")
            .unwrap();
    assert_eq!(
        long_year.submit_date,
        Some(ReceiptDate {
            year: 2025,
            month: 3,
            day: 14,
            hour: 15,
            minute: 30,
            second: None
        })
    );
    assert_eq!(long_year.done_date.unwrap().second, Some(13));
    assert_eq!(ReceiptDate::parse(b"2513141530"), None, "month 13");
    assert_eq!(ReceiptDate::parse(b"25031415"), None, "too short");
}

#[test]
fn capitalised_text_and_missing_text_are_accepted() {
    let r = Receipt::parse(b"id:123 sub:001 dlvrd:000 submit date:2503141530 done date:2503141531 stat:REJECTD err:0B4 Text:Hi there").unwrap();
    assert_eq!(r.text, Some(&b"Hi there"[..]));
    assert_eq!(r.state(), Some(MessageState::REJECTED));
    assert_eq!(r.err, b"0B4");
    assert_eq!(r.err_code(), Some(0xB4));
    let r = Receipt::parse(b"id:123 sub:001 dlvrd:001 submit date:2503141530 done date:2503141531 stat:DELIVRD err:000").unwrap();
    assert_eq!(r.text, None);
    assert_eq!(r.err_code(), Some(0));
}

#[test]
fn keys_in_other_cases_orders_and_spellings_parse() {
    let r =
        Receipt::parse(b"ID:77 STAT:delivered submit_date:2503141530 done_date:2503141531 ERR:000")
            .unwrap();
    assert_eq!(r.id, b"77");
    assert_eq!(r.state(), Some(MessageState::DELIVERED));
    assert!(r.submit_date.is_some() && r.done_date.is_some());
}

#[test]
fn text_keeps_key_like_words_after_it() {
    let r = Receipt::parse(b"id:1 stat:DELIVRD err:000 text:stat:FAKE id:2").unwrap();
    assert_eq!(r.id, b"1");
    assert_eq!(r.state(), Some(MessageState::DELIVERED));
    assert_eq!(r.text, Some(&b"stat:FAKE id:2"[..]));
}

#[test]
fn a_message_without_id_is_not_a_receipt() {
    assert_eq!(
        Receipt::parse(b"Hello, this is an ordinary MO message"),
        None
    );
    assert_eq!(Receipt::parse(b""), None);
    // "id:" inside a word does not count.
    assert_eq!(Receipt::parse(b"paid:100"), None);
}

#[test]
fn ids_read_as_hex_or_decimal() {
    let r = Receipt::parse(b"id:0000ff00 stat:DELIVRD").unwrap();
    assert_eq!(id_value(r.id, IdRadix::Hex), Some(0xFF00));
    assert_eq!(id_value(b"65280", IdRadix::Decimal), Some(0xFF00));
    assert_eq!(id_value(b"12ab", IdRadix::Decimal), None);
    assert_eq!(id_value(b"", IdRadix::Hex), None);
}

#[test]
fn a_hex_response_id_and_a_decimal_receipt_id_reduce_to_the_same_key() {
    // SMPP 3.3 habit: submit_sm_resp in hex, the receipt in decimal, padding and case free.
    let resp = IdKey::new(b"00000A1B2C3D", IdRadix::Hex);
    assert_eq!(resp, IdKey::new(b"a1b2c3d", IdRadix::Hex));
    assert_eq!(resp, IdKey::new(b"169552957", IdRadix::Decimal));
    assert_ne!(resp, IdKey::new(b"169552958", IdRadix::Decimal));
    // 20 hex digits (80 bits) fit.
    assert_eq!(
        IdKey::new(b"ffffffffffffffffffff", IdRadix::Hex),
        IdKey::Number((1u128 << 80) - 1)
    );
    // Text ids compare as written.
    assert_eq!(
        IdKey::new(b" msg-7 ", IdRadix::Text),
        IdKey::Text(b"msg-7".to_vec())
    );
    assert_eq!(
        IdKey::new(b"not-hex", IdRadix::Hex),
        IdKey::Text(b"not-hex".to_vec())
    );
}

#[test]
fn message_states_map_both_ways() {
    for (n, stat) in [
        (0, "SCHEDLD"),
        (1, "ENROUTE"),
        (2, "DELIVRD"),
        (3, "EXPIRED"),
        (4, "DELETED"),
        (5, "UNDELIV"),
        (6, "ACCEPTD"),
        (7, "UNKNOWN"),
        (8, "REJECTD"),
        (9, "SKIPPED"),
    ] {
        assert_eq!(MessageState(n).stat(), stat);
        assert_eq!(
            MessageState::from_stat(stat.as_bytes()),
            Some(MessageState(n))
        );
    }
    assert_eq!(MessageState(10).stat(), "UNKNOWN");
    assert_eq!(MessageState(255).stat(), "UNKNOWN");
    assert!(!MessageState::ENROUTE.is_final());
    assert!(!MessageState::SCHEDULED.is_final());
    assert!(MessageState::DELIVERED.is_final() && MessageState::REJECTED.is_final());
    assert_eq!(MessageState::from_stat(b"WHATEVER"), None);
}

#[test]
fn written_receipts_are_canonical_and_parse_back() {
    let date = ReceiptDate {
        year: 2025,
        month: 3,
        day: 14,
        hour: 15,
        minute: 30,
        second: None,
    };
    let r = Receipt {
        id: b"5F3A",
        sub: Some(1),
        dlvrd: Some(1),
        submit_date: Some(date),
        done_date: Some(ReceiptDate { minute: 31, ..date }),
        stat: MessageState::DELIVERED.stat().as_bytes(),
        err: b"000",
        text: Some(b"This text is longer than twenty characters"),
    };
    let mut out = BytesMut::new();
    r.write(&mut out);
    assert_eq!(
        &out[..],
        &b"id:5F3A sub:001 dlvrd:001 submit date:2503141530 done date:2503141531 stat:DELIVRD err:000 text:This text is longer "[..]
    );
    let back = Receipt::parse(&out).unwrap();
    assert_eq!(back.id, r.id);
    assert_eq!(back.submit_date, r.submit_date);
    assert_eq!(back.state(), Some(MessageState::DELIVERED));
}
