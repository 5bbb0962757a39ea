//! The flow on a fake clock: every transition, the retry schedule, failover once, expiry,
//! trusted and untrusted backups, receipts (relayed, written, intermediate, lost), messages
//! held for a target that is down, compaction and restore.

use std::cell::{Cell, RefCell};

use bytes::{Bytes, BytesMut};

use super::memory::LOAD_AHEAD;
use super::*;
use crate::smpp::receipt::IdRadix;
use crate::smpp::tlv::tag;
use crate::smpp::{Address, Body, DeliverSm, MessageState, SubmitSm, Tlvs};
use crate::store::replay::Replay;

#[derive(Default)]
struct TestLog {
    records: RefCell<Vec<Record>>,
    seg: Cell<u64>,
}

impl Log for TestLog {
    fn append(&self, r: &Record) -> (u64, Loc) {
        let mut v = self.records.borrow_mut();
        v.push(r.clone());
        // The offset is the record's index: `body_at` reads it back.
        let at = Loc {
            seg: self.seg.get(),
            off: v.len() as u64 - 1,
            len: 1,
        };
        (v.len() as u64, at)
    }
}

impl TestLog {
    /// The message record at `at`, as a shard reads it back.
    fn body_at(&self, at: Loc) -> Option<StoredMessage> {
        match self.records.borrow().get(at.off as usize)? {
            Record::Message(m) => Some(m.clone()),
            _ => None,
        }
    }
    fn lsn(&self) -> u64 {
        self.records.borrow().len() as u64
    }
    fn finals(&self) -> Vec<(MessageId, u8, u8)> {
        self.records
            .borrow()
            .iter()
            .filter_map(|r| match r {
                Record::Final {
                    id,
                    state,
                    tp_status,
                    ..
                } => Some((*id, *state, *tp_status)),
                _ => None,
            })
            .collect()
    }
}

const LINK: Target = Target::Link(0);
const BACKUP: Target = Target::Link(1);
const RX: Target = Target::Esme(7);
const ORIGIN: AccountId = 3;
const T0: u64 = 1_800_000_000_000;

fn policy() -> Policy {
    Policy {
        retries: 2,
        retry_min_ms: 1_000,
        retry_max_ms: 4_000,
        receipt_wait_ms: 60_000,
        busy_retry_ms: 100,
        batch: 4,
        ..Policy::default()
    }
}

fn flow(backup: bool, trusted: bool) -> Flow {
    let mut p = policy();
    p.trusted = trusted;
    Flow::new(
        p,
        backup.then(|| (BACKUP, Bytes::from_static(b"smppclient/backup"))),
        IdGen {
            epoch_secs: 100,
            shard: 0,
            next: 1,
        },
    )
}

fn submit_pdu(text: &str, rd: u8) -> Bytes {
    let pdu = Pdu {
        command_status: CommandStatus::ROK,
        sequence_number: 9,
        body: Body::SubmitSm(SubmitSm {
            source: Address::new(1, 1, "4911"),
            dest: Address::new(1, 1, "4922"),
            registered_delivery: rd,
            data_coding: 1,
            short_message: Bytes::copy_from_slice(text.as_bytes()),
            ..SubmitSm::default()
        }),
        tlvs: Tlvs::new(),
    };
    let mut b = BytesMut::new();
    pdu.encode(&mut b);
    b.freeze()
}

fn incoming(f: &mut Flow, target: Option<Target>, rd: u8, expires_in: u64) -> Incoming {
    let id = f.next_id();
    Incoming {
        msg: StoredMessage {
            id,
            billid: id,
            kind: Kind::Submit,
            origin: Bytes::from_static(b"smppserver/esme1"),
            target: Bytes::from_static(b"smppclient/primary"),
            registered_delivery: rd,
            accepted_ms: T0,
            not_before_ms: 0,
            expires_ms: T0 + expires_in,
            retries: 2,
            failures: 0,
            on_backup: false,
            forwarded: None,
            pdu: submit_pdu("Hello there", rd),
            report_to: Bytes::new(),
        },
        target,
        origin: Some(ORIGIN),
        zero: Charset::Gsm7,
    }
}

fn actions(f: &mut Flow) -> Vec<Action> {
    std::iter::from_fn(|| f.poll_action()).collect()
}

fn sends(f: &mut Flow) -> Vec<(MessageId, Target)> {
    actions(f)
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { id, target, .. } => Some((id, target)),
            _ => None,
        })
        .collect()
}

fn ended(acts: &[Action]) -> Vec<(MessageId, End)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Ended { id, end, .. } => Some((*id, *end)),
            _ => None,
        })
        .collect()
}

/// Accepts one message for `target` and commits it; returns its id.
fn accepted(f: &mut Flow, log: &TestLog, target: Target, rd: u8) -> MessageId {
    let inc = incoming(f, Some(target), rd, 3_600_000);
    let id = inc.msg.id;
    let lsn = f.accept(log, inc, T0);
    f.committed(lsn, T0);
    id
}

fn key(s: &str) -> IdKey {
    IdKey::new(s.as_bytes(), IdRadix::Hex)
}

fn receipt_pdu(upstream_id: &str, stat: &str) -> Pdu {
    let text = format!("id:{upstream_id} sub:001 dlvrd:001 submit date:2612021000 done date:2612021001 stat:{stat} err:000 text:Hello");
    let mut tlvs = Tlvs::new();
    tlvs.set_cstr(tag::RECEIPTED_MESSAGE_ID, upstream_id.as_bytes());
    Pdu {
        command_status: CommandStatus::ROK,
        sequence_number: 5,
        body: Body::DeliverSm(DeliverSm {
            source: Address::new(1, 1, "4922"),
            dest: Address::new(1, 1, "4911"),
            esm_class: 0x04,
            short_message: Bytes::from(text),
            ..DeliverSm::default()
        }),
        tlvs,
    }
}

