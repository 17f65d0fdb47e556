//! A host's recent attempt latencies, for a hedge delay at a percentile (Finagle's backup
//! requests hedge after the p-th percentile of recent latencies).
//!
//! A fixed histogram: bucket `i` holds latencies up to `1 ms · 1.1^i` (bucket 0 everything up
//! to 1 ms), 120 buckets reaching past 80 s, so a quantile is read to within 10 %, rounded up
//! (a hedge a little later rather than earlier). "Recent" is two generations of
//! [`GENERATION`] samples: when the current one fills, it becomes the previous one and a fresh
//! one starts, so the estimate follows a host that got slower or faster within one to two
//! generations. Recording and reading never allocate; the whole state is 484 bytes.
//!
//! ```
//! use core::time::Duration;
//! use resile_core::latency::Latencies;
//!
//! let mut l = Latencies::default();
//! for ms in 1..=100 {
//!     l.record(Duration::from_millis(ms));
//! }
//! let p90 = l.quantile(0.9).unwrap();
//! assert!(p90 >= Duration::from_millis(90) && p90 <= Duration::from_millis(99), "{p90:?}");
//! ```

use core::time::Duration;

/// Buckets in each generation.
const BUCKETS: usize = 120;
/// Samples in a generation before it is retired.
pub const GENERATION: u16 = 1000;
/// The growth from one bucket's bound to the next.
const GROWTH: f64 = 1.1;

/// Recent latencies of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latencies {
    current: [u16; BUCKETS],
    previous: [u16; BUCKETS],
    in_current: u16,
    in_previous: u16,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            current: [0; BUCKETS],
            previous: [0; BUCKETS],
            in_current: 0,
            in_previous: 0,
        }
    }
}

impl Latencies {
    /// Adds one attempt's latency.
    pub fn record(&mut self, latency: Duration) {
        if self.in_current >= GENERATION {
            self.previous = self.current;
            self.in_previous = self.in_current;
            self.current = [0; BUCKETS];
            self.in_current = 0;
        }
        self.current[bucket(latency)] += 1;
        self.in_current += 1;
    }

    /// Samples the estimate stands on.
    pub fn samples(&self) -> u32 {
        u32::from(self.in_current) + u32::from(self.in_previous)
    }

    /// The `q`-quantile (`0 < q < 1`) of the recent latencies, as the upper bound of its
    /// bucket; `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.samples();
        if n == 0 {
            return None;
        }
        // The rank of the quantile, 1-based: the smallest bucket holding at least it.
        let rank = ((q.clamp(0.0, 1.0) * f64::from(n)).ceil() as u32)
            .max(1)
            .min(n);
        let mut seen = 0u32;
        for i in 0..BUCKETS {
            seen += u32::from(self.current[i]) + u32::from(self.previous[i]);
            if seen >= rank {
                return Some(bound(i));
            }
        }
        Some(bound(BUCKETS - 1))
    }
}

/// The bucket a latency falls in.
fn bucket(latency: Duration) -> usize {
    let ms = latency.as_nanos() as f64 / 1e6;
    if ms <= 1.0 {
        return 0;
    }
    let i = (ms.ln() / GROWTH.ln()).ceil() as usize;
    // Floating point may put a value that sits exactly on a bound one bucket up: step back.
    let i = if i > 0 && ms <= bound_ms(i - 1) {
        i - 1
    } else {
        i
    };
    i.min(BUCKETS - 1)
}

fn bound_ms(i: usize) -> f64 {
    GROWTH.powi(i as i32)
}

/// The upper bound of bucket `i`, rounded up to whole microseconds.
fn bound(i: usize) -> Duration {
    Duration::from_micros((bound_ms(i) * 1000.0).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn quantiles_are_within_one_bucket_above_the_true_value() {
        // (samples, q, true quantile): uniform 1..=1000 ms.
        let mut l = Latencies::default();
        for i in 1..=1000 {
            l.record(ms(i));
        }
        for (q, truth) in [(0.5, 500u64), (0.9, 900), (0.99, 990), (0.01, 10)] {
            let got = l.quantile(q).unwrap();
            assert!(got >= ms(truth), "q{q}: {got:?} < {truth} ms");
            assert!(
                got.as_secs_f64() <= ms(truth).as_secs_f64() * GROWTH,
                "q{q}: {got:?} more than one bucket above {truth} ms"
            );
        }
    }

    #[test]
    fn empty_has_no_quantile_and_extremes_land_in_the_end_buckets() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile(0.5), None);
        l.record(Duration::ZERO);
        assert_eq!(l.quantile(0.5), Some(ms(1)));
        l.record(Duration::from_secs(100_000));
        assert_eq!(l.quantile(0.99), Some(bound(BUCKETS - 1)));
        assert!(bound(BUCKETS - 1) > Duration::from_secs(80));
    }

    #[test]
    fn old_generations_are_forgotten() {
        let mut l = Latencies::default();
        for _ in 0..GENERATION {
            l.record(ms(500));
        }
        // The host got fast: after two more generations only fast samples are left.
        for _ in 0..2 * GENERATION {
            l.record(ms(10));
        }
        assert_eq!(l.samples(), 2 * u32::from(GENERATION));
        assert!(l.quantile(0.99).unwrap() <= ms(11));
    }

    #[test]
    fn a_bound_is_in_its_own_bucket() {
        for i in 1..BUCKETS {
            let b = Duration::from_nanos((bound_ms(i) * 1e6) as u64);
            assert!(bucket(b) <= i, "bound of {i} went to {}", bucket(b));
            assert!(bucket(b + ms(1)) >= i, "above the bound of {i}");
        }
    }
}
