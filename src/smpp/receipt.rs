//! Delivery receipts: the de-facto `id:... stat:...` text, its tolerant parser, and
//! `message_state`.
//!
//! The receipt text is not in the spec; every SMSC writes its own variant of
//! `id:<msgid> sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD err:000 text:...`.
//! The parser reads what real SMSCs send: keys in any case and order, `submit_date` for
//! `submit date`, dates with or without seconds or with a four-digit year, a missing `text:`,
//! ids in hex or decimal. It borrows from the input and never allocates. The formatter writes
//! the canonical form. Prefer the TLVs (receipted_message_id, message_state,
//! network_error_code) when a receipt carries them; the text is the fallback.

use bytes::{BufMut, BytesMut};
use core::fmt;

/// `message_state` (TLV 0x0427 and query_sm_resp), with its receipt `stat:` word.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageState(pub u8);

/// (state, canonical stat word, long names also seen in the wild).
const STATES: &[(u8, &str, &str)] = &[
    (0, "SCHEDLD", "SCHEDULED"),
    (1, "ENROUTE", "ENROUTE"),
    (2, "DELIVRD", "DELIVERED"),
    (3, "EXPIRED", "EXPIRED"),
    (4, "DELETED", "DELETED"),
    (5, "UNDELIV", "UNDELIVERABLE"),
    (6, "ACCEPTD", "ACCEPTED"),
    (7, "UNKNOWN", "UNKNOWN"),
    (8, "REJECTD", "REJECTED"),
    (9, "SKIPPED", "SKIPPED"),
];

impl MessageState {
    pub const SCHEDULED: MessageState = MessageState(0);
    pub const ENROUTE: MessageState = MessageState(1);
    pub const DELIVERED: MessageState = MessageState(2);
    pub const EXPIRED: MessageState = MessageState(3);
    pub const DELETED: MessageState = MessageState(4);
    pub const UNDELIVERABLE: MessageState = MessageState(5);
    pub const ACCEPTED: MessageState = MessageState(6);
    pub const UNKNOWN: MessageState = MessageState(7);
    pub const REJECTED: MessageState = MessageState(8);
    pub const SKIPPED: MessageState = MessageState(9);

    /// The seven-letter `stat:` word (`DELIVRD`, `UNDELIV`, ...); `UNKNOWN` for other values.
    pub fn stat(self) -> &'static str {
        // The table is in value order (checked by a test).
        STATES.get(self.0 as usize).map_or("UNKNOWN", |s| s.1)
    }

    /// Reads a `stat:` word, short or long form, in any case.
    pub fn from_stat(word: &[u8]) -> Option<MessageState> {
        STATES
            .iter()
            .find(|s| {
                word.eq_ignore_ascii_case(s.1.as_bytes())
                    || word.eq_ignore_ascii_case(s.2.as_bytes())
            })
            .map(|s| MessageState(s.0))
    }

    /// Final states end the message's life: delivered, expired, deleted, undeliverable,
    /// accepted, unknown, rejected, skipped. Scheduled and enroute are intermediate.
    pub const fn is_final(self) -> bool {
        matches!(self.0, 2..=9)
    }
}

impl fmt::Debug for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.stat(), self.0)
    }
}

/// A receipt date: YYMMDDhhmm on the wire, sometimes with seconds or a four-digit year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiptDate {
    /// Full year (two-digit years are read as 20YY).
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: Option<u8>,
}

