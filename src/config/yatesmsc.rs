//! `yatesmsc.conf`: `[general]` of YateSMSC's own configuration, for what the gateway does with
//! a message after it has accepted it: the backup gateway it fails over to
//! (`backup_smpp_gw`, `smppgw_trusted`, `smppgw_address`, as the seed writes them), how often
//! and how far apart it retries, and how long a message is kept trying.
//!
//! The file is optional: without it every key has its default and there is no backup. The
//! backup must name an enabled client link of ysmpp.conf or an account of regfile.conf, so
//! this file is read after those two.

use core::fmt;
use std::time::Duration;

use super::ini::Ini;
use super::keys::{backoff, gateway, nonzero_duration, port, Keys, Problems};
use super::regfile::Account;
use super::value;
use super::ysmpp::{enabled_client, ClientLink};

pub(super) const FILE: &str = "yatesmsc.conf";

/// `backup_smpp_gw`: the gateway a message goes to when its routed target is unreachable (link
/// down, not bound, connect or bind failure, timeouts) or keeps answering with temporary
/// errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backup {
    /// `smppclient/ID` (or a bare `ID`): a client link of ysmpp.conf, by section name.
    Client(String),
    /// `smppserver/ID`: an account of regfile.conf, by system_id; the message goes to its
    /// receivers as deliver_sm.
    Server(String),
}

impl fmt::Display for Backup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backup::Client(id) => write!(f, "smppclient/{id}"),
            Backup::Server(id) => write!(f, "smppserver/{id}"),
        }
    }
}

/// `[general]` of yatesmsc.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Yatesmsc {
    /// `backup_smpp_gw`; `None`: no failover.
    pub backup: Option<Backup>,
    /// `smppgw_trusted`: the backup gateway's permanent errors are final (receipt and CDR);
    /// otherwise they are retried like temporary ones.
    pub smppgw_trusted: bool,
    /// `smppgw_address`: `HOST:PORT` written in CDRs when the backup gateway's peer address
    /// cannot be resolved.
    pub smppgw_address: Option<String>,
    /// `retries`: how many times a message is retried after temporary failures when its route
    /// sets no `retries` parameter (0-1000).
    pub retries: u16,
    /// `retry_interval` MIN: the first retry waits this long, each next one twice as long as
    /// the one before ...
    pub retry_interval_min: Duration,
    /// ... up to `retry_interval` MAX.
    pub retry_interval_max: Duration,
    /// `validity`: how long a message whose submit_sm gives no validity_period is kept trying
    /// (at most `max_validity`).
    pub validity: Duration,
    /// `max_validity`: a longer validity_period from the ESME is cut to this.
    pub max_validity: Duration,
}

impl Default for Yatesmsc {
    fn default() -> Self {
        Yatesmsc {
            backup: None,
            smppgw_trusted: false,
            smppgw_address: None,
            retries: 5,
            retry_interval_min: Duration::from_secs(1),
            retry_interval_max: Duration::from_secs(5 * 60),
            validity: Duration::from_secs(48 * 3600),
            max_validity: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Parses yatesmsc.conf (`None`: not found, all defaults); the backup is checked against the
/// client links and accounts already read.
pub(super) fn parse(
    text: Option<&str>,
    p: &mut Problems,
    clients: &[ClientLink],
    accounts: &[Account],
) -> Yatesmsc {
    let mut y = Yatesmsc::default();
    let Some(text) = text else {
        return y;
    };
    for s in &Ini::parse(text).sections {
        match s.name.as_str() {
            "general" => {
                let mut k = Keys::new(FILE, s);
                parse_general(&mut k, p, &mut y, clients, accounts);
                k.finish(p);
            }
            "" => p.warn_entries(FILE, s, "outside any [section], ignored"),
            other => p.warn(
                FILE,
                s.line,
                "",
                format!("section [{other}] is not used, ignored"),
            ),
        }
    }
    y
}

fn parse_general<'a>(
    k: &mut Keys<'a>,
    p: &mut Problems,
    y: &mut Yatesmsc,
    clients: &[ClientLink],
    accounts: &[Account],
) {
    if let Some(b) = k.get(p, "backup_smpp_gw", |v| backup(v, clients, accounts)) {
        y.backup = b;
    }
    if let Some(t) = k.get(p, "smppgw_trusted", value::boolean) {
        y.smppgw_trusted = t;
    }
    if let Some(a) = k.get(p, "smppgw_address", |v| {
        let t = v.trim();
        match t.rsplit_once(':') {
            Some((host, n)) if valid_id(host) => match port(n) {
                Ok(_) => Ok(t.to_string()),
                Err(e) => Err(format!("{v:?}: {e}")),
            },
            _ => Err(format!(
                "{v:?} is not HOST:PORT (for example foo.example.com:9000)"
            )),
        }
    }) {
        y.smppgw_address = Some(a);
    }
    if let Some(n) = k.get(p, "retries", |v| match v.trim().parse::<u16>() {
        Ok(n) if n <= 1000 => Ok(n),
        _ => Err(format!("{v:?} must be a number of retries (0-1000)")),
    }) {
        y.retries = n;
    }
    if let Some((min, max)) = k.get(p, "retry_interval", backoff) {
        (y.retry_interval_min, y.retry_interval_max) = (min, max);
    }
    let max_validity = k.get(p, "max_validity", nonzero_duration);
    // A max_validity in error has its own message; validity is not compared with it then.
    let max_in_error = max_validity.is_none() && k.is_set("max_validity");
    let max = max_validity.unwrap_or(y.max_validity);
    y.max_validity = max;
    // The default validity is cut like an ESME's validity_period; one written is checked.
    y.validity = y.validity.min(max);
    if let Some(d) = k.get(p, "validity", |v| match nonzero_duration(v)? {
        d if d > max && !max_in_error => Err(format!(
            "{v:?} is longer than max_validity ({})",
            value::duration_text(max)
        )),
        d => Ok(d),
    }) {
        y.validity = d;
    }
}

/// `backup_smpp_gw` as the seed writes it, naming an enabled client link or an account
/// (empty: no backup).
fn backup(v: &str, clients: &[ClientLink], accounts: &[Account]) -> Result<Option<Backup>, String> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    match gateway(v) {
        (None | Some("smppclient"), id) if valid_id(id) => {
            if enabled_client(clients, id) {
                Ok(Some(Backup::Client(id.to_string())))
            } else {
                Err(format!(
                    "{id:?} is not an enabled client in ysmpp.conf [smpp-client] clients="
                ))
            }
        }
        (Some("smppserver"), id) if valid_id(id) => {
            if accounts.iter().any(|a| a.system_id == id) {
                Ok(Some(Backup::Server(id.to_string())))
            } else {
                Err(format!("{id:?} is not an account in regfile.conf"))
            }
        }
        _ => Err(format!(
            "{v:?} is not smppclient/ID or smppserver/ID (a bare ID is smppclient/ID)"
        )),
    }
}

/// An ID or a host: not empty, no blanks, no `/`.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && !id.contains(|c: char| c.is_whitespace() || c == '/')
}
