//! The control shard's CDR writer: takes the shards' batches off the queue, renders them
//! with the `[cdr]` format and appends them to the file (one write per round), opens the file
//! again when asked (SIGHUP, SIGUSR1), and says in the log when records were dropped (the
//! queue was full: the writer fell behind) or could not be written.
//!
//! After a round that wrote `final` or `receipt` legs it makes the file durable (fdatasync) and
//! tells each shard how far; the shards answer with the places in their message logs that
//! are now covered, which the writer keeps in `SPOOL/cdr.checkpoint` (written to a temporary
//! file, synced, renamed). A start replays the finals after it into the CDR file again.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use log::{info, warn};

use std::path::{Path, PathBuf};

use crate::cdr::writer::CdrFile;
use crate::cdr::Cdr;
use crate::shard::Shared;
use crate::store::CdrCheckpoint;

const CHECKPOINT_HEAD: &str = "smppgw cdr checkpoint 1";

/// Where the CDR checkpoint is kept.
pub fn checkpoint_path(spool: &Path) -> PathBuf {
    spool.join("cdr.checkpoint")
}

/// The checkpoint, or `None` when there is none (CDRs were not written before). A file that
/// does not read as one is an error (the caller replays every final the log holds).
pub fn read_checkpoint(path: &Path) -> Result<Option<CdrCheckpoint>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut lines = text.lines();
    if lines.next() != Some(CHECKPOINT_HEAD) {
        return Err(format!("{}: not a CDR checkpoint", path.display()));
    }
    let mut cp = CdrCheckpoint::new();
    for (i, line) in lines.enumerate() {
        let mut f = line.split_whitespace();
        let parsed = (|| {
            let chain = f.next()?.strip_prefix("shard-")?.parse().ok()?;
            let seq = f.next()?.parse().ok()?;
            let off = f.next()?.parse().ok()?;
            Some((chain, seq, off))
        })();
        let Some((chain, seq, off)) = parsed else {
            return Err(format!(
                "{}:{}: not CHAIN SEQ OFFSET",
                path.display(),
                i + 2
            ));
        };
        cp.insert(chain, (seq, off));
    }
    Ok(Some(cp))
}

