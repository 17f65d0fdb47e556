//! Views of the engine's state, for reports and UIs.

use std::sync::Arc;

use serde::Serialize;

use crate::adaptive::AdaptiveRate;
use crate::breaker::{BreakerState, HoldKind};
use crate::time::Instant;

/// Running totals, for reports.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Logical calls started.
    pub calls: u64,
    /// Attempts sent.
    pub attempts: u64,
    /// Calls that ended with a response.
    pub succeeded: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Breaker trips.
    pub breaker_trips: u64,
    /// Calls failed fast by an open breaker.
    pub breaker_rejections: u64,
    /// Retries refused by the budget.
    pub budget_refusals: u64,
    /// Token fetches asked for.
    pub token_fetches: u64,
    /// Waits caused by the client or server rate limit.
    pub rate_limited_waits: u64,
    /// Attempts the engine aborted: timed out itself because no outcome came, or lost to
    /// another attempt of the same call (hedging).
    pub attempts_aborted: u64,
    /// Times a call queued for a concurrency slot.
    pub concurrency_waits: u64,
    /// Connection pools recycled after connection failures in a row.
    pub pool_recycles: u64,
    /// Events dropped because nobody drained the queue.
    pub events_dropped: u64,
    /// Calls that answered with their fallback instead of failing.
    pub fallbacks: u64,
    /// Hedges sent (attempts beside one still out).
    pub hedges: u64,
}

/// One host's state, for UIs and reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostView {
    /// `scheme://authority`.
    pub host: Arc<str>,
    /// The breaker.
    pub breaker: BreakerState,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Retries the budget holds now.
    pub budget_available: f64,
    /// When the client limiter has its next free slot (none without a limiter).
    pub limiter_next_free: Option<Instant>,
    /// A server hold in force.
    pub held_until: Option<Instant>,
    /// Calls currently started and not finished.
    pub active_calls: u32,
    /// Attempts in flight now.
    pub in_flight: u32,
    /// A hold by hand on the breaker ([`crate::Engine::hold_breaker`]): `isolate` (held open)
    /// or `force_closed`; none without one. An isolation outranks a force-closed hold.
    pub breaker_hold: Option<HoldKind>,
    /// The adaptive client rate, when `adaptive_rate` is enabled.
    pub adaptive_rate: Option<AdaptiveRateView>,
    /// The adaptive concurrency limit in force, when `concurrency.adaptive` is set.
    pub concurrency_limit: Option<u32>,
    /// Tokens left in the AWS retry quota, with the config's `aws` section.
    pub retry_quota: Option<u32>,
    /// gRPC A6 retry-throttling tokens (thousandths), under `grpc-a6`.
    pub retry_throttle_milli: Option<u64>,
}

/// A host's adaptive client rate ([`crate::adaptive`]).
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct AdaptiveRateView {
    /// The host has throttled a call, so sends are paced (off until then).
    pub throttled: bool,
    /// Tokens per second the bucket fills at (meaningful once throttled).
    pub fill_rate: f64,
    /// The smoothed send rate, in requests per second.
    pub measured_rate: f64,
}

impl AdaptiveRateView {
    /// The view of `rate`.
    pub fn of(rate: &AdaptiveRate) -> Self {
        AdaptiveRateView {
            throttled: rate.is_enabled(),
            fill_rate: rate.fill_rate(),
            measured_rate: rate.measured_rate(),
        }
    }
}
