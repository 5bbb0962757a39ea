//! `command_id`: which PDU a frame carries.
//!
//! Like [`CommandStatus`](super::CommandStatus) this is a newtype over the raw value so that a
//! frame with an id we do not know can still be named in an error and answered with
//! generic_nack `ESME_RINVCMDID`. Names come from one table, [`COMMAND_TABLE`].

use core::fmt;

/// An SMPP `command_id`. Response ids are the request id with bit 31 set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u32);

/// Bit 31 of command_id marks a response.
pub const RESPONSE_BIT: u32 = 0x8000_0000;

macro_rules! commands {
    ($( $konst:ident = $code:literal, $name:literal; )*) => {
        impl CommandId {
            $( #[doc = concat!("`", $name, "`")] pub const $konst: CommandId = CommandId($code); )*
        }
        /// Every command_id of SMPP 3.4 and 5.0 with its spec name.
        pub const COMMAND_TABLE: &[(u32, &str)] = &[ $( ($code, $name), )* ];
    };
}

commands! {
    BIND_RECEIVER = 0x0000_0001, "bind_receiver";
    BIND_TRANSMITTER = 0x0000_0002, "bind_transmitter";
    QUERY_SM = 0x0000_0003, "query_sm";
    SUBMIT_SM = 0x0000_0004, "submit_sm";
    DELIVER_SM = 0x0000_0005, "deliver_sm";
    UNBIND = 0x0000_0006, "unbind";
    REPLACE_SM = 0x0000_0007, "replace_sm";
    CANCEL_SM = 0x0000_0008, "cancel_sm";
    BIND_TRANSCEIVER = 0x0000_0009, "bind_transceiver";
    OUTBIND = 0x0000_000B, "outbind";
    ENQUIRE_LINK = 0x0000_0015, "enquire_link";
    SUBMIT_MULTI = 0x0000_0021, "submit_multi";
    ALERT_NOTIFICATION = 0x0000_0102, "alert_notification";
    DATA_SM = 0x0000_0103, "data_sm";
    BROADCAST_SM = 0x0000_0111, "broadcast_sm";
    QUERY_BROADCAST_SM = 0x0000_0112, "query_broadcast_sm";
    CANCEL_BROADCAST_SM = 0x0000_0113, "cancel_broadcast_sm";
    GENERIC_NACK = 0x8000_0000, "generic_nack";
    BIND_RECEIVER_RESP = 0x8000_0001, "bind_receiver_resp";
    BIND_TRANSMITTER_RESP = 0x8000_0002, "bind_transmitter_resp";
    QUERY_SM_RESP = 0x8000_0003, "query_sm_resp";
    SUBMIT_SM_RESP = 0x8000_0004, "submit_sm_resp";
    DELIVER_SM_RESP = 0x8000_0005, "deliver_sm_resp";
    UNBIND_RESP = 0x8000_0006, "unbind_resp";
    REPLACE_SM_RESP = 0x8000_0007, "replace_sm_resp";
    CANCEL_SM_RESP = 0x8000_0008, "cancel_sm_resp";
    BIND_TRANSCEIVER_RESP = 0x8000_0009, "bind_transceiver_resp";
    ENQUIRE_LINK_RESP = 0x8000_0015, "enquire_link_resp";
    SUBMIT_MULTI_RESP = 0x8000_0021, "submit_multi_resp";
    DATA_SM_RESP = 0x8000_0103, "data_sm_resp";
    BROADCAST_SM_RESP = 0x8000_0111, "broadcast_sm_resp";
    QUERY_BROADCAST_SM_RESP = 0x8000_0112, "query_broadcast_sm_resp";
    CANCEL_BROADCAST_SM_RESP = 0x8000_0113, "cancel_broadcast_sm_resp";
}

impl CommandId {
    /// True when bit 31 is set (responses and generic_nack).
    #[inline]
    pub const fn is_response(self) -> bool {
        self.0 & RESPONSE_BIT != 0
    }

    /// The spec name, or `None` for an id SMPP does not define.
    pub fn name(self) -> Option<&'static str> {
        COMMAND_TABLE.iter().find(|e| e.0 == self.0).map(|e| e.1)
    }

    /// True for ids SMPP 3.4 or 5.0 define.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// The response id for a request that has one. Outbind and alert_notification are
    /// answered by nothing, generic_nack and responses by nothing either.
    pub const fn response(self) -> Option<CommandId> {
        match self {
            CommandId::OUTBIND | CommandId::ALERT_NOTIFICATION => None,
            CommandId(id) if id & RESPONSE_BIT != 0 => None,
            CommandId(id) => Some(CommandId(id | RESPONSE_BIT)),
        }
    }

    /// The request id a response answers (`id & 0x7FFFFFFF`).
    #[inline]
    pub const fn request(self) -> CommandId {
        CommandId(self.0 & !RESPONSE_BIT)
    }
}

impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "command_id(0x{:08X})", self.0),
        }
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
