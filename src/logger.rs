//! Log lines on stderr: UTC timestamp, level, thread (the shard's name), message.
//!
//! One line per event, greppable: `2026-11-29T21:50:01.123Z INFO  shard-0 bound transceiver demo from 127.0.0.1:51234`.
//! The level comes from `SMPPGW_LOG` (error, warn, info, debug, trace, off; default info),
//! else from `[general] log_level` once the configuration is read ([`configure`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

struct Logger;

/// `SMPPGW_LOG` was given: it wins over the configuration.
static FROM_ENV: AtomicBool = AtomicBool::new(false);

/// A level by name.
pub fn level_named(name: &str) -> Option<log::LevelFilter> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "error" => log::LevelFilter::Error,
        "warn" => log::LevelFilter::Warn,
        "info" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        "off" => log::LevelFilter::Off,
        _ => return None,
    })
}

/// The configuration's `log_level`, unless `SMPPGW_LOG` set one.
pub fn configure(level: Option<log::LevelFilter>) {
    if let (Some(l), false) = (level, FROM_ENV.load(Ordering::Relaxed)) {
        log::set_max_level(l);
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
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
    let env = std::env::var("SMPPGW_LOG")
        .ok()
        .and_then(|v| level_named(&v));
    FROM_ENV.store(env.is_some(), Ordering::Relaxed);
    let level = env.unwrap_or(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(Logger)).is_ok() {
        log::set_max_level(level);
    }
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` from the system clock.
pub fn timestamp() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut text = Vec::with_capacity(24);
    crate::flow::time::push_iso_millis(ms, &mut text);
    String::from_utf8(text).unwrap_or_default()
}
