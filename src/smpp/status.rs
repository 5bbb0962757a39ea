//! `command_status`: the SMPP error codes of 3.4 and 5.0, with names and meanings.
//!
//! The status is a newtype over the raw `u32`, not a closed enum, because peers send codes we
//! have never heard of (vendor range 0x400-0x4FF, reserved values) and a gateway must carry
//! them through unchanged. Names and descriptions come from one table, [`STATUS_TABLE`], so
//! there is exactly one place that knows what a code means.

use core::fmt;

/// An SMPP `command_status` value. Any `u32` is representable; unknown codes survive
/// decode and re-encode.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CommandStatus(pub u32);

macro_rules! statuses {
    ($( $konst:ident = $code:literal, $name:literal, $desc:literal; )*) => {
        impl CommandStatus {
            $( #[doc = $desc] pub const $konst: CommandStatus = CommandStatus($code); )*
        }
        /// Every defined status: (code, name with the `ESME_` prefix, meaning).
        pub const STATUS_TABLE: &[(u32, &str, &str)] = &[ $( ($code, $name, $desc), )* ];
    };
}

statuses! {
    ROK = 0x00, "ESME_ROK", "No error";
    RINVMSGLEN = 0x01, "ESME_RINVMSGLEN", "Message length is invalid";
    RINVCMDLEN = 0x02, "ESME_RINVCMDLEN", "Command length is invalid";
    RINVCMDID = 0x03, "ESME_RINVCMDID", "Invalid command ID";
    RINVBNDSTS = 0x04, "ESME_RINVBNDSTS", "Incorrect bind status for given command";
    RALYBND = 0x05, "ESME_RALYBND", "ESME already in bound state";
    RINVPRTFLG = 0x06, "ESME_RINVPRTFLG", "Invalid priority flag";
    RINVREGDLVFLG = 0x07, "ESME_RINVREGDLVFLG", "Invalid registered delivery flag";
    RSYSERR = 0x08, "ESME_RSYSERR", "System error";
    RINVSRCADR = 0x0A, "ESME_RINVSRCADR", "Invalid source address";
    RINVDSTADR = 0x0B, "ESME_RINVDSTADR", "Invalid destination address";
    RINVMSGID = 0x0C, "ESME_RINVMSGID", "Message ID is invalid";
    RBINDFAIL = 0x0D, "ESME_RBINDFAIL", "Bind failed";
    RINVPASWD = 0x0E, "ESME_RINVPASWD", "Invalid password";
    RINVSYSID = 0x0F, "ESME_RINVSYSID", "Invalid system ID";
    RCANCELFAIL = 0x11, "ESME_RCANCELFAIL", "cancel_sm failed";
    RREPLACEFAIL = 0x13, "ESME_RREPLACEFAIL", "replace_sm failed";
    RMSGQFUL = 0x14, "ESME_RMSGQFUL", "Message queue full";
    RINVSERTYP = 0x15, "ESME_RINVSERTYP", "Invalid service type";
    RINVNUMDESTS = 0x33, "ESME_RINVNUMDESTS", "Invalid number of destinations";
    RINVDLNAME = 0x34, "ESME_RINVDLNAME", "Invalid distribution list name";
    RINVDESTFLAG = 0x40, "ESME_RINVDESTFLAG", "Destination flag is invalid (submit_multi)";
    RINVSUBREP = 0x42, "ESME_RINVSUBREP", "Invalid submit with replace request";
    RINVESMCLASS = 0x43, "ESME_RINVESMCLASS", "Invalid esm_class field data";
    RCNTSUBDL = 0x44, "ESME_RCNTSUBDL", "Cannot submit to distribution list";
    RSUBMITFAIL = 0x45, "ESME_RSUBMITFAIL", "submit_sm or submit_multi failed";
    RINVSRCTON = 0x48, "ESME_RINVSRCTON", "Invalid source address TON";
    RINVSRCNPI = 0x49, "ESME_RINVSRCNPI", "Invalid source address NPI";
    RINVDSTTON = 0x50, "ESME_RINVDSTTON", "Invalid destination address TON";
    RINVDSTNPI = 0x51, "ESME_RINVDSTNPI", "Invalid destination address NPI";
    RINVSYSTYP = 0x53, "ESME_RINVSYSTYP", "Invalid system_type field";
    RINVREPFLAG = 0x54, "ESME_RINVREPFLAG", "Invalid replace_if_present flag";
    RINVNUMMSGS = 0x55, "ESME_RINVNUMMSGS", "Invalid number of messages";
    RTHROTTLED = 0x58, "ESME_RTHROTTLED", "Throttling error (ESME has exceeded allowed message limits)";
    RINVSCHED = 0x61, "ESME_RINVSCHED", "Invalid scheduled delivery time";
    RINVEXPIRY = 0x62, "ESME_RINVEXPIRY", "Invalid message validity period (expiry time)";
    RINVDFTMSGID = 0x63, "ESME_RINVDFTMSGID", "Predefined message invalid or not found";
    RX_T_APPN = 0x64, "ESME_RX_T_APPN", "ESME receiver temporary application error";
    RX_P_APPN = 0x65, "ESME_RX_P_APPN", "ESME receiver permanent application error";
    RX_R_APPN = 0x66, "ESME_RX_R_APPN", "ESME receiver reject message error";
    RQUERYFAIL = 0x67, "ESME_RQUERYFAIL", "query_sm request failed";
    RINVTLVSTREAM = 0xC0, "ESME_RINVTLVSTREAM", "Error in the optional part of the PDU body (RINVOPTPARSTREAM in 3.4)";
    RTLVNOTALLWD = 0xC1, "ESME_RTLVNOTALLWD", "Optional parameter not allowed (ROPTPARNOTALLWD in 3.4)";
    RINVPARLEN = 0xC2, "ESME_RINVPARLEN", "Invalid parameter length (RINVTLVLEN in 5.0)";
    RMISSINGTLV = 0xC3, "ESME_RMISSINGTLV", "Expected optional parameter missing (RMISSINGOPTPARAM in 3.4)";
    RINVTLVVAL = 0xC4, "ESME_RINVTLVVAL", "Invalid optional parameter value (RINVOPTPARAMVAL in 3.4)";
    RDELIVERYFAILURE = 0xFE, "ESME_RDELIVERYFAILURE", "Delivery failure (used for data_sm_resp)";
    RUNKNOWNERR = 0xFF, "ESME_RUNKNOWNERR", "Unknown error";
    RSERTYPUNAUTH = 0x100, "ESME_RSERTYPUNAUTH", "ESME not authorised to use specified service_type (5.0)";
    RPROHIBITED = 0x101, "ESME_RPROHIBITED", "ESME prohibited from using specified operation (5.0)";
    RSERTYPUNAVAIL = 0x102, "ESME_RSERTYPUNAVAIL", "Specified service_type is unavailable (5.0)";
    RSERTYPDENIED = 0x103, "ESME_RSERTYPDENIED", "Specified service_type is denied (5.0)";
    RINVDCS = 0x104, "ESME_RINVDCS", "Invalid data coding scheme (5.0)";
    RINVSRCADDRSUBUNIT = 0x105, "ESME_RINVSRCADDRSUBUNIT", "Source address sub unit is invalid (5.0)";
    RINVDSTADDRSUBUNIT = 0x106, "ESME_RINVDSTADDRSUBUNIT", "Destination address sub unit is invalid (5.0)";
    RINVBCASTFREQINT = 0x107, "ESME_RINVBCASTFREQINT", "Broadcast frequency interval is invalid (5.0)";
    RINVBCASTALIAS_NAME = 0x108, "ESME_RINVBCASTALIAS_NAME", "Broadcast alias name is invalid (5.0)";
    RINVBCASTAREAFMT = 0x109, "ESME_RINVBCASTAREAFMT", "Broadcast area format is invalid (5.0)";
    RINVNUMBCAST_AREAS = 0x10A, "ESME_RINVNUMBCAST_AREAS", "Number of broadcast areas is invalid (5.0)";
    RINVBCASTCNTTYPE = 0x10B, "ESME_RINVBCASTCNTTYPE", "Broadcast content type is invalid (5.0)";
    RINVBCASTMSGCLASS = 0x10C, "ESME_RINVBCASTMSGCLASS", "Broadcast message class is invalid (5.0)";
    RBCASTFAIL = 0x10D, "ESME_RBCASTFAIL", "broadcast_sm operation failed (5.0)";
    RBCASTQUERYFAIL = 0x10E, "ESME_RBCASTQUERYFAIL", "query_broadcast_sm operation failed (5.0)";
    RBCASTCANCELFAIL = 0x10F, "ESME_RBCASTCANCELFAIL", "cancel_broadcast_sm operation failed (5.0)";
    RINVBCAST_REP = 0x110, "ESME_RINVBCAST_REP", "Number of repeated broadcasts is invalid (5.0)";
    RINVBCASTSRVGRP = 0x111, "ESME_RINVBCASTSRVGRP", "Broadcast service group is invalid (5.0)";
    RINVBCASTCHANIND = 0x112, "ESME_RINVBCASTCHANIND", "Broadcast channel indicator is invalid (5.0)";
}

impl CommandStatus {
    /// 3.4 and 5.0 names of the same codes, accepted by [`CommandStatus::from_name`].
    const ALIASES: &'static [(&'static str, u32)] = &[
        ("ESME_RINVOPTPARSTREAM", 0xC0),
        ("ESME_ROPTPARNOTALLWD", 0xC1),
        ("ESME_RINVTLVLEN", 0xC2),
        ("ESME_RMISSINGOPTPARAM", 0xC3),
        ("ESME_RINVOPTPARAMVAL", 0xC4),
    ];

    /// True for `ESME_ROK`.
    #[inline]
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// The `ESME_` name, or `None` for a reserved or vendor-specific code.
    pub fn name(self) -> Option<&'static str> {
        lookup(self.0).map(|e| e.1)
    }

    /// What the code means, as an operator would read it in a log line.
    pub fn description(self) -> &'static str {
        match lookup(self.0) {
            Some(e) => e.2,
            None if (0x400..=0x4FF).contains(&self.0) => "Vendor-specific error",
            None => "Reserved error code",
        }
    }

    /// True for codes in the vendor-specific range 0x400-0x4FF.
    pub const fn is_vendor_specific(self) -> bool {
        self.0 >= 0x400 && self.0 <= 0x4FF
    }

    /// True when a sender should retry later rather than give up: throttling, queue full,
    /// system error and the receiver's temporary application error.
    pub const fn is_temporary(self) -> bool {
        matches!(self.0, 0x08 | 0x14 | 0x58 | 0x64)
    }

    /// Parses a name with or without the `ESME_` prefix, or a number (`0x58`, `88`).
    pub fn from_name(s: &str) -> Option<CommandStatus> {
        let s = s.trim();
        if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            return u32::from_str_radix(hex, 16).ok().map(CommandStatus);
        }
        if let Ok(n) = s.parse::<u32>() {
            return Some(CommandStatus(n));
        }
        let upper = s.to_ascii_uppercase();
        let full = if upper.starts_with("ESME_") {
            upper
        } else {
            format!("ESME_{upper}")
        };
        STATUS_TABLE
            .iter()
            .map(|e| (e.1, e.0))
            .chain(Self::ALIASES.iter().copied())
            .find(|(n, _)| *n == full)
            .map(|(_, c)| CommandStatus(c))
    }
}

