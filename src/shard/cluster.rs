//! The shard's side of a cluster (see [`crate::cluster`]): messages for ESMEs bound on no
//! shard of this node go to the node that has one; messages other nodes hand this one are
//! logged like any other, then answered.

use std::rc::Rc;

use bytes::Bytes;
use log::warn;

use super::messages::{now_ms, Waiter};
use super::ShardState;
use crate::cluster::wire::{self, Answer, Handoff};
use crate::cluster::{FromBridge, HandedOff, ToBridge};
use crate::flow::{Incoming, Outcome, Target};
use crate::ids::{AccountId, MessageId};
use crate::smpp::receipt::IdKey;

/// Messages held for ESMEs bound nowhere are offered again this often (besides whenever a
/// node announces a receiver of theirs).
const RETRY_MS: u64 = 5_000;

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
                    HandedOff::Committed(node) => Outcome::Accepted {
                        upstream_id: Bytes::from(format!("node {node}")),
                        key: IdKey::Text(Vec::new()),
                    },
                    HandedOff::NoResponders => Outcome::Unreachable,
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
                // Empty: NATS is back, every ESME may be bound somewhere now.
                let only = std::str::from_utf8(&system_id)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .map(|s| self.shared.accounts.id_of(s));
                self.offer_held(|a| only.is_none_or(|o| o == Some(a)));
            }
        }
    }

    /// Offers the messages held for the ESMEs `wanted` picks (bound nowhere when last tried)
    /// again.
    fn offer_held(&self, wanted: impl Fn(AccountId) -> bool) {
        let now = now_ms();
        let mut n = 0;
        {
            let mut flow = self.msgs.flow.borrow_mut();
            for t in flow.waiting_targets() {
                if matches!(t, Target::Esme(a) if wanted(a)) {
                    flow.target_up(t, now);
                    n += 1;
                }
            }
        }
        if n > 0 {
            log::debug!("cluster: messages for {n} ESMEs bound nowhere are offered again");
            self.run_flow();
        }
    }

    /// Hands message `id` for `account` to another node when no shard of this node has a
    /// receiver of it (and the node is in a cluster); the result comes back as the attempt's
    /// outcome. Whether it went that way.
    pub(super) fn hand_off(&self, id: MessageId, account: AccountId, stored: &Bytes) -> bool {
        let Some(cluster) = &self.shared.cluster else {
            return false;
        };
        let Some(a) = self.shared.accounts.get(account) else {
            return false;
        };
        if a.has_receiver() {
            return false;
        }
        let Some(cfg) = a.config() else { return false };
        let msg = match self.msgs.flow.borrow().message(id) {
            Some(m) => {
                let mut m = m.clone();
                m.pdu = stored.clone();
                m
            }
            None => return false,
        };
        let payload = wire::encode_handoff(cluster.node(), &msg);
        let cmd = ToBridge::HandOff {
            shard: self.id,
            id,
            system_id: Bytes::copy_from_slice(cfg.system_id.as_bytes()),
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
            Some(t @ Target::Esme(_)) => t,
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
        let billid = msg.billid;
        let lsn = self.accept(Incoming {
            msg,
            target: Some(target),
            origin,
            zero,
        });
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
    }
}
