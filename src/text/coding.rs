//! Character sets and the conversion between them.
//!
//! [`Charset`] is what the message bytes are; [`Charset::from_data_coding`] reads SMPP's
//! `data_coding` octet, given what the link says data_coding 0 means (GSM 7-bit unpacked by
//! default; packed, ASCII, Latin-1 or UTF-8 where the link's section says so).
//!
//! Conversion never loses a character silently: [`encode`] either fails on the first character
//! the target cannot represent ([`Replacement::Reject`]) or writes the caller's replacement and
//! lists every position it replaced ([`Replacement::With`]). [`decode`] writes U+FFFD for input
//! that is not valid in its charset and counts it.

use super::gsm7::{self, Alphabet, Shift};

/// What message bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Charset {
    /// GSM 7-bit, one septet per octet (the usual SMPP form of data_coding 0).
    Gsm7,
    /// GSM 7-bit packed, eight septets in seven octets.
    Gsm7Packed,
    /// IA5 / ASCII (data_coding 1).
    Ascii,
    /// ISO-8859-1 (data_coding 3).
    Latin1,
    /// UCS2, sent as UTF-16BE with surrogate pairs (data_coding 8).
    Ucs2,
    /// UTF-8, only where a link declares it for data_coding 0.
    Utf8,
    /// Octets, not text (data_coding 2, 4, and class codings with bit 2 set).
    Binary,
}

/// The message class of data_coding 0xF0-0xFF (bits 1-0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageClass {
    /// Class 0: flash, shown and not stored.
    Flash,
    /// Class 1: ME-specific.
    Me,
    /// Class 2: SIM-specific.
    Sim,
    /// Class 3: TE-specific.
    Te,
}

impl Charset {
    /// How `data_coding` reads. `zero` is what the link says 0 means. `None` for codings we do
    /// not convert (JIS, Cyrillic, Hebrew, pictogram, KS C 5601, reserved values): such
    /// messages pass through untouched or are refused, never mangled.
    pub fn from_data_coding(data_coding: u8, zero: Charset) -> Option<Charset> {
        Some(match data_coding {
            0x00 => zero,
            0x01 => Charset::Ascii,
            0x02 | 0x04 => Charset::Binary,
            0x03 => Charset::Latin1,
            0x08 => Charset::Ucs2,
            // Message waiting indication groups: default alphabet (discard, store) or UCS2.
            0xC0..=0xDF => gsm_form(zero),
            0xE0..=0xEF => Charset::Ucs2,
            // Message class group: bit 2 selects 8-bit data, otherwise the default alphabet.
            0xF0..=0xFF if data_coding & 0x04 != 0 => Charset::Binary,
            0xF0..=0xFF => gsm_form(zero),
            _ => return None,
        })
    }

    /// The data_coding to send this charset with on a link where 0 means `zero`.
    pub fn data_coding(self, zero: Charset) -> u8 {
        match self {
            c if c == zero => 0x00,
            Charset::Gsm7 | Charset::Gsm7Packed | Charset::Utf8 => 0x00,
            Charset::Ascii => 0x01,
            Charset::Latin1 => 0x03,
            Charset::Ucs2 => 0x08,
            Charset::Binary => 0x04,
        }
    }

    pub const fn is_gsm(self) -> bool {
        matches!(self, Charset::Gsm7 | Charset::Gsm7Packed)
    }

    pub const fn is_text(self) -> bool {
        !matches!(self, Charset::Binary)
    }

    /// The configuration word for this charset (`coding=` in the link sections).
    pub const fn name(self) -> &'static str {
        match self {
            Charset::Gsm7 => "gsm7",
            Charset::Gsm7Packed => "gsm7-packed",
            Charset::Ascii => "ascii",
            Charset::Latin1 => "latin1",
            Charset::Ucs2 => "ucs2",
            Charset::Utf8 => "utf8",
            Charset::Binary => "binary",
        }
    }

    pub fn from_name(s: &str) -> Option<Charset> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "gsm7" | "gsm" | "gsm7-unpacked" | "default" => Charset::Gsm7,
            "gsm7-packed" | "gsm-packed" | "packed" => Charset::Gsm7Packed,
            "ascii" | "ia5" => Charset::Ascii,
            "latin1" | "latin-1" | "iso-8859-1" => Charset::Latin1,
            "ucs2" | "ucs-2" | "utf-16be" => Charset::Ucs2,
            "utf8" | "utf-8" => Charset::Utf8,
            "binary" | "8bit" => Charset::Binary,
            _ => return None,
        })
    }
}

