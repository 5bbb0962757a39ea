//! One reading of the message-carrying PDUs (submit_sm, deliver_sm, data_sm, one destination
//! of submit_multi) and typed views of the two flag octets everyone asks about:
//! `esm_class` (is it a receipt? does it carry a UDH?) and `registered_delivery` (which
//! receipts does the sender want?).

use bytes::Bytes;

use super::pdu::{Body, DeliverSm, Pdu};
use super::tlv::tag;
use super::{Address, COctet};

/// `esm_class`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EsmClass(pub u8);

impl EsmClass {
    /// Bits 5-2: 0x04 a delivery receipt, 0x20 an intermediate notification (both reports
    /// about an earlier message).
    pub const fn is_report(self) -> bool {
        matches!(self.0 & 0x3C, 0x04 | 0x20)
    }

    pub const fn is_intermediate(self) -> bool {
        self.0 & 0x3C == 0x20
    }

    /// Bit 6: the user data starts with a user data header.
    pub const fn udhi(self) -> bool {
        self.0 & 0x40 != 0
    }

    /// What travels with a message to its next hop: the UDHI and reply-path bits; the
    /// messaging mode and type are the sender's business.
    pub const fn forwarded(self) -> EsmClass {
        EsmClass(self.0 & 0xC0)
    }
}

/// `registered_delivery`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RegisteredDelivery(pub u8);

impl RegisteredDelivery {
    /// Bits 1-0 ask for a receipt: 1 on success or failure, 2 on failure, 3 on success (5.0).
    pub const fn wants_receipt(self) -> bool {
        self.0 & 0x03 != 0
    }

    /// Bit 4: intermediate notifications wanted.
    pub const fn wants_intermediate(self) -> bool {
        self.0 & 0x10 != 0
    }
}

/// The fields of a message-carrying PDU, whatever its command.
#[derive(Clone, Debug)]
pub struct MessageView<'a> {
    pub service_type: &'a COctet,
    pub source: &'a Address,
    pub dest: &'a Address,
    pub esm_class: EsmClass,
    pub registered_delivery: RegisteredDelivery,
    pub data_coding: u8,
    pub validity_period: Option<&'a COctet>,
    pub schedule_delivery_time: Option<&'a COctet>,
    /// short_message, or the message_payload TLV when short_message is empty.
    pub user_data: Bytes,
}

impl Pdu {
    /// The message this PDU carries (`None` for other commands and for submit_multi, whose
    /// destinations are read one at a time).
    pub fn message(&self) -> Option<MessageView<'_>> {
        let payload = || {
            self.tlvs
                .get_bytes(tag::MESSAGE_PAYLOAD)
                .unwrap_or_default()
        };
        match &self.body {
            Body::SubmitSm(m) | Body::DeliverSm(m) => Some(MessageView {
                service_type: &m.service_type,
                source: &m.source,
                dest: &m.dest,
                esm_class: EsmClass(m.esm_class),
                registered_delivery: RegisteredDelivery(m.registered_delivery),
                data_coding: m.data_coding,
                validity_period: Some(&m.validity_period),
                schedule_delivery_time: Some(&m.schedule_delivery_time),
                user_data: if m.short_message.is_empty() {
                    payload()
                } else {
                    m.short_message.clone()
                },
            }),
            Body::DataSm(m) => Some(MessageView {
                service_type: &m.service_type,
                source: &m.source,
                dest: &m.dest,
                esm_class: EsmClass(m.esm_class),
                registered_delivery: RegisteredDelivery(m.registered_delivery),
                data_coding: m.data_coding,
                validity_period: None,
                schedule_delivery_time: None,
                user_data: payload(),
            }),
            _ => None,
        }
    }
}

/// A submit_sm, data_sm or deliver_sm as the deliver_sm that carries it to an ESME (`None`
/// for other requests). Scheduling, validity and receipt requests stay with the gateway; the
/// UDHI and reply-path bits of esm_class travel with the message.
pub fn as_deliver_sm(body: &Body) -> Option<DeliverSm> {
    match body {
        Body::SubmitSm(m) | Body::DeliverSm(m) => Some(DeliverSm {
            esm_class: EsmClass(m.esm_class).forwarded().0,
            schedule_delivery_time: COctet::default(),
            validity_period: COctet::default(),
            registered_delivery: 0,
            replace_if_present_flag: 0,
            ..m.clone()
        }),
        Body::DataSm(m) => Some(DeliverSm {
            service_type: m.service_type.clone(),
            source: m.source.clone(),
            dest: m.dest.clone(),
            esm_class: EsmClass(m.esm_class).forwarded().0,
            data_coding: m.data_coding,
            ..DeliverSm::default()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esm_class_reads_reports_and_udhi() {
        assert!(EsmClass(0x04).is_report());
        assert!(EsmClass(0x20).is_report() && EsmClass(0x20).is_intermediate());
        assert!(!EsmClass(0x40).is_report() && EsmClass(0x40).udhi());
        assert_eq!(EsmClass(0x43).forwarded(), EsmClass(0x40));
    }

    #[test]
    fn registered_delivery_reads_its_bits() {
        assert!(RegisteredDelivery(1).wants_receipt());
        assert!(RegisteredDelivery(2).wants_receipt());
        assert!(!RegisteredDelivery(0x10).wants_receipt());
        assert!(RegisteredDelivery(0x10).wants_intermediate());
    }
}
