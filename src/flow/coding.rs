//! A message's text between two ends that read data_coding 0 differently (the `coding` of an
//! account and of a link): transcoded only then; every other message passes untouched.
//!
//! data_coding 0 (and the message-class codings 0xF0-0xF3) is "the default alphabet": GSM
//! 7-bit to most, but an ESME may mean Latin-1 or UTF-8 by it and a link packed GSM. Explicit
//! codings (1 ASCII, 3 Latin-1, 8 UCS2, binary) mean the same at both ends. A user data
//! header is kept as it is (for packed GSM the text starts after the fill bits that align it
//! to a septet); a message that no longer fits short_message moves into message_payload, a
//! part of a long message with its header (esm_class keeps UDHI): the part stays one part,
//! numbered as the sender numbered it. (Cutting it in two would change the count of parts
//! that the receiver has partly received already.)

use bytes::Bytes;

use crate::smpp::tlv::tag;
use crate::smpp::{Body, Pdu};
use crate::text::{self, gsm7, Charset, Replacement, Shift, Udh};

/// Octets short_message holds.
const SHORT_MESSAGE_MAX: usize = 254;

/// Fill bits that align packed GSM text after a header of `udh_len` octets.
fn fill_bits(udh_len: usize) -> u8 {
    ((7 - (udh_len * 8) % 7) % 7) as u8
}

/// The text after a UDH of `udh_len` octets, in `charset` (packed GSM aligned by its fill
/// bits, national tables as the UDH's `shift` says).
fn decode_body(
    body: &[u8],
    charset: Charset,
    udh_len: usize,
    shift: Shift,
) -> Result<String, String> {
    match charset {
        Charset::Gsm7Packed => {
            let mut septets = Vec::with_capacity(body.len() * 8 / 7);
            gsm7::unpack(body, fill_bits(udh_len), None, &mut septets);
            let a = gsm7::Alphabet::get(shift).ok_or("an unknown national language table")?;
            let mut s = String::with_capacity(septets.len());
            a.decode(&septets, &mut s);
            Ok(s)
        }
        _ => Ok(text::decode(body, charset, shift)
            .map_err(|e| format!("its text: {e:?}"))?
            .text),
    }
}

/// A message's user data split: the octets its UDH takes (0 without one) and the text after
/// it, when its data_coding (`zero`: what 0 means) is text and it decodes.
pub fn message_text(
    user_data: &[u8],
    udhi: bool,
    data_coding: u8,
    zero: Charset,
) -> (usize, Option<String>) {
    let (udh_len, shift) = match udhi.then(|| Udh::parse(user_data)) {
        Some(Ok((udh, n))) => (n, udh.shift()),
        // A header that does not parse: no text can be told from it.
        Some(Err(_)) => return (0, None),
        None => (0, Shift::default()),
    };
    let text = Charset::from_data_coding(data_coding, zero)
        .filter(|c| c.is_text())
        .and_then(|c| decode_body(user_data.get(udh_len..)?, c, udh_len, shift).ok());
    (udh_len, text)
}

