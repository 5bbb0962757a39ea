//! What a target means to the gateway, the production [`Env`], and the text that
//! `smppgw route` prints.

use std::fmt::Write as _;

use hashbrown::HashMap;

use super::eval::{Decision, ParamChange};
use super::subst::{Env, Params};
use super::table::RouteTable;
use crate::smpp::CommandStatus;

/// A decision's target as the gateway serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// No rule produced a target.
    Unrouted,
    /// An upstream client link, by its section name / system_id.
    SmppClient(&'a str),
    /// A bound receiver of this system_id.
    SmppServer(&'a str),
    /// The HTTP module (`http`) or a URL.
    Http(Option<&'a str>),
    /// `-` or `error`: the rules refuse the message, with the `error` and `reason` they set.
    Reject { error: String, reason: String },
    /// A module the gateway does not serve (`smsc_map`, `sip/...`): no route (the message is
    /// accepted and ends undeliverable, never silently dropped).
    Unsupported(&'a str),
}

impl Target<'_> {
    /// Classifies a decision; `params` are the message's parameters (the decision's changes
    /// are looked at first, for the reject reason).
    pub fn of<'a>(d: &'a Decision, params: &Params) -> Target<'a> {
        if !d.handled {
            return Target::Unrouted;
        }
        let t = d.target.trim();
        if t == "-" || t == "error" {
            let get = |name: &str| -> Option<String> {
                for c in d.changes.iter().rev() {
                    match c {
                        ParamChange::Set(n, v) if n == name => return Some(v.clone()),
                        ParamChange::Clear(n) if n == name => return None,
                        _ => {}
                    }
                }
                params.get(name).map(str::to_string)
            };
            return Target::Reject {
                error: get("error")
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "rejected".into()),
                reason: get("reason").unwrap_or_default(),
            };
        }
        if t == "http" {
            return Target::Http(None);
        }
        if t.starts_with("http://") || t.starts_with("https://") {
            return Target::Http(Some(t));
        }
        match t.split_once('/') {
            Some(("smppclient", id)) if !id.is_empty() => Target::SmppClient(id),
            Some(("smppserver", id)) if !id.is_empty() => Target::SmppServer(id),
            Some((module, _)) => Target::Unsupported(module),
            None => Target::Unsupported(t),
        }
    }

    /// One line saying what the gateway does with the message.
    pub fn describe(&self) -> String {
        match self {
            Target::Unrouted => "no rule produced a target: the message is not routed by this file (the gateway uses [general] default_route, else it has no route: accepted, ended undeliverable with TP-Status 0x45)".into(),
            Target::SmppClient(id) => format!("forward over the upstream link [{id}] (ysmpp.conf)"),
            Target::SmppServer(id) => format!("deliver to a bound receiver of system_id {id}"),
            Target::Http(None) => "the http module: POSTed as JSON to ysmpp.conf [http-target] url".into(),
            Target::Http(Some(url)) => format!("an HTTP request to {url} (JSON POST)"),
            Target::Reject { error, reason } => {
                let status = reject_status(error);
                let name = status.name().unwrap_or("a reserved status");
                let reason = if reason.is_empty() { String::new() } else { format!(" reason={reason}") };
                format!("rejected by the rules: error={error}{reason}; the ESME gets {name} (0x{:08X})", status.0)
            }
            Target::Unsupported(m) => format!("module {m} is not served by this gateway: no route (accepted, ended undeliverable with TP-Status 0x45)"),
        }
    }
}

