//! A shard's message log: records appended in memory, written and made durable by one writer
//! task in group commits, through glommio's DMA files (io_uring, O_DIRECT).
//!
//! - [`MessageLog::append`] encodes a record into the pending batch and returns its log
//!   sequence number (LSN); it never waits and never does IO.
//! - The writer task ([`MessageLog::run`]) takes the whole pending batch, writes it from an
//!   aligned offset padded to the next aligned offset (a committed block is never written
//!   again), `fdatasync`s once, and reports the highest LSN now durable to the shard. While one
//!   sync is on its way, new records gather for the next: at 0.3 ms a sync, a busy shard
//!   commits tens of records per sync without waiting on purpose; `sync_window` adds a wait.
//! - A segment is written full of zeros before its first record (`NNNN.log.new`, prepared in
//!   the background while the one before fills, then renamed), so a sync carries no size
//!   change and no extent conversion: a preallocated (unwritten) extent turns written at
//!   every commit that first touches it, and that metadata rides on the `fdatasync` (measured
//!   here: p50 160 us instead of 100 us, and 70 us of CPU instead of 40). Where zeros cannot
//!   be written ahead (a full disk), the segment is preallocated when needed instead. A new
//!   segment starts when the current one is full. Its file name is its sequence number.
//! - A failed write (a full disk, an IO error) keeps the batch and tries again every second;
//!   while it fails, [`MessageLog::refusal`] tells the shard to refuse new messages, and a
//!   line says so once a second. Nothing appended is dropped; it recovers by itself.
//! - Where the filesystem has no O_DIRECT, writes are buffered, with the same `fdatasync`
//!   (glommio does so on tmpfs; other filesystems that refuse O_DIRECT open buffered here).
//! - `sync=none` acknowledges at append time and writes without syncing: fast, and a crash of
//!   the machine (not just the process) loses what the page cache held.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::io::{BufferedFile, DmaFile, OpenOptions};
use log::{info, warn};

use super::record::{self, Loc, Record, SegmentHeader};
use crate::smpp::CommandStatus;

/// How a shard's log is set up.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// This shard's directory (`spool_dir/shard-N`).
    pub dir: PathBuf,
    pub shard: u16,
    /// The sequence number of the first segment this run writes.
    pub first_seq: u64,
    /// false: `sync=none`.
    pub sync: bool,
    pub sync_window: Duration,
    pub segment_size: u64,
    /// Direct IO or buffered writes (`log_io`).
    pub io: crate::config::LogIo,
}

/// A segment file, direct or buffered.
///
/// A direct file also keeps a second, plain descriptor of the same file for its
/// `fdatasync`: glommio puts the IO of a file on a device that takes polled IO on its poll
/// ring, and an executor with a request on that ring spins instead of sleeping; a sync takes
/// a third of a millisecond and more, which the shard should spend serving sessions or
/// asleep. The plain descriptor's sync goes through the main ring (the data written through
/// either descriptor is the file's, and `fdatasync` makes it all durable).
enum SegFile {
    Direct(DmaFile, BufferedFile),
    Buffered(BufferedFile),
}

