//! Every PDU of SMPP 3.4 and 5.0: the parsed form ([`Pdu`]), its decoder and its encoder.
//!
//! One form only, in the spirit of smoltcp's `Repr`: fields are plain values and `Bytes`
//! slices of the frame they came from, so decoding allocates nothing per field and a message
//! forwarded unchanged re-encodes from the same slices. TLVs live on the [`Pdu`], not on the
//! body, because 5.0 allows some (congestion_state) on any response, including the header-only
//! ones.
//!
//! Responses may arrive with an empty body (3.4 says so for error responses; many SMSCs do it
//! for every error). Their mandatory part is an `Option`: `None` decodes from, and encodes to,
//! an empty body, so such a PDU re-encodes byte-identically.
//!
//! Field limits follow `SMPP.md` section 2; where 3.4 and 5.0 (or common implementations)
//! differ, decode accepts the larger limit.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

use super::codec::{
    put_address, put_cstring, Address, COctet, DecodeError, FieldError, FieldErrorKind, Reader,
};
use super::header::{Header, HEADER_LEN};
use super::tlv::Tlvs;
use super::{CommandId, CommandStatus};

/// Largest short_message (5.0 allows 255; 3.4 says 254).
pub const MAX_SHORT_MESSAGE: usize = 255;

/// bind_transmitter, bind_receiver and bind_transceiver share one body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bind {
    pub system_id: COctet,
    pub password: COctet,
    pub system_type: COctet,
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: COctet,
}

/// outbind: the MC asks the ESME to bind on this connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbind {
    pub system_id: COctet,
    pub password: COctet,
}

/// The body of submit_sm and deliver_sm (identical on the wire).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubmitSm {
    pub service_type: COctet,
    pub source: Address,
    pub dest: Address,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: COctet,
    pub validity_period: COctet,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    /// Up to 255 octets; `sm_length` on the wire is its length.
    pub short_message: Bytes,
}

/// deliver_sm has the same fields as submit_sm.
pub type DeliverSm = SubmitSm;

/// One destination of submit_multi.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestAddress {
    /// dest_flag 1: an SME address.
    Sme(Address),
    /// dest_flag 2: a distribution list name.
    DistributionList(COctet),
}

/// submit_multi: submit_sm with a list of destinations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubmitMulti {
    pub service_type: COctet,
    pub source: Address,
    pub dests: Vec<DestAddress>,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: COctet,
    pub validity_period: COctet,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Bytes,
}

/// A destination submit_multi could not reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsuccessSme {
    pub dest: Address,
    pub error_status_code: CommandStatus,
}

/// submit_multi_resp's mandatory part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubmitMultiResp {
    pub message_id: COctet,
    pub unsuccess: SmallVec<[UnsuccessSme; 1]>,
}

