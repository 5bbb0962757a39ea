//! A token bucket for message rates: an account's `rate`, a link's `rate`, the simulator's
//! throttle.
//!
//! It is kept as one atomic "theoretical arrival time" (the generic cell rate algorithm), so a
//! bucket needs no lock. An account's rate is split between the shards ([`ShardedRate`]): each
//! shard takes from a bucket of its own, on a cache line of its own, sized in proportion to
//! the binds it serves, and the shares are worked out again as binds come and go.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `rate` per second with a burst of one second's worth.
pub struct RateLimiter {
    interval_ns: AtomicU64,
    burst_ns: AtomicU64,
    tat: AtomicU64,
    epoch: Instant,
}

/// The interval of a rate of zero: nothing passes.
const NEVER: u64 = u64::MAX / 4;

fn interval_burst(rate: f64) -> (u64, u64) {
    if rate <= 0.0 {
        return (NEVER, 1_000_000_000);
    }
    let interval_ns = (1e9 / rate).max(1.0) as u64;
    (interval_ns, 1_000_000_000u64.max(interval_ns))
}

impl RateLimiter {
    /// `None` when `rate` is 0 (no limit).
    pub fn new(rate: f64, epoch: Instant) -> Option<RateLimiter> {
        (rate > 0.0).then(|| RateLimiter::with_rate(rate, epoch))
    }

    fn with_rate(rate: f64, epoch: Instant) -> RateLimiter {
        let (interval_ns, burst_ns) = interval_burst(rate);
        RateLimiter {
            interval_ns: AtomicU64::new(interval_ns),
            burst_ns: AtomicU64::new(burst_ns),
            tat: AtomicU64::new(0),
            epoch,
        }
    }

    /// Changes the rate (0: nothing passes until it changes again).
    pub fn set_rate(&self, rate: f64) {
        let (interval_ns, burst_ns) = interval_burst(rate);
        self.interval_ns.store(interval_ns, Ordering::Relaxed);
        self.burst_ns.store(burst_ns, Ordering::Relaxed);
    }

    /// When `n` tokens will be there (now, if they are).
    pub fn available_at(&self, n: u32, now: Instant) -> Instant {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let interval = self.interval_ns.load(Ordering::Relaxed);
        let next = self
            .tat
            .load(Ordering::Relaxed)
            .max(now_ns)
            .saturating_add(interval.saturating_mul(n as u64));
        let ready_ns = next.saturating_sub(self.burst_ns.load(Ordering::Relaxed));
        self.epoch + Duration::from_nanos(ready_ns.max(now_ns))
    }

