//! Intake: a message from an ESME (submit_sm, data_sm, each destination of a submit_multi)
//! or from the HTTP API is routed, given its record and handed to the flow, with the submit's
//! CDR leg. Shared by the SMPP and HTTP front ends so both take messages in the same way.

use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};

use super::messages::now_ms;
use super::routing::{as_text, fill_params, Route};
use super::{sim, ShardState};
use crate::accounts::AccountState;
use crate::flow::{Incoming, Target};
use crate::ids::MessageId;
use crate::smpp::{Address, Body, CommandStatus, MessageView, Pdu};
use crate::store::record::{Kind, StoredMessage};

/// The front end a message came in through (the route rules' `module` and `submit_info`,
/// and the CDR's module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via<'a> {
    Smpp,
    /// `report_to`: where its status reports go (a URL, or `GET ` and a Kannel dlr-url), or
    /// empty.
    Http {
        report_to: &'a Bytes,
    },
}

impl Via<'_> {
    pub const fn module(self) -> &'static str {
        match self {
            Via::Smpp => "smppserver",
            Via::Http { .. } => "http",
        }
    }
}

/// Where one message goes, as intake decided.
pub enum Decision {
    To(Target),
    /// Accepted, and ended undeliverable at once (why, for the metrics).
    NoRoute(&'static str),
    /// Answered with this status; nothing is logged.
    Refuse(CommandStatus),
    /// No route file and no default_route: the gateway terminates it.
    Terminate,
}

impl ShardState {
    /// Routes one destination; `billid` is the id the ESME gets (route rules see it).
    pub fn decide(
        &self,
        pdu: &Pdu,
        source: &Address,
        dest: &Address,
        account: &AccountState,
        billid: MessageId,
        via: Via<'_>,
    ) -> Decision {
        let d = self.decide_target(pdu, source, dest, account, billid, via);
        if let Some(m) = &self.metrics {
            let shared = &self.shared;
            match &d {
                Decision::To(t) => m.routed_to(*t, || shared.target_name(*t)),
                Decision::NoRoute(reason) => m.no_route(reason),
                Decision::Refuse(_) => m.route_refused(),
                Decision::Terminate => m.route_terminated(),
            }
        }
        d
    }

    fn decide_target(
        &self,
        pdu: &Pdu,
        source: &Address,
        dest: &Address,
        account: &AccountState,
        billid: MessageId,
        via: Via<'_>,
    ) -> Decision {
        let shared = &self.shared;
        let route = if shared.routes.version() == 0 {
            Route::NoTable
        } else {
            let mut r = self.router.borrow_mut();
            fill_params(
                &mut r.params,
                pdu,
                source,
                &[dest],
                &account.system_id,
                via.module(),
            );
            r.params.set("billid", as_text(&billid.to_hex()));
            r.decide(shared, self.live().default_link, self.id)
        };
        let target = match route {
            Route::NoTable => match self.live().default_link {
                Some(l) if !super::routing::sendable(shared, l) => {
                    self.log_unrouted(|| {
                        format!(
                            "{}: default_route smppclient/{}, which {}",
                            account.system_id,
                            shared.links[l].name,
                            super::routing::unsendable_why(shared, l)
                        )
                    });
                    return Decision::NoRoute("link_cannot_send");
                }
                Some(l) => Target::Link(l),
                None => return Decision::Terminate,
            },
            Route::Forward(l) => Target::Link(l),
            Route::Deliver(a) => Target::Esme(a),
            Route::Http(h) => Target::Http(h),
            Route::NoRoute { why, reason } => {
                self.log_unrouted(|| format!("{}: {why}", account.system_id));
                shared
                    .counters(self.id)
                    .unrouted
                    .fetch_add(1, Ordering::Relaxed);
                return Decision::NoRoute(reason);
            }
            Route::Refuse { status, why } => {
                self.log_refusal(|| format!("{}: {why}", account.system_id));
                shared
                    .counters(self.id)
                    .unrouted
                    .fetch_add(1, Ordering::Relaxed);
                return Decision::Refuse(status);
            }
        };
        let limit = shared.config.general.queue_limit;
        if self.msgs.flow.borrow().queued(target) >= limit {
            self.log_refusal(|| {
                format!(
                    "{}: {limit} messages already wait for {}; answered ESME_RMSGQFUL",
                    account.system_id,
                    shared.target_name(target)
                )
            });
            return Decision::Refuse(CommandStatus::RMSGQFUL);
        }
        Decision::To(target)
    }

    /// The record of one message (`request`: the PDU as it will be attempted).
    #[allow(clippy::too_many_arguments)]
    fn stored(
        &self,
        id: MessageId,
        billid: MessageId,
        account: &AccountState,
        target: Option<Target>,
        view: &MessageView<'_>,
        request: &Pdu,
        via: Via<'_>,
    ) -> StoredMessage {
        let shared = &self.shared;
        let now = now_ms();
        let mut buf = BytesMut::with_capacity(64 + view.user_data.len());
        request.encode(&mut buf);
        let retries = self.router.borrow().retries.unwrap_or(match target {
            Some(Target::Esme(_)) => {
                shared.config.general.delivery_attempts.saturating_sub(1) as u16
            }
            _ => self.live().policy.retries,
        });
        let (origin, report_to) = match via {
            Via::Smpp => (account.target.clone(), Bytes::new()),
            Via::Http { report_to } => (account.http_origin.clone(), report_to.clone()),
        };
        let target = match target {
            // The message's own URL, as the route gave it.
            Some(Target::Http(_)) => self.router.borrow().url.clone().unwrap_or_default(),
            Some(t) => shared.target_bytes(t),
            None => Bytes::new(),
        };
        StoredMessage {
            id,
            billid,
            kind: Kind::Submit,
            origin,
            target,
            registered_delivery: view.registered_delivery.0,
            accepted_ms: now,
            not_before_ms: view
                .schedule_delivery_time
                .and_then(|t| crate::flow::time::smpp_time_ms(t.as_bytes(), now))
                .unwrap_or(0),
            expires_ms: shared
                .live
                .load()
                .policy
                .expiry_ms(view.validity_period.map_or(&[][..], |v| v.as_bytes()), now),
            retries,
            failures: 0,
            on_backup: false,
            forwarded: None,
            pdu: buf.freeze(),
            report_to,
        }
    }

