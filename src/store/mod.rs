//! The message log: every message the gateway acknowledged stays on disk until it is final.
//!
//! | file | job |
//! |---|---|
//! | `record` | the record format and segment framing (pure: encode, decode, scan past damage) |
//! | `replay` | records folded into the messages still live (pure) |
//! | `log` | a shard's segments written with group commit through glommio's DMA files (glue) |
//! | `read` | message bodies read back from segments (glue) |
//! | this file | the spool directory at start: find, read and replay every shard's segments |
//!
//! Layout: `spool_dir/shard-N/0000000000000001.log`, one directory per shard and one file per
//! segment, numbered in write order. At start every segment is read (a blocking read is fine
//! before the shards run) and replayed; a torn or corrupt stretch is skipped and reported in
//! octets; each run then writes new segments. Segments a previous run wrote are *adopted*:
//! those of shard directory `j` by shard `j mod shards`, so a change of the shard count loses
//! nothing. A segment is deleted once none of its messages is live; a segment kept only by a
//! few long-lived messages (waiting for a receipt, or for an ESME to bind) is compacted: their
//! state is written again at the end of the log, then the segment goes.

pub mod log;
pub mod read;
pub mod record;
pub mod replay;

use std::path::{Path, PathBuf};

use bytes::Bytes;

use record::{SegmentHeader, SEGMENT_HEADER_LEN};
use replay::{Live, Replay};

/// A segment's file name.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:016}.log")
}

/// The key a shard's flow knows a segment by: its chain (the `shard-N` directory it is in) and
/// its sequence number in that chain. Sequence numbers repeat across chains (a shard adopts
/// the chains of a run with more shards), keys do not.
pub fn segment_key(chain: usize, seq: u64) -> u64 {
    (chain as u64) << 48 | seq
}

/// The chain and sequence number of a segment key.
pub fn segment_of(key: u64) -> (usize, u64) {
    ((key >> 48) as usize, key & ((1 << 48) - 1))
}

/// A shard's directory in the spool.
pub fn shard_dir(spool: &Path, shard: usize) -> PathBuf {
    spool.join(format!("shard-{shard}"))
}

/// A segment a previous run wrote, now owned by a shard of this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OldSegment {
    /// The directory it is in (`shard-N`): segments of one chain are deleted oldest first.
    pub chain: usize,
    pub seq: u64,
    pub path: PathBuf,
}

/// What one shard of this run starts with.
#[derive(Debug, Default)]
pub struct ShardSpool {
    pub live: Vec<Live>,
    pub old_segments: Vec<OldSegment>,
    /// The first sequence number this shard writes in its own directory.
    pub first_seq: u64,
    /// Messages whose final record lies past the CDR checkpoint (their `final` legs are
    /// written again), in log order per chain.
    pub ended: Vec<replay::Ended>,
}

/// The CDR checkpoint: per chain (`shard-N`), the place (segment sequence number, file
/// offset) up to which every final record's CDR is in the CDR file.
pub type CdrCheckpoint = std::collections::HashMap<usize, (u64, u64)>;

/// The spool as found at start.
#[derive(Debug, Default)]
pub struct Spool {
    pub shards: Vec<ShardSpool>,
    /// The latest numbering second of any id found: new ids start after it.
    pub max_epoch_secs: u32,
    /// Lines for the log: what was found, what was damaged.
    pub report: Vec<String>,
    /// The place of the last record of each chain (a checkpoint that has every final).
    pub ends: CdrCheckpoint,
}