impl ReceiptDate {
    /// Parses 10 digits (YYMMDDhhmm), 12 (YYMMDDhhmmss, or YYYYMMDDhhmm when the first
    /// reading is not a valid date) or 14 (YYYYMMDDhhmmss).
    pub fn parse(s: &[u8]) -> Option<ReceiptDate> {
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = |i: usize| (s[i] - b'0') * 10 + (s[i + 1] - b'0');
        let short_year = |i: usize| 2000 + n(i) as u16;
        let long_year = |i: usize| n(i) as u16 * 100 + n(i + 2) as u16;
        let build = |year, o: usize, sec: bool| {
            let d = ReceiptDate {
                year,
                month: n(o),
                day: n(o + 2),
                hour: n(o + 4),
                minute: n(o + 6),
                second: sec.then(|| n(o + 8)),
            };
            d.is_valid().then_some(d)
        };
        match s.len() {
            10 => build(short_year(0), 2, false),
            12 => build(short_year(0), 2, true).or_else(|| build(long_year(0), 4, false)),
            14 => build(long_year(0), 4, true),
            _ => None,
        }
    }

    fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second.is_none_or(|s| s < 60)
    }

    /// Writes YYMMDDhhmm, plus ss when the date has seconds.
    pub fn write(&self, out: &mut BytesMut) {
        let mut two = |v: u8| {
            out.put_u8(b'0' + (v / 10) % 10);
            out.put_u8(b'0' + v % 10);
        };
        two((self.year % 100) as u8);
        two(self.month);
        two(self.day);
        two(self.hour);
        two(self.minute);
        if let Some(s) = self.second {
            two(s);
        }
    }
}

/// The fields of a receipt text, borrowed from the short_message or message_payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Receipt<'a> {
    pub id: &'a [u8],
    pub sub: Option<u32>,
    pub dlvrd: Option<u32>,
    pub submit_date: Option<ReceiptDate>,
    pub done_date: Option<ReceiptDate>,
    pub stat: &'a [u8],
    /// As sent: three digits usually, sometimes hex or longer.
    pub err: &'a [u8],
    pub text: Option<&'a [u8]>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Id,
    Sub,
    Dlvrd,
    SubmitDate,
    DoneDate,
    Stat,
    Err,
    Text,
}

const KEYS: &[(&str, Key)] = &[
    ("id:", Key::Id),
    ("sub:", Key::Sub),
    ("dlvrd:", Key::Dlvrd),
    ("submit date:", Key::SubmitDate),
    ("submit_date:", Key::SubmitDate),
    ("done date:", Key::DoneDate),
    ("done_date:", Key::DoneDate),
    ("stat:", Key::Stat),
    ("err:", Key::Err),
    ("text:", Key::Text),
];

