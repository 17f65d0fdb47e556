//! The adaptive parts of the config: AWS's adaptive client rate ([`AdaptiveRateConfig`]) and
//! Netflix's adaptive concurrency limits ([`AdaptiveConcurrency`]). Both are per host and off by
//! default.

use serde::Serialize;

use super::{check_ms, out_of_range, ConfigError};

/// AWS's adaptive client rate (the SDKs' "adaptive" retry mode), per host; see
/// [`crate::adaptive`]. Off until the host first throttles a call (429, or an AWS throttling
/// error code); from then on every attempt takes a token from a bucket whose fill rate follows
/// the measured send rate, ×0.7 on each throttle and growing back along CUBIC's curve while the
/// answers are not throttles. A call waits for its token ([`crate::Why::AdaptiveRate`]), never
/// past its deadline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveRateConfig {
    /// On: each host gets the adaptive bucket. Default off (on under the `aws-adaptive` preset).
    pub enabled: bool,
}

/// An adaptive limit on the attempts in flight to each host (Netflix's concurrency-limits),
/// driven by each attempt's latency and by drops: a 429, 502, 503 or 504 (the statuses gRPC reads
/// as `UNAVAILABLE`, which Netflix's client interceptor counts as a drop) or an attempt timeout.
/// Other failures say nothing about the host's capacity and are ignored, as Netflix's
/// `onIgnore` does. It replaces `concurrency.max_in_flight_per_host`; `max_in_flight` still
/// bounds all hosts together.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(tag = "algorithm", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdaptiveConcurrency {
    /// Additive increase, multiplicative decrease (`AIMDLimit`).
    Aimd(AimdConfig),
    /// The gradient of the latency against its long-term average (`Gradient2Limit`).
    Gradient2(Gradient2Config),
}

/// `AIMDLimit`: +1 after a success while at least half the limit is in use, ×`backoff_ratio`
/// after a drop or an attempt slower than `timeout_ms`. Defaults are Netflix's.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct AimdConfig {
    /// The limit a host starts at. Default 20.
    pub initial_limit: u32,
    /// The lowest limit (≥ 1). Default 20.
    pub min_limit: u32,
    /// The highest limit. Default 200.
    pub max_limit: u32,
    /// The factor a drop multiplies the limit by, in `[0.5, 1)`. Default 0.9.
    pub backoff_ratio: f64,
    /// An attempt slower than this counts as a drop. Default 5 s.
    pub timeout_ms: u64,
}

impl Default for AimdConfig {
    fn default() -> Self {
        AimdConfig {
            initial_limit: 20,
            min_limit: 20,
            max_limit: 200,
            backoff_ratio: 0.9,
            timeout_ms: 5_000,
        }
    }
}

/// `Gradient2Limit` behind Netflix's `WindowedLimit`: attempts are gathered into sampling
/// windows (each lasts twice the window's fastest attempt, within `min_window_ms` ..
/// `max_window_ms`; attempts faster than 100 µs are ignored); a window with at least
/// `window_size` attempts is one sample, its average latency and its most attempts in flight.
/// Each sample moves the limit towards `limit · gradient + queue_size`, where
/// `gradient = clamp(rtt_tolerance · long_rtt / rtt, 0.5, 1)` and `long_rtt` is an exponential
/// average of the latency over `long_window` samples; `smoothing` of the step is taken.
/// Defaults are Netflix's.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct Gradient2Config {
    /// The limit a host starts at. Default 20.
    pub initial_limit: u32,
    /// The lowest limit (≥ 1). Default 20.
    pub min_limit: u32,
    /// The highest limit. Default 200.
    pub max_limit: u32,
    /// How much of each step is taken, in `(0, 1]`. Default 0.2.
    pub smoothing: f64,
    /// How far the limit may grow past the estimate while latency stays low. Default 4.
    pub queue_size: u32,
    /// Samples the long-term latency average spans (≥ 1; the first 10 are a plain mean).
    /// Default 600.
    pub long_window: u32,
    /// How much slower than the long-term average an attempt may be before the limit shrinks
    /// (≥ 1). Default 1.5.
    pub rtt_tolerance: f64,
    /// The shortest sampling window (≥ 100). Default 1000.
    pub min_window_ms: u64,
    /// The longest sampling window (≥ `min_window_ms`). Default 1000.
    pub max_window_ms: u64,
    /// Attempts a window needs to count (≥ 10). Default 10.
    pub window_size: u32,
}

