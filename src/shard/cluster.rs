//! The shard's side of a cluster (see [`crate::cluster`]): messages for ESMEs bound on no
//! shard of this node go to the node that has one, messages for links whose lease another
//! node holds go to that node; messages other nodes hand this one are logged like any other,
//! then answered; receipts no shard here can match are asked about on the other nodes.

use std::rc::Rc;

use bytes::Bytes;
use log::warn;

use super::messages::{now_ms, Waiter};
use super::ShardState;
use crate::cluster::wire::{self, Answer, Handoff, ReceiptAsk};
use crate::cluster::{Dest, FromBridge, HandedOff, ToBridge};
use crate::flow::{Incoming, Outcome, Target};
use crate::ids::{AccountId, LinkId, MessageId};
use crate::smpp::receipt::IdKey;
use crate::smpp::Pdu;
use crate::store::record::Kind;

/// How long a shard looks for the message of a receipt another node asks about (its
/// message, if here, is in a receipt map already).
const REMOTE_LOOKUP: std::time::Duration = std::time::Duration::from_millis(300);

/// Messages held for ESMEs bound nowhere are offered again this often (besides whenever a
/// node announces a receiver of theirs).
const RETRY_MS: u64 = 5_000;
/// A hand-off that found no node within this long after an announcement was in flight while
/// it came: its message is offered again after [`RACE_RETRY_MS`], not at the next periodic
/// retry.
const RACE_MS: u64 = 2_000;
const RACE_RETRY_MS: u64 = 20;

impl ShardState {
    /// Takes what the bridge sends this shard, for as long as the shard runs.
    pub(super) fn start_cluster(self: &Rc<Self>) {
        let Some(rx) = self
            .shared
            .cluster
            .as_ref()
            .and_then(|c| c.take_receiver(self.id))
        else {
            return;
        };
        self.refresh_leases();
        let shard = self.clone();
        glommio::spawn_local(async move {
            while let Ok(m) = rx.recv_async().await {
                shard.on_bridge(m);
            }
        })
        .detach();
    }

    fn on_bridge(&self, m: FromBridge) {
        match m {
            FromBridge::Handed { id, result } => {
                let outcome = match result {
                    HandedOff::Committed(node) => Outcome::HandedOver {
                        node: Bytes::from(format!("node {node}")),
                    },
                    HandedOff::NoResponders => {
                        // An announcement may have crossed this hand-off: try again soon.
                        let now = now_ms();
                        if now.saturating_sub(self.cluster_announced.get()) < RACE_MS {
                            let soon = now + RACE_RETRY_MS;
                            if self.cluster_retry.get() > soon {
                                self.cluster_retry.set(soon);
                            }
                        }
                        Outcome::Unreachable
                    }
                    HandedOff::Full => Outcome::NoRoom,
                    HandedOff::Failed(why) => {
                        self.log_refusal(|| {
                            format!("message {id}: not handed to another node ({why}); held, tried again")
                        });
                        Outcome::Unreachable
                    }
                };
                self.report(id, outcome);
            }
            FromBridge::Adopt { token, handoff } => self.adopt(token, *handoff),
            FromBridge::BoundElsewhere { system_id } => {
                self.cluster_announced.set(now_ms());
                // Empty: NATS is back, every ESME may be bound somewhere now.
                let only = std::str::from_utf8(&system_id)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .map(|s| self.shared.accounts.id_of(s));
                self.offer_held(|t| match t {
                    Target::Esme(a) => only.is_none_or(|o| o == Some(a)),
                    _ => only.is_none(),
                });
            }
            FromBridge::Receipt { token, ask } => self.remote_receipt(token, *ask),
            FromBridge::Asked { token, taken } => self.on_nodes_asked(token, taken),
            FromBridge::Leases => {
                self.refresh_leases();
                self.offer_held(|t| matches!(t, Target::Link(_)));
            }
        }
    }

    /// Takes which links this node may bind from the bridge's view: the links another node
    /// holds are handed off, and their slots here unbind.
    pub(super) fn refresh_leases(&self) {
        let Some(c) = &self.shared.cluster else {
            return;
        };
        let elsewhere: hashbrown::HashSet<LinkId> = self
            .shared
            .links
            .iter()
            .filter(|l| !c.link_here(&l.name))
            .map(|l| l.index)
            .collect();
        for &li in &elsewhere {
            if self.leased_elsewhere.borrow().contains(&li) {
                continue;
            }
            if let Some(local) = self.link(li) {
                for slot in local.slots.borrow().iter() {
                    let _ = slot.try_send(crate::upstream::LinkCmd::Stop);
                }
            }
        }
        *self.leased_elsewhere.borrow_mut() = elsewhere;
    }

