//! The message log's records and their framing, as pure code: encode into a buffer, decode
//! from one, never panic on what a disk hands back.
//!
//! A segment file is a 64-octet header (magic, shard, sequence number, the write alignment
//! and a random salt) padded to the alignment, then frames:
//!
//! ```text
//! len: u32 LE | crc: u32 LE | type: u8 | payload (len - 1 octets)
//! ```
//!
//! `crc` is CRC32C, seeded with the segment's salt, over `len`, `type` and the payload. The
//! salt keeps a frame that an ESME smuggled inside a message's text from ever passing for a
//! record of this segment when replay has to search for the next good frame.
//!
//! Each commit is written from an aligned offset and padded with zeros to the next aligned
//! offset (direct IO writes whole blocks, and a committed block is never written again). So
//! zeros from inside a block to its end are padding (skip to the next block), zeros from a block
//! start to the segment's end are the end of what was committed, and anything else is damage.
//!
//! The records:
//! - [`Record::Message`]: a message accepted, with everything needed to deliver it, or a
//!   later snapshot of its whole state (written when its segment is compacted);
//! - [`Record::Attempt`]: a temporary failure counted, and whether it is on the backup now;
//! - [`Record::Forwarded`]: an upstream accepted it and gave this id (the receipt map);
//! - [`Record::Final`]: the message is done; nothing about it is needed any more.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::ids::MessageId;

/// Octets before a record's type: `len` and `crc`.
pub const FRAME_HEADER: usize = 8;
/// The largest record replay believes: a PDU of the largest size a session accepts is far
/// below it. Bounds the work of searching past damage.
pub const MAX_RECORD: usize = 1 << 20;
/// Octets of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 64;
const MAGIC: &[u8; 8] = b"SMPPGWL1";

/// Where a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// submit_sm, data_sm or one destination of submit_multi from an ESME.
    Submit,
    /// A mobile-originated message from a client link.
    Mo,
    /// A delivery receipt on its way to the ESME that sent message `billid`.
    Receipt,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Submit => 0,
            Kind::Mo => 1,
            Kind::Receipt => 2,
        }
    }

    fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            0 => Kind::Submit,
            1 => Kind::Mo,
            2 => Kind::Receipt,
            _ => return None,
        })
    }
}

/// What an upstream said when it accepted a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// The client link's name.
    pub link: Bytes,
    /// The upstream's message id, as it wrote it in submit_sm_resp.
    pub upstream_id: Bytes,
}

/// A message as the log keeps it: the PDU as it came in and the state of its delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: MessageId,
    /// The id the originator knows the message by: `id` itself, the submit_multi's id for
    /// one of its destinations, or, for a receipt, the message it reports on.
    pub billid: MessageId,
    pub kind: Kind,
    /// `smppserver/SYSTEM_ID` (an ESME) or `smppclient/LINK` (MO from a link).
    pub origin: Bytes,
    /// Where it goes: `smppclient/LINK` or `smppserver/SYSTEM_ID`.
    pub target: Bytes,
    /// The submit's registered_delivery.
    pub registered_delivery: u8,
    /// Unix milliseconds: accepted, not to be sent before, given up at.
    pub accepted_ms: u64,
    pub not_before_ms: u64,
    pub expires_ms: u64,
    /// Temporary failures allowed before the message fails over or fails.
    pub retries: u16,
    /// Temporary failures so far.
    pub failures: u16,
    /// It was sent to the backup gateway (failover happens once).
    pub on_backup: bool,
    /// Boxed: most messages kept in memory are not forwarded yet (8 octets, not 64).
    pub forwarded: Option<Box<Forwarded>>,
    /// The request PDU, encoded (header included).
    pub pdu: Bytes,
    /// Where its status reports go instead of to its originator: a URL (POSTed JSON), or
    /// `GET ` and a Kannel `dlr-url` template. Empty: the route rules, else the originator.
    pub report_to: Bytes,
}

/// Where a record lies in a shard's log: the key of its segment (see
/// [`segment_key`](super::segment_key)), its offset as the log counts it, and its length with
/// the frame header. A zero length: nowhere (a log that keeps nothing, the simulator's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    pub seg: u64,
    pub off: u64,
    pub len: u32,
}

impl Loc {
    /// Whether the record can be read back.
    pub fn on_disk(&self) -> bool {
        self.len > 0
    }
}

