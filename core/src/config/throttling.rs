//! gRPC A6 retry throttling (`retryThrottling`) as a config section: set by the `grpc-a6`
//! preset, or on its own.

use super::{out_of_range, ConfigError};
use crate::throttle::ThrottleConfig;

/// Checks `retry_throttling`; the error names the field that is off (A6: `maxTokens` in
/// `(0, 1000]`, `tokenRatio` in `(0, maxTokens]`).
pub(super) fn validate(t: &ThrottleConfig) -> Result<(), ConfigError> {
    if !(1..=1000).contains(&t.max_tokens) {
        return Err(out_of_range(
            "retry_throttling.max_tokens",
            t.max_tokens,
            "must be in 1..=1000 (gRPC A6)",
        ));
    }
    if !(t.token_ratio.is_finite() && t.token_ratio > 0.0)
        || t.token_ratio > f64::from(t.max_tokens)
    {
        return Err(out_of_range(
            "retry_throttling.token_ratio",
            t.token_ratio,
            "must be above 0 and at most max_tokens (gRPC A6)",
        ));
    }
    Ok(())
}
