//! Framing: splitting complete PDUs off a stream buffer.
//!
//! The read buffer may hold many PDUs, or part of one. [`Framer::next_frame`] splits exactly
//! one complete PDU off the front as `Bytes` (no copy: the frame shares the buffer's memory)
//! and leaves the rest; "incomplete" is a normal answer (`Ok(None)`), not an error.
//!
//! A `command_length` under 16 or over the configured maximum cannot be resynchronised (we no
//! longer know where the next PDU starts), so it is a [`FrameError`], which is fatal: answer
//! generic_nack `ESME_RINVCMDLEN` and close, as the spec says. The error is reported as soon as
//! the four length octets arrive, without waiting for a body that may never come.

use bytes::{Bytes, BytesMut};
use core::fmt;

use super::header::{Header, HEADER_LEN};
use super::pdu::{Body, Pdu};
use super::{CommandId, CommandStatus};

/// Default largest PDU accepted: a 64 KiB message_payload plus headroom.
pub const DEFAULT_MAX_PDU_SIZE: u32 = 70_000;

/// A stream that cannot be framed any more. The connection must be closed after sending
/// [`FrameError::reply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    pub command_length: u32,
    /// The limit in force.
    pub max_pdu_size: u32,
    /// command_id and sequence_number when enough octets had arrived to read them.
    pub command_id: Option<CommandId>,
    pub sequence_number: u32,
}

impl FrameError {
    /// The generic_nack ESME_RINVCMDLEN to send before closing.
    pub fn reply(&self) -> Pdu {
        Pdu::response(
            self.sequence_number,
            CommandStatus::RINVCMDLEN,
            Body::GenericNack,
        )
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = if (self.command_length as usize) < HEADER_LEN {
            "shorter than the 16-octet header"
        } else {
            "over the maximum PDU size"
        };
        write!(
            f,
            "command_length {} is {} (limit {}); stream cannot be resynchronised",
            self.command_length, why, self.max_pdu_size
        )
    }
}

impl std::error::Error for FrameError {}

/// Splits PDUs off a stream buffer.
#[derive(Clone, Copy, Debug)]
pub struct Framer {
    max_pdu_size: u32,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(DEFAULT_MAX_PDU_SIZE)
    }
}

impl Framer {
    /// `max_pdu_size` is clamped to at least the header size.
    pub const fn new(max_pdu_size: u32) -> Framer {
        Framer {
            max_pdu_size: if max_pdu_size < HEADER_LEN as u32 {
                HEADER_LEN as u32
            } else {
                max_pdu_size
            },
        }
    }

    pub const fn max_pdu_size(&self) -> u32 {
        self.max_pdu_size
    }

    /// The length of the first PDU in `buf` when all of it is there, `Ok(None)` when more
    /// octets are needed.
    #[inline]
    pub fn complete_len(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(len) = buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if len < HEADER_LEN as u32 || len > self.max_pdu_size {
            let header = Header::parse(buf);
            let command_id = match (header, buf.get(4..8)) {
                (Some(h), _) => Some(h.command_id),
                (None, Some(id)) => {
                    Some(CommandId(u32::from_be_bytes([id[0], id[1], id[2], id[3]])))
                }
                (None, None) => None,
            };
            return Err(FrameError {
                command_length: len,
                max_pdu_size: self.max_pdu_size,
                command_id,
                sequence_number: header.map_or(0, |h| h.sequence_number),
            });
        }
        Ok((buf.len() >= len as usize).then_some(len as usize))
    }

    /// Splits the first complete PDU off `buf`.
    #[inline]
    pub fn next_frame(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        Ok(self
            .complete_len(buf)?
            .map(|len| buf.split_to(len).freeze()))
    }
}
