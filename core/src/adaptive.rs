//! Adaptive client rate (AWS SDKs' "adaptive" retry mode): a client-side token bucket that stays
//! off until the first throttling answer, then fills at a rate that follows the measured send
//! rate: ×0.7 on each throttle and CUBIC growth back towards (and past) the rate at the last
//! throttle while answers succeed.
//!
//! The arithmetic is the one the AWS SDKs share (aws-sdk-go-v2 `aws/retry/adaptive_ratelimit.go`,
//! smithy-rs `aws-smithy-runtime/src/client/retries/client_rate_limiter.rs`):
//!
//! - the send rate is measured in half-second buckets and smoothed, `measured = 0.8·current +
//!   0.2·measured`;
//! - on a throttle, `last_max = min(measured, fill)` (just `measured` while the bucket is still
//!   off), `calculated = 0.7·last_max`, and the bucket turns on;
//! - on a success, `calculated = 0.4·(t − t_throttle − W)³ + last_max` with
//!   `W = ∛(last_max·(1 − 0.7) / 0.4)`;
//! - the fill rate becomes `max(min(calculated, 2·measured), 0.5)` per second, and the bucket
//!   holds at most `max(min(calculated, 2·measured), 1)` tokens.
//!
//! Time is an input: every method takes the driver's [`Instant`]; nothing here reads a clock.

use crate::time::Instant;

/// The smallest fill rate, in tokens per second.
pub const MIN_FILL_RATE: f64 = 0.5;
/// The smallest bucket capacity, in tokens.
pub const MIN_CAPACITY: f64 = 1.0;
/// The weight of the newest half-second bucket in the measured send rate.
pub const SMOOTH: f64 = 0.8;
/// The multiplicative back-off on a throttle.
pub const BETA: f64 = 0.7;
/// How fast the rate grows back after a throttle (CUBIC's `C`).
pub const SCALE_CONSTANT: f64 = 0.4;

/// CUBIC's `W`: the seconds after a throttle at which the rate is back at `last_max_rate`.
pub fn time_window(last_max_rate: f64) -> f64 {
    (last_max_rate * (1.0 - BETA) / SCALE_CONSTANT).cbrt()
}

/// The rate CUBIC allows `since_throttle` seconds after a throttle at `last_max_rate`.
pub fn cubic_success(since_throttle: f64, last_max_rate: f64) -> f64 {
    let dt = since_throttle - time_window(last_max_rate);
    SCALE_CONSTANT * dt.powi(3) + last_max_rate
}

/// The rate after a throttle while sending at `rate`.
pub fn cubic_throttle(rate: f64) -> f64 {
    rate * BETA
}

/// What the last answer said about the server's load.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The server throttled the call (429, `Throttling`, `SlowDown`, ...).
    Throttled,
    /// Any other answer.
    NotThrottled,
}

/// The bucket is empty: the next send may go at `at`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NotUntil {
    /// When enough tokens will have been added.
    pub at: Instant,
}

/// The adaptive client rate limiter's whole state.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveRate {
    fill_rate: f64,
    capacity: f64,
    tokens: f64,
    last_refill: Option<f64>,
    measured_rate: f64,
    bucket_start: f64,
    requests_in_bucket: u64,
    enabled: bool,
    last_max_rate: f64,
    last_throttle: f64,
    calculated_rate: f64,
}

fn seconds(t: Instant) -> f64 {
    t.as_nanos() as f64 / 1e9
}

impl AdaptiveRate {
    /// A limiter created at `now`: off (every send allowed) until the first throttle.
    pub fn new(now: Instant) -> Self {
        let t = seconds(now);
        AdaptiveRate {
            fill_rate: 0.0,
            capacity: f64::MAX,
            tokens: 0.0,
            last_refill: None,
            measured_rate: 0.0,
            bucket_start: t.floor(),
            requests_in_bucket: 0,
            enabled: false,
            last_max_rate: 0.0,
            last_throttle: t,
            calculated_rate: 0.0,
        }
    }

    /// Whether a throttle has turned the bucket on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Tokens per second the bucket fills at (meaningful once enabled).
    pub fn fill_rate(&self) -> f64 {
        self.fill_rate
    }

    /// The smoothed send rate, in requests per second.
    pub fn measured_rate(&self) -> f64 {
        self.measured_rate
    }

