//! The message log's durability, checked against a model.
//!
//! Segments are laid out here exactly as `store::log` writes them (the 64-octet header twice in
//! the first block, each commit from an aligned offset and zero-padded to the next one), then
//! torn at any byte, bit-flipped, given frames of another segment inside a PDU, and loaded from a
//! spool directory. What `record::scan` and `Replay` make of them is compared with a model: a
//! `BTreeMap` of live messages updated record by record, written apart from `Replay` so that one
//! mistake cannot hide in both. Histories come from a seeded generator (the fixed tests) or from
//! proptest (any history, any cut, any flip).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use smppgw::ids::MessageId;
use smppgw::store::record::{
    self, Forwarded, Frame, Kind, Record, SegmentHeader, StoredMessage, SEGMENT_HEADER_LEN,
};
use smppgw::store::replay::Replay;
use smppgw::store::{self, segment_name, shard_dir};

/// The sequence number the single-segment tests give their segment.
const SEQ: u64 = 7;

// ---------------------------------------------------------------------------------------------
// Histories: what happened to the messages, turned into records.

/// One step of the gateway's work, as a test states it; [`records_of`] turns steps into records.
#[derive(Clone, Debug)]
enum Op {
    /// A message accepted.
    Accept {
        kind: u8,
        pdu: Vec<u8>,
        forwarded: bool,
    },
    /// A temporary failure of an open message (`pick` chooses which, modulo the open ones).
    Attempt {
        pick: usize,
        on_backup: bool,
        status: u32,
    },
    /// An upstream accepted an open message.
    Forward { pick: usize, upstream_id_len: usize },
    /// An open message is done.
    Final { pick: usize, state: u8 },
    /// An open message's whole state written again (compaction).
    Snapshot { pick: usize },
    /// A record about a message whose snapshot is not in the log (compacted away).
    Stray { counter: u64, is_final: bool },
}

fn kind_of(code: u8) -> Kind {
    match code % 3 {
        0 => Kind::Submit,
        1 => Kind::Mo,
        _ => Kind::Receipt,
    }
}

fn upstream_id(seed: u64, len: usize) -> Bytes {
    (0..len)
        .map(|i| b"0123456789ABCDEF"[(seed as usize + i) % 16])
        .collect::<Vec<u8>>()
        .into()
}

fn message(id: MessageId, kind: Kind, pdu: Vec<u8>, forwarded: Option<Forwarded>) -> StoredMessage {
    let n = id.counter();
    StoredMessage {
        id,
        billid: match kind {
            Kind::Receipt => MessageId::new(id.epoch_secs(), id.shard(), n + 1_000_000),
            _ => id,
        },
        kind,
        origin: Bytes::from(format!("smppserver/esme{}", n % 3)),
        target: Bytes::from_static(b"smppclient/up"),
        registered_delivery: (n % 2) as u8,
        accepted_ms: 1_700_000_000_000 + n * 10,
        not_before_ms: if n % 5 == 0 { 1_700_000_000_500 } else { 0 },
        expires_ms: 1_700_086_400_000 + n * 10,
        retries: 3,
        failures: 0,
        on_backup: false,
        forwarded: forwarded.map(Box::new),
        pdu: pdu.into(),
        report_to: if n % 4 == 3 {
            Bytes::from(format!("http://127.0.0.1:8080/cb/{n}"))
        } else {
            Bytes::new()
        },
    }
}

/// The records a history writes, for messages numbered by shard `shard` from second `epoch`.
fn records_of(ops: &[Op], epoch: u32, shard: u8) -> Vec<Record> {
    // The state of each open message, so that attempts count up and snapshots are whole.
    let mut open: Vec<StoredMessage> = Vec::new();
    let mut next = 1u64;
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Accept {
                kind,
                pdu,
                forwarded,
            } => {
                let id = MessageId::new(epoch, shard, next);
                let fwd = forwarded.then(|| Forwarded {
                    link: Bytes::from_static(b"up"),
                    upstream_id: upstream_id(next, 10),
                });
                let m = message(id, kind_of(*kind), pdu.clone(), fwd);
                next += 1;
                open.push(m.clone());
                out.push(Record::Message(m));
            }
            Op::Attempt {
                pick,
                on_backup,
                status,
            } if !open.is_empty() => {
                let i = pick % open.len();
                let m = &mut open[i];
                m.failures += 1;
                m.on_backup |= *on_backup;
                out.push(Record::Attempt {
                    id: m.id,
                    failures: m.failures,
                    on_backup: m.on_backup,
                    status: *status,
                });
            }
            Op::Forward {
                pick,
                upstream_id_len,
            } if !open.is_empty() => {
                let i = pick % open.len();
                let m = &mut open[i];
                let f = Forwarded {
                    link: Bytes::from_static(b"up"),
                    upstream_id: upstream_id(m.id.counter(), *upstream_id_len),
                };
                m.forwarded = Some(Box::new(f.clone()));
                out.push(Record::Forwarded {
                    id: m.id,
                    link: f.link,
                    upstream_id: f.upstream_id,
                });
            }
            Op::Final { pick, state } if !open.is_empty() => {
                let i = pick % open.len();
                let m = open.swap_remove(i);
                out.push(Record::Final {
                    id: m.id,
                    state: *state,
                    tp_status: 0,
                    status: u32::from(*state == 5) * 0x45,
                });
            }
            Op::Snapshot { pick } if !open.is_empty() => {
                let i = pick % open.len();
                out.push(Record::Message(open[i].clone()));
            }
            Op::Stray { counter, is_final } => {
                // Counters from 2^39 up are never given by `Accept`.
                let id = MessageId::new(epoch, shard, 1 << 39 | (counter & 0xFFFF));
                out.push(if *is_final {
                    Record::Final {
                        id,
                        state: 2,
                        tp_status: 0,
                        status: 0,
                    }
                } else {
                    Record::Attempt {
                        id,
                        failures: 1,
                        on_backup: false,
                        status: 0x58,
                    }
                });
            }
            // A step about an open message when none is open writes nothing.
            _ => {}
        }
    }
    out
}