impl Default for Gradient2Config {
    fn default() -> Self {
        Gradient2Config {
            initial_limit: 20,
            min_limit: 20,
            max_limit: 200,
            smoothing: 0.2,
            queue_size: 4,
            long_window: 600,
            rtt_tolerance: 1.5,
            min_window_ms: 1_000,
            max_window_ms: 1_000,
            window_size: 10,
        }
    }
}

impl AdaptiveConcurrency {
    /// The limit a host starts at.
    pub fn initial_limit(&self) -> u32 {
        match self {
            AdaptiveConcurrency::Aimd(c) => c.initial_limit,
            AdaptiveConcurrency::Gradient2(c) => c.initial_limit,
        }
    }

    /// The algorithm's name as configs spell it.
    pub fn algorithm(&self) -> &'static str {
        match self {
            AdaptiveConcurrency::Aimd(_) => "aimd",
            AdaptiveConcurrency::Gradient2(_) => "gradient2",
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let (initial, min, max) = match self {
            AdaptiveConcurrency::Aimd(c) => (c.initial_limit, c.min_limit, c.max_limit),
            AdaptiveConcurrency::Gradient2(c) => (c.initial_limit, c.min_limit, c.max_limit),
        };
        at_least(
            "concurrency.adaptive.min_limit",
            min,
            1,
            "must be at least 1",
        )?;
        at_least(
            "concurrency.adaptive.max_limit",
            max,
            min,
            "must be at least concurrency.adaptive.min_limit",
        )?;
        if !(min..=max).contains(&initial) {
            return Err(out_of_range(
                "concurrency.adaptive.initial_limit",
                initial,
                "must be between concurrency.adaptive.min_limit and max_limit",
            ));
        }
        match self {
            AdaptiveConcurrency::Aimd(c) => {
                if !(c.backoff_ratio.is_finite() && (0.5..1.0).contains(&c.backoff_ratio)) {
                    return Err(out_of_range(
                        "concurrency.adaptive.backoff_ratio",
                        c.backoff_ratio,
                        "must be in [0.5, 1)",
                    ));
                }
                if c.timeout_ms == 0 {
                    return Err(out_of_range(
                        "concurrency.adaptive.timeout_ms",
                        0,
                        "must be positive",
                    ));
                }
                check_ms("concurrency.adaptive.timeout_ms", c.timeout_ms)
            }
            AdaptiveConcurrency::Gradient2(c) => {
                if !(c.smoothing.is_finite() && c.smoothing > 0.0 && c.smoothing <= 1.0) {
                    return Err(out_of_range(
                        "concurrency.adaptive.smoothing",
                        c.smoothing,
                        "must be in (0, 1]",
                    ));
                }
                at_least(
                    "concurrency.adaptive.long_window",
                    c.long_window,
                    1,
                    "must be at least 1",
                )?;
                if !(c.rtt_tolerance.is_finite() && c.rtt_tolerance >= 1.0) {
                    return Err(out_of_range(
                        "concurrency.adaptive.rtt_tolerance",
                        c.rtt_tolerance,
                        "must be a finite number ≥ 1",
                    ));
                }
                // WindowedLimit's preconditions.
                at_least(
                    "concurrency.adaptive.min_window_ms",
                    c.min_window_ms,
                    100,
                    "must be at least 100",
                )?;
                check_ms("concurrency.adaptive.max_window_ms", c.max_window_ms)?;
                at_least(
                    "concurrency.adaptive.max_window_ms",
                    c.max_window_ms,
                    c.min_window_ms,
                    "must be at least concurrency.adaptive.min_window_ms",
                )?;
                at_least(
                    "concurrency.adaptive.window_size",
                    c.window_size,
                    10,
                    "must be at least 10",
                )
            }
        }
    }
}

