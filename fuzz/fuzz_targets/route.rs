//! Any route file either fails to load with errors, or loads; a loaded table routes any
//! message (any parameters) without panicking, through the cache and in explain mode, and the
//! cache gives the same target as a fresh evaluation for pure decisions.
//!
//! Input: the route file, a NUL, then the message's parameters as `name=value` lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smppgw::route::{explain, Params, RouteCache, RouteTable, Vars};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let text = String::from_utf8_lossy(&data[..split]);
    let rest = String::from_utf8_lossy(data.get(split + 1..).unwrap_or(&[]));
    let Ok(table) = RouteTable::load("fuzz.conf", &text, 1) else {
        return;
    };
    let mut params = Params::default();
    for line in rest.lines() {
        match line.split_once('=') {
            Some((n, v)) => params.set(n, v),
            None => params.set("called", line),
        }
    }
    let mut vars = Vars::new(&table, 7);
    let fast = table.route(&params, &mut vars, false);
    let slow = table.route(&params, &mut vars, true);
    if fast.cacheable && slow.cacheable {
        // The prefix index must not change what a full scan decides.
        assert_eq!(fast.target, slow.target, "index and scan disagree");
    }
    let mut cache = RouteCache::new(16);
    let first = cache.route(&table, &params, &mut vars).target.clone();
    let again = cache.route(&table, &params, &mut vars).target.clone();
    if fast.cacheable {
        assert_eq!(first, fast.target);
        assert_eq!(again, fast.target);
    }
    let _ = explain(&table, &params, &mut vars);
    let _ = table.summary();
});
