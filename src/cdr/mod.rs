//! Call detail records: one line per leg of a message, every leg of a message sharing its
//! `billid` (the gateway message id its originator was given), as an operator bills from and
//! looks a failure up by.
//!
//! | file | job |
//! |---|---|
//! | this file | the record, its columns, the `format=` template (pure) |
//! | `writer` | the file: batches appended, reopened on SIGHUP/SIGUSR1, rotated by size (glue) |
//!
//! Legs: `submit` (an ESME's submit, accepted or refused), `mo` (a message from a link),
//! `attempt` (each try at a link or an ESME, with its outcome), `final` (the message's end),
//! `receipt` (a receipt delivered to, or given up for, the originator). Shards build records
//! (cheap: ids, shared byte strings, numbers) and hand them in batches to the control shard,
//! which renders and writes them off the data path.
//!
//! The columns, in the default order (a `format=` of `${name}` placeholders picks and orders
//! them, as Yate's cdrfile does; anything else in it is copied as it is):
//! `time` (UTC, milliseconds), `billid`, `leg`, `module` (smppserver, smppclient), `direction`
//! (incoming, outgoing), `system_id` (the account or the link of this leg), `caller`, `called`,
//! `target` (where the message goes: `smppclient/ID`, `smppserver/ID`), `msgid` (the gateway id
//! of this leg's message: a part of a submit_multi or a receipt has its own), `upstream_id`,
//! `segments`, `data_coding`, `status` (command_status, `0x%08X`), `status_name`, `tp_status`
//! (TS 23.040, `0x%02X`), `message_state`, `upstream_error` (an upstream's command_status that
//! SMPP does not define, as it came), `address` (the peer, or `smppgw_address` when unknown),
//! `latency` (milliseconds: attempt to answer for `attempt`, accepted to end for `final` and
//! `receipt`; empty for `submit` and `mo`, whose answer waits for the log: see the
//! `smppgw_submit_response_seconds` metric), `failures`, `backup` (yes when the backup
//! gateway was used), `outcome` (of an attempt: accepted, delivered, temporary, permanent,
//! timeout, unreachable, no_room; of a submit: accepted, refused).

pub mod writer;

use std::fmt::Write as _;

use bytes::Bytes;

use crate::flow::time::civil_from_days;
use crate::ids::MessageId;
use crate::smpp::{CommandStatus, MessageState};

/// Which leg of a message a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leg {
    Submit,
    Mo,
    Attempt,
    Final,
    Receipt,
}

impl Leg {
    pub const fn name(self) -> &'static str {
        match self {
            Leg::Submit => "submit",
            Leg::Mo => "mo",
            Leg::Attempt => "attempt",
            Leg::Final => "final",
            Leg::Receipt => "receipt",
        }
    }
}

/// One leg. Fields that do not apply are left empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cdr {
    /// Unix milliseconds.
    pub time_ms: u64,
    pub billid: Option<MessageId>,
    pub leg: Option<Leg>,
    /// `smppserver` or `smppclient`.
    pub module: &'static str,
    pub incoming: bool,
    pub system_id: Bytes,
    pub caller: Inline,
    pub called: Inline,
    pub target: Bytes,
    pub msgid: Option<MessageId>,
    pub upstream_id: Inline,
    pub segments: u16,
    pub data_coding: Option<u8>,
    pub status: Option<CommandStatus>,
    pub tp_status: Option<u8>,
    pub message_state: Option<MessageState>,
    pub address: Inline,
    pub latency_ms: Option<u64>,
    pub failures: u16,
    pub backup: bool,
    /// What an attempt came to: accepted (by a link), delivered (to an ESME), temporary,
    /// permanent, timeout, unreachable, no_room; for a submit: accepted or refused.
    pub outcome: &'static str,
    /// A `final` or `receipt` leg: the shard that wrote its final record and the leg's number
    /// there (the CDR checkpoint moves as these reach the disk). Not a column.
    pub mark: Option<(usize, u64)>,
}

/// A short field copied into the record (numbers, ids, addresses): the record crosses to the
/// control shard, and a slice of the PDU's buffer would make that core write its count.
pub type Inline = smallvec::SmallVec<[u8; 24]>;