#[test]
fn a_message_is_attempted_only_after_its_record_is_committed() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let inc = incoming(&mut f, Some(LINK), 0, 3_600_000);
    let id = inc.msg.id;
    let lsn = f.accept(&log, inc, T0);
    assert_eq!(lsn, 1);
    assert!(matches!(&log.records.borrow()[0], Record::Message(m) if m.id == id));
    assert!(sends(&mut f).is_empty(), "nothing goes before the commit");
    f.committed(lsn - 1, T0);
    assert!(sends(&mut f).is_empty());
    f.committed(lsn, T0);
    assert_eq!(sends(&mut f), vec![(id, LINK)]);
}

#[test]
fn a_message_kept_elsewhere_may_go_before_its_commit_and_goes_once() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let inc = incoming(&mut f, Some(LINK), 0, 3_600_000);
    let id = inc.msg.id;
    let lsn = f.accept(&log, inc, T0);
    assert!(sends(&mut f).is_empty());
    f.attempt_before_commit(id, T0);
    assert_eq!(sends(&mut f), vec![(id, LINK)], "it goes before the commit");
    // The commit does not send it again, nor does asking twice.
    f.attempt_before_commit(id, T0);
    f.committed(lsn, T0);
    assert!(sends(&mut f).is_empty());
    // Its outcome before or after the commit ends it as any other.
    f.result(&log, id, Outcome::Delivered, T0 + 1);
    assert_eq!(ended(&actions(&mut f)), vec![(id, End::DELIVERED)]);
}

#[test]
fn forwarded_without_a_receipt_asked_is_final_at_once() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let id = accepted(&mut f, &log, LINK, 0);
    sends(&mut f);
    f.result(
        &log,
        id,
        Outcome::Accepted {
            upstream_id: Bytes::from_static(b"AB12"),
            key: key("AB12"),
        },
        T0 + 5,
    );
    assert_eq!(ended(&actions(&mut f)), vec![(id, End::FORWARDED)]);
    assert_eq!(f.len(), 0);
    let recs = log.records.borrow();
    assert!(
        matches!(&recs[1], Record::Forwarded { upstream_id, .. } if &upstream_id[..] == b"AB12")
    );
    assert!(matches!(
        &recs[2],
        Record::Final {
            state: 6,
            tp_status: 1,
            ..
        }
    ));
}

#[test]
fn an_upstream_receipt_is_matched_relayed_with_our_id_and_ends_the_message() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let id = accepted(&mut f, &log, LINK, 1);
    sends(&mut f);
    f.result(
        &log,
        id,
        Outcome::Accepted {
            upstream_id: Bytes::from_static(b"ab12"),
            key: key("ab12"),
        },
        T0,
    );
    assert_eq!(f.awaiting_receipts(), 1);
    assert!(ended(&actions(&mut f)).is_empty());
    let pdu = receipt_pdu("AB12", "DELIVRD");
    let r = receipt::read_upstream(&pdu).unwrap();
    // Unknown ids are not ours.
    assert_eq!(f.receipt(&log, 0, key("FFFF"), &r, &pdu, T0), None);
    let lsn = f.receipt(&log, 0, key("AB12"), &r, &pdu, T0 + 10).unwrap();
    assert_eq!(
        lsn,
        log.lsn(),
        "the link's answer waits for every record of the receipt"
    );
    let acts = actions(&mut f);
    assert_eq!(ended(&acts), vec![(id, End::DELIVERED)]);
    // The receipt for the originator is a message of its own, sent after its commit.
    f.committed(lsn, T0 + 10);
    let out = actions(&mut f);
    let Some(Action::Send {
        kind, target, pdu, ..
    }) = out.first()
    else {
        panic!("{out:?}")
    };
    assert_eq!((*kind, *target), (Kind::Receipt, Target::Esme(ORIGIN)));
    let sent = Pdu::decode(pdu).unwrap();
    let Body::DeliverSm(d) = &sent.body else {
        panic!()
    };
    let hex = id.to_hex();
    assert!(d.short_message.starts_with(&[b"id:", &hex[..]].concat()));
    assert_eq!(
        sent.tlvs.get_cstr(tag::RECEIPTED_MESSAGE_ID),
        Some(&hex[..])
    );
    assert_eq!(f.awaiting_receipts(), 0);
}

#[test]
fn intermediate_notifications_do_not_end_the_message() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let id = accepted(&mut f, &log, LINK, 1);
    sends(&mut f);
    f.result(
        &log,
        id,
        Outcome::Accepted {
            upstream_id: Bytes::from_static(b"77"),
            key: key("77"),
        },
        T0,
    );
    let pdu = receipt_pdu("77", "ENROUTE");
    let r = receipt::read_upstream(&pdu).unwrap();
    assert!(r.intermediate);
    assert_eq!(f.receipt(&log, 0, key("77"), &r, &pdu, T0), Some(0));
    assert_eq!(f.len(), 1);
    assert_eq!(f.awaiting_receipts(), 1);
}

