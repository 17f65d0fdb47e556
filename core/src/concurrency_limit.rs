//! Adaptive concurrency limits (Netflix's concurrency-limits, `AIMDLimit` and
//! `Gradient2Limit`): how many attempts may be in flight to a host, learned from each attempt's
//! latency and from drops.
//!
//! Each finished attempt is one [`Sample`]: its latency, the attempts in flight when it was sent
//! (itself included, as Netflix's limiter counts them), and whether it was a drop. The limit
//! moves on every sample, as `AbstractLimit::onSample` does; the state is a few numbers, and a
//! decision allocates nothing.
//!
//! - **AIMD**: a drop, or an attempt slower than the timeout, multiplies the limit by the
//!   backoff ratio (truncated, as Java's `(int)` does); a success while at least half the limit
//!   was in flight adds one; the result is clamped to `[min, max]`.
//! - **Gradient2**: `long_rtt` is an exponential average of latencies (a plain mean over the
//!   first ten); when it is over twice the sample it decays by 5 %. While at least half the
//!   estimate is in use, `gradient = clamp(tolerance · long_rtt / rtt, 0.5, 1)` and the estimate
//!   moves `smoothing` of the way to `estimate · gradient + queue_size`, clamped to
//!   `[min, max]`; the limit is its integer part. Drops count only through their latency, as in
//!   Netflix's code.

use core::time::Duration;

use crate::config::{AdaptiveConcurrency, AimdConfig, Gradient2Config};

/// How a finished attempt bears on the host's capacity.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The host answered (1xx–3xx, or a final 4xx other than 429).
    Success,
    /// The host shed the attempt: 429, 502, 503, 504, or the attempt timed out.
    Dropped,
}

/// One finished attempt.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Its latency, send to outcome.
    pub rtt: Duration,
    /// Attempts in flight to the host when it was sent, itself included.
    pub in_flight: u32,
    /// Success or drop.
    pub verdict: Verdict,
}

/// Netflix's `ExpAvgMeasurement`: a plain mean over the first `warmup` samples, then an
/// exponential average with factor `2 / (window + 1)`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ExpAvg {
    value: f64,
    sum: f64,
    count: u32,
    window: u32,
    warmup: u32,
}

impl ExpAvg {
    /// An empty average over `window` samples after `warmup` plain ones.
    pub fn new(window: u32, warmup: u32) -> Self {
        ExpAvg {
            value: 0.0,
            sum: 0.0,
            count: 0,
            window,
            warmup,
        }
    }

    /// Adds a sample; returns the new average.
    pub fn add(&mut self, sample: f64) -> f64 {
        if self.count < self.warmup {
            self.count += 1;
            self.sum += sample;
            self.value = self.sum / f64::from(self.count);
        } else {
            let factor = 2.0 / (f64::from(self.window) + 1.0);
            self.value = self.value * (1.0 - factor) + sample * factor;
        }
        self.value
    }

    /// The average.
    pub fn get(&self) -> f64 {
        self.value
    }

    fn scale(&mut self, by: f64) {
        self.value *= by;
    }
}

/// `AIMDLimit`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Aimd {
    limit: u32,
    min: u32,
    max: u32,
    backoff_ratio: f64,
    timeout: Duration,
}

impl Aimd {
    /// From a validated config.
    pub fn new(c: &AimdConfig) -> Self {
        Aimd {
            limit: c.initial_limit,
            min: c.min_limit,
            max: c.max_limit,
            backoff_ratio: c.backoff_ratio,
            timeout: Duration::from_millis(c.timeout_ms),
        }
    }

    /// The limit after `s`.
    pub fn sample(&mut self, s: Sample) -> u32 {
        let mut limit = self.limit;
        if s.verdict == Verdict::Dropped || s.rtt > self.timeout {
            limit = (f64::from(limit) * self.backoff_ratio) as u32;
        } else if u64::from(s.in_flight) * 2 >= u64::from(limit) {
            limit = limit.saturating_add(1);
        }
        self.limit = limit.clamp(self.min, self.max);
        self.limit
    }
}

/// `Gradient2Limit`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Gradient2 {
    estimate: f64,
    long_rtt: ExpAvg,
    min: u32,
    max: u32,
    smoothing: f64,
    queue_size: f64,
    tolerance: f64,
}