/// The status an ESME gets for a rule's `-;error=NAME`: an SMPP status by name or number
/// (`ESME_RTHROTTLED`, `RTHROTTLED`, `0x58`, `88`), or one of Yate's error names:
///
/// | error | status |
/// |---|---|
/// | `noroute`, `rejected`, `forbidden`, `unallocated`, `incomplete`, `invalid-number`, anything else | ESME_RINVDSTADR |
/// | `congestion` | ESME_RTHROTTLED (the ESME slows down and retries) |
/// | `busy` | ESME_RMSGQFUL (retried later) |
/// | `noconn`, `offline`, `service-unavailable`, `timeout`, `unavailable` | ESME_RSYSERR (retried later) |
/// | `failure` | ESME_RSUBMITFAIL |
///
/// A status of 0 (ESME_ROK) would tell the ESME the message was taken: it becomes
/// ESME_RINVDSTADR.
pub fn reject_status(error: &str) -> CommandStatus {
    let e = error.trim().to_ascii_lowercase();
    let named = match e.as_str() {
        "congestion" => Some(CommandStatus::RTHROTTLED),
        "busy" => Some(CommandStatus::RMSGQFUL),
        "noconn" | "offline" | "service-unavailable" | "timeout" | "unavailable" => {
            Some(CommandStatus::RSYSERR)
        }
        "failure" => Some(CommandStatus::RSUBMITFAIL),
        "noroute" | "rejected" | "forbidden" | "unallocated" | "incomplete" | "invalid-number" => {
            Some(CommandStatus::RINVDSTADR)
        }
        _ => None,
    };
    match named.or_else(|| CommandStatus::from_name(error)) {
        Some(s) if !s.is_ok() => s,
        _ => CommandStatus::RINVDSTADR,
    }
}

/// Global variables of a table (`[$init]`, `$name`) and a small random source, one per shard.
pub struct Vars {
    vars: HashMap<String, String>,
    state: u64,
}

impl Vars {
    /// Variables from the table's `[$init]`; `seed` feeds `$(random)`.
    pub fn new(table: &RouteTable, seed: u64) -> Vars {
        Vars {
            vars: table.init_vars.iter().cloned().collect(),
            state: seed | 1,
        }
    }
}

impl Env for Vars {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn set_var(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_string(), value.to_string());
    }
    fn random_digit(&mut self) -> u8 {
        // xorshift64*: plenty for choosing among routes.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u8 % 10
    }
    fn impure(&mut self) {}
}

fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// The explain report: the message, every rule that matched with its file:line and what it
/// did, the parameters set, the target and what the gateway does with it.
pub fn explain(table: &RouteTable, params: &Params, env: &mut dyn Env) -> String {
    let d = table.route(params, env, true);
    let mut after = params.clone();
    d.apply(&mut after);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "route {}  ({}, version {})",
        quote(params.get("called").unwrap_or("")),
        table.file,
        table.version
    );
    let msg: Vec<String> = params
        .list
        .iter()
        .map(|(n, v)| format!("{n}={}", quote(v)))
        .collect();
    let _ = writeln!(out, "  message   {}", msg.join(" "));
    let _ = writeln!(out, "  context   [{}]", d.context);
    if d.trail.is_empty() {
        let _ = writeln!(out, "  matched   no rule");
    } else {
        let _ = writeln!(out, "  matched");
        let width = d
            .trail
            .iter()
            .map(|s| s.key.chars().count() + s.value.chars().count() + 1)
            .max()
            .unwrap_or(0)
            .min(60);
        for s in &d.trail {
            let rule = format!("{}={}", s.key, s.value);
            let _ = writeln!(
                out,
                "    {}:{:<4} [{}] {rule:<width$}  {}",
                table.file, s.line, s.context, s.what
            );
        }
    }
    if !d.changes.is_empty() {
        let sets: Vec<String> = d
            .changes
            .iter()
            .map(|c| match c {
                ParamChange::Set(n, v) => format!("{n}={}", quote(v)),
                ParamChange::Clear(n) => format!("{n} (cleared)"),
            })
            .collect();
        let _ = writeln!(out, "  sets      {}", sets.join(" "));
    }
    let target = Target::of(&d, &after);
    if d.handled {
        let _ = writeln!(out, "  target    {}", d.target);
    } else {
        let _ = writeln!(out, "  target    none");
    }
    let _ = writeln!(out, "  action    {}", target.describe());
    if !d.cacheable {
        let _ = writeln!(
            out,
            "  note      this decision used $(random) or global variables; shards do not cache it"
        );
    }
    out
}