impl SegFile {
    /// Opens (creating) a segment; direct unless `direct` is false or the filesystem refuses
    /// O_DIRECT. Returns the file, its alignment, and whether its writes bypass the page cache.
    async fn open(path: &Path, direct: bool) -> Result<(SegFile, u64, bool), String> {
        let mut opts = OpenOptions::new();
        // Created new by this run (sequence numbers continue after the last one found at
        // start), or left by an attempt of this run that failed: nothing in it is committed.
        opts.read(true).write(true).create(true).truncate(true);
        if !direct {
            let f = opts
                .buffered_open(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok((SegFile::Buffered(f), 512, false));
        }
        match opts.dma_open(path).await {
            Ok(f) => {
                let align = f.alignment();
                let direct = !crate::net::sys::on_tmpfs(path);
                let syncer = OpenOptions::new()
                    .write(true)
                    .buffered_open(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Ok((SegFile::Direct(f, syncer), align, direct))
            }
            Err(e) if is_einval(&e) => {
                // The filesystem refuses O_DIRECT: the file may exist now; open it buffered.
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .buffered_open(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Ok((SegFile::Buffered(f), 512, false))
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    async fn write_at(&self, data: &[u8], pos: u64, align: u64) -> Result<(), String> {
        let len = data.len().div_ceil(align as usize) * align as usize;
        let written = match self {
            SegFile::Direct(f, _) => {
                let mut buf = f.alloc_dma_buffer(len);
                let b = buf.as_bytes_mut();
                b[..data.len()].copy_from_slice(data);
                b[data.len()..].fill(0);
                f.write_at(buf, pos).await
            }
            SegFile::Buffered(f) => {
                let mut v = Vec::with_capacity(len);
                v.extend_from_slice(data);
                v.resize(len, 0);
                f.write_at(v, pos).await
            }
        }
        .map_err(|e| e.to_string())?;
        if written != len {
            return Err(format!("short write: {written} of {len} octets"));
        }
        Ok(())
    }

    async fn sync(&self) -> Result<(), String> {
        match self {
            SegFile::Direct(_, syncer) => syncer.fdatasync().await,
            SegFile::Buffered(f) => f.fdatasync().await,
        }
        .map_err(|e| e.to_string())
    }

    async fn pre_allocate(&self, size: u64) -> Result<(), String> {
        match self {
            SegFile::Direct(f, _) => f.pre_allocate(size, false).await,
            SegFile::Buffered(f) => f.pre_allocate(size, false).await,
        }
        .map_err(|e| e.to_string())
    }
}

fn is_einval<T>(e: &glommio::GlommioError<T>) -> bool {
    match e {
        glommio::GlommioError::IoError(e)
        | glommio::GlommioError::EnhancedIoError { source: e, .. } => {
            e.raw_os_error() == Some(libc::EINVAL)
        }
        _ => false,
    }
}

/// Records appended to one segment and not yet written.
struct Chunk {
    seq: u64,
    /// Where its first record lies as the log counts the segment (octets appended to it
    /// before): commits pad to the alignment, so a file offset is known only once written.
    start: u64,
    bytes: BytesMut,
}

/// A segment file written full of zeros ahead of its use.
struct Prepared {
    seq: u64,
    path: PathBuf,
    file: SegFile,
    align: u64,
    direct: bool,
}

/// Octets of zeros per write while preparing a segment; each write is synced, then the
/// preparation pauses, so that it never holds the disk long against a commit's sync.
const ZERO_CHUNK: usize = 256 << 10;
const ZERO_PAUSE: Duration = Duration::from_millis(1);

/// The name of a segment being prepared.
fn prepared_name(seq: u64) -> String {
    format!("{}.new", super::segment_name(seq))
}

/// A segment being written.
struct Open {
    file: Rc<SegFile>,
    align: u64,
    /// Where the next commit writes.
    pos: u64,
}

/// What the log did, for the exit summary and the figures.
#[derive(Clone, Debug, Default)]
pub struct LogStats {
    pub commits: u64,
    pub records: u64,
    pub bytes: u64,
    /// fdatasync latency, microseconds.
    pub sync_us: Vec<u32>,
}

impl LogStats {
    /// p50 and p99 of the fdatasync latency, microseconds.
    pub fn sync_percentiles(&self) -> (u32, u32) {
        let mut v = self.sync_us.clone();
        v.sort_unstable();
        let at = |q: f64| v.get(((v.len() as f64 - 1.0) * q) as usize).copied();
        (at(0.5).unwrap_or(0), at(0.99).unwrap_or(0))
    }
}

/// Latency samples kept at most (the oldest are overwritten).
const MAX_SAMPLES: usize = 100_000;
/// A commit's buffer as first allocated (it grows when a commit carries more).
const CHUNK: usize = 64 * 1024;
/// Written buffers kept for reuse (a commit usually fills one), if they grew no larger than
/// `SPARE_MAX` (one that a burst made huge goes back to the allocator).
const SPARE_CHUNKS: usize = 4;
const SPARE_MAX: usize = 16 * CHUNK;

struct State {
    /// Pending chunks, oldest first; the last is the segment appends go to.
    pending: Vec<Chunk>,
    /// The segment appends go to, its salt, and how much is in it (written and pending).
    seq: u64,
    salt: u32,
    fill: u64,
    /// Salts of segments created this run, by sequence number.
    salts: BTreeMap<u64, u32>,
    open: BTreeMap<u64, Open>,
    /// Per segment of this run, where each written chunk went: (start as counted, end as
    /// counted, file offset), in order. Records are read back through it.
    placed: BTreeMap<u64, Vec<(u64, u64, u64)>>,
    next_lsn: u64,
    committed: u64,
    failure: Option<(CommandStatus, String)>,
    stats: LogStats,
    stopping: bool,
    writer_idle: bool,
    /// The next segment, zeroed ahead; whether one is being prepared.
    prepared: Option<Prepared>,
    preparing: bool,
    /// Chunk buffers written and cleared, for the next commits: a commit's buffer is tens of
    /// kilobytes, and allocating and freeing one per commit made glibc's malloc consolidate
    /// its free lists each time (~4% of a shard's cycles on the HTTP submit path).
    spare: Vec<BytesMut>,
}

/// One shard's message log.
pub struct MessageLog {
    cfg: LogConfig,
    st: RefCell<State>,
    wake: LocalSender<()>,
    wake_rx: RefCell<Option<LocalReceiver<()>>>,
    /// Where direct IO is not available (logged once).
    buffered_noted: Cell<bool>,
    rng: Cell<u64>,
    /// Records per commit and fdatasync seconds, when metrics are kept.
    metrics: RefCell<Option<(metrics::Histogram, metrics::Histogram)>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MessageLog {
    pub fn new(cfg: LogConfig) -> Rc<MessageLog> {
        let (wake, rx) = local_channel::new_bounded(1);
        let seed = now_ms() ^ (cfg.shard as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let log = MessageLog {
            st: RefCell::new(State {
                pending: Vec::new(),
                seq: cfg.first_seq,
                salt: 0,
                fill: 0,
                salts: BTreeMap::new(),
                open: BTreeMap::new(),
                placed: BTreeMap::new(),
                next_lsn: 0,
                committed: 0,
                failure: None,
                stats: LogStats::default(),
                stopping: false,
                writer_idle: true,
                prepared: None,
                preparing: false,
                spare: Vec::new(),
            }),
            cfg,
            wake,
            wake_rx: RefCell::new(Some(rx)),
            buffered_noted: Cell::new(false),
            rng: Cell::new(seed | 1),
            metrics: RefCell::new(None),
        };
        {
            let salt = log.draw();
            let mut st = log.st.borrow_mut();
            st.salt = salt;
            let seq = st.seq;
            st.salts.insert(seq, salt);
        }
        Rc::new(log)
    }

    fn draw(&self) -> u32 {
        let mut s = self.rng.get();
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.rng.set(s);
        (s >> 32) as u32
    }

    /// Appends a record; returns its LSN, and where it lies (the segment's sequence number in
    /// `seg`, the offset as the log counts it: see [`MessageLog::file_offset`]).
    pub fn append(&self, rec: &Record) -> (u64, Loc) {
        let mut st = self.st.borrow_mut();
        if st.fill >= self.cfg.segment_size {
            let salt = self.draw();
            st.seq += 1;
            st.salt = salt;
            st.fill = 0;
            let seq = st.seq;
            st.salts.insert(seq, salt);
        }
        let (seq, salt) = (st.seq, st.salt);
        if st.pending.last().is_none_or(|c| c.seq != seq) {
            let start = st.fill;
            let bytes = st
                .spare
                .pop()
                .unwrap_or_else(|| BytesMut::with_capacity(CHUNK));
            st.pending.push(Chunk { seq, start, bytes });
        }
        let Some(chunk) = st.pending.last_mut() else {
            unreachable!("a chunk was just pushed")
        };
        let before = chunk.bytes.len();
        record::encode(rec, salt, &mut chunk.bytes);
        let n = (chunk.bytes.len() - before) as u64;
        let at = Loc {
            seg: seq,
            off: chunk.start + before as u64,
            len: n as u32,
        };
        st.fill += n;
        st.next_lsn += 1;
        let lsn = st.next_lsn;
        if st.writer_idle {
            st.writer_idle = false;
            let _ = self.wake.try_send(());
        }
        (lsn, at)
    }

    /// Where in its file the record appended at `off` (as [`MessageLog::append`] counted it)
    /// of this run's segment `seq` lies: `None` while it is not written yet.
    pub fn file_offset(&self, seq: u64, off: u64) -> Option<u64> {
        let st = self.st.borrow();
        let placed = st.placed.get(&seq)?;
        let i = placed.partition_point(|&(start, _, _)| start <= off);
        let &(start, end, pos) = placed.get(i.checked_sub(1)?)?;
        (off < end).then_some(pos + (off - start))
    }

    /// Whether segment `seq` was written by this run.
    pub fn is_own(&self, seq: u64) -> bool {
        seq >= self.cfg.first_seq
    }

    /// Forgets where the records of segment `seq` went (it is being deleted).
    pub fn forget(&self, seq: u64) {
        self.st.borrow_mut().placed.remove(&seq);
    }

    /// The highest LSN an acknowledgement may rely on: durable with `sync=batch`, appended
    /// with `sync=none`.
    pub fn committed(&self) -> u64 {
        let st = self.st.borrow();
        if self.cfg.sync {
            st.committed
        } else {
            st.next_lsn
        }
    }

    /// The highest LSN written to its segment (and, with `sync=batch`, made durable): what a
    /// segment's deletion waits for, in either mode.
    pub fn written(&self) -> u64 {
        self.st.borrow().committed
    }

    /// The segment appends go to now.
    pub fn active_segment(&self) -> u64 {
        self.st.borrow().seq
    }

    /// Why new messages must be refused now (writes are failing), if they must.
    pub fn refusal(&self) -> Option<CommandStatus> {
        self.st.borrow().failure.as_ref().map(|(s, _)| *s)
    }

    pub fn stats(&self) -> LogStats {
        self.st.borrow().stats.clone()
    }

    /// The writer: runs until [`MessageLog::stop`] and everything appended is written.
    /// `on_commit` hears the highest durable LSN after each commit.
    pub async fn run(self: Rc<Self>, on_commit: impl Fn(u64)) {
        let Some(rx) = self.wake_rx.borrow_mut().take() else {
            return;
        };
        self.prepare(self.cfg.first_seq);
        let mut last_complaint: Option<Instant> = None;
        loop {
            let batch = {
                let mut st = self.st.borrow_mut();
                if st.pending.is_empty() {
                    if st.stopping {
                        break;
                    }
                    st.writer_idle = true;
                    None
                } else {
                    Some(())
                }
            };
            if batch.is_none() {
                if rx.recv().await.is_none() {
                    break;
                }
                continue;
            }
            if !self.cfg.sync_window.is_zero() && self.cfg.sync {
                glommio::timer::sleep(self.cfg.sync_window).await;
            }
            let (chunks, upto) = {
                let mut st = self.st.borrow_mut();
                (std::mem::take(&mut st.pending), st.next_lsn)
            };
            loop {
                match self.write(&chunks).await {
                    Ok(()) => break,
                    Err((status, e)) => {
                        let first = self.st.borrow().failure.is_none();
                        self.st.borrow_mut().failure = Some((status, e.clone()));
                        if first
                            || last_complaint.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                        {
                            warn!(
                                "message log (shard {}): write failed: {e}; new messages are refused ({}) until it succeeds; retrying every second",
                                self.cfg.shard,
                                status.name().unwrap_or("?")
                            );
                            last_complaint = Some(Instant::now());
                        }
                        glommio::timer::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            let recovered = {
                let mut st = self.st.borrow_mut();
                if let Some((records, _)) = &*self.metrics.borrow() {
                    records.record((upto - st.committed) as f64);
                }
                st.stats.records += upto - st.committed;
                st.committed = upto;
                st.failure.take().is_some()
            };
            if recovered {
                info!(
                    "message log (shard {}): writes succeed again; accepting messages",
                    self.cfg.shard
                );
            }
            {
                let mut st = self.st.borrow_mut();
                for mut c in chunks {
                    if st.spare.len() < SPARE_CHUNKS && c.bytes.capacity() <= SPARE_MAX {
                        c.bytes.clear();
                        st.spare.push(c.bytes);
                    }
                }
            }
            on_commit(upto);
        }
        // Close what is open; a segment prepared and never used goes.
        let open: Vec<Open> = std::mem::take(&mut self.st.borrow_mut().open)
            .into_values()
            .collect();
        drop(open);
        let unused = self.st.borrow_mut().prepared.take();
        if let Some(p) = unused {
            drop(p.file);
            let _ = glommio::io::remove(&p.path).await;
        }
    }

    /// Where commits are measured: records per commit, fdatasync seconds.
    pub fn set_metrics(&self, records: metrics::Histogram, sync: metrics::Histogram) {
        *self.metrics.borrow_mut() = Some((records, sync));
    }

    /// Asks the writer to finish what is pending and stop.
    pub fn stop(&self) {
        self.st.borrow_mut().stopping = true;
        let _ = self.wake.try_send(());
    }

    async fn write(self: &Rc<Self>, chunks: &[Chunk]) -> Result<(), (CommandStatus, String)> {
        let mut touched: Vec<Rc<SegFile>> = Vec::new();
        let mut advanced: Vec<(u64, u64)> = Vec::new();
        let mut placed: Vec<(u64, u64, u64, u64)> = Vec::new();
        let mut bytes = 0u64;
        for c in chunks {
            let (file, pos, align) = self.segment(c.seq).await.map_err(classify)?;
            file.write_at(&c.bytes, pos, align)
                .await
                .map_err(classify)?;
            let len = (c.bytes.len() as u64).div_ceil(align) * align;
            advanced.push((c.seq, pos + len));
            placed.push((c.seq, c.start, c.start + c.bytes.len() as u64, pos));
            bytes += c.bytes.len() as u64;
            if !touched.iter().any(|f| Rc::ptr_eq(f, &file)) {
                touched.push(file);
            }
        }
        if self.cfg.sync {
            let t0 = Instant::now();
            for f in &touched {
                f.sync().await.map_err(classify)?;
            }
            let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
            if let Some((_, sync)) = &*self.metrics.borrow() {
                sync.record(us as f64 / 1e6);
            }
            let mut st = self.st.borrow_mut();
            if st.stats.sync_us.len() < MAX_SAMPLES {
                st.stats.sync_us.push(us);
            } else {
                let i = (st.stats.commits as usize) % MAX_SAMPLES;
                st.stats.sync_us[i] = us;
            }
        }
        let mut st = self.st.borrow_mut();
        for (seq, pos) in advanced {
            if let Some(o) = st.open.get_mut(&seq) {
                o.pos = pos;
            }
        }
        for (seq, start, end, pos) in placed {
            st.placed.entry(seq).or_default().push((start, end, pos));
        }
        st.stats.commits += 1;
        st.stats.bytes += bytes;
        // Segments before the newest written one are complete: close them.
        let newest = chunks.last().map_or(0, |c| c.seq);
        st.open.retain(|&s, _| s >= newest);
        Ok(())
    }

    /// The open file of segment `seq`, created (header, preallocation, directory sync) on
    /// first use.
    async fn segment(self: &Rc<Self>, seq: u64) -> Result<(Rc<SegFile>, u64, u64), String> {
        if let Some(o) = self.st.borrow().open.get(&seq) {
            return Ok((o.file.clone(), o.pos, o.align));
        }
        let salt = self.st.borrow().salts.get(&seq).copied().unwrap_or(0);
        let path = self.cfg.dir.join(super::segment_name(seq));
        let want_direct = self.want_direct();
        let ready = {
            let mut st = self.st.borrow_mut();
            match st.prepared.take() {
                Some(p) if p.seq == seq => Some(p),
                Some(p) if p.seq < seq => {
                    glommio::spawn_local(async move {
                        drop(p.file);
                        let _ = glommio::io::remove(&p.path).await;
                    })
                    .detach();
                    None
                }
                other => {
                    st.prepared = other;
                    None
                }
            }
        };
        let ready = match ready {
            Some(p) => match glommio::io::rename(&p.path, &path).await {
                Ok(()) => Some((p.file, p.align, p.direct)),
                Err(e) => {
                    warn!(
                        "message log (shard {}): {}: {e}",
                        self.cfg.shard,
                        p.path.display()
                    );
                    None
                }
            },
            None => None,
        };
        let (file, align, direct) = match ready {
            Some(r) => r,
            None => {
                let (file, align, direct) = SegFile::open(&path, want_direct).await?;
                file.pre_allocate(self.cfg.segment_size).await?;
                (file, align, direct)
            }
        };
        if !direct && !self.buffered_noted.replace(true) {
            let why = match self.cfg.io {
                crate::config::LogIo::Buffered => "log_io=buffered",
                _ if want_direct => "no O_DIRECT there (tmpfs?)",
                _ => "log_io=auto and its device does not complete polled IO (direct IO would keep the shard spinning on every write; log_io=direct forces it)",
            };
            info!(
                "message log (shard {}) in {}: buffered writes, each commit fdatasync'd ({why})",
                self.cfg.shard,
                self.cfg.dir.display()
            );
        }
        let header = SegmentHeader {
            shard: self.cfg.shard,
            seq,
            align: align as u32,
            salt,
            created_ms: now_ms(),
        };
        let mut first = vec![0u8; header.data_start()];
        let h = header.encode();
        first[..h.len()].copy_from_slice(&h);
        // A second copy, in case the first is damaged: without the salt nothing is readable.
        if first.len() >= 2 * h.len() {
            first[h.len()..2 * h.len()].copy_from_slice(&h);
        }
        file.write_at(&first, 0, align).await?;
        file.sync().await?;
        sync_dir(&self.cfg.dir).await?;
        let file = Rc::new(file);
        self.prepare(seq + 1);
        self.st.borrow_mut().open.insert(
            seq,
            Open {
                file: file.clone(),
                align,
                pos: header.data_start() as u64,
            },
        );
        Ok((file, header.data_start() as u64, align))
    }
}

impl MessageLog {
    fn want_direct(&self) -> bool {
        match self.cfg.io {
            crate::config::LogIo::Direct => true,
            crate::config::LogIo::Buffered => false,
            crate::config::LogIo::Auto => {
                crate::net::sys::device_polls_io(&self.cfg.dir) == Some(true)
            }
        }
    }

    /// Writes segment `seq` full of zeros in the background (unless one is prepared or being
    /// prepared): see the module doc. A failure only means the segment is preallocated when
    /// it is needed.
    fn prepare(self: &Rc<Self>, seq: u64) {
        {
            let mut st = self.st.borrow_mut();
            if st.preparing || st.prepared.is_some() || st.stopping {
                return;
            }
            st.preparing = true;
        }
        let log = self.clone();
        glommio::spawn_local(async move {
            let path = log.cfg.dir.join(prepared_name(seq));
            let size = log.cfg.segment_size;
            let made = async {
                let (file, align, direct) = SegFile::open(&path, log.want_direct()).await?;
                let zeros = vec![0u8; ZERO_CHUNK];
                let mut pos = 0u64;
                while pos < size {
                    let n = (size - pos).min(ZERO_CHUNK as u64) as usize;
                    file.write_at(&zeros[..n], pos, align).await?;
                    file.sync().await?;
                    pos += n as u64;
                    glommio::timer::sleep(ZERO_PAUSE).await;
                }
                Ok::<_, String>((file, align, direct))
            }
            .await;
            // Kept, or removed (too late: the segment was preallocated meanwhile, or the log
            // stops; or it failed), and then whether to prepare the next one.
            let (remove, again) = {
                let mut st = log.st.borrow_mut();
                st.preparing = false;
                let stale = seq < st.seq || st.open.contains_key(&seq);
                let next = if st.open.contains_key(&st.seq) {
                    st.seq + 1
                } else {
                    st.seq
                };
                match made {
                    Ok((file, align, direct)) if !st.stopping && !stale => {
                        st.prepared = Some(Prepared {
                            seq,
                            path: path.clone(),
                            file,
                            align,
                            direct,
                        });
                        (false, None)
                    }
                    Ok(_) => (true, (!st.stopping).then_some(next)),
                    Err(e) => {
                        log::debug!(
                            "message log (shard {}): segment {seq} not prepared ahead ({e}); it is preallocated when needed",
                            log.cfg.shard
                        );
                        (true, None)
                    }
                }
            };
            if remove {
                let _ = glommio::io::remove(&path).await;
            }
            if let Some(next) = again {
                log.prepare(next);
            }
        })
        .detach();
    }
}

async fn sync_dir(dir: &Path) -> Result<(), String> {
    let d = glommio::io::Directory::open(dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let r = d
        .sync()
        .await
        .map_err(|e| format!("{}: {e}", dir.display()));
    let _ = d.close().await;
    r
}

/// A write error as the status new messages get: a full disk is a full queue (try later);
/// anything else is a system error.
fn classify(e: String) -> (CommandStatus, String) {
    let full = ["No space left", "Disk quota", "File too large"]
        .iter()
        .any(|s| e.contains(s));
    if full {
        (CommandStatus::RMSGQFUL, e)
    } else {
        (CommandStatus::RSYSERR, e)
    }
}
