//! Receipts as PDUs: the ones the gateway writes itself (no route, expiry, retries
//! exhausted, delivered to an ESME) and the upstream's, read and relayed with the gateway's id.
//!
//! A receipt is a deliver_sm from the message's destination back to its source, esm_class
//! 0x04, with the canonical text (`err:` is the TP-Status in decimal), receipted_message_id,
//! message_state and network_error_code (type 3, GSM: the TP-Status). Its `text:` quotes the
//! first 20 characters of the message's decoded text, never UDH octets; characters outside
//! printable ASCII are written `?`.

use bytes::{BufMut, Bytes, BytesMut};

use super::policy::End;
use super::time::receipt_date;
use crate::smpp::receipt::MessageState;
use crate::smpp::tlv::tag;
use crate::smpp::{Body, DeliverSm, EsmClass, Pdu, Receipt, Tlvs};
use crate::text::{self, Charset, Shift, Udh};

/// Characters of the message quoted in a receipt.
const QUOTED: usize = 20;

/// The first characters of a message's text, for a receipt: the UDH skipped, decoded by its
/// data_coding (`zero`: what 0 means), cut to 20 characters, as printable ASCII.
pub fn quote(user_data: &[u8], esm_class: EsmClass, data_coding: u8, zero: Charset) -> Vec<u8> {
    let (body, shift) = if esm_class.udhi() {
        match Udh::parse(user_data) {
            Ok((udh, n)) => (user_data.get(n..).unwrap_or(&[]), udh.shift()),
            Err(_) => return Vec::new(),
        }
    } else {
        (user_data, Shift::default())
    };
    let Some(charset) = Charset::from_data_coding(data_coding, zero) else {
        return Vec::new();
    };
    if charset == Charset::Binary {
        return Vec::new();
    }
    // A packed GSM part after a UDH starts on a septet boundary only with fill bits; the
    // quote is a courtesy, so a misaligned start simply quotes what decodes.
    let Ok(d) = text::decode(body, charset, shift) else {
        return Vec::new();
    };
    d.text
        .chars()
        .take(QUOTED)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// What the gateway knows of a message when it writes its receipt.
pub struct Reported<'a> {
    /// The request as the originator sent it.
    pub request: &'a Pdu,
    /// The id the originator knows (the billid), as it was given.
    pub id: &'a [u8],
    pub accepted_ms: u64,
    pub done_ms: u64,
    pub end: End,
    /// What data_coding 0 means to the originator.
    pub zero: Charset,
}

/// The receipt the gateway writes for a message it ended itself.
pub fn gateway_receipt(r: &Reported<'_>) -> Pdu {
    let (source, dest, quoted) = match r.request.message() {
        Some(m) => (
            m.dest.clone(),
            m.source.clone(),
            quote(&m.user_data, m.esm_class, m.data_coding, r.zero),
        ),
        None => Default::default(),
    };
    let err = [
        b'0' + r.end.tp_status / 100,
        b'0' + r.end.tp_status / 10 % 10,
        b'0' + r.end.tp_status % 10,
    ];
    let text = Receipt {
        id: r.id,
        sub: Some(1),
        dlvrd: Some(u32::from(r.end.delivered())),
        submit_date: Some(receipt_date(r.accepted_ms)),
        done_date: Some(receipt_date(r.done_ms)),
        stat: r.end.state.stat().as_bytes(),
        err: &err,
        text: Some(&quoted),
    };
    let mut out = BytesMut::with_capacity(160);
    text.write(&mut out);
    let mut tlvs = Tlvs::new();
    tlvs.set_cstr(tag::RECEIPTED_MESSAGE_ID, r.id);
    tlvs.set_u8(tag::MESSAGE_STATE, r.end.state.0);
    tlvs.set(tag::NETWORK_ERROR_CODE, &[3, 0, r.end.tp_status]);
    Pdu {
        command_status: crate::smpp::CommandStatus::ROK,
        sequence_number: 0,
        body: Body::DeliverSm(DeliverSm {
            source,
            dest,
            esm_class: 0x04,
            short_message: out.freeze(),
            ..DeliverSm::default()
        }),
        tlvs,
    }
}