impl Gradient2 {
    /// From a validated config.
    pub fn new(c: &Gradient2Config) -> Self {
        Gradient2 {
            estimate: f64::from(c.initial_limit),
            long_rtt: ExpAvg::new(c.long_window, 10),
            min: c.min_limit,
            max: c.max_limit,
            smoothing: c.smoothing,
            queue_size: f64::from(c.queue_size),
            tolerance: c.rtt_tolerance,
        }
    }

    /// The estimated limit, before truncation.
    pub fn estimate(&self) -> f64 {
        self.estimate
    }

    /// The long-term average latency, in nanoseconds.
    pub fn long_rtt_nanos(&self) -> f64 {
        self.long_rtt.get()
    }

    /// The limit after `s`. A zero latency counts as 1 ns, so the ratios stay finite.
    pub fn sample(&mut self, s: Sample) -> u32 {
        let short = (s.rtt.as_nanos() as f64).max(1.0);
        let long = self.long_rtt.add(short);
        if long / short > 2.0 {
            self.long_rtt.scale(0.95);
        }
        if f64::from(s.in_flight) < self.estimate / 2.0 {
            // Not using the limit: the sample says nothing about it.
            return self.estimate as u32;
        }
        let gradient = (self.tolerance * long / short).clamp(0.5, 1.0);
        let target = self.estimate * gradient + self.queue_size;
        let next = self.estimate * (1.0 - self.smoothing) + target * self.smoothing;
        self.estimate = next.clamp(f64::from(self.min), f64::from(self.max));
        self.estimate as u32
    }
}

/// A host's adaptive concurrency limit.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum ConcurrencyLimit {
    /// AIMD.
    Aimd(Aimd),
    /// Gradient2.
    Gradient2(Gradient2),
}

impl ConcurrencyLimit {
    /// A limit at the config's initial value.
    pub fn new(config: &AdaptiveConcurrency) -> Self {
        match config {
            AdaptiveConcurrency::Aimd(c) => ConcurrencyLimit::Aimd(Aimd::new(c)),
            AdaptiveConcurrency::Gradient2(c) => ConcurrencyLimit::Gradient2(Gradient2::new(c)),
        }
    }

    /// Attempts that may be in flight now.
    pub fn limit(&self) -> u32 {
        match self {
            ConcurrencyLimit::Aimd(a) => a.limit,
            ConcurrencyLimit::Gradient2(g) => g.estimate as u32,
        }
    }

