//! The simulator's side of a message (`smppgw sim`): which submits it refuses (configured
//! shares of temporary and permanent errors, every Nth throttled), the ids it writes (hex or
//! decimal, in the response and in the receipt), the record of what it accepted, and its
//! receipt: a message of the flow like any other, scheduled after the receipt delay and held
//! while no receiver of the account is bound.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::Path;

use log::warn;

use super::state::SimOptions;
use crate::flow::receipt::{gateway_receipt, Reported};
use crate::flow::End;
use crate::smpp::receipt::{id_value, IdRadix};
use crate::smpp::{COctet, CommandStatus, Pdu};
use crate::text::Charset;

/// The simulator's own counters and record file, per shard.
#[derive(Default)]
pub struct SimState {
    submits: Cell<u64>,
    recorder: RefCell<Option<std::io::BufWriter<std::fs::File>>>,
}

impl SimState {
    /// Counts a submit (every-Nth throttling); returns the count.
    pub fn count_submit(&self) -> u64 {
        let n = self.submits.get() + 1;
        self.submits.set(n);
        n
    }

    /// Appends a message's text to the record file (a test aid: tests count what reached
    /// the upstream, also across a `kill -9`, so each line is written out at once).
    pub fn record(&self, path: &Path, text: &[u8]) {
        let mut r = self.recorder.borrow_mut();
        if r.is_none() {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => *r = Some(std::io::BufWriter::with_capacity(64 * 1024, f)),
                Err(e) => {
                    warn!("cannot record to {}: {e}", path.display());
                    return;
                }
            }
        }
        if let Some(w) = r.as_mut() {
            let _ = w.write_all(text);
            let _ = w.write_all(b"\n");
            let _ = w.flush();
        }
    }

    pub fn flush(&self) {
        if let Some(w) = self.recorder.borrow_mut().as_mut() {
            let _ = w.flush();
        }
    }
}

/// The simulator's verdict on one submit, given a uniform draw in [0, 100): `Err` with the
/// status to refuse it with.
pub fn verdict(sim: &SimOptions, state: &SimState, draw: f64) -> Result<(), CommandStatus> {
    if sim.throttle_every > 0 && state.count_submit() % sim.throttle_every as u64 == 0 {
        return Err(CommandStatus::RTHROTTLED);
    }
    if draw < sim.perm_error_pct {
        return Err(CommandStatus::RSUBMITFAIL);
    }
    if draw < sim.perm_error_pct + sim.temp_error_pct {
        return Err(CommandStatus::RMSGQFUL);
    }
    Ok(())
}

/// A gateway id written in another radix (the simulator's `--msgid`).
pub fn in_radix(hex: &COctet, radix: IdRadix) -> COctet {
    match (radix, id_value(hex.as_bytes(), IdRadix::Hex)) {
        (IdRadix::Decimal, Some(n)) => COctet::from(n.to_string().as_str()),
        (IdRadix::Hex, Some(n)) => COctet::from(format!("{n:X}").as_str()),
        _ => hex.clone(),
    }
}

/// The simulator's receipt for an accepted message: delivered.
pub fn receipt(request: &Pdu, receipt_id: &[u8], now_ms: u64) -> Pdu {
    gateway_receipt(&Reported {
        request,
        id: receipt_id,
        accepted_ms: now_ms,
        done_ms: now_ms,
        end: End::DELIVERED,
        zero: Charset::Gsm7,
    })
}
