//! `[cdr]` of `ysmpp.conf`: where call detail records go and what their lines hold.
//!
//! ```text
//! [cdr]
//! file=cdr/smppgw.cdr        ; relative to the configuration directory; absent: no CDRs
//! format=${time}\t${billid}\t${leg}\t${status}   ; default: every column, tab-separated
//! rotate_size=100M           ; 0 (default): never rotated by size (logrotate + SIGHUP)
//! ```

use super::keys::{Keys, Problems};
use super::value;
use crate::cdr::Template;

/// How CDRs are written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CdrConfig {
    /// The file, as written in the configuration (`None`: no CDRs).
    pub file: Option<String>,
    pub template: Template,
    /// Octets after which the file is renamed and a new one started (0: never).
    pub rotate_size: u64,
}

pub(super) fn parse(k: &mut Keys<'_>, p: &mut Problems, c: &mut CdrConfig) {
    if let Some(f) = k.get(p, "file", |v| Ok(v.trim().to_string())) {
        c.file = (!f.is_empty()).then_some(f);
    }
    if let Some(t) = k.get(p, "format", Template::parse) {
        c.template = t;
    }
    if let Some(n) = k.get(p, "rotate_size", |v| match v.trim() {
        "0" => Ok(0),
        v => value::size(v)
            .map_err(|e| e.to_string())
            .and_then(|n| match n {
                n if n >= 4096 => Ok(n),
                _ => Err(format!("{v:?} must be 0 or at least 4K")),
            }),
    }) {
        c.rotate_size = n;
    }
}