/// One entry of the message log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Message(StoredMessage),
    Attempt {
        id: MessageId,
        failures: u16,
        on_backup: bool,
        /// The command_status of the failure (0 for a timeout or a link that was down).
        status: u32,
    },
    Forwarded {
        id: MessageId,
        link: Bytes,
        upstream_id: Bytes,
    },
    Final {
        id: MessageId,
        /// message_state (SMPP 5.0 values: 2 delivered, 3 expired, 5 undeliverable, 6
        /// accepted (forwarded, no receipt asked), 8 rejected).
        state: u8,
        /// TS 23.040 TP-Status.
        tp_status: u8,
        /// The last command_status that decided it (0 when none did).
        status: u32,
    },
}

impl Record {
    /// The message the record is about.
    pub fn id(&self) -> MessageId {
        match self {
            Record::Message(m) => m.id,
            Record::Attempt { id, .. }
            | Record::Forwarded { id, .. }
            | Record::Final { id, .. } => *id,
        }
    }

    fn type_code(&self) -> u8 {
        match self {
            Record::Message(_) => 1,
            Record::Attempt { .. } => 2,
            Record::Forwarded { .. } => 3,
            Record::Final { .. } => 4,
        }
    }
}

fn put_id(out: &mut BytesMut, id: MessageId) {
    out.put_slice(&id.to_u128().to_le_bytes()[..10]);
}

fn put_short(out: &mut BytesMut, b: &[u8]) {
    // Names and ids are short; anything longer is cut (a name over 64 KiB is no name).
    let n = b.len().min(u16::MAX as usize);
    out.put_u16_le(n as u16);
    out.put_slice(&b[..n]);
}