/// `value` (of `field`) is at least `min`, or the error says `expected`.
fn at_least<T: PartialOrd + super::Shown>(
    field: &'static str,
    value: T,
    min: T,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if value < min {
        return Err(out_of_range(field, value, expected));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn off_by_default_and_read_by_algorithm_name() {
        let c = Config::default();
        assert!(!c.adaptive_rate.enabled);
        assert_eq!(c.concurrency.adaptive, None);
        let c = Config::from_json(
            r#"{"adaptive_rate":{"enabled":true},
                "concurrency":{"adaptive":{"algorithm":"aimd","min_limit":2,"initial_limit":4}}}"#,
        )
        .unwrap();
        assert!(c.adaptive_rate.enabled);
        assert_eq!(
            c.concurrency.adaptive,
            Some(AdaptiveConcurrency::Aimd(AimdConfig {
                min_limit: 2,
                initial_limit: 4,
                ..AimdConfig::default()
            }))
        );
        let g =
            Config::from_json(r#"{"concurrency":{"adaptive":{"algorithm":"gradient2"}}}"#).unwrap();
        assert_eq!(
            g.concurrency.adaptive,
            Some(AdaptiveConcurrency::Gradient2(Gradient2Config::default()))
        );
        // What it writes reads back as itself.
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(Config::from_json(&text).unwrap(), c);
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (r#"{"algorithm":"aimd","min_limit":0}"#, "min_limit"),
            (r#"{"algorithm":"aimd","max_limit":10}"#, "max_limit"),
            (
                r#"{"algorithm":"aimd","initial_limit":300}"#,
                "initial_limit",
            ),
            (
                r#"{"algorithm":"aimd","backoff_ratio":1.0}"#,
                "backoff_ratio",
            ),
            (
                r#"{"algorithm":"aimd","backoff_ratio":0.4}"#,
                "backoff_ratio",
            ),
            (r#"{"algorithm":"aimd","timeout_ms":0}"#, "timeout_ms"),
            (r#"{"algorithm":"gradient2","smoothing":0}"#, "smoothing"),
            (
                r#"{"algorithm":"gradient2","long_window":0}"#,
                "long_window",
            ),
            (
                r#"{"algorithm":"gradient2","rtt_tolerance":0.9}"#,
                "rtt_tolerance",
            ),
            (
                r#"{"algorithm":"gradient2","min_window_ms":99}"#,
                "min_window_ms",
            ),
            (
                r#"{"algorithm":"gradient2","max_window_ms":500}"#,
                "max_window_ms",
            ),
            (
                r#"{"algorithm":"gradient2","window_size":9}"#,
                "window_size",
            ),
        ];
        for (adaptive, field) in cases {
            let text = format!(r#"{{"concurrency":{{"adaptive":{adaptive}}}}}"#);
            match Config::from_json(&text) {
                Err(ConfigError::OutOfRange { field: f, .. }) => {
                    assert_eq!(f, format!("concurrency.adaptive.{field}"), "{text}")
                }
                other => panic!("{text}: expected an error naming {field}, got {other:?}"),
            }
        }
        for text in [
            r#"{"concurrency":{"adaptive":{"algorithm":"vegas"}}}"#,
            r#"{"concurrency":{"adaptive":{"algorithm":"aimd","smoothing":0.2}}}"#,
            r#"{"adaptive_rate":{"enabled":true,"beta":0.5}}"#,
        ] {
            assert!(
                matches!(Config::from_json(text), Err(ConfigError::Parse(_))),
                "{text}"
            );
        }
    }
}