fn gsm_form(zero: Charset) -> Charset {
    if zero == Charset::Gsm7Packed {
        Charset::Gsm7Packed
    } else {
        Charset::Gsm7
    }
}

/// The message class of a data_coding, when it states one.
pub fn message_class(data_coding: u8) -> Option<MessageClass> {
    (data_coding & 0xF0 == 0xF0).then_some(match data_coding & 0x03 {
        0 => MessageClass::Flash,
        1 => MessageClass::Me,
        2 => MessageClass::Sim,
        _ => MessageClass::Te,
    })
}

/// What to do with a character the target charset cannot represent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replacement {
    /// Fail the conversion, naming the character.
    Reject,
    /// Write this character instead (it must itself be representable; `?` always is) and
    /// report the position.
    With(char),
}

/// A character that could not be represented: its index in the text (in chars) and itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unrepresentable {
    pub index: usize,
    pub ch: char,
}

/// Why a conversion failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvertError {
    /// Under [`Replacement::Reject`]: the first character the charset cannot represent.
    Unrepresentable {
        charset: Charset,
        at: Unrepresentable,
    },
    /// The replacement character cannot be represented either.
    BadReplacement { charset: Charset, ch: char },
    /// Binary data is not text.
    NotText,
    /// A national language identifier this build has no tables for.
    UnknownLanguage(Shift),
}

impl core::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConvertError::Unrepresentable { charset, at } => write!(
                f,
                "character {:?} (U+{:04X}) at position {} cannot be written in {}",
                at.ch,
                at.ch as u32,
                at.index,
                charset.name()
            ),
            ConvertError::BadReplacement { charset, ch } => write!(
                f,
                "replacement character {ch:?} cannot be written in {}",
                charset.name()
            ),
            ConvertError::NotText => f.write_str("binary data is not text"),
            ConvertError::UnknownLanguage(s) => write!(
                f,
                "no GSM national language tables for locking {} / single {}",
                s.locking, s.single
            ),
        }
    }
}

impl std::error::Error for ConvertError {}

/// Encoded text and what had to be replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// Units of the charset written: septets for GSM (before packing), octets for ASCII,
    /// Latin-1 and UTF-8, UTF-16 code units for UCS2.
    pub units: usize,
    pub replaced: Vec<Unrepresentable>,
}

/// Encodes `text`. `shift` selects GSM national tables (ignored by other charsets).
pub fn encode(
    text: &str,
    charset: Charset,
    shift: Shift,
    policy: Replacement,
) -> Result<Encoded, ConvertError> {
    let mut e = Encoded {
        bytes: Vec::with_capacity(text.len()),
        ..Encoded::default()
    };
    let replace = |index: usize, ch: char, e: &mut Encoded| match policy {
        Replacement::Reject => Err(ConvertError::Unrepresentable {
            charset,
            at: Unrepresentable { index, ch },
        }),
        Replacement::With(r) => {
            e.replaced.push(Unrepresentable { index, ch });
            Ok(r)
        }
    };
    let bad_replacement = |ch| ConvertError::BadReplacement { charset, ch };
    match charset {
        Charset::Gsm7 | Charset::Gsm7Packed => {
            let a = Alphabet::get(shift).ok_or(ConvertError::UnknownLanguage(shift))?;
            for (i, c) in text.chars().enumerate() {
                if !a.push(c, &mut e.bytes) {
                    let r = replace(i, c, &mut e)?;
                    if !a.push(r, &mut e.bytes) {
                        return Err(bad_replacement(r));
                    }
                }
            }
            e.units = e.bytes.len();
            if charset == Charset::Gsm7Packed {
                let septets = std::mem::take(&mut e.bytes);
                gsm7::pack(&septets, 0, &mut e.bytes);
            }
        }
        Charset::Ascii | Charset::Latin1 => {
            let limit = if charset == Charset::Ascii {
                0x80
            } else {
                0x100
            };
            for (i, c) in text.chars().enumerate() {
                let c = if (c as u32) < limit {
                    c
                } else {
                    let r = replace(i, c, &mut e)?;
                    if (r as u32) >= limit {
                        return Err(bad_replacement(r));
                    }
                    r
                };
                e.bytes.push(c as u8);
            }
            e.units = e.bytes.len();
        }
        Charset::Ucs2 => {
            for u in text.encode_utf16() {
                e.bytes.extend_from_slice(&u.to_be_bytes());
            }
            e.units = e.bytes.len() / 2;
        }
        Charset::Utf8 => {
            e.bytes.extend_from_slice(text.as_bytes());
            e.units = e.bytes.len();
        }
        Charset::Binary => return Err(ConvertError::NotText),
    }
    Ok(e)
}