    /// Whether another node holds link `li`'s lease (its messages are handed there).
    pub(super) fn leased_elsewhere(&self, li: LinkId) -> bool {
        self.shared.cluster.is_some() && self.leased_elsewhere.borrow().contains(&li)
    }

    /// Another node asks about a receipt: taken here when one of this node's messages waits
    /// for it (answered once logged), else nothing is said to that node (the bridge is told,
    /// so that it forgets the question).
    fn remote_receipt(&self, token: u64, ask: ReceiptAsk) {
        let quiet = |why: &str| {
            log::debug!(
                "cluster: node {} asks about a receipt of link {}: {why}",
                ask.node,
                ask.link
            );
            self.cluster_answer(token, Answer::Refused(why.to_string()));
        };
        let Some(link) = self.shared.links.find(&ask.link).map(|l| l.index) else {
            return quiet("no such link here");
        };
        let Ok(pdu) = Pdu::decode(&ask.pdu) else {
            return quiet("it does not decode");
        };
        let Some(r) = crate::flow::receipt::read_upstream(&pdu) else {
            return quiet("not a receipt");
        };
        if self.msgs.log.refusal().is_some() {
            return quiet("the log refuses writes");
        }
        let key = IdKey::new(&r.id, self.shared.links[link].config().msgid.receipt);
        self.receipt(
            link,
            key,
            r,
            pdu,
            super::messages::Reply::Cluster { token },
            REMOTE_LOOKUP,
        );
    }

    /// Asks the other nodes about the receipt of lookup `token` (none of this node's shards
    /// has its message). Whether it was asked (a node alone, or away from NATS, does not ask).
    pub(super) fn ask_nodes(&self, token: u64, link: LinkId, pdu: &Pdu) -> bool {
        let Some(c) = &self.shared.cluster else {
            return false;
        };
        if !c.connected() {
            return false;
        }
        let mut buf = bytes::BytesMut::with_capacity(256);
        pdu.encode(&mut buf);
        let payload = wire::encode_receipt_ask(c.node(), &self.shared.links[link].name, &buf);
        c.send(ToBridge::AskReceipt {
            shard: self.id,
            token,
            payload,
        })
        .is_ok()
    }

    /// Offers the messages held for the ESMEs `wanted` picks (bound nowhere when last tried)
    /// again.
    fn offer_held(&self, wanted: impl Fn(Target) -> bool) {
        let now = now_ms();
        let mut n = 0;
        let mut held = 0;
        {
            let mut flow = self.msgs.flow.borrow_mut();
            for t in flow
                .waiting_targets()
                .into_iter()
                .filter(|&t| self.remote(t))
            {
                held += flow.queued(t) as u64;
                if wanted(t) {
                    flow.target_up(t, now);
                    n += 1;
                }
            }
        }
        if let Some(c) = &self.shared.cluster {
            c.held[self.id].store(held, std::sync::atomic::Ordering::Relaxed);
        }
        if n > 0 {
            log::debug!(
                "cluster: messages for {n} ESMEs and links of other nodes are offered again"
            );
            self.run_flow();
        }
    }

    /// Whether messages for `t` go to another node (an ESME with no receiver here, a link
    /// another node holds).
    fn remote(&self, t: Target) -> bool {
        match t {
            Target::Esme(a) => self
                .shared
                .accounts
                .get(a)
                .is_some_and(|a| !a.has_receiver()),
            Target::Link(l) => self.leased_elsewhere(l),
            Target::Http(_) => false,
        }
    }

    /// Hands message `id` for `target` to another node when it is an ESME no shard of this
    /// node has a receiver of, or a link whose lease another node holds (and the node is in
    /// a cluster); the result comes back as the attempt's outcome. Whether it went that way.
    pub(super) fn hand_off(&self, id: MessageId, target: Target, stored: &Bytes) -> bool {
        let Some(cluster) = &self.shared.cluster else {
            return false;
        };
        if !self.remote(target) {
            return false;
        }
        let to = match target {
            Target::Esme(account) => {
                let Some(cfg) = self.shared.accounts.get(account).and_then(|a| a.config()) else {
                    return false;
                };
                Dest::Esme(Bytes::copy_from_slice(cfg.system_id.as_bytes()))
            }
            Target::Link(li) => Dest::Link(self.shared.links[li].name.clone()),
            Target::Http(_) => return false,
        };
        let msg = match self.msgs.flow.borrow().message(id) {
            Some(m) => {
                let mut m = m.clone();
                m.pdu = stored.clone();
                if let Target::Link(li) = target {
                    // For the link it goes to now (the backup, it may be).
                    m.target = self.shared.links[li].target.clone();
                    m.on_backup = false;
                }
                m
            }
            None => return false,
        };
        let payload = wire::encode_handoff(cluster.node(), &msg);
        let cmd = ToBridge::HandOff {
            shard: self.id,
            id,
            to,
            payload,
        };
        if cluster.send(cmd).is_err() {
            self.report(id, Outcome::NoRoom);
        }
        true
    }