/// The explain report as JSON (what `POST /config/routes/explain` answers): the same facts
/// as [`explain`], with `text` holding that report.
pub fn explain_json(table: &RouteTable, params: &Params, env: &mut dyn Env) -> serde_json::Value {
    use serde_json::{json, Value};
    let text = explain(table, params, env);
    let d = table.route(params, env, true);
    let mut after = params.clone();
    d.apply(&mut after);
    let target = Target::of(&d, &after);
    let changes: Vec<Value> = d
        .changes
        .iter()
        .map(|c| match c {
            ParamChange::Set(n, v) => json!({"set": n, "value": v}),
            ParamChange::Clear(n) => json!({"clear": n}),
        })
        .collect();
    let trail: Vec<Value> = d
        .trail
        .iter()
        .map(|s| {
            json!({
                "line": format!("{}:{}", table.file, s.line),
                "context": s.context,
                "rule": format!("{}={}", s.key, s.value),
                "what": s.what,
            })
        })
        .collect();
    json!({
        "file": table.file,
        "version": table.version,
        "context": d.context,
        "matched": trail,
        "sets": changes,
        "target": if d.handled { Value::String(d.target.clone()) } else { Value::Null },
        "action": target.describe(),
        "cacheable": d.cacheable,
        "text": text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(text: &str, called: &str) -> (Decision, Params) {
        let t = RouteTable::load("r", text, 1).unwrap();
        let mut p = Params::default();
        p.set("called", called);
        let d = t.route(&p, &mut Vars::new(&t, 7), false);
        d.apply(&mut p);
        (d, p)
    }

    #[test]
    fn targets_are_classified() {
        let text = "[default]\n^1=smppclient/up\n^2=smppserver/esme\n^3=http\n^4=https://x/y\n^5=-;error=noroute;reason=barred\n^6=smsc_map\n^7=sip/x\n^8=smppclient/\n";
        let cases: [(&str, Target); 9] = [
            ("1", Target::SmppClient("up")),
            ("2", Target::SmppServer("esme")),
            ("3", Target::Http(None)),
            ("4", Target::Http(Some("https://x/y"))),
            (
                "5",
                Target::Reject {
                    error: "noroute".into(),
                    reason: "barred".into(),
                },
            ),
            ("6", Target::Unsupported("smsc_map")),
            ("7", Target::Unsupported("sip")),
            ("8", Target::Unsupported("smppclient")),
            ("9", Target::Unrouted),
        ];
        for (called, want) in cases {
            let (d, p) = decide(text, called);
            assert_eq!(Target::of(&d, &p), want, "{called}");
        }
    }

    #[test]
    fn reject_errors_become_smpp_statuses() {
        for (error, want) in [
            ("noroute", CommandStatus::RINVDSTADR),
            ("Forbidden", CommandStatus::RINVDSTADR),
            ("congestion", CommandStatus::RTHROTTLED),
            ("busy", CommandStatus::RMSGQFUL),
            ("offline", CommandStatus::RSYSERR),
            ("failure", CommandStatus::RSUBMITFAIL),
            ("ESME_RX_R_APPN", CommandStatus::RX_R_APPN),
            ("rthrottled", CommandStatus::RTHROTTLED),
            ("0x45", CommandStatus::RSUBMITFAIL),
            ("0", CommandStatus::RINVDSTADR),
            ("ESME_ROK", CommandStatus::RINVDSTADR),
            ("whatever", CommandStatus::RINVDSTADR),
            ("", CommandStatus::RINVDSTADR),
        ] {
            assert_eq!(reject_status(error), want, "{error}");
        }
    }

    #[test]
    fn random_digits_are_spread() {
        let t = RouteTable::load("r", "[default]\n", 1).unwrap();
        let mut v = Vars::new(&t, 42);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[v.random_digit() as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}
