//! Named policies that reproduce a peer's published retry behaviour.
//!
//! A preset is a starting [`Config`]: `{"preset": "aws-standard"}` in JSON (or
//! `preset = "aws-standard"` in TOML, read through [`Config::from_value`]) starts from
//! [`Preset::config`], and every field written next to it overrides the preset's value, section
//! by section and field by field: `{"preset": "aws-standard", "retry": {"max_attempts": 5}}`
//! keeps AWS's backoff and changes only the attempt count. From Rust,
//! [`Config::preset`] and [`Config::from_preset`] give the same starting point.
//!
//! Where a peer's policy needs a mechanism the engine's config does not express, the preset
//! names the pure component that does, and each of those reproduces the peer's published test
//! vectors in its own module:
//!
//! - The AWS presets set the config's `aws` section ([`crate::config::AwsRetryConfig`]): the
//!   per-host retry quota ([`Preset::quota`]) and AWS's delay rule ([`Preset::aws_backoff`]:
//!   throttling base delay, cap order, `x-amz-retry-after` clamp) with the base and cap of
//!   the `backoff` section, and, optionally, the long poll's backoff.
//! - `grpc-a6` sets the `retry_throttling` section ([`Preset::throttle`], gRPC A6 retry
//!   throttling), kept per host.
//!
//! The quota and the throttle take the place of the retry budget (which these presets turn
//! off; turned back on, both must allow a retry), and a retry they refuse fails the call with
//! [`crate::Why::BudgetExhausted`]. As with the budget, a call's first 429 with a positive
//! `Retry-After` is retried without asking them (the host is held until then).
//!
//! The published vectors driven through the engine are in `core/tests/aws_vectors.rs` (the
//! AWS Go SDK's `retry2026_test.go`, smithy-rs's standard-strategy tests),
//! `core/tests/grpc_vectors.rs` (grpc-go's `TestRetryThrottling`) and `core/tests/presets.rs`;
//! the pure components' own tables are in [`crate::quota`], [`crate::aws_backoff`] and
//! [`crate::throttle`].
//!
//! | preset | reproduces |
//! |---|---|
//! | `aws-standard` | AWS SDKs' standard retry mode: 3 attempts, full jitter from 1 s, cap 20 s; quota 500, retry 5, timeout 10, +1 on a first-try success |
//! | `aws-adaptive` | AWS SDKs' adaptive retry mode: `aws-standard` plus the adaptive client rate per host ([`crate::adaptive`]: off until a throttle, then CUBIC, ×0.7 on each throttle) |
//! | `aws-2.1` | AWS "Retry Behavior 2.1": 3 attempts, full jitter from 50 ms (1 s after throttling), cap 20 s; quota 500, retry 14, timeout 10, throttling 5; `x-amz-retry-after` clamped to `[t, t+5 s]` |
//! | `grpc-a6` | gRPC retry policy (proposal A6, its example): 4 attempts (at most 5), `random(0, min(0.1 s·2ⁿ⁻¹, 1 s))`; `retryThrottling` 10 tokens, ratio 0.1, retries only above 5 |
//! | `dotnet-standard` | Microsoft.Extensions.Http.Resilience standard handler: 30 s total, 10 s per attempt, 3 retries with jitter from 2 s; breaker at 10 % over 100 calls in 30 s, 5 s break |

use serde::Serialize;

use crate::aws_backoff::AwsBackoff;
use crate::config::{AwsRetryConfig, Config, ConfigError, Jitter};
use crate::quota::QuotaConfig;
use crate::throttle::ThrottleConfig;

/// A named peer policy.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
pub enum Preset {
    /// The AWS SDKs' standard retry mode.
    #[serde(rename = "aws-standard")]
    AwsStandard,
    /// The AWS SDKs' adaptive retry mode: standard mode plus the adaptive client rate.
    #[serde(rename = "aws-adaptive")]
    AwsAdaptive,
    /// AWS "Retry Behavior 2.1" (2026), standard mode.
    #[serde(rename = "aws-2.1")]
    Aws21,
    /// gRPC's retry policy and retry throttling (proposal A6).
    #[serde(rename = "grpc-a6")]
    GrpcA6,
    /// Microsoft.Extensions.Http.Resilience's standard resilience handler.
    #[serde(rename = "dotnet-standard")]
    DotnetStandard,
}

/// Every preset, in the order the docs list them.
pub const ALL: [Preset; 5] = [
    Preset::AwsStandard,
    Preset::AwsAdaptive,
    Preset::Aws21,
    Preset::GrpcA6,
    Preset::DotnetStandard,
];

/// The names [`Preset::from_name`] accepts, for error messages.
pub const NAMES: &str = "one of aws-standard, aws-adaptive, aws-2.1, grpc-a6, dotnet-standard";

/// gRPC A6: "maxAttempts ... values greater than 5 are treated as 5".
pub const GRPC_MAX_ATTEMPTS: u32 = 5;