    /// The rate CUBIC computed on the last update, before the `2·measured` bound.
    pub fn calculated_rate(&self) -> f64 {
        self.calculated_rate
    }

    /// May a request costing `amount` tokens go at `now`? Always yes while the bucket is off;
    /// otherwise it takes the tokens, or says when enough will be there.
    pub fn acquire(&mut self, now: Instant, amount: f64) -> Result<(), NotUntil> {
        if !self.enabled {
            return Ok(());
        }
        self.refill(seconds(now));
        if self.tokens >= amount {
            self.tokens -= amount;
            return Ok(());
        }
        let wait_s = (amount - self.tokens) / self.fill_rate;
        let wait_ns = (wait_s * 1e9).ceil();
        let wait_ns = if wait_ns.is_finite() && wait_ns < u64::MAX as f64 {
            wait_ns as u64
        } else {
            u64::MAX
        };
        Err(NotUntil {
            at: Instant::from_nanos(now.as_nanos().saturating_add(wait_ns)),
        })
    }

    /// Records an answer received at `now`.
    pub fn update(&mut self, now: Instant, signal: Signal) {
        let t = seconds(now);
        self.measure(t);
        match signal {
            Signal::Throttled => {
                let rate = if self.enabled {
                    self.measured_rate.min(self.fill_rate)
                } else {
                    self.measured_rate
                };
                self.last_max_rate = rate;
                self.last_throttle = t;
                self.calculated_rate = cubic_throttle(rate);
                self.enabled = true;
            }
            Signal::NotThrottled => {
                self.calculated_rate = cubic_success(t - self.last_throttle, self.last_max_rate);
            }
        }
        let new_rate = self.calculated_rate.min(2.0 * self.measured_rate);
        self.refill(t);
        self.fill_rate = new_rate.max(MIN_FILL_RATE);
        self.capacity = new_rate.max(MIN_CAPACITY);
        self.tokens = self.tokens.min(self.capacity);
    }

    fn refill(&mut self, t: f64) {
        if let Some(last) = self.last_refill {
            let added = (t - last).max(0.0) * self.fill_rate;
            self.tokens = (self.tokens + added).min(self.capacity);
        }
        self.last_refill = Some(t);
    }

