//! GSM 7-bit text (3GPP TS 23.038): characters to septets and back, with the default alphabet
//! or a national language's locking and single shift tables, and the packing of septets into
//! octets (LSB first, with fill bits after a UDH).
//!
//! An [`Alphabet`] is the pair of tables in force: the locking table gives the one-septet
//! characters, the single shift table the two-septet ones (ESC 0x1B then a code). The default
//! pair is the default alphabet and its extension table (`{ } [ ] ~ \ | ^ €` and form feed).
//! A message switches tables with UDH elements 0x25 (locking) and 0x24 (single shift).
//!
//! Rules this module keeps, because handsets and SMSCs get them wrong:
//! - an extension character costs two septets and its pair is never split;
//! - an unknown escape pair decodes as the base character (23.038 6.2.1.1); ESC ESC and a
//!   trailing ESC decode as a space;
//! - when packed text leaves exactly seven spare bits in its last octet, they hold CR (0x0D),
//!   so that the receiver does not read an extra `@`; unpacking drops that CR.

use std::sync::OnceLock;

use super::tables::{NationalLanguage, DEFAULT_ALPHABET, DEFAULT_EXTENSION, NATIONAL_LANGUAGES};

/// The escape septet that introduces a single shift (extension) character.
pub const ESC: u8 = 0x1B;
/// The septet that pads seven spare bits at the end of packed text.
pub const CR: u8 = 0x0D;

/// Which tables are in force: national language identifiers (0 = the default tables).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shift {
    /// Locking shift table (UDH IEI 0x25).
    pub locking: u8,
    /// Single shift table (UDH IEI 0x24).
    pub single: u8,
}

impl Shift {
    pub const DEFAULT: Shift = Shift {
        locking: 0,
        single: 0,
    };

    /// True when a national table is used (the UDH must then say which).
    pub const fn is_national(self) -> bool {
        self.locking != 0 || self.single != 0
    }
}

/// The national languages this build knows: identifier and name.
pub fn national_languages() -> impl Iterator<Item = (u8, &'static str)> {
    NATIONAL_LANGUAGES.iter().map(|l| (l.id, l.name))
}

fn language(id: u8) -> Option<&'static NationalLanguage> {
    NATIONAL_LANGUAGES.iter().find(|l| l.id == id)
}

/// How a character is written in septets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Septets {
    /// One septet from the locking (base) table.
    One(u8),
    /// ESC and this code from the single shift table.
    Two(u8),
}

impl Septets {
    pub const fn septets(self) -> usize {
        match self {
            Septets::One(_) => 1,
            Septets::Two(_) => 2,
        }
    }
}

/// A pair of tables with its reverse index, built once per pair and shared.
pub struct Alphabet {
    shift: Shift,
    base: &'static [char; 128],
    ext: &'static [(u8, char)],
    /// Characters sorted for lookup: (char, septets).
    index: Vec<(char, Septets)>,
    /// Fast path for U+0000..U+00FF: septet + 1 (0 = not there), with bit 8 for "escaped".
    latin: [u16; 256],
}

const LANGS: usize = 14;
static ALPHABETS: [[OnceLock<Option<Alphabet>>; LANGS]; LANGS] =
    [const { [const { OnceLock::new() }; LANGS] }; LANGS];