impl Preset {
    /// The name used in config files.
    pub fn name(self) -> &'static str {
        match self {
            Preset::AwsStandard => "aws-standard",
            Preset::AwsAdaptive => "aws-adaptive",
            Preset::Aws21 => "aws-2.1",
            Preset::GrpcA6 => "grpc-a6",
            Preset::DotnetStandard => "dotnet-standard",
        }
    }

    /// The preset of that name; an unknown name is a [`ConfigError`] naming the `preset` field.
    pub fn from_name(name: &str) -> Result<Preset, ConfigError> {
        ALL.into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| ConfigError::OutOfRange {
                field: "preset",
                value: format!("{name:?}"),
                expected: NAMES,
            })
    }

    /// What the preset reproduces, in one line.
    pub fn reproduces(self) -> &'static str {
        match self {
            Preset::AwsStandard => "the AWS SDKs' standard retry mode",
            Preset::AwsAdaptive => "the AWS SDKs' adaptive retry mode (standard + client rate)",
            Preset::Aws21 => "AWS Retry Behavior 2.1 (standard mode)",
            Preset::GrpcA6 => "gRPC's retry policy and retryThrottling (proposal A6)",
            Preset::DotnetStandard => {
                "Microsoft.Extensions.Http.Resilience's standard resilience handler"
            }
        }
    }

    /// The engine configuration the preset starts from. Fields the peer does not define keep
    /// resile's defaults.
    pub fn config(self) -> Config {
        let mut c = Config {
            preset: Some(self),
            ..Config::default()
        };
        match self {
            Preset::AwsAdaptive => {
                // Adaptive mode is standard mode with a client-side rate limiter in front.
                c = Config {
                    preset: Some(self),
                    ..Preset::AwsStandard.config()
                };
                c.adaptive_rate.enabled = true;
            }
            Preset::AwsStandard | Preset::Aws21 => {
                // Both modes: 3 attempts; full jitter; transient statuses 500, 502, 503, 504
                // and throttling (429). The per-mode base is the AWS delay rule's.
                let delay = self.aws_backoff().unwrap_or(AwsBackoff::STANDARD);
                c.retry.max_attempts = 3;
                c.retry.retry_statuses = vec![429, 500, 502, 503, 504];
                c.backoff.base_ms = delay.base_ms;
                c.backoff.cap_ms = delay.max_backoff_ms;
                c.backoff.factor = 2.0;
                c.backoff.jitter = Jitter::Full;
                // The retry quota takes the budget's place.
                c.budget.enabled = false;
                c.aws = self.aws();
            }
            Preset::GrpcA6 => {
                // A6's example policy: maxAttempts 4, initialBackoff 0.1 s, maxBackoff 1 s,
                // backoffMultiplier 2, each delay random(0, current). UNAVAILABLE, the code A6's
                // example retries, is what gRPC maps HTTP 429, 502, 503 and 504 to.
                c.retry.max_attempts = 4;
                c.retry.retry_statuses = vec![429, 502, 503, 504];
                c.backoff.base_ms = 100;
                c.backoff.factor = 2.0;
                c.backoff.cap_ms = 1_000;
                c.backoff.jitter = Jitter::Full;
                // retryThrottling takes the budget's place.
                c.budget.enabled = false;
                c.retry_throttling = self.throttle();
            }
            Preset::DotnetStandard => {
                // HttpStandardResilienceOptions: total request timeout 30 s, attempt timeout
                // 10 s, retry: 3 retries, exponential with jitter, 2 s delay, transient = 408,
                // 429, ≥ 500; circuit breaker: failure ratio 10 %, minimum throughput 100,
                // sampling 30 s, break 5 s.
                c.retry.max_attempts = 4;
                c.retry.attempt_timeout_ms = Some(10_000);
                c.retry.deadline_ms = Some(30_000);
                c.retry.retry_statuses = vec![408, 429];
                for status in 500..=599 {
                    c.retry.retry_statuses.push(status);
                }
                c.backoff.base_ms = 2_000;
                c.backoff.factor = 2.0;
                c.backoff.cap_ms = 30_000;
                c.backoff.jitter = Jitter::Decorrelated;
                c.breaker.enabled = true;
                c.breaker.failure_rate = Some(0.1);
                c.breaker.min_calls = 100;
                c.breaker.window_ms = 30_000;
                c.breaker.consecutive_failures = 0;
                c.breaker.open_ms = 5_000;
                c.breaker.open_growth = 1.0;
                c.breaker.max_open_ms = 5_000;
                c.breaker.half_open_probes = 1;
            }
        }
        c
    }

    /// The AWS retry rules the preset sets as the config's `aws` section, if AWS's.
    pub fn aws(self) -> Option<AwsRetryConfig> {
        match self {
            Preset::AwsStandard | Preset::AwsAdaptive => Some(AwsRetryConfig::default()),
            Preset::Aws21 => Some(AwsRetryConfig::v2_1()),
            Preset::GrpcA6 | Preset::DotnetStandard => None,
        }
    }

    /// The AWS retry quota the preset's peer keeps per host, if it has one.
    pub fn quota(self) -> Option<QuotaConfig> {
        self.aws().map(|a| a.quota)
    }

    /// The AWS delay rule (throttling base, cap order, `x-amz-retry-after`), if AWS's.
    pub fn aws_backoff(self) -> Option<AwsBackoff> {
        match self {
            Preset::AwsStandard | Preset::AwsAdaptive => Some(AwsBackoff::STANDARD),
            Preset::Aws21 => Some(AwsBackoff::V2_1),
            Preset::GrpcA6 | Preset::DotnetStandard => None,
        }
    }

    /// gRPC's retry throttling, for `grpc-a6`.
    pub fn throttle(self) -> Option<ThrottleConfig> {
        match self {
            Preset::GrpcA6 => Some(ThrottleConfig::GRPC_A6),
            _ => None,
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Preset {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Preset, ConfigError> {
        Preset::from_name(s)
    }
}
