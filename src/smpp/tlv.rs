//! Optional parameters (TLVs): tag, length, value.
//!
//! The TLVs of a PDU are kept as the octets the peer sent: one zero-copy slice of the frame,
//! validated once at decode (every known tag against its allowed lengths, from one table,
//! [`TLV_TABLE`]). That keeps unknown and vendor tags (the spec says to ignore them; a gateway
//! must also carry them) in their order, re-encodes byte-identically, costs one reference count
//! however many TLVs there are, and keeps `Tlvs` as small as one `Bytes`. Reads walk the list
//! (a PDU carries a handful); the rare writes rebuild it.

use bytes::{BufMut, Bytes, BytesMut};

use super::codec::{FieldError, FieldErrorKind, Reader};
use super::CommandStatus;

/// Tag numbers of SMPP 3.4 and 5.0.
pub mod tag {
    pub const DEST_ADDR_SUBUNIT: u16 = 0x0005;
    pub const DEST_NETWORK_TYPE: u16 = 0x0006;
    pub const DEST_BEARER_TYPE: u16 = 0x0007;
    pub const DEST_TELEMATICS_ID: u16 = 0x0008;
    pub const SOURCE_ADDR_SUBUNIT: u16 = 0x000D;
    pub const SOURCE_NETWORK_TYPE: u16 = 0x000E;
    pub const SOURCE_BEARER_TYPE: u16 = 0x000F;
    pub const SOURCE_TELEMATICS_ID: u16 = 0x0010;
    pub const QOS_TIME_TO_LIVE: u16 = 0x0017;
    pub const PAYLOAD_TYPE: u16 = 0x0019;
    pub const ADDITIONAL_STATUS_INFO_TEXT: u16 = 0x001D;
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const MS_MSG_WAIT_FACILITIES: u16 = 0x0030;
    pub const PRIVACY_INDICATOR: u16 = 0x0201;
    pub const SOURCE_SUBADDRESS: u16 = 0x0202;
    pub const DEST_SUBADDRESS: u16 = 0x0203;
    pub const USER_MESSAGE_REFERENCE: u16 = 0x0204;
    pub const USER_RESPONSE_CODE: u16 = 0x0205;
    pub const SOURCE_PORT: u16 = 0x020A;
    pub const DESTINATION_PORT: u16 = 0x020B;
    pub const SAR_MSG_REF_NUM: u16 = 0x020C;
    pub const LANGUAGE_INDICATOR: u16 = 0x020D;
    pub const SAR_TOTAL_SEGMENTS: u16 = 0x020E;
    pub const SAR_SEGMENT_SEQNUM: u16 = 0x020F;
    pub const SC_INTERFACE_VERSION: u16 = 0x0210;
    pub const CALLBACK_NUM_PRES_IND: u16 = 0x0302;
    pub const CALLBACK_NUM_ATAG: u16 = 0x0303;
    pub const NUMBER_OF_MESSAGES: u16 = 0x0304;
    pub const CALLBACK_NUM: u16 = 0x0381;
    pub const DPF_RESULT: u16 = 0x0420;
    pub const SET_DPF: u16 = 0x0421;
    pub const MS_AVAILABILITY_STATUS: u16 = 0x0422;
    pub const NETWORK_ERROR_CODE: u16 = 0x0423;
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub const DELIVERY_FAILURE_REASON: u16 = 0x0425;
    pub const MORE_MESSAGES_TO_SEND: u16 = 0x0426;
    pub const MESSAGE_STATE: u16 = 0x0427;
    pub const CONGESTION_STATE: u16 = 0x0428;
    pub const USSD_SERVICE_OP: u16 = 0x0501;
    pub const BROADCAST_CHANNEL_INDICATOR: u16 = 0x0600;
    pub const BROADCAST_CONTENT_TYPE: u16 = 0x0601;
    pub const BROADCAST_CONTENT_TYPE_INFO: u16 = 0x0602;
    pub const BROADCAST_MESSAGE_CLASS: u16 = 0x0603;
    pub const BROADCAST_REP_NUM: u16 = 0x0604;
    pub const BROADCAST_FREQUENCY_INTERVAL: u16 = 0x0605;
    pub const BROADCAST_AREA_IDENTIFIER: u16 = 0x0606;
    pub const BROADCAST_ERROR_STATUS: u16 = 0x0607;
    pub const BROADCAST_AREA_SUCCESS: u16 = 0x0608;
    pub const BROADCAST_END_TIME: u16 = 0x0609;
    pub const BROADCAST_SERVICE_GROUP: u16 = 0x060A;
    pub const BILLING_IDENTIFICATION: u16 = 0x060B;
    pub const SOURCE_NETWORK_ID: u16 = 0x060D;
    pub const DEST_NETWORK_ID: u16 = 0x060E;
    pub const SOURCE_NODE_ID: u16 = 0x060F;
    pub const DEST_NODE_ID: u16 = 0x0610;
    pub const DEST_ADDR_NP_RESOLUTION: u16 = 0x0611;
    pub const DEST_ADDR_NP_INFORMATION: u16 = 0x0612;
    pub const DEST_ADDR_NP_COUNTRY: u16 = 0x0613;
    pub const DISPLAY_TIME: u16 = 0x1201;
    pub const SMS_SIGNAL: u16 = 0x1203;
    pub const MS_VALIDITY: u16 = 0x1204;
    pub const ALERT_ON_MESSAGE_DELIVERY: u16 = 0x130C;
    pub const ITS_REPLY_TYPE: u16 = 0x1380;
    pub const ITS_SESSION_INFO: u16 = 0x1383;
}

