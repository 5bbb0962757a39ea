//! How a message ends: its final record and `Ended` action, and the receipt its originator
//! asked for (written by the gateway, or the upstream's relayed), itself a message of its own.

use bytes::{Bytes, BytesMut};

use super::receipt::{gateway_receipt, relay_receipt, Reported, UpstreamReceipt};
use super::{append, Action, End, Flow, Incoming, Log, St, Target};
use crate::ids::{AccountId, LinkId, MessageId};
use crate::smpp::receipt::IdKey;
use crate::smpp::{CommandStatus, Pdu, RegisteredDelivery};
use crate::store::record::{Kind, Record, StoredMessage};
use crate::text::Charset;

impl Flow {
    /// A message with no route: final now, with the receipt its originator asked for.
    pub(super) fn end_unrouted(&mut self, log: &dyn Log, inc: Incoming, now: u64) {
        let id = inc.msg.id;
        let (lsn, at) = append(
            &mut self.last_lsn,
            log,
            &Record::Final {
                id,
                state: End::NO_ROUTE.state.0,
                tp_status: End::NO_ROUTE.tp_status,
                status: 0,
            },
        );
        self.actions.push_back(Action::Ended {
            id,
            billid: inc.msg.billid,
            kind: inc.msg.kind,
            origin: inc.msg.origin.clone(),
            target: None,
            end: End::NO_ROUTE,
            status: CommandStatus::ROK,
            failures: 0,
            on_backup: false,
            accepted_ms: inc.msg.accepted_ms,
            upstream_id: None,
            lsn,
            at,
        });
        self.receipt_for(
            log,
            &inc.msg,
            inc.origin,
            inc.zero,
            End::NO_ROUTE,
            None,
            now,
        );
    }