fn key_at(s: &[u8], i: usize) -> Option<(Key, usize)> {
    if i > 0 && !s[i - 1].is_ascii_whitespace() {
        return None;
    }
    KEYS.iter().find_map(|(k, key)| {
        let k = k.as_bytes();
        s.get(i..i + k.len())
            .filter(|w| w.eq_ignore_ascii_case(k))
            .map(|_| (*key, i + k.len()))
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn number(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |a, d| a * 10 + (d - b'0') as u32))
}

impl<'a> Receipt<'a> {
    /// Parses a receipt text. Returns `None` when there is no `id:` (not a receipt text).
    /// Unknown keys and junk between fields are skipped. `text:` runs to the end.
    pub fn parse(s: &'a [u8]) -> Option<Receipt<'a>> {
        // Find every key start; each value runs to the next key (text: to the end).
        let mut marks: smallvec::SmallVec<[(Key, usize, usize); 8]> = smallvec::SmallVec::new();
        let mut i = 0;
        while i < s.len() {
            if let Some((key, value_start)) = key_at(s, i) {
                marks.push((key, i, value_start));
                if key == Key::Text {
                    break;
                }
                i = value_start;
            } else {
                i += 1;
            }
        }
        let mut r = Receipt::default();
        let mut has_id = false;
        for (n, &(key, _, vs)) in marks.iter().enumerate() {
            let end = marks.get(n + 1).map_or(s.len(), |m| m.1);
            let raw = &s[vs..end.max(vs)];
            let v = trim(raw);
            match key {
                Key::Id => {
                    r.id = v;
                    has_id = true;
                }
                Key::Sub => r.sub = number(v),
                Key::Dlvrd => r.dlvrd = number(v),
                Key::SubmitDate => r.submit_date = ReceiptDate::parse(v),
                Key::DoneDate => r.done_date = ReceiptDate::parse(v),
                Key::Stat => r.stat = v,
                Key::Err => r.err = v,
                Key::Text => r.text = Some(raw),
            }
        }
        has_id.then_some(r)
    }

    /// The state the `stat:` word names.
    pub fn state(&self) -> Option<MessageState> {
        MessageState::from_stat(self.stat)
    }

    /// The `err:` value as a number, decimal first, then hex.
    pub fn err_code(&self) -> Option<u32> {
        number(self.err).or_else(|| {
            core::str::from_utf8(self.err)
                .ok()
                .and_then(|s| u32::from_str_radix(s, 16).ok())
        })
    }

    /// Writes the canonical text: `id:.. sub:001 dlvrd:001 submit date:.. done date:..
    /// stat:.. err:000 text:..`. Missing counts are written as 001 and missing dates as
    /// `0000000000`; `text` is cut to 20 octets.
    pub fn write(&self, out: &mut BytesMut) {
        out.put_slice(b"id:");
        out.put_slice(self.id);
        out.put_slice(b" sub:");
        put_count(out, self.sub.unwrap_or(1));
        out.put_slice(b" dlvrd:");
        put_count(out, self.dlvrd.unwrap_or(1));
        out.put_slice(b" submit date:");
        put_date(out, self.submit_date);
        out.put_slice(b" done date:");
        put_date(out, self.done_date);
        out.put_slice(b" stat:");
        out.put_slice(self.stat);
        out.put_slice(b" err:");
        out.put_slice(self.err);
        if let Some(t) = self.text {
            out.put_slice(b" text:");
            out.put_slice(&t[..t.len().min(20)]);
        }
    }
}

fn put_count(out: &mut BytesMut, v: u32) {
    let v = v.min(999);
    out.put_slice(&[
        b'0' + (v / 100) as u8,
        b'0' + (v / 10 % 10) as u8,
        b'0' + (v % 10) as u8,
    ]);
}

fn put_date(out: &mut BytesMut, d: Option<ReceiptDate>) {
    match d {
        Some(d) => d.write(out),
        None => out.put_slice(b"0000000000"),
    }
}

/// How a message id is written: SMSCs answer submit_sm_resp in one form and write receipts
/// in another (SMPP 3.3 habit: hex in the response, decimal in the receipt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdRadix {
    Decimal,
    Hex,
    /// Not a number: compared as written.
    Text,
}

impl IdRadix {
    pub fn from_name(s: &str) -> Option<IdRadix> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hex" | "hexadecimal" => Some(IdRadix::Hex),
            "dec" | "decimal" => Some(IdRadix::Decimal),
            "text" | "string" => Some(IdRadix::Text),
            _ => None,
        }
    }
}

/// Reads a message id as a number in the given radix (case-insensitive hex, leading zeros
/// allowed); `None` if it is not one, does not fit 128 bits, or the radix is `Text`.
pub fn id_value(id: &[u8], radix: IdRadix) -> Option<u128> {
    let s = core::str::from_utf8(trim(id)).ok()?;
    if s.is_empty() {
        return None;
    }
    match radix {
        IdRadix::Decimal => s.parse().ok(),
        IdRadix::Hex => u128::from_str_radix(s, 16).ok(),
        IdRadix::Text => None,
    }
}

/// A message id reduced to what identifies it: its value for numeric formats (so case and
/// zero padding do not matter), its text otherwise. The submit_sm_resp id and the receipt
/// id of one message reduce to the same key when each is read with its own radix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdKey {
    Number(u128),
    Text(Vec<u8>),
}

impl IdKey {
    pub fn new(id: &[u8], radix: IdRadix) -> IdKey {
        match id_value(id, radix) {
            Some(n) => IdKey::Number(n),
            None => IdKey::Text(trim(id).to_vec()),
        }
    }
}
