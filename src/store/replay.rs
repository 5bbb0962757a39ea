//! Replay, as pure code: the records of a shard's segments, in write order, folded into the
//! messages that are not final yet, each with its latest state and the segment that holds its
//! latest snapshot.
//!
//! Records about a message whose snapshot is not (or no longer) in the log are expected: a
//! compacted segment is deleted once its live messages have been written again further on,
//! and records that stood between are superseded by that newer snapshot. They are counted as
//! `superseded`, not reported as damage.
//!
//! With CDRs on, replay also gives back the messages whose final record lies past the CDR
//! writer's checkpoint ([`Replay::cdr_after`]): their `final` legs may not have reached the
//! CDR file before the crash, and are written again (at least once, never none).

use hashbrown::HashMap;

use super::record::{Forwarded, Loc, Record, StoredMessage};
use crate::ids::MessageId;

/// A live message after replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    pub message: StoredMessage,
    /// Where its latest snapshot lies (`seg` is the key of the segment).
    pub snapshot: Loc,
}

/// A message that reached its final record past the CDR checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The message as it stood (its PDU is dropped: the CDR does not need it).
    pub message: StoredMessage,
    pub state: u8,
    pub tp_status: u8,
    pub status: u32,
    /// Where its final record lies (file offsets).
    pub at: Loc,
}

/// Finals past the CDR checkpoint replay gives back at most (per chain); beyond, they are
/// counted in `ended_dropped` and said in the log.
pub const MAX_ENDED: usize = 100_000;

/// The fold of a shard's records.
#[derive(Debug, Default)]
pub struct Replay {
    /// Finals at or before this place (segment key, file offset) have their CDRs written;
    /// those after it are collected in `ended`. `None`: none are collected.
    pub cdr_after: Option<(u64, u64)>,
    pub ended: Vec<Ended>,
    pub ended_dropped: u64,
    /// The place of the last record replayed (segment key, file offset).
    pub end: Option<(u64, u64)>,
    pub live: HashMap<MessageId, Live>,
    /// Messages that reached their final record during the replayed history.
    pub finals: u64,
    /// Records about messages replay does not hold (see the module doc).
    pub superseded: u64,
    /// The latest numbering second of any id seen: new ids must start after it.
    pub max_epoch_secs: u32,
}

impl Replay {
    /// Applies one record of segment `segment` (records must come in write order).
    pub fn apply(&mut self, segment: u64, record: Record) {
        self.apply_at(
            Loc {
                seg: segment,
                ..Loc::default()
            },
            record,
        )
    }

    /// Applies one record found at `at` (records must come in write order).
    pub fn apply_at(&mut self, at: Loc, record: Record) {
        let id = record.id();
        self.max_epoch_secs = self.max_epoch_secs.max(id.epoch_secs());
        self.end = self.end.max(Some((at.seg, at.off)));
        match record {
            Record::Message(m) => {
                self.live.insert(
                    id,
                    Live {
                        message: m,
                        snapshot: at,
                    },
                );
            }
            Record::Attempt {
                failures,
                on_backup,
                ..
            } => match self.live.get_mut(&id) {
                Some(l) => {
                    l.message.failures = failures;
                    l.message.on_backup = on_backup;
                }
                None => self.superseded += 1,
            },
            Record::Forwarded {
                link, upstream_id, ..
            } => match self.live.get_mut(&id) {
                Some(l) => l.message.forwarded = Some(Box::new(Forwarded { link, upstream_id })),
                None => self.superseded += 1,
            },
            Record::Final {
                state,
                tp_status,
                status,
                ..
            } => match self.live.remove(&id) {
                Some(l) => {
                    self.finals += 1;
                    if self.cdr_after.is_some_and(|c| (at.seg, at.off) > c) {
                        if self.ended.len() < MAX_ENDED {
                            let mut message = l.message;
                            message.pdu = bytes::Bytes::new();
                            self.ended.push(Ended {
                                message,
                                state,
                                tp_status,
                                status,
                                at,
                            });
                        } else {
                            self.ended_dropped += 1;
                        }
                    }
                }
                None => self.superseded += 1,
            },
        }
    }
}