/// A small deterministic generator for the fixed tests (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Octets none of which is zero: garbage that can never pass for padding.
    fn garbage(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| 1 + self.below(255) as u8).collect()
    }
}

/// A history of `n` steps: messages accepted, attempted, forwarded, finished, some written again
/// as snapshots, a few records about messages no longer in the log.
fn seeded_ops(rng: &mut Rng, n: usize) -> Vec<Op> {
    (0..n)
        .map(|_| match rng.below(100) {
            0..=29 => Op::Accept {
                kind: rng.below(3) as u8,
                pdu: {
                    let len = rng.below(100);
                    rng.bytes(len)
                },
                forwarded: rng.below(5) == 0,
            },
            30..=49 => Op::Attempt {
                pick: rng.below(1000),
                on_backup: rng.below(4) == 0,
                status: [0, 0x14, 0x58][rng.below(3)],
            },
            // Upstream ids of 1 to 24 octets make Forwarded records of 18 to 41 octets, so
            // some have a length of 32: one bit from zero.
            50..=64 => Op::Forward {
                pick: rng.below(1000),
                upstream_id_len: 1 + rng.below(24),
            },
            65..=84 => Op::Final {
                pick: rng.below(1000),
                state: [2, 3, 5, 6, 8][rng.below(5)],
            },
            85..=94 => Op::Snapshot {
                pick: rng.below(1000),
            },
            _ => Op::Stray {
                counter: rng.below(50) as u64,
                is_final: rng.below(2) == 0,
            },
        })
        .collect()
}

/// Records grouped into commits of the given sizes (cycled), as group commit would.
fn commits_of(records: Vec<Record>, sizes: &[usize]) -> Vec<Vec<Record>> {
    let mut out = Vec::new();
    let mut it = records.into_iter().peekable();
    for &size in sizes.iter().cycle() {
        if it.peek().is_none() {
            break;
        }
        out.push(it.by_ref().take(size.max(1)).collect());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Segments, laid out as the writer lays them out.

/// One record where the writer put it.
struct Placed {
    at: Range<usize>,
    record: Record,
}

/// A segment file's octets and where everything in it is.
struct Laid {
    header: SegmentHeader,
    bytes: Vec<u8>,
    placed: Vec<Placed>,
    /// Per commit: where its first record starts and its last ends (padding excluded).
    commits: Vec<Range<usize>>,
}

fn header(seq: u64, align: u32, salt: u32) -> SegmentHeader {
    SegmentHeader {
        shard: 0,
        seq,
        align,
        salt,
        created_ms: 1_700_000_000_000,
    }
}

/// What `store::log` writes: the header (twice when the first block holds two) in the first
/// block, then each commit from an aligned offset, zero-padded to the next, then one more block
/// of the zeros a preallocated file holds.
fn lay_out(header: SegmentHeader, commits: &[Vec<Record>]) -> Laid {
    let align = header.align as usize;
    let mut bytes = vec![0u8; header.data_start()];
    let h = header.encode();
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&h);
    if bytes.len() >= 2 * SEGMENT_HEADER_LEN {
        bytes[SEGMENT_HEADER_LEN..2 * SEGMENT_HEADER_LEN].copy_from_slice(&h);
    }
    let mut placed = Vec::new();
    let mut ranges = Vec::new();
    for recs in commits {
        let base = bytes.len();
        assert_eq!(base % align, 0, "a commit starts at an aligned offset");
        let mut chunk = BytesMut::new();
        for r in recs {
            let start = chunk.len();
            record::encode(r, header.salt, &mut chunk);
            placed.push(Placed {
                at: base + start..base + chunk.len(),
                record: r.clone(),
            });
        }
        ranges.push(base..base + chunk.len());
        bytes.extend_from_slice(&chunk);
        bytes.resize(base + chunk.len().div_ceil(align) * align, 0);
    }
    bytes.resize(bytes.len() + align, 0);
    Laid {
        header,
        bytes,
        placed,
        commits: ranges,
    }
}

/// A seeded history of `steps` steps in commits of 1 to `max_commit` records.
fn seeded_segment(seed: u64, steps: usize, max_commit: usize, align: u32) -> Laid {
    let mut rng = Rng(seed);
    let ops = seeded_ops(&mut rng, steps);
    let sizes: Vec<usize> = (0..64).map(|_| 1 + rng.below(max_commit)).collect();
    let salt = rng.next() as u32;
    lay_out(
        header(SEQ, align, salt),
        &commits_of(records_of(&ops, 1000, 0), &sizes),
    )
}

// ---------------------------------------------------------------------------------------------
// The model, and replay's result in the model's terms.

/// The live messages after some records: each with its latest state and the segment of its
/// latest snapshot; and how many messages went final, and how many records were about messages
/// not live. Deliberately naive; it shares no code with `Replay`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    live: BTreeMap<MessageId, (StoredMessage, u64)>,
    finals: u64,
    superseded: u64,
}