/// Transcodes `pdu`'s text from what `from` means by data_coding 0 to what `to` means.
/// Returns whether it changed; `Err` says why it cannot go.
pub fn adapt(pdu: &mut Pdu, from: Charset, to: Charset) -> Result<bool, String> {
    let Some(m) = pdu.message() else {
        return Ok(false);
    };
    let (Some(src), Some(dst)) = (
        Charset::from_data_coding(m.data_coding, from),
        Charset::from_data_coding(m.data_coding, to),
    ) else {
        return Ok(false);
    };
    if src == dst || src == Charset::Binary || dst == Charset::Binary {
        return Ok(false);
    }
    let ud = m.user_data.clone();
    let in_payload = pdu.tlvs.get(tag::MESSAGE_PAYLOAD).is_some();
    let (udh_len, shift) = if m.esm_class.udhi() {
        let (udh, n) = Udh::parse(&ud).map_err(|e| format!("its user data header: {e:?}"))?;
        (n, udh.shift())
    } else {
        (0, Shift::default())
    };
    let body = ud.get(udh_len..).unwrap_or(&[]);
    let text = decode_body(body, src, udh_len, shift)?;
    let encoded = match dst {
        Charset::Gsm7Packed => {
            let septets = text::encode(&text, Charset::Gsm7, shift, Replacement::With('?'))
                .map_err(|e| format!("its text: {e:?}"))?;
            let mut out = Vec::with_capacity(septets.bytes.len());
            gsm7::pack(&septets.bytes, fill_bits(udh_len), &mut out);
            out
        }
        _ => {
            text::encode(&text, dst, shift, Replacement::With('?'))
                .map_err(|e| format!("its text: {e:?}"))?
                .bytes
        }
    };
    let mut new = Vec::with_capacity(udh_len + encoded.len());
    new.extend_from_slice(&ud[..udh_len]);
    new.extend_from_slice(&encoded);
    let new = Bytes::from(new);
    let to_payload = in_payload || new.len() > SHORT_MESSAGE_MAX;
    match &mut pdu.body {
        Body::SubmitSm(b) | Body::DeliverSm(b) => {
            if to_payload {
                b.short_message = Bytes::new();
                pdu.tlvs.set(tag::MESSAGE_PAYLOAD, &new);
            } else {
                b.short_message = new;
            }
        }
        Body::DataSm(_) => pdu.tlvs.set(tag::MESSAGE_PAYLOAD, &new),
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {

    #[test]
    fn message_text_skips_the_udh_and_decodes_what_follows() {
        let ud = b"\x05\x00\x03\x07\x02\x01Hi @";
        assert_eq!(
            message_text(ud, true, 0, Charset::Gsm7),
            (6, Some("Hi \u{a1}".to_string()))
        );
        assert_eq!(
            message_text(b"Hi", false, 0, Charset::Gsm7),
            (0, Some("Hi".into()))
        );
        // Octets are not text; a header past the end tells nothing.
        assert_eq!(
            message_text(b"\x01\x02", false, 4, Charset::Gsm7),
            (0, None)
        );
        assert_eq!(message_text(b"\x09\x00", true, 0, Charset::Gsm7), (0, None));
    }

    use super::*;
    use crate::smpp::{Address, CommandStatus, SubmitSm, Tlvs};

    fn submit(ud: &[u8], esm_class: u8, dc: u8) -> Pdu {
        Pdu {
            command_status: CommandStatus::ROK,
            sequence_number: 1,
            body: Body::SubmitSm(SubmitSm {
                source: Address::new(1, 1, "1"),
                dest: Address::new(1, 1, "2"),
                esm_class,
                data_coding: dc,
                short_message: Bytes::copy_from_slice(ud),
                ..SubmitSm::default()
            }),
            tlvs: Tlvs::new(),
        }
    }

    fn text_of(p: &Pdu) -> Vec<u8> {
        match &p.body {
            Body::SubmitSm(b) => b.short_message.to_vec(),
            _ => panic!(),
        }
    }

    #[test]
    fn the_same_coding_or_an_explicit_one_passes_untouched() {
        let mut p = submit(b"hello", 0, 0);
        assert_eq!(adapt(&mut p, Charset::Gsm7, Charset::Gsm7), Ok(false));
        let mut p = submit(&[0, 0x68], 0, 8);
        assert_eq!(adapt(&mut p, Charset::Latin1, Charset::Gsm7), Ok(false));
        assert_eq!(text_of(&p), vec![0, 0x68]);
    }

    #[test]
    fn latin1_from_an_esme_becomes_gsm7_for_the_link_and_back() {
        // "é" is 0xE9 in Latin-1 and 0x05 in the GSM 7-bit default alphabet.
        let mut p = submit(b"caf\xe9", 0, 0);
        assert_eq!(adapt(&mut p, Charset::Latin1, Charset::Gsm7), Ok(true));
        assert_eq!(text_of(&p), b"caf\x05");
        assert_eq!(adapt(&mut p, Charset::Gsm7, Charset::Latin1), Ok(true));
        assert_eq!(text_of(&p), b"caf\xe9");
    }

    #[test]
    fn a_header_is_kept_and_packed_text_is_aligned_after_it() {
        let udh = [5u8, 0, 3, 0x42, 2, 1];
        let mut ud = udh.to_vec();
        ud.extend_from_slice(b"hellohello");
        let mut p = submit(&ud, 0x40, 0);
        assert_eq!(adapt(&mut p, Charset::Gsm7, Charset::Gsm7Packed), Ok(true));
        let packed = text_of(&p);
        assert_eq!(&packed[..6], &udh);
        // Back again: the same text after the same header.
        assert_eq!(adapt(&mut p, Charset::Gsm7Packed, Charset::Gsm7), Ok(true));
        assert_eq!(text_of(&p), ud);
    }

    #[test]
    fn text_that_outgrows_short_message_moves_to_message_payload_a_part_with_its_header() {
        let long = "é".repeat(200); // 200 octets of Latin-1, 400 of UTF-8
        let latin1: Vec<u8> = long.chars().map(|c| c as u8).collect();
        let mut p = submit(&latin1, 0, 0);
        assert_eq!(adapt(&mut p, Charset::Latin1, Charset::Utf8), Ok(true));
        assert!(text_of(&p).is_empty());
        assert_eq!(p.tlvs.get(tag::MESSAGE_PAYLOAD).map(<[u8]>::len), Some(400));
        let udh = [5u8, 0, 3, 1, 2, 1];
        let mut ud = udh.to_vec();
        ud.extend_from_slice(&latin1[..130]);
        let mut p = submit(&ud, 0x40, 0);
        assert_eq!(adapt(&mut p, Charset::Latin1, Charset::Utf8), Ok(true));
        assert!(text_of(&p).is_empty());
        let payload = p.tlvs.get(tag::MESSAGE_PAYLOAD).unwrap();
        assert_eq!(
            payload.len(),
            6 + 260,
            "the header, then 130 two-octet characters"
        );
        assert_eq!(&payload[..6], &udh, "part 1 of 2 still");
        assert_eq!(std::str::from_utf8(&payload[6..]).unwrap(), "é".repeat(130));
        match &p.body {
            Body::SubmitSm(m) => assert_eq!(m.esm_class, 0x40),
            _ => unreachable!(),
        }
    }
}
