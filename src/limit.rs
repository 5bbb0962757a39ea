//! A token bucket for message rates: an account's `rate`, a link's `rate`, the simulator's
//! throttle.
//!
//! It is kept as one atomic "theoretical arrival time" (the generic cell rate algorithm), so a
//! bucket shared by the shards needs no lock. (Shards still share its cache line; per-shard
//! shares of a rate come with the metrics work.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `rate` per second with a burst of one second's worth.
pub struct RateLimiter {
    interval_ns: u64,
    burst_ns: u64,
    tat: AtomicU64,
    epoch: Instant,
}

impl RateLimiter {
    /// `None` when `rate` is 0 (no limit).
    pub fn new(rate: f64, epoch: Instant) -> Option<RateLimiter> {
        (rate > 0.0).then(|| {
            let interval_ns = (1e9 / rate).max(1.0) as u64;
            RateLimiter {
                interval_ns,
                burst_ns: 1_000_000_000u64.max(interval_ns),
                tat: AtomicU64::new(0),
                epoch,
            }
        })
    }

    /// When `n` tokens will be there (now, if they are).
    pub fn available_at(&self, n: u32, now: Instant) -> Instant {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let next = self.tat.load(Ordering::Relaxed).max(now_ns) + self.interval_ns * n as u64;
        let ready_ns = next.saturating_sub(self.burst_ns);
        self.epoch + Duration::from_nanos(ready_ns.max(now_ns))
    }

    /// Takes `n` tokens if there are; false means throttle. More than a second's worth at
    /// once costs a second's worth (a full bucket), so that it can pass at all.
    pub fn try_take(&self, n: u32, now: Instant) -> bool {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let cost = (self.interval_ns * n as u64).min(self.burst_ns);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_ns);
            let next = start + cost;
            if next > now_ns + self.burst_ns {
                return false;
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(t) => tat = t,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_a_burst_of_one_second_then_the_rate() {
        let t0 = Instant::now();
        let r = RateLimiter::new(10.0, t0).unwrap();
        let granted = (0..20).filter(|_| r.try_take(1, t0)).count();
        assert_eq!(granted, 10);
        assert!(!r.try_take(1, t0));
        assert!(r.try_take(1, t0 + Duration::from_millis(101)));
        assert!(RateLimiter::new(0.0, t0).is_none());
    }
}
