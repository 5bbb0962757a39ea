//! What the flow keeps of one message: its state, and either its whole record or, while it
//! only waits, the few fields its waiting and its end read (the rest is in its snapshot in the
//! log, read back with its body).
//!
//! A gateway that holds a million messages for an ESME that is not bound keeps a million
//! entries: their size is the gateway's memory. A whole record is ~200 octets before its body;
//! a parked message keeps ~48 (see [`Kept`]), and its entry stays small because the whole
//! record of the others is boxed.

use bytes::Bytes;
use hashbrown::HashMap;

use super::{St, Target};
use crate::ids::{AccountId, LinkId, MessageId};
use crate::smpp::receipt::IdKey;
use crate::store::record::{Kind, Loc, StoredMessage};
use crate::text::Charset;

pub(super) struct Entry {
    pub(super) body: Body,
    pub(super) target: Target,
    /// The ESME account receipts go to, [`NO_ORIGIN`] for none (see [`Entry::origin`]; 4
    /// octets, where an `Option` takes 8 and pads the entry to the next 8).
    origin: u32,
    /// What data_coding 0 means to the originator (for the receipt's quote).
    pub(super) zero: Charset,
    pub(super) st: St,
    /// Where its latest snapshot lies (its segment keeps it live until it ends or moves).
    pub(super) snap: Loc,
    /// When this entry's timer fires next (0: none).
    pub(super) wake: u64,
    /// Boxed: only forwarded messages waiting for a receipt have one (8 octets, not 48).
    pub(super) receipt_key: Option<Box<(LinkId, IdKey)>>,
    /// Its body is on its way back from the log.
    pub(super) loading: bool,
    /// That load was asked for its turn in its queue (counted in the queue's `loading`).
    pub(super) queue_load: bool,
    /// When the body is back, write its snapshot again (its segment is compacted).
    pub(super) compact_on_load: bool,
}

/// No ESME account to send receipts to (an account index cannot reach it).
const NO_ORIGIN: u32 = u32::MAX;

pub(super) enum Body {
    /// The record as the flow keeps it (its PDU empty when only the log has it).
    Whole(Box<Whole>),
    /// Queued or waiting for a retry, only in the log but for [`Kept`].
    Parked(Kept),
}

pub(super) struct Whole {
    msg: StoredMessage,
    /// When its latest attempt went (Unix ms).
    sent_ms: u64,
}

impl Whole {
    fn boxed(msg: StoredMessage) -> Box<Whole> {
        Box::new(Whole { msg, sent_ms: 0 })
    }
}

/// What a parked message keeps in memory: the fields that change after its snapshot was
/// written (failures, failover), and those its timers and its end read without the log
/// (validity, the CDR's ids and times). Its origin's name is an index into the flow's
/// [`Names`].
pub(super) struct Kept {
    pub(super) billid: MessageId,
    pub(super) accepted_ms: u64,
    pub(super) expires_ms: u64,
    pub(super) origin: u32,
    pub(super) failures: u16,
    pub(super) on_backup: bool,
    pub(super) registered_delivery: u8,
    pub(super) kind: Kind,
}

impl Entry {
    pub(super) fn new(
        msg: StoredMessage,
        target: Target,
        origin: Option<AccountId>,
        zero: Charset,
        st: St,
        snap: Loc,
    ) -> Entry {
        Entry {
            body: Body::Whole(Whole::boxed(msg)),
            target,
            origin: origin
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(NO_ORIGIN),
            zero,
            st,
            snap,
            wake: 0,
            receipt_key: None,
            loading: false,
            queue_load: false,
            compact_on_load: false,
        }
    }

    pub(super) fn origin(&self) -> Option<AccountId> {
        (self.origin != NO_ORIGIN).then_some(self.origin as AccountId)
    }

    /// When its latest attempt went (0: not known, as for a parked message).
    pub(super) fn sent_ms(&self) -> u64 {
        match &self.body {
            Body::Whole(w) => w.sent_ms,
            Body::Parked(_) => 0,
        }
    }

    pub(super) fn set_sent_ms(&mut self, at: u64) {
        if let Body::Whole(w) = &mut self.body {
            w.sent_ms = at;
        }
    }

    /// The whole record, unless the message is parked.
    pub(super) fn msg(&self) -> Option<&StoredMessage> {
        match &self.body {
            Body::Whole(w) => Some(&w.msg),
            Body::Parked(_) => None,
        }
    }

    pub(super) fn msg_mut(&mut self) -> Option<&mut StoredMessage> {
        match &mut self.body {
            Body::Whole(w) => Some(&mut w.msg),
            Body::Parked(_) => None,
        }
    }

    /// Its body is not in memory (only in the log).
    pub(super) fn spilled(&self) -> bool {
        match &self.body {
            Body::Whole(w) => w.msg.pdu.is_empty(),
            Body::Parked(_) => true,
        }
    }

    pub(super) fn parked(&self) -> bool {
        matches!(self.body, Body::Parked(_))
    }

    pub(super) fn billid(&self) -> MessageId {
        match &self.body {
            Body::Whole(w) => w.msg.billid,
            Body::Parked(k) => k.billid,
        }
    }

