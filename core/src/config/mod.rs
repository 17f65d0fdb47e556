//! Configuration: plain data with production-safe defaults, validated once.
//!
//! Every duration is a whole number of milliseconds in a field ending in `_ms`, so the same
//! JSON (or TOML) works from Rust, from the CLI and from JavaScript. [`Config::validate`] runs
//! when an engine is built; after that the engine cannot hold an invalid setting.
//!
//! [`Config::from_json`] and [`Config::from_value`] read a document with the crate's own reader
//! (unknown fields are an error, missing ones take defaults, messages as serde's). To embed the
//! config in a struct of your own that derives `serde::Deserialize`, turn on the crate's
//! `deserialize` feature, which derives it for every config type.

use serde::Serialize;
use thiserror::Error;

use crate::preset::{Preset, GRPC_MAX_ATTEMPTS};

mod adaptive;
pub use adaptive::{AdaptiveConcurrency, AdaptiveRateConfig, AimdConfig, Gradient2Config};
mod hedge;
pub use hedge::{HedgeConfig, MAX_HEDGES};
mod fleet;
pub use fleet::FleetConfig;
mod request_id;
pub use request_id::RequestIds;
mod aws;
pub use aws::AwsRetryConfig;
mod read;
mod shown;
mod throttling;
pub(crate) use read::{breaker_snapshot, deserialize};
use shown::Shown;

/// Everything the engine decides with.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The peer policy this config started from, if any (see [`crate::preset`]). In JSON,
    /// `{"preset": "aws-standard", ...}` read by [`Config::from_json`] or [`Config::from_value`]
    /// starts from [`Preset::config`], and every field written next to `preset` overrides the
    /// preset's, field by field. In Rust, start from [`Config::preset`] and change fields
    /// after: this field only records the name, and setting it alone changes no decision.
    /// Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// The attempt loop: how many attempts, how long each, how long in all.
    pub retry: RetryConfig,
    /// How long to wait between attempts when the server does not say.
    pub backoff: BackoffConfig,
    /// How many retries the engine may add on top of first attempts, per host.
    pub budget: BudgetConfig,
    /// When to stop calling a failing host for a while.
    pub breaker: BreakerConfig,
    /// A client-side rate limit per host; `None` sends as fast as the caller asks.
    pub limit: Option<LimitConfig>,
    /// Learn each host's rate limit from its `RateLimit-Policy` (or `X-RateLimit-Limit` with a
    /// window) and its remaining quota, and pace calls to it before the server has to answer
    /// 429. A learned limit only ever tightens the configured one, and lapses two windows
    /// (at least 1 s) after the host last sent it. Default true.
    pub learn_limits: bool,
    /// The access-token lifecycle.
    pub token: TokenConfig,
    /// How many hosts the engine keeps state for (breaker, limiter, budget). Idle hosts are
    /// forgotten, least recently used first, when the table is full.
    pub max_hosts: u32,
    /// How many events wait in the queue before the oldest are dropped (and counted).
    pub max_queued_events: u32,
    /// How many attempts may be in flight at once.
    pub concurrency: ConcurrencyConfig,
    /// When the driver's connection pool is rebuilt.
    pub pool: PoolConfig,
    /// AWS's adaptive client rate per host (CUBIC). Default off.
    pub adaptive_rate: AdaptiveRateConfig,
    /// Hedged requests for idempotent reads (off by default).
    pub hedge: HedgeConfig,
    /// Fleet mode: share limits and holds with other instances through a store; `None` (the
    /// default) keeps all state in this instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetConfig>,
    /// Whether calls carry a generated `X-Request-ID`. Default `"generate"`.
    pub request_id: RequestIds,
    /// AWS's retry rules (quota, throttling base, `x-amz-retry-after`, long polling), set by
    /// the AWS presets; `None` (the default) leaves retries to the budget and backoff alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsRetryConfig>,
    /// gRPC A6 retry throttling per host (`maxTokens`, `tokenRatio`), set by `grpc-a6`; `None`
    /// (the default) has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_throttling: Option<crate::throttle::ThrottleConfig>,
}