    /// The message is final: its record, the `Ended` action, and the receipt its originator
    /// asked for (`relayed`: the upstream's own, rewritten; else the gateway writes one).
    pub(super) fn finish(
        &mut self,
        log: &dyn Log,
        id: MessageId,
        end: End,
        status: CommandStatus,
        relayed: Option<Pdu>,
        now: u64,
    ) {
        let Some(e) = self.msgs.get_mut(&id) else {
            return;
        };
        let quotes = relayed.is_none()
            && e.origin().is_some()
            && e.kind() != Kind::Receipt
            && end.wanted_by(e.registered_delivery());
        // (A parked message is never one waiting for its receipt: nothing is relayed for it.)
        if (quotes || (relayed.is_some() && e.parked())) && e.spilled() {
            // The receipt the gateway writes quotes the text: the body comes back first.
            e.st = St::Finishing(end, status);
            return self.load(id);
        }
        let Some(mut e) = self.msgs.remove(&id) else {
            return;
        };
        if !e.spilled() {
            self.resident -= 1;
        }
        if e.loading && e.queue_load {
            if let Some(q) = self.queues.get_mut(&e.target) {
                q.loading = q.loading.saturating_sub(1);
            }
        }
        // It may have stood at the head of its queue, waiting for its body: the queue goes on.
        let requeue = (e.st == St::Queued || e.loading).then_some(e.target);
        if let Some(n) = self.seg_live.get_mut(&e.snap.seg) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.seg_live.remove(&e.snap.seg);
            }
        }
        if let Some(k) = e.receipt_key.take() {
            self.receipts.remove(&*k);
        }
        self.ended += 1;
        if self.ended % super::memory::TRIM_EVERY == 0 {
            self.trim();
        }
        let (target, origin, zero) = (e.target, e.origin(), e.zero);
        let msg = e.into_msg(id, &self.names);
        let (lsn, at) = append(
            &mut self.last_lsn,
            log,
            &Record::Final {
                id,
                state: end.state.0,
                tp_status: end.tp_status,
                status: status.0,
            },
        );
        self.actions.push_back(Action::Ended {
            id,
            billid: msg.billid,
            kind: msg.kind,
            origin: msg.origin.clone(),
            target: Some(target),
            end,
            status,
            failures: msg.failures,
            on_backup: msg.on_backup,
            accepted_ms: msg.accepted_ms,
            upstream_id: msg.forwarded.as_ref().map(|f| f.upstream_id.clone()),
            lsn,
            at,
        });
        self.receipt_for(log, &msg, origin, zero, end, relayed, now);
        if let Some(t) = requeue {
            self.pull(t, now);
        }
    }

    /// Makes the receipt of `msg`'s end a message of its own, for the originator, when the
    /// originator is an ESME and asked for it. Returns the LSN of its record.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn receipt_for(
        &mut self,
        log: &dyn Log,
        msg: &StoredMessage,
        origin: Option<AccountId>,
        zero: Charset,
        end: End,
        relayed: Option<Pdu>,
        now: u64,
    ) -> Option<u64> {
        let origin = origin?;
        if msg.kind == Kind::Receipt || !end.wanted_by(msg.registered_delivery) {
            return None;
        }
        let hex = msg.billid.to_hex();
        let pdu = match relayed {
            Some(p) => p,
            None => {
                let request = Pdu::decode(&msg.pdu).ok()?;
                gateway_receipt(&Reported {
                    request: &request,
                    id: &hex,
                    accepted_ms: msg.accepted_ms,
                    done_ms: now,
                    end,
                    zero,
                })
            }
        };
        Some(self.new_receipt(log, msg, origin, pdu, now))
    }

    pub(super) fn new_receipt(
        &mut self,
        log: &dyn Log,
        msg: &StoredMessage,
        origin: AccountId,
        pdu: Pdu,
        now: u64,
    ) -> u64 {
        let (target, target_name) = self
            .reports
            .as_ref()
            .and_then(|r| r.route(msg, &pdu))
            .unwrap_or((Target::Esme(origin), msg.origin.clone()));
        let mut buf = BytesMut::with_capacity(256);
        pdu.encode(&mut buf);
        let id = self.ids.next_id();
        let receipt = StoredMessage {
            id,
            billid: msg.billid,
            kind: Kind::Receipt,
            origin: msg.target.clone(),
            target: target_name,
            registered_delivery: 0,
            accepted_ms: now,
            not_before_ms: 0,
            expires_ms: now.saturating_add(self.policy.validity_ms),
            retries: self.policy.retries,
            failures: 0,
            on_backup: false,
            forwarded: None,
            pdu: buf.freeze(),
            report_to: Bytes::new(),
        };
        self.accept(
            log,
            Incoming {
                msg: receipt,
                target: Some(target),
                origin: None,
                zero: Charset::Gsm7,
            },
            now,
        )
    }

    /// A receipt from link `link` for upstream id `key`. Returns the LSN the link's answer
    /// waits for, or `None` when no message of this shard waits for it.
    pub fn receipt(
        &mut self,
        log: &dyn Log,
        link: LinkId,
        key: IdKey,
        r: &UpstreamReceipt,
        pdu: &Pdu,
        now: u64,
    ) -> Option<u64> {
        let id = *self.receipts.get(&(link, key.clone()))?;
        let e = self.msgs.get(&id)?;
        if matches!(e.st, St::Finishing(..)) {
            // Its end is known already (a second final receipt): nothing to log.
            return Some(0);
        }
        let (billid, origin, rd) = (e.billid(), e.origin(), e.registered_delivery());
        if r.intermediate {
            // Progress: relayed when the originator asked for intermediate notifications.
            if let (Some(origin), true) = (origin, RegisteredDelivery(rd).wants_intermediate()) {
                let relayed = relay_receipt(pdu, &billid.to_hex());
                // (Waiting for its receipt, so whole.)
                let Some(msg) = e.msg().cloned() else {
                    return Some(0);
                };
                return Some(self.new_receipt(log, &msg, origin, relayed, now));
            }
            // Nothing to log: the link may be answered at once.
            return Some(0);
        }
        let relayed = relay_receipt(pdu, &billid.to_hex());
        self.finish(log, id, r.end, CommandStatus::ROK, Some(relayed), now);
        Some(self.last_lsn)
    }
}