/// Every column, in the default order.
pub const COLUMNS: &[&str] = &[
    "time",
    "billid",
    "leg",
    "module",
    "direction",
    "system_id",
    "caller",
    "called",
    "target",
    "msgid",
    "upstream_id",
    "segments",
    "data_coding",
    "status",
    "status_name",
    "tp_status",
    "message_state",
    "upstream_error",
    "address",
    "latency",
    "failures",
    "backup",
    "outcome",
];

/// A column, as a template names it (resolved once, when the template is parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Time,
    Billid,
    Leg,
    Module,
    Direction,
    SystemId,
    Caller,
    Called,
    Target,
    Msgid,
    UpstreamId,
    Segments,
    DataCoding,
    Status,
    StatusName,
    TpStatus,
    MessageState,
    UpstreamError,
    Address,
    Latency,
    Failures,
    Backup,
    Outcome,
}

impl Col {
    fn of(name: &str) -> Option<Col> {
        Some(match name {
            "time" => Col::Time,
            "billid" => Col::Billid,
            "leg" => Col::Leg,
            "module" => Col::Module,
            "direction" => Col::Direction,
            "system_id" => Col::SystemId,
            "caller" => Col::Caller,
            "called" => Col::Called,
            "target" => Col::Target,
            "msgid" => Col::Msgid,
            "upstream_id" => Col::UpstreamId,
            "segments" => Col::Segments,
            "data_coding" => Col::DataCoding,
            "status" => Col::Status,
            "status_name" => Col::StatusName,
            "tp_status" => Col::TpStatus,
            "message_state" => Col::MessageState,
            "upstream_error" => Col::UpstreamError,
            "address" => Col::Address,
            "latency" => Col::Latency,
            "failures" => Col::Failures,
            "backup" => Col::Backup,
            "outcome" => Col::Outcome,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Column(Col),
}

/// A line's layout: the `format=` of `[cdr]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Default for Template {
    /// Every column, tab-separated.
    fn default() -> Self {
        let mut pieces = Vec::new();
        for (i, name) in COLUMNS.iter().enumerate() {
            if i > 0 {
                pieces.push(Piece::Text("\t".into()));
            }
            if let Some(c) = Col::of(name) {
                pieces.push(Piece::Column(c));
            }
        }
        Template { pieces }
    }
}

impl Template {
    /// Parses a format: `${name}` placeholders among literal text (`\t` in it is a tab).
    /// Errors name the unknown column or the unclosed placeholder.
    pub fn parse(format: &str) -> Result<Template, String> {
        let format = format.replace("\\t", "\t");
        let mut pieces = Vec::new();
        let mut rest = format.as_str();
        while let Some(at) = rest.find("${") {
            if at > 0 {
                pieces.push(Piece::Text(rest[..at].to_string()));
            }
            let after = &rest[at + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!("\"${{{after}\" is not closed with }}"));
            };
            let name = &after[..end];
            let Some(i) = Col::of(name) else {
                return Err(format!(
                    "${{{name}}} is not a CDR column (columns: {})",
                    COLUMNS.join(", ")
                ));
            };
            pieces.push(Piece::Column(i));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        if !pieces.iter().any(|p| matches!(p, Piece::Column(_))) {
            return Err("names no column (${time}, ${billid}, ...)".into());
        }
        Ok(Template { pieces })
    }

    /// Appends the line of `cdr` (with its newline) to `out`. `address` stands in for a peer
    /// address the record does not have.
    pub fn render(&self, cdr: &Cdr, address: &str, out: &mut String) {
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Column(c) => column(cdr, *c, address, out),
            }
        }
        out.push('\n');
    }
}

/// Bytes as text in a line: lossy UTF-8, tabs and line ends as spaces. (Printable ASCII,
/// the usual case, is copied as it is.)
fn push_bytes(b: &[u8], out: &mut String) {
    if b.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        // Printable ASCII is UTF-8.
        out.push_str(std::str::from_utf8(b).unwrap_or_default());
        return;
    }
    for c in String::from_utf8_lossy(b).chars() {
        out.push(if c.is_control() { ' ' } else { c });
    }
}