    fn measure(&mut self, t: f64) {
        let bucket = (t * 2.0).floor() / 2.0;
        self.requests_in_bucket += 1;
        if bucket > self.bucket_start {
            let current = self.requests_in_bucket as f64 / (bucket - self.bucket_start);
            self.measured_rate = current * SMOOTH + self.measured_rate * (1.0 - SMOOTH);
            self.requests_in_bucket = 0;
            self.bucket_start = bucket;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn close(expected: f64, got: f64, what: &str) {
        assert!(
            (expected - got).abs() < 1e-9,
            "{what}: expected {expected}, got {got}"
        );
    }

    // smithy-rs `client_rate_limiter.rs`, `it_sets_the_time_window_correctly`.
    #[test]
    fn time_window_of_ten() {
        close(1.9574338205844317, time_window(10.0), "W(10)");
    }

    // aws-sdk-go-v2 `aws/retry/adaptive_ratelimit_test.go`, `TestAdaptiveRateLimit_cubic`,
    // case "success" (the same numbers are in smithy-rs `test_calculated_rate_with_successes`):
    // lastMaxRate 10, lastThrottleTime 5, a success at t = 5..11.
    #[test]
    fn cubic_successes_after_a_throttle_at_five() {
        let table = [
            (5.0, 7.0),
            (6.0, 9.64893600966),
            (7.0, 10.000030849917364),
            (8.0, 10.453284520772092),
            (9.0, 13.408697022224185),
            (10.0, 21.26626835427364),
            (11.0, 36.425998516920465),
        ];
        for (t, expected) in table {
            close(expected, cubic_success(t - 5.0, 10.0), &format!("t={t}"));
        }
    }

    // aws-sdk-go-v2 `adaptive_ratelimit_test.go`, `TestAdaptiveRateLimit_cubic`, case "mixed":
    // a throttle takes 0.7 of the last calculated rate and becomes the new lastMaxRate and
    // lastThrottleTime, as that test does.
    #[test]
    fn cubic_mixed_throttles_and_successes() {
        let table = [
            (Signal::NotThrottled, 5.0, 7.0),
            (Signal::NotThrottled, 6.0, 9.64893600966),
            (Signal::Throttled, 7.0, 6.754255206761999),
            (Signal::Throttled, 8.0, 4.727978644733399),
            (Signal::NotThrottled, 9.0, 4.670125557970046),
            (Signal::NotThrottled, 10.0, 4.770870456867401),
            (Signal::NotThrottled, 11.0, 6.011819748005445),
            (Signal::NotThrottled, 12.0, 10.792973431384178),
        ];
        let (mut last_max, mut last_throttle, mut rate) = (10.0, 5.0, 0.0);
        for (signal, t, expected) in table {
            match signal {
                Signal::Throttled => {
                    rate = cubic_throttle(rate);
                    last_throttle = t;
                    last_max = rate;
                }
                Signal::NotThrottled => rate = cubic_success(t - last_throttle, last_max),
            }
            close(expected, rate, &format!("t={t}"));
        }
    }

    // aws-sdk-go-v2 `adaptive_ratelimit_test.go`, `TestAdaptiveRateLimit_Update`, case "base":
    // a limiter created at t=0, one answer every 200 ms, throttles at 2.0 s and 3.2 s; the
    // measured send rate and the fill rate after each update.
    #[test]
    fn measured_and_fill_rates_follow_the_published_table() {
        let table = [
            (200, Signal::NotThrottled, 0.0, 0.5),
            (400, Signal::NotThrottled, 0.0, 0.5),
            (600, Signal::NotThrottled, 4.8, 0.5),
            (800, Signal::NotThrottled, 4.8, 0.5),
            (1000, Signal::NotThrottled, 4.16, 0.5),
            (1200, Signal::NotThrottled, 4.16, 0.6912),
            (1400, Signal::NotThrottled, 4.16, 1.0976),
            (1600, Signal::NotThrottled, 5.632, 1.6384),
            (1800, Signal::NotThrottled, 5.632, 2.3328),
            (2000, Signal::Throttled, 4.3264, 3.02848),
            (2200, Signal::NotThrottled, 4.3264, 3.4866391734702598),
            (2400, Signal::NotThrottled, 4.3264, 3.8218744160402554),
            (2600, Signal::NotThrottled, 5.665280, 4.053385727709987),
            (2800, Signal::NotThrottled, 5.665280, 4.200373108479455),
            (3000, Signal::NotThrottled, 4.333056, 4.282036558348658),
            (3200, Signal::Throttled, 4.333056, 2.99742559084406),
            (3400, Signal::NotThrottled, 4.333056, 3.4522263943863463),
        ];
        let mut a = AdaptiveRate::new(Instant::ZERO);
        for (ms, signal, measured, fill) in table {
            a.update(Instant::from_millis(ms), signal);
            close(measured, a.measured_rate(), &format!("measured at {ms} ms"));
            close(fill, a.fill_rate(), &format!("fill at {ms} ms"));
        }
    }

    // From the rule: off until the first throttle, then a bucket of at most
    // max(rate, 1) tokens filled at the fill rate.
    #[test]
    fn off_until_the_first_throttle_then_paced() {
        let mut a = AdaptiveRate::new(Instant::ZERO);
        for i in 0..100 {
            assert_eq!(a.acquire(Instant::from_millis(i), 1.0), Ok(()));
        }
        assert!(!a.is_enabled());
        a.update(Instant::from_millis(100), Signal::Throttled);
        assert!(a.is_enabled());
        // Measured rate 0 (one bucket not yet closed) → fill 0.5/s, capacity 1, no tokens yet.
        assert_eq!(a.fill_rate(), MIN_FILL_RATE);
        let t = Instant::from_millis(100);
        let err = a.acquire(t, 1.0).unwrap_err();
        assert_eq!(err.at, Instant::from_millis(2_100));
        assert_eq!(a.acquire(Instant::from_millis(2_100), 1.0), Ok(()));
        assert!(a.acquire(Instant::from_millis(2_100), 1.0).is_err());
    }

    #[test]
    fn time_going_backwards_adds_no_tokens() {
        let mut a = AdaptiveRate::new(Instant::ZERO);
        a.update(Instant::from_millis(5_000), Signal::Throttled);
        assert!(a.acquire(Instant::from_millis(5_000), 1.0).is_err());
        assert!(a.acquire(Instant::from_millis(1_000), 1.0).is_err());
    }
}