/// Reads and replays every segment under `spool` for a run of `shards` shards. Creates the
/// directories when missing. Errors only when the spool cannot be read or created at all.
///
/// Each shard keeps the bodies of at most `resident` of its messages (the oldest); the others
/// come back without their PDU (empty), to be read from the log when their turn comes
/// ([`read_message`]). A kept body is copied out of its segment, so no segment stays in
/// memory once loading is done.
///
/// `cdr`: the CDR checkpoint, when CDRs are written and one was kept; the messages whose
/// final record lies past it come back in `ended` (a chain it does not name: all of them).
pub fn load(
    spool: &Path,
    shards: usize,
    resident: usize,
    cdr: Option<&CdrCheckpoint>,
) -> Result<Spool, String> {
    let shards = shards.max(1);
    std::fs::create_dir_all(spool)
        .map_err(|e| format!("spool_dir {}: cannot create: {e}", spool.display()))?;
    let mut out = Spool {
        shards: (0..shards).map(|_| ShardSpool::default()).collect(),
        ..Spool::default()
    };
    let mut chains: Vec<(usize, PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(spool)
        .map_err(|e| format!("spool_dir {}: cannot read: {e}", spool.display()))?;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("shard-"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if e.path().is_dir() {
            chains.push((n, e.path()));
        }
    }
    chains.sort();
    for k in 0..shards {
        let dir = shard_dir(spool, k);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("spool {}: cannot create: {e}", dir.display()))?;
    }
    let (mut segments_read, mut octets, mut live_total) = (0usize, 0u64, 0usize);
    let mut spilled = 0usize;
    for (chain, dir) in chains {
        let mut segs: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(|e| format!("spool {}: cannot read: {e}", dir.display()))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                if name.to_str().is_some_and(|n| n.ends_with(".log.new")) {
                    // Zeroed ahead by a run that ended before using it: nothing in it.
                    let _ = std::fs::remove_file(e.path());
                    return None;
                }
                let seq = name.to_str()?.strip_suffix(".log")?.parse::<u64>().ok()?;
                Some((seq, e.path()))
            })
            .collect();
        segs.sort();
        let owner = chain % shards;
        let mut replay = Replay {
            cdr_after: cdr.map(|c| {
                c.get(&chain)
                    .map_or((0, 0), |&(seq, off)| (segment_key(chain, seq), off))
            }),
            ..Replay::default()
        };
        for (seq, path) in &segs {
            let data = match std::fs::read(path) {
                Ok(d) => Bytes::from(d),
                Err(e) => {
                    out.report.push(format!(
                        "{}: cannot read ({e}); its messages are not replayed",
                        path.display()
                    ));
                    continue;
                }
            };
            octets += data.len() as u64;
            segments_read += 1;
            let header = SegmentHeader::decode(&data)
                .or_else(|| SegmentHeader::decode(data.get(SEGMENT_HEADER_LEN..).unwrap_or(&[])));
            let Some(header) = header else {
                if data.iter().all(|&b| b == 0) {
                    // Created, never written (a crash right after creating it).
                    out.report
                        .push(format!("{}: empty segment, removed", path.display()));
                    let _ = std::fs::remove_file(path);
                } else {
                    out.report.push(format!(
                        "{}: damaged segment header; {} octets cannot be read and are kept aside as {}.damaged",
                        path.display(),
                        data.len(),
                        path.display()
                    ));
                    let _ = std::fs::rename(path, path.with_extension("log.damaged"));
                }
                continue;
            };
            let scan = record::scan(&data, &header);
            for d in &scan.damage {
                out.report.push(format!(
                    "{}: {} octets at offset {} {}",
                    path.display(),
                    d.len,
                    d.offset,
                    if d.tail {
                        "cut off (a torn or corrupt tail)"
                    } else {
                        "skipped (corrupt; reading went on after them)"
                    }
                ));
            }
            let key = segment_key(chain, *seq);
            for (off, r) in scan.records {
                let len = record::frame_len(&data, off).unwrap_or(0) as u32;
                let at = record::Loc {
                    seg: key,
                    off: off as u64,
                    len,
                };
                replay.apply_at(at, r);
            }
        }
        out.max_epoch_secs = out.max_epoch_secs.max(replay.max_epoch_secs);
        live_total += replay.live.len();
        if let Some((key, off)) = replay.end {
            out.ends.insert(chain, (segment_of(key).1, off));
        }
        if !replay.ended.is_empty() {
            out.report.push(format!(
                "shard-{chain}: {} messages ended after the CDR file's checkpoint; their final CDRs are written again",
                replay.ended.len()
            ));
        }
        if replay.ended_dropped > 0 {
            out.report.push(format!(
                "shard-{chain}: {} more final CDRs past the checkpoint are not written again (at most {} per chain)",
                replay.ended_dropped,
                replay::MAX_ENDED
            ));
        }
        let sh = &mut out.shards[owner];
        sh.ended.append(&mut replay.ended);
        // Bodies are copied out of the segments (which are then freed), up to `resident` per
        // shard, oldest first; the rest stay on disk.
        let mut live: Vec<Live> = replay.live.into_values().collect();
        live.sort_by_key(|l| l.message.id);
        for mut l in live {
            let keep = sh.live.len() < resident || !l.snapshot.on_disk();
            l.message.pdu = if keep {
                Bytes::copy_from_slice(&l.message.pdu)
            } else {
                spilled += 1;
                Bytes::new()
            };
            sh.live.push(l);
        }
        for (seq, path) in segs {
            if path.exists() {
                sh.old_segments.push(OldSegment { chain, seq, path });
            }
            if chain == owner {
                sh.first_seq = sh.first_seq.max(seq);
            }
        }
    }
    for (k, sh) in out.shards.iter_mut().enumerate() {
        // Never below a place the CDR checkpoint names: a chain whose segments were all
        // deleted starts after it, not at 1 (whose finals would pass for checkpointed).
        if let Some(&(seq, _)) = cdr.and_then(|c| c.get(&k)) {
            sh.first_seq = sh.first_seq.max(seq);
        }
        sh.first_seq += 1;
        sh.live.sort_by_key(|l| l.message.id);
    }
    if spilled > 0 {
        out.report.push(format!(
            "{spilled} messages beyond memory_messages stay on disk until their turn comes"
        ));
    }
    out.report.insert(
        0,
        format!(
            "spool {}: {segments_read} segments, {octets} octets read, {live_total} messages not final",
            spool.display()
        ),
    );
    Ok(out)
}

/// Reads the PDU of the message whose snapshot lies at `at` in the segment file `path`
/// (blocking: for the start, before the shards serve anyone).
pub fn read_message(path: &Path, at: record::Loc) -> Result<Bytes, String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut head = vec![0u8; 2 * SEGMENT_HEADER_LEN];
    f.read_exact_at(&mut head, 0)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut frame = vec![0u8; at.len as usize];
    f.read_exact_at(&mut frame, at.off)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    message_pdu(&head, Bytes::from(frame)).ok_or_else(|| {
        format!(
            "{}: no good message record at offset {}",
            path.display(),
            at.off
        )
    })
}

/// The PDU of a message record read back: `head` is the start of its segment (either copy of
/// the header gives the salt), `frame` the record's frame.
pub fn message_pdu(head: &[u8], frame: Bytes) -> Option<Bytes> {
    message_record(head, frame).map(|m| m.pdu)
}

/// The message record read back (see [`message_pdu`]).
pub fn message_record(head: &[u8], frame: Bytes) -> Option<record::StoredMessage> {
    let header = SegmentHeader::decode(head)
        .or_else(|| SegmentHeader::decode(head.get(SEGMENT_HEADER_LEN..).unwrap_or(&[])))?;
    match record::read_frame(&frame, header.salt)? {
        record::Record::Message(m) => Some(m),
        _ => None,
    }
}