/// Appends one framed record to `out`.
pub fn encode(rec: &Record, salt: u32, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32_le(0);
    out.put_u32_le(0);
    out.put_u8(rec.type_code());
    match rec {
        Record::Message(m) => {
            put_id(out, m.id);
            put_id(out, m.billid);
            out.put_u8(m.kind.code());
            out.put_u8(m.registered_delivery);
            out.put_u8(u8::from(m.on_backup));
            out.put_u16_le(m.retries);
            out.put_u16_le(m.failures);
            out.put_u64_le(m.accepted_ms);
            out.put_u64_le(m.not_before_ms);
            out.put_u64_le(m.expires_ms);
            put_short(out, &m.origin);
            put_short(out, &m.target);
            match &m.forwarded {
                Some(f) => {
                    out.put_u8(1);
                    put_short(out, &f.link);
                    put_short(out, &f.upstream_id);
                }
                None => out.put_u8(0),
            }
            out.put_u32_le(m.pdu.len() as u32);
            out.put_slice(&m.pdu);
            // Optional, last: records written before it existed end here.
            if !m.report_to.is_empty() {
                put_short(out, &m.report_to);
            }
        }
        Record::Attempt {
            id,
            failures,
            on_backup,
            status,
        } => {
            put_id(out, *id);
            out.put_u16_le(*failures);
            out.put_u8(u8::from(*on_backup));
            out.put_u32_le(*status);
        }
        Record::Forwarded {
            id,
            link,
            upstream_id,
        } => {
            put_id(out, *id);
            put_short(out, link);
            put_short(out, upstream_id);
        }
        Record::Final {
            id,
            state,
            tp_status,
            status,
        } => {
            put_id(out, *id);
            out.put_u8(*state);
            out.put_u8(*tp_status);
            out.put_u32_le(*status);
        }
    }
    let len = (out.len() - start - FRAME_HEADER) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = frame_crc(salt, &out[start..start + 4], &out[start + FRAME_HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn frame_crc(salt: u32, len: &[u8], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c_append(salt, len), body)
}

/// A bounds-checked reader over a record's payload.
struct Payload {
    b: Bytes,
}

impl Payload {
    fn need(&self, n: usize) -> Option<()> {
        (self.b.remaining() >= n).then_some(())
    }
    fn u8(&mut self) -> Option<u8> {
        self.need(1)?;
        Some(self.b.get_u8())
    }
    fn u16(&mut self) -> Option<u16> {
        self.need(2)?;
        Some(self.b.get_u16_le())
    }
    fn u32(&mut self) -> Option<u32> {
        self.need(4)?;
        Some(self.b.get_u32_le())
    }
    fn u64(&mut self) -> Option<u64> {
        self.need(8)?;
        Some(self.b.get_u64_le())
    }
    fn id(&mut self) -> Option<MessageId> {
        self.need(10)?;
        let mut raw = [0u8; 16];
        self.b.copy_to_slice(&mut raw[..10]);
        Some(MessageId::from_u128(u128::from_le_bytes(raw)))
    }
    fn bytes(&mut self, n: usize) -> Option<Bytes> {
        self.need(n)?;
        Some(self.b.split_to(n))
    }
    fn short(&mut self) -> Option<Bytes> {
        let n = self.u16()? as usize;
        self.bytes(n)
    }
    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

/// Decodes a record's type and payload (the frame's body, CRC already checked). `None` when
/// the body does not hold a whole record of a known type.
fn decode_body(body: Bytes) -> Option<Record> {
    let mut p = Payload { b: body };
    let rec = match p.u8()? {
        1 => {
            let id = p.id()?;
            let billid = p.id()?;
            let kind = Kind::from_code(p.u8()?)?;
            let registered_delivery = p.u8()?;
            let on_backup = p.flag()?;
            let retries = p.u16()?;
            let failures = p.u16()?;
            let accepted_ms = p.u64()?;
            let not_before_ms = p.u64()?;
            let expires_ms = p.u64()?;
            let origin = p.short()?;
            let target = p.short()?;
            let forwarded = if p.flag()? {
                Some(Box::new(Forwarded {
                    link: p.short()?,
                    upstream_id: p.short()?,
                }))
            } else {
                None
            };
            let n = p.u32()? as usize;
            let pdu = p.bytes(n)?;
            let report_to = if p.b.is_empty() {
                Bytes::new()
            } else {
                p.short()?
            };
            Record::Message(StoredMessage {
                id,
                billid,
                kind,
                origin,
                target,
                registered_delivery,
                accepted_ms,
                not_before_ms,
                expires_ms,
                retries,
                failures,
                on_backup,
                forwarded,
                pdu,
                report_to,
            })
        }
        2 => Record::Attempt {
            id: p.id()?,
            failures: p.u16()?,
            on_backup: p.flag()?,
            status: p.u32()?,
        },
        3 => Record::Forwarded {
            id: p.id()?,
            link: p.short()?,
            upstream_id: p.short()?,
        },
        4 => Record::Final {
            id: p.id()?,
            state: p.u8()?,
            tp_status: p.u8()?,
            status: p.u32()?,
        },
        _ => return None,
    };
    p.b.is_empty().then_some(rec)
}

/// What stands at one offset of a segment. (A record is what replay reads by the million;
/// the other variants are rare and their size costs nothing.)
#[derive(Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Frame {
    /// A good record; the next frame starts at `next`.
    Record { record: Record, next: usize },
    /// Zeros where a frame would start, inside a block: padding up to `next`.
    Pad { next: usize },
    /// Zeros at a block start: nothing was committed from here on.
    End,
    /// Not a good frame: damaged, torn, or a type this version does not know.
    Bad,
}

/// Reads the frame at `pos` of `data` (a whole segment).
pub fn frame_at(data: &Bytes, pos: usize, salt: u32, align: usize) -> Frame {
    let align = align.max(1);
    let Some(head) = data.get(pos..pos + FRAME_HEADER) else {
        // Too short for a frame: the end if it is all zeros.
        return if data.get(pos..).unwrap_or(&[]).iter().all(|&b| b == 0) {
            end_or_pad(pos, align, data.len())
        } else {
            Frame::Bad
        };
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 {
        return end_or_pad(pos, align, data.len());
    }
    if len > MAX_RECORD || data.len() - pos - FRAME_HEADER < len {
        return Frame::Bad;
    }
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let body = &data[pos + FRAME_HEADER..pos + FRAME_HEADER + len];
    if !(1..=4).contains(&body[0]) || frame_crc(salt, &head[..4], body) != crc {
        return Frame::Bad;
    }
    match decode_body(data.slice(pos + FRAME_HEADER..pos + FRAME_HEADER + len)) {
        Some(record) => Frame::Record {
            record,
            next: pos + FRAME_HEADER + len,
        },
        None => Frame::Bad,
    }
}

/// The record of one frame read back on its own (`data` holds exactly the frame): `None` when
/// it is damaged or not a whole good frame.
pub fn read_frame(data: &Bytes, salt: u32) -> Option<Record> {
    match frame_at(data, 0, salt, 1) {
        Frame::Record { record, next } if next == data.len() => Some(record),
        _ => None,
    }
}

/// The length of the frame starting at `pos` of `data` (header included), as its length field
/// says.
pub fn frame_len(data: &[u8], pos: usize) -> Option<usize> {
    let head = data.get(pos..pos + 4)?;
    Some(FRAME_HEADER + u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize)
}

/// The first offset from `from` on where a good frame starts. Runs of zeros (a preallocated
/// segment's unwritten rest) are stepped over at once: a frame's length has a nonzero octet
/// in its first four, so no frame starts more than three octets before a nonzero one.
fn next_good_frame(data: &Bytes, from: usize, salt: u32, align: usize) -> Option<usize> {
    let mut q = from;
    while q < data.len() {
        let nz = data[q..].iter().position(|&b| b != 0)?;
        q = (q + nz).saturating_sub(3).max(q);
        if matches!(frame_at(data, q, salt, align), Frame::Record { .. }) {
            return Some(q);
        }
        q += 1;
    }
    None
}

fn end_or_pad(pos: usize, align: usize, total: usize) -> Frame {
    if pos % align == 0 {
        Frame::End
    } else {
        Frame::Pad {
            next: (pos / align + 1).saturating_mul(align).min(total),
        }
    }
}

/// A segment's identity and write geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub shard: u16,
    /// Segments of a shard are numbered from 1, in write order.
    pub seq: u64,
    /// The block size commits are aligned to; frames start at `align` at the earliest.
    pub align: u32,
    pub salt: u32,
    pub created_ms: u64,
}

impl SegmentHeader {
    /// Where the first frame starts.
    pub fn data_start(&self) -> usize {
        (self.align as usize).max(SEGMENT_HEADER_LEN)
    }

    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = BytesMut::with_capacity(SEGMENT_HEADER_LEN);
        out.put_slice(MAGIC);
        out.put_u16_le(self.shard);
        out.put_u64_le(self.seq);
        out.put_u32_le(self.align);
        out.put_u32_le(self.salt);
        out.put_u64_le(self.created_ms);
        let crc = crc32c::crc32c(&out);
        out.put_u32_le(crc);
        let mut h = [0u8; SEGMENT_HEADER_LEN];
        h[..out.len()].copy_from_slice(&out);
        h
    }

    /// `None` when the octets are not a segment header of this version.
    pub fn decode(b: &[u8]) -> Option<SegmentHeader> {
        let b = b.get(..SEGMENT_HEADER_LEN)?;
        if &b[..8] != MAGIC {
            return None;
        }
        let body = &b[..34];
        let crc = u32::from_le_bytes(b[34..38].try_into().ok()?);
        if crc32c::crc32c(body) != crc {
            return None;
        }
        let mut p = &b[8..34];
        let h = SegmentHeader {
            shard: p.get_u16_le(),
            seq: p.get_u64_le(),
            align: p.get_u32_le(),
            salt: p.get_u32_le(),
            created_ms: p.get_u64_le(),
        };
        (h.align.is_power_of_two() && h.align <= 1 << 20).then_some(h)
    }
}

/// A stretch of a segment replay could not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    pub offset: usize,
    pub len: usize,
    /// True when nothing good follows it (a torn or corrupt tail, cut off).
    pub tail: bool,
}