/// Limits on attempts in flight (a bulkhead). A call over the limit queues, first come first
/// served, until a slot frees or its deadline passes; it never holds a slot while it waits
/// out a backoff, a hold or a rate-limit slot.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Attempts in flight across all hosts; `None`: no limit. Default none (adapters set
    /// their own: the native client 512).
    pub max_in_flight: Option<u32>,
    /// Attempts in flight per host; `None`: no limit. Default none (adapters set their own).
    pub max_in_flight_per_host: Option<u32>,
    /// The longest a call waits for a slot (the pool-acquire timeout, distinct from the connect
    /// timeout) before it fails with [`crate::Why::QueueTimeout`]; `None`: until its deadline.
    /// Default 10 s.
    pub max_queue_ms: Option<u64>,
    /// An adaptive per-host limit (AIMD or Gradient2) in place of `max_in_flight_per_host`;
    /// `None`: the fixed bound. Default none.
    pub adaptive: Option<AdaptiveConcurrency>,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        ConcurrencyConfig {
            max_in_flight: None,
            max_in_flight_per_host: None,
            max_queue_ms: Some(10_000),
            adaptive: None,
        }
    }
}

/// Rebuilding the driver's connection pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// After this many connection failures (connect, DNS, TLS) in a row to one host, the engine
    /// asks the driver to drop its pooled connections; `0` never. Default 3.
    pub recycle_after_failures: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            recycle_after_failures: 3,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            preset: None,
            retry: RetryConfig::default(),
            backoff: BackoffConfig::default(),
            budget: BudgetConfig::default(),
            breaker: BreakerConfig::default(),
            limit: None,
            learn_limits: true,
            token: TokenConfig::default(),
            max_hosts: 1024,
            max_queued_events: 65_536,
            concurrency: ConcurrencyConfig::default(),
            pool: PoolConfig::default(),
            adaptive_rate: AdaptiveRateConfig::default(),
            hedge: HedgeConfig::default(),
            fleet: None,
            request_id: RequestIds::Generate,
            aws: None,
            retry_throttling: None,
        }
    }
}

/// The attempt loop.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per logical call, the first included. `1` disables retries. Default 4.
    pub max_attempts: u32,
    /// Timeout for one attempt, handed to the adapter (shortened to the time left before the
    /// deadline). `None`: no per-attempt timeout. Default 10 s.
    pub attempt_timeout_ms: Option<u64>,
    /// Total time for a logical call, waits included. `None`: no deadline. Default 30 s.
    pub deadline_ms: Option<u64>,
    /// Statuses worth another attempt. Default 408, 429, 500, 502, 503, 504.
    pub retry_statuses: Vec<u16>,
    /// Honour `Retry-After` on 429 and 503 (and the other retryable statuses). Default true.
    pub respect_retry_after: bool,
    /// The longest server-asked wait the engine accepts; a longer one fails the call with
    /// [`crate::Why::RetryAfterTooLong`] rather than sleeping for an hour. Default 60 s.
    pub max_retry_after_ms: u64,
    /// Calls that wait out a server hold (a 429's `Retry-After`, a used-up quota) wake spread
    /// over this fraction of their wait *after* the hold ends — never before it — so they do
    /// not all reach the server in the same instant. In `[0, 1]`; default 0.1.
    pub hold_spread: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 4,
            attempt_timeout_ms: Some(10_000),
            deadline_ms: Some(30_000),
            retry_statuses: vec![408, 429, 500, 502, 503, 504],
            respect_retry_after: true,
            max_retry_after_ms: 60_000,
            hold_spread: 0.1,
        }
    }
}

/// How the random part of a backoff delay is drawn (Brooker, "Exponential Backoff And Jitter").
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// `min(cap, base·factorⁿ)`: no randomness; clients that failed together retry together.
    None,
    /// `random(0, min(cap, base·factorⁿ))`: the fewest calls in Brooker's experiment.
    Full,
    /// `t/2 + random(0, t/2)` with `t = min(cap, base·factorⁿ)`.
    Equal,
    /// `min(cap, random(base, previous·3))`.
    Decorrelated,
}