/// data_sm: the payload travels in the message_payload TLV.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataSm {
    pub service_type: COctet,
    pub source: Address,
    pub dest: Address,
    pub esm_class: u8,
    pub registered_delivery: u8,
    pub data_coding: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuerySm {
    pub message_id: COctet,
    pub source: Address,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuerySmResp {
    pub message_id: COctet,
    pub final_date: COctet,
    pub message_state: u8,
    pub error_code: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CancelSm {
    pub service_type: COctet,
    pub message_id: COctet,
    pub source: Address,
    pub dest: Address,
}

/// replace_sm (no service_type, whatever Kannel's definition says).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplaceSm {
    pub message_id: COctet,
    pub source: Address,
    pub schedule_delivery_time: COctet,
    pub validity_period: COctet,
    pub registered_delivery: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Bytes,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertNotification {
    pub source: Address,
    pub esme_addr: Address,
}

/// broadcast_sm (5.0); the broadcast parameters are TLVs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BroadcastSm {
    pub service_type: COctet,
    pub source: Address,
    pub message_id: COctet,
    pub priority_flag: u8,
    pub schedule_delivery_time: COctet,
    pub validity_period: COctet,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryBroadcastSm {
    pub message_id: COctet,
    pub source: Address,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CancelBroadcastSm {
    pub service_type: COctet,
    pub message_id: COctet,
    pub source: Address,
}

/// The command-specific part of a PDU. The variant determines `command_id`.
///
/// Responses whose body may be empty hold an `Option`: `None` is the empty body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    GenericNack,
    BindReceiver(Bind),
    BindTransmitter(Bind),
    BindTransceiver(Bind),
    /// system_id of the MC.
    BindReceiverResp(Option<COctet>),
    BindTransmitterResp(Option<COctet>),
    BindTransceiverResp(Option<COctet>),
    Outbind(Outbind),
    Unbind,
    UnbindResp,
    EnquireLink,
    EnquireLinkResp,
    SubmitSm(SubmitSm),
    /// message_id.
    SubmitSmResp(Option<COctet>),
    DeliverSm(DeliverSm),
    /// message_id (NULL in 3.4).
    DeliverSmResp(Option<COctet>),
    SubmitMulti(SubmitMulti),
    SubmitMultiResp(Option<SubmitMultiResp>),
    DataSm(DataSm),
    DataSmResp(Option<COctet>),
    QuerySm(QuerySm),
    QuerySmResp(Option<QuerySmResp>),
    CancelSm(CancelSm),
    CancelSmResp,
    ReplaceSm(ReplaceSm),
    ReplaceSmResp,
    AlertNotification(AlertNotification),
    BroadcastSm(BroadcastSm),
    BroadcastSmResp(Option<COctet>),
    QueryBroadcastSm(QueryBroadcastSm),
    QueryBroadcastSmResp(Option<COctet>),
    CancelBroadcastSm(CancelBroadcastSm),
    CancelBroadcastSmResp,
}

impl Body {
    /// The command_id this body is sent with.
    pub const fn command_id(&self) -> CommandId {
        match self {
            Body::GenericNack => CommandId::GENERIC_NACK,
            Body::BindReceiver(_) => CommandId::BIND_RECEIVER,
            Body::BindTransmitter(_) => CommandId::BIND_TRANSMITTER,
            Body::BindTransceiver(_) => CommandId::BIND_TRANSCEIVER,
            Body::BindReceiverResp(_) => CommandId::BIND_RECEIVER_RESP,
            Body::BindTransmitterResp(_) => CommandId::BIND_TRANSMITTER_RESP,
            Body::BindTransceiverResp(_) => CommandId::BIND_TRANSCEIVER_RESP,
            Body::Outbind(_) => CommandId::OUTBIND,
            Body::Unbind => CommandId::UNBIND,
            Body::UnbindResp => CommandId::UNBIND_RESP,
            Body::EnquireLink => CommandId::ENQUIRE_LINK,
            Body::EnquireLinkResp => CommandId::ENQUIRE_LINK_RESP,
            Body::SubmitSm(_) => CommandId::SUBMIT_SM,
            Body::SubmitSmResp(_) => CommandId::SUBMIT_SM_RESP,
            Body::DeliverSm(_) => CommandId::DELIVER_SM,
            Body::DeliverSmResp(_) => CommandId::DELIVER_SM_RESP,
            Body::SubmitMulti(_) => CommandId::SUBMIT_MULTI,
            Body::SubmitMultiResp(_) => CommandId::SUBMIT_MULTI_RESP,
            Body::DataSm(_) => CommandId::DATA_SM,
            Body::DataSmResp(_) => CommandId::DATA_SM_RESP,
            Body::QuerySm(_) => CommandId::QUERY_SM,
            Body::QuerySmResp(_) => CommandId::QUERY_SM_RESP,
            Body::CancelSm(_) => CommandId::CANCEL_SM,
            Body::CancelSmResp => CommandId::CANCEL_SM_RESP,
            Body::ReplaceSm(_) => CommandId::REPLACE_SM,
            Body::ReplaceSmResp => CommandId::REPLACE_SM_RESP,
            Body::AlertNotification(_) => CommandId::ALERT_NOTIFICATION,
            Body::BroadcastSm(_) => CommandId::BROADCAST_SM,
            Body::BroadcastSmResp(_) => CommandId::BROADCAST_SM_RESP,
            Body::QueryBroadcastSm(_) => CommandId::QUERY_BROADCAST_SM,
            Body::QueryBroadcastSmResp(_) => CommandId::QUERY_BROADCAST_SM_RESP,
            Body::CancelBroadcastSm(_) => CommandId::CANCEL_BROADCAST_SM,
            Body::CancelBroadcastSmResp => CommandId::CANCEL_BROADCAST_SM_RESP,
        }
    }

    /// The body a PDU of this id has when it is only a header: the PDUs without a body, and
    /// every response in its empty form. `None` for requests that need a body.
    #[inline]
    pub const fn header_only(id: CommandId) -> Option<Body> {
        match id {
            CommandId::ENQUIRE_LINK => Some(Body::EnquireLink),
            CommandId::UNBIND => Some(Body::Unbind),
            CommandId::GENERIC_NACK => Some(Body::GenericNack),
            id if id.is_response() => Body::empty_response(id.request()),
            _ => None,
        }
    }

    /// The response body with its mandatory part absent (the form error responses take),
    /// for a request that has a response.
    pub const fn empty_response(request: CommandId) -> Option<Body> {
        Some(match request {
            CommandId::BIND_RECEIVER => Body::BindReceiverResp(None),
            CommandId::BIND_TRANSMITTER => Body::BindTransmitterResp(None),
            CommandId::BIND_TRANSCEIVER => Body::BindTransceiverResp(None),
            CommandId::UNBIND => Body::UnbindResp,
            CommandId::ENQUIRE_LINK => Body::EnquireLinkResp,
            CommandId::SUBMIT_SM => Body::SubmitSmResp(None),
            CommandId::DELIVER_SM => Body::DeliverSmResp(None),
            CommandId::SUBMIT_MULTI => Body::SubmitMultiResp(None),
            CommandId::DATA_SM => Body::DataSmResp(None),
            CommandId::QUERY_SM => Body::QuerySmResp(None),
            CommandId::CANCEL_SM => Body::CancelSmResp,
            CommandId::REPLACE_SM => Body::ReplaceSmResp,
            CommandId::BROADCAST_SM => Body::BroadcastSmResp(None),
            CommandId::QUERY_BROADCAST_SM => Body::QueryBroadcastSmResp(None),
            CommandId::CANCEL_BROADCAST_SM => Body::CancelBroadcastSmResp,
            _ => return None,
        })
    }
}

/// A whole PDU: header values, body and TLVs. `command_length` and `command_id` are derived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub command_status: CommandStatus,
    pub sequence_number: u32,
    pub body: Body,
    pub tlvs: Tlvs,
}

impl Pdu {
    /// A request (status 0) without TLVs.
    pub fn new(sequence_number: u32, body: Body) -> Pdu {
        Pdu {
            command_status: CommandStatus::ROK,
            sequence_number,
            body,
            tlvs: Tlvs::new(),
        }
    }

    /// A response with the given status.
    pub fn response(sequence_number: u32, status: CommandStatus, body: Body) -> Pdu {
        Pdu {
            command_status: status,
            sequence_number,
            body,
            tlvs: Tlvs::new(),
        }
    }

    /// The reply to `request` (by id and sequence) with this status and an empty body, or a
    /// generic_nack when the command has no response of its own (outbind,
    /// alert_notification, unknown ids, responses). `None` for a generic_nack, which is never
    /// answered.
    pub fn error_reply(
        request: CommandId,
        sequence_number: u32,
        status: CommandStatus,
    ) -> Option<Pdu> {
        if request == CommandId::GENERIC_NACK {
            return None;
        }
        let body = Body::empty_response(request).unwrap_or(Body::GenericNack);
        Some(Pdu::response(sequence_number, status, body))
    }

    #[inline]
    pub fn command_id(&self) -> CommandId {
        self.body.command_id()
    }

    /// Decodes one complete frame (exactly `command_length` octets, as the framer delivers).
    /// Never panics; every error names the field and the status to answer with.
    #[inline(always)]
    pub fn decode(frame: &Bytes) -> Result<Pdu, DecodeError> {
        // Header-only PDUs (enquire_link, unbind, most error responses) are the bulk of
        // control traffic: this path is small enough to inline into the caller.
        if let Some(header) = Header::parse(frame) {
            if frame.len() == HEADER_LEN && header.command_length as usize == HEADER_LEN {
                if let Some(body) = Body::header_only(header.command_id) {
                    return Ok(Pdu {
                        command_status: header.command_status,
                        sequence_number: header.sequence_number,
                        body,
                        tlvs: Tlvs::new(),
                    });
                }
            }
        }
        Self::decode_body(frame)
    }

    #[inline(never)]
    fn decode_body(frame: &Bytes) -> Result<Pdu, DecodeError> {
        let header = Header::parse(frame).ok_or(DecodeError {
            command_id: CommandId(0),
            sequence_number: 0,
            field: "command_length",
            kind: FieldErrorKind::Truncated,
            status: CommandStatus::RINVCMDLEN,
        })?;
        let fail = |e: FieldError| DecodeError {
            command_id: header.command_id,
            sequence_number: header.sequence_number,
            field: e.field,
            kind: e.kind,
            status: e.status,
        };
        if header.command_length as usize != frame.len() {
            return Err(fail(FieldError {
                field: "command_length",
                kind: FieldErrorKind::TrailingBytes,
                status: CommandStatus::RINVCMDLEN,
            }));
        }
        let mut r = Reader::new(frame, HEADER_LEN);
        let body = decode_body(header.command_id, &mut r).map_err(fail)?;
        let tlvs = Tlvs::decode(&mut r).map_err(fail)?;
        Ok(Pdu {
            command_status: header.command_status,
            sequence_number: header.sequence_number,
            body,
            tlvs,
        })
    }

    /// Appends the encoded PDU to `out`. `command_length` is patched in after the body is
    /// written, so the PDU is encoded in one pass.
    pub fn encode(&self, out: &mut BytesMut) {
        // A hint, not a bound: BytesMut grows past it (submit_multi with many destinations).
        let body_hint = match &self.body {
            Body::SubmitSm(m) | Body::DeliverSm(m) => 96 + m.short_message.len(),
            Body::EnquireLink
            | Body::EnquireLinkResp
            | Body::Unbind
            | Body::UnbindResp
            | Body::GenericNack => 0,
            _ => 256,
        };
        out.reserve(HEADER_LEN + body_hint + self.tlvs.encoded_len());
        let start = out.len();
        out.put_u32(0);
        out.put_u32(self.command_id().0);
        out.put_u32(self.command_status.0);
        out.put_u32(self.sequence_number);
        encode_body(&self.body, out);
        self.tlvs.encode(out);
        let len = (out.len() - start) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// The encoded PDU as a fresh buffer (tests and tools; the data path encodes into a
    /// shared output buffer with [`Pdu::encode`]).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

// ---- decode -------------------------------------------------------------------------------

type R<'a, 'b> = &'a mut Reader<'b>;

#[inline(always)]
fn decode_body(id: CommandId, r: R) -> Result<Body, FieldError> {
    use CommandStatus as S;
    Ok(match id {
        CommandId::GENERIC_NACK => Body::GenericNack,
        CommandId::BIND_RECEIVER => Body::BindReceiver(bind(r)?),
        CommandId::BIND_TRANSMITTER => Body::BindTransmitter(bind(r)?),
        CommandId::BIND_TRANSCEIVER => Body::BindTransceiver(bind(r)?),
        CommandId::BIND_RECEIVER_RESP => {
            Body::BindReceiverResp(opt_id(r, 16, "system_id", S::RINVSYSID)?)
        }
        CommandId::BIND_TRANSMITTER_RESP => {
            Body::BindTransmitterResp(opt_id(r, 16, "system_id", S::RINVSYSID)?)
        }
        CommandId::BIND_TRANSCEIVER_RESP => {
            Body::BindTransceiverResp(opt_id(r, 16, "system_id", S::RINVSYSID)?)
        }
        CommandId::OUTBIND => Body::Outbind(Outbind {
            system_id: r.cstring(16, "system_id", S::RINVSYSID)?,
            password: r.cstring(9, "password", S::RINVPASWD)?,
        }),
        CommandId::UNBIND => Body::Unbind,
        CommandId::UNBIND_RESP => Body::UnbindResp,
        CommandId::ENQUIRE_LINK => Body::EnquireLink,
        CommandId::ENQUIRE_LINK_RESP => Body::EnquireLinkResp,
        CommandId::SUBMIT_SM => Body::SubmitSm(submit_sm(r)?),
        CommandId::DELIVER_SM => Body::DeliverSm(submit_sm(r)?),
        CommandId::SUBMIT_SM_RESP => Body::SubmitSmResp(opt_message_id(r)?),
        CommandId::DELIVER_SM_RESP => Body::DeliverSmResp(opt_message_id(r)?),
        CommandId::DATA_SM_RESP => Body::DataSmResp(opt_message_id(r)?),
        CommandId::BROADCAST_SM_RESP => Body::BroadcastSmResp(opt_message_id(r)?),
        CommandId::QUERY_BROADCAST_SM_RESP => Body::QueryBroadcastSmResp(opt_message_id(r)?),
        CommandId::SUBMIT_MULTI => Body::SubmitMulti(submit_multi(r)?),
        CommandId::SUBMIT_MULTI_RESP => Body::SubmitMultiResp(if r.is_empty() {
            None
        } else {
            Some(submit_multi_resp(r)?)
        }),
        CommandId::DATA_SM => Body::DataSm(DataSm {
            service_type: service_type(r)?,
            source: r.address(65, "source_addr", S::RINVSRCADR)?,
            dest: r.address(65, "destination_addr", S::RINVDSTADR)?,
            esm_class: r.u8("esm_class")?,
            registered_delivery: r.u8("registered_delivery")?,
            data_coding: r.u8("data_coding")?,
        }),
        CommandId::QUERY_SM => Body::QuerySm(QuerySm {
            message_id: message_id(r)?,
            source: r.address(21, "source_addr", S::RINVSRCADR)?,
        }),
        CommandId::QUERY_SM_RESP => Body::QuerySmResp(if r.is_empty() {
            None
        } else {
            Some(QuerySmResp {
                message_id: message_id(r)?,
                final_date: r.time("final_date", S::RINVPARLEN)?,
                message_state: r.u8("message_state")?,
                error_code: r.u8("error_code")?,
            })
        }),
        CommandId::CANCEL_SM => Body::CancelSm(CancelSm {
            service_type: service_type(r)?,
            message_id: message_id(r)?,
            source: r.address(21, "source_addr", S::RINVSRCADR)?,
            dest: r.address(65, "destination_addr", S::RINVDSTADR)?,
        }),
        CommandId::CANCEL_SM_RESP => Body::CancelSmResp,
        CommandId::REPLACE_SM => {
            let message_id = message_id(r)?;
            let source = r.address(21, "source_addr", S::RINVSRCADR)?;
            let schedule_delivery_time = r.time("schedule_delivery_time", S::RINVSCHED)?;
            let validity_period = r.time("validity_period", S::RINVEXPIRY)?;
            let registered_delivery = r.u8("registered_delivery")?;
            let sm_default_msg_id = r.u8("sm_default_msg_id")?;
            let short_message = short_message(r)?;
            Body::ReplaceSm(ReplaceSm {
                message_id,
                source,
                schedule_delivery_time,
                validity_period,
                registered_delivery,
                sm_default_msg_id,
                short_message,
            })
        }
        CommandId::REPLACE_SM_RESP => Body::ReplaceSmResp,
        CommandId::ALERT_NOTIFICATION => Body::AlertNotification(AlertNotification {
            source: r.address(65, "source_addr", S::RINVSRCADR)?,
            esme_addr: r.address(65, "esme_addr", S::RINVDSTADR)?,
        }),
        CommandId::BROADCAST_SM => Body::BroadcastSm(BroadcastSm {
            service_type: service_type(r)?,
            source: r.address(21, "source_addr", S::RINVSRCADR)?,
            message_id: message_id(r)?,
            priority_flag: r.u8("priority_flag")?,
            schedule_delivery_time: r.time("schedule_delivery_time", S::RINVSCHED)?,
            validity_period: r.time("validity_period", S::RINVEXPIRY)?,
            replace_if_present_flag: r.u8("replace_if_present_flag")?,
            data_coding: r.u8("data_coding")?,
            sm_default_msg_id: r.u8("sm_default_msg_id")?,
        }),
        CommandId::QUERY_BROADCAST_SM => Body::QueryBroadcastSm(QueryBroadcastSm {
            message_id: message_id(r)?,
            source: r.address(21, "source_addr", S::RINVSRCADR)?,
        }),
        CommandId::CANCEL_BROADCAST_SM => Body::CancelBroadcastSm(CancelBroadcastSm {
            service_type: service_type(r)?,
            message_id: message_id(r)?,
            source: r.address(21, "source_addr", S::RINVSRCADR)?,
        }),
        CommandId::CANCEL_BROADCAST_SM_RESP => Body::CancelBroadcastSmResp,
        _ => {
            return Err(FieldError {
                field: "command_id",
                kind: FieldErrorKind::UnknownCommand,
                status: CommandStatus::RINVCMDID,
            })
        }
    })
}

fn bind(r: R) -> Result<Bind, FieldError> {
    use CommandStatus as S;
    Ok(Bind {
        system_id: r.cstring(16, "system_id", S::RINVSYSID)?,
        password: r.cstring(9, "password", S::RINVPASWD)?,
        system_type: r.cstring(13, "system_type", S::RINVSYSTYP)?,
        interface_version: r.u8("interface_version")?,
        addr_ton: r.u8("addr_ton")?,
        addr_npi: r.u8("addr_npi")?,
        address_range: r.cstring(41, "address_range", S::RBINDFAIL)?,
    })
}

#[inline]
fn service_type(r: R) -> Result<COctet, FieldError> {
    r.cstring(6, "service_type", CommandStatus::RINVSERTYP)
}

#[inline]
fn message_id(r: R) -> Result<COctet, FieldError> {
    r.cstring(65, "message_id", CommandStatus::RINVMSGID)
}

#[inline]
fn opt_message_id(r: R) -> Result<Option<COctet>, FieldError> {
    opt_id(r, 65, "message_id", CommandStatus::RINVMSGID)
}

/// The single C-Octet String that makes up many response bodies; absent when the body is empty.
#[inline]
fn opt_id(
    r: R,
    max: usize,
    field: &'static str,
    status: CommandStatus,
) -> Result<Option<COctet>, FieldError> {
    if r.is_empty() {
        Ok(None)
    } else {
        r.cstring(max, field, status).map(Some)
    }
}

#[inline]
fn short_message(r: R) -> Result<Bytes, FieldError> {
    let len = r.u8("sm_length")? as usize;
    r.octets(len, "short_message").map_err(|_| FieldError {
        field: "short_message",
        kind: FieldErrorKind::BadMessageLength,
        status: CommandStatus::RINVMSGLEN,
    })
}

/// submit_sm and deliver_sm. Fields are read straight into the struct, in wire order.
#[inline(always)]
fn submit_sm(r: R) -> Result<SubmitSm, FieldError> {
    use CommandStatus as S;
    let service_type = service_type(r)?;
    let source = r.address(21, "source_addr", S::RINVSRCADR)?;
    let dest = r.address(21, "destination_addr", S::RINVDSTADR)?;
    message_tail(r, service_type, source, dest)
}

/// The fields after the addresses, shared by submit_sm and submit_multi (which moves them
/// out of the returned struct; it is rare enough not to matter).
#[inline(always)]
fn message_tail(
    r: R,
    service_type: COctet,
    source: Address,
    dest: Address,
) -> Result<SubmitSm, FieldError> {
    use CommandStatus as S;
    Ok(SubmitSm {
        service_type,
        source,
        dest,
        esm_class: r.u8("esm_class")?,
        protocol_id: r.u8("protocol_id")?,
        priority_flag: r.u8("priority_flag")?,
        schedule_delivery_time: r.time("schedule_delivery_time", S::RINVSCHED)?,
        validity_period: r.time("validity_period", S::RINVEXPIRY)?,
        registered_delivery: r.u8("registered_delivery")?,
        replace_if_present_flag: r.u8("replace_if_present_flag")?,
        data_coding: r.u8("data_coding")?,
        sm_default_msg_id: r.u8("sm_default_msg_id")?,
        short_message: short_message(r)?,
    })
}

fn submit_multi(r: R) -> Result<SubmitMulti, FieldError> {
    use CommandStatus as S;
    let service_type = service_type(r)?;
    let source = r.address(21, "source_addr", S::RINVSRCADR)?;
    let n = r.u8("number_of_dests")?;
    if n == 0 {
        return Err(FieldError {
            field: "number_of_dests",
            kind: FieldErrorKind::BadValue,
            status: S::RINVNUMDESTS,
        });
    }
    let mut dests = Vec::with_capacity(n as usize);
    for _ in 0..n {
        dests.push(match r.u8("dest_flag")? {
            1 => DestAddress::Sme(r.address(21, "dest_address", S::RINVDSTADR)?),
            2 => DestAddress::DistributionList(r.cstring(21, "dl_name", S::RINVDLNAME)?),
            _ => {
                return Err(FieldError {
                    field: "dest_flag",
                    kind: FieldErrorKind::BadValue,
                    status: S::RINVDESTFLAG,
                })
            }
        });
    }
    let t = message_tail(r, COctet::EMPTY, Address::default(), Address::default())?;
    Ok(SubmitMulti {
        service_type,
        source,
        dests,
        esm_class: t.esm_class,
        protocol_id: t.protocol_id,
        priority_flag: t.priority_flag,
        schedule_delivery_time: t.schedule_delivery_time,
        validity_period: t.validity_period,
        registered_delivery: t.registered_delivery,
        replace_if_present_flag: t.replace_if_present_flag,
        data_coding: t.data_coding,
        sm_default_msg_id: t.sm_default_msg_id,
        short_message: t.short_message,
    })
}

fn submit_multi_resp(r: R) -> Result<SubmitMultiResp, FieldError> {
    let message_id = message_id(r)?;
    let n = r.u8("no_unsuccess")?;
    let mut unsuccess = SmallVec::with_capacity(n as usize);
    for _ in 0..n {
        let dest = r.address(21, "unsuccess_sme", CommandStatus::RINVDSTADR)?;
        let error_status_code = CommandStatus(r.u32("error_status_code")?);
        unsuccess.push(UnsuccessSme {
            dest,
            error_status_code,
        });
    }
    Ok(SubmitMultiResp {
        message_id,
        unsuccess,
    })
}

// ---- encode -------------------------------------------------------------------------------

#[inline]
fn put_short_message(out: &mut BytesMut, sm: &Bytes) {
    let len = sm.len().min(MAX_SHORT_MESSAGE);
    out.put_u8(len as u8);
    out.put_slice(&sm[..len]);
}

fn put_opt(out: &mut BytesMut, v: &Option<COctet>) {
    if let Some(s) = v {
        put_cstring(out, s);
    }
}

fn encode_body(body: &Body, out: &mut BytesMut) {
    match body {
        Body::GenericNack
        | Body::Unbind
        | Body::UnbindResp
        | Body::EnquireLink
        | Body::EnquireLinkResp
        | Body::CancelSmResp
        | Body::ReplaceSmResp
        | Body::CancelBroadcastSmResp => {}
        Body::BindReceiver(b) | Body::BindTransmitter(b) | Body::BindTransceiver(b) => {
            put_cstring(out, &b.system_id);
            put_cstring(out, &b.password);
            put_cstring(out, &b.system_type);
            out.put_u8(b.interface_version);
            out.put_u8(b.addr_ton);
            out.put_u8(b.addr_npi);
            put_cstring(out, &b.address_range);
        }
        Body::BindReceiverResp(id)
        | Body::BindTransmitterResp(id)
        | Body::BindTransceiverResp(id)
        | Body::SubmitSmResp(id)
        | Body::DeliverSmResp(id)
        | Body::DataSmResp(id)
        | Body::BroadcastSmResp(id)
        | Body::QueryBroadcastSmResp(id) => put_opt(out, id),
        Body::Outbind(o) => {
            put_cstring(out, &o.system_id);
            put_cstring(out, &o.password);
        }
        Body::SubmitSm(m) | Body::DeliverSm(m) => {
            put_cstring(out, &m.service_type);
            put_address(out, &m.source);
            put_address(out, &m.dest);
            out.put_u8(m.esm_class);
            out.put_u8(m.protocol_id);
            out.put_u8(m.priority_flag);
            put_cstring(out, &m.schedule_delivery_time);
            put_cstring(out, &m.validity_period);
            out.put_u8(m.registered_delivery);
            out.put_u8(m.replace_if_present_flag);
            out.put_u8(m.data_coding);
            out.put_u8(m.sm_default_msg_id);
            put_short_message(out, &m.short_message);
        }
        Body::SubmitMulti(m) => {
            put_cstring(out, &m.service_type);
            put_address(out, &m.source);
            out.put_u8(m.dests.len().min(255) as u8);
            for d in m.dests.iter().take(255) {
                match d {
                    DestAddress::Sme(a) => {
                        out.put_u8(1);
                        put_address(out, a);
                    }
                    DestAddress::DistributionList(n) => {
                        out.put_u8(2);
                        put_cstring(out, n);
                    }
                }
            }
            out.put_u8(m.esm_class);
            out.put_u8(m.protocol_id);
            out.put_u8(m.priority_flag);
            put_cstring(out, &m.schedule_delivery_time);
            put_cstring(out, &m.validity_period);
            out.put_u8(m.registered_delivery);
            out.put_u8(m.replace_if_present_flag);
            out.put_u8(m.data_coding);
            out.put_u8(m.sm_default_msg_id);
            put_short_message(out, &m.short_message);
        }
        Body::SubmitMultiResp(resp) => {
            if let Some(m) = resp {
                put_cstring(out, &m.message_id);
                out.put_u8(m.unsuccess.len().min(255) as u8);
                for u in m.unsuccess.iter().take(255) {
                    put_address(out, &u.dest);
                    out.put_u32(u.error_status_code.0);
                }
            }
        }
        Body::DataSm(d) => {
            put_cstring(out, &d.service_type);
            put_address(out, &d.source);
            put_address(out, &d.dest);
            out.put_u8(d.esm_class);
            out.put_u8(d.registered_delivery);
            out.put_u8(d.data_coding);
        }
        Body::QuerySm(q) => {
            put_cstring(out, &q.message_id);
            put_address(out, &q.source);
        }
        Body::QuerySmResp(resp) => {
            if let Some(q) = resp {
                put_cstring(out, &q.message_id);
                put_cstring(out, &q.final_date);
                out.put_u8(q.message_state);
                out.put_u8(q.error_code);
            }
        }
        Body::CancelSm(c) => {
            put_cstring(out, &c.service_type);
            put_cstring(out, &c.message_id);
            put_address(out, &c.source);
            put_address(out, &c.dest);
        }
        Body::ReplaceSm(m) => {
            put_cstring(out, &m.message_id);
            put_address(out, &m.source);
            put_cstring(out, &m.schedule_delivery_time);
            put_cstring(out, &m.validity_period);
            out.put_u8(m.registered_delivery);
            out.put_u8(m.sm_default_msg_id);
            put_short_message(out, &m.short_message);
        }
        Body::AlertNotification(a) => {
            put_address(out, &a.source);
            put_address(out, &a.esme_addr);
        }
        Body::BroadcastSm(b) => {
            put_cstring(out, &b.service_type);
            put_address(out, &b.source);
            put_cstring(out, &b.message_id);
            out.put_u8(b.priority_flag);
            put_cstring(out, &b.schedule_delivery_time);
            put_cstring(out, &b.validity_period);
            out.put_u8(b.replace_if_present_flag);
            out.put_u8(b.data_coding);
            out.put_u8(b.sm_default_msg_id);
        }
        Body::QueryBroadcastSm(q) => {
            put_cstring(out, &q.message_id);
            put_address(out, &q.source);
        }
        Body::CancelBroadcastSm(c) => {
            put_cstring(out, &c.service_type);
            put_cstring(out, &c.message_id);
            put_address(out, &c.source);
        }
    }
}