/// What one segment holds.
#[derive(Debug, Default)]
pub struct Scan {
    /// The good records, in order, with their offsets.
    pub records: Vec<(usize, Record)>,
    pub damage: Vec<Damage>,
}

/// Reads every good record of a segment. After a bad frame it searches forward for the next
/// good one (a flipped bit costs one record, not the rest of the segment); with none, the
/// rest is a torn tail. The bytes skipped are reported, never silently dropped.
pub fn scan(data: &Bytes, header: &SegmentHeader) -> Scan {
    let align = (header.align as usize).max(1);
    let mut out = Scan::default();
    let mut pos = header.data_start();
    while pos < data.len() {
        match frame_at(data, pos, header.salt, align) {
            Frame::Record { record, next } => {
                out.records.push((pos, record));
                pos = next;
            }
            // Padding only when zeros reach the block's end (also when fewer than a length's
            // four octets are left): a nonzero octet in it, or a flipped length, is damage.
            _ if pos % align != 0 && zeros(&data[pos..block_end(pos, align, data.len())]) => {
                pos = block_end(pos, align, data.len());
            }
            // The end only when nothing but zeros follows, else damage to search past.
            Frame::End if zeros(&data[pos..]) => break,
            Frame::Pad { .. } | Frame::End | Frame::Bad => {
                let next = next_good_frame(data, pos + 1, header.salt, align);
                match next {
                    Some(q) => {
                        out.damage.push(Damage {
                            offset: pos,
                            len: q - pos,
                            tail: false,
                        });
                        pos = q;
                    }
                    None => {
                        let last = data[pos..]
                            .iter()
                            .rposition(|&b| b != 0)
                            .map_or(0, |l| l + 1);
                        out.damage.push(Damage {
                            offset: pos,
                            len: last.max(1),
                            tail: true,
                        });
                        break;
                    }
                }
            }
        }
    }
    out
}

