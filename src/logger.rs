//! Log lines on stderr: UTC timestamp, level, thread (the shard's name), message.
//!
//! One line per event, greppable: `2026-11-29T21:50:01.123Z INFO  shard-0 bound transceiver demo from 127.0.0.1:51234`.
//! The level comes from `SMPPGW_LOG` (error, warn, info, debug, trace; default info).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

struct Logger {
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
            && (m.target().starts_with("smppgw") || m.level() <= log::Level::Warn)
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("main");
        let line = format!("{} {:<5} {} {}\n", timestamp(), r.level(), name, r.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger (once; later calls do nothing).
pub fn init() {
    let level = match std::env::var("SMPPGW_LOG")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "error" => log::LevelFilter::Error,
        "warn" => log::LevelFilter::Warn,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        "off" => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    };
    if log::set_boxed_logger(Box::new(Logger { level })).is_ok() {
        log::set_max_level(level);
    }
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` from the system clock.
pub fn timestamp() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

pub use crate::flow::time::civil_from_days;
