//! The control shard's CDR writer: takes the shards' batches off the queue, renders them
//! with the `[cdr]` format and appends them to the file (one write per round), opens the file
//! again when asked (SIGHUP, SIGUSR1), and says in the log when records were dropped (the
//! queue was full: the writer fell behind) or could not be written.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::cdr::writer::CdrFile;
use crate::cdr::Cdr;
use crate::shard::Shared;

/// Records rendered per write at most (a round with more writes several times).
const LINES_PER_WRITE: usize = 4096;

pub struct CdrWriter {
    file: CdrFile,
    rx: Receiver<Vec<Cdr>>,
    buf: String,
    written: u64,
    /// Records the shards dropped (queue full) and that could not be written, as last told.
    told_dropped: u64,
    failed: u64,
    last_complaint: Option<Instant>,
}

impl CdrWriter {
    pub fn new(file: CdrFile, rx: Receiver<Vec<Cdr>>) -> CdrWriter {
        CdrWriter {
            file,
            rx,
            buf: String::with_capacity(1 << 20),
            written: 0,
            told_dropped: 0,
            failed: 0,
            last_complaint: None,
        }
    }

    /// Writes what the shards handed over since the last round.
    pub fn run_once(&mut self, shared: &Shared) {
        if shared.cdr_reopen.swap(false, Ordering::Relaxed) {
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
        let mut lines = 0usize;
        while let Ok(batch) = self.rx.try_recv() {
            for c in &batch {
                template.render(c, address, &mut self.buf);
            }
            lines += batch.len();
            if lines >= LINES_PER_WRITE {
                self.flush(lines);
                lines = 0;
            }
        }
        self.flush(lines);
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

    fn flush(&mut self, lines: usize) {
        if self.buf.is_empty() {
            return;
        }
        match self.file.write(&self.buf) {
            Ok(()) => self.written += lines as u64,
            Err(e) => {
                self.failed += lines as u64;
                if self
                    .last_complaint
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                {
                    warn!(
                        "CDR file: write failed: {e}; {} records not written in all",
                        self.failed
                    );
                    self.last_complaint = Some(Instant::now());
                }
            }
        }
        self.buf.clear();
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