/// A known tag: its name and allowed value lengths (inclusive).
#[derive(Clone, Copy, Debug)]
pub struct TlvSpec {
    pub tag: u16,
    pub name: &'static str,
    pub min: u16,
    pub max: u16,
}

const fn spec(tag: u16, name: &'static str, min: u16, max: u16) -> TlvSpec {
    TlvSpec {
        tag,
        name,
        min,
        max,
    }
}

/// Every TLV of SMPP 3.4 and 5.0 that we check, sorted by tag. Where implementations disagree
/// on a length (source_telematics_id 1 or 2, ms_validity 1 or 4, alert_on_message_delivery 0
/// or 1) the table allows both.
pub const TLV_TABLE: &[TlvSpec] = &[
    spec(tag::DEST_ADDR_SUBUNIT, "dest_addr_subunit", 1, 1),
    spec(tag::DEST_NETWORK_TYPE, "dest_network_type", 1, 1),
    spec(tag::DEST_BEARER_TYPE, "dest_bearer_type", 1, 1),
    spec(tag::DEST_TELEMATICS_ID, "dest_telematics_id", 2, 2),
    spec(tag::SOURCE_ADDR_SUBUNIT, "source_addr_subunit", 1, 1),
    spec(tag::SOURCE_NETWORK_TYPE, "source_network_type", 1, 1),
    spec(tag::SOURCE_BEARER_TYPE, "source_bearer_type", 1, 1),
    spec(tag::SOURCE_TELEMATICS_ID, "source_telematics_id", 1, 2),
    spec(tag::QOS_TIME_TO_LIVE, "qos_time_to_live", 4, 4),
    spec(tag::PAYLOAD_TYPE, "payload_type", 1, 1),
    spec(
        tag::ADDITIONAL_STATUS_INFO_TEXT,
        "additional_status_info_text",
        1,
        256,
    ),
    spec(tag::RECEIPTED_MESSAGE_ID, "receipted_message_id", 1, 65),
    spec(tag::MS_MSG_WAIT_FACILITIES, "ms_msg_wait_facilities", 1, 1),
    spec(tag::PRIVACY_INDICATOR, "privacy_indicator", 1, 1),
    spec(tag::SOURCE_SUBADDRESS, "source_subaddress", 2, 23),
    spec(tag::DEST_SUBADDRESS, "dest_subaddress", 2, 23),
    spec(tag::USER_MESSAGE_REFERENCE, "user_message_reference", 2, 2),
    spec(tag::USER_RESPONSE_CODE, "user_response_code", 1, 1),
    spec(tag::SOURCE_PORT, "source_port", 2, 2),
    spec(tag::DESTINATION_PORT, "destination_port", 2, 2),
    spec(tag::SAR_MSG_REF_NUM, "sar_msg_ref_num", 2, 2),
    spec(tag::LANGUAGE_INDICATOR, "language_indicator", 1, 1),
    spec(tag::SAR_TOTAL_SEGMENTS, "sar_total_segments", 1, 1),
    spec(tag::SAR_SEGMENT_SEQNUM, "sar_segment_seqnum", 1, 1),
    spec(tag::SC_INTERFACE_VERSION, "sc_interface_version", 1, 1),
    spec(tag::CALLBACK_NUM_PRES_IND, "callback_num_pres_ind", 1, 1),
    spec(tag::CALLBACK_NUM_ATAG, "callback_num_atag", 0, 65),
    spec(tag::NUMBER_OF_MESSAGES, "number_of_messages", 1, 1),
    spec(tag::CALLBACK_NUM, "callback_num", 4, 19),
    spec(tag::DPF_RESULT, "dpf_result", 1, 1),
    spec(tag::SET_DPF, "set_dpf", 1, 1),
    spec(tag::MS_AVAILABILITY_STATUS, "ms_availability_status", 1, 1),
    spec(tag::NETWORK_ERROR_CODE, "network_error_code", 3, 3),
    spec(tag::MESSAGE_PAYLOAD, "message_payload", 0, u16::MAX),
    spec(
        tag::DELIVERY_FAILURE_REASON,
        "delivery_failure_reason",
        1,
        1,
    ),
    spec(tag::MORE_MESSAGES_TO_SEND, "more_messages_to_send", 1, 1),
    spec(tag::MESSAGE_STATE, "message_state", 1, 1),
    spec(tag::CONGESTION_STATE, "congestion_state", 1, 1),
    spec(tag::USSD_SERVICE_OP, "ussd_service_op", 1, 1),
    spec(
        tag::BROADCAST_CHANNEL_INDICATOR,
        "broadcast_channel_indicator",
        1,
        1,
    ),
    spec(tag::BROADCAST_CONTENT_TYPE, "broadcast_content_type", 3, 3),
    spec(
        tag::BROADCAST_CONTENT_TYPE_INFO,
        "broadcast_content_type_info",
        0,
        255,
    ),
    spec(
        tag::BROADCAST_MESSAGE_CLASS,
        "broadcast_message_class",
        1,
        1,
    ),
    spec(tag::BROADCAST_REP_NUM, "broadcast_rep_num", 2, 2),
    spec(
        tag::BROADCAST_FREQUENCY_INTERVAL,
        "broadcast_frequency_interval",
        3,
        3,
    ),
    spec(
        tag::BROADCAST_AREA_IDENTIFIER,
        "broadcast_area_identifier",
        0,
        100,
    ),
    spec(tag::BROADCAST_ERROR_STATUS, "broadcast_error_status", 4, 4),
    spec(tag::BROADCAST_AREA_SUCCESS, "broadcast_area_success", 1, 1),
    spec(tag::BROADCAST_END_TIME, "broadcast_end_time", 0, 17),
    spec(
        tag::BROADCAST_SERVICE_GROUP,
        "broadcast_service_group",
        0,
        255,
    ),
    spec(
        tag::BILLING_IDENTIFICATION,
        "billing_identification",
        0,
        1024,
    ),
    spec(tag::SOURCE_NETWORK_ID, "source_network_id", 0, 65),
    spec(tag::DEST_NETWORK_ID, "dest_network_id", 0, 65),
    spec(tag::SOURCE_NODE_ID, "source_node_id", 6, 6),
    spec(tag::DEST_NODE_ID, "dest_node_id", 6, 6),
    spec(
        tag::DEST_ADDR_NP_RESOLUTION,
        "dest_addr_np_resolution",
        1,
        1,
    ),
    spec(
        tag::DEST_ADDR_NP_INFORMATION,
        "dest_addr_np_information",
        10,
        10,
    ),
    spec(tag::DEST_ADDR_NP_COUNTRY, "dest_addr_np_country", 1, 5),
    spec(tag::DISPLAY_TIME, "display_time", 1, 1),
    spec(tag::SMS_SIGNAL, "sms_signal", 2, 2),
    spec(tag::MS_VALIDITY, "ms_validity", 1, 4),
    spec(
        tag::ALERT_ON_MESSAGE_DELIVERY,
        "alert_on_message_delivery",
        0,
        1,
    ),
    spec(tag::ITS_REPLY_TYPE, "its_reply_type", 1, 1),
    spec(tag::ITS_SESSION_INFO, "its_session_info", 2, 2),
];

