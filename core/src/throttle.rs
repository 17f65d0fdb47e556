//! gRPC's retry throttling (proposal A6, "gRPC Retry Design", `retryThrottling`): a per-host
//! token count that starts at `max_tokens`, loses 1 on every failed attempt, gains
//! `token_ratio` on every success (never above `max_tokens`), and allows a retry only while it
//! is above `max_tokens / 2`.
//!
//! Tokens are kept in thousandths, as A6 allows `tokenRatio` three decimal places, so the
//! arithmetic is exact.

use serde::Serialize;

/// The `retryThrottling` policy.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Tokens at start and at most, in `(0, 1000]` (A6's `maxTokens`).
    pub max_tokens: u32,
    /// Tokens a success adds, in `(0, max_tokens]`, three decimals (A6's `tokenRatio`).
    pub token_ratio: f64,
}

impl ThrottleConfig {
    /// The example policy of proposal A6: `maxTokens` 10, `tokenRatio` 0.1.
    pub const GRPC_A6: ThrottleConfig = ThrottleConfig {
        max_tokens: 10,
        token_ratio: 0.1,
    };
}

/// Whether a retry may go.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Throttled {
    /// Tokens are above half the maximum: retry.
    Allowed,
    /// Tokens are at or below half the maximum: fail with the last answer.
    Refused,
}

/// A host's retry-throttling state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetryThrottle {
    max_milli: u64,
    ratio_milli: u64,
    milli: u64,
}

impl RetryThrottle {
    /// Full: `max_tokens`. `token_ratio` is rounded to thousandths (A6 ignores further digits).
    pub fn new(config: ThrottleConfig) -> Self {
        let max_milli = u64::from(config.max_tokens) * 1000;
        let ratio = if config.token_ratio.is_finite() {
            config.token_ratio.max(0.0)
        } else {
            0.0
        };
        RetryThrottle {
            max_milli,
            ratio_milli: ((ratio * 1000.0).round() as u64).min(max_milli),
            milli: max_milli,
        }
    }

    /// Tokens now, in thousandths.
    pub fn tokens_milli(&self) -> u64 {
        self.milli
    }

    /// An attempt failed with a retryable answer: one token less, then may it be retried?
    pub fn failed(&mut self) -> Throttled {
        self.milli = self.milli.saturating_sub(1000);
        self.allows_retry()
    }

    /// An attempt succeeded: `token_ratio` more, up to `max_tokens`.
    pub fn succeeded(&mut self) {
        self.milli = (self.milli + self.ratio_milli).min(self.max_milli);
    }

    /// Whether a retry may go now.
    pub fn allows_retry(&self) -> Throttled {
        if self.milli * 2 > self.max_milli {
            Throttled::Allowed
        } else {
            Throttled::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    // grpc-go `test/retry_test.go` `TestRetryThrottling` is replayed through the engine in
    // `core/tests/grpc_vectors.rs`.

    // From A6's rule: with maxTokens 10 a retry goes at 5.001 tokens and not at 5.
    #[test]
    fn threshold_is_strictly_above_half() {
        let mut t = RetryThrottle::new(ThrottleConfig {
            max_tokens: 10,
            token_ratio: 0.001,
        });
        for _ in 0..4 {
            assert_eq!(t.failed(), Throttled::Allowed);
        }
        assert_eq!(t.failed(), Throttled::Refused);
        assert_eq!(t.tokens_milli(), 5_000);
        t.succeeded();
        assert_eq!(t.allows_retry(), Throttled::Allowed);
        for _ in 0..20 {
            t.failed();
        }
        assert_eq!(t.tokens_milli(), 0, "never below zero");
    }

    #[test]
    fn a6_example_policy_recovers_in_tenths() {
        let mut t = RetryThrottle::new(ThrottleConfig::GRPC_A6);
        for _ in 0..5 {
            t.failed();
        }
        assert_eq!(t.allows_retry(), Throttled::Refused);
        t.succeeded();
        assert_eq!(t.tokens_milli(), 5_100);
        assert_eq!(t.allows_retry(), Throttled::Allowed);
        for _ in 0..100 {
            t.succeeded();
        }
        assert_eq!(t.tokens_milli(), 10_000);
    }
}
