//! `regfile.conf`: one `[SYSTEM_ID]` section per ESME account, as YateSMSC's regfile module
//! keeps them: the password, the limits the gateway adds (binds, window, rate, addresses), and
//! how the ESME speaks (what data_coding 0 means, receipts for long messages).
//!
//! An account's window defaults to `[general] window` of ysmpp.conf, so this file is read
//! after that one.

use core::net::IpAddr; // a value type: no IO

use super::ini::{Ini, Section};
use super::keys::{coding, positive, rate, Keys, Problems, DEFAULT_CODING};
use super::value::{self, IpNet};
use super::ysmpp::General;
use crate::text::Charset;

pub(super) const FILE: &str = "regfile.conf";

/// One `[SYSTEM_ID]` of regfile.conf.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub system_id: String,
    pub password: String,
    /// Sessions bound at once at most (0: no limit).
    pub max_binds: u32,
    /// Requests from the ESME unanswered at once at most.
    pub window: usize,
    /// Messages per second (token bucket; 0: no limit).
    pub rate: f64,
    /// Where binds may come from (empty: anywhere).
    pub allowed_ips: Vec<IpNet>,
    /// What the ESME means by data_coding 0 (`coding`, as a client link's; default gsm7).
    pub coding: Charset,
    /// Receipts for a long message: one per part, or one for the whole message.
    pub receipts: ReceiptPolicy,
    pub line: usize,
}

/// `receipts` of an account: what an ESME that submits a long message in parts gets back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptPolicy {
    /// `per-part`: one receipt for each submit_sm, as the parts were sent.
    PerPart,
    /// `message`: one receipt for the whole message, once every part has its final state.
    Message,
}

impl ReceiptPolicy {
    /// The configuration word.
    pub const fn name(self) -> &'static str {
        match self {
            ReceiptPolicy::PerPart => "per-part",
            ReceiptPolicy::Message => "message",
        }
    }
}

impl Account {
    /// The keys that differ from `other` (where the section stands aside).
    pub fn changed_keys(&self, other: &Account) -> Vec<&'static str> {
        changed_fields!(self, other; password, max_binds, window, rate, allowed_ips, coding, receipts)
    }

    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|n| n.contains(ip))
    }
}

pub(super) fn parse(regfile: &Ini, p: &mut Problems, general: &General) -> Vec<Account> {
    let mut accounts: Vec<Account> = Vec::new();
    for s in &regfile.sections {
        if s.name.is_empty() {
            p.warn_entries(FILE, s, "outside any [system_id], ignored");
            continue;
        }
        let mut k = Keys::new(FILE, s);
        if let Some(a) = parse_account(&mut k, p, s, general) {
            if accounts.iter().any(|o| o.system_id == a.system_id) {
                p.error(
                    FILE,
                    s.line,
                    "",
                    format!("account [{}] is defined twice", a.system_id),
                );
            } else {
                accounts.push(a);
            }
        }
        k.finish(p);
    }
    accounts
}

fn parse_account<'a>(
    k: &mut Keys<'a>,
    p: &mut Problems,
    s: &'a Section,
    g: &General,
) -> Option<Account> {
    let id = s.name.as_str();
    if id.len() > 15 {
        p.warn(
            FILE,
            s.line,
            "",
            format!("system_id [{id}] is longer than 15 characters: ESMEs that keep to SMPP's C16 cannot send it"),
        );
    }
    let password = k.get(p, "password", |v| {
        if v.len() <= 8 {
            Ok(v.to_string())
        } else {
            Err("is longer than 8 characters (SMPP C9): no ESME could send it".to_string())
        }
    });
    if s.get("password").is_none() {
        p.error(
            FILE,
            s.line,
            "password",
            format!("account [{id}] needs password=..."),
        );
    }
    let max_binds = k
        .get(p, "max_binds", |v| {
            value::number::<u32>(v, "a number of binds")
        })
        .unwrap_or(0);
    let window = k
        .get(p, "window", positive::<usize>("a window size"))
        .unwrap_or(g.window);
    let rate = k
        .get(p, "rate", rate("a rate in messages per second"))
        .unwrap_or(0.0);
    let allowed_ips = k
        .get(p, "allowed_ips", |v| {
            value::list(v).iter().map(|n| IpNet::parse(n)).collect()
        })
        .unwrap_or_default();
    let coding = k.get(p, "coding", coding).unwrap_or(DEFAULT_CODING);
    let receipts = k
        .get(p, "receipts", |v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "per-part" => Ok(ReceiptPolicy::PerPart),
                "message" => Ok(ReceiptPolicy::Message),
                _ => Err(format!("{v:?} is not per-part or message")),
            }
        })
        .unwrap_or(ReceiptPolicy::PerPart);
    Some(Account {
        system_id: id.to_string(),
        password: password?,
        max_binds,
        window,
        rate,
        allowed_ips,
        coding,
        receipts,
        line: s.line,
    })
}