impl Model {
    fn apply(&mut self, segment: u64, r: &Record) {
        match r {
            Record::Message(m) => {
                self.live.insert(m.id, (m.clone(), segment));
            }
            Record::Attempt {
                id,
                failures,
                on_backup,
                ..
            } => match self.live.get_mut(id) {
                Some((m, _)) => {
                    m.failures = *failures;
                    m.on_backup = *on_backup;
                }
                None => self.superseded += 1,
            },
            Record::Forwarded {
                id,
                link,
                upstream_id,
            } => match self.live.get_mut(id) {
                Some((m, _)) => {
                    m.forwarded = Some(Box::new(Forwarded {
                        link: link.clone(),
                        upstream_id: upstream_id.clone(),
                    }));
                }
                None => self.superseded += 1,
            },
            Record::Final { id, .. } => match self.live.remove(id) {
                Some(_) => self.finals += 1,
                None => self.superseded += 1,
            },
        }
    }

    fn of<'a>(segment: u64, records: impl IntoIterator<Item = &'a Record>) -> Model {
        let mut m = Model::default();
        for r in records {
            m.apply(segment, r);
        }
        m
    }
}

/// What `Replay` makes of records of segment `segment`, in the model's terms.
fn replayed(segment: u64, records: &[(usize, Record)]) -> Model {
    let mut r = Replay::default();
    for (_, rec) in records {
        r.apply(segment, rec.clone());
    }
    Model {
        live: r
            .live
            .into_iter()
            .map(|(id, l)| (id, (l.message, l.snapshot.seg)))
            .collect(),
        finals: r.finals,
        superseded: r.superseded,
    }
}

/// The model after each prefix of the segment's records: `[k]` after the first `k`.
fn prefix_states(seg: &Laid) -> Vec<Model> {
    let mut m = Model::default();
    let mut out = vec![m.clone()];
    for p in &seg.placed {
        m.apply(SEQ, &p.record);
        out.push(m.clone());
    }
    out
}