/// A number in decimal, without the formatting machinery (a line has many).
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// `0x` and `digits` upper-case hex digits of `n`.
fn push_hex(out: &mut String, n: u64, digits: usize) {
    out.push_str("0x");
    for k in (0..digits).rev() {
        out.push(char::from(
            b"0123456789ABCDEF"[((n >> (4 * k)) & 0xF) as usize],
        ));
    }
}

fn push_id(out: &mut String, id: Option<MessageId>) {
    if let Some(id) = id {
        out.push_str(std::str::from_utf8(&id.to_hex()).unwrap_or_default());
    }
}

fn column(c: &Cdr, col: Col, address: &str, out: &mut String) {
    match col {
        Col::Time => push_time(c.time_ms, out),
        Col::Billid => push_id(out, c.billid),
        Col::Leg => out.push_str(c.leg.map_or("", Leg::name)),
        Col::Module => out.push_str(c.module),
        Col::Direction => out.push_str(if c.incoming { "incoming" } else { "outgoing" }),
        Col::SystemId => push_bytes(&c.system_id, out),
        Col::Caller => push_bytes(&c.caller, out),
        Col::Called => push_bytes(&c.called, out),
        Col::Target => push_bytes(&c.target, out),
        Col::Msgid => push_id(out, c.msgid),
        Col::UpstreamId => push_bytes(&c.upstream_id, out),
        Col::Segments if c.segments > 0 => push_u64(out, c.segments as u64),
        Col::DataCoding => c
            .data_coding
            .into_iter()
            .for_each(|d| push_u64(out, d as u64)),
        Col::Status => c
            .status
            .into_iter()
            .for_each(|s| push_hex(out, s.0 as u64, 8)),
        Col::StatusName => c
            .status
            .into_iter()
            .for_each(|s| out.push_str(s.name().unwrap_or("unknown"))),
        Col::TpStatus => c
            .tp_status
            .into_iter()
            .for_each(|t| push_hex(out, t as u64, 2)),
        Col::MessageState => c
            .message_state
            .into_iter()
            .for_each(|s| out.push_str(s.stat())),
        Col::UpstreamError => c
            .status
            .filter(|s| s.name().is_none())
            .into_iter()
            .for_each(|s| push_hex(out, s.0 as u64, 8)),
        Col::Address if c.address.is_empty() => out.push_str(address),
        Col::Address => push_bytes(&c.address, out),
        Col::Latency => c.latency_ms.into_iter().for_each(|l| push_u64(out, l)),
        Col::Failures => push_u64(out, c.failures as u64),
        Col::Backup => out.push_str(if c.backup { "yes" } else { "no" }),
        Col::Outcome => out.push_str(c.outcome),
        Col::Segments => {}
    }
}

thread_local! {
    /// The second the last `time` was written in, and its text up to the seconds.
    static SECOND: std::cell::RefCell<(i64, String)> = const {
        std::cell::RefCell::new((i64::MIN, String::new()))
    };
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (the date and time of day worked out once a second).
pub(crate) fn push_time(ms: u64, out: &mut String) {
    let secs = (ms / 1000) as i64;
    SECOND.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let s = secs.rem_euclid(86_400);
            c.1.clear();
            let _ = write!(
                c.1,
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.",
                s / 3600,
                s / 60 % 60,
                s % 60
            );
            c.0 = secs;
        }
        out.push_str(&c.1);
    });
    let milli = ms % 1000;
    out.push(char::from(b'0' + (milli / 100) as u8));
    out.push(char::from(b'0' + (milli / 10 % 10) as u8));
    out.push(char::from(b'0' + (milli % 10) as u8));
    out.push('Z');
}

/// Where shards hand their records: a bounded queue of batches to the control shard. A
/// shard never waits on it: a batch that finds it full is dropped and counted (the control
/// shard says so in the log).
pub struct Sink {
    tx: std::sync::mpsc::SyncSender<Vec<Cdr>>,
    pub dropped: std::sync::atomic::AtomicU64,
}