#[test]
fn a_receipt_that_never_comes_ends_the_message_without_a_receipt() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let id = accepted(&mut f, &log, LINK, 1);
    sends(&mut f);
    f.result(
        &log,
        id,
        Outcome::Accepted {
            upstream_id: Bytes::from_static(b"1"),
            key: key("1"),
        },
        T0,
    );
    f.handle_timeout(&log, T0 + 59_999);
    assert_eq!(f.len(), 1);
    assert_eq!(f.poll_timeout(), Some(T0 + 60_000));
    f.handle_timeout(&log, T0 + 60_000);
    let acts = actions(&mut f);
    assert_eq!(ended(&acts), vec![(id, End::RECEIPT_LOST)]);
    assert!(!acts.iter().any(|a| matches!(a, Action::Send { .. })));
    assert_eq!(f.awaiting_receipts(), 0);
}

#[test]
fn temporary_errors_retry_with_exponential_backoff_then_fail_with_a_receipt() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let id = accepted(&mut f, &log, LINK, 1);
    assert_eq!(sends(&mut f).len(), 1);
    let mut now = T0;
    // retries=2: two retries after 1 s and 2 s, then the end.
    for (n, delay) in [(1u16, 1_000u64), (2, 2_000)] {
        f.result(&log, id, Outcome::Temporary(CommandStatus::RMSGQFUL), now);
        assert!(
            matches!(log.records.borrow().last(), Some(Record::Attempt { failures, .. }) if *failures == n)
        );
        assert_eq!(f.poll_timeout(), Some(now + delay));
        f.handle_timeout(&log, now + delay - 1);
        assert!(sends(&mut f).is_empty());
        now += delay;
        f.handle_timeout(&log, now);
        assert_eq!(sends(&mut f), vec![(id, LINK)]);
    }
    f.result(&log, id, Outcome::Temporary(CommandStatus::RMSGQFUL), now);
    let acts = actions(&mut f);
    assert_eq!(ended(&acts), vec![(id, End::BUSY)]);
    assert_eq!(log.finals(), vec![(id, 5, 0x61)]);
    // The failure receipt, for the originator.
    let lsn = log.lsn();
    f.committed(lsn, now);
    let out = sends(&mut f);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, Target::Esme(ORIGIN));
}

#[test]
fn timeouts_count_as_temporary_and_end_as_no_response() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let id = accepted(&mut f, &log, LINK, 0);
    let mut now = T0;
    for _ in 0..3 {
        assert_eq!(sends(&mut f).len(), 1);
        f.result(&log, id, Outcome::Timeout, now);
        now += 10_000;
        f.handle_timeout(&log, now);
    }
    assert_eq!(log.finals(), vec![(id, 5, 0x62)]);
}

#[test]
fn out_of_retries_fails_over_once_to_the_backup_then_ends() {
    let (mut f, log) = (flow(true, true), TestLog::default());
    let id = accepted(&mut f, &log, LINK, 1);
    let mut now = T0;
    for _ in 0..3 {
        assert_eq!(sends(&mut f), vec![(id, LINK)]);
        f.result(&log, id, Outcome::Temporary(CommandStatus::RX_T_APPN), now);
        now += 10_000;
        f.handle_timeout(&log, now);
    }
    // The third failure used up the retries: the backup gets it at once, with fresh retries.
    assert_eq!(sends(&mut f), vec![(id, BACKUP)]);
    assert!(matches!(
        log.records.borrow().last(),
        Some(Record::Attempt {
            on_backup: true,
            failures: 0,
            ..
        })
    ));
    for _ in 0..2 {
        f.result(&log, id, Outcome::Temporary(CommandStatus::RX_T_APPN), now);
        now += 10_000;
        f.handle_timeout(&log, now);
        assert_eq!(
            sends(&mut f),
            vec![(id, BACKUP)],
            "never back to the primary"
        );
    }
    f.result(&log, id, Outcome::Temporary(CommandStatus::RX_T_APPN), now);
    assert_eq!(log.finals(), vec![(id, 5, 0x61)]);
}

#[test]
fn a_link_that_is_down_sends_the_message_to_the_backup_at_once() {
    let (mut f, log) = (flow(true, false), TestLog::default());
    let id = accepted(&mut f, &log, LINK, 0);
    assert_eq!(sends(&mut f), vec![(id, LINK)]);
    f.result(&log, id, Outcome::Unreachable, T0);
    assert_eq!(sends(&mut f), vec![(id, BACKUP)]);
    f.result(
        &log,
        id,
        Outcome::Accepted {
            upstream_id: Bytes::from_static(b"9"),
            key: key("9"),
        },
        T0,
    );
    let recs = log.records.borrow();
    assert!(recs
        .iter()
        .any(|r| matches!(r, Record::Forwarded { link, .. } if &link[..] == b"smppclient/backup")));
}

#[test]
fn messages_for_an_esme_wait_for_it_and_never_go_to_the_backup() {
    let (mut f, log) = (flow(true, false), TestLog::default());
    let id = accepted(&mut f, &log, RX, 0);
    assert_eq!(sends(&mut f), vec![(id, RX)]);
    f.result(&log, id, Outcome::Unreachable, T0);
    assert!(sends(&mut f).is_empty(), "held for the ESME");
    assert!(f.is_down(RX));
    // Out of retries too: it ends, it does not fail over.
    f.target_up(RX, T0 + 1);
    assert_eq!(sends(&mut f), vec![(id, RX)]);
    let mut now = T0 + 1;
    for _ in 0..=2 {
        f.result(&log, id, Outcome::Temporary(CommandStatus::RX_T_APPN), now);
        now += 10_000;
        f.handle_timeout(&log, now);
        let out = sends(&mut f);
        assert!(out.iter().all(|(_, t)| *t == RX), "{out:?}");
    }
    assert_eq!(
        log.finals(),
        vec![(id, MessageState::UNDELIVERABLE.0, 0x61)]
    );
}

