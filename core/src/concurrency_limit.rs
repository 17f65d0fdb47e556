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
//! - **Gradient2**, behind Netflix's `WindowedLimit` with its average sample window: attempts
//!   faster than 100 µs are ignored; the others gather in a [`SampleWindow`] (fastest latency,
//!   sum, most in flight, count, any drop). When an attempt ends after the window's end, the
//!   window closes with it and the next one ends `clamp(2 · fastest, min_window, max_window)`
//!   later (the first attempt closes a window of one, so the first real window starts with
//!   the second); a closed window of at least `window_size` attempts is one sample for the
//!   rule below, with the window's average latency and most attempts in flight. The rule
//!   (`Gradient2Limit._update`): `long_rtt` is an exponential average of the samples' latency
//!   (a plain mean over the first ten); when it is over twice the sample it decays by 5 %.
//!   While at least half the estimate is in use, `gradient = clamp(tolerance · long_rtt / rtt,
//!   0.5, 1)` and the estimate moves `smoothing` of the way to `estimate · gradient +
//!   queue_size`, clamped to `[min, max]`; the limit is its integer part. Drops count only
//!   through their latency, as in Netflix's code.

use core::time::Duration;

use crate::config::{AdaptiveConcurrency, AimdConfig, Gradient2Config};
use crate::time::{duration_nanos, Instant};

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
        self.limit = limit.max(self.min).min(self.max);
        self.limit
    }
}

/// Netflix's `ImmutableAverageSampleWindow`: what one sampling window has seen, in whole
/// nanoseconds as Netflix keeps it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SampleWindow {
    min_rtt: u64,
    sum: u64,
    max_in_flight: u32,
    count: u32,
    dropped: bool,
}

impl Default for SampleWindow {
    fn default() -> Self {
        SampleWindow {
            min_rtt: u64::MAX,
            sum: 0,
            max_in_flight: 0,
            count: 0,
            dropped: false,
        }
    }
}

impl SampleWindow {
    /// The window with `s` added.
    pub fn with(self, s: Sample) -> Self {
        let rtt = duration_nanos(s.rtt);
        SampleWindow {
            min_rtt: self.min_rtt.min(rtt),
            sum: self.sum.saturating_add(rtt),
            max_in_flight: self.max_in_flight.max(s.in_flight),
            count: self.count + 1,
            dropped: self.dropped || s.verdict == Verdict::Dropped,
        }
    }

    /// The average latency (Java's integer division), 0 for an empty window.
    pub fn tracked_rtt_nanos(&self) -> u64 {
        match self.count {
            0 => 0,
            n => self.sum / u64::from(n),
        }
    }

    /// The fastest latency, `u64::MAX` for an empty window.
    pub fn candidate_rtt_nanos(&self) -> u64 {
        self.min_rtt
    }

    /// Attempts in the window.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The window as one sample: its average latency, its most attempts in flight, a drop if
    /// any attempt in it dropped.
    pub fn as_sample(&self) -> Sample {
        Sample {
            rtt: Duration::from_nanos(self.tracked_rtt_nanos()),
            in_flight: self.max_in_flight,
            verdict: if self.dropped {
                Verdict::Dropped
            } else {
                Verdict::Success
            },
        }
    }
}

/// Attempts faster than this say nothing about the host (`WindowedLimit`'s default
/// `minRttThreshold`).
pub const MIN_RTT: Duration = Duration::from_micros(100);

/// Netflix's `WindowedLimit`: gathers attempts into windows and hands a closed, full window on
/// as one sample.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Windowed {
    current: SampleWindow,
    /// When the current window ends, in nanoseconds on the engine's clock (0 before the first).
    next_update: u64,
    min_window: u64,
    max_window: u64,
    size: u32,
}

impl Windowed {
    /// Windows of `min_window`..`max_window` that count from `size` attempts.
    pub fn new(min_window: Duration, max_window: Duration, size: u32) -> Self {
        Windowed {
            current: SampleWindow::default(),
            next_update: 0,
            min_window: duration_nanos(min_window),
            max_window: duration_nanos(max_window),
            size,
        }
    }

    /// An attempt `s` that ended at `end`: the window it closed, as one sample, when that
    /// window was full enough to count.
    pub fn add(&mut self, s: Sample, end: Instant) -> Option<Sample> {
        if s.rtt < MIN_RTT {
            return None;
        }
        self.current = self.current.with(s);
        let end = end.as_nanos();
        if end <= self.next_update {
            return None;
        }
        let closed = core::mem::take(&mut self.current);
        let span = closed
            .candidate_rtt_nanos()
            .saturating_mul(2)
            .max(self.min_window)
            .min(self.max_window);
        self.next_update = end.saturating_add(span);
        let ready = closed.candidate_rtt_nanos() < u64::MAX && closed.count() >= self.size;
        ready.then(|| closed.as_sample())
    }
}