fn expected_records<'a>(placed: impl IntoIterator<Item = &'a Placed>) -> Vec<(usize, Record)> {
    placed
        .into_iter()
        .map(|p| (p.at.start, p.record.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. A log torn at any byte.

/// How the octets after a cut look.
#[derive(Clone, Copy, Debug)]
enum Tail {
    /// Never written: the zeros of the preallocated file.
    Zeros,
    /// The rest of the block holds garbage, as a half-written block may; zeros after it.
    Garbage,
}

/// Cuts `seg` after `n` octets and checks what scan and replay make of it: exactly the records
/// whose octets all survived (a prefix of the log), never one that was not written, every
/// record of every commit that ended by `n`, and damage reported for what is left over.
fn check_torn(seg: &Laid, states: &[Model], n: usize, tail: Tail, rng: &mut Rng) {
    let align = seg.header.align as usize;
    let block_end = ((n / align + 1) * align).min(seg.bytes.len());
    // The file ends one block of zeros after the cut's block: more zeros change nothing but
    // the time the search for a good frame takes over them.
    let mut data = seg.bytes[..(block_end + align).min(seg.bytes.len())].to_vec();
    data[n..].fill(0);
    let garbage = match tail {
        Tail::Zeros => n..n,
        Tail::Garbage => {
            let g = rng.garbage(block_end - n);
            data[n..block_end].copy_from_slice(&g);
            n..block_end
        }
    };
    let data = Bytes::from(data);
    let scan = record::scan(&data, &seg.header);

    let survived = seg
        .placed
        .iter()
        .take_while(|p| data.get(p.at.clone()) == Some(&seg.bytes[p.at.clone()]))
        .count();
    assert!(
        seg.placed[survived..]
            .iter()
            .all(|p| data.get(p.at.clone()) != Some(&seg.bytes[p.at.clone()])),
        "cut at {n}: the records that survive a cut are a prefix"
    );
    let committed_end = seg.commits.iter().map(|c| c.end).filter(|&e| e <= n).max();
    let committed = seg
        .placed
        .iter()
        .filter(|p| committed_end.is_some_and(|e| p.at.end <= e))
        .count();
    assert!(
        survived >= committed,
        "cut at {n}: a committed record is gone"
    );

    assert_eq!(
        scan.records,
        expected_records(&seg.placed[..survived]),
        "cut at {n} ({tail:?}): the records read"
    );
    assert_eq!(
        replayed(SEQ, &scan.records),
        states[survived],
        "cut at {n} ({tail:?}): the live messages"
    );

    // With nothing after the cut (or garbage at the very end), a zero tail.
    match garbage.is_empty() {
        true => {
            // At most the remains of the one torn record, before the cut.
            assert!(scan.damage.len() <= 1, "cut at {n}: {:?}", scan.damage);
            for d in &scan.damage {
                assert!(d.tail && d.len > 0, "cut at {n}: {d:?}");
                assert!(d.offset + d.len <= n, "cut at {n}: {d:?}");
            }
        }
        false => {
            assert_eq!(scan.damage.len(), 1, "cut at {n}: {:?}", scan.damage);
            let d = scan.damage[0];
            assert!(d.tail, "cut at {n}: {d:?}");
            assert!(
                d.offset <= garbage.start && d.offset + d.len >= garbage.end,
                "cut at {n}: {d:?} does not cover the garbage {garbage:?}"
            );
        }
    }
}

fn check_cuts(seg: &Laid, cuts: impl IntoIterator<Item = usize>, seed: u64) {
    let states = prefix_states(seg);
    let mut rng = Rng(seed);
    for n in cuts {
        check_torn(seg, &states, n, Tail::Zeros, &mut rng);
        check_torn(seg, &states, n, Tail::Garbage, &mut rng);
    }
}

#[test]
fn a_small_log_torn_at_every_byte_replays_exactly_the_records_that_survived() {
    let seg = seeded_segment(0x5EED_0001, 60, 8, 128);
    assert!(seg.commits.len() >= 5);
    let end = seg.commits.last().unwrap().end;
    check_cuts(&seg, seg.header.data_start()..=end, 1);
}

#[test]
fn a_long_log_torn_anywhere_replays_exactly_the_records_that_survived() {
    let mut rng = Rng(0x5EED_0002);
    let mut records = records_of(&seeded_ops(&mut rng, 300), 1000, 0);
    let sizes: Vec<usize> = (0..64).map(|_| 1 + rng.below(16)).collect();
    // The last two commits small, so that every byte of them is a cut.
    let last = records.split_off(records.len() - 4);
    let mut commits = commits_of(records, &sizes);
    commits.extend([last[..2].to_vec(), last[2..].to_vec()]);
    let seg = lay_out(header(SEQ, 512, rng.next() as u32), &commits);
    assert!(seg.placed.len() >= 200, "{} records", seg.placed.len());
    let n = seg.commits.len();
    // Every byte of the last two commits and the padding after them; before them, a stride
    // and the octets at and around every commit's start and end.
    let from = seg.header.data_start();
    let tail_from = seg.commits[n - 2].start;
    let end = seg.bytes.len() - seg.header.align as usize;
    let mut cuts: Vec<usize> = (from..tail_from).step_by(149).collect();
    cuts.extend(tail_from..=end);
    for c in &seg.commits {
        cuts.extend([
            c.start - 1,
            c.start,
            c.start + 1,
            c.end - 1,
            c.end,
            c.end + 1,
        ]);
    }
    cuts.retain(|&c| c >= from && c <= end);
    cuts.sort_unstable();
    cuts.dedup();
    check_cuts(&seg, cuts, 2);
}

// ---------------------------------------------------------------------------------------------
// 2. A flipped bit anywhere.

/// Flips bit `bit` of octet `at` and checks that replay loses at most the record holding it,
/// reports the octets it skipped, keeps every other record and accepts no changed one.
fn check_flip(seg: &Laid, at: usize, bit: u8) -> record::Scan {
    let mut data = seg.bytes.clone();
    data[at] ^= 1 << bit;
    let scan = record::scan(&Bytes::from(data), &seg.header);
    let hit = seg.placed.iter().position(|p| p.at.contains(&at));
    let kept: Vec<&Placed> = seg
        .placed
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != hit)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        scan.records,
        expected_records(kept.iter().copied()),
        "flip of bit {bit} at {at}"
    );
    assert_eq!(
        replayed(SEQ, &scan.records),
        Model::of(SEQ, kept.iter().map(|p| &p.record)),
        "flip of bit {bit} at {at}: the live messages"
    );
    assert_eq!(
        scan.damage.len(),
        1,
        "flip of bit {bit} at {at}: {:?}",
        scan.damage
    );
    let d = scan.damage[0];
    assert!(
        d.offset <= at && at < d.offset + d.len,
        "flip of bit {bit} at {at}: {d:?}"
    );
    let anything_after = seg.placed.iter().any(|p| p.at.start > at);
    assert_eq!(d.tail, !anything_after, "flip of bit {bit} at {at}: {d:?}");
    scan
}

#[test]
fn a_flipped_bit_anywhere_in_a_small_log_costs_at_most_the_record_holding_it() {
    let seg = seeded_segment(0x5EED_0003, 24, 6, 128);
    // Up to a few octets into the block of zeros after the last commit (the rest is more of
    // the same).
    let end = seg.bytes.len() - seg.header.align as usize + 8;
    for at in seg.header.data_start()..end {
        for bit in 0..8 {
            check_flip(&seg, at, bit);
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_in_a_long_log_costs_at_most_the_record_holding_it() {
    let seg = seeded_segment(0x5EED_0004, 400, 16, 512);
    assert!(seg.placed.len() >= 300, "{} records", seg.placed.len());
    for at in (seg.header.data_start()..seg.bytes.len()).step_by(97) {
        check_flip(&seg, at, (at % 8) as u8);
    }
}

#[test]
fn a_length_flipped_to_zero_is_damage_not_padding_nor_the_end() {
    let id = |n| MessageId::new(1000, 0, n);
    let fin = |n| Record::Final {
        id: id(n),
        state: 2,
        tp_status: 0,
        status: 0,
    };
    // 1 + 10 + 2 + 2 + 2 + 15: a length of 32, one bit from zero.
    let fwd = |n| Record::Forwarded {
        id: id(n),
        link: Bytes::from_static(b"up"),
        upstream_id: upstream_id(n, 15),
    };
    let msg = |n| Record::Message(message(id(n), Kind::Submit, vec![n as u8; 30], None));
    let seg = lay_out(
        header(SEQ, 512, 0x1234_5678),
        &[
            vec![msg(1), msg(2), msg(3), msg(4)],
            vec![fwd(1), fin(2), fwd(3), fin(4)],
            vec![msg(5), fin(5)],
        ],
    );
    for (i, p) in seg.placed.iter().enumerate() {
        if matches!(p.record, Record::Forwarded { .. }) {
            assert_eq!(p.at.len() - 8, 32, "record {i}");
            // Bit 5 of the length's low octet: at a block start (where a zero length is the
            // end) and inside a block (where it is padding).
            check_flip(&seg, p.at.start, 5);
        }
    }
}

#[test]
fn a_commit_ending_one_to_three_octets_before_a_block_end_leaves_no_damage() {
    let msg = |n, pdu_len| {
        let m = message(
            MessageId::new(1000, 0, n),
            Kind::Submit,
            vec![7; pdu_len],
            None,
        );
        Record::Message(m)
    };
    for short in 1..=3 {
        // A message frame here is 98 octets and its PDU: the first commit ends `short` octets
        // before the block end, too few for a length of zeros.
        let seg = lay_out(
            header(SEQ, 128, 42),
            &[vec![msg(1, 30 - short)], vec![msg(2, 10)]],
        );
        assert_eq!(seg.commits[0].end, 128 + 128 - short);
        let scan = record::scan(&Bytes::from(seg.bytes.clone()), &seg.header);
        assert_eq!(scan.records, expected_records(&seg.placed));
        assert!(scan.damage.is_empty(), "{short}: {:?}", scan.damage);
    }
}

#[test]
fn a_flip_in_either_header_copy_is_survived_through_the_other() {
    let seg = seeded_segment(0x5EED_0005, 40, 6, 512);
    let all = expected_records(&seg.placed);
    // The header as `store::load` reads it: the first copy, else the second.
    let read = |d: &[u8]| {
        SegmentHeader::decode(d).or_else(|| SegmentHeader::decode(&d[SEGMENT_HEADER_LEN..]))
    };
    for at in 0..2 * SEGMENT_HEADER_LEN {
        for bit in 0..8 {
            let mut data = seg.bytes.clone();
            data[at] ^= 1 << bit;
            if at % SEGMENT_HEADER_LEN < 38 {
                // Magic, fields and CRC: that copy is refused, never misread.
                let copy = at - at % SEGMENT_HEADER_LEN;
                assert_eq!(SegmentHeader::decode(&data[copy..]), None);
            }
            let h = read(&data);
            assert_eq!(h, Some(seg.header), "flip of bit {bit} at {at}");
            let scan = record::scan(&Bytes::from(data), &h.unwrap());
            assert_eq!(scan.records, all, "flip of bit {bit} at {at}");
            assert!(scan.damage.is_empty());
        }
    }
    // Both copies damaged: nothing is read (`load` keeps such a file aside).
    let mut both = seg.bytes.clone();
    both[3] ^= 1;
    both[SEGMENT_HEADER_LEN + 20] ^= 1;
    assert_eq!(read(&both), None);
}

// ---------------------------------------------------------------------------------------------
// 3. The salt.

#[test]
fn a_frame_of_another_segment_inside_a_pdu_is_never_read_as_a_record() {
    let (salt_a, salt_b) = (0xA0A0_0001, 0xB0B0_0002);
    let id = |n| MessageId::new(1000, 0, n);
    // Frames as segment A holds them: one would end message 1, one would bring a message in.
    let mut smuggled = BytesMut::new();
    record::encode(
        &Record::Final {
            id: id(1),
            state: 2,
            tp_status: 0,
            status: 0,
        },
        salt_a,
        &mut smuggled,
    );
    let intruder = message(id(99), Kind::Submit, b"intruder".to_vec(), None);
    record::encode(&Record::Message(intruder), salt_a, &mut smuggled);
    let mut pdu = b"\x00\x00\x00\x51short message text: ".to_vec();
    pdu.extend_from_slice(&smuggled);
    pdu.extend_from_slice(b" and more text");

    let carrier = message(id(2), Kind::Submit, pdu, None);
    let seg = lay_out(
        header(SEQ, 512, salt_b),
        &[
            vec![Record::Message(message(id(1), Kind::Mo, vec![1; 20], None))],
            vec![
                Record::Attempt {
                    id: id(1),
                    failures: 1,
                    on_backup: false,
                    status: 0x58,
                },
                Record::Message(carrier),
                Record::Message(message(id(3), Kind::Submit, vec![3; 20], None)),
            ],
        ],
    );
    let [_, before, carrier, _] = [0, 1, 2, 3].map(|i| seg.placed[i].at.clone());
    // Where the smuggled frames start: the carrier's PDU is the end of its record.
    let smuggled_at = carrier.end - b" and more text".len() - smuggled.len();
    let data = Bytes::from(seg.bytes.clone());
    // In segment A's terms they are good frames: only the salt stands between them and replay.
    assert!(matches!(
        record::frame_at(&data, smuggled_at, salt_a, 512),
        Frame::Record {
            record: Record::Final { .. },
            ..
        }
    ));
    assert_eq!(
        record::frame_at(&data, smuggled_at, salt_b, 512),
        Frame::Bad
    );

    // Damage in the record before the carrier, and anywhere in the carrier before the frames:
    // the search for the next good frame runs over them and must not take them.
    for at in before.start..smuggled_at {
        for bit in 0..8 {
            let scan = check_flip(&seg, at, bit);
            assert!(scan.records.iter().all(|(_, r)| r.id() != id(99)));
            let live = replayed(SEQ, &scan.records);
            assert!(live.live.contains_key(&id(1)), "flip of bit {bit} at {at}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. `store::load` on a spool directory.

/// A fresh directory under cargo's scratch space for integration tests.
fn scratch(name: &str) -> PathBuf {
    let d =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What a spool was written with, and what loading it must give.
struct SpoolPlan {
    /// Per chain (shard directory): the live messages as the model has them.
    live: [Model; 2],
    max_epoch_secs: u32,
}

/// In chain 0, messages that no history step touches.
fn long_lived(k: u64) -> MessageId {
    MessageId::new(1000, 0, 1 << 38 | k)
}

/// Two chains as two runs of a two-shard gateway left them:
/// - `shard-0`: segments 1 and 2 (messages from 1 finished, attempted, written again in 2),
///   and 3, created but never written (all zeros);
/// - `shard-1`: segments 4 and 5 (1 to 3 were compacted away, so the chain begins with records
///   about messages no longer in it), 4 with its first header copy damaged and one record
///   flipped, 5 with a torn last commit; and 6 with both header copies damaged.
fn write_spool(spool: &Path) -> SpoolPlan {
    let mut live = [Model::default(), Model::default()];
    let mut rng = Rng(0x5EED_0010);
    let chains: [(u32, u8, &[u64]); 2] = [(1000, 0, &[1, 2]), (1001, 1, &[4, 5, 6])];
    for (chain, (epoch, shard, seqs)) in chains.into_iter().enumerate() {
        let dir = shard_dir(spool, chain);
        std::fs::create_dir_all(&dir).unwrap();
        let mut ops = seeded_ops(&mut rng, 150 * seqs.len());
        if chain == 1 {
            // Compacted away: the chain's first records are about messages it no longer has.
            ops.insert(
                0,
                Op::Stray {
                    counter: 1,
                    is_final: false,
                },
            );
            ops.insert(
                1,
                Op::Stray {
                    counter: 2,
                    is_final: true,
                },
            );
        }
        let records = records_of(&ops, epoch, shard);
        let per = records.len().div_ceil(seqs.len());
        let mut by_segment: Vec<Vec<Record>> = records.chunks(per).map(<[_]>::to_vec).collect();
        if chain == 0 {
            // Three messages that outlive segment 1: one written again in 2 (compaction), one
            // attempted in 2, one untouched.
            let long: Vec<StoredMessage> = (0..3)
                .map(|k| message(long_lived(k), Kind::Submit, vec![9; 30], None))
                .collect();
            by_segment[0].splice(0..0, long.iter().cloned().map(Record::Message));
            by_segment[1].push(Record::Message(StoredMessage {
                failures: 2,
                ..long[0].clone()
            }));
            by_segment[1].push(Record::Attempt {
                id: long[1].id,
                failures: 1,
                on_backup: true,
                status: 0x58,
            });
        }
        for (k, (&seq, recs)) in seqs.iter().zip(&by_segment).enumerate() {
            let sizes: Vec<usize> = (0..32).map(|_| 1 + rng.below(10)).collect();
            let h = SegmentHeader {
                shard: u16::from(shard),
                ..header(seq, 512, rng.next() as u32)
            };
            let seg = lay_out(h, &commits_of(recs.to_vec(), &sizes));
            let mut bytes = seg.bytes.clone();
            let mut lost: Vec<usize> = Vec::new();
            match (chain, k) {
                (1, 0) => {
                    bytes[20] ^= 0x10;
                    let mid = seg.placed.len() / 2;
                    bytes[seg.placed[mid].at.start + 9] ^= 0x01;
                    lost.push(mid);
                }
                (1, 1) => {
                    let last = seg.commits.last().unwrap().clone();
                    bytes[last.start + 5..].fill(0);
                    let g = rng.garbage(512 - 5);
                    bytes[last.start + 5..last.start + 512].copy_from_slice(&g);
                    lost.extend(
                        (0..seg.placed.len()).filter(|&i| seg.placed[i].at.start >= last.start),
                    );
                }
                (1, 2) => {
                    bytes[3] ^= 0x04;
                    bytes[SEGMENT_HEADER_LEN + 30] ^= 0x80;
                    lost.extend(0..seg.placed.len());
                }
                _ => {}
            }
            std::fs::write(dir.join(segment_name(seq)), &bytes).unwrap();
            for (i, p) in seg.placed.iter().enumerate() {
                if !lost.contains(&i) {
                    live[chain].apply(seq, &p.record);
                }
            }
        }
    }
    std::fs::write(shard_dir(spool, 0).join(segment_name(3)), vec![0u8; 4096]).unwrap();
    SpoolPlan {
        live,
        max_epoch_secs: 1001,
    }
}

fn live_of(sh: &store::ShardSpool) -> Vec<(StoredMessage, u64)> {
    sh.live
        .iter()
        .map(|l| (l.message.clone(), store::segment_of(l.snapshot.seg).1))
        .collect()
}

/// Every live message of `sh` read back from where load says its snapshot lies: the PDU it
/// has (or, when it came without one, the one it had in `full`).
fn reads_back(spool: &Path, sh: &store::ShardSpool, full: &[(StoredMessage, u64)]) {
    for l in &sh.live {
        let (chain, seq) = store::segment_of(l.snapshot.seg);
        let path = shard_dir(spool, chain).join(segment_name(seq));
        let pdu = store::read_message(&path, l.snapshot).unwrap();
        let want = full.iter().find(|(m, _)| m.id == l.message.id).unwrap();
        assert_eq!(pdu, want.0.pdu, "message {} read back", l.message.id);
    }
}

fn sorted(models: &[&Model]) -> Vec<(StoredMessage, u64)> {
    let mut all: Vec<(StoredMessage, u64)> = models
        .iter()
        .flat_map(|m| m.live.values().cloned())
        .collect();
    all.sort_by_key(|(m, _)| m.id);
    all
}

fn chains_of(sh: &store::ShardSpool) -> Vec<(usize, u64)> {
    sh.old_segments.iter().map(|s| (s.chain, s.seq)).collect()
}

#[test]
fn load_adopts_every_chain_whatever_the_shard_count() {
    for shards in [1, 2, 3] {
        let spool = scratch(&format!("load-{shards}"));
        let plan = write_spool(&spool);
        assert!(plan.live.iter().all(|m| m.live.len() >= 5));
        let snapshot = |k| {
            plan.live[0]
                .live
                .get(&long_lived(k))
                .map(|(m, seg)| (*seg, m.failures, m.on_backup))
        };
        assert_eq!(snapshot(0), Some((2, 2, false)));
        assert_eq!(snapshot(1), Some((1, 1, true)));
        assert_eq!(snapshot(2), Some((1, 0, false)));
        let got = store::load(&spool, shards, usize::MAX, None).unwrap();
        assert_eq!(got.shards.len(), shards);
        assert_eq!(got.max_epoch_secs, plan.max_epoch_secs);
        let (a, b) = (&plan.live[0], &plan.live[1]);
        match shards {
            1 => {
                assert_eq!(live_of(&got.shards[0]), sorted(&[a, b]));
                reads_back(&spool, &got.shards[0], &sorted(&[a, b]));
                assert_eq!(chains_of(&got.shards[0]), [(0, 1), (0, 2), (1, 4), (1, 5)]);
                // Shard 0 writes on in shard-0, after the last segment found there.
                assert_eq!(got.shards[0].first_seq, 4);
            }
            _ => {
                assert_eq!(live_of(&got.shards[0]), sorted(&[a]));
                assert_eq!(live_of(&got.shards[1]), sorted(&[b]));
                reads_back(&spool, &got.shards[0], &sorted(&[a]));
                reads_back(&spool, &got.shards[1], &sorted(&[b]));
                assert_eq!(chains_of(&got.shards[0]), [(0, 1), (0, 2)]);
                assert_eq!(chains_of(&got.shards[1]), [(1, 4), (1, 5)]);
                assert_eq!(got.shards[0].first_seq, 4);
                assert_eq!(got.shards[1].first_seq, 7);
                if shards == 3 {
                    assert!(got.shards[2].live.is_empty());
                    assert!(got.shards[2].old_segments.is_empty());
                    assert_eq!(got.shards[2].first_seq, 1);
                    assert!(shard_dir(&spool, 2).is_dir());
                }
            }
        }
        for sh in &got.shards {
            for s in &sh.old_segments {
                assert_eq!(s.path, shard_dir(&spool, s.chain).join(segment_name(s.seq)));
            }
        }

        // The empty segment is gone; the unreadable one is kept aside and reported.
        let empty = shard_dir(&spool, 0).join(segment_name(3));
        let damaged = shard_dir(&spool, 1).join(segment_name(6));
        assert!(!empty.exists());
        assert!(!damaged.exists());
        assert!(damaged.with_extension("log.damaged").is_file());
        let report = got.report.join("\n");
        let live_total = a.live.len() + b.live.len();
        assert!(
            got.report[0].contains(&format!(
                "6 segments, {} octets read, {live_total} messages not final",
                dir_octets(&spool) + 4096
            )),
            "{report}"
        );
        let lines = |what: &str| got.report.iter().filter(|l| l.contains(what)).count();
        assert_eq!(lines("empty segment, removed"), 1, "{report}");
        assert_eq!(lines("damaged segment header"), 1, "{report}");
        assert_eq!(lines(".log.damaged"), 1, "{report}");
        assert_eq!(lines("skipped (corrupt"), 1, "{report}");
        assert_eq!(lines("cut off"), 1, "{report}");
        std::fs::remove_dir_all(&spool).unwrap();
    }
}

/// Octets of every file under `spool` (after load: the removed empty segment not counted).
fn dir_octets(spool: &Path) -> u64 {
    let mut n = 0;
    for chain in std::fs::read_dir(spool).unwrap().flatten() {
        for f in std::fs::read_dir(chain.path()).unwrap().flatten() {
            n += f.metadata().unwrap().len();
        }
    }
    n
}

#[test]
fn load_keeps_at_most_the_resident_bound_of_bodies_and_the_rest_read_back() {
    let spool = scratch("resident");
    let plan = write_spool(&spool);
    let (a, b) = (&plan.live[0], &plan.live[1]);
    let got = store::load(&spool, 1, 3, None).unwrap();
    let sh = &got.shards[0];
    let full = sorted(&[a, b]);
    assert_eq!(sh.live.len(), full.len());
    let kept: Vec<bool> = sh.live.iter().map(|l| !l.message.pdu.is_empty()).collect();
    assert_eq!(kept.iter().filter(|k| **k).count(), 3, "{kept:?}");
    assert!(kept[..3].iter().all(|k| *k), "the oldest keep theirs");
    // Apart from the body, each is the message replay made.
    for (l, (m, _)) in sh.live.iter().zip(&full) {
        let mut m = m.clone();
        m.pdu = l.message.pdu.clone();
        assert_eq!(l.message, m);
    }
    reads_back(&spool, sh, &full);
    assert!(got.report.iter().any(|l| l.contains(&format!(
        "{} messages beyond memory_messages",
        full.len() - 3
    ))));
    std::fs::remove_dir_all(&spool).unwrap();
}

#[test]
fn load_removes_segments_zeroed_ahead_and_never_used() {
    let spool = scratch("prepared");
    std::fs::create_dir_all(shard_dir(&spool, 0)).unwrap();
    let left = shard_dir(&spool, 0).join(format!("{}.new", segment_name(7)));
    std::fs::write(&left, vec![0u8; 8192]).unwrap();
    let got = store::load(&spool, 1, usize::MAX, None).unwrap();
    assert!(!left.exists());
    assert_eq!(got.shards[0].first_seq, 1, "it does not count as a segment");
    assert!(got.report[0].contains("0 segments"), "{:?}", got.report);
    std::fs::remove_dir_all(&spool).unwrap();
}

#[test]
fn load_of_an_empty_spool_creates_the_shard_directories() {
    let spool = scratch("empty").join("spool");
    let got = store::load(&spool, 2, usize::MAX, None).unwrap();
    assert!(got
        .shards
        .iter()
        .all(|s| s.live.is_empty() && s.first_seq == 1));
    assert!(shard_dir(&spool, 0).is_dir() && shard_dir(&spool, 1).is_dir());
    std::fs::remove_dir_all(spool.parent().unwrap()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// 5. Any history, any cut, any flip.

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3, vec(any::<u8>(), 0..120), any::<bool>())
            .prop_map(|(kind, pdu, forwarded)| Op::Accept { kind, pdu, forwarded }),
        2 => (any::<usize>(), any::<bool>(), any::<u32>())
            .prop_map(|(pick, on_backup, status)| Op::Attempt { pick, on_backup, status }),
        2 => (any::<usize>(), 0usize..40)
            .prop_map(|(pick, upstream_id_len)| Op::Forward { pick, upstream_id_len }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(pick, state)| Op::Final { pick, state }),
        1 => any::<usize>().prop_map(|pick| Op::Snapshot { pick }),
        1 => (any::<u64>(), any::<bool>())
            .prop_map(|(counter, is_final)| Op::Stray { counter, is_final }),
    ]
}

/// A segment of any history, in commits of any sizes, at any alignment the writer may meet.
fn segment() -> impl Strategy<Value = Laid> {
    (
        vec(op(), 1..80),
        vec(1usize..12, 1..20),
        prop_oneof![Just(64u32), Just(128), Just(512)],
        any::<u32>(),
    )
        .prop_map(|(ops, sizes, align, salt)| {
            lay_out(
                header(SEQ, align, salt),
                &commits_of(records_of(&ops, 1000, 0), &sizes),
            )
        })
        .prop_filter("at least one record", |s| !s.placed.is_empty())
}

impl std::fmt::Debug for Laid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Laid")
            .field("header", &self.header)
            .field("commits", &self.commits)
            .field(
                "records",
                &self.placed.iter().map(|p| &p.record).collect::<Vec<_>>(),
            )
            .finish()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_log_untouched_replays_to_the_model(seg in segment()) {
        let scan = record::scan(&Bytes::from(seg.bytes.clone()), &seg.header);
        prop_assert_eq!(&scan.records, &expected_records(&seg.placed));
        prop_assert!(scan.damage.is_empty());
        prop_assert_eq!(
            replayed(SEQ, &scan.records),
            Model::of(SEQ, seg.placed.iter().map(|p| &p.record))
        );
    }

    #[test]
    fn any_log_torn_anywhere_replays_the_records_that_survived(
        seg in segment(),
        cut in any::<Index>(),
        seed in any::<u64>(),
    ) {
        let from = seg.header.data_start();
        let n = from + cut.index(seg.bytes.len() - from + 1);
        let states = prefix_states(&seg);
        let mut rng = Rng(seed | 1);
        check_torn(&seg, &states, n, Tail::Zeros, &mut rng);
        check_torn(&seg, &states, n, Tail::Garbage, &mut rng);
    }

    #[test]
    fn any_log_torn_and_flipped_replays_the_survivors_but_the_flipped_one(
        seg in segment(),
        cut in any::<Index>(),
        at in any::<Index>(),
        bit in 0u8..8,
    ) {
        let from = seg.header.data_start();
        let n = from + cut.index(seg.bytes.len() - from + 1);
        let at = from + at.index(seg.bytes.len() - from);
        let mut data = seg.bytes.clone();
        data[n..].fill(0);
        let survived: Vec<&Placed> = seg
            .placed
            .iter()
            .take_while(|p| data[p.at.clone()] == seg.bytes[p.at.clone()])
            .filter(|p| !p.at.contains(&at))
            .collect();
        data[at] ^= 1 << bit;
        let scan = record::scan(&Bytes::from(data), &seg.header);
        prop_assert_eq!(&scan.records, &expected_records(survived.iter().copied()));
        prop_assert_eq!(
            replayed(SEQ, &scan.records),
            Model::of(SEQ, survived.iter().map(|p| &p.record))
        );
        // The flipped octet is in a bad frame, in padding or past the end: reported.
        prop_assert!(
            scan.damage.iter().any(|d| d.offset <= at && at < d.offset + d.len),
            "{:?}",
            scan.damage
        );
    }

    #[test]
    fn any_log_with_a_flipped_bit_loses_at_most_the_record_holding_it(
        seg in segment(),
        at in any::<Index>(),
        bit in 0u8..8,
    ) {
        let from = seg.header.data_start();
        check_flip(&seg, from + at.index(seg.bytes.len() - from), bit);
    }
}
