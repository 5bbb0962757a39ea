//! The shard's CDR legs: built from what the shard knows at each step (an ESME's submit, an
//! MO from a link, each attempt's outcome, each end) and handed to the control shard in
//! batches (at each tick, or when a batch is full). Nothing here waits: see `cdr::Sink`.

use bytes::Bytes;

use super::ShardState;
use crate::cdr::{Cdr, Leg};
use crate::flow::{Action, End, Target};
use crate::ids::MessageId;
use crate::smpp::tlv::tag;
use crate::smpp::{CommandStatus, MessageView, Pdu};
use crate::store::record::Kind;

/// Records a shard gathers before it hands them over.
const BATCH: usize = 256;

/// The module and id of a record's name (`smppserver/ID`, `smppclient/ID`).
fn split(name: &Bytes) -> (&'static str, Bytes) {
    match name.iter().position(|&b| b == b'/') {
        Some(i) => {
            let module = match &name[..i] {
                b"smppclient" => "smppclient",
                b"smppserver" => "smppserver",
                _ => "",
            };
            (module, name.slice(i + 1..))
        }
        None => ("", name.clone()),
    }
}

/// Parts of a long message: the UDH concatenation element, else the SAR TLVs; 1 otherwise.
fn segments(pdu: &Pdu, view: &MessageView<'_>) -> u16 {
    if view.esm_class.udhi() {
        if let Some(c) = crate::text::udh::Udh::parse(&view.user_data)
            .ok()
            .and_then(|(u, _)| u.concat())
        {
            return c.total as u16;
        }
    }
    pdu.tlvs
        .get_u8(tag::SAR_TOTAL_SEGMENTS)
        .map_or(1, |n| n.max(1) as u16)
}

impl ShardState {
    fn cdr(&self, c: Cdr) {
        if self.shared.cdr.is_none() {
            return;
        }
        let full = {
            let mut b = self.cdrs.borrow_mut();
            b.push(c);
            b.len() >= BATCH
        };
        if full {
            self.flush_cdrs();
        }
    }

    /// Hands what this shard gathered to the control shard.
    pub fn flush_cdrs(&self) {
        let Some(sink) = &self.shared.cdr else {
            return;
        };
        let batch = std::mem::take(&mut *self.cdrs.borrow_mut());
        if !batch.is_empty() {
            sink.hand(batch);
        }
    }

    pub fn cdrs_on(&self) -> bool {
        self.shared.cdr.is_some()
    }

    /// The message fields of a leg that brings a message in.
    fn incoming(&self, request: &Pdu, leg: Leg, module: &'static str, system_id: Bytes) -> Cdr {
        let view = request.message();
        let (caller, called) = view.as_ref().map_or_else(Default::default, |v| {
            (v.source.addr.bytes().clone(), v.dest.addr.bytes().clone())
        });
        Cdr {
            time_ms: super::messages::now_ms(),
            leg: Some(leg),
            module,
            incoming: true,
            system_id,
            caller,
            called,
            segments: view.as_ref().map_or(0, |v| segments(request, v)),
            data_coding: view.as_ref().map(|v| v.data_coding),
            ..Cdr::default()
        }
    }

    /// An ESME's submit (one destination), accepted as `id` (known to it as `billid`) or
    /// refused with `status`.
    #[allow(clippy::too_many_arguments)]
    pub fn cdr_submit(
        &self,
        request: &Pdu,
        id: Option<MessageId>,
        billid: Option<MessageId>,
        account: &crate::accounts::AccountState,
        target: Option<Target>,
        status: CommandStatus,
        peer: &Bytes,
    ) {
        if !self.cdrs_on() {
            return;
        }
        let c = self.incoming(request, Leg::Submit, "smppserver", split(&account.target).1);
        self.cdr(Cdr {
            billid,
            msgid: id,
            target: target.map_or_else(Bytes::new, |t| self.shared.target_bytes(t)),
            status: Some(status),
            address: peer.clone(),
            outcome: if status.is_ok() {
                "accepted"
            } else {
                "refused"
            },
            ..c
        });
    }

    /// An MO from link `link_name`, logged as `id`.
    pub fn cdr_mo(&self, request: &Pdu, id: MessageId, link_name: &Bytes, target: Option<Target>) {
        if !self.cdrs_on() {
            return;
        }
        let (module, system_id) = split(link_name);
        let c = self.incoming(request, Leg::Mo, module, system_id);
        self.cdr(Cdr {
            billid: Some(id),
            msgid: Some(id),
            target: target.map_or_else(Bytes::new, |t| self.shared.target_bytes(t)),
            status: Some(CommandStatus::ROK),
            outcome: "accepted",
            ..c
        });
    }

    /// The CDR leg of a flow action: an attempt's outcome (`Attempted`), or a message's end
    /// (`Ended`: the `final` leg, or for a receipt the `receipt` leg, whose billid is the
    /// message it reports on).
    pub fn cdr_of(&self, action: &Action) {
        if !self.cdrs_on() {
            return;
        }
        let now = super::messages::now_ms();
        let c = match action {
            Action::Attempted {
                id,
                billid,
                target,
                outcome,
                status,
                upstream_id,
                latency_ms,
                failures,
                on_backup,
                ..
            } => {
                let name = self.shared.target_bytes(*target);
                let (module, system_id) = split(&name);
                Cdr {
                    billid: Some(*billid),
                    msgid: Some(*id),
                    leg: Some(Leg::Attempt),
                    module,
                    incoming: false,
                    system_id,
                    target: name,
                    upstream_id: upstream_id.clone().unwrap_or_default(),
                    status: *status,
                    latency_ms: Some(*latency_ms),
                    failures: *failures,
                    backup: *on_backup,
                    outcome,
                    address: match target {
                        Target::Link(l) => self
                            .link(*l)
                            .map_or_else(Bytes::new, |l| l.address.borrow().clone()),
                        Target::Esme(_) => Bytes::new(),
                    },
                    ..Cdr::default()
                }
            }
            Action::Ended {
                id,
                billid,
                kind,
                origin,
                target,
                end,
                status,
                failures,
                on_backup,
                accepted_ms,
                upstream_id,
            } => {
                let target = target.map_or_else(Bytes::new, |t| self.shared.target_bytes(t));
                let (leg, incoming, (module, system_id)) = match kind {
                    // A receipt goes out to the originator: its leg names that account.
                    Kind::Receipt => (Leg::Receipt, false, split(&target)),
                    Kind::Submit | Kind::Mo => (Leg::Final, true, split(origin)),
                };
                Cdr {
                    billid: Some(*billid),
                    msgid: Some(*id),
                    leg: Some(leg),
                    module,
                    incoming,
                    system_id,
                    target,
                    upstream_id: upstream_id.clone().unwrap_or_default(),
                    status: Some(*status),
                    tp_status: Some(end.tp_status),
                    message_state: Some(end.state),
                    latency_ms: Some(now.saturating_sub(*accepted_ms)),
                    failures: *failures,
                    backup: *on_backup,
                    outcome: if end.delivered() || *end == End::FORWARDED {
                        "delivered"
                    } else {
                        "undelivered"
                    },
                    ..Cdr::default()
                }
            }
            Action::Send { .. } | Action::Load { .. } => return,
        };
        self.cdr(Cdr { time_ms: now, ..c });
    }
}
