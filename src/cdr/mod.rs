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

use bytes::Bytes;

use crate::flow::time::push_iso_millis;
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

/// The columns, once: their names ([`COLUMNS`], in the default order), the [`Col`] a template
/// resolves each to, and the default line's straight code ([`every_column`]).
macro_rules! columns {
    ($first:ident = $first_name:literal, $($col:ident = $name:literal,)*) => {
        /// Every column, in the default order.
        pub const COLUMNS: &[&str] = &[$first_name, $($name),*];

        /// A column, as a template names it (resolved once, when the template is parsed).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Col {
            $first,
            $($col,)*
        }

        /// Every column, in the default order.
        const ALL: &[Col] = &[Col::$first, $(Col::$col),*];

        /// The default line without a step per piece: each column's code in place, in order.
        fn every_column(c: &Cdr, address: &str, out: &mut Vec<u8>) {
            column(c, Col::$first, address, out);
            $(
                out.push(b'\t');
                column(c, Col::$col, address, out);
            )*
            out.push(b'\n');
        }
    };
}

columns! {
    Time = "time",
    Billid = "billid",
    Leg = "leg",
    Module = "module",
    Direction = "direction",
    SystemId = "system_id",
    Caller = "caller",
    Called = "called",
    Target = "target",
    Msgid = "msgid",
    UpstreamId = "upstream_id",
    Segments = "segments",
    DataCoding = "data_coding",
    Status = "status",
    StatusName = "status_name",
    TpStatus = "tp_status",
    MessageState = "message_state",
    UpstreamError = "upstream_error",
    Address = "address",
    Latency = "latency",
    Failures = "failures",
    Backup = "backup",
    Outcome = "outcome",
}

impl Col {
    fn of(name: &str) -> Option<Col> {
        COLUMNS.iter().position(|n| *n == name).map(|i| ALL[i])
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
    /// Every column in the default order, tab-separated: rendered by straight-line code.
    every: bool,
}

impl Default for Template {
    /// Every column, tab-separated.
    fn default() -> Self {
        let mut pieces = Vec::new();
        for (i, &c) in ALL.iter().enumerate() {
            if i > 0 {
                pieces.push(Piece::Text("\t".into()));
            }
            pieces.push(Piece::Column(c));
        }
        Template {
            pieces,
            every: true,
        }
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
        Ok(Template {
            every: pieces == Template::default().pieces,
            pieces,
        })
    }

    /// Appends the line of `cdr` (with its newline) to `out`. `address` stands in for a peer
    /// address the record does not have.
    #[inline(never)] // one call per line; kept whole for profiles
    pub fn render(&self, cdr: &Cdr, address: &str, out: &mut Vec<u8>) {
        // Room for a usual line at once: the pieces then never grow the buffer.
        out.reserve(512);
        if self.every {
            return every_column(cdr, address, out);
        }
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
                Piece::Column(c) => column(cdr, *c, address, out),
            }
        }
        out.push(b'\n');
    }
}

/// Bytes as text in a line: lossy UTF-8, tabs and line ends as spaces. (Printable ASCII,
/// the usual case, is copied as it is.) Lines are built as bytes: every piece written is
/// UTF-8 by construction, so no line is checked again.
fn push_bytes(b: &[u8], out: &mut Vec<u8>) {
    if printable_ascii(b) {
        out.extend_from_slice(b);
        return;
    }
    let mut utf8 = [0u8; 4];
    for c in String::from_utf8_lossy(b).chars() {
        let c = if c.is_control() { ' ' } else { c };
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
}

/// Whether every octet is printable ASCII (0x20..=0x7E), eight at a time.
fn printable_ascii(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A word has an octet below 0x20 when subtracting 0x20 from each borrows, or one of 0x7F
    // or above when adding 1 to each sets (or finds set) its high bit. A borrow or carry
    // crossing into the next octet starts only at an octet that is itself caught.
    let bad = |w: u64| {
        (w.wrapping_sub(ONES * 0x20) & !w & HIGH) | ((w | w.wrapping_add(ONES)) & HIGH) != 0
    };
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        if bad(u64::from_le_bytes([
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
        ])) {
            return false;
        }
    }
    let rest = chunks.remainder();
    let mut tail = [b'A'; 8];
    tail[..rest.len()].copy_from_slice(rest);
    !bad(u64::from_le_bytes(tail))
}

