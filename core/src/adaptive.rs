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
//! Two ways to take a token: [`AdaptiveRate::acquire`] takes one if it is there and otherwise
//! says when it will be (aws-sdk-go-v2's `AcquireToken`); [`AdaptiveRate::reserve`] always takes
//! it, letting the bucket go below zero, and says how long to wait for it (smithy-rs's
//! `acquire_permission_to_send_a_request`), so callers that wait are paced one after the other
//! instead of all waking at once. The engine reserves, one token per attempt (the Go SDK's
//! `RequestCost`; smithy-rs charges retries 5 and 10).
//!
//! What counts as a throttle is [`signal`]'s: 429, or an AWS throttling error code in
//! `x-amzn-ErrorType` (aws-sdk-go-v2 `DefaultThrottleErrorCodes`).
//!
//! Time is an input: every method takes the driver's [`Instant`]; nothing here reads a clock.

use crate::headers::Headers;
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

/// The error codes AWS SDKs treat as throttles (aws-sdk-go-v2 `aws/retry/standard.go`,
/// `DefaultThrottleErrorCodes`).
pub const THROTTLING_CODES: [&str; 14] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// What an answer says about the server's load: a 429, or an error status whose
/// `x-amzn-ErrorType` (`Code`, `Code:uri` or `namespace#Code`) is one of [`THROTTLING_CODES`]
/// (a 503 `SlowDown`, a 400 `ThrottlingException`), is a throttle; anything else is not.
pub fn signal(status: u16, headers: &dyn Headers) -> Signal {
    if status == 429 {
        return Signal::Throttled;
    }
    if status < 400 {
        return Signal::NotThrottled;
    }
    let code = headers.get("x-amzn-errortype").map(|v| {
        let v = v.split(':').next().unwrap_or(v).trim();
        v.rsplit('#').next().unwrap_or(v)
    });
    match code {
        Some(code) if THROTTLING_CODES.contains(&code) => Signal::Throttled,
        _ => Signal::NotThrottled,
    }
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
        Err(NotUntil {
            at: self.ready_at(now, amount - self.tokens),
        })
    }

    /// Takes `amount` tokens at `now`, going below zero if need be, and says when the request
    /// may go: `None` now (or the bucket is off), `Some(t)` once the deficit is refilled.
    pub fn reserve(&mut self, now: Instant, amount: f64) -> Option<Instant> {
        if !self.enabled {
            return None;
        }
        self.refill(seconds(now));
        let wait = (amount > self.tokens).then(|| self.ready_at(now, amount - self.tokens));
        self.tokens -= amount;
        wait
    }

    /// When `amount` tokens would be there, without taking them: `None` if they are now (or
    /// the bucket is off).
    pub fn wait_until(&self, now: Instant, amount: f64) -> Option<Instant> {
        if !self.enabled {
            return None;
        }
        let tokens = self.refilled(seconds(now));
        (amount > tokens).then(|| self.ready_at(now, amount - tokens))
    }

    fn ready_at(&self, now: Instant, deficit: f64) -> Instant {
        let wait_ns = (deficit / self.fill_rate * 1e9).ceil();
        let wait_ns = if wait_ns.is_finite() && wait_ns < u64::MAX as f64 {
            wait_ns as u64
        } else {
            u64::MAX
        };
        Instant::from_nanos(now.as_nanos().saturating_add(wait_ns))
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

    fn refilled(&self, t: f64) -> f64 {
        match self.last_refill {
            Some(last) => {
                let added = (t - last).max(0.0) * self.fill_rate;
                (self.tokens + added).min(self.capacity)
            }
            None => self.tokens,
        }
    }

    fn refill(&mut self, t: f64) {
        self.tokens = self.refilled(t);
        // Time that seems to go backwards adds nothing now and is not counted twice later.
        self.last_refill = Some(self.last_refill.map_or(t, |last| last.max(t)));
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

    // aws-sdk-go-v2 `adaptive_ratelimit_test.go`, `TestAdaptiveRateLimit_cubic`, case "mixed"
    // (smithy-rs `client_rate_limiter.rs`, `test_calculated_rate_with_throttles`, has the same
    // numbers): a throttle takes 0.7 of the last calculated rate and becomes the new
    // lastMaxRate and lastThrottleTime, as those tests do.
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

    // smithy-rs `client_rate_limiter.rs`, `should_match_beta_decrease`: cubic_throttle(10) = 7,
    // and a success at the instant of the throttle (lastMaxRate 10) gives 7 too.
    #[test]
    fn beta_decrease_matches_smithy() {
        close(7.0, cubic_throttle(10.0), "cubic_throttle(10)");
        close(
            7.0,
            cubic_success(0.0, 10.0),
            "cubic_success at the throttle",
        );
    }

    // smithy-rs `client_rate_limiter.rs`, `test_client_sending_rates`, with its digits (the
    // same run as the Go table above, printed to more places): a limiter built at 0, one
    // answer every 200 ms, throttles at 2.0 s and 3.2 s.
    #[test]
    fn measured_and_fill_rates_follow_smithys_table() {
        let table = [
            (200, false, 0.000000, 0.500000),
            (400, false, 0.000000, 0.500000),
            (600, false, 4.800000000000001, 0.500000),
            (800, false, 4.800000000000001, 0.500000),
            (1000, false, 4.160000, 0.500000),
            (1200, false, 4.160000, 0.691200),
            (1400, false, 4.160000, 1.0975999999999997),
            (1600, false, 5.632000000000001, 1.6384000000000005),
            (1800, false, 5.632000000000001, 2.332800),
            (2000, true, 4.326400, 3.0284799999999996),
            (2200, false, 4.326400, 3.48663917347026),
            (2400, false, 4.326400, 3.821874416040255),
            (2600, false, 5.665280, 4.053385727709987),
            (2800, false, 5.665280, 4.200373108479454),
            (3000, false, 4.333056, 4.282036558348658),
            (3200, true, 4.333056, 2.99742559084406),
            (3400, false, 4.333056, 3.4522263943863463),
        ];
        let mut a = AdaptiveRate::new(Instant::ZERO);
        for (ms, throttled, measured, fill) in table {
            let signal = if throttled {
                Signal::Throttled
            } else {
                Signal::NotThrottled
            };
            a.update(Instant::from_millis(ms), signal);
            close(measured, a.measured_rate(), &format!("measured at {ms} ms"));
            close(fill, a.fill_rate(), &format!("fill at {ms} ms"));
        }
    }

    // From the rule (smithy-rs's reservation): each caller takes its token at once, the bucket
    // goes below zero, and the waits queue up one fill interval apart.
    #[test]
    fn reservations_pace_waiters_one_after_the_other() {
        let mut a = AdaptiveRate::new(Instant::ZERO);
        assert_eq!(a.reserve(Instant::ZERO, 1.0), None, "off: no wait");
        a.update(Instant::ZERO, Signal::Throttled);
        // Fill 0.5/s, no tokens: 2 s, 4 s, 6 s.
        let t = Instant::from_millis(0);
        assert_eq!(a.wait_until(t, 1.0), Some(Instant::from_millis(2_000)));
        assert_eq!(a.reserve(t, 1.0), Some(Instant::from_millis(2_000)));
        assert_eq!(a.reserve(t, 1.0), Some(Instant::from_millis(4_000)));
        assert_eq!(a.wait_until(t, 1.0), Some(Instant::from_millis(6_000)));
        assert_eq!(a.reserve(t, 1.0), Some(Instant::from_millis(6_000)));
        // After 6 s the debt is paid: one more token takes another 2 s.
        let later = Instant::from_millis(6_000);
        assert_eq!(a.reserve(later, 1.0), Some(Instant::from_millis(8_000)));
        // A full bucket (capacity 1) serves one at once.
        let full = Instant::from_millis(20_000);
        assert_eq!(a.wait_until(full, 1.0), None);
        assert_eq!(a.reserve(full, 1.0), None);
    }

    // smithy-rs `test_when_throttling_is_enabled_requests_can_still_be_sent`, with a fixed
    // sequence of gaps instead of random ones: after a throttle, every request waits at most
    // what its reservation says, and the limiter stays on and follows the clock.
    #[test]
    fn after_a_throttle_requests_still_go() {
        let mut a = AdaptiveRate::new(Instant::ZERO);
        a.update(Instant::ZERO, Signal::Throttled);
        let mut now = Instant::ZERO;
        for i in 0..100u64 {
            now = Instant::from_nanos(now.as_nanos() + (i * 7_919 % 1_000) * 1_000_000);
            if let Some(at) = a.reserve(now, 1.0) {
                assert!(at > now);
                now = at;
            }
            a.update(now, Signal::NotThrottled);
        }
        assert!(a.is_enabled());
        assert!(a.fill_rate() >= MIN_FILL_RATE);
    }

    #[test]
    fn throttle_signals() {
        // (status, x-amzn-ErrorType, signal)
        let table = [
            (429, None, Signal::Throttled),
            (503, None, Signal::NotThrottled),
            (500, None, Signal::NotThrottled),
            (200, None, Signal::NotThrottled),
            (400, Some("ThrottlingException"), Signal::Throttled),
            (
                503,
                Some("SlowDown:http://internal.amazon.com/coral/"),
                Signal::Throttled,
            ),
            (
                400,
                Some("com.amazon.coral#RequestLimitExceeded"),
                Signal::Throttled,
            ),
            (400, Some("ValidationException"), Signal::NotThrottled),
            // A success is never a throttle, whatever it says.
            (200, Some("ThrottlingException"), Signal::NotThrottled),
        ];
        for (status, code, want) in table {
            let headers: Vec<(String, String)> = code
                .map(|c| ("x-amzn-ErrorType".to_string(), c.to_string()))
                .into_iter()
                .collect();
            assert_eq!(signal(status, &headers), want, "{status} {code:?}");
        }
    }
}
