//! The AWS SDKs' retry delay, in the standard mode and in "Retry Behavior 2.1".
//!
//! - Standard (smithy-rs `strategy/standard.rs`, `calculate_exponential_backoff`):
//!   `min(r · base · 2ⁱ, max_backoff)` for the `i`-th retry (from 0), base 1 s, max 20 s,
//!   `r` uniform in `[0, 1]`; `x-amz-retry-after` is not part of the delay.
//! - 2.1 (the SEP's standard-mode cases, as aws-sdk-net `RetryHandlerStandardMode21Tests`
//!   carries them): `r · min(base · 2ⁱ, max_backoff)` (the cap applies before jitter), base
//!   50 ms, 1 s after a throttling answer; a valid `x-amz-retry-after` (whole milliseconds) is
//!   honoured but clamped to `[t, t + 5 s]` around that computed delay `t`.
//!
//! The jitter `r` is an input, so the published cases, which fix it at 1, are reproducible.

use crate::quota::RetryKind;

/// How `x-amz-retry-after` enters the delay.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RetryAfterRule {
    /// The header does not change the delay.
    Ignore,
    /// The header is used, clamped to `[t, t + slack_ms]` around the computed delay `t`.
    Clamp {
        /// How far past the computed delay the header may push it.
        slack_ms: u64,
    },
}

/// Where the cap applies.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum CapOrder {
    /// `min(r · base · 2ⁱ, max)`: the standard mode.
    AfterJitter,
    /// `r · min(base · 2ⁱ, max)`: Retry Behavior 2.1.
    BeforeJitter,
}

/// One AWS retry-delay rule.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AwsBackoff {
    /// The first delay, before jitter.
    pub base_ms: u64,
    /// The first delay after a throttling answer.
    pub throttling_base_ms: u64,
    /// The longest delay.
    pub max_backoff_ms: u64,
    /// Where the cap applies.
    pub cap: CapOrder,
    /// How `x-amz-retry-after` enters.
    pub retry_after: RetryAfterRule,
}

impl AwsBackoff {
    /// The standard mode: 1 s base, 20 s max, header ignored.
    pub const STANDARD: AwsBackoff = AwsBackoff {
        base_ms: 1_000,
        throttling_base_ms: 1_000,
        max_backoff_ms: 20_000,
        cap: CapOrder::AfterJitter,
        retry_after: RetryAfterRule::Ignore,
    };

    /// Retry Behavior 2.1: 50 ms base, 1 s after throttling, 20 s max, header clamped to
    /// `[t, t + 5 s]`.
    pub const V2_1: AwsBackoff = AwsBackoff {
        base_ms: 50,
        throttling_base_ms: 1_000,
        max_backoff_ms: 20_000,
        cap: CapOrder::BeforeJitter,
        retry_after: RetryAfterRule::Clamp { slack_ms: 5_000 },
    };

    /// The delay before retry number `retry` (0 for the first retry) after a failure of
    /// `kind`, with jitter `r` (clamped to `[0, 1]`) and the `x-amz-retry-after` header value
    /// if the answer had one (anything but a whole number of milliseconds is ignored).
    pub fn delay_ms(
        &self,
        retry: u32,
        kind: RetryKind,
        r: f64,
        x_amz_retry_after: Option<&str>,
    ) -> u64 {
        let r = if r.is_finite() {
            r.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let base = match kind {
            RetryKind::Throttling => self.throttling_base_ms,
            RetryKind::Error | RetryKind::Timeout => self.base_ms,
        };
        let grown = (base as f64) * 2f64.powi(retry.min(62) as i32);
        let max = self.max_backoff_ms as f64;
        let t = match self.cap {
            CapOrder::AfterJitter => (r * grown).min(max),
            CapOrder::BeforeJitter => r * grown.min(max),
        };
        let t = t.round() as u64;
        match (self.retry_after, x_amz_retry_after.and_then(parse_ms)) {
            (RetryAfterRule::Clamp { slack_ms }, Some(asked)) => {
                asked.max(t).min(t.saturating_add(slack_ms))
            }
            _ => t,
        }
    }
}

fn parse_ms(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use RetryKind::*;

    fn delays(b: &AwsBackoff, kind: RetryKind, n: u32, header: Option<&str>) -> Vec<u64> {
        (0..n).map(|i| b.delay_ms(i, kind, 1.0, header)).collect()
    }

    // smithy-rs `strategy/standard.rs` tests `backoff_timing` (1, 2, 4, 8 s) and
    // `max_backoff_time` (max 3 s: 1, 2, 3, 3 s), with the exponential base fixed at 1.
    #[test]
    fn standard_mode_delays() {
        assert_eq!(
            delays(&AwsBackoff::STANDARD, Error, 4, None),
            [1_000, 2_000, 4_000, 8_000]
        );
        let capped = AwsBackoff {
            max_backoff_ms: 3_000,
            ..AwsBackoff::STANDARD
        };
        assert_eq!(
            delays(&capped, Error, 4, None),
            [1_000, 2_000, 3_000, 3_000]
        );
        // The cap holds after jitter and for late retries.
        assert_eq!(AwsBackoff::STANDARD.delay_ms(10, Error, 1.0, None), 20_000);
        assert_eq!(AwsBackoff::STANDARD.delay_ms(10, Error, 0.5, None), 20_000);
        assert_eq!(AwsBackoff::STANDARD.delay_ms(1, Error, 0.5, None), 1_000);
    }

    // Retry Behavior 2.1 SEP standard-mode cases (aws-sdk-net `RetryHandlerStandardMode21Tests`),
    // exponential base 1.
    #[test]
    fn v2_1_delays() {
        let v = AwsBackoff::V2_1;
        // "Verifying exponential backoff timing".
        assert_eq!(delays(&v, Error, 4, None), [50, 100, 200, 400]);
        // "Verify max backoff time" (max 200 ms).
        let capped = AwsBackoff {
            max_backoff_ms: 200,
            ..v
        };
        assert_eq!(delays(&capped, Error, 4, None), [50, 100, 200, 200]);
        // "Throttling error ... backoff duration (1000ms)".
        assert_eq!(v.delay_ms(0, Throttling, 1.0, None), 1_000);
        // "Honor x-amz-retry-after header": 1500 → 1.5 s.
        assert_eq!(v.delay_ms(0, Error, 1.0, Some("1500")), 1_500);
        // "x-amz-retry-after minimum is exponential backoff duration": 0 → 50 ms.
        assert_eq!(v.delay_ms(0, Error, 1.0, Some("0")), 50);
        // "x-amz-retry-after maximum is 5+exponential backoff duration": 10000 → 5050 ms.
        assert_eq!(v.delay_ms(0, Error, 1.0, Some("10000")), 5_050);
        // "Invalid x-amz-retry-after falls back to exponential backoff".
        for bad in ["abc", "-5", "1.5", ""] {
            assert_eq!(v.delay_ms(0, Error, 1.0, Some(bad)), 50, "{bad:?}");
        }
        // The standard mode ignores the header.
        assert_eq!(
            AwsBackoff::STANDARD.delay_ms(0, Error, 1.0, Some("10000")),
            1_000
        );
    }

    // From the rule: in 2.1 the cap applies before jitter, so a half jitter halves the cap.
    #[test]
    fn v2_1_caps_before_jitter() {
        assert_eq!(AwsBackoff::V2_1.delay_ms(20, Error, 0.5, None), 10_000);
        assert_eq!(
            AwsBackoff::V2_1.delay_ms(u32::MAX, Error, f64::NAN, None),
            20_000
        );
    }
}
