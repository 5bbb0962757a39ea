//! User Data Header (3GPP TS 23.040 9.2.3.24): the header at the front of the user data when
//! esm_class has UDHI (0x40) set.
//!
//! Layout: UDHL (octets that follow), then information elements `IEI, IEDL, data`. We read and
//! write concatenation (0x00 with an 8-bit reference, 0x08 with a 16-bit one), application port
//! addressing (0x04 8-bit, 0x05 16-bit) and the national language shifts (0x24 single, 0x25
//! locking). Every other element, and a known one whose values are invalid (23.040 says to
//! ignore those), is kept as [`Element::Other`] and written back unchanged.

use smallvec::SmallVec;

use super::gsm7::Shift;

pub const IEI_CONCAT_8: u8 = 0x00;
pub const IEI_PORTS_8: u8 = 0x04;
pub const IEI_PORTS_16: u8 = 0x05;
pub const IEI_CONCAT_16: u8 = 0x08;
pub const IEI_SINGLE_SHIFT: u8 = 0x24;
pub const IEI_LOCKING_SHIFT: u8 = 0x25;

/// Concatenation: this part's place in a long message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Concat {
    /// Same for every part of one message (0..=255 with an 8-bit reference).
    pub reference: u16,
    /// Parts in the message, 1..=255.
    pub total: u8,
    /// This part's number, 1..=total.
    pub seq: u8,
    /// True for IEI 0x08 (16-bit reference), false for 0x00.
    pub wide: bool,
}

/// One information element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    Concat(Concat),
    /// Application ports; `wide` for IEI 0x05 (16-bit), else 0x04 (8-bit).
    Ports {
        dest: u16,
        source: u16,
        wide: bool,
    },
    /// National language single shift table (IEI 0x24).
    SingleShift(u8),
    /// National language locking shift table (IEI 0x25).
    LockingShift(u8),
    /// Anything else, kept as sent.
    Other {
        iei: u8,
        data: SmallVec<[u8; 8]>,
    },
}

impl Element {
    fn encoded_len(&self) -> usize {
        2 + match self {
            Element::Concat(c) => 3 + c.wide as usize,
            Element::Ports { wide, .. } => 2 + 2 * *wide as usize,
            Element::SingleShift(_) | Element::LockingShift(_) => 1,
            Element::Other { data, .. } => data.len(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Element::Concat(c) if c.wide => {
                let r = c.reference.to_be_bytes();
                out.extend_from_slice(&[IEI_CONCAT_16, 4, r[0], r[1], c.total, c.seq]);
            }
            Element::Concat(c) => {
                out.extend_from_slice(&[IEI_CONCAT_8, 3, c.reference as u8, c.total, c.seq]);
            }
            Element::Ports {
                dest,
                source,
                wide: true,
            } => {
                let (d, s) = (dest.to_be_bytes(), source.to_be_bytes());
                out.extend_from_slice(&[IEI_PORTS_16, 4, d[0], d[1], s[0], s[1]]);
            }
            Element::Ports { dest, source, .. } => {
                out.extend_from_slice(&[IEI_PORTS_8, 2, *dest as u8, *source as u8]);
            }
            Element::SingleShift(l) => out.extend_from_slice(&[IEI_SINGLE_SHIFT, 1, *l]),
            Element::LockingShift(l) => out.extend_from_slice(&[IEI_LOCKING_SHIFT, 1, *l]),
            Element::Other { iei, data } => {
                out.push(*iei);
                out.push(data.len() as u8);
                out.extend_from_slice(data);
            }
        }
    }

    fn parse(iei: u8, d: &[u8]) -> Element {
        let concat_ok = |total: u8, seq: u8| total >= 1 && seq >= 1 && seq <= total;
        match (iei, d) {
            (IEI_CONCAT_8, &[r, total, seq]) if concat_ok(total, seq) => Element::Concat(Concat {
                reference: r as u16,
                total,
                seq,
                wide: false,
            }),
            (IEI_CONCAT_16, &[a, b, total, seq]) if concat_ok(total, seq) => {
                Element::Concat(Concat {
                    reference: u16::from_be_bytes([a, b]),
                    total,
                    seq,
                    wide: true,
                })
            }
            (IEI_PORTS_8, &[dst, src]) => Element::Ports {
                dest: dst as u16,
                source: src as u16,
                wide: false,
            },
            (IEI_PORTS_16, &[a, b, c, e]) => Element::Ports {
                dest: u16::from_be_bytes([a, b]),
                source: u16::from_be_bytes([c, e]),
                wide: true,
            },
            (IEI_SINGLE_SHIFT, &[l]) => Element::SingleShift(l),
            (IEI_LOCKING_SHIFT, &[l]) => Element::LockingShift(l),
            _ => Element::Other {
                iei,
                data: SmallVec::from_slice(d),
            },
        }
    }
}

/// Why a UDH could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdhError {
    /// UDHI is set but the user data is empty.
    Missing,
    /// UDHL says more octets than the user data has.
    LengthPastEnd { udhl: u8, available: usize },
    /// An element's length runs past the end of the header.
    ElementPastEnd { iei: u8 },
}