/// An upstream's receipt, read: the id it reports on and the outcome it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamReceipt {
    /// The upstream's message id (receipted_message_id, else the text's `id:`).
    pub id: Bytes,
    pub end: End,
    /// An intermediate notification (esm_class 0x20 or a non-final state): progress, not the
    /// end.
    pub intermediate: bool,
}

/// Reads a deliver_sm or data_sm from a link as a receipt; `None` when it is not one (MO).
pub fn read_upstream(pdu: &Pdu) -> Option<UpstreamReceipt> {
    let m = pdu.message()?;
    let tlv_id = pdu.tlvs.get_cstr(tag::RECEIPTED_MESSAGE_ID);
    if !m.esm_class.is_report() && tlv_id.is_none() {
        return None;
    }
    let text = Receipt::parse(&m.user_data);
    let id = match (tlv_id, &text) {
        (Some(id), _) if !id.is_empty() => Bytes::copy_from_slice(id),
        (_, Some(r)) => Bytes::copy_from_slice(r.id),
        _ => return None,
    };
    let state = pdu
        .tlvs
        .get_u8(tag::MESSAGE_STATE)
        .map(MessageState)
        .or_else(|| text.as_ref().and_then(|r| r.state()))
        .unwrap_or(MessageState::UNKNOWN);
    let tp_status = match pdu.tlvs.get(tag::NETWORK_ERROR_CODE) {
        Some(&[3, _, tp]) => tp,
        _ => match state {
            MessageState::DELIVERED => 0x00,
            MessageState::EXPIRED => 0x46,
            MessageState::ACCEPTED | MessageState::ENROUTE | MessageState::SCHEDULED => 0x01,
            _ => text
                .as_ref()
                .and_then(|r| r.err_code())
                .filter(|e| *e < 0x80 && *e != 0)
                .map_or(0x40, |e| e as u8),
        },
    };
    Some(UpstreamReceipt {
        id,
        end: End::new(state, tp_status),
        intermediate: m.esm_class.is_intermediate() || !state.is_final(),
    })
}

