//! The 16-octet PDU header, read in place.
//!
//! A header is four big-endian `u32`s. [`Header::parse`] reads them from the front of any
//! buffer without copying or validating anything beyond the length of the slice; the framer
//! and the decoder decide what the values mean.

use super::{CommandId, CommandStatus};

/// Octets in every PDU header.
pub const HEADER_LEN: usize = 16;

/// The header values of one PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub command_length: u32,
    pub command_id: CommandId,
    pub command_status: CommandStatus,
    pub sequence_number: u32,
}

impl Header {
    /// Reads the header from the first 16 octets, or `None` when fewer are present.
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        let word = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Some(Header {
            command_length: word(0),
            command_id: CommandId(word(4)),
            command_status: CommandStatus(word(8)),
            sequence_number: word(12),
        })
    }
}