impl core::fmt::Display for UdhError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UdhError::Missing => f.write_str("UDHI set but no user data header"),
            UdhError::LengthPastEnd { udhl, available } => write!(
                f,
                "UDHL {udhl} runs past the end of the user data ({available} octets follow)"
            ),
            UdhError::ElementPastEnd { iei } => {
                write!(f, "UDH element 0x{iei:02X} runs past the end of the header")
            }
        }
    }
}

impl std::error::Error for UdhError {}

/// A parsed user data header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Udh {
    pub elements: SmallVec<[Element; 3]>,
}

impl Udh {
    pub fn new() -> Udh {
        Udh::default()
    }

    /// Reads the header at the front of `user_data`. Returns it and the octets it takes
    /// (UDHL included), which is where the text starts.
    pub fn parse(user_data: &[u8]) -> Result<(Udh, usize), UdhError> {
        let (&udhl, rest) = user_data.split_first().ok_or(UdhError::Missing)?;
        let body = rest.get(..udhl as usize).ok_or(UdhError::LengthPastEnd {
            udhl,
            available: rest.len(),
        })?;
        let mut udh = Udh::new();
        let mut i = 0;
        while i < body.len() {
            let iei = body[i];
            let len = *body.get(i + 1).ok_or(UdhError::ElementPastEnd { iei })? as usize;
            let data = body
                .get(i + 2..i + 2 + len)
                .ok_or(UdhError::ElementPastEnd { iei })?;
            udh.elements.push(Element::parse(iei, data));
            i += 2 + len;
        }
        Ok((udh, 1 + udhl as usize))
    }

    /// Octets this header takes, UDHL included (0 when it has no elements).
    pub fn encoded_len(&self) -> usize {
        match self.elements.len() {
            0 => 0,
            _ => {
                1 + self
                    .elements
                    .iter()
                    .map(Element::encoded_len)
                    .sum::<usize>()
            }
        }
    }

    /// Appends UDHL and the elements (nothing when there are no elements).
    pub fn write(&self, out: &mut Vec<u8>) {
        let len = self.encoded_len();
        if len == 0 {
            return;
        }
        out.push((len - 1) as u8);
        for e in &self.elements {
            e.write(out);
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.write(&mut v);
        v
    }

    /// The concatenation element, if any.
    pub fn concat(&self) -> Option<Concat> {
        self.elements.iter().find_map(|e| match e {
            Element::Concat(c) => Some(*c),
            _ => None,
        })
    }

    /// The national language tables the header selects.
    pub fn shift(&self) -> Shift {
        let mut s = Shift::DEFAULT;
        for e in &self.elements {
            match e {
                Element::SingleShift(l) => s.single = *l,
                Element::LockingShift(l) => s.locking = *l,
                _ => {}
            }
        }
        s
    }

    /// The header a message with these tables needs (empty for the default tables).
    pub fn for_shift(shift: Shift) -> Udh {
        let mut u = Udh::new();
        if shift.single != 0 {
            u.elements.push(Element::SingleShift(shift.single));
        }
        if shift.locking != 0 {
            u.elements.push(Element::LockingShift(shift.locking));
        }
        u
    }
}
