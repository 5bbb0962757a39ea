//! What every configuration file's parser shares: [`Problems`] collects the errors and warnings
//! of all files in one pass, [`Keys`] reads one section's keys and warns about those nobody
//! asked for, and the small parsers that more than one key uses (ports, timers, backoffs, rates, codings).
//!
//! Each file's module (`ysmpp`, `regfile`, `openssl`) reads its sections through these, so
//! that every problem has the same `file:line: key: message` shape and an unknown key warns
//! the same way in every file.

use std::collections::HashSet;
use std::time::Duration;

use super::ini::{Entry, Section};
use super::model::{ConfigError, Warning};
use super::value;
use crate::text::Charset;

/// Every error and warning found so far, over all files.
#[derive(Default)]
pub(super) struct Problems {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<Warning>,
}

impl Problems {
    pub fn error(&mut self, file: &str, line: usize, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: file.into(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn warn(&mut self, file: &str, line: usize, key: &str, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            file: file.into(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    /// Warns about each entry of a section that is not used at all (the entries before the
    /// first header, an unknown section), with `why` as the message.
    pub fn warn_entries(&mut self, file: &str, section: &Section, why: &str) {
        for e in &section.entries {
            self.warn(file, e.line, &e.key, why);
        }
    }
}

/// Reads one section's keys, recording errors and unknown keys.
pub(super) struct Keys<'a> {
    file: &'static str,
    section: &'a Section,
    used: HashSet<&'a str>,
}

impl<'a> Keys<'a> {
    pub fn new(file: &'static str, section: &'a Section) -> Keys<'a> {
        Keys {
            file,
            section,
            used: HashSet::new(),
        }
    }

    fn entry(&mut self, key: &'a str) -> Option<&'a Entry> {
        self.used.insert(key);
        self.section.get(key)
    }

    /// The value of `key` parsed by `parse`; on a bad value records the error and returns
    /// `None`.
    pub fn get<T>(
        &mut self,
        p: &mut Problems,
        key: &'a str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let e = self.entry(key)?;
        let Some(v) = e.value.as_deref() else {
            p.error(self.file, e.line, key, "has no value (write key=value)");
            return None;
        };
        match parse(v) {
            Ok(t) => Some(t),
            Err(msg) => {
                p.error(self.file, e.line, key, msg);
                None
            }
        }
    }

    /// Whether the section has `key` at all (a bad value included).
    pub fn is_set(&self, key: &str) -> bool {
        self.section.get(key).is_some()
    }

    /// Whether the section has `key` (valid or not).
    pub fn has(&self, key: &str) -> bool {
        self.section.get(key).is_some()
    }

    pub fn line_of(&self, key: &str) -> usize {
        self.section.get(key).map_or(self.section.line, |e| e.line)
    }

    /// Warns about every key of the section that no `get` asked for.
    pub fn finish(self, p: &mut Problems) {
        for e in &self.section.entries {
            if !self.used.contains(e.key.as_str()) {
                p.warn(
                    self.file,
                    e.line,
                    &e.key,
                    format!("unknown key in [{}], ignored", self.section.name),
                );
            }
        }
    }
}

pub(super) fn positive<T: std::str::FromStr + PartialOrd + Default>(
    what: &'static str,
) -> impl Fn(&str) -> Result<T, String> {
    move |v| {
        let n: T = value::number(v, what)?;
        if n > T::default() {
            Ok(n)
        } else {
            Err(format!("{v:?} must be greater than 0"))
        }
    }
}

/// A count of `what`, `min` or more.
pub(super) fn at_least(min: usize, what: &'static str) -> impl Fn(&str) -> Result<usize, String> {
    move |v| match value::number::<usize>(v, what)? {
        n if n >= min => Ok(n),
        _ => Err(format!("{v:?} must be at least {min}")),
    }
}

/// A rate of `what` per second for a token bucket; 0 means no limit.
pub(super) fn rate(what: &'static str) -> impl Fn(&str) -> Result<f64, String> {
    move |v| match value::number::<f64>(v, what)? {
        r if r >= 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{v:?} must be 0 (no limit) or a positive rate")),
    }
}

pub(super) fn optional_timer(v: &str) -> Result<Option<Duration>, String> {
    value::duration(v).map(|d| (!d.is_zero()).then_some(d))
}

pub(super) fn nonzero_duration(v: &str) -> Result<Duration, String> {
    match value::duration(v)? {
        d if d.is_zero() => Err(format!("{v:?} must be more than 0")),
        d => Ok(d),
    }
}

/// What data_coding 0 means where `coding=` does not say (a client link, an ESME's account):
/// GSM 7-bit, one septet per octet.
pub(super) const DEFAULT_CODING: Charset = Charset::Gsm7;

/// `coding=`: what a link or an ESME means by data_coding 0.
pub(super) fn coding(v: &str) -> Result<Charset, String> {
    Charset::from_name(v)
        .ok_or_else(|| format!("{v:?} is not gsm7, gsm7-packed, ascii, latin1, ucs2 or utf8"))
}

/// A gateway as YateSMSC's routes and `backup_smpp_gw` write it, `MODULE/ID` or a bare `ID`:
/// the module, if any, and the ID (which may hold further `/`).
pub(super) fn gateway(v: &str) -> (Option<&str>, &str) {
    match v.trim().split_once('/') {
        Some((module, id)) => (Some(module), id),
        None => (None, v.trim()),
    }
}

/// A TCP port, 1-65535.
pub(super) fn port(v: &str) -> Result<u16, String> {
    match v.trim().parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{v:?} is not a port number (1-65535)")),
    }
}

/// `MIN,MAX` for a backoff that doubles from MIN up to MAX (a single value: both); MIN more
/// than 0, MAX at least MIN.
pub(super) fn backoff(v: &str) -> Result<(Duration, Duration), String> {
    let parts = value::list(v);
    let (a, b) = match parts.as_slice() {
        [a] => (value::duration(a)?, value::duration(a)?),
        [a, b] => (value::duration(a)?, value::duration(b)?),
        _ => return Err(format!("{v:?}: write MIN,MAX (for example 1s,60s)")),
    };
    if a.is_zero() || b < a {
        return Err(format!(
            "{v:?}: MIN must be more than 0 and MAX at least MIN"
        ));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_are_split_into_module_and_id_as_routes_write_them() {
        assert_eq!(gateway("up1"), (None, "up1"));
        assert_eq!(gateway(" smppclient/up1 "), (Some("smppclient"), "up1"));
        assert_eq!(gateway("smppserver/esme"), (Some("smppserver"), "esme"));
        assert_eq!(gateway("smppclient/a/b"), (Some("smppclient"), "a/b"));
        assert_eq!(gateway(""), (None, ""));
    }

    #[test]
    fn a_backoff_is_min_and_max_or_one_value_for_both() {
        let s = Duration::from_secs;
        assert_eq!(backoff("1s,5m"), Ok((s(1), s(300))));
        assert_eq!(backoff("2s"), Ok((s(2), s(2))));
        assert!(backoff("0,1s")
            .unwrap_err()
            .contains("MIN must be more than 0"));
        assert!(backoff("1s,2s,3s").unwrap_err().contains("write MIN,MAX"));
    }
}