#[test]
fn without_a_backup_messages_wait_for_the_link_in_order_until_it_comes_up() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let a = accepted(&mut f, &log, LINK, 0);
    assert_eq!(sends(&mut f), vec![(a, LINK)]);
    f.result(&log, a, Outcome::Unreachable, T0);
    assert!(f.is_down(LINK));
    let b = accepted(&mut f, &log, LINK, 0);
    let c = accepted(&mut f, &log, LINK, 0);
    assert!(
        sends(&mut f).is_empty(),
        "a target that is down gets nothing"
    );
    assert_eq!(f.queued(LINK), 3);
    assert_eq!(f.waiting_targets(), vec![LINK]);
    f.target_up(LINK, T0 + 1);
    assert_eq!(sends(&mut f), vec![(a, LINK), (b, LINK), (c, LINK)]);
}

#[test]
fn waiting_messages_expire_with_an_expired_receipt() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let inc = incoming(&mut f, Some(RX), 1, 5_000);
    let id = inc.msg.id;
    let lsn = f.accept(&log, inc, T0);
    f.committed(lsn, T0);
    sends(&mut f);
    f.result(&log, id, Outcome::Unreachable, T0);
    assert_eq!(f.poll_timeout(), Some(T0 + 5_000));
    f.handle_timeout(&log, T0 + 5_000);
    assert_eq!(ended(&actions(&mut f)), vec![(id, End::EXPIRED)]);
    assert_eq!(log.finals(), vec![(id, 3, 0x46)]);
    // A later target_up finds nothing to send for it.
    f.target_up(RX, T0 + 6_000);
    f.committed(log.lsn(), T0 + 6_000);
    let out = sends(&mut f);
    assert!(out.iter().all(|(i, _)| *i != id));
}

#[test]
fn permanent_errors_end_at_once_and_the_untrusted_backups_are_retried() {
    let (mut f, log) = (flow(true, false), TestLog::default());
    let a = accepted(&mut f, &log, LINK, 0);
    sends(&mut f);
    f.result(&log, a, Outcome::Permanent(CommandStatus::RINVDSTADR), T0);
    assert_eq!(log.finals(), vec![(a, 5, 0x41)]);

    // On the backup, an untrusted permanent error is retried like a temporary one.
    let b = accepted(&mut f, &log, LINK, 0);
    sends(&mut f);
    f.result(&log, b, Outcome::Unreachable, T0);
    assert_eq!(sends(&mut f), vec![(b, BACKUP)]);
    f.result(&log, b, Outcome::Permanent(CommandStatus::RSUBMITFAIL), T0);
    assert_eq!(f.len(), 1);
    f.handle_timeout(&log, T0 + 1_000);
    assert_eq!(sends(&mut f), vec![(b, BACKUP)]);

    // Trusted: final.
    let (mut f, log) = (flow(true, true), TestLog::default());
    let c = accepted(&mut f, &log, LINK, 0);
    sends(&mut f);
    f.result(&log, c, Outcome::Unreachable, T0);
    sends(&mut f);
    f.result(&log, c, Outcome::Permanent(CommandStatus::RSUBMITFAIL), T0);
    assert_eq!(log.finals(), vec![(c, 5, 0x40)]);
}

#[test]
fn esme_deliveries_end_delivered_or_refused() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let a = accepted(&mut f, &log, RX, 1);
    let b = accepted(&mut f, &log, RX, 2);
    assert_eq!(sends(&mut f).len(), 2);
    f.result(&log, a, Outcome::Delivered, T0);
    f.result(&log, b, Outcome::Permanent(CommandStatus::RX_P_APPN), T0);
    let acts = actions(&mut f);
    assert_eq!(ended(&acts), vec![(a, End::DELIVERED), (b, End::REFUSED)]);
    // Both asked for a receipt of that outcome (1: any, 2: failures only).
    f.committed(log.lsn(), T0);
    assert_eq!(sends(&mut f).len(), 2);
}

#[test]
fn no_room_offers_again_later_without_counting_a_failure() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let a = accepted(&mut f, &log, RX, 0);
    sends(&mut f);
    f.result(&log, a, Outcome::NoRoom, T0);
    assert!(sends(&mut f).is_empty());
    assert_eq!(f.poll_timeout().map(|t| t.min(T0 + 100)), Some(T0 + 100));
    f.handle_timeout(&log, T0 + 100);
    assert_eq!(sends(&mut f), vec![(a, RX)]);
    assert!(!log
        .records
        .borrow()
        .iter()
        .any(|r| matches!(r, Record::Attempt { .. })));
}

#[test]
fn at_most_batch_attempts_are_outstanding_per_target() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let ids: Vec<MessageId> = (0..6).map(|_| accepted(&mut f, &log, LINK, 0)).collect();
    let first = sends(&mut f);
    assert_eq!(first.len(), 4);
    f.result(
        &log,
        ids[0],
        Outcome::Accepted {
            upstream_id: Bytes::from_static(b"1"),
            key: key("1"),
        },
        T0,
    );
    assert_eq!(sends(&mut f), vec![(ids[4], LINK)]);
}