/// The definition of a known tag.
pub fn tlv_spec(tag: u16) -> Option<&'static TlvSpec> {
    TLV_TABLE
        .binary_search_by_key(&tag, |s| s.tag)
        .ok()
        .map(|i| &TLV_TABLE[i])
}

/// One TLV, borrowed from its PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u16,
    pub value: &'a [u8],
}

/// The TLVs of one PDU: the octets as they came off the wire (one zero-copy slice of the
/// frame), validated once at decode. Reads walk the list, which is short; writes rebuild it.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Tlvs {
    raw: Bytes,
}

/// Walks TLVs in wire order. The bytes were validated at decode (or built by [`Tlvs`]), but
/// the walk still stops at anything short rather than trusting that.
#[derive(Clone)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Tlv<'a>;

    #[inline]
    fn next(&mut self) -> Option<Tlv<'a>> {
        let (head, rest) = self.rest.split_first_chunk::<4>()?;
        let tag = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let Some((value, rest)) = rest.split_at_checked(len) else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        Some(Tlv { tag, value })
    }
}

impl Tlvs {
    pub const fn new() -> Tlvs {
        Tlvs { raw: Bytes::new() }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// How many TLVs there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    #[inline]
    pub fn iter(&self) -> TlvIter<'_> {
        TlvIter { rest: &self.raw }
    }

