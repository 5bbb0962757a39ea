//! Histograms kept as bucket counts where they are recorded.
//!
//! The Prometheus exporter keeps every sample of its histograms (value and time, in blocks
//! it allocates as they fill) until a scrape or an upkeep folds them into buckets: per message
//! that is a store into shared memory, a clock read and, every few dozen samples, a zeroed
//! allocation of a kilobyte on the shard's core. A [`Buckets`] is a row of counters instead:
//! recording finds the bucket (a dozen comparisons) and adds one; a scrape reads the counters
//! and renders them in the exposition format ([`render`]). Each one is written by the shard
//! that made it; the control shard only reads.
//!
//! They are made through [`histogram`], which registers them by name and shard (asked twice,
//! it gives the same one), and handed out as `metrics::Histogram`, so recording looks the same
//! as for any other metric.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::HistogramFn;

/// Upper bounds of histograms of seconds.
pub const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
];
/// Upper bounds of histograms of record counts.
pub const RECORDS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// Counts per bucket (the last one above every bound), their sum and their number.
pub struct Buckets {
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
    /// The sum of the values, as f64 bits.
    sum: AtomicU64,
}

impl Buckets {
    pub fn new(bounds: &'static [f64]) -> Buckets {
        Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Cumulative counts per bound (the last: all of them) and the sum.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (cumulative, f64::from_bits(self.sum.load(Ordering::Relaxed)))
    }
}

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        // A NaN counts in the last bucket and is left out of the sum.
        let i = self.bounds.partition_point(|b| *b < value);
        let i = if value.is_nan() { self.bounds.len() } else { i };
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        if value.is_finite() {
            // One writer per histogram (its shard): no other store can come between.
            let s = f64::from_bits(self.sum.load(Ordering::Relaxed)) + value;
            self.sum.store(s.to_bits(), Ordering::Relaxed);
        }
    }
}

struct Registered {
    name: &'static str,
    shard: String,
    buckets: Arc<Buckets>,
}

static REGISTRY: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

/// The histogram `name` of `shard` (made on first use, with `bounds`).
pub fn histogram(name: &'static str, shard: &str, bounds: &'static [f64]) -> metrics::Histogram {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let buckets = match reg.iter().find(|r| r.name == name && r.shard == shard) {
        Some(r) => r.buckets.clone(),
        None => {
            let buckets = Arc::new(Buckets::new(bounds));
            reg.push(Registered {
                name,
                shard: shard.to_string(),
                buckets: buckets.clone(),
            });
            buckets
        }
    };
    metrics::Histogram::from_arc(buckets)
}

/// Every registered histogram in the Prometheus text exposition format (one `# TYPE` line per
/// name, then each shard's buckets, sum and count).
pub fn render(out: &mut String) {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<&'static str> = reg.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let _ = writeln!(out, "# TYPE {name} histogram");
        for r in reg.iter().filter(|r| r.name == name) {
            let (cumulative, sum) = r.buckets.snapshot();
            let shard = &r.shard;
            for (bound, n) in r.buckets.bounds.iter().zip(&cumulative) {
                let _ = writeln!(out, "{name}_bucket{{shard=\"{shard}\",le=\"{bound}\"}} {n}");
            }
            let count = cumulative.last().copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name}_bucket{{shard=\"{shard}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "{name}_sum{{shard=\"{shard}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{shard=\"{shard}\"}} {count}");
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_the_bucket_of_the_first_bound_not_below_them() {
        let b = Buckets::new(&[1.0, 2.0, 5.0]);
        for v in [0.5, 1.0, 1.5, 2.0, 4.0, 6.0, f64::NAN] {
            b.record(v);
        }
        let (cumulative, sum) = b.snapshot();
        assert_eq!(cumulative, vec![2, 4, 5, 7]);
        assert_eq!(sum, 0.5 + 1.0 + 1.5 + 2.0 + 4.0 + 6.0);
    }

    #[test]
    fn rendered_per_shard_with_cumulative_buckets() {
        let h = histogram("smppgw_test_hist_seconds", "7", &[0.25, 1.0]);
        h.record(0.125);
        h.record(0.5);
        h.record(3.0);
        // Asked again: the same histogram.
        histogram("smppgw_test_hist_seconds", "7", &[0.25, 1.0]).record(0.75);
        let mut out = String::new();
        render(&mut out);
        let text: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("smppgw_test_hist_seconds"))
            .collect();
        assert_eq!(
            text,
            vec![
                "# TYPE smppgw_test_hist_seconds histogram",
                "smppgw_test_hist_seconds_bucket{shard=\"7\",le=\"0.25\"} 1",
                "smppgw_test_hist_seconds_bucket{shard=\"7\",le=\"1\"} 3",
                "smppgw_test_hist_seconds_bucket{shard=\"7\",le=\"+Inf\"} 4",
                "smppgw_test_hist_seconds_sum{shard=\"7\"} 4.375",
                "smppgw_test_hist_seconds_count{shard=\"7\"} 4",
            ]
        );
    }
}