    /// Logs message `id` (known to the ESME as `billid`) for its decision; returns the LSN
    /// its answer waits for, or the refusal. Writes the submit's CDR leg.
    #[allow(clippy::too_many_arguments)]
    pub fn intake(
        &self,
        request: &Pdu,
        id: MessageId,
        billid: MessageId,
        account: &AccountState,
        decision: Decision,
        peer: &Bytes,
        via: Via<'_>,
    ) -> Result<u64, CommandStatus> {
        // The submit's leg comes first (a message with no route ends inside the intake).
        if self.cdrs_on() {
            let (target, status) = match decision {
                Decision::To(t) => (Some(t), CommandStatus::ROK),
                Decision::Refuse(s) => (None, s),
                Decision::NoRoute(_) | Decision::Terminate => (None, CommandStatus::ROK),
            };
            let status = match request.message() {
                Some(_) => status,
                None => CommandStatus::RINVCMDID,
            };
            let ok = status.is_ok();
            self.cdr_submit(
                request,
                ok.then_some(id),
                ok.then_some(billid),
                account,
                target,
                status,
                peer,
                via.module(),
            );
        }
        self.take_in(request, id, billid, account, decision, via)
    }

    fn take_in(
        &self,
        request: &Pdu,
        id: MessageId,
        billid: MessageId,
        account: &AccountState,
        decision: Decision,
        via: Via<'_>,
    ) -> Result<u64, CommandStatus> {
        // One receipt for a long message (the account's `receipts=message`): the parts before
        // the last ask for none, here and upstream.
        let quiet;
        let request = match quiet_part(request, account) {
            Some(p) => {
                quiet = p;
                &quiet
            }
            None => request,
        };
        let Some(view) = request.message() else {
            return Err(CommandStatus::RINVCMDID);
        };
        let zero = account.coding().unwrap_or(crate::text::Charset::Gsm7);
        let target = match decision {
            Decision::Refuse(status) => return Err(status),
            Decision::Terminate => {
                // Answered as delivered; the receipt (when asked) is a message of its own.
                self.shared
                    .counters(self.id)
                    .accepted
                    .fetch_add(1, Ordering::Relaxed);
                if !view.registered_delivery.wants_receipt()
                    || view.registered_delivery.0 & 0x03 == 2
                {
                    return Ok(0);
                }
                let hex = billid.to_hex();
                let r = sim::receipt(request, &hex, now_ms());
                return Ok(self.receipt_message(account, billid, r, 0));
            }
            Decision::NoRoute(_) => None,
            Decision::To(t) => Some(t),
        };
        let msg = self.stored(id, billid, account, target, &view, request, via);
        self.shared
            .counters(self.id)
            .accepted
            .fetch_add(1, Ordering::Relaxed);
        Ok(self.accept(Incoming {
            msg,
            target,
            origin: Some(account.id),
            zero,
        }))
    }

    /// A receipt for `account` as a message of its own (scheduled `delay_ms` from now).
    pub fn receipt_message(
        &self,
        account: &AccountState,
        billid: MessageId,
        r: Pdu,
        delay_ms: u64,
    ) -> u64 {
        let now = now_ms();
        let mut buf = BytesMut::with_capacity(256);
        r.encode(&mut buf);
        let shared = &self.shared;
        let msg = StoredMessage {
            id: self.next_id(),
            billid,
            kind: Kind::Receipt,
            origin: Bytes::from_static(b"smppgw"),
            target: account.target.clone(),
            registered_delivery: 0,
            accepted_ms: now,
            not_before_ms: if delay_ms > 0 { now + delay_ms } else { 0 },
            expires_ms: self.live().policy.expiry_ms(b"", now),
            retries: shared.config.general.delivery_attempts.saturating_sub(1) as u16,
            failures: 0,
            on_backup: false,
            forwarded: None,
            pdu: buf.freeze(),
            report_to: Bytes::new(),
        };
        self.accept(Incoming {
            msg,
            target: Some(Target::Esme(account.id)),
            origin: None,
            zero: crate::text::Charset::Gsm7,
        })
    }
}

/// With the account's `receipts=message`, a part of a long message other than the last as it
/// goes on: asking for no receipt (`None` for everything else, which goes as it came).
fn quiet_part(request: &Pdu, account: &AccountState) -> Option<Pdu> {
    let policy = account.receipts()?;
    if policy != crate::config::ReceiptPolicy::Message {
        return None;
    }
    let m = request.message()?;
    if !m.registered_delivery.wants_receipt() {
        return None;
    }
    let part = crate::text::part_info(m.esm_class.0, &m.user_data, &request.tlvs).ok()??;
    if part.seq >= part.total {
        return None;
    }
    let mut quiet = request.clone();
    match &mut quiet.body {
        Body::SubmitSm(b) => b.registered_delivery &= !0x03,
        Body::DataSm(b) => b.registered_delivery &= !0x03,
        _ => return None,
    }
    Some(quiet)
}
