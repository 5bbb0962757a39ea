//! Message text, sans-IO: coding schemes, the user data header, segmentation and reassembly.
//!
//! | file | job |
//! |---|---|
//! | `tables` | the GSM 7-bit tables of TS 23.038: default alphabet, extension, national shifts |
//! | `gsm7` | characters to septets and back; packing with fill bits |
//! | `coding` | charsets, SMPP data_coding, conversion with an explicit replacement policy |
//! | `udh` | the user data header: concatenation, ports, national shifts, unknown elements kept |
//! | `segment` | choosing the smallest coding, counting, splitting into parts |
//! | `reassembly` | joining parts in any order, with a timeout and a memory bound |
//!
//! # Coding rules an operator needs to know
//!
//! **data_coding.** 0 is "the SMSC default alphabet": here GSM 7-bit, one septet per octet
//! (unpacked), unless the link's section says `coding=gsm7-packed`, `ascii`, `latin1` or `utf8`.
//! 1 is ASCII (IA5), 3 Latin-1, 8 UCS2 (UTF-16BE; characters outside the BMP travel as surrogate
//! pairs), 2 and 4 binary. 0xF0-0xFF carry a message class (bits 1-0: 0 flash, 1 ME, 2 SIM,
//! 3 TE) with the default alphabet, or 8-bit data when bit 2 is set; 0xC0-0xDF are message
//! waiting indications in the default alphabet, 0xE0-0xEF in UCS2. Other values (JIS,
//! Cyrillic, Hebrew, pictograms, KS C 5601, reserved) are not converted: such messages pass
//! through unchanged when both ends agree, and are refused otherwise.
//!
//! **GSM 7-bit.** The default alphabet has 128 characters; ten more (`{ } [ ] ~ \ | ^ €` and
//! form feed) take two septets each (escape + code), so a 160-character limit can hold fewer
//! characters. National language tables (UDH 0x24 single shift, 0x25 locking shift) are
//! supported for Turkish (1), Spanish (2, single shift only, as in the standard), Portuguese
//! (3), Bengali (4), Gujarati (5), Hindi (6), Kannada (7), Malayalam (8), Oriya (9), Punjabi
//! (10), Tamil (11), Telugu (12) and Urdu (13); a link lists the ones its handsets accept.
//!
//! **Part sizes.** One SMS carries 140 octets of user data: 160 GSM septets, 140 octets of
//! 8-bit text, or 70 UCS2 units. The concatenation header takes 6 octets (8-bit reference) or
//! 7 (16-bit), leaving 153/152 septets, 134/133 octets, 67/66 UCS2 units per part; each
//! national shift element takes 3 more. Parts never split an escape pair or a surrogate pair.
//!
//! **Conversion never drops a character silently.** A character the target cannot represent
//! either fails the conversion or is replaced by a character the caller chose, and every
//! replacement is reported with its position.

pub mod coding;
pub mod gsm7;
pub mod reassembly;
pub mod segment;
pub mod tables;
pub mod udh;

pub use coding::{
    decode, encode, message_class, transcode, Charset, ConvertError, Decoded, Encoded,
    MessageClass, Replacement, Transcoded, Unrepresentable,
};
pub use gsm7::{Alphabet, Septets, Shift};
pub use reassembly::{
    part_info, Incomplete, MessageKey, Outcome, PartInfo, Reassembler, ReleaseReason,
};
pub use segment::{plan, segment, Concatenation, Part, Plan, SegmentError, SegmentOptions};
pub use udh::{Concat, Element, Udh, UdhError};
