//! The AWS SDKs' retry rules, applied by the engine under the AWS presets (or whenever this
//! section is set): the per-host retry quota, the throttling base delay, where the cap applies,
//! the `x-amz-retry-after` clamp, and the long-polling wait when the quota is empty.

use serde::Serialize;

use super::{check_ms, out_of_range, BackoffConfig, ConfigError, Jitter};
use crate::aws_backoff::{AwsBackoff, CapOrder, RetryAfterRule};
use crate::quota::QuotaConfig;

/// AWS's retry rules (`aws-standard`, `aws-adaptive` and `aws-2.1` set this section). The
/// delay before retry `i` (0 for the first) is `r · base · 2ⁱ` capped at `backoff.cap_ms`,
/// with `base` = `backoff.base_ms`, or `throttling_base_ms` after a 429; `r` is uniform in
/// `[0, 1]` with `backoff.jitter = "full"` and 1 with `"none"` (the published test cases fix
/// it at 1 that way). A retry the quota cannot pay for is not made
/// ([`crate::Why::BudgetExhausted`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct AwsRetryConfig {
    /// The host's retry quota: capacity (it starts full), the cost of a retry after an
    /// error, a timeout and a throttle, and what a first-try success adds. Default the
    /// standard mode's: 500, 5, 10, 5, 1.
    pub quota: QuotaConfig,
    /// The base delay after a throttling answer (429); none: `backoff.base_ms`. Default none
    /// (the standard mode); 1000 in Retry Behavior 2.1.
    pub throttling_base_ms: Option<u64>,
    /// Where `backoff.cap_ms` applies: `"after_jitter"` (standard mode, `min(r·t, cap)`) or
    /// `"before_jitter"` (2.1, `r·min(t, cap)`). Default `"after_jitter"`.
    pub cap: CapOrder,
    /// Honour `x-amz-retry-after` (whole milliseconds), clamped to `[t, t + this]` around the
    /// computed delay `t`; none: the header is ignored. Default none (standard mode); 5000 in
    /// Retry Behavior 2.1.
    pub retry_after_slack_ms: Option<u64>,
    /// The calls are long polls (SQS `ReceiveMessage`): when the quota refuses a retry, the
    /// call still waits out its backoff (at the non-throttling base) before it fails, so a
    /// caller polling in a loop does not hammer a failing service. Default false.
    pub long_polling: bool,
}

impl Default for AwsRetryConfig {
    fn default() -> Self {
        AwsRetryConfig {
            quota: QuotaConfig::AWS_STANDARD,
            throttling_base_ms: None,
            cap: CapOrder::AfterJitter,
            retry_after_slack_ms: None,
            long_polling: false,
        }
    }
}

impl AwsRetryConfig {
    /// AWS "Retry Behavior 2.1": quota costs 14 / 10 / 5, 1 s after a throttle, the cap before
    /// jitter, `x-amz-retry-after` within `[t, t + 5 s]`.
    pub fn v2_1() -> Self {
        AwsRetryConfig {
            quota: QuotaConfig::AWS_2_1,
            throttling_base_ms: Some(AwsBackoff::V2_1.throttling_base_ms),
            cap: AwsBackoff::V2_1.cap,
            retry_after_slack_ms: match AwsBackoff::V2_1.retry_after {
                RetryAfterRule::Clamp { slack_ms } => Some(slack_ms),
                RetryAfterRule::Ignore => None,
            },
            long_polling: false,
        }
    }

    /// The delay rule with the base and cap of `backoff`.
    pub fn backoff(&self, backoff: &BackoffConfig) -> AwsBackoff {
        AwsBackoff {
            base_ms: backoff.base_ms,
            throttling_base_ms: self.throttling_base_ms.unwrap_or(backoff.base_ms),
            max_backoff_ms: backoff.cap_ms,
            cap: self.cap,
            retry_after: self
                .retry_after_slack_ms
                .map_or(RetryAfterRule::Ignore, |slack_ms| RetryAfterRule::Clamp {
                    slack_ms,
                }),
        }
    }

    /// Checks every field (and the backoff fields the AWS rule reads); the error names the
    /// first one that is off.
    pub fn validate(&self, backoff: &BackoffConfig) -> Result<(), ConfigError> {
        check_ms(
            "aws.throttling_base_ms",
            self.throttling_base_ms.unwrap_or(0),
        )?;
        check_ms(
            "aws.retry_after_slack_ms",
            self.retry_after_slack_ms.unwrap_or(0),
        )?;
        let q = &self.quota;
        if q.retry_cost == 0 || q.timeout_cost == 0 || q.throttling_cost == 0 {
            return Err(out_of_range(
                "aws.quota",
                format!("{q:?}"),
                "retry, timeout and throttling costs must be at least 1",
            ));
        }
        if !matches!(backoff.jitter, Jitter::Full | Jitter::None) {
            return Err(out_of_range(
                "backoff.jitter",
                format!("{:?}", backoff.jitter),
                "must be \"full\" or \"none\" with the aws section (AWS draws r·t, r in [0, 1])",
            ));
        }
        if backoff.factor != 2.0 {
            return Err(out_of_range(
                "backoff.factor",
                backoff.factor,
                "must be 2 with the aws section (AWS doubles each delay)",
            ));
        }
        Ok(())
    }
}
