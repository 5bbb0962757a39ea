//! What the gateway does after each attempt: the retry schedule, failover, and how an end is
//! told to the originator (message_state and TS 23.040 TP-Status).

use crate::smpp::{CommandStatus, MessageState};

/// The retry and failover settings (yatesmsc.conf `[general]`, ysmpp.conf `[general]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Temporary failures before a message fails over or fails, when its route sets no
    /// `retries` (yatesmsc.conf `retries`).
    pub retries: u16,
    /// The first retry waits `retry_min`, each next one twice as long, at most `retry_max`.
    pub retry_min_ms: u64,
    pub retry_max_ms: u64,
    /// The first retry of a delivery to an ESME (ysmpp.conf `delivery_retry`); later ones
    /// double up to `retry_max`.
    pub esme_retry_ms: u64,
    /// Whether the backup gateway's permanent errors are final (`smppgw_trusted`); when not,
    /// they are retried like temporary ones.
    pub trusted: bool,
    /// How long a message forwarded with a receipt requested waits for that receipt.
    pub receipt_wait_ms: u64,
    /// A receiver that had no room: how soon its messages are offered again.
    pub busy_retry_ms: u64,
    /// Attempts outstanding per target at most (the rest wait their turn in its queue).
    pub batch: usize,
    /// How long a message is tried when its submit gives no validity_period, and the most
    /// a validity_period may ask for (yatesmsc.conf `validity`, `max_validity`).
    pub validity_ms: u64,
    pub max_validity_ms: u64,
    /// Bodies of waiting messages kept in memory at most (ysmpp.conf `memory_messages`);
    /// beyond it, waiting messages keep their bodies only in the log.
    pub memory_messages: usize,
    /// Report each attempt's outcome ([`super::Action::Attempted`]): CDRs are written.
    pub legs: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retries: 5,
            retry_min_ms: 1_000,
            retry_max_ms: 300_000,
            esme_retry_ms: 1_000,
            trusted: false,
            receipt_wait_ms: 72 * 3600 * 1000,
            busy_retry_ms: 100,
            batch: 1024,
            validity_ms: 48 * 3600 * 1000,
            max_validity_ms: 7 * 24 * 3600 * 1000,
            memory_messages: usize::MAX,
            legs: false,
        }
    }
}

impl Policy {
    /// The pause before retry number `failures` (1 for the first retry) of a message to a
    /// link, or (`to_esme`) to an ESME.
    pub fn retry_delay_ms(&self, failures: u16, to_esme: bool) -> u64 {
        let first = if to_esme {
            self.esme_retry_ms
        } else {
            self.retry_min_ms
        };
        let shift = failures.saturating_sub(1).min(30) as u32;
        first
            .saturating_mul(1u64 << shift)
            .min(self.retry_max_ms.max(first))
    }
}

impl Policy {
    /// When a message accepted at `now_ms` expires: its validity_period (absolute or
    /// relative), cut to `max_validity`, or `validity` when it gives none or one in the past.
    pub fn expiry_ms(&self, validity_period: &[u8], now_ms: u64) -> u64 {
        let max = now_ms.saturating_add(self.max_validity_ms);
        match super::time::smpp_time_ms(validity_period, now_ms) {
            Some(t) if t > now_ms => t.min(max),
            _ => now_ms.saturating_add(self.validity_ms).min(max),
        }
    }
}

/// How a message ended, as the originator's receipt and the log say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End {
    pub state: MessageState,
    /// TS 23.040 TP-Status: network_error_code (type 3) and, in decimal, the receipt's `err:`.
    pub tp_status: u8,
}

impl End {
    /// Received by the ESME it was for: 0x00.
    pub const DELIVERED: End = End::new(MessageState::DELIVERED, 0x00);
    /// Forwarded to an upstream that took it, no receipt asked: 0x01, forwarded, delivery
    /// unconfirmed.
    pub const FORWARDED: End = End::new(MessageState::ACCEPTED, 0x01);
    /// No route to its destination: 0x45, no interworking available.
    pub const NO_ROUTE: End = End::new(MessageState::UNDELIVERABLE, 0x45);
    /// The validity period ran out: 0x46.
    pub const EXPIRED: End = End::new(MessageState::EXPIRED, 0x46);
    /// The receiving ESME refused it for good: 0x42, connection rejected by SME.
    pub const REFUSED: End = End::new(MessageState::UNDELIVERABLE, 0x42);
    /// Temporary errors until the retries ran out: 0x61, SME busy.
    pub const BUSY: End = End::new(MessageState::UNDELIVERABLE, 0x61);
    /// No answer until the retries ran out: 0x62, no response from SME.
    pub const NO_RESPONSE: End = End::new(MessageState::UNDELIVERABLE, 0x62);
    /// The upstream never sent the receipt asked for: unknown.
    pub const RECEIPT_LOST: End = End::new(MessageState::UNKNOWN, 0x01);
    /// Its body could not be read back from the message log (damaged on disk): 0x40, a
    /// permanent error of the SC's own.
    pub const LOST: End = End::new(MessageState::UNDELIVERABLE, 0x40);