#[test]
fn unrouted_messages_end_at_accept_with_a_no_route_receipt() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let inc = incoming(&mut f, None, 1, 3_600_000);
    let id = inc.msg.id;
    let lsn = f.accept(&log, inc, T0);
    assert_eq!(log.finals(), vec![(id, 5, 0x45)]);
    assert_eq!(
        lsn,
        log.lsn(),
        "the answer waits for the receipt's record too"
    );
    f.committed(lsn, T0);
    let out = actions(&mut f);
    let Some(Action::Send { pdu, target, .. }) =
        out.iter().find(|a| matches!(a, Action::Send { .. }))
    else {
        panic!("{out:?}")
    };
    assert_eq!(*target, Target::Esme(ORIGIN));
    let p = Pdu::decode(pdu).unwrap();
    let Body::DeliverSm(d) = &p.body else {
        panic!()
    };
    let t = std::str::from_utf8(&d.short_message).unwrap();
    assert!(t.contains("stat:UNDELIV err:069 text:Hello there"), "{t}");
}

#[test]
fn scheduled_messages_wait_for_their_time() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let mut inc = incoming(&mut f, Some(RX), 0, 3_600_000);
    inc.msg.not_before_ms = T0 + 2_000;
    let id = inc.msg.id;
    let lsn = f.accept(&log, inc, T0);
    f.committed(lsn, T0);
    assert!(sends(&mut f).is_empty());
    f.handle_timeout(&log, T0 + 2_000);
    assert_eq!(sends(&mut f), vec![(id, RX)]);
}

#[test]
fn results_for_messages_not_in_flight_are_ignored() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let id = accepted(&mut f, &log, LINK, 0);
    sends(&mut f);
    f.result(&log, id, Outcome::Delivered, T0);
    let n = log.lsn();
    f.result(&log, id, Outcome::Delivered, T0);
    f.result(&log, MessageId::new(1, 1, 1), Outcome::Timeout, T0);
    assert_eq!(log.lsn(), n);
}

#[test]
fn compaction_writes_live_messages_again_so_their_segment_empties() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    log.seg.set(1);
    let a = accepted(&mut f, &log, LINK, 1);
    let b = accepted(&mut f, &log, LINK, 0);
    sends(&mut f);
    f.result(
        &log,
        a,
        Outcome::Accepted {
            upstream_id: Bytes::from_static(b"5"),
            key: key("5"),
        },
        T0,
    );
    assert_eq!(f.live_in(1), 2);
    log.seg.set(2);
    f.compact(&log, 1);
    assert_eq!((f.live_in(1), f.live_in(2)), (0, 2));
    // Replaying only segment 2 gives both messages, with a's upstream id.
    let mut r = Replay::default();
    for rec in log.records.borrow().iter() {
        if let Record::Message(m) = rec {
            if m.forwarded.is_some() || m.id == b {
                r.apply(2, rec.clone());
            }
        }
    }
    assert_eq!(r.live.len(), 2);
    assert!(r.live[&a].message.forwarded.is_some());
}

#[test]
fn restored_messages_resume_where_they_were() {
    let (mut f, log) = (flow(true, false), TestLog::default());
    // One forwarded and waiting for its receipt, one on the backup, one plain.
    let mut waiting = incoming(&mut f, Some(LINK), 1, 3_600_000);
    waiting.msg.forwarded = Some(Box::new(Forwarded {
        link: Bytes::from_static(b"smppclient/primary"),
        upstream_id: Bytes::from_static(b"C0FFEE"),
    }));
    let mut failed_over = incoming(&mut f, Some(LINK), 0, 3_600_000);
    failed_over.msg.on_backup = true;
    let plain = incoming(&mut f, Some(LINK), 0, 3_600_000);
    let ids = [waiting.msg.id, failed_over.msg.id, plain.msg.id];
    for (inc, k) in [
        (waiting, Some((0, key("C0FFEE")))),
        (failed_over, None),
        (plain, None),
    ] {
        let live = Live {
            message: inc.msg.clone(),
            snapshot: Loc {
                seg: 4,
                ..Loc::default()
            },
        };
        f.restore(&log, live, inc, k, T0);
    }
    assert_eq!(f.awaiting_receipts(), 1);
    assert_eq!(sends(&mut f), vec![(ids[1], BACKUP), (ids[2], LINK)]);
    let pdu = receipt_pdu("C0FFEE", "UNDELIV");
    let r = receipt::read_upstream(&pdu).unwrap();
    assert!(f.receipt(&log, 0, key("c0ffee"), &r, &pdu, T0).is_some());
    assert_eq!(log.finals()[0].1, MessageState::UNDELIVERABLE.0);
}

#[test]
fn the_backlog_counts_what_waits_for_room_at_links_that_are_up() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let ids: Vec<MessageId> = (0..6).map(|_| accepted(&mut f, &log, LINK, 0)).collect();
    assert_eq!(sends(&mut f).len(), 4, "batch of 4 out");
    assert_eq!(f.backlog(), 2);
    // ESME targets are not counted.
    accepted(&mut f, &log, RX, 0);
    assert_eq!(sends(&mut f).len(), 1);
    assert_eq!(f.backlog(), 2);
    // The link goes down: its queue waits for it, not for room.
    f.result(&log, ids[0], Outcome::Unreachable, T0);
    assert_eq!(f.backlog(), 0);
    f.target_up(LINK, T0);
    assert_eq!(sends(&mut f).len(), 1, "room for one");
    assert_eq!(f.backlog(), 2);
}