    /// The TLVs as they go on the wire.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The first value with this tag.
    #[inline]
    pub fn get(&self, tag: u16) -> Option<&[u8]> {
        self.iter().find(|t| t.tag == tag).map(|t| t.value)
    }

    /// The first value with this tag as a zero-copy `Bytes`.
    pub fn get_bytes(&self, tag: u16) -> Option<Bytes> {
        let v = self.get(tag)?;
        Some(self.raw.slice_ref(v))
    }

    /// A one-octet value; `None` if absent or of another length.
    pub fn get_u8(&self, tag: u16) -> Option<u8> {
        match self.get(tag) {
            Some([b]) => Some(*b),
            _ => None,
        }
    }

    /// A two-octet value; `None` if absent or of another length.
    pub fn get_u16(&self, tag: u16) -> Option<u16> {
        match self.get(tag) {
            Some([a, b]) => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }

    /// A four-octet value; `None` if absent or of another length.
    pub fn get_u32(&self, tag: u16) -> Option<u32> {
        match self.get(tag) {
            Some([a, b, c, d]) => Some(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }

    /// A C-Octet String value without its NUL. Peers that omit the NUL are tolerated.
    pub fn get_cstr(&self, tag: u16) -> Option<&[u8]> {
        let v = self.get(tag)?;
        let end = memchr::memchr(0, v).unwrap_or(v.len());
        Some(&v[..end])
    }

    /// Rebuilds the list through `f`, which receives a writer for the new list.
    fn rebuild(&mut self, f: impl FnOnce(&[u8], &mut BytesMut)) {
        let mut out = BytesMut::with_capacity(self.raw.len() + 16);
        f(&self.raw, &mut out);
        self.raw = out.freeze();
    }

    /// Appends a TLV (keeps any earlier one with the same tag). A value over 65535 octets
    /// cannot be represented and is cut to 65535.
    pub fn push(&mut self, tag: u16, value: &[u8]) {
        self.rebuild(|old, out| {
            out.put_slice(old);
            put_tlv(out, tag, value);
        });
    }

    /// Replaces the first TLV with this tag, or appends one.
    pub fn set(&mut self, tag: u16, value: &[u8]) {
        if self.get(tag).is_none() {
            return self.push(tag, value);
        }
        let mut done = false;
        let old = self.raw.clone();
        self.rebuild(|_, out| {
            for t in (TlvIter { rest: &old }) {
                if t.tag == tag && !done {
                    put_tlv(out, tag, value);
                    done = true;
                } else {
                    put_tlv(out, t.tag, t.value);
                }
            }
        });
    }

    pub fn set_u8(&mut self, tag: u16, v: u8) {
        self.set(tag, &[v]);
    }

    pub fn set_u16(&mut self, tag: u16, v: u16) {
        self.set(tag, &v.to_be_bytes());
    }

    /// Sets a C-Octet String value (appends the NUL).
    pub fn set_cstr(&mut self, tag: u16, s: &[u8]) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s);
        v.push(0);
        self.set(tag, &v);
    }

    /// Removes every TLV with this tag; true if there was one.
    pub fn remove(&mut self, tag: u16) -> bool {
        if self.get(tag).is_none() {
            return false;
        }
        let old = self.raw.clone();
        self.rebuild(|_, out| {
            for t in (TlvIter { rest: &old }).filter(|t| t.tag != tag) {
                put_tlv(out, t.tag, t.value);
            }
        });
        true
    }

    /// Octets these TLVs take on the wire.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        self.raw.len()
    }