/// Exponential backoff.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct BackoffConfig {
    /// The first delay before jitter. Default 100 ms.
    pub base_ms: u64,
    /// Growth per retry, at least 1. Default 2.
    pub factor: f64,
    /// The longest delay, applied after jitter. Default 10 s.
    pub cap_ms: u64,
    /// How to randomise. Default full jitter.
    pub jitter: Jitter,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base_ms: 100,
            factor: 2.0,
            cap_ms: 10_000,
            jitter: Jitter::Full,
        }
    }
}

/// A retry budget per host, in the style of Finagle's `RetryBudget` and gRPC's retry throttling:
/// every logical call deposits `ratio` of a retry, every retry withdraws one, and both count only
/// for `window_ms`. Under a total outage at `R` calls per second the engine sends at most
/// `1 + ratio + reserve / (window · R)` attempts per call.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Off: every call may use all its attempts. Default on.
    pub enabled: bool,
    /// Retries earned per logical call, in `[0, 1]`. Default 0.2 (Finagle's `percentCanRetry`;
    /// gRPC A6's `tokenRatio` is 0.1): a host that is down sees at most about 20 % more than its
    /// normal load (and the breaker cuts that short), while a host failing a fifth of requests
    /// at random still has its failures retried.
    pub ratio: f64,
    /// Retries every window grants even without calls, so a quiet client can retry its odd
    /// failure (Finagle's `minRetriesPerSec` · `ttl`). Default 10.
    pub reserve: u32,
    /// The most retries that can be saved up and spent in one burst. Default 100.
    pub max_saved: u32,
    /// How long a deposit (and a withdrawal) counts: savings older than this expire, so what a
    /// healthy hour earned is not spent in the first second of an outage. Default 10 s, as
    /// Finagle's `ttl`.
    pub window_ms: u64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            enabled: true,
            ratio: 0.2,
            reserve: 10,
            max_saved: 100,
            window_ms: 10_000,
        }
    }
}

/// A circuit breaker per host.
///
/// The default trips on a failure *rate*: at least half of the attempts of the last 10 s
/// failed, counted only once 20 attempts were seen in that window. A rate, unlike a run of
/// failures, does not depend on concurrency: 64 calls in flight against a host failing 20 % of
/// requests at random see five failures in a row within seconds, yet the host is mostly
/// healthy. Resilience4j's default is the same 50 % (over 100 calls); Polly's 10 % over 100
/// calls in 30 s would cut such a host off, so resile stays at 50 % and lets retries and the
/// budget absorb a 20 % failure rate. 20 attempts in 10 s (2/s) is low enough that a busy
/// client decides quickly, high enough that 10 failures out of 20 is rarely chance at 20 %
/// (p ≈ 0.3 %).
///
/// Below that volume a rate says little, so the breaker also trips after
/// `consecutive_failures` failed attempts in a row, but only while the window holds fewer than
/// `min_calls` attempts: a quiet client calling a dead host fails fast after 5 attempts. At
/// volume a run trips only when it is `min_calls` long — the latest 20 attempts all failed, a
/// 100 % rate over the minimum sample — so a busy host that dies is cut off after 20 failures,
/// while runs of 20 at a 20 % random failure rate (0.2²⁰ ≈ 10⁻¹⁴ per attempt) do not happen.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Off: never fail fast. Default on.
    pub enabled: bool,
    /// Trip after this many failed attempts in a row; `0` disables this trigger. While
    /// `failure_rate` is set this applies only while the window holds fewer than `min_calls`
    /// attempts (low volume, where a rate means little); at volume the run must be at least
    /// `min_calls` long. Without a rate it always applies. Default 5.
    pub consecutive_failures: u32,
    /// Trip when the failure fraction over the window reaches this, in `(0, 1]`, once the
    /// window holds `min_calls` attempts; `None` disables this trigger. Default 0.5.
    pub failure_rate: Option<f64>,
    /// The sliding window for the failure rate (eight buckets of an eighth each). Default 10 s.
    pub window_ms: u64,
    /// The failure rate counts only with at least this many attempts in the window; below it
    /// the consecutive-failure trigger decides. Default 20.
    pub min_calls: u32,
    /// How long the breaker stays open after its first trip. Default 5 s.
    pub open_ms: u64,
    /// Each trip without a full recovery multiplies the open time by this (≥ 1). Default 2.
    pub open_growth: f64,
    /// The longest open time. Default 60 s.
    pub max_open_ms: u64,
    /// Attempts let through while half-open; all must succeed to close. Default 1.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            consecutive_failures: 5,
            failure_rate: Some(0.5),
            window_ms: 10_000,
            min_calls: 20,
            open_ms: 5_000,
            open_growth: 2.0,
            max_open_ms: 60_000,
            half_open_probes: 1,
        }
    }
}

