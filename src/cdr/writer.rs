//! The CDR file, as the control shard writes it: lines appended in batches (one `write` per
//! batch), reopened when logrotate has moved it (SIGHUP or SIGUSR1), rotated by size when
//! `rotate_size` is set (the full file is renamed with the time it was rotated, and a new one
//! opened). Glue: std files, on the control shard's thread, off the data path.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An open CDR file.
pub struct CdrFile {
    path: PathBuf,
    file: File,
    size: u64,
    rotate_size: u64,
}

impl CdrFile {
    /// Opens (creating, appending) `path`; `rotate_size` 0: never rotated here.
    pub fn open(path: &Path, rotate_size: u64) -> Result<CdrFile, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(CdrFile {
            path: path.to_path_buf(),
            file,
            size,
            rotate_size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends rendered lines. On an error the lines are not written (the caller counts them).
    pub fn write(&mut self, lines: &[u8]) -> Result<(), String> {
        if lines.is_empty() {
            return Ok(());
        }
        if self.rotate_size > 0
            && self.size > 0
            && self.size + lines.len() as u64 > self.rotate_size
        {
            if let Err(e) = self.rotate() {
                // The lines go on to the file as it is (a failed rotation loses nothing); the
                // next rotation is tried after another `rotate_size`.
                log::warn!("CDR file: rotation failed: {e}; writing on");
                self.size = 0;
            }
        }
        self.file
            .write_all(lines)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.size += lines.len() as u64;
        Ok(())
    }

    /// Opens the path again: after logrotate renamed the file, new lines go to a new one.
    pub fn reopen(&mut self) -> Result<(), String> {
        // What went to the old file is on disk before it is let go (the checkpoint counts
        // on it): a failed sync keeps writing to it.
        self.sync()?;
        *self = CdrFile::open(&self.path, self.rotate_size)?;
        Ok(())
    }

    /// Renames the file to `NAME.YYYYmmddTHHMMSS.mmm` and starts a new one.
    fn rotate(&mut self) -> Result<(), String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut stamp = Vec::new();
        crate::flow::time::push_iso_millis(now, &mut stamp);
        let stamp: String = stamp
            .iter()
            .filter(|c| !matches!(c, b'-' | b':' | b'Z'))
            .map(|&c| char::from(c))
            .collect();
        // A name no earlier rotation took (two in one millisecond get a counter).
        let mut to = self.path.clone().into_os_string();
        to.push(format!(".{stamp}"));
        let mut n = 1;
        while Path::new(&to).exists() {
            to = self.path.clone().into_os_string();
            to.push(format!(".{stamp}-{n}"));
            n += 1;
        }
        // What the full file holds is on disk before it goes (the checkpoint counts on it).
        self.sync()?;
        std::fs::rename(&self.path, &to).map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.reopen()
    }

    /// Makes what was written durable (fdatasync): the CDR checkpoint moves only after it.
    pub fn sync(&mut self) -> Result<(), String> {
        self.file
            .sync_data()
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}
