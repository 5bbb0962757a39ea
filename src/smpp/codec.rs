//! Field-level codec: the read cursor, the write helpers and the field types.
//!
//! Decoding is zero-copy. A [`Reader`] walks one complete frame held as [`Bytes`]; every
//! C-Octet string and octet string it returns is a `Bytes` slice of that frame (a reference
//! count, no allocation, and no reference count at all for the empty strings that fill most
//! optional fields). Limits travel with each call (`max` including the NUL, as the spec writes
//! `C16`), and so does the `command_status` a violation maps to, so that the PDU decoder reads
//! like the field tables in the spec.
//!
//! Errors here are small `Copy` values: the hot path never formats a string.

use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;

use super::{CommandId, CommandStatus};

/// A C-Octet String: ASCII text that goes on the wire followed by one NUL. The value held here
/// excludes the NUL. Decoding guarantees it holds no NUL and respects the field's maximum;
/// code that builds one from its own data is trusted to do the same ([`COctet::new`] checks).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct COctet(Bytes);

impl COctet {
    /// The empty string (encoded as a single NUL).
    pub const EMPTY: COctet = COctet(Bytes::new());

    /// A checked constructor: `max` counts the NUL, as in the spec's `C16`.
    pub fn new(value: impl Into<Bytes>, max: usize) -> Option<COctet> {
        let b: Bytes = value.into();
        (b.len() < max && memchr::memchr(0, &b).is_none()).then_some(COctet(b))
    }

    /// From a static string; the caller vouches for length and the absence of NUL.
    pub const fn from_static(s: &'static str) -> COctet {
        COctet(Bytes::from_static(s.as_bytes()))
    }

    /// From bytes already known to be valid (no NUL).
    pub fn from_bytes_unchecked(b: Bytes) -> COctet {
        COctet(b)
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying `Bytes` (a cheap clone of the slice).
    #[inline]
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The text, when it is valid UTF-8 (SMPP says ASCII; most peers comply).
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.0).ok()
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for COctet {
    /// Copies the string; NULs are cut off at the first one. Length is the caller's concern.
    fn from(s: &str) -> Self {
        let b = s.as_bytes();
        let end = memchr::memchr(0, b).unwrap_or(b.len());
        COctet(Bytes::copy_from_slice(&b[..end]))
    }
}

impl fmt::Debug for COctet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for COctet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// An address triple: type of number, numbering plan, and the address itself.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Address {
    pub ton: u8,
    pub npi: u8,
    pub addr: COctet,
}

impl Address {
    pub fn new(ton: u8, npi: u8, addr: impl Into<COctet>) -> Address {
        Address {
            ton,
            npi,
            addr: addr.into(),
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.ton, self.npi, self.addr)
    }
}

/// What went wrong with a field, independent of which PDU carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// The body ended before a mandatory field.
    Truncated,
    /// A C-Octet String reached its maximum without a NUL.
    TooLong,
    /// A C-Octet String ran to the end of the body without a NUL.
    MissingNul,
    /// A time field is neither empty nor 16 characters.
    BadTime,
    /// A value outside its allowed set (dest_flag, number_of_dests, ...).
    BadValue,
    /// sm_length runs past the end of the body.
    BadMessageLength,
    /// A TLV header or value runs past the end of the body.
    TlvStream,
    /// A known TLV with a length its definition does not allow.
    TlvLength,
    /// Bytes left over where the PDU allows none.
    TrailingBytes,
    /// The frame's command_id is not an SMPP command.
    UnknownCommand,
}

impl FieldErrorKind {
    pub const fn describe(self) -> &'static str {
        match self {
            FieldErrorKind::Truncated => "body ends before this field",
            FieldErrorKind::TooLong => "longer than its maximum",
            FieldErrorKind::MissingNul => "C-Octet String without terminating NUL",
            FieldErrorKind::BadTime => "time must be empty or 16 characters",
            FieldErrorKind::BadValue => "value not allowed",
            FieldErrorKind::BadMessageLength => "sm_length runs past the end of the PDU",
            FieldErrorKind::TlvStream => "TLV runs past the end of the PDU",
            FieldErrorKind::TlvLength => "TLV length not allowed for this tag",
            FieldErrorKind::TrailingBytes => "unexpected bytes after the body",
            FieldErrorKind::UnknownCommand => "unknown command_id",
        }
    }
}

/// A field-level error: which field, what is wrong, and the status to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub kind: FieldErrorKind,
    pub status: CommandStatus,
}