impl Sink {
    /// A sink holding at most `batches` batches, and the control shard's end of it.
    pub fn new(batches: usize) -> (Sink, std::sync::mpsc::Receiver<Vec<Cdr>>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(batches);
        (
            Sink {
                tx,
                dropped: std::sync::atomic::AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Hands a batch over, or counts it dropped (and gives it back).
    pub fn hand(&self, batch: Vec<Cdr>) -> Result<(), Vec<Cdr>> {
        use std::sync::mpsc::TrySendError;
        match self.tx.try_send(batch) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => {
                self.dropped
                    .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                Err(b)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cdr {
        Cdr {
            time_ms: 1_764_657_060_123,
            billid: Some(MessageId::new(100, 1, 7)),
            leg: Some(Leg::Attempt),
            module: "smppclient",
            incoming: false,
            system_id: Bytes::from_static(b"up"),
            caller: Inline::from_slice(b"4477"),
            called: Inline::from_slice(b"31\t61"),
            target: Bytes::from_static(b"smppclient/up"),
            msgid: Some(MessageId::new(100, 1, 8)),
            upstream_id: Inline::from_slice(b"ab12"),
            segments: 2,
            data_coding: Some(8),
            status: Some(CommandStatus(0x0000_0458)),
            tp_status: Some(0x61),
            message_state: Some(MessageState::UNDELIVERABLE),
            address: Inline::new(),
            latency_ms: Some(12),
            failures: 3,
            backup: true,
            outcome: "temporary",
            mark: None,
        }
    }

    #[test]
    fn the_default_line_has_every_column_tab_separated() {
        let mut out = String::new();
        Template::default().render(&sample(), "10.0.0.1", &mut out);
        let cols: Vec<&str> = out.trim_end_matches('\n').split('\t').collect();
        assert_eq!(cols.len(), COLUMNS.len(), "{out:?}");
        let get = |name: &str| cols[COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert_eq!(get("time"), "2025-12-02T06:31:00.123Z");
        assert_eq!(get("billid"), MessageId::new(100, 1, 7).to_string());
        assert_eq!(get("leg"), "attempt");
        assert_eq!(get("direction"), "outgoing");
        assert_eq!(
            get("called"),
            "31 61",
            "a tab in a value cannot split the line"
        );
        assert_eq!(get("status"), "0x00000458");
        assert_eq!(get("status_name"), "unknown");
        assert_eq!(
            get("upstream_error"),
            "0x00000458",
            "not an SMPP status: kept as it came"
        );
        assert_eq!(get("tp_status"), "0x61");
        assert_eq!(get("message_state"), "UNDELIV");
        assert_eq!(get("address"), "10.0.0.1", "smppgw_address stands in");
        assert_eq!(
            (get("latency"), get("failures"), get("backup")),
            ("12", "3", "yes")
        );
        assert!(out.ends_with('\n') && out.matches('\n').count() == 1);
    }

    #[test]
    fn a_format_picks_and_orders_columns_with_literal_text_between() {
        let t = Template::parse("${billid};${leg}\\t[${status_name}]").unwrap();
        let mut c = sample();
        c.status = Some(CommandStatus::ROK);
        let mut out = String::new();
        t.render(&c, "", &mut out);
        assert_eq!(
            out,
            format!("{};attempt\t[ESME_ROK]\n", MessageId::new(100, 1, 7))
        );
    }

    #[test]
    fn bad_formats_say_what_is_wrong() {
        let e = Template::parse("${billid}\t${nope}").unwrap_err();
        assert!(e.contains("${nope} is not a CDR column"), "{e}");
        let e = Template::parse("${billid").unwrap_err();
        assert!(e.contains("not closed"), "{e}");
        let e = Template::parse("just text").unwrap_err();
        assert!(e.contains("names no column"), "{e}");
    }

    #[test]
    fn empty_fields_stay_empty() {
        let c = Cdr {
            time_ms: 0,
            leg: Some(Leg::Submit),
            module: "smppserver",
            incoming: true,
            ..Cdr::default()
        };
        let mut out = String::new();
        Template::parse("${time}|${billid}|${status}|${tp_status}|${direction}")
            .unwrap()
            .render(&c, "", &mut out);
        assert_eq!(out, "1970-01-01T00:00:00.000Z||||incoming\n");
    }
}