fn lookup(code: u32) -> Option<&'static (u32, &'static str, &'static str)> {
    // The table is sorted by code; binary search keeps this cheap in log paths.
    STATUS_TABLE
        .binary_search_by_key(&code, |e| e.0)
        .ok()
        .map(|i| &STATUS_TABLE[i])
}

impl fmt::Debug for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}(0x{:08X})", self.0),
            None => write!(f, "CommandStatus(0x{:08X})", self.0),
        }
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} (0x{:X}: {})", self.0, self.description()),
            None => write!(f, "0x{:X} ({})", self.0, self.description()),
        }
    }
}

impl From<u32> for CommandStatus {
    fn from(v: u32) -> Self {
        CommandStatus(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique_so_lookup_is_exact() {
        for w in STATUS_TABLE.windows(2) {
            assert!(w[0].0 < w[1].0, "{:?} before {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn names_and_numbers_round_trip() {
        for &(code, name, _) in STATUS_TABLE {
            assert_eq!(CommandStatus(code).name(), Some(name));
            assert_eq!(CommandStatus::from_name(name), Some(CommandStatus(code)));
        }
        assert_eq!(
            CommandStatus::from_name("rthrottled"),
            Some(CommandStatus::RTHROTTLED)
        );
        assert_eq!(
            CommandStatus::from_name("ESME_RINVOPTPARSTREAM"),
            Some(CommandStatus(0xC0))
        );
        assert_eq!(CommandStatus::from_name("0x58"), Some(CommandStatus(0x58)));
        assert_eq!(CommandStatus::from_name("nonsense"), None);
    }

    #[test]
    fn unknown_codes_are_described_by_range() {
        assert_eq!(CommandStatus(0x401).name(), None);
        assert_eq!(CommandStatus(0x401).description(), "Vendor-specific error");
        assert_eq!(CommandStatus(0x09).description(), "Reserved error code");
        assert_eq!(CommandStatus::RINVDSTTON.0, 0x50);
    }
}
