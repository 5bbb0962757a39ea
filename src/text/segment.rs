//! Choosing a coding, counting, and splitting long messages into parts.
//!
//! The smallest coding that represents the text wins: GSM 7-bit with the default tables, else
//! GSM 7-bit with a national language table the link allows (the UDH then names it), else the
//! fallback (UCS2, or Latin-1 where the link prefers it and the text fits). Part sizes follow
//! from the octets left after the UDH (140 octets of user data per part):
//!
//! | coding | one part | part of many, 8-bit ref | 16-bit ref |
//! |---|---|---|---|
//! | GSM 7-bit | 160 | 153 | 152 |
//! | 8-bit (ASCII, Latin-1, UTF-8) | 140 | 134 | 133 |
//! | UCS2 | 70 | 67 | 66 |
//!
//! A national shift element takes 3 more octets each (GSM 7-bit with one: 155 alone, 150 per
//! part). Parts never split a GSM escape pair, a UTF-16 surrogate pair or a UTF-8 sequence.
//! Long messages are tied together by a UDH concatenation element (8- or 16-bit reference),
//! by the SAR TLVs, or not split at all and sent as one message_payload, as the caller asks.

use super::coding::{encode, Charset, ConvertError, Replacement};
use super::gsm7::{self, Alphabet, Septets, Shift};
use super::udh::{Concat, Element, Udh};

/// Octets of user data in one SMS.
pub const USER_DATA_OCTETS: usize = 140;

/// How the parts of a long message are tied together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concatenation {
    /// UDH IEI 0x00, 8-bit reference (the usual one).
    Udh8,
    /// UDH IEI 0x08, 16-bit reference.
    Udh16,
    /// sar_msg_ref_num, sar_total_segments, sar_segment_seqnum TLVs; no concatenation UDH.
    Sar,
    /// Not split: one message_payload TLV.
    Payload,
}

/// What the link allows.
#[derive(Clone, Debug)]
pub struct SegmentOptions<'a> {
    /// The link's GSM form (`Gsm7` unpacked or `Gsm7Packed`), or `None` if it takes no GSM.
    pub gsm: Option<Charset>,
    /// National languages the link may use, in order of preference (empty: default only).
    pub national: &'a [u8],
    /// Used when GSM cannot represent the text: `Ucs2`, or `Latin1` (falls back to UCS2 when
    /// the text does not fit Latin-1).
    pub fallback: Charset,
    /// What data_coding 0 means on the link.
    pub zero: Charset,
    pub concatenation: Concatenation,
    /// The concatenation reference (its low 8 bits with `Udh8`).
    pub reference: u16,
    /// Most parts allowed (at most 255).
    pub max_parts: u8,
}

impl Default for SegmentOptions<'_> {
    fn default() -> Self {
        SegmentOptions {
            gsm: Some(Charset::Gsm7),
            national: &[],
            fallback: Charset::Ucs2,
            zero: Charset::Gsm7,
            concatenation: Concatenation::Udh8,
            reference: 0,
            max_parts: 255,
        }
    }
}

/// The coding chosen for a text and what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub charset: Charset,
    pub shift: Shift,
    /// Characters in the text.
    pub chars: usize,
    /// Units of the charset: septets (extension characters count two), octets, or UTF-16
    /// code units.
    pub units: usize,
    pub parts: usize,
    /// Units one part holds (the single-message capacity when `parts` is 1).
    pub part_capacity: usize,
}

/// One part, ready for short_message (or message_payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// UDH (if any) followed by the text in the part's charset.
    pub user_data: Vec<u8>,
    /// Set esm_class UDHI (0x40).
    pub udhi: bool,
    /// The SAR values to send as TLVs (with [`Concatenation::Sar`] and more than one part).
    pub sar: Option<Concat>,
    pub data_coding: u8,
    /// Units of text in this part.
    pub units: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    TooManyParts { parts: usize, max: u8 },
    Convert(ConvertError),
}