/// `Gradient2Limit` behind `WindowedLimit`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Gradient2 {
    window: Windowed,
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
            window: Windowed::new(
                Duration::from_millis(c.min_window_ms),
                Duration::from_millis(c.max_window_ms),
                c.window_size,
            ),
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

    /// The limit after attempt `s`, which ended at `end`: it moves only when `s` closes a
    /// sampling window that counts.
    pub fn sample(&mut self, s: Sample, end: Instant) -> u32 {
        match self.window.add(s, end) {
            Some(window) => self.update(window),
            None => self.estimate as u32,
        }
    }

    /// The limit after one window's sample `s` (`Gradient2Limit._update`). A zero latency
    /// counts as 1 ns, so the ratios stay finite.
    pub fn update(&mut self, s: Sample) -> u32 {
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
        // Not `f64::clamp`: its check that min <= max prints both with `{:?}`, and that
        // reference alone keeps `core`'s float formatting (21 KB) in the browser module. The
        // config validates min <= max; NaN passes through as with `clamp`.
        let (lo, hi) = (f64::from(self.min), f64::from(self.max));
        self.estimate = if next < lo {
            lo
        } else if next > hi {
            hi
        } else {
            next
        };
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

    /// Learns from one attempt that ended at `end`; returns the new limit.
    pub fn sample(&mut self, s: Sample, end: Instant) -> u32 {
        match self {
            ConcurrencyLimit::Aimd(a) => a.sample(s),
            ConcurrencyLimit::Gradient2(g) => g.sample(s, end),
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

    // From Gradient2Limit's formula (Netflix has no unit test for it), one window's sample at a
    // time: steady latency grows the estimate by smoothing · queue_size per sample; latency far
    // above the long-term average takes the gradient to its floor 0.5.
    #[test]
    fn gradient2_follows_its_formula() {
        let mut g = gradient2(20, 1, 200);
        // rtt = long_rtt: gradient clamp(1.5, 0.5, 1) = 1; 20 → 0.8·20 + 0.2·(20 + 4) = 20.8.
        assert_eq!(g.update(ok(10, 20)), 20);
        assert!((g.estimate() - 20.8).abs() < 1e-9);
        assert_eq!(g.update(ok(10, 20)), 21);
        assert!((g.estimate() - 21.6).abs() < 1e-9);
        // App-limited (5 < 21.6 / 2): nothing moves.
        assert_eq!(g.update(ok(10, 5)), 21);
        assert!((g.estimate() - 21.6).abs() < 1e-9);
        // A 1 s sample against a 10 ms history: long = (3·10 + 1000) / 4 = 257.5 ms,
        // gradient = clamp(1.5 · 257.5 / 1000) = 0.38625 → 0.5;
        // 21.6 → 0.8·21.6 + 0.2·(21.6·0.5 + 4) = 20.24.
        assert_eq!(g.update(ok(1_000, 21)), 20);
        assert!((g.estimate() - 20.24).abs() < 1e-9, "{}", g.estimate());
        assert!((g.long_rtt_nanos() - 257.5e6).abs() < 1.0);
    }

    #[test]
    fn gradient2_decays_a_stale_long_rtt_and_holds_its_bounds() {
        let mut g = gradient2(10, 10, 12);
        for _ in 0..10 {
            g.update(ok(100, 10));
        }
        // A 1 ms sample after a 100 ms history: long ≈ 100 ms > 2 · 1 ms → long decays 5 %.
        let before = g.long_rtt_nanos();
        let after_add = before * (1.0 - 2.0 / 601.0) + 1e6 * (2.0 / 601.0);
        g.update(ok(1, 10));
        assert!((g.long_rtt_nanos() - after_add * 0.95).abs() < 1e-3);
        for _ in 0..100 {
            assert!((10..=12).contains(&g.update(ok(1, 12))));
        }
        // A zero latency stays finite.
        assert!((10..=12).contains(&g.update(ok(0, 12))));
        assert!(g.estimate().is_finite());
    }

    // Netflix `ImmutableAverageSampleWindowTest`: `calculateAverage` and
    // `droppedSampleShouldNotChangeTrackedAverage` (latencies in nanoseconds, integer mean).
    #[test]
    fn sample_window_reproduces_netflix_tests() {
        let ns = |rtt: u64, dropped: bool| Sample {
            rtt: Duration::from_nanos(rtt),
            in_flight: 1,
            verdict: if dropped {
                Verdict::Dropped
            } else {
                Verdict::Success
            },
        };
        let (big, moderate, low) = (5_000, 500, 10);
        let w = SampleWindow::default()
            .with(ns(big, false))
            .with(ns(moderate, false))
            .with(ns(low, false));
        assert_eq!(w.tracked_rtt_nanos(), (big + moderate + low) / 3);
        let w = w.with(ns(big, true));
        assert_eq!(w.tracked_rtt_nanos(), (big + moderate + low + big) / 4);
        assert_eq!(w.candidate_rtt_nanos(), low);
        assert_eq!(w.as_sample().verdict, Verdict::Dropped);
        assert_eq!(SampleWindow::default().tracked_rtt_nanos(), 0);
    }

    /// `WindowedLimit.onSample`'s rules as a table: each row an attempt (when it ended, its
    /// latency in µs, attempts in flight, dropped) and the window sample it hands on, if any
    /// (average latency in µs, most in flight, any drop). Windows of 100 ms .. 1 s, 10 attempts.
    #[test]
    fn windowed_limit_rules_as_a_table() {
        type Row = (u64, u64, u32, bool, Option<(u64, u32, bool)>);
        let mut rows: Vec<Row> = vec![
            // Faster than 100 µs: ignored, it does not even close the first window.
            (1_000, 50, 1, false, None),
            // The first counted attempt closes a window of one (not enough): the next window
            // ends 1000 + clamp(2 · 5 ms, 100 ms, 1 s) = 1100 ms.
            (1_000, 5_000, 1, false, None),
        ];
        // Ten attempts of 10 ms up to 1100 ms: an attempt ending at the window's end does
        // not close it.
        rows.extend((1..=10).map(|i| (1_000 + 10 * i, 10_000, 3, false, None)));
        // One more at 1101 ms closes it: 11 attempts, (10 · 10 + 21) / 11 = 11 ms, at most 7 in
        // flight, one drop. The next window: 1101 + clamp(2 · 10 ms) = 1201 ms.
        rows.push((1_101, 21_000, 7, true, Some((11_000, 7, true))));
        // Nine slow ones, then the tenth after 1201 ms: a full window of 300 ms, no drop.
        rows.extend((1..=9).map(|i| (1_110 + 10 * i, 300_000, 2, false, None)));
        rows.push((1_202, 300_000, 2, false, Some((300_000, 2, false))));
        // That window's fastest was 300 ms: the next one lasts 600 ms, to 1802. Six attempts
        // are not enough to count.
        rows.extend((1..=5).map(|i| (1_300 + 100 * i, 1_000, 1, false, None)));
        rows.push((1_803, 1_000, 1, false, None));
        // Fastest 1 ms → the next window is the 100 ms minimum (to 1903); a sample before it
        // closes nothing, a full one after it counts.
        rows.extend((1..=9).map(|i| (1_803 + 10 * i, 2_000, 4, false, None)));
        rows.push((1_904, 2_000, 4, false, Some((2_000, 4, false))));
        let mut w = Windowed::new(Duration::from_millis(100), Duration::from_secs(1), 10);
        for (i, (end_ms, rtt_us, in_flight, dropped, want)) in rows.into_iter().enumerate() {
            let s = Sample {
                rtt: Duration::from_micros(rtt_us),
                in_flight,
                verdict: if dropped {
                    Verdict::Dropped
                } else {
                    Verdict::Success
                },
            };
            let got = w.add(s, Instant::ZERO + Duration::from_millis(end_ms));
            let got = got.map(|g| {
                (
                    g.rtt.as_micros() as u64,
                    g.in_flight,
                    g.verdict == Verdict::Dropped,
                )
            });
            assert_eq!(got, want, "row {i}");
        }
    }

    // Gradient2 through its windows: nothing moves until a window counts; then the window's
    // average and most in flight are one `_update` (20 → 20.8 as in the formula test), however
    // many attempts the window held.
    #[test]
    fn gradient2_moves_once_per_window() {
        let mut g = gradient2(20, 1, 200);
        let at = |ms: u64| Instant::ZERO + Duration::from_millis(ms);
        assert_eq!(g.sample(ok(10, 20), at(1)), 20, "the window of one");
        for i in 0..50 {
            g.sample(ok(10, 20), at(2 + i));
            assert_eq!(g.estimate(), 20.0, "inside the first 1 s window");
        }
        assert_eq!(g.sample(ok(10, 20), at(1_002)), 20);
        assert!((g.estimate() - 20.8).abs() < 1e-9, "{}", g.estimate());
        assert!((g.long_rtt_nanos() - 10e6).abs() < 1.0);
    }
}
