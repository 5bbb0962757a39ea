//! What links send the shard: receipts, matched here, on another shard or on another node
//! (else refused for now and remembered, see `unmatched`), and MO, logged and routed like any
//! message.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use log::{info, warn};

use super::messages::{now_ms, Reply, Waiter};
use super::{ShardMsg, ShardState};
use crate::flow::receipt::{read_upstream, UpstreamReceipt};
use crate::flow::{Incoming, Target};
use crate::ids::{LinkId, ShardId};
use crate::smpp::receipt::IdKey;
use crate::smpp::{as_deliver_sm, Body, CommandStatus, Pdu};
use crate::store::record::Kind;

/// How long a receipt whose id no shard knows is asked about again before it is refused for
/// now or dropped (see [`super::unmatched`]; the message's outcome may still be on its way
/// over the mesh).
const UNMATCHED_WAIT: Duration = Duration::from_secs(2);

/// A receipt asked about on the other shards.
pub(super) struct Lookup {
    reply: Reply,
    link: LinkId,
    key: IdKey,
    receipt: UpstreamReceipt,
    pdu: Pdu,
    /// Answers still to come in this round.
    waiting: usize,
    /// Give up (answer the upstream and report it) after this.
    deadline: Instant,
    /// Ask again at this time (after a round found nothing).
    again: Option<Instant>,
    /// The pause before the next round (doubling from 5 ms).
    pause: Duration,
    /// The other nodes of the cluster were asked (once, after this node's shards found
    /// nothing).
    asked_nodes: bool,
}

impl ShardState {
    /// Hands a receipt to this shard's flow: the LSN its answer waits for when one of this
    /// shard's messages waits for it.
    fn match_receipt(
        &self,
        link: LinkId,
        key: IdKey,
        r: &UpstreamReceipt,
        pdu: &Pdu,
    ) -> Option<u64> {
        let found =
            self.msgs
                .flow
                .borrow_mut()
                .receipt(&self.msgs.log, link, key, r, pdu, now_ms());
        self.run_flow();
        found
    }

    /// A receipt or MO from a link.
    pub fn link_inbound(&self, link: LinkId, pdu: Pdu, reply: Reply) {
        let Some(cfg) = self.shared.links.get(link).map(|l| l.config()) else {
            return self.reply(reply, CommandStatus::RSYSERR);
        };
        if let Some(status) = self.msgs.log.refusal() {
            // Nothing can be logged now: the upstream tries again later.
            return self.reply(reply, status);
        }
        if let Some(r) = read_upstream(&pdu) {
            let key = IdKey::new(&r.id, cfg.msgid.receipt);
            return self.receipt(link, key, r, pdu, reply, UNMATCHED_WAIT);
        }
        self.mo(link, pdu, reply);
    }

    /// A receipt of `link`: matched here, on another shard, or (past `wait`) on another
    /// node, else left to [`Self::unmatched`].
    pub(super) fn receipt(
        &self,
        link: LinkId,
        key: IdKey,
        r: UpstreamReceipt,
        pdu: Pdu,
        reply: Reply,
        wait: Duration,
    ) {
        match self.match_receipt(link, key.clone(), &r, &pdu) {
            Some(lsn) => {
                log::debug!(
                    "receipt for upstream id {:?} matched on shard {}",
                    String::from_utf8_lossy(&r.id),
                    self.id
                );
                self.msgs.unmatched.borrow_mut().matched(link, &key);
                self.after(lsn, Waiter::Link(reply, CommandStatus::ROK))
            }
            None => {
                let token = self.msgs.next_token.get();
                self.msgs.next_token.set(token + 1);
                let lookup = Lookup {
                    reply,
                    link,
                    key,
                    receipt: r,
                    pdu,
                    waiting: 0,
                    deadline: Instant::now() + wait,
                    again: None,
                    pause: Duration::from_millis(5),
                    asked_nodes: false,
                };
                self.msgs.lookups.borrow_mut().insert(token, lookup);
                self.ask_others(token);
            }
        }
    }

    /// Asks every other shard about a receipt (or, alone, waits a moment and looks again).
    pub(super) fn ask_others(&self, token: u64) {
        let mut lookups = self.msgs.lookups.borrow_mut();
        let Some(l) = lookups.get_mut(&token) else {
            return;
        };
        let others: Vec<ShardId> = (0..self.shared.shards).filter(|&s| s != self.id).collect();
        l.waiting = others.len();
        l.again = None;
        if others.is_empty() {
            l.again = Some(Instant::now() + l.pause);
            l.pause = (l.pause * 2).min(Duration::from_millis(200));
            return;
        }
        let msgs: Vec<(ShardId, ShardMsg)> = others
            .into_iter()
            .map(|s| {
                (
                    s,
                    ShardMsg::ReceiptLookup {
                        from: self.id,
                        token,
                        link: l.link,
                        key: l.key.clone(),
                        receipt: l.receipt.clone(),
                        pdu: l.pdu.clone(),
                    },
                )
            })
            .collect();
        drop(lookups);
        for (s, m) in msgs {
            self.send_to(s, m);
        }
    }

