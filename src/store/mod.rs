//! The message log: every message the gateway acknowledged stays on disk until it is final.
//!
//! | file | job |
//! |---|---|
//! | `record` | the record format and segment framing (pure: encode, decode, scan past damage) |
//! | `replay` | records folded into the messages still live (pure) |
//! | `log` | a shard's segments written with group commit through glommio's DMA files (glue) |
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
}

/// The spool as found at start.
#[derive(Debug, Default)]
pub struct Spool {
    pub shards: Vec<ShardSpool>,
    /// The latest numbering second of any id found: new ids start after it.
    pub max_epoch_secs: u32,
    /// Lines for the log: what was found, what was damaged.
    pub report: Vec<String>,
}

/// Reads and replays every segment under `spool` for a run of `shards` shards. Creates the
/// directories when missing. Errors only when the spool cannot be read or created at all.
pub fn load(spool: &Path, shards: usize) -> Result<Spool, String> {
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
    for (chain, dir) in chains {
        let mut segs: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(|e| format!("spool {}: cannot read: {e}", dir.display()))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let seq = name.to_str()?.strip_suffix(".log")?.parse::<u64>().ok()?;
                Some((seq, e.path()))
            })
            .collect();
        segs.sort();
        let owner = chain % shards;
        let mut replay = Replay::default();
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
            for (_, r) in scan.records {
                replay.apply(*seq, r);
            }
        }
        out.max_epoch_secs = out.max_epoch_secs.max(replay.max_epoch_secs);
        live_total += replay.live.len();
        let sh = &mut out.shards[owner];
        sh.live.extend(replay.live.into_values());
        for (seq, path) in segs {
            if path.exists() {
                sh.old_segments.push(OldSegment { chain, seq, path });
            }
            if chain == owner {
                sh.first_seq = sh.first_seq.max(seq);
            }
        }
    }
    for sh in &mut out.shards {
        sh.first_seq += 1;
        sh.live.sort_by_key(|l| l.message.id);
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