    pub const fn new(state: MessageState, tp_status: u8) -> End {
        End { state, tp_status }
    }

    /// An upstream's permanent refusal: 0x41 (incompatible destination) for address errors,
    /// 0x40 (remote procedure error) for the rest. Never a reserved value.
    pub fn refused_upstream(status: CommandStatus) -> End {
        let tp = match status {
            CommandStatus::RINVDSTADR
            | CommandStatus::RINVDSTTON
            | CommandStatus::RINVDSTNPI
            | CommandStatus::RINVNUMDESTS => 0x41,
            _ => 0x40,
        };
        End::new(MessageState::UNDELIVERABLE, tp)
    }

    pub fn delivered(self) -> bool {
        self.state == MessageState::DELIVERED
    }

    /// Whether a submit's registered_delivery asks for a receipt of this end: bits 1-0 are 1
    /// for success or failure, 2 for failure only, 3 for success only (5.0). A message
    /// forwarded without a receipt from upstream has no end to report.
    pub fn wanted_by(self, registered_delivery: u8) -> bool {
        if self == End::FORWARDED || self == End::RECEIPT_LOST {
            return false;
        }
        let ok = self.delivered();
        match registered_delivery & 0x03 {
            1 => true,
            2 => !ok,
            3 => ok,
            _ => false,
        }
    }

    /// TS 23.040's words for the TP-Status, for the log.
    pub fn meaning(self) -> &'static str {
        match self.tp_status {
            0x00 => "received by the SME",
            0x01 => "forwarded, delivery unconfirmed",
            0x40 => "remote procedure error",
            0x41 => "incompatible destination",
            0x42 => "connection rejected by the SME",
            0x43 => "not obtainable",
            0x45 => "no interworking available",
            0x46 => "validity period expired",
            0x60 => "congestion",
            0x61 => "SME busy",
            0x62 => "no response from the SME",
            t if t < 0x20 => "completed",
            t if t < 0x40 => "temporary error, still trying",
            t if t < 0x60 => "permanent error",
            _ => "temporary error, stopped trying",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_within_bounds() {
        let p = Policy {
            retry_min_ms: 1000,
            retry_max_ms: 5000,
            ..Policy::default()
        };
        let d: Vec<u64> = (1..=5).map(|f| p.retry_delay_ms(f, false)).collect();
        assert_eq!(d, vec![1000, 2000, 4000, 5000, 5000]);
        assert_eq!(p.retry_delay_ms(0, false), 1000);
        assert_eq!(p.retry_delay_ms(u16::MAX, false), 5000);
        let p = Policy {
            esme_retry_ms: 100,
            ..p
        };
        assert_eq!(p.retry_delay_ms(2, true), 200);
    }

    #[test]
    fn registered_delivery_picks_which_ends_are_reported() {
        let fail = End::EXPIRED;
        let ok = End::DELIVERED;
        assert!(ok.wanted_by(1) && fail.wanted_by(1));
        assert!(!ok.wanted_by(2) && fail.wanted_by(2));
        assert!(ok.wanted_by(3) && !fail.wanted_by(3));
        assert!(!ok.wanted_by(0) && !fail.wanted_by(0));
        assert!(!End::FORWARDED.wanted_by(1));
        // Bits above 1-0 (SME acknowledgement, intermediate) do not change it.
        assert!(fail.wanted_by(0x11));
    }

    #[test]
    fn gateway_ends_never_carry_a_reserved_tp_status() {
        let reserved = |t: u8| matches!(t, 0x03..=0x0F | 0x26..=0x2F | 0x4A..=0x4F | 0x66..=0x6F | 0x80..=0xFF);
        for e in [
            End::DELIVERED,
            End::FORWARDED,
            End::NO_ROUTE,
            End::EXPIRED,
            End::REFUSED,
            End::BUSY,
            End::NO_RESPONSE,
            End::RECEIPT_LOST,
            End::refused_upstream(CommandStatus::RINVDSTADR),
            End::refused_upstream(CommandStatus::RSUBMITFAIL),
        ] {
            assert!(!reserved(e.tp_status), "{e:?}");
        }
    }
}