    pub(super) fn kind(&self) -> Kind {
        match &self.body {
            Body::Whole(w) => w.msg.kind,
            Body::Parked(k) => k.kind,
        }
    }

    pub(super) fn failures(&self) -> u16 {
        match &self.body {
            Body::Whole(w) => w.msg.failures,
            Body::Parked(k) => k.failures,
        }
    }

    pub(super) fn on_backup(&self) -> bool {
        match &self.body {
            Body::Whole(w) => w.msg.on_backup,
            Body::Parked(k) => k.on_backup,
        }
    }

    pub(super) fn registered_delivery(&self) -> u8 {
        match &self.body {
            Body::Whole(w) => w.msg.registered_delivery,
            Body::Parked(k) => k.registered_delivery,
        }
    }

    pub(super) fn expires_ms(&self) -> u64 {
        match &self.body {
            Body::Whole(w) => w.msg.expires_ms,
            Body::Parked(k) => k.expires_ms,
        }
    }

    /// Counted failures, and whether it was sent to the backup gateway.
    pub(super) fn set_attempts(&mut self, failures: u16, on_backup: bool) {
        match &mut self.body {
            Body::Whole(w) => (w.msg.failures, w.msg.on_backup) = (failures, on_backup),
            Body::Parked(k) => (k.failures, k.on_backup) = (failures, on_backup),
        }
    }

    /// No receipt for it any more (nothing to quote, or its originator was answered with an
    /// error).
    pub(super) fn no_receipt(&mut self) {
        match &mut self.body {
            Body::Whole(w) => w.msg.registered_delivery = 0,
            Body::Parked(k) => k.registered_delivery = 0,
        }
    }

    /// Keeps only [`Kept`] in memory. The caller checked that its snapshot is in the log and
    /// that nothing but [`Kept`] changed since (it is queued or waiting for a retry, not
    /// forwarded). Returns whether its body was in memory.
    pub(super) fn park(&mut self, names: &mut Names) -> bool {
        let Body::Whole(w) = &self.body else {
            return false;
        };
        let m = &w.msg;
        let had_body = !m.pdu.is_empty();
        let kept = Kept {
            billid: m.billid,
            accepted_ms: m.accepted_ms,
            expires_ms: m.expires_ms,
            origin: names.index(&m.origin),
            failures: m.failures,
            on_backup: m.on_backup,
            registered_delivery: m.registered_delivery,
            kind: m.kind,
        };
        self.body = Body::Parked(kept);
        had_body
    }

    /// Back to its whole record: `snap` is its snapshot read back from the log (what changed
    /// since is taken from what it kept), or, when the record could not be read, what the
    /// entry knows (no body, no target name: it can only end).
    pub(super) fn unpark(&mut self, id: MessageId, snap: Option<StoredMessage>, names: &Names) {
        let m = match (&mut self.body, snap) {
            (Body::Whole(w), Some(s)) => {
                w.msg.pdu = s.pdu;
                return;
            }
            (Body::Whole(_), None) => return,
            (Body::Parked(k), Some(mut m)) => {
                m.failures = k.failures;
                m.on_backup = k.on_backup;
                m.registered_delivery = k.registered_delivery;
                m
            }
            (Body::Parked(k), None) => k.known(id, names),
        };
        self.body = Body::Whole(Whole::boxed(m));
    }

    /// The whole record, or what a parked entry knows of it (see [`Entry::unpark`]).
    pub(super) fn into_msg(self, id: MessageId, names: &Names) -> StoredMessage {
        match self.body {
            Body::Whole(w) => w.msg,
            Body::Parked(k) => k.known(id, names),
        }
    }
}

impl Kept {
    /// A record of what is known without the log: no body, no target name, no schedule.
    fn known(&self, id: MessageId, names: &Names) -> StoredMessage {
        StoredMessage {
            id,
            billid: self.billid,
            kind: self.kind,
            origin: names.name(self.origin),
            target: Bytes::new(),
            registered_delivery: self.registered_delivery,
            accepted_ms: self.accepted_ms,
            not_before_ms: 0,
            expires_ms: self.expires_ms,
            retries: 0,
            failures: self.failures,
            on_backup: self.on_backup,
            forwarded: None,
            pdu: Bytes::new(),
            report_to: Bytes::new(),
        }
    }
}

/// Origin names of parked messages, each kept once (`smppserver/ID`, `smppclient/ID`: a few
/// per account and link, whatever the number of messages).
#[derive(Default)]
pub(super) struct Names {
    names: Vec<Bytes>,
    index: HashMap<Bytes, u32>,
}

impl Names {
    fn index(&mut self, name: &Bytes) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.clone());
        self.index.insert(name.clone(), i);
        i
    }

    fn name(&self, i: u32) -> Bytes {
        self.names.get(i as usize).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_entry_is_small() {
        // The entry of a message held for a target that is down, as the hash table stores it
        // with its key: the figure the memory per held message is made of.
        let slot = std::mem::size_of::<(MessageId, Entry)>();
        assert!(slot <= 136, "{slot} octets");
        assert!(std::mem::size_of::<Kept>() <= 48);
    }
}