/// An upstream receipt with the gateway's id in place of the upstream's, in the text and in
/// receipted_message_id; everything else (state, error, dates, network_error_code) is kept.
/// Always a deliver_sm (a data_sm receipt's payload moves into short_message when it fits).
pub fn relay_receipt(pdu: &Pdu, gateway_id: &[u8]) -> Pdu {
    let mut body = match &pdu.body {
        Body::DeliverSm(d) => d.clone(),
        Body::DataSm(d) => DeliverSm {
            service_type: d.service_type.clone(),
            source: d.source.clone(),
            dest: d.dest.clone(),
            esm_class: d.esm_class,
            registered_delivery: d.registered_delivery,
            data_coding: d.data_coding,
            ..DeliverSm::default()
        },
        _ => DeliverSm::default(),
    };
    let mut tlvs = pdu.tlvs.clone();
    if body.short_message.is_empty() {
        if let Some(p) = tlvs.get_bytes(tag::MESSAGE_PAYLOAD) {
            if p.len() <= 254 {
                body.short_message = p;
            }
        }
    }
    tlvs.remove(tag::MESSAGE_PAYLOAD);
    let text = body.short_message.clone();
    if let Some(r) = Receipt::parse(&text) {
        // Splice the new id where the old one stands.
        let start = r.id.as_ptr() as usize - text.as_ptr() as usize;
        let mut out = BytesMut::with_capacity(text.len() + gateway_id.len());
        out.put_slice(&text[..start]);
        out.put_slice(gateway_id);
        out.put_slice(&text[start + r.id.len()..]);
        body.short_message = out.freeze();
    }
    if tlvs.get(tag::RECEIPTED_MESSAGE_ID).is_some() {
        tlvs.set_cstr(tag::RECEIPTED_MESSAGE_ID, gateway_id);
    }
    Pdu {
        command_status: crate::smpp::CommandStatus::ROK,
        sequence_number: 0,
        body: Body::DeliverSm(body),
        tlvs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::{Address, SubmitSm};

    fn submit(text: &[u8], esm_class: u8, dc: u8) -> Pdu {
        Pdu {
            command_status: crate::smpp::CommandStatus::ROK,
            sequence_number: 1,
            body: Body::SubmitSm(SubmitSm {
                source: Address::new(1, 1, "4911"),
                dest: Address::new(1, 1, "4922"),
                esm_class,
                data_coding: dc,
                registered_delivery: 1,
                short_message: Bytes::copy_from_slice(text),
                ..SubmitSm::default()
            }),
            tlvs: Tlvs::new(),
        }
    }

    #[test]
    fn quotes_skip_the_udh_and_decode_the_text() {
        let mut ud = vec![0x05, 0x00, 0x03, 0x2A, 0x02, 0x01];
        ud.extend_from_slice(b"Hello world, this is longer than twenty");
        let q = quote(&ud, EsmClass(0x40), 1, Charset::Gsm7);
        assert_eq!(q, b"Hello world, this is");
        // UCS2 text, with a character outside ASCII.
        let ucs2: Vec<u8> = "h\u{e9}llo"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        assert_eq!(quote(&ucs2, EsmClass(0), 8, Charset::Gsm7), b"h?llo");
        assert!(quote(&[1, 2, 3], EsmClass(0), 4, Charset::Gsm7).is_empty());
    }

    #[test]
    fn gateway_receipt_carries_the_end_in_text_and_tlvs() {
        let req = submit(b"\x05\x00\x03\x01\x02\x01Hi there", 0x40, 0);
        let r = gateway_receipt(&Reported {
            request: &req,
            id: b"0123456789abcdef0123",
            accepted_ms: 0,
            done_ms: 60_000,
            end: End::EXPIRED,
            zero: Charset::Gsm7,
        });
        let Body::DeliverSm(d) = &r.body else {
            panic!()
        };
        assert_eq!(d.esm_class, 0x04);
        assert_eq!(d.source.addr.as_bytes(), b"4922");
        assert_eq!(d.dest.addr.as_bytes(), b"4911");
        let t = std::str::from_utf8(&d.short_message).unwrap();
        assert!(
            t.starts_with("id:0123456789abcdef0123 sub:001 dlvrd:000"),
            "{t}"
        );
        assert!(t.ends_with("stat:EXPIRED err:070 text:Hi there"), "{t}");
        assert_eq!(r.tlvs.get(tag::NETWORK_ERROR_CODE), Some(&[3, 0, 0x46][..]));
        assert_eq!(r.tlvs.get_u8(tag::MESSAGE_STATE), Some(3));
        let back = read_upstream(&r).unwrap();
        assert_eq!(back.end, End::EXPIRED);
        assert_eq!(&back.id[..], b"0123456789abcdef0123");
        assert!(!back.intermediate);
    }

    #[test]
    fn relayed_receipt_names_the_gateway_id_and_keeps_the_rest() {
        let mut up = submit(
            b"id:A1B2 sub:001 dlvrd:001 submit date:2612021000 done date:2612021001 stat:DELIVRD err:000 text:x",
            0x04,
            0,
        );
        up.body = match up.body {
            Body::SubmitSm(m) => Body::DeliverSm(m),
            b => b,
        };
        up.tlvs.set_cstr(tag::RECEIPTED_MESSAGE_ID, b"A1B2");
        let r = read_upstream(&up).unwrap();
        assert_eq!(&r.id[..], b"A1B2");
        assert_eq!(r.end, End::DELIVERED);
        let out = relay_receipt(&up, b"ffff");
        let Body::DeliverSm(d) = &out.body else {
            panic!()
        };
        assert!(d.short_message.starts_with(b"id:ffff sub:001"));
        assert_eq!(
            out.tlvs.get_cstr(tag::RECEIPTED_MESSAGE_ID),
            Some(&b"ffff"[..])
        );
        // MO is not a receipt.
        assert_eq!(read_upstream(&submit(b"hello", 0, 0)), None);
    }
}