    /// Takes `n` tokens if there are; false means throttle. More than a second's worth at
    /// once costs a second's worth (a full bucket), so that it can pass at all.
    pub fn try_take(&self, n: u32, now: Instant) -> bool {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let (interval, burst) = (
            self.interval_ns.load(Ordering::Relaxed),
            self.burst_ns.load(Ordering::Relaxed),
        );
        if interval >= NEVER {
            return false;
        }
        let cost = interval.saturating_mul(n as u64).min(burst);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_ns);
            let next = start + cost;
            if next > now_ns + burst {
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

/// One shard's bucket, alone on its cache line.
#[repr(align(128))]
struct Share(RateLimiter);

/// A rate split between the shards in proportion to the binds each serves. The rate can
/// change while binds are up (a reload); 0 means no limit.
pub struct ShardedRate {
    /// The account's rate, as f64 bits (0: no limit).
    rate: AtomicU64,
    /// Whether there is a limit: the one load `try_take` makes before a share's bucket.
    limited: std::sync::atomic::AtomicBool,
    shares: Box<[Share]>,
    binds: Box<[AtomicU32]>,
    /// Taken while the shares are worked out (binds are rare): two shards binding at once
    /// must not leave one with a share computed from counts the other already changed.
    rebalance: std::sync::Mutex<()>,
}

impl ShardedRate {
    /// `rate` per second over all shards; 0: no limit (until [`ShardedRate::set_total`]).
    pub fn new(rate: f64, shards: usize, epoch: Instant) -> ShardedRate {
        ShardedRate {
            rate: AtomicU64::new(rate.max(0.0).to_bits()),
            limited: (rate > 0.0).into(),
            shares: (0..shards.max(1))
                .map(|_| Share(RateLimiter::with_rate(0.0, epoch)))
                .collect(),
            binds: (0..shards.max(1)).map(|_| AtomicU32::new(0)).collect(),
            rebalance: std::sync::Mutex::new(()),
        }
    }

    /// Whether there is a limit at all.
    pub fn is_limited(&self) -> bool {
        self.limited.load(Ordering::Relaxed)
    }

    /// The rate over all shards (0: no limit).
    pub fn total(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// Takes `n` tokens from shard `shard`'s share; false means throttle.
    pub fn try_take(&self, shard: usize, n: u32, now: Instant) -> bool {
        !self.is_limited() || self.shares[shard % self.shares.len()].0.try_take(n, now)
    }

    /// A bind came (`up`) or went on shard `shard`: the shares are worked out again.
    pub fn bound(&self, shard: usize, up: bool) {
        let _one_at_a_time = self.rebalance.lock().unwrap_or_else(|p| p.into_inner());
        let b = &self.binds[shard % self.binds.len()];
        if up {
            b.fetch_add(1, Ordering::Relaxed);
        } else {
            let _ = b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        self.share_out();
    }

    /// The rate changed (a reload): the shares are worked out again at once.
    pub fn set_total(&self, rate: f64) {
        let _one_at_a_time = self.rebalance.lock().unwrap_or_else(|p| p.into_inner());
        self.rate.store(rate.max(0.0).to_bits(), Ordering::Relaxed);
        self.share_out();
        self.limited.store(rate > 0.0, Ordering::Relaxed);
    }

    /// Splits the rate by the binds per shard (the rebalance lock is held).
    fn share_out(&self) {
        let rate = self.total();
        let counts: Vec<u32> = self
            .binds
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u32 = counts.iter().sum();
        for (share, n) in self.shares.iter().zip(counts) {
            let r = if total == 0 {
                0.0
            } else {
                rate * n as f64 / total as f64
            };
            share.0.set_rate(r);
        }
    }

    /// Shard `shard`'s share, in messages per second.
    pub fn share(&self, shard: usize) -> f64 {
        let interval = self.shares[shard % self.shares.len()]
            .0
            .interval_ns
            .load(Ordering::Relaxed);
        if interval >= NEVER {
            0.0
        } else {
            1e9 / interval as f64
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

    #[test]
    fn an_account_rate_is_shared_by_the_shards_in_proportion_to_their_binds() {
        let t0 = Instant::now();
        let r = ShardedRate::new(12.0, 3, t0);
        assert!(!r.try_take(0, 1, t0), "no bind, no share");
        r.bound(0, true);
        assert!((r.share(0) - 12.0).abs() < 0.01);
        r.bound(1, true);
        r.bound(1, true);
        let shares: Vec<f64> = (0..3).map(|s| (r.share(s) * 10.0).round() / 10.0).collect();
        assert_eq!(shares, [4.0, 8.0, 0.0]);
        // A second's burst each: together, the account's rate.
        let t1 = t0 + Duration::from_secs(5);
        let granted: usize = (0..3)
            .map(|s| (0..30).filter(|_| r.try_take(s, 1, t1)).count())
            .sum();
        assert_eq!(granted, 12);
        // The binds of shard 1 go: shard 0 takes the whole rate again.
        r.bound(1, false);
        r.bound(1, false);
        r.bound(1, false);
        assert!((r.share(0) - 12.0).abs() < 0.01);
        assert_eq!(r.share(1), 0.0);
    }

    #[test]
    fn an_account_rate_changes_while_bound_and_zero_lifts_the_limit() {
        let t0 = Instant::now();
        let r = ShardedRate::new(0.0, 2, t0);
        r.bound(0, true);
        r.bound(1, true);
        assert!((0..1000).all(|_| r.try_take(0, 1, t0)), "0: no limit");
        r.set_total(4.0);
        assert!(r.is_limited());
        assert_eq!((r.share(0) * 10.0).round(), 20.0);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!((0..10).filter(|_| r.try_take(1, 1, t1)).count(), 2);
        r.set_total(0.0);
        assert!((0..1000).all(|_| r.try_take(1, 1, t1)));
    }
}