impl Alphabet {
    /// The default alphabet and extension table.
    pub fn default_tables() -> &'static Alphabet {
        Alphabet::get(Shift::DEFAULT).unwrap_or_else(|| unreachable!("default tables exist"))
    }

    /// The tables for this shift, or `None` when a language id is unknown. A language with
    /// no locking table (Spanish) keeps the default alphabet as its locking table.
    pub fn get(shift: Shift) -> Option<&'static Alphabet> {
        let (l, s) = (shift.locking as usize, shift.single as usize);
        if l >= LANGS || s >= LANGS {
            return None;
        }
        ALPHABETS[l][s]
            .get_or_init(|| Alphabet::build(shift))
            .as_ref()
    }

    fn build(shift: Shift) -> Option<Alphabet> {
        let base = match shift.locking {
            0 => &DEFAULT_ALPHABET,
            id => language(id)?.locking.unwrap_or(&DEFAULT_ALPHABET),
        };
        let ext = match shift.single {
            0 => DEFAULT_EXTENSION,
            id => language(id)?.single,
        };
        let mut index: Vec<(char, Septets)> = Vec::with_capacity(128 + ext.len());
        // Extension first, base second: a character in both is written with one septet.
        for &(code, c) in ext {
            index.push((c, Septets::Two(code)));
        }
        for (code, &c) in base.iter().enumerate() {
            if code as u8 != ESC && c != '\0' {
                index.push((c, Septets::One(code as u8)));
            }
        }
        // Stable sort keeps, for a duplicated character, the later (base) entry last; dedup
        // keeps the first of equal keys, so reverse to prefer the base table.
        index.reverse();
        index.sort_by_key(|e| e.0);
        index.dedup_by_key(|e| e.0);
        let mut latin = [0u16; 256];
        for &(c, s) in &index {
            if (c as u32) < 256 {
                latin[c as usize] = match s {
                    Septets::One(x) => x as u16 + 1,
                    Septets::Two(x) => 0x100 | (x as u16 + 1),
                };
            }
        }
        Some(Alphabet {
            shift,
            base,
            ext,
            index,
            latin,
        })
    }

    pub fn shift(&self) -> Shift {
        self.shift
    }

    /// How `c` is written, or `None` when these tables cannot represent it.
    #[inline]
    pub fn lookup(&self, c: char) -> Option<Septets> {
        if (c as u32) < 256 {
            let v = self.latin[c as usize];
            return match v {
                0 => None,
                v if v & 0x100 != 0 => Some(Septets::Two((v & 0xFF) as u8 - 1)),
                v => Some(Septets::One(v as u8 - 1)),
            };
        }
        self.index
            .binary_search_by_key(&c, |e| e.0)
            .ok()
            .map(|i| self.index[i].1)
    }

    /// The character of a base-table septet (`None` for ESC and unassigned positions).
    #[inline]
    pub fn base_char(&self, septet: u8) -> Option<char> {
        match self.base.get(septet as usize) {
            Some(&c) if septet != ESC && c != '\0' => Some(c),
            _ => None,
        }
    }

    /// The character of an escaped septet (`None` if the single shift table has none).
    pub fn ext_char(&self, code: u8) -> Option<char> {
        self.ext
            .binary_search_by_key(&code, |e| e.0)
            .ok()
            .map(|i| self.ext[i].1)
    }

    /// Septets `text` takes, or the first character (char index, char) it cannot write.
    pub fn count(&self, text: &str) -> Result<usize, (usize, char)> {
        let mut n = 0;
        for (i, c) in text.chars().enumerate() {
            n += self.lookup(c).ok_or((i, c))?.septets();
        }
        Ok(n)
    }

    /// Appends the septets of `c` (one per octet, unpacked). False if unrepresentable.
    #[inline]
    pub fn push(&self, c: char, out: &mut Vec<u8>) -> bool {
        match self.lookup(c) {
            Some(Septets::One(s)) => out.push(s),
            Some(Septets::Two(s)) => out.extend_from_slice(&[ESC, s]),
            None => return false,
        }
        true
    }

    /// Decodes unpacked septets. Returns the text and the number of septets that had no
    /// character (unassigned positions or values over 0x7F), each written as U+FFFD.
    pub fn decode(&self, septets: &[u8], out: &mut String) -> usize {
        let mut bad = 0;
        let mut it = septets.iter().copied();
        while let Some(s) = it.next() {
            if s == ESC {
                match it.next() {
                    None | Some(ESC) => out.push(' '),
                    Some(code) => match self.ext_char(code).or_else(|| self.base_char(code)) {
                        Some(c) => out.push(c),
                        None => {
                            bad += 1;
                            out.push('\u{FFFD}');
                        }
                    },
                }
            } else {
                match self.base_char(s) {
                    Some(c) => out.push(c),
                    None => {
                        bad += 1;
                        out.push('\u{FFFD}');
                    }
                }
            }
        }
        bad
    }
}

/// Fill bits needed after a UDH of `udh_octets` octets (UDHL included) so that text starts on
/// a septet boundary.
pub const fn fill_bits(udh_octets: usize) -> u8 {
    ((7 - (8 * udh_octets) % 7) % 7) as u8
}

/// Septets a UDH of `udh_octets` octets occupies in a packed message (with its fill bits).
pub const fn udh_septets(udh_octets: usize) -> usize {
    (8 * udh_octets).div_ceil(7)
}

/// Packs septets LSB first after `fill` zero bits (0..=6) and appends
/// `ceil((fill + 7n) / 8)` octets. Seven spare bits at the end hold CR; a text that ends with
/// its own CR exactly on an octet boundary gets a second CR, as 23.038 6.1.2.3.1 says, so that
/// the receiver cannot take the wanted CR for padding.
pub fn pack(septets: &[u8], fill: u8, out: &mut Vec<u8>) {
    let fill = (fill % 8) as usize;
    let extra_cr = septets.last() == Some(&CR) && (fill + 7 * septets.len()) % 8 == 0;
    let n = septets.len() + extra_cr as usize;
    let mut acc: u32 = 0;
    let mut bits = fill as u32;
    out.reserve((fill + 7 * n).div_ceil(8));
    let all = septets.iter().copied().chain(extra_cr.then_some(CR));
    for s in all {
        acc |= ((s & 0x7F) as u32) << bits;
        bits += 7;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        if bits == 1 {
            acc |= (CR as u32) << 1;
        }
        out.push(acc as u8);
    }
}

/// Unpacks octets into septets, skipping `fill` bits first. With `count` (the septet count
/// when the carrier states it), at most that many; without, every whole septet, less a final
/// CR that only fills seven spare bits.
pub fn unpack(octets: &[u8], fill: u8, count: Option<usize>, out: &mut Vec<u8>) {
    let total = octets.len() * 8;
    let fill = (fill % 8) as usize;
    let whole = total.saturating_sub(fill) / 7;
    let n = count.map_or(whole, |c| c.min(whole));
    out.reserve(n);
    for i in 0..n {
        let bit = fill + 7 * i;
        let lo = octets.get(bit / 8).copied().unwrap_or(0) as u16;
        let hi = octets.get(bit / 8 + 1).copied().unwrap_or(0) as u16;
        out.push(((hi << 8 | lo) >> (bit % 8)) as u8 & 0x7F);
    }
    if count.is_none() && n > 0 && fill + 7 * n == total && out.last() == Some(&CR) {
        out.pop();
    }
}
