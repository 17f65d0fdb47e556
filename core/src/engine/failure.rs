//! Why a call failed, with the data a caller needs to react: the one source of "retryable?",
//! "maybe processed?" and "when may I try again?" for every driver's error type.

use core::time::Duration;

use serde::Serialize;

use crate::classify::Processed;
use crate::engine::outcome::{Last, Problem};
use crate::headers::HintSource;
use crate::time::Instant;
use crate::why::Why;

/// Which server header asked for a wait. It serializes as [`Hint::header`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hint {
    /// `Retry-After` (or the learned limit is slower than the cap allows).
    RetryAfter,
    /// A rate-limit header family: its reset, or the policy a learned limit came from.
    RateLimit(HintSource),
    /// Not a header: the caller's retry predicate asked for the wait.
    RetryPredicate,
    /// Another instance of the fleet saw the server's hint (fleet mode).
    Fleet,
}

impl Serialize for Hint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.header())
    }
}

impl Hint {
    /// The header's name, as a person would look for it.
    pub fn header(self) -> &'static str {
        match self {
            Hint::RetryAfter => "Retry-After",
            Hint::RateLimit(HintSource::Ietf) => "RateLimit / RateLimit-Policy",
            Hint::RateLimit(HintSource::IetfLegacy) => "RateLimit-Reset",
            Hint::RateLimit(HintSource::XRateLimit) => "X-RateLimit-Reset",
            Hint::RetryPredicate => "the retry predicate",
            Hint::Fleet => "the fleet's store",
        }
    }
}

/// What a failure carries beyond its reason.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Detail {
    /// Nothing more.
    None,
    /// The server asked for a wait longer than the cap (`Why::RetryAfterTooLong`).
    WaitTooLong {
        /// What the server asked for.
        #[serde(
            rename = "asked_ms",
            serialize_with = "crate::engine::event::ser_duration_ms"
        )]
        asked: Duration,
        /// The configured cap (`retry.max_retry_after_ms`).
        #[serde(
            rename = "cap_ms",
            serialize_with = "crate::engine::event::ser_duration_ms"
        )]
        cap: Duration,
        /// Which header asked.
        hint: Hint,
    },
    /// The host is held by a server hint past the call's deadline (the failure's `retry_at`
    /// says until when).
    HostHeld {
        /// Which header said so.
        hint: Hint,
    },
    /// The driver could not use the answer.
    Problem(Problem),
}

/// An optional instant in milliseconds, as events write every instant.
fn ser_opt_instant_ms<S: serde::Serializer>(t: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => crate::engine::event::ser_instant_ms(t, s),
        None => s.serialize_none(),
    }
}

/// Why a call failed, with what the caller needs to react.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Failure {
    /// The reason.
    pub why: Why,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt ended with, if one was made.
    pub last: Option<Last>,
    /// When the host may be tried again (breaker open, server hold). Serialized as
    /// `retry_at_ms`, milliseconds on the events' clock like `at_ms`.
    #[serde(rename = "retry_at_ms", serialize_with = "ser_opt_instant_ms")]
    pub retry_at: Option<Instant>,
    /// Whether the server may have applied the request.
    pub processed: Processed,
    /// Data for the reason.
    #[serde(flatten)]
    pub detail: Detail,
}

/// A coarse kind of failure, for mapping onto an adapter's error type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The call ran out of time.
    Timeout,
    /// The host is not being called (breaker open or probes busy).
    Unavailable,
    /// The server's rate limit asked for too long a wait, or holds the host.
    RateLimited,
    /// Retries ran out (attempts, budget) with the host still failing.
    RetriesExhausted,
    /// The last attempt failed and repeating it is unsafe or impossible.
    NotRetried,
    /// A token could not be had or was rejected.
    Auth,
    /// The caller cancelled.
    Cancelled,
    /// The engine has no room for another host.
    Overloaded,
    /// The answer could not be used (too large, undecodable, too many redirects).
    BadResponse,
}

impl Failure {
    /// A failure with no detail.
    pub fn new(why: Why, attempts: u32, last: Option<Last>, processed: Processed) -> Self {
        Failure {
            why,
            attempts,
            last,
            retry_at: None,
            processed,
            detail: Detail::None,
        }
    }

    /// Sets when the host may be tried again.
    pub fn retry_at(mut self, at: Option<Instant>) -> Self {
        self.retry_at = at;
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    /// The kind, for error mapping.
    pub fn kind(&self) -> FailureKind {
        match self.why {
            Why::DeadlineExceeded | Why::DeadlineWouldPass => FailureKind::Timeout,
            Why::AttemptTimeout => FailureKind::Timeout,
            Why::BreakerOpen | Why::BreakerProbesBusy | Why::BreakerIsolated => {
                FailureKind::Unavailable
            }
            Why::RetryAfterTooLong | Why::ServerRetryAfterHold | Why::ServerQuotaHold => {
                FailureKind::RateLimited
            }
            Why::MaxAttempts | Why::BudgetExhausted => FailureKind::RetriesExhausted,
            Why::TokenFetchFailed | Why::TokenRejectedAgain => FailureKind::Auth,
            Why::Cancelled => FailureKind::Cancelled,
            Why::TooManyHosts | Why::QueueTimeout => FailureKind::Overloaded,
            Why::BodyTooLarge | Why::Undecodable | Why::TooManyRedirects => {
                FailureKind::BadResponse
            }
            _ => FailureKind::NotRetried,
        }
    }

    /// Whether trying the whole call again later could succeed, and is safe: not for a write
    /// that may have been applied without a key, a one-shot body, a rejected token, a cancel,
    /// a final status or an answer that would be unusable again.
    pub fn is_retryable(&self) -> bool {
        self.why.is_retryable_failure()
    }

    /// Whether the server may have applied the request.
    pub fn maybe_processed(&self) -> bool {
        self.processed != Processed::Never
    }

    /// The last status the server answered with, if any.
    pub fn status(&self) -> Option<u16> {
        self.last.and_then(Last::status)
    }

    /// How long the server asked to wait, where that is why the call failed.
    pub fn asked_wait(&self) -> Option<(Duration, Duration, Hint)> {
        match self.detail {
            Detail::WaitTooLong { asked, cap, hint } => Some((asked, cap, hint)),
            _ => None,
        }
    }

    /// The header behind a wait or a hold, if one is.
    pub fn hint(&self) -> Option<Hint> {
        match self.detail {
            Detail::WaitTooLong { hint, .. } | Detail::HostHeld { hint } => Some(hint),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn retry_at_is_written_in_milliseconds_like_every_instant_in_events() {
        let failure = Failure::new(Why::BreakerOpen, 0, None, Processed::Never)
            .retry_at(Some(Instant::from_nanos(1_500_250_000)));
        let json = serde_json::to_value(failure).unwrap();
        assert_eq!(json["retry_at_ms"], serde_json::json!(1500.25));
        assert!(json.get("retry_at").is_none(), "{json}");
        // The farthest instant stays a number JS reads as such (not a 20-digit integer).
        let far = Failure::new(Why::BreakerOpen, 0, None, Processed::Never)
            .retry_at(Some(Instant::from_nanos(u64::MAX)));
        let ms = serde_json::to_value(far).unwrap()["retry_at_ms"]
            .as_f64()
            .unwrap();
        assert!(ms < 2f64.powi(53), "{ms}");
        let none = serde_json::to_value(Failure::new(Why::Cancelled, 1, None, Processed::Maybe));
        assert!(none.unwrap()["retry_at_ms"].is_null());
    }
}