/// A number in decimal, without the formatting machinery (a line has many).
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
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
    out.extend_from_slice(&buf[i..]);
}

/// `0x` and `digits` (at most 16) upper-case hex digits of `n`.
fn push_hex(out: &mut Vec<u8>, n: u64, digits: usize) {
    let mut buf = *b"0x0000000000000000";
    for k in 0..digits {
        buf[2 + k] = b"0123456789ABCDEF"[((n >> (4 * (digits - 1 - k))) & 0xF) as usize];
    }
    out.extend_from_slice(&buf[..2 + digits]);
}

fn push_id(out: &mut Vec<u8>, id: Option<MessageId>) {
    if let Some(id) = id {
        out.extend_from_slice(&id.to_hex());
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

#[inline(always)] // constant-folded where the default line names each column
fn column(c: &Cdr, col: Col, address: &str, out: &mut Vec<u8>) {
    match col {
        Col::Time => push_iso_millis(c.time_ms, out),
        Col::Billid => push_id(out, c.billid),
        Col::Leg => push_str(out, c.leg.map_or("", Leg::name)),
        Col::Module => push_str(out, c.module),
        Col::Direction => push_str(out, if c.incoming { "incoming" } else { "outgoing" }),
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
            .for_each(|s| push_str(out, s.name().unwrap_or("unknown"))),
        Col::TpStatus => c
            .tp_status
            .into_iter()
            .for_each(|t| push_hex(out, t as u64, 2)),
        Col::MessageState => c
            .message_state
            .into_iter()
            .for_each(|s| push_str(out, s.stat())),
        Col::UpstreamError => c
            .status
            .filter(|s| s.name().is_none())
            .into_iter()
            .for_each(|s| push_hex(out, s.0 as u64, 8)),
        Col::Address if c.address.is_empty() => push_str(out, address),
        Col::Address => push_bytes(&c.address, out),
        Col::Latency => c.latency_ms.into_iter().for_each(|l| push_u64(out, l)),
        Col::Failures => push_u64(out, c.failures as u64),
        Col::Backup => push_str(out, if c.backup { "yes" } else { "no" }),
        Col::Outcome => push_str(out, c.outcome),
        Col::Segments => {}
    }
}

/// Where shards hand their records: a bounded queue of batches to the control shard. A
/// shard never waits on it: a batch that finds it full is dropped and counted (the control
/// shard says so in the log).
pub struct Sink {
    tx: std::sync::mpsc::SyncSender<Vec<Cdr>>,
    pub dropped: std::sync::atomic::AtomicU64,
    /// Emptied batches the writer gives back, for shards to fill again: no allocation (and no
    /// free on another thread's arena) per batch.
    spare: std::sync::Mutex<Vec<Vec<Cdr>>>,
}

/// Records a shard gathers before it hands them over.
pub const BATCH: usize = 256;

impl Sink {
    /// A sink holding at most `batches` batches, and the control shard's end of it.
    pub fn new(batches: usize) -> (Sink, std::sync::mpsc::Receiver<Vec<Cdr>>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(batches);
        (
            Sink {
                tx,
                dropped: std::sync::atomic::AtomicU64::new(0),
                spare: std::sync::Mutex::new(Vec::new()),
            },
            rx,
        )
    }

    /// An empty batch with room for [`BATCH`] records.
    pub fn batch(&self) -> Vec<Cdr> {
        self.spare
            .lock()
            .ok()
            .and_then(|mut s| s.pop())
            .unwrap_or_else(|| Vec::with_capacity(BATCH))
    }

    /// Takes a batch back once written (emptied here); a few are kept.
    pub fn give_back(&self, mut batch: Vec<Cdr>) {
        batch.clear();
        if batch.capacity() < BATCH {
            return;
        }
        if let Ok(mut s) = self.spare.lock() {
            if s.len() < 64 {
                s.push(batch);
            }
        }
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
    use crate::flow::time::civil_from_days;

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

    /// A rendered line, checked to be UTF-8.
    fn line(t: &Template, c: &Cdr, address: &str) -> String {
        let mut out = Vec::new();
        t.render(c, address, &mut out);
        String::from_utf8(out).expect("a CDR line is UTF-8")
    }

    #[test]
    fn the_default_lines_straight_code_writes_what_the_pieces_do() {
        assert_eq!(
            ALL.to_vec(),
            COLUMNS
                .iter()
                .map(|n| Col::of(n).unwrap())
                .collect::<Vec<_>>()
        );
        let fast = Template::default();
        assert!(fast.every);
        let parsed = Template::parse(
            &COLUMNS
                .iter()
                .map(|c| format!("${{{c}}}"))
                .collect::<Vec<_>>()
                .join("\\t"),
        )
        .unwrap();
        assert!(parsed.every, "the default spelled out is the default");
        let slow = Template {
            every: false,
            ..fast.clone()
        };
        let mut c = sample();
        for rec in [sample(), Cdr::default(), {
            c.address = Inline::from_slice(b"1.2.3.4:5");
            c.status = Some(CommandStatus::ROK);
            c.clone()
        }] {
            assert_eq!(line(&fast, &rec, "a"), line(&slow, &rec, "a"));
        }
        assert!(!Template::parse("${billid}\t${time}").unwrap().every);
    }

    #[test]
    fn times_are_written_as_the_calendar_says() {
        // Against the formatting machinery, over 1970..2200, within a second and across them.
        let t = Template::parse("${time}").unwrap();
        let mut ms: u64 = 0;
        while ms < 7_258_118_400_000 {
            let secs = (ms / 1000) as i64;
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let s = secs.rem_euclid(86_400);
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z\n",
                s / 3600,
                s / 60 % 60,
                s % 60,
                ms % 1000
            );
            assert_eq!(
                line(
                    &t,
                    &Cdr {
                        time_ms: ms,
                        ..Cdr::default()
                    },
                    ""
                ),
                want
            );
            assert_eq!(
                line(
                    &t,
                    &Cdr {
                        time_ms: ms + 1,
                        ..Cdr::default()
                    },
                    ""
                )
                .len(),
                25
            );
            ms = ms * 3 / 2 + 977_123;
        }
    }

    #[test]
    fn printable_ascii_is_told_exactly_at_every_place_and_length() {
        for len in 0..20 {
            for at in 0..len.max(1) {
                for c in 0..=255u8 {
                    let mut b = vec![b'x'; len];
                    if len > 0 {
                        b[at] = c;
                    }
                    let want = b.iter().all(|&c| (0x20..0x7f).contains(&c));
                    assert_eq!(printable_ascii(&b), want, "{b:?}");
                }
            }
        }
        assert!(!printable_ascii(b"\xff\x20abcdefgh"));
        assert!(!printable_ascii(b"abcdefg\xff!"));
    }

    #[test]
    fn text_that_is_not_printable_ascii_is_made_safe_utf8() {
        let t = Template::parse("${caller}|${called}").unwrap();
        let c = Cdr {
            caller: Inline::from_slice("Zoë\r\n".as_bytes()),
            called: Inline::from_slice(b"\xff31\x0061"),
            ..Cdr::default()
        };
        assert_eq!(line(&t, &c, ""), "Zoë  |\u{FFFD}31 61\n");
    }

    #[test]
    fn the_default_line_has_every_column_tab_separated() {
        let out = line(&Template::default(), &sample(), "10.0.0.1");
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
        let out = line(&t, &c, "");
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
        let t = Template::parse("${time}|${billid}|${status}|${tp_status}|${direction}").unwrap();
        let out = line(&t, &c, "");
        assert_eq!(out, "1970-01-01T00:00:00.000Z||||incoming\n");
    }
}