/// A PDU that framed correctly but whose body is invalid. Always recoverable: the frame's
/// length is known, so the session answers ([`DecodeError::reply`]) and reads on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub command_id: CommandId,
    pub sequence_number: u32,
    pub field: &'static str,
    pub kind: FieldErrorKind,
    /// The status the reply carries.
    pub status: CommandStatus,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} seq {}: {}: {} -> {}",
            self.command_id,
            self.sequence_number,
            self.field,
            self.kind.describe(),
            self.status
        )
    }
}

impl std::error::Error for DecodeError {}

/// A read cursor over one frame. Every accessor is bounds-checked and returns an error
/// instead of panicking.
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a Bytes, pos: usize) -> Reader<'a> {
        Reader { buf, pos }
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    #[inline]
    fn truncated(field: &'static str) -> FieldError {
        FieldError {
            field,
            kind: FieldErrorKind::Truncated,
            status: CommandStatus::RINVCMDLEN,
        }
    }

    #[inline]
    pub fn u8(&mut self, field: &'static str) -> Result<u8, FieldError> {
        let v = *self.buf.get(self.pos).ok_or(Self::truncated(field))?;
        self.pos += 1;
        Ok(v)
    }

    #[inline]
    pub fn u32(&mut self, field: &'static str) -> Result<u32, FieldError> {
        let s = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or(Self::truncated(field))?;
        self.pos += 4;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// A slice of `len` octets, zero-copy.
    #[inline]
    pub fn octets(&mut self, len: usize, field: &'static str) -> Result<Bytes, FieldError> {
        let end = self.pos.checked_add(len).ok_or(Self::truncated(field))?;
        if end > self.buf.len() {
            return Err(Self::truncated(field));
        }
        let out = slice(self.buf, self.pos, end);
        self.pos = end;
        Ok(out)
    }

    /// A C-Octet String of at most `max` octets including its NUL.
    ///
    /// An empty body where the field should start is a length error (`ESME_RINVCMDLEN`); a
    /// string that reaches `max` or the end of the body without its NUL is an error of the
    /// field itself and answers with the field's own `status`.
    #[inline(always)]
    pub fn cstring(
        &mut self,
        max: usize,
        field: &'static str,
        status: CommandStatus,
    ) -> Result<COctet, FieldError> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        if rest.is_empty() {
            return Err(Self::truncated(field));
        }
        let window = &rest[..rest.len().min(max)];
        // Most fields are short: a plain scan beats memchr's call and setup below 16 octets.
        let nul = match window.iter().take(16).position(|&b| b == 0) {
            Some(n) => Some(n),
            None if window.len() > 16 => memchr::memchr(0, &window[16..]).map(|n| n + 16),
            None => None,
        };
        match nul {
            Some(n) => {
                let out = slice(self.buf, self.pos, self.pos + n);
                self.pos += n + 1;
                Ok(COctet(out))
            }
            None => Err(FieldError {
                field,
                kind: if rest.len() >= max {
                    FieldErrorKind::TooLong
                } else {
                    FieldErrorKind::MissingNul
                },
                status,
            }),
        }
    }

    /// A time field (`C17`): empty, or exactly 16 characters.
    #[inline]
    pub fn time(
        &mut self,
        field: &'static str,
        status: CommandStatus,
    ) -> Result<COctet, FieldError> {
        let t = self.cstring(17, field, status)?;
        if t.is_empty() || t.len() == 16 {
            Ok(t)
        } else {
            Err(FieldError {
                field,
                kind: FieldErrorKind::BadTime,
                status,
            })
        }
    }

    /// An address triple whose address is at most `max` octets including the NUL.
    #[inline(always)]
    pub fn address(
        &mut self,
        max: usize,
        field: &'static str,
        status: CommandStatus,
    ) -> Result<Address, FieldError> {
        let ton = self.u8(field)?;
        let npi = self.u8(field)?;
        let addr = self.cstring(max, field, status)?;
        Ok(Address { ton, npi, addr })
    }
}

/// Slices without touching the reference count for empty ranges.
#[inline]
fn slice(buf: &Bytes, start: usize, end: usize) -> Bytes {
    if start == end {
        Bytes::new()
    } else {
        buf.slice(start..end)
    }
}

/// Write helpers: infallible, append to a `BytesMut`.
#[inline]
pub fn put_cstring(out: &mut BytesMut, s: &COctet) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

#[inline]
pub fn put_address(out: &mut BytesMut, a: &Address) {
    out.put_u8(a.ton);
    out.put_u8(a.npi);
    put_cstring(out, &a.addr);
}