    /// A message another node handed this one: logged for its ESME here, answered once
    /// committed. It keeps its billid (the id its originator knows); its id is this node's.
    fn adopt(&self, token: u64, h: Handoff) {
        if let Some(status) = self.msgs.log.refusal() {
            return self.cluster_answer(
                token,
                Answer::Refused(format!("its log refuses writes ({status})")),
            );
        }
        let target = match self.shared.target_named(&h.msg.target) {
            Some(t @ (Target::Esme(_) | Target::Link(_))) => t,
            _ => {
                warn!(
                    "cluster: node {} handed over message {} for {}, which this node's regfile.conf does not have; refused",
                    h.node,
                    h.msg.id,
                    String::from_utf8_lossy(&h.msg.target)
                );
                return self.cluster_answer(
                    token,
                    Answer::Refused(format!(
                        "no {} here",
                        String::from_utf8_lossy(&h.msg.target)
                    )),
                );
            }
        };
        if self.msgs.flow.borrow().queued(target) >= self.shared.config.general.queue_limit {
            return self.cluster_answer(token, Answer::Full);
        }
        let origin = self
            .shared
            .target_named(&h.msg.origin)
            .and_then(|t| match t {
                Target::Esme(a) => Some(a),
                _ => None,
            });
        let zero = origin
            .and_then(|a| self.shared.accounts.get(a))
            .and_then(|a| a.coding())
            .unwrap_or(crate::text::Charset::Gsm7);
        let mut msg = h.msg;
        log::debug!(
            "cluster: message {} (billid {}) from node {} adopted",
            msg.id,
            msg.billid,
            h.node
        );
        msg.id = self.next_id();
        msg.failures = 0;
        msg.on_backup = false;
        msg.forwarded = None;
        let (id, billid) = (msg.id, msg.billid);
        // A status report for an ESME goes at once, while this node commits it: the sender
        // keeps it until the commit is answered, so a crash meanwhile gives a duplicate
        // report, never a lost one, and the report does not wait for this node's fdatasync.
        // Messages (and MO) wait for the commit: a duplicate of those reaches a handset.
        let early = msg.kind == Kind::Receipt && matches!(target, Target::Esme(_));
        let lsn = {
            let mut flow = self.msgs.flow.borrow_mut();
            let now = now_ms();
            let inc = Incoming {
                msg,
                target: Some(target),
                origin,
                zero,
            };
            let lsn = flow.accept(&self.msgs.log, inc, now);
            if early {
                flow.attempt_before_commit(id, now);
            }
            lsn
        };
        // One pass of the flow's actions: the record, and the early delivery with it.
        self.run_flow();
        self.after(lsn, Waiter::Cluster { token, billid });
    }

    /// Answers the hand-off `token` (through the bridge).
    pub(super) fn cluster_answer(&self, token: u64, answer: Answer) {
        if let Some(c) = &self.shared.cluster {
            if c.send(ToBridge::Answer { token, answer }).is_err() {
                warn!("cluster: the bridge's queue is full; an answer to a hand-off is lost (its sender asks again)");
            }
        }
    }

    /// Tells the bridge that a receiver of `account` bound (`up`) or went on this shard.
    pub(super) fn cluster_receiver(&self, account: AccountId, up: bool) {
        let Some(c) = &self.shared.cluster else {
            return;
        };
        let Some(cfg) = self.shared.accounts.get(account).and_then(|a| a.config()) else {
            return;
        };
        let system_id = Bytes::copy_from_slice(cfg.system_id.as_bytes());
        if c.send(ToBridge::Receiver { system_id, up }).is_err() {
            warn!(
                "cluster: the bridge's queue is full; the {} of a receiver of {} is not announced",
                if up { "bind" } else { "unbind" },
                cfg.system_id
            );
        }
    }

    /// Messages held for ESMEs bound nowhere are offered again now and then (an
    /// announcement may have been missed while NATS was away).
    pub(super) fn cluster_tick(&self) {
        if self.shared.cluster.is_none() {
            return;
        }
        let now = now_ms();
        if now < self.cluster_retry.get() {
            return;
        }
        self.cluster_retry.set(now + RETRY_MS);
        self.offer_held(|_| true);
        // Links added by a reload, leases that changed while the bridge's word was lost.
        self.refresh_leases();
    }
}
