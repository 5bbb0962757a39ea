//! The SMPP protocol core, sans-IO: bytes and time in, bytes and events out.
//!
//! Depends only on std, `bytes`, `memchr` and `smallvec`; it never reads a clock, never
//! touches a socket and never panics on input. The runtime glue (`net`, later) moves bytes
//! and time in and out of it.
//!
//! | file | job |
//! |---|---|
//! | `command` | `command_id` values and names |
//! | `status` | `command_status` values, names, meanings |
//! | `header` | the 16-octet header, read in place |
//! | `codec` | field types (`COctet`, `Address`), the read cursor, field errors |
//! | `tlv` | optional parameters: tags, allowed lengths, the zero-copy TLV list |
//! | `pdu` | every PDU of 3.4 and 5.0: parsed form, decode, encode |
//! | `frame` | splitting complete PDUs off a stream buffer; fatal length errors |
//! | `message` | one view of submit_sm, deliver_sm and data_sm; esm_class and registered_delivery flags |
//! | `receipt` | delivery receipt text and `message_state` |
//! | `window` | our requests in flight, with deadlines |
//! | `session` | the state machine for both roles, timers, unbind handshake |
//!
//! Errors are grouped by consequence, as TLS libraries group them by fault: a [`FrameError`] means
//! the byte stream cannot be resynchronised (answer generic_nack `ESME_RINVCMDLEN`, close);
//! a [`DecodeError`] means one PDU is bad but its length is known (answer with the status it
//! names, read on).

mod codec;
mod command;
mod frame;
mod header;
mod message;
mod pdu;
pub mod receipt;
pub mod session;
mod status;
pub mod tlv;
mod window;

pub use codec::{Address, COctet, DecodeError, FieldError, FieldErrorKind};
pub use command::{CommandId, COMMAND_TABLE, RESPONSE_BIT};
pub use frame::{FrameError, Framer, DEFAULT_MAX_PDU_SIZE};
pub use header::{Header, HEADER_LEN};
pub use message::{as_deliver_sm, EsmClass, MessageView, RegisteredDelivery};
pub use pdu::{
    AlertNotification, Bind, Body, BroadcastSm, CancelBroadcastSm, CancelSm, DataSm, DeliverSm,
    DestAddress, Outbind, Pdu, QueryBroadcastSm, QuerySm, QuerySmResp, ReplaceSm, SubmitMulti,
    SubmitMultiResp, SubmitSm, UnsuccessSme, MAX_SHORT_MESSAGE,
};
pub use receipt::{MessageState, Receipt, ReceiptDate};
pub use session::{BindType, CloseReason, Event, Role, SendError, Session, SessionConfig, State};
pub use status::{CommandStatus, STATUS_TABLE};
pub use tlv::{Tlv, Tlvs};