fn zeros(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// The start of the block after the one holding `pos` (or the segment's end).
fn block_end(pos: usize, align: usize, total: usize) -> usize {
    (pos / align + 1).saturating_mul(align).min(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u64) -> StoredMessage {
        StoredMessage {
            id: MessageId::new(100, 1, n),
            billid: MessageId::new(100, 1, n),
            kind: Kind::Submit,
            origin: Bytes::from_static(b"smppserver/esme1"),
            target: Bytes::from_static(b"smppclient/up"),
            registered_delivery: 1,
            accepted_ms: 1_700_000_000_000,
            not_before_ms: 0,
            expires_ms: 1_700_000_100_000,
            retries: 5,
            failures: 0,
            on_backup: false,
            forwarded: None,
            pdu: Bytes::from(vec![7u8; 40 + n as usize % 50]),
            // Every other message with a callback: records with and without it read back.
            report_to: if n % 2 == 0 {
                Bytes::new()
            } else {
                Bytes::from_static(b"GET http://h/dlr?t=%d")
            },
        }
    }

    #[test]
    fn every_record_type_round_trips() {
        let mut with_fwd = msg(3);
        with_fwd.forwarded = Some(Box::new(Forwarded {
            link: Bytes::from_static(b"up"),
            upstream_id: Bytes::from_static(b"A1B2"),
        }));
        let records = vec![
            Record::Message(msg(1)),
            Record::Message(with_fwd),
            Record::Attempt {
                id: MessageId::new(1, 2, 3),
                failures: 4,
                on_backup: true,
                status: 0x14,
            },
            Record::Forwarded {
                id: MessageId::new(1, 2, 3),
                link: Bytes::from_static(b"link"),
                upstream_id: Bytes::from_static(b"123"),
            },
            Record::Final {
                id: MessageId::new(1, 2, 3),
                state: 2,
                tp_status: 0,
                status: 0,
            },
        ];
        let mut buf = BytesMut::new();
        for r in &records {
            encode(r, 77, &mut buf);
        }
        let data = buf.freeze();
        let mut pos = 0;
        for r in &records {
            match frame_at(&data, pos, 77, 512) {
                Frame::Record { record, next } => {
                    assert_eq!(&record, r);
                    pos = next;
                }
                other => panic!("{other:?} at {pos}"),
            }
        }
        assert_eq!(pos, data.len());
    }

    #[test]
    fn another_salt_reads_nothing() {
        let mut buf = BytesMut::new();
        encode(&Record::Message(msg(1)), 1, &mut buf);
        assert_eq!(frame_at(&buf.freeze(), 0, 2, 512), Frame::Bad);
    }

    #[test]
    fn zeros_are_padding_inside_a_block_and_the_end_at_its_start() {
        let data = Bytes::from(vec![0u8; 2048]);
        assert_eq!(frame_at(&data, 100, 0, 512), Frame::Pad { next: 512 });
        assert_eq!(frame_at(&data, 512, 0, 512), Frame::End);
        assert_eq!(frame_at(&data, 2045, 0, 512), Frame::Pad { next: 2048 });
    }

    #[test]
    fn segment_header_round_trips_and_refuses_damage() {
        let h = SegmentHeader {
            shard: 3,
            seq: 42,
            align: 4096,
            salt: 0xDEAD_BEEF,
            created_ms: 1_700_000_000_123,
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Some(h));
        assert_eq!(h.data_start(), 4096);
        let mut bad = b;
        bad[20] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), None);
        assert_eq!(SegmentHeader::decode(&b[..10]), None);
    }
}