    /// Another shard asks whether a receipt is for one of this shard's messages.
    pub fn on_receipt_lookup(
        &self,
        from: ShardId,
        token: u64,
        link: LinkId,
        key: IdKey,
        receipt: UpstreamReceipt,
        pdu: Pdu,
    ) {
        match self.match_receipt(link, key, &receipt, &pdu) {
            Some(lsn) => {
                log::debug!(
                    "receipt for upstream id {:?} matched on shard {} (asked by shard {from})",
                    String::from_utf8_lossy(&receipt.id),
                    self.id
                );
                self.after(lsn, Waiter::Remote { shard: from, token })
            }
            None => self.send_to(
                from,
                ShardMsg::ReceiptFound {
                    token,
                    found: false,
                },
            ),
        }
    }

    /// An answer to a lookup of this shard's.
    pub fn on_receipt_found(&self, token: u64, found: bool) {
        let mut lookups = self.msgs.lookups.borrow_mut();
        let Some(l) = lookups.get_mut(&token) else {
            return;
        };
        if found {
            if let Some(l) = lookups.remove(&token) {
                drop(lookups);
                self.msgs.unmatched.borrow_mut().matched(l.link, &l.key);
                self.reply(l.reply, CommandStatus::ROK);
            }
            return;
        }
        l.waiting = l.waiting.saturating_sub(1);
        if l.waiting == 0 {
            // Nobody has it yet: its outcome may still be on its way to its owner. Ask again
            // soon, then less often.
            l.again = Some(Instant::now() + l.pause);
            l.pause = (l.pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Lookups whose round found nothing: looked up here again, asked again, or, past their
    /// wait, reported and answered (an upstream that is told ESME_ROK does not send it again).
    pub(super) fn retry_lookups(&self, now: Instant) {
        let due: Vec<u64> = self
            .msgs
            .lookups
            .borrow()
            .iter()
            .filter(|(_, l)| l.again.is_some_and(|t| t <= now))
            .map(|(t, _)| *t)
            .collect();
        for token in due {
            let Some(l) = self.msgs.lookups.borrow_mut().remove(&token) else {
                continue;
            };
            if now >= l.deadline {
                if matches!(l.reply, Reply::Cluster { .. }) {
                    // Another node's question: not for this node (it hears nothing).
                    self.reply(l.reply, CommandStatus::RX_T_APPN);
                    continue;
                }
                if !l.asked_nodes && self.ask_nodes(token, l.link, &l.pdu) {
                    let mut l = l;
                    l.asked_nodes = true;
                    l.again = None;
                    self.msgs.lookups.borrow_mut().insert(token, l);
                    continue;
                }
                self.unmatched(l);
                continue;
            }
            let found = self.msgs.flow.borrow_mut().receipt(
                &self.msgs.log,
                l.link,
                l.key.clone(),
                &l.receipt,
                &l.pdu,
                now_ms(),
            );
            self.run_flow();
            match found {
                Some(lsn) => {
                    self.msgs.unmatched.borrow_mut().matched(l.link, &l.key);
                    self.after(lsn, Waiter::Link(l.reply, CommandStatus::ROK))
                }
                None => {
                    self.msgs.lookups.borrow_mut().insert(token, l);
                    self.ask_others(token);
                }
            }
        }
    }

    /// What the other nodes said about the receipt of lookup `token`: one took it (the
    /// upstream is answered), or none has its message (left to [`Self::unmatched`]).
    pub(super) fn on_nodes_asked(&self, token: u64, taken: bool) {
        let Some(l) = self.msgs.lookups.borrow_mut().remove(&token) else {
            return;
        };
        if taken {
            log::debug!(
                "receipt for upstream id {:?} taken by another node",
                String::from_utf8_lossy(&l.receipt.id)
            );
            self.msgs.unmatched.borrow_mut().matched(l.link, &l.key);
            self.reply(l.reply, CommandStatus::ROK);
        } else {
            self.unmatched(l);
        }
    }

    /// A receipt no shard could match: refused for now (the upstream delivers it again
    /// later) until `unmatched_receipt_wait` has passed since it was first seen, then
    /// answered and dropped.
    pub(super) fn unmatched(&self, l: Lookup) {
        use super::unmatched::Verdict;
        let name = &self.shared.links[l.link].name;
        let wait = self.shared.config.general.unmatched_receipt_wait;
        let now = now_ms();
        let verdict =
            self.msgs
                .unmatched
                .borrow_mut()
                .verdict(l.link, &l.key, now, wait.as_millis() as u64);
        let counters = self.shared.counters(self.id);
        match verdict {
            Verdict::Defer { first } => {
                if first {
                    info!(
                        "link {name}: receipt for message id {:?} ({}) matches no message yet; refused with ESME_RX_T_APPN so that the upstream delivers it again (for up to {})",
                        String::from_utf8_lossy(&l.receipt.id),
                        l.receipt.end.state.stat(),
                        crate::config::value::duration_text(wait)
                    );
                }
                counters
                    .receipts_deferred
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.reply(l.reply, CommandStatus::RX_T_APPN);
            }
            Verdict::Drop { since_ms } => {
                warn!(
                    "link {name}: receipt for message id {:?} ({}), which no message waits for (first seen {} s ago); answered and dropped",
                    String::from_utf8_lossy(&l.receipt.id),
                    l.receipt.end.state.stat(),
                    now.saturating_sub(since_ms) / 1000
                );
                counters
                    .receipts_unmatched
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.reply(l.reply, CommandStatus::ROK);
            }
        }
    }

    /// A mobile-originated message from a link: routed like a submit with
    /// module=smppclient; `smppserver/ID` and HTTP targets take it. Logged, then answered.
    pub(super) fn mo(&self, link: LinkId, pdu: Pdu, reply: Reply) {
        use super::routing::Route;
        let cfg = self.shared.links[link].config();
        let Some(m) = pdu.message() else {
            return self.reply(reply, CommandStatus::RINVCMDID);
        };
        let route = {
            let mut r = self.router.borrow_mut();
            super::routing::fill_params(
                &mut r.params,
                &pdu,
                m.source,
                &[m.dest],
                &cfg.system_id,
                "smppclient",
            );
            r.decide(&self.shared, self.live().default_link, self.id)
        };
        let target = match route {
            Route::Deliver(a) => Target::Esme(a),
            Route::Http(h) => Target::Http(h),
            Route::NoTable => {
                warn!("link {}: a mobile-originated message arrived and there is no regexroute.conf to route it; answered ESME_RX_T_APPN", cfg.name);
                return self.reply(reply, CommandStatus::RX_T_APPN);
            }
            Route::Forward(to) => {
                self.log_refusal(|| {
                    format!(
                        "link {}: MO routed to smppclient/{}; MO goes to ESMEs (smppserver/ID) or HTTP only",
                        cfg.name, self.shared.links[to].name
                    )
                });
                return self.reply(reply, CommandStatus::RINVDSTADR);
            }
            Route::NoRoute { why, .. } => {
                self.log_refusal(|| format!("link {} MO: {why}", cfg.name));
                return self.reply(reply, CommandStatus::RINVDSTADR);
            }
            Route::Refuse { status, why } => {
                self.log_refusal(|| format!("link {} MO: {why}", cfg.name));
                return self.reply(reply, status);
            }
        };
        if self.msgs.flow.borrow().queued(target) >= self.shared.config.general.queue_limit {
            return self.reply(reply, CommandStatus::RMSGQFUL);
        }
        let now = now_ms();
        let id = self.next_id();
        let mut buf = BytesMut::with_capacity(64 + m.user_data.len());
        let deliver = Pdu {
            command_status: CommandStatus::ROK,
            sequence_number: 0,
            body: match as_deliver_sm(&pdu.body) {
                Some(d) => Body::DeliverSm(d),
                None => return self.reply(reply, CommandStatus::RINVCMDID),
            },
            tlvs: pdu.tlvs.clone(),
        };
        deliver.encode(&mut buf);
        let live = self.live();
        let policy = &live.policy;
        let msg = crate::store::record::StoredMessage {
            id,
            billid: id,
            kind: Kind::Mo,
            origin: self.shared.links[link].target.clone(),
            target: match target {
                Target::Http(_) => self.router.borrow().url.clone().unwrap_or_default(),
                t => self.shared.target_bytes(t),
            },
            registered_delivery: 0,
            accepted_ms: now,
            not_before_ms: 0,
            expires_ms: policy.expiry_ms(b"", now),
            retries: self.router.borrow().retries.unwrap_or(
                self.shared
                    .config
                    .general
                    .delivery_attempts
                    .saturating_sub(1) as u16,
            ),
            failures: 0,
            on_backup: false,
            forwarded: None,
            pdu: buf.freeze(),
            report_to: Bytes::new(),
        };
        self.cdr_mo(&pdu, id, &self.shared.links[link].target, Some(target));
        let lsn = self.accept(Incoming {
            msg,
            target: Some(target),
            origin: None,
            zero: cfg.coding,
        });
        self.after(lsn, Waiter::Link(reply, CommandStatus::ROK));
    }
}
