//! Message bodies read back from segments, for messages that wait with their body only in the
//! log (see `flow`'s memory bound). Glue: glommio's buffered files, so a read that misses the
//! page cache waits in io_uring, not in the shard's thread.
//!
//! Each segment read from is opened once and kept open until the shard deletes it; its header
//! (the salt every frame's checksum is seeded with) is read at opening. A frame read back is
//! checked like any frame at replay: a damaged one is an error, never a wrong message.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::BufferedFile;
use hashbrown::HashMap;

use super::record::{StoredMessage, SEGMENT_HEADER_LEN};

struct Segment {
    file: BufferedFile,
    /// The start of the segment: both copies of its header.
    head: Vec<u8>,
}

/// A shard's open segments for reading.
#[derive(Default)]
pub struct Reader {
    files: RefCell<HashMap<PathBuf, Rc<Segment>>>,
}

impl Reader {
    /// The message record of `len` octets at file offset `off` of `path`.
    pub async fn read_message(
        &self,
        path: &Path,
        off: u64,
        len: u32,
    ) -> Result<StoredMessage, String> {
        let seg = self.open(path).await?;
        let frame = seg
            .file
            .read_at(off, len as usize)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if frame.len() != len as usize {
            return Err(format!(
                "{}: {} octets at offset {off}, {len} expected",
                path.display(),
                frame.len()
            ));
        }
        super::message_record(&seg.head, Bytes::copy_from_slice(&frame)).ok_or_else(|| {
            format!(
                "{}: no good message record at offset {off} ({len} octets)",
                path.display()
            )
        })
    }

    async fn open(&self, path: &Path) -> Result<Rc<Segment>, String> {
        if let Some(s) = self.files.borrow().get(path) {
            return Ok(s.clone());
        }
        let file = BufferedFile::open(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let head = file
            .read_at(0, 2 * SEGMENT_HEADER_LEN)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?
            .to_vec();
        let seg = Rc::new(Segment { file, head });
        // Another read may have opened it meanwhile: either copy serves.
        self.files
            .borrow_mut()
            .entry(path.to_path_buf())
            .or_insert(seg.clone());
        Ok(seg)
    }

    /// Closes `path` (it is being deleted).
    pub fn forget(&self, path: &Path) {
        self.files.borrow_mut().remove(path);
    }
}