/// Writes the checkpoint durably (a temporary file, synced, renamed over the old one).
pub fn write_checkpoint(path: &Path, cp: &CdrCheckpoint) -> Result<(), String> {
    use std::io::Write;
    let mut chains: Vec<_> = cp.iter().collect();
    chains.sort();
    let mut text = format!("{CHECKPOINT_HEAD}\n");
    for (chain, (seq, off)) in chains {
        text.push_str(&format!("shard-{chain} {seq} {off}\n"));
    }
    let tmp = path.with_extension("checkpoint.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The rename itself is durable once the directory is.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// The checkpoint as the writer keeps it.
pub struct Checkpoint {
    pub path: PathBuf,
    /// As last written.
    pub written: CdrCheckpoint,
}

/// Records rendered per write at most (a round with more writes several times).
const LINES_PER_WRITE: usize = 4096;

/// How often the CDR file is made durable (when it holds new end legs).
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Octets of lines a failing CDR file keeps for the next try, at most.
const KEEP_UNWRITTEN: usize = 16 << 20;

pub struct CdrWriter {
    file: CdrFile,
    rx: Receiver<Vec<Cdr>>,
    buf: Vec<u8>,
    /// Lines in `buf`, and per shard the number of the last end leg among them: merged into
    /// `marks` once `buf` is written.
    buf_lines: u64,
    buf_marks: Vec<u64>,
    written: u64,
    /// Records the shards dropped (queue full) and that could not be written, as last told.
    told_dropped: u64,
    failed: u64,
    last_complaint: Option<Instant>,
    checkpoint: Option<Checkpoint>,
    last_checkpoint: Option<Instant>,
    /// When the file was last made durable.
    last_sync: Option<Instant>,
    /// The last round (the shards are done): the checkpoint is written whatever its age.
    finishing: bool,
    /// Per shard: the number of its last end leg written this round.
    marks: Vec<u64>,
}

impl CdrWriter {
    pub fn new(file: CdrFile, rx: Receiver<Vec<Cdr>>, checkpoint: Option<Checkpoint>) -> CdrWriter {
        CdrWriter {
            checkpoint,
            last_checkpoint: None,
            last_sync: None,
            finishing: false,
            marks: Vec::new(),
            buf_lines: 0,
            buf_marks: Vec::new(),
            file,
            rx,
            buf: Vec::with_capacity(1 << 20),
            written: 0,
            told_dropped: 0,
            failed: 0,
            last_complaint: None,
        }
    }

    /// Writes what the shards handed over since the last round.
    pub fn run_once(&mut self, shared: &Shared) {
        if shared.cdr_reopen.swap(false, Ordering::Relaxed) {
            // What is written goes to the old file first, made durable.
            self.flush(shared);
            match self.file.reopen() {
                Ok(()) => info!("CDR file {} opened again", self.file.path().display()),
                Err(e) => warn!("CDR file: cannot open again: {e}; writing on to the old one"),
            }
        }
        // The format and `smppgw_address` (written where a record has no peer address) as
        // last loaded.
        let live = shared.live.load();
        let template = &live.config.cdr.template;
        let address = live
            .config
            .yatesmsc
            .smppgw_address
            .as_deref()
            .unwrap_or_default();
        // Lines a failed write kept are tried first (see `flush`).
        self.flush(shared);
        while let Ok(batch) = self.rx.try_recv() {
            for c in &batch {
                template.render(c, address, &mut self.buf);
                if let Some((shard, n)) = c.mark {
                    if self.buf_marks.len() <= shard {
                        self.buf_marks.resize(shard + 1, 0);
                    }
                    self.buf_marks[shard] = self.buf_marks[shard].max(n);
                }
            }
            self.buf_lines += batch.len() as u64;
            if let Some(sink) = &shared.cdr {
                sink.give_back(batch);
            }
            if self.buf_lines >= LINES_PER_WRITE as u64 {
                self.flush(shared);
                if !self.buf.is_empty() {
                    // The file refuses writes: what waits stays in the queue meanwhile.
                    break;
                }
            }
        }
        self.flush(shared);
        self.make_durable(shared);
        let dropped = shared
            .cdr
            .as_ref()
            .map_or(0, |s| s.dropped.load(Ordering::Relaxed));
        let due = self
            .last_complaint
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if dropped > self.told_dropped && due {
            warn!(
                "{} CDR records dropped: the CDR writer fell behind ({dropped} in all since start)",
                dropped - self.told_dropped
            );
            self.told_dropped = dropped;
            self.last_complaint = Some(Instant::now());
        }
    }

    /// Once a second (and at the end) when end legs were written: fdatasync, then the shards
    /// learn how far the file holds their ends, and the places they passed back go to the
    /// checkpoint file. Not every 50 ms round: the checkpoint moves once a second anyway, so
    /// a sync per round bought nothing but journal commits on the disk the message log syncs
    /// on. Lines written and not yet synced when the machine fails: the finals among them are
    /// written again by the next start (the checkpoint has not passed them); other legs are
    /// as durable as the page cache.
    fn make_durable(&mut self, shared: &Shared) {
        let due = self.finishing || self.last_sync.is_none_or(|t| t.elapsed() >= SYNC_EVERY);
        if due && self.marks.iter().any(|&n| n > 0) {
            self.last_sync = Some(Instant::now());
            match self.file.sync() {
                Ok(()) => {
                    for (shard, n) in self.marks.iter().enumerate() {
                        if *n > 0 {
                            if let Some(d) = shared.cdr_durable.get(shard) {
                                d.fetch_max(*n, Ordering::Release);
                            }
                        }
                    }
                    self.marks.iter_mut().for_each(|n| *n = 0);
                }
                Err(e) => {
                    // Tried again after the next round; the checkpoint does not move.
                    if self
                        .last_complaint
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                    {
                        warn!("CDR file: fdatasync failed: {e}");
                        self.last_complaint = Some(Instant::now());
                    }
                }
            }
        }
        // The checkpoint file at most once a second (and at the end): one that lags only means
        // more finals written again after a crash, never fewer.
        if !self.finishing
            && self
                .last_checkpoint
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        let Some(cp) = &mut self.checkpoint else {
            return;
        };
        self.last_checkpoint = Some(Instant::now());
        let passed = shared
            .cdr_passed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut next = cp.written.clone();
        for (chain, at) in passed {
            let e = next.entry(chain).or_insert(at);
            *e = (*e).max(at);
        }
        if next != cp.written {
            match write_checkpoint(&cp.path, &next) {
                Ok(()) => cp.written = next,
                Err(e) => warn!("CDR checkpoint: {e}"),
            }
        }
    }

    /// Writes `buf`. A failed write keeps it for the next round (the disk may come back),
    /// up to [`KEEP_UNWRITTEN`] octets; beyond, its lines are lost: counted, said, and the
    /// shards told, so that the checkpoint stops before them (a restart writes them again).
    fn flush(&mut self, shared: &Shared) {
        if self.buf.is_empty() {
            return;
        }
        match self.file.write(&self.buf) {
            Ok(()) => {
                self.written += self.buf_lines;
                for (shard, n) in self.buf_marks.iter().enumerate() {
                    if self.marks.len() <= shard {
                        self.marks.resize(shard + 1, 0);
                    }
                    self.marks[shard] = self.marks[shard].max(*n);
                }
                self.buf_lines = 0;
                self.buf_marks.iter_mut().for_each(|n| *n = 0);
                self.buf.clear();
            }
            Err(e) => {
                let give_up = self.buf.len() > KEEP_UNWRITTEN;
                if give_up {
                    self.failed += self.buf_lines;
                    // The first lost end of each shard: its checkpoint stops there.
                    for (shard, n) in self.buf_marks.iter().enumerate() {
                        if *n > 0 {
                            if let Some(h) = shared.cdr_hole.get(shard) {
                                // After the last end written (synced or not): those
                                // before it are in the file.
                                let done = shared
                                    .cdr_durable
                                    .get(shard)
                                    .map_or(0, |d| d.load(Ordering::Acquire));
                                let first =
                                    self.marks.get(shard).copied().unwrap_or(0).max(done) + 1;
                                h.fetch_min(first.min(*n), Ordering::AcqRel);
                            }
                        }
                    }
                    self.buf_lines = 0;
                    self.buf_marks.iter_mut().for_each(|n| *n = 0);
                    self.buf.clear();
                }
                if self
                    .last_complaint
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                {
                    if give_up {
                        warn!(
                            "CDR file: write failed: {e}; {} records not written in all (their finals are written again after a restart)",
                            self.failed
                        );
                    } else {
                        warn!(
                            "CDR file: write failed: {e}; {} records kept to try again",
                            self.buf_lines
                        );
                    }
                    self.last_complaint = Some(Instant::now());
                }
            }
        }
    }

    /// The last round, once the shards are done.
    pub fn finish(&mut self, shared: &Shared) {
        self.finishing = true;
        self.run_once(shared);
    }

    /// Records written, and records lost (dropped by the shards or not written).
    pub fn totals(&self, shared: &Shared) -> (u64, u64) {
        let dropped = shared
            .cdr
            .as_ref()
            .map_or(0, |s| s.dropped.load(Ordering::Relaxed));
        (self.written, dropped + self.failed)
    }
}

/// The control executor: when dropped (the shards are done), it is told so, writes what is
/// left and ends.
pub struct ControlJoin {
    pub handle: Option<glommio::ExecutorJoinHandle<()>>,
    pub done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for ControlJoin {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