/// One message for `target`, attempted and found unreachable: the target is down, and what
/// comes next for it waits (beyond the memory bound, on disk).
fn down_with_one(f: &mut Flow, log: &TestLog, target: Target, rd: u8) -> MessageId {
    let first = accepted(f, log, target, rd);
    sends(f);
    f.result(log, first, Outcome::Unreachable, T0);
    first
}

/// The flow with at most `limit` bodies in memory.
fn bounded(limit: usize) -> Flow {
    let mut f = flow(false, false);
    f.policy.memory_messages = limit;
    f
}

/// Answers every `Load` the flow asks for from the log; returns what was loaded, in order,
/// and the other actions.
fn serve_loads(f: &mut Flow, log: &TestLog, now: u64) -> (Vec<MessageId>, Vec<Action>) {
    let (mut loaded, mut other) = (Vec::new(), Vec::new());
    loop {
        let acts = actions(f);
        if acts.is_empty() {
            return (loaded, other);
        }
        for a in acts {
            match a {
                Action::Load { id, at } => {
                    loaded.push(id);
                    f.loaded(log, id, log.body_at(at), now);
                }
                a => other.push(a),
            }
        }
    }
}

fn sent(acts: &[Action]) -> Vec<MessageId> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Send { id, pdu, .. } => {
                assert!(!pdu.is_empty(), "a message goes with its body");
                Some(*id)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn beyond_the_memory_bound_waiting_messages_keep_their_bodies_only_in_the_log() {
    let (mut f, log) = (bounded(3), TestLog::default());
    let first = down_with_one(&mut f, &log, LINK, 0);
    let mut ids = vec![first];
    for _ in 0..19 {
        ids.push(accepted(&mut f, &log, LINK, 0));
    }
    assert!(
        actions(&mut f).is_empty(),
        "the link is down: nothing is sent or read"
    );
    assert_eq!(f.resident(), 3, "20 wait, 3 bodies in memory");
    assert_eq!(f.stats().spilled, 17);
    // The link comes up: the bodies come back a few ahead of the queue's head, and every
    // message goes in its order, with its body.
    f.target_up(LINK, T0 + 1);
    let mut out = Vec::new();
    let (loaded, acts) = serve_loads(&mut f, &log, T0 + 1);
    out.extend(sent(&acts));
    // `batch` (4) attempts at most are out: answer them as they go.
    while out.len() < ids.len() {
        let before = out.len();
        for id in out.clone().into_iter().skip(out.len().saturating_sub(4)) {
            f.result(&log, id, Outcome::Delivered, T0 + 2);
        }
        let (more, acts) = serve_loads(&mut f, &log, T0 + 2);
        let _ = more;
        out.extend(sent(&acts));
        assert!(out.len() > before, "the queue moves: {out:?}");
    }
    assert_eq!(out, ids, "in order");
    assert!(!loaded.is_empty());
    assert!(f.resident() <= 3 + LOAD_AHEAD);
    assert_eq!(f.stats().loaded, 17);
}

#[test]
fn messages_waiting_for_receipts_keep_no_body_in_memory_and_need_none_to_end() {
    let (mut f, log) = (bounded(1), TestLog::default());
    let keep = accepted(&mut f, &log, LINK, 1);
    let a = accepted(&mut f, &log, LINK, 1);
    sends(&mut f);
    for (id, up) in [(keep, "1"), (a, "2")] {
        let upstream_id = Bytes::copy_from_slice(up.as_bytes());
        f.result(
            &log,
            id,
            Outcome::Accepted {
                upstream_id,
                key: key(up),
            },
            T0,
        );
    }
    assert_eq!(
        f.resident(),
        1,
        "one of the two waits for its receipt on disk only"
    );
    // The upstream's receipt is relayed as it came: nothing to read back.
    let pdu = receipt_pdu("2", "DELIVRD");
    let r = receipt::read_upstream(&pdu).unwrap();
    assert!(f.receipt(&log, 0, key("2"), &r, &pdu, T0 + 10).is_some());
    let acts = actions(&mut f);
    assert!(
        !acts.iter().any(|x| matches!(x, Action::Load { .. })),
        "{acts:?}"
    );
    assert_eq!(ended(&acts), vec![(a, End::DELIVERED)]);
    // No receipt comes for the other: it ends unknown, without a receipt, without a read.
    f.handle_timeout(&log, T0 + 60_000);
    let acts = actions(&mut f);
    assert!(
        !acts.iter().any(|x| matches!(x, Action::Load { .. })),
        "{acts:?}"
    );
    assert_eq!(ended(&acts), vec![(keep, End::RECEIPT_LOST)]);
    // What is left: the relayed receipt, a message of its own for the originator.
    assert_eq!((f.len(), f.resident()), (1, 1));
}

#[test]
fn an_expired_message_on_disk_gets_its_expiry_receipt_with_its_text() {
    let (mut f, log) = (bounded(1), TestLog::default());
    down_with_one(&mut f, &log, RX, 1);
    let inc = incoming(&mut f, Some(RX), 1, 5_000);
    let b = inc.msg.id;
    let lsn = f.accept(&log, inc, T0);
    f.committed(lsn, T0);
    assert_eq!(f.resident(), 1);
    f.handle_timeout(&log, T0 + 5_000);
    let (loaded, acts) = serve_loads(&mut f, &log, T0 + 5_000);
    assert_eq!(loaded, vec![b]);
    assert_eq!(ended(&acts), vec![(b, End::EXPIRED)]);
    // Its receipt (a message for the originator) quotes the text it was read back with.
    let lsn = log.lsn();
    f.committed(lsn, T0 + 5_000);
    let receipt = log
        .records
        .borrow()
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::Message(m) if m.kind == Kind::Receipt && m.billid == b => Some(m.pdu.clone()),
            _ => None,
        })
        .expect("an expiry receipt");
    let text = String::from_utf8_lossy(&receipt).into_owned();
    assert!(
        text.contains("stat:EXPIRED") && text.contains("text:Hello there"),
        "{text}"
    );
}