impl core::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SegmentError::TooManyParts { parts, max } => {
                write!(
                    f,
                    "message needs {parts} parts, more than the {max} allowed"
                )
            }
            SegmentError::Convert(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SegmentError {}

impl From<ConvertError> for SegmentError {
    fn from(e: ConvertError) -> Self {
        SegmentError::Convert(e)
    }
}

/// Units a character takes in a charset, or `None` if it cannot be written.
fn units_of(c: char, charset: Charset, alphabet: Option<&Alphabet>) -> Option<usize> {
    match charset {
        Charset::Gsm7 | Charset::Gsm7Packed => alphabet?.lookup(c).map(Septets::septets),
        Charset::Ascii => ((c as u32) < 0x80).then_some(1),
        Charset::Latin1 => ((c as u32) < 0x100).then_some(1),
        Charset::Ucs2 => Some(c.len_utf16()),
        Charset::Utf8 => Some(c.len_utf8()),
        Charset::Binary => None,
    }
}

/// UDH octets (UDHL included) a part carries.
fn udh_octets(shift: Shift, concat: Concatenation, multipart: bool) -> usize {
    let ies = 3 * (shift.single != 0) as usize
        + 3 * (shift.locking != 0) as usize
        + match (multipart, concat) {
            (true, Concatenation::Udh8) => 5,
            (true, Concatenation::Udh16) => 6,
            _ => 0,
        };
    if ies == 0 {
        0
    } else {
        1 + ies
    }
}

/// Units a part holds.
pub fn part_capacity(
    charset: Charset,
    shift: Shift,
    concat: Concatenation,
    multipart: bool,
) -> usize {
    let udh = udh_octets(shift, concat, multipart);
    match charset {
        Charset::Gsm7 | Charset::Gsm7Packed => 160 - gsm7::udh_septets(udh),
        Charset::Ucs2 => (USER_DATA_OCTETS - udh) / 2,
        _ => USER_DATA_OCTETS - udh,
    }
}

/// Splits `text` into char ranges of at most `capacity` units each; returns (start byte,
/// end byte, units) per part. Characters are never split.
fn split(
    text: &str,
    charset: Charset,
    alphabet: Option<&Alphabet>,
    capacity: usize,
) -> Vec<(usize, usize, usize)> {
    let mut parts = Vec::new();
    let (mut start, mut units) = (0, 0);
    for (i, c) in text.char_indices() {
        let u = units_of(c, charset, alphabet).unwrap_or(1);
        if units + u > capacity && units > 0 {
            parts.push((start, i, units));
            start = i;
            units = 0;
        }
        units += u;
    }
    if units > 0 || parts.is_empty() {
        parts.push((start, text.len(), units));
    }
    parts
}

fn count(text: &str, charset: Charset, shift: Shift) -> Option<usize> {
    let alphabet = if charset.is_gsm() {
        Some(Alphabet::get(shift)?)
    } else {
        None
    };
    text.chars().map(|c| units_of(c, charset, alphabet)).sum()
}

fn plan_for(text: &str, charset: Charset, shift: Shift, opts: &SegmentOptions<'_>) -> Option<Plan> {
    let units = count(text, charset, shift)?;
    Some(plan_with_units(text, charset, shift, units, opts))
}

fn plan_with_units(
    text: &str,
    charset: Charset,
    shift: Shift,
    units: usize,
    opts: &SegmentOptions<'_>,
) -> Plan {
    let single = part_capacity(charset, shift, opts.concatenation, false);
    let (parts, part_capacity) = if opts.concatenation == Concatenation::Payload || units <= single
    {
        (1, single)
    } else {
        let capacity = part_capacity(charset, shift, opts.concatenation, true);
        let alphabet = if charset.is_gsm() {
            Alphabet::get(shift)
        } else {
            None
        };
        (split(text, charset, alphabet, capacity).len(), capacity)
    };
    Plan {
        charset,
        shift,
        chars: text.chars().count(),
        units,
        parts,
        part_capacity,
    }
}

/// Chooses the smallest coding for `text` on a link with these options and counts it: fewest
/// parts, then the smallest header, then the fewest units.
pub fn plan(text: &str, opts: &SegmentOptions<'_>) -> Plan {
    let cost = |p: &Plan| {
        (
            p.parts,
            udh_octets(p.shift, Concatenation::Sar, false),
            p.units,
        )
    };
    let best = |candidates: &mut dyn Iterator<Item = Plan>| candidates.min_by_key(cost);
    let gsm = opts.gsm.and_then(|gsm| {
        plan_for(text, gsm, Shift::DEFAULT, opts).or_else(|| {
            let shifts = opts.national.iter().flat_map(|&lang| {
                [
                    Shift {
                        locking: 0,
                        single: lang,
                    },
                    Shift {
                        locking: lang,
                        single: 0,
                    },
                    Shift {
                        locking: lang,
                        single: lang,
                    },
                ]
            });
            best(&mut shifts.filter_map(|shift| plan_for(text, gsm, shift, opts)))
        })
    });
    gsm.or_else(|| {
        (opts.fallback != Charset::Ucs2 && opts.fallback.is_text())
            .then(|| plan_for(text, opts.fallback, Shift::DEFAULT, opts))
            .flatten()
    })
    .unwrap_or_else(|| ucs2_plan(text, opts))
}

/// UCS2 represents every text.
fn ucs2_plan(text: &str, opts: &SegmentOptions<'_>) -> Plan {
    let units = text.encode_utf16().count();
    plan_with_units(text, Charset::Ucs2, Shift::DEFAULT, units, opts)
}

/// Splits `text` into parts ready to send, in the coding [`plan`] chooses.
pub fn segment(text: &str, opts: &SegmentOptions<'_>) -> Result<(Plan, Vec<Part>), SegmentError> {
    let plan = plan(text, opts);
    if plan.parts > opts.max_parts as usize {
        return Err(SegmentError::TooManyParts {
            parts: plan.parts,
            max: opts.max_parts,
        });
    }
    let data_coding = plan.charset.data_coding(opts.zero);
    let multipart = plan.parts > 1;
    let alphabet = if plan.charset.is_gsm() {
        Alphabet::get(plan.shift)
    } else {
        None
    };
    let ranges = if multipart {
        split(text, plan.charset, alphabet, plan.part_capacity)
    } else {
        vec![(0, text.len(), plan.units)]
    };
    let total = ranges.len() as u8;
    let reference = match opts.concatenation {
        Concatenation::Udh8 => opts.reference & 0xFF,
        _ => opts.reference,
    };
    let mut parts = Vec::with_capacity(ranges.len());
    for (n, (start, end, units)) in ranges.into_iter().enumerate() {
        let concat = Concat {
            reference,
            total,
            seq: n as u8 + 1,
            wide: opts.concatenation == Concatenation::Udh16,
        };
        let mut udh = Udh::for_shift(plan.shift);
        if multipart
            && matches!(
                opts.concatenation,
                Concatenation::Udh8 | Concatenation::Udh16
            )
        {
            udh.elements.insert(0, Element::Concat(concat));
        }
        let mut user_data = udh.to_vec();
        let udh_len = user_data.len();
        // Packed text after a UDH starts on the next septet boundary: pack it here, with the
        // fill bits, rather than in `encode`.
        let pack_after_udh = plan.charset == Charset::Gsm7Packed && udh_len > 0;
        let charset = if pack_after_udh {
            Charset::Gsm7
        } else {
            plan.charset
        };
        let body = encode(&text[start..end], charset, plan.shift, Replacement::Reject)?;
        if pack_after_udh {
            gsm7::pack(&body.bytes, gsm7::fill_bits(udh_len), &mut user_data);
        } else {
            user_data.extend_from_slice(&body.bytes);
        }
        parts.push(Part {
            user_data,
            udhi: udh_len > 0,
            sar: (multipart && opts.concatenation == Concatenation::Sar).then_some(concat),
            data_coding,
            units,
        });
    }
    Ok((plan, parts))
}
