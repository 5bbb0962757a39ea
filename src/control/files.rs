//! The configuration directory as the loader reads it: every file from disk, or some of them
//! replaced by texts that are not written yet (a configuration API write is validated on the
//! files as they would be, before anything is written), and atomic writes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::route::RouteTable;

/// The files of the configuration that the loader reads.
pub const FILES: [&str; 5] = [
    "ysmpp.conf",
    "regfile.conf",
    "openssl.conf",
    "yatesmsc.conf",
    "regexroute.conf",
];

/// A configuration directory, with `overlay` texts read in place of its files of that name.
#[derive(Clone, Copy)]
pub struct ConfigDir<'a> {
    pub dir: &'a Path,
    pub overlay: &'a [(&'a str, String)],
}

impl<'a> ConfigDir<'a> {
    /// The directory as it is on disk.
    pub fn on_disk(dir: &'a Path) -> ConfigDir<'a> {
        ConfigDir { dir, overlay: &[] }
    }

    /// A file's text: the overlay's, else the file's; `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<String>, String> {
        if let Some((_, text)) = self.overlay.iter().find(|(n, _)| *n == name) {
            return Ok(Some(text.clone()));
        }
        let p = self.dir.join(name);
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    }
}

/// Reads and validates the configuration files in `dir` (ysmpp.conf, regfile.conf,
/// openssl.conf, yatesmsc.conf; those missing count as empty, ysmpp.conf must be there).
/// On errors, every one of them, each naming file and line.
pub fn read_config(dir: &Path) -> Result<Config, String> {
    read_config_in(ConfigDir::on_disk(dir))
}

/// As [`read_config`], with the overlay's texts in place of their files.
pub fn read_config_in(files: ConfigDir<'_>) -> Result<Config, String> {
    let dir = files.dir;
    if !dir.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let (ysmpp, regfile, openssl, yatesmsc) = (
        files.read("ysmpp.conf")?,
        files.read("regfile.conf")?,
        files.read("openssl.conf")?,
        files.read("yatesmsc.conf")?,
    );
    Config::parse(&crate::config::ConfigFiles {
        ysmpp: ysmpp.as_deref(),
        regfile: regfile.as_deref(),
        openssl: openssl.as_deref(),
        yatesmsc: yatesmsc.as_deref(),
    })
    .map_err(|errs| {
        let mut s = format!(
            "{} configuration error(s) in {}:\n",
            errs.len(),
            dir.display()
        );
        for e in errs {
            s.push_str(&format!("  {e}\n"));
        }
        s.trim_end().to_string()
    })
}

/// Reads and compiles `DIR/regexroute.conf`. `Ok(None)` when the file does not exist; on
/// errors, every one of them, each naming file and line.
pub fn load_routes(dir: &Path, version: u64) -> Result<Option<RouteTable>, String> {
    load_routes_in(ConfigDir::on_disk(dir), version)
}

/// As [`load_routes`], with the overlay's text in place of the file.
pub fn load_routes_in(files: ConfigDir<'_>, version: u64) -> Result<Option<RouteTable>, String> {
    let Some(text) = files.read("regexroute.conf")? else {
        return Ok(None);
    };
    RouteTable::load("regexroute.conf", &text, version)
        .map(Some)
        .map_err(|errs| {
            let mut s = format!(
                "{} error(s) in {}:\n",
                errs.len(),
                files.dir.join("regexroute.conf").display()
            );
            for e in errs {
                s.push_str(&format!("  {e}\n"));
            }
            s.trim_end().to_string()
        })
}

/// Writes `text` as `dir/name` so that a crash leaves either the old file or the new one:
/// a temporary file beside it, written and fsync'd, renamed over it, and the directory
/// fsync'd. A symbolic link is followed (the file it names is replaced, the link stays), and
/// the file keeps the old one's permissions and, where the process may, its owner (a new
/// one gets 0600: it may hold passwords).
pub fn write_atomically(dir: &Path, name: &str, text: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
    let path = std::fs::canonicalize(dir.join(name)).unwrap_or_else(|_| dir.join(name));
    let (Some(parent), Some(file)) = (path.parent(), path.file_name()) else {
        return Err(std::io::Error::other("not a file name"));
    };
    let parent = parent.to_path_buf();
    let tmp: PathBuf = parent.join(format!(
        ".{}.{}.tmp",
        file.to_string_lossy(),
        std::process::id()
    ));
    let old = std::fs::metadata(&path).ok();
    let mode = old
        .as_ref()
        .map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some(m) = &old {
            // Root keeps the operator's owner on the file; anyone else cannot, and need not.
            let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
        }
        f.write_all(text)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The most a certificate or CA file may hold.
pub const MAX_PEM: u64 = 1 << 20;

/// Reads a certificate or CA file: a regular file of at most [`MAX_PEM`] octets (a path to
/// `/dev/zero` or a FIFO would otherwise fill memory or hang the reload).
pub fn read_pem(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_PEM {
        return Err(std::io::Error::other(format!(
            "{} octets, more than a certificate file holds ({MAX_PEM} at most)",
            meta.len()
        )));
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_PEM + 1).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlay_text_is_read_in_place_of_the_file_and_a_write_replaces_it() {
        let dir = std::env::temp_dir().join(format!("smppgw-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("regfile.conf"), "[a]\npassword=x\n").unwrap();
        let overlay = [("regfile.conf", "[b]\npassword=y\n".to_string())];
        let files = ConfigDir {
            dir: &dir,
            overlay: &overlay,
        };
        assert_eq!(
            files.read("regfile.conf").unwrap().as_deref(),
            Some("[b]\npassword=y\n")
        );
        assert_eq!(files.read("yatesmsc.conf").unwrap(), None);
        write_atomically(&dir, "regfile.conf", b"[c]\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("regfile.conf")).unwrap(),
            "[c]\n"
        );
        // Through a symbolic link, the file it names is replaced and the link stays.
        std::fs::write(dir.join("real.conf"), "[old]\n").unwrap();
        let _ = std::fs::remove_file(dir.join("linked.conf"));
        std::os::unix::fs::symlink("real.conf", dir.join("linked.conf")).unwrap();
        write_atomically(&dir, "linked.conf", b"[new]\n").unwrap();
        assert!(std::fs::symlink_metadata(dir.join("linked.conf"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(dir.join("real.conf")).unwrap(),
            "[new]\n"
        );
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "no temporary file is left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