#[test]
fn a_body_that_cannot_be_read_back_ends_its_message_without_a_receipt() {
    let (mut f, log) = (bounded(1), TestLog::default());
    let first = down_with_one(&mut f, &log, LINK, 1);
    let b = accepted(&mut f, &log, LINK, 1);
    f.target_up(LINK, T0 + 1);
    let acts = actions(&mut f);
    assert_eq!(sent(&acts), vec![first]);
    let Some(Action::Load { id, .. }) = acts.iter().find(|x| matches!(x, Action::Load { .. }))
    else {
        panic!("{acts:?}")
    };
    assert_eq!(*id, b);
    f.loaded(&log, b, None, T0 + 1);
    let acts = actions(&mut f);
    assert_eq!(ended(&acts), vec![(b, End::LOST)]);
    assert_eq!(f.stats().unreadable, 1);
    assert!(
        !log.records
            .borrow()
            .iter()
            .any(|r| matches!(r, Record::Message(m) if m.kind == Kind::Receipt)),
        "nothing to quote, no receipt"
    );
}

#[test]
fn compaction_reads_bodies_on_disk_back_and_writes_them_again() {
    let (mut f, log) = (bounded(1), TestLog::default());
    log.seg.set(1);
    let first = down_with_one(&mut f, &log, LINK, 0);
    let b = accepted(&mut f, &log, LINK, 0);
    let c = accepted(&mut f, &log, LINK, 0);
    assert_eq!((f.live_in(1), f.resident()), (3, 1));
    log.seg.set(2);
    f.compact(&log, 1);
    assert_eq!(f.live_in(1), 2, "the two on disk wait for their bodies");
    let (mut loaded, _) = serve_loads(&mut f, &log, T0);
    loaded.sort();
    assert_eq!(loaded, vec![b, c]);
    assert_eq!((f.live_in(1), f.live_in(2)), (0, 3));
    assert_eq!(f.resident(), 1, "written again, then out of memory again");
    // The new snapshots hold the whole message.
    let again: Vec<MessageId> = log.records.borrow()[3..]
        .iter()
        .filter_map(|r| match r {
            Record::Message(m) if !m.pdu.is_empty() => Some(m.id),
            _ => None,
        })
        .collect();
    let mut again = again;
    again.sort();
    assert_eq!(again, vec![first, b, c]);
    // And they still go, in order, when the link comes up.
    f.target_up(LINK, T0 + 1);
    let (_, acts) = serve_loads(&mut f, &log, T0 + 1);
    assert_eq!(sent(&acts), vec![first, b, c]);
}

#[test]
fn a_queue_goes_on_when_the_body_at_its_head_cannot_be_read_back() {
    let (mut f, log) = (bounded(1), TestLog::default());
    let first = down_with_one(&mut f, &log, LINK, 0);
    let x = accepted(&mut f, &log, LINK, 0);
    let y = accepted(&mut f, &log, LINK, 0);
    f.target_up(LINK, T0 + 1);
    let acts = actions(&mut f);
    assert_eq!(sent(&acts), vec![first]);
    let loads: Vec<(MessageId, Loc)> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Load { id, at } => Some((*id, *at)),
            _ => None,
        })
        .collect();
    assert_eq!(loads.iter().map(|l| l.0).collect::<Vec<_>>(), vec![x, y]);
    // y comes back first: it waits behind x.
    f.loaded(&log, y, log.body_at(loads[1].1), T0 + 2);
    assert!(sent(&actions(&mut f)).is_empty(), "in order");
    // x cannot be read: it ends, and y goes.
    f.loaded(&log, x, None, T0 + 3);
    let acts = actions(&mut f);
    assert_eq!(ended(&acts), vec![(x, End::LOST)]);
    assert_eq!(sent(&acts), vec![y]);
}