/// A client-side rate limit per host (GCRA).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Sustained requests per second (> 0).
    pub per_second: f64,
    /// Requests that may go at once after a quiet spell (≥ 1). Default 1.
    #[serde(default = "one")]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

/// The access-token lifecycle.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Fetch a fresh token this long before the current one expires, but never earlier than
    /// the last fifth of the token's lifetime: a 3 s token is refreshed 600 ms before it
    /// expires, not on every call. Default 60 s.
    pub refresh_skew_ms: u64,
    /// Refresh once and retry when the server answers 401 to a call that carried a token.
    /// Default true.
    pub refresh_on_401: bool,
    /// A fetch that fails, or returns a token living less than this (`expires_in: 0`, say), is
    /// degenerate: the next fetch waits this long, doubling with each degenerate fetch in a
    /// row up to `max_fetch_backoff_ms`, so a broken authorization server is not hammered.
    /// After a failed fetch, a call with no unexpired token meanwhile fails at once
    /// (`token_fetch_failed`, with the time the next fetch may start) instead of fetching.
    /// Lower it if a provider really issues sub-second tokens. Default 1 s.
    pub fetch_backoff_ms: u64,
    /// The longest wait between degenerate fetches. Default 30 s.
    pub max_fetch_backoff_ms: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            refresh_skew_ms: 60_000,
            refresh_on_401: true,
            fetch_backoff_ms: 1_000,
            max_fetch_backoff_ms: 30_000,
        }
    }
}

/// A setting the engine cannot work with. The message names the field and what to change.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A number outside its allowed range.
    #[error("config field `{field}` is {value}, but {expected}")]
    OutOfRange {
        /// The dotted path of the field, e.g. `backoff.factor`.
        field: &'static str,
        /// The value given, as text.
        value: String,
        /// What the field accepts.
        expected: &'static str,
    },
    /// The configuration text could not be read.
    #[error("config could not be read: {0}")]
    Parse(String),
}

impl ConfigError {
    /// The dotted path of the field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ConfigError::OutOfRange { field, .. } => Some(field),
            ConfigError::Parse(_) => None,
        }
    }

    /// What is wrong, without the field's name (the adapters' errors name it themselves).
    pub fn problem(&self) -> String {
        match self {
            ConfigError::OutOfRange {
                value, expected, ..
            } => format!("is {value}, but {expected}"),
            other => other.to_string(),
        }
    }
}

/// The longest duration any setting may hold: 2³¹−1 ms (24.8 days). Browsers' `setTimeout`
/// turns anything longer into an immediate timer, which would make a long backoff a hot loop.
pub const MAX_DURATION_MS: u64 = i32::MAX as u64;

fn check_ms(field: &'static str, value: u64) -> Result<(), ConfigError> {
    if value > MAX_DURATION_MS {
        return Err(out_of_range(
            field,
            value,
            "must be at most 2147483647 ms (24.8 days); longer timers overflow in browsers",
        ));
    }
    Ok(())
}

fn out_of_range(field: &'static str, value: impl Shown, expected: &'static str) -> ConfigError {
    ConfigError::OutOfRange {
        field,
        value: value.shown(),
        expected,
    }
}