    /// Learns from one finished attempt; returns the new limit.
    pub fn sample(&mut self, s: Sample) -> u32 {
        match self {
            ConcurrencyLimit::Aimd(a) => a.sample(s),
            ConcurrencyLimit::Gradient2(g) => g.sample(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ok(rtt_ms: u64, in_flight: u32) -> Sample {
        Sample {
            rtt: Duration::from_millis(rtt_ms),
            in_flight,
            verdict: Verdict::Success,
        }
    }

    fn dropped(rtt_ms: u64, in_flight: u32) -> Sample {
        Sample {
            verdict: Verdict::Dropped,
            ..ok(rtt_ms, in_flight)
        }
    }

    fn aimd(initial: u32, min: u32, max: u32) -> Aimd {
        Aimd::new(&AimdConfig {
            initial_limit: initial,
            min_limit: min,
            max_limit: max,
            ..AimdConfig::default()
        })
    }

    // Netflix concurrency-limits `AIMDLimitTest`, each case with its numbers.
    #[test]
    fn aimd_reproduces_netflix_tests() {
        // testDefault: initialLimit(10) → 10 (resile validates min ≤ initial, so min 10).
        assert_eq!(aimd(10, 10, 200).limit, 10);
        // increaseOnSuccess: initial 20, a 1 ms success with 10 in flight → 21.
        assert_eq!(aimd(20, 20, 200).sample(ok(1, 10)), 21);
        // decreaseOnDrops: initial 30, a drop → 27.
        assert_eq!(aimd(30, 20, 200).sample(dropped(0, 0)), 27);
        // successOverflow: initial 21, max 21, min 0 (here 1) → stays 21.
        assert_eq!(aimd(21, 1, 21).sample(ok(1, 10)), 21);
    }

    // From the rule: no growth while less than half the limit is in use; a slow success is a
    // drop; the floor holds; the truncation is Java's `(int)`.
    #[test]
    fn aimd_rules() {
        let mut a = aimd(10, 2, 100);
        assert_eq!(a.sample(ok(1, 4)), 10, "4 of 10 in use: app-limited");
        assert_eq!(a.sample(ok(1, 5)), 11);
        assert_eq!(
            a.sample(ok(6_000, 11)),
            9,
            "slower than the 5 s timeout: 11·0.9 = 9.9 → 9"
        );
        let mut floor = aimd(2, 2, 10);
        assert_eq!(
            floor.sample(dropped(1, 2)),
            2,
            "1.8 → 1, held at the minimum 2"
        );
    }

    // Netflix `ExpAvgMeasurementTest.testWarmup`: window 100, warm-up 10, samples 10..19 give
    // the running mean 10, 10.5, ..., 14.5; then 100 gives 16.2 (±0.1).
    #[test]
    fn exp_avg_reproduces_netflix_warmup_test() {
        let mut avg = ExpAvg::new(100, 10);
        let expected = [10.0, 10.5, 11.0, 11.5, 12.0, 12.5, 13.0, 13.5, 14.0, 14.5];
        for (i, want) in expected.into_iter().enumerate() {
            avg.add(10.0 + i as f64);
            assert!((avg.get() - want).abs() < 0.01, "sample {i}");
        }
        avg.add(100.0);
        assert!((avg.get() - 16.2).abs() < 0.1, "{}", avg.get());
    }

    fn gradient2(initial: u32, min: u32, max: u32) -> Gradient2 {
        Gradient2::new(&Gradient2Config {
            initial_limit: initial,
            min_limit: min,
            max_limit: max,
            ..Gradient2Config::default()
        })
    }

    // From Gradient2Limit's formula (Netflix has no unit test for it): steady latency grows the
    // estimate by smoothing · queue_size per sample; latency far above the long-term average
    // takes the gradient to its floor 0.5.
    #[test]
    fn gradient2_follows_its_formula() {
        let mut g = gradient2(20, 1, 200);
        // rtt = long_rtt: gradient clamp(1.5, 0.5, 1) = 1; 20 → 0.8·20 + 0.2·(20 + 4) = 20.8.
        assert_eq!(g.sample(ok(10, 20)), 20);
        assert!((g.estimate() - 20.8).abs() < 1e-9);
        assert_eq!(g.sample(ok(10, 20)), 21);
        assert!((g.estimate() - 21.6).abs() < 1e-9);
        // App-limited (5 < 21.6 / 2): nothing moves.
        assert_eq!(g.sample(ok(10, 5)), 21);
        assert!((g.estimate() - 21.6).abs() < 1e-9);
        // A 1 s sample against a 10 ms history: long = (3·10 + 1000) / 4 = 257.5 ms,
        // gradient = clamp(1.5 · 257.5 / 1000) = 0.38625 → 0.5;
        // 21.6 → 0.8·21.6 + 0.2·(21.6·0.5 + 4) = 20.24.
        assert_eq!(g.sample(ok(1_000, 21)), 20);
        assert!((g.estimate() - 20.24).abs() < 1e-9, "{}", g.estimate());
        assert!((g.long_rtt_nanos() - 257.5e6).abs() < 1.0);
    }

    #[test]
    fn gradient2_decays_a_stale_long_rtt_and_holds_its_bounds() {
        let mut g = gradient2(10, 10, 12);
        for _ in 0..10 {
            g.sample(ok(100, 10));
        }
        // A 1 ms sample after a 100 ms history: long ≈ 100 ms > 2 · 1 ms → long decays 5 %.
        let before = g.long_rtt_nanos();
        let after_add = before * (1.0 - 2.0 / 601.0) + 1e6 * (2.0 / 601.0);
        g.sample(ok(1, 10));
        assert!((g.long_rtt_nanos() - after_add * 0.95).abs() < 1e-3);
        for _ in 0..100 {
            assert!((10..=12).contains(&g.sample(ok(1, 12))));
        }
        // A zero latency stays finite.
        assert!((10..=12).contains(&g.sample(ok(0, 12))));
        assert!(g.estimate().is_finite());
    }
}