/// Decoded text and how many input units were invalid (each became U+FFFD).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    pub invalid: usize,
}

/// Decodes message bytes (without UDH). For packed GSM, `bytes` start on a septet boundary.
pub fn decode(bytes: &[u8], charset: Charset, shift: Shift) -> Result<Decoded, ConvertError> {
    let mut d = Decoded {
        text: String::with_capacity(bytes.len()),
        invalid: 0,
    };
    match charset {
        Charset::Gsm7 => {
            let a = Alphabet::get(shift).ok_or(ConvertError::UnknownLanguage(shift))?;
            d.invalid = a.decode(bytes, &mut d.text);
        }
        Charset::Gsm7Packed => {
            let a = Alphabet::get(shift).ok_or(ConvertError::UnknownLanguage(shift))?;
            let mut septets = Vec::with_capacity(bytes.len() * 8 / 7);
            gsm7::unpack(bytes, 0, None, &mut septets);
            d.invalid = a.decode(&septets, &mut d.text);
        }
        Charset::Ascii => {
            for &b in bytes {
                if b < 0x80 {
                    d.text.push(b as char);
                } else {
                    d.invalid += 1;
                    d.text.push('\u{FFFD}');
                }
            }
        }
        Charset::Latin1 => d.text.extend(bytes.iter().map(|&b| b as char)),
        Charset::Ucs2 => {
            let whole = bytes.len() & !1;
            let units = bytes[..whole]
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]));
            for r in char::decode_utf16(units) {
                match r {
                    Ok(c) => d.text.push(c),
                    Err(_) => {
                        d.invalid += 1;
                        d.text.push('\u{FFFD}');
                    }
                }
            }
            if whole < bytes.len() {
                // A last unit with only one octet.
                d.invalid += 1;
                d.text.push('\u{FFFD}');
            }
        }
        Charset::Utf8 => {
            for chunk in bytes.utf8_chunks() {
                d.text.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    d.invalid += 1;
                    d.text.push('\u{FFFD}');
                }
            }
        }
        Charset::Binary => return Err(ConvertError::NotText),
    }
    Ok(d)
}

/// The result of a conversion between charsets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcoded {
    pub encoded: Encoded,
    /// Input units that were not valid in the source charset.
    pub invalid_input: usize,
}

/// Converts message bytes from one charset to another (same charset and tables: returned as
/// they are). Invalid input becomes U+FFFD, which the target then treats like any other
/// character (replaced per `policy`, or rejected).
pub fn transcode(
    bytes: &[u8],
    from: (Charset, Shift),
    to: (Charset, Shift),
    policy: Replacement,
) -> Result<Transcoded, ConvertError> {
    if from == to {
        return Ok(Transcoded {
            encoded: Encoded {
                bytes: bytes.to_vec(),
                units: match from.0 {
                    Charset::Ucs2 => bytes.len() / 2,
                    Charset::Gsm7Packed => bytes.len() * 8 / 7,
                    _ => bytes.len(),
                },
                replaced: Vec::new(),
            },
            invalid_input: 0,
        });
    }
    let d = decode(bytes, from.0, from.1)?;
    let encoded = encode(&d.text, to.0, to.1, policy)?;
    Ok(Transcoded {
        encoded,
        invalid_input: d.invalid,
    })
}