#[test]
fn reads_for_receipts_and_compaction_do_not_hold_a_queues_read_ahead_back() {
    let (mut f, log) = (bounded(1), TestLog::default());
    log.seg.set(1);
    // 300 forwarded, waiting for receipts, their bodies on disk.
    let mut waiting = Vec::new();
    for i in 0..300 {
        let id = accepted(&mut f, &log, LINK, 1);
        sends(&mut f);
        let up = format!("{i:x}");
        let upstream_id = Bytes::copy_from_slice(up.as_bytes());
        f.result(
            &log,
            id,
            Outcome::Accepted {
                upstream_id,
                key: key(&up),
            },
            T0,
        );
        waiting.push(id);
    }
    assert_eq!(f.resident(), 1);
    // Their segment is compacted: 299 reads outstanding (not answered yet).
    log.seg.set(2);
    f.compact(&log, 1);
    let compaction_loads = actions(&mut f)
        .iter()
        .filter(|a| matches!(a, Action::Load { .. }))
        .count();
    assert_eq!(compaction_loads, 299);
    // New messages for the link: `batch` (4) go, the rest wait with their bodies on disk.
    let fresh: Vec<MessageId> = (0..10).map(|_| accepted(&mut f, &log, LINK, 0)).collect();
    let acts = actions(&mut f);
    assert_eq!(sent(&acts), fresh[..4].to_vec());
    // The four come back: the queue reads the next ones back, whatever else is being read.
    for id in &fresh[..4] {
        f.result(&log, *id, Outcome::Delivered, T0 + 1);
    }
    let loads: Vec<MessageId> = actions(&mut f)
        .iter()
        .filter_map(|a| match a {
            Action::Load { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(loads, fresh[4..].to_vec(), "the queue's read-ahead");
}

#[test]
fn a_long_queue_for_a_target_that_is_down_is_parked_beyond_its_first_messages() {
    // The memory bound is far away: only the length of the wait parks them.
    let (mut f, log) = (flow(false, false), TestLog::default());
    let first = down_with_one(&mut f, &log, RX, 0);
    let mut ids = vec![first];
    for _ in 0..LOAD_AHEAD + 43 {
        ids.push(accepted(&mut f, &log, RX, 0));
    }
    assert!(actions(&mut f).is_empty(), "nothing sent, nothing read");
    assert_eq!(f.resident(), LOAD_AHEAD, "the first ones keep their bodies");
    assert_eq!(f.stats().spilled, 44);
    assert!(f.message(ids[LOAD_AHEAD + 1]).is_none(), "parked");
    assert!(f.message(ids[1]).is_some());
    // The receiver binds: every message goes in its order, with its body, read back as the
    // queue gets to it.
    f.target_up(RX, T0 + 1);
    let mut out = Vec::new();
    let (_, acts) = serve_loads(&mut f, &log, T0 + 1);
    out.extend(sent(&acts));
    while out.len() < ids.len() {
        let before = out.len();
        for id in out.clone().into_iter().skip(out.len().saturating_sub(4)) {
            f.result(&log, id, Outcome::Delivered, T0 + 2);
        }
        let (_, acts) = serve_loads(&mut f, &log, T0 + 2);
        out.extend(sent(&acts));
        assert!(
            out.len() > before,
            "the queue moves: {} of {}",
            out.len(),
            ids.len()
        );
    }
    assert_eq!(out, ids, "in order");
    assert_eq!(f.stats().loaded, 44);
}

#[test]
fn a_parked_message_keeps_its_failures_and_its_origin() {
    let (mut f, log) = (bounded(0), TestLog::default());
    f.policy.legs = true;
    let id = accepted(&mut f, &log, LINK, 0);
    assert_eq!(sends(&mut f), vec![(id, LINK)]);
    f.result(&log, id, Outcome::Temporary(CommandStatus::RTHROTTLED), T0);
    assert!(
        f.message(id).is_none(),
        "parked while it waits for its retry"
    );
    // Its retry: read back, sent; it fails again, counted on top of the first (its snapshot,
    // written at accept, says none).
    f.handle_timeout(&log, T0 + 1_000);
    let (loaded, acts) = serve_loads(&mut f, &log, T0 + 1_000);
    assert_eq!(loaded, vec![id]);
    assert_eq!(sent(&acts), vec![id]);
    f.result(
        &log,
        id,
        Outcome::Temporary(CommandStatus::RTHROTTLED),
        T0 + 1_001,
    );
    let attempts: Vec<u16> = actions(&mut f)
        .iter()
        .filter_map(|a| match a {
            Action::Attempted { failures, .. } => Some(*failures),
            _ => None,
        })
        .collect();
    assert_eq!(
        attempts,
        vec![1],
        "the second attempt went with one failure counted"
    );
    assert!(log
        .records
        .borrow()
        .iter()
        .any(|r| matches!(r, Record::Attempt { failures: 2, .. })));
    // It expires while parked, with no receipt asked: it ends without a read, its CDR leg
    // naming its origin.
    f.handle_timeout(&log, T0 + 3_600_000);
    let acts = actions(&mut f);
    assert!(
        !acts.iter().any(|a| matches!(a, Action::Load { .. })),
        "{acts:?}"
    );
    let end = acts.iter().find_map(|a| match a {
        Action::Ended {
            id: i,
            end,
            origin,
            failures,
            ..
        } if *i == id => Some((*end, origin.clone(), *failures)),
        _ => None,
    });
    assert_eq!(
        end,
        Some((End::EXPIRED, Bytes::from_static(b"smppserver/esme1"), 2))
    );
    assert!(f.is_empty());
}

#[test]
fn tables_grown_by_a_backlog_shrink_when_it_drains() {
    let (mut f, log) = (flow(false, false), TestLog::default());
    let first = down_with_one(&mut f, &log, RX, 0);
    let mut ids = vec![first];
    for _ in 0..20_000 {
        ids.push(accepted(&mut f, &log, RX, 0));
    }
    actions(&mut f);
    let grown = (f.msgs.capacity(), f.timers.capacity());
    assert!(grown.0 >= 20_000 && grown.1 >= 20_000, "{grown:?}");
    f.target_up(RX, T0 + 1);
    let mut out = sent(&serve_loads(&mut f, &log, T0 + 1).1);
    while let Some(id) = out.pop() {
        f.result(&log, id, Outcome::Delivered, T0 + 2);
        out.extend(sent(&serve_loads(&mut f, &log, T0 + 2).1));
    }
    assert!(f.is_empty());
    assert!(
        f.msgs.capacity() < grown.0 / 4 && f.timers.capacity() < grown.1 / 4,
        "{} and {} slots left of {grown:?}",
        f.msgs.capacity(),
        f.timers.capacity()
    );
    assert!(f.queues.values().all(|q| q.ids.capacity() < 20_000 / 4));
}