    #[inline]
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.raw);
    }

    /// Validates the TLVs to the end of the frame and keeps them as one slice.
    #[inline]
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Tlvs, FieldError> {
        if r.is_empty() {
            return Ok(Tlvs::new());
        }
        let raw = r.octets(r.remaining(), "tlv")?;
        let mut rest = &raw[..];
        while !rest.is_empty() {
            let Some((head, tail)) = rest.split_first_chunk::<4>() else {
                return Err(stream_error("tlv"));
            };
            let tag = u16::from_be_bytes([head[0], head[1]]);
            let len = u16::from_be_bytes([head[2], head[3]]);
            let spec = tlv_spec(tag);
            let field = spec.map_or("tlv", |s| s.name);
            let Some((_, tail)) = tail.split_at_checked(len as usize) else {
                return Err(stream_error(field));
            };
            if let Some(s) = spec {
                if len < s.min || len > s.max {
                    return Err(FieldError {
                        field,
                        kind: FieldErrorKind::TlvLength,
                        status: CommandStatus::RINVPARLEN,
                    });
                }
            }
            rest = tail;
        }
        Ok(Tlvs { raw })
    }
}

fn put_tlv(out: &mut BytesMut, tag: u16, value: &[u8]) {
    let len = value.len().min(u16::MAX as usize);
    out.put_u16(tag);
    out.put_u16(len as u16);
    out.put_slice(&value[..len]);
}

fn stream_error(field: &'static str) -> FieldError {
    FieldError {
        field,
        kind: FieldErrorKind::TlvStream,
        status: CommandStatus::RINVTLVSTREAM,
    }
}

impl core::fmt::Debug for Tlvs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|t| {
                let name = tlv_spec(t.tag).map_or("tlv", |s| s.name);
                (name, t.tag, t.value)
            }))
            .finish()
    }
}

impl<'a> FromIterator<Tlv<'a>> for Tlvs {
    fn from_iter<I: IntoIterator<Item = Tlv<'a>>>(iter: I) -> Self {
        let mut out = BytesMut::new();
        for t in iter {
            put_tlv(&mut out, t.tag, t.value);
        }
        Tlvs { raw: out.freeze() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_in_place_push_appends_remove_drops_all() {
        let mut t = Tlvs::new();
        t.push(tag::USER_MESSAGE_REFERENCE, &[0, 1]);
        t.push(0x1400, b"v");
        t.push(tag::USER_MESSAGE_REFERENCE, &[0, 2]);
        t.set_u16(tag::USER_MESSAGE_REFERENCE, 7);
        let tags: Vec<(u16, &[u8])> = t.iter().map(|x| (x.tag, x.value)).collect();
        assert_eq!(
            tags,
            vec![
                (0x0204, &[0u8, 7][..]),
                (0x1400, &b"v"[..]),
                (0x0204, &[0u8, 2][..])
            ]
        );
        t.set_cstr(tag::RECEIPTED_MESSAGE_ID, b"abc");
        assert_eq!(t.get_cstr(tag::RECEIPTED_MESSAGE_ID), Some(&b"abc"[..]));
        assert_eq!(t.get(tag::RECEIPTED_MESSAGE_ID), Some(&b"abc\0"[..]));
        assert!(t.remove(tag::USER_MESSAGE_REFERENCE));
        assert!(!t.remove(tag::USER_MESSAGE_REFERENCE));
        assert_eq!(t.len(), 2);
        assert_eq!(t.encoded_len(), 4 + 1 + 4 + 4);
    }

    #[test]
    fn table_is_sorted_for_binary_search() {
        for w in TLV_TABLE.windows(2) {
            assert!(w[0].tag < w[1].tag, "{} before {}", w[0].name, w[1].name);
        }
    }
}