impl Config {
    /// Reads a config from JSON; unknown fields are an error, missing ones take defaults (or,
    /// with a `preset`, the preset's values; the fields written win).
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Config::from_value(value)
    }

    /// Reads a config from an already-parsed document (TOML or a JavaScript object turned
    /// into a `serde_json::Value`). A `preset` is applied first: the document's fields are
    /// laid over [`Preset::config`], objects merged key by key and anything else replaced, so
    /// `"limit": null` next to a preset removes its limit.
    pub fn from_value(value: serde_json::Value) -> Result<Config, ConfigError> {
        let preset = match value.get("preset") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(name)) => Some(Preset::from_name(name)?),
            Some(other) => {
                return Err(ConfigError::OutOfRange {
                    field: "preset",
                    // serde_json's compact text, written without its serializer (which
                    // nothing else in the browser build needs).
                    value: shown::compact_json(other),
                    expected: crate::preset::NAMES,
                });
            }
        };
        let config = match preset {
            Some(preset) => read::onto(preset.config(), &value),
            None => read::config(&value),
        }
        .map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration of a named peer policy (see [`crate::preset`]).
    pub fn preset(preset: Preset) -> Config {
        preset.config()
    }

    /// The configuration of the preset called `name`; an unknown name is a
    /// [`ConfigError::OutOfRange`] naming the `preset` field.
    pub fn from_preset(name: &str) -> Result<Config, ConfigError> {
        Ok(Preset::from_name(name)?.config())
    }

    /// Checks every field; the error names the first one that is off.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = &self.retry;
        let b = &self.backoff;
        let k = &self.breaker;
        let durations = [
            (
                "retry.attempt_timeout_ms",
                r.attempt_timeout_ms.unwrap_or(0),
            ),
            ("retry.deadline_ms", r.deadline_ms.unwrap_or(0)),
            ("retry.max_retry_after_ms", r.max_retry_after_ms),
            ("backoff.base_ms", b.base_ms),
            ("backoff.cap_ms", b.cap_ms),
            ("breaker.window_ms", k.window_ms),
            ("breaker.open_ms", k.open_ms),
            ("breaker.max_open_ms", k.max_open_ms),
            ("token.refresh_skew_ms", self.token.refresh_skew_ms),
            ("token.fetch_backoff_ms", self.token.fetch_backoff_ms),
            (
                "token.max_fetch_backoff_ms",
                self.token.max_fetch_backoff_ms,
            ),
            ("budget.window_ms", self.budget.window_ms),
        ];
        for (field, value) in durations {
            check_ms(field, value)?;
        }
        if r.max_attempts == 0 {
            return Err(out_of_range(
                "retry.max_attempts",
                0,
                "must be at least 1 (1 means no retries)",
            ));
        }
        if self.preset == Some(Preset::GrpcA6) && r.max_attempts > GRPC_MAX_ATTEMPTS {
            return Err(out_of_range(
                "retry.max_attempts",
                r.max_attempts,
                "must be at most 5 under preset grpc-a6 (gRPC A6 caps maxAttempts at 5)",
            ));
        }
        if r.max_attempts > 100 {
            return Err(out_of_range(
                "retry.max_attempts",
                r.max_attempts,
                "must be at most 100",
            ));
        }
        if r.attempt_timeout_ms == Some(0) {
            return Err(out_of_range(
                "retry.attempt_timeout_ms",
                0,
                "must be positive or null",
            ));
        }
        if r.deadline_ms == Some(0) {
            return Err(out_of_range(
                "retry.deadline_ms",
                0,
                "must be positive or null",
            ));
        }
        if !(r.hold_spread.is_finite() && (0.0..=1.0).contains(&r.hold_spread)) {
            return Err(out_of_range(
                "retry.hold_spread",
                r.hold_spread,
                "must be between 0 and 1",
            ));
        }
        if let Some(bad) = r.retry_statuses.iter().find(|s| !(100..=599).contains(*s)) {
            return Err(out_of_range(
                "retry.retry_statuses",
                bad,
                "must hold HTTP statuses 100..=599",
            ));
        }
        let c = &self.concurrency;
        for (field, value) in [
            ("concurrency.max_in_flight", c.max_in_flight),
            (
                "concurrency.max_in_flight_per_host",
                c.max_in_flight_per_host,
            ),
        ] {
            if value == Some(0) {
                return Err(out_of_range(field, 0, "must be positive or null"));
            }
        }
        if c.max_queue_ms == Some(0) {
            return Err(out_of_range(
                "concurrency.max_queue_ms",
                0,
                "must be positive or null",
            ));
        }
        check_ms("concurrency.max_queue_ms", c.max_queue_ms.unwrap_or(0))?;
        if let Some(adaptive) = &c.adaptive {
            adaptive.validate()?;
        }
        if !(b.factor.is_finite() && b.factor >= 1.0) {
            return Err(out_of_range(
                "backoff.factor",
                b.factor,
                "must be a finite number ≥ 1",
            ));
        }
        if b.cap_ms < b.base_ms {
            return Err(out_of_range(
                "backoff.cap_ms",
                b.cap_ms,
                "must be at least backoff.base_ms",
            ));
        }
        let g = &self.budget;
        if !(g.ratio.is_finite() && (0.0..=1.0).contains(&g.ratio)) {
            return Err(out_of_range(
                "budget.ratio",
                g.ratio,
                "must be between 0 and 1",
            ));
        }
        if g.max_saved < g.reserve {
            return Err(out_of_range(
                "budget.max_saved",
                g.max_saved,
                "must be at least budget.reserve",
            ));
        }
        if g.window_ms == 0 {
            return Err(out_of_range("budget.window_ms", 0, "must be positive"));
        }
        if let Some(rate) = k.failure_rate {
            if !(rate.is_finite() && rate > 0.0 && rate <= 1.0) {
                return Err(out_of_range(
                    "breaker.failure_rate",
                    rate,
                    "must be in (0, 1] or null",
                ));
            }
            if k.window_ms == 0 {
                return Err(out_of_range(
                    "breaker.window_ms",
                    0,
                    "must be positive when failure_rate is set",
                ));
            }
        }
        if k.open_ms == 0 {
            return Err(out_of_range("breaker.open_ms", 0, "must be positive"));
        }
        if !(k.open_growth.is_finite() && k.open_growth >= 1.0) {
            return Err(out_of_range(
                "breaker.open_growth",
                k.open_growth,
                "must be a finite number ≥ 1",
            ));
        }
        if k.max_open_ms < k.open_ms {
            return Err(out_of_range(
                "breaker.max_open_ms",
                k.max_open_ms,
                "must be at least breaker.open_ms",
            ));
        }
        if k.half_open_probes == 0 {
            return Err(out_of_range(
                "breaker.half_open_probes",
                0,
                "must be at least 1",
            ));
        }
        let t = &self.token;
        if t.fetch_backoff_ms == 0 {
            return Err(out_of_range(
                "token.fetch_backoff_ms",
                0,
                "must be positive, or an `expires_in: 0` token is fetched in a hot loop",
            ));
        }
        if t.max_fetch_backoff_ms < t.fetch_backoff_ms {
            return Err(out_of_range(
                "token.max_fetch_backoff_ms",
                t.max_fetch_backoff_ms,
                "must be at least token.fetch_backoff_ms",
            ));
        }
        if let Some(l) = &self.limit {
            if !(l.per_second.is_finite() && (0.001..=1e9).contains(&l.per_second)) {
                return Err(out_of_range(
                    "limit.per_second",
                    l.per_second,
                    "must be between 0.001 and 1e9",
                ));
            }
            if l.burst == 0 {
                return Err(out_of_range("limit.burst", 0, "must be at least 1"));
            }
        }
        if self.max_hosts == 0 {
            return Err(out_of_range("max_hosts", 0, "must be at least 1"));
        }
        if self.max_queued_events == 0 {
            return Err(out_of_range("max_queued_events", 0, "must be at least 1"));
        }
        self.hedge.validate()?;
        if let Some(aws) = &self.aws {
            aws.validate(&self.backoff)?;
        }
        if let Some(t) = &self.retry_throttling {
            throttling::validate(t)?;
        }
        if let Some(fleet) = &self.fleet {
            fleet.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
