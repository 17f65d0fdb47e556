//! Every decision's reason.
//!
//! Each wait, retry, refusal and outcome carries a [`Why`], so logs, traces and UIs can say what
//! the engine did and because of what, in one short sentence: [`Why::explain`].

use serde::{Deserialize, Serialize, Serializer};

/// The reason behind a decision.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Why {
    /// The server answered with a success (or a final, non-error) status.
    Success,
    /// The server answered with a status that is worth another attempt (408, 500, 502, 503, 504).
    RetryableStatus,
    /// The server answered 429 Too Many Requests.
    TooManyRequests,
    /// The server said how long to wait, in `Retry-After`.
    RetryAfterHeader,
    /// The exponential backoff schedule (with jitter) chose this wait.
    Backoff,
    /// The connection failed before the request was sent (connect, DNS, TLS handshake).
    NeverSent,
    /// The connection broke after the request may have reached the server.
    MaybeProcessed,
    /// The attempt took longer than its timeout.
    AttemptTimeout,
    /// The status is final: retrying the same request would not change the answer.
    NotRetryableStatus,
    /// The client-side rate limit has no room yet.
    ClientRateLimit,
    /// The server's `Retry-After` holds every call to this host until then.
    ServerRetryAfterHold,
    /// The server's rate-limit headers said the quota is used up until the reset.
    ServerQuotaHold,
    /// The circuit breaker for this host is open.
    BreakerOpen,
    /// The breaker is half-open and its probes are all taken.
    BreakerProbesBusy,
    /// The retry budget for this host is spent; retrying now would amplify an outage.
    BudgetExhausted,
    /// The call used all of its attempts.
    MaxAttempts,
    /// The call's total deadline has passed.
    DeadlineExceeded,
    /// The next attempt could not start before the call's deadline.
    DeadlineWouldPass,
    /// The write may have been applied and carries no Idempotency-Key, so it is not repeated.
    NotIdempotent,
    /// The request body is a stream that cannot be sent twice.
    BodyNotReplayable,
    /// The server asked for a longer wait than the configured cap.
    RetryAfterTooLong,
    /// No access token yet; one is being fetched.
    TokenMissing,
    /// The access token is about to expire; a fresh one is fetched early.
    TokenExpiring,
    /// The access token has expired; the call waits for a fresh one.
    TokenExpired,
    /// The server rejected the token (401); it is refreshed once and the call tried again.
    TokenRejected,
    /// The server rejected a freshly fetched token too; the call fails instead of looping.
    TokenRejectedAgain,
    /// Fetching an access token failed.
    TokenFetchFailed,
    /// A hint header exists but could not be read (e.g. not exposed to the browser by CORS).
    HintUnreadable,
    /// The driver cancelled the call.
    Cancelled,
    /// The host table is full of hosts with calls in flight.
    TooManyHosts,
    /// The response body is larger than the configured cap.
    BodyTooLarge,
    /// The response body could not be decoded as asked.
    Undecodable,
    /// The server redirected more times than allowed.
    TooManyRedirects,
    /// The client-wide or per-host limit on attempts in flight is reached; the call queues.
    ConcurrencyLimit,
    /// Connections to the host failed again and again; the pooled ones are dropped.
    ConnectionsFailing,
    /// The call waited longer than `concurrency.max_queue_ms` for a concurrency slot.
    QueueTimeout,
    /// The host's adaptive client rate (on since the host throttled) has no token yet.
    AdaptiveRate,
    /// The server throttled a call (429 or an AWS throttling code): the adaptive rate backs off.
    Throttled,
    /// Answers keep coming without throttling: the adaptive rate grows back (CUBIC).
    RateRecovering,
    /// The host's adaptive concurrency limit is reached; the call queues.
    AdaptiveConcurrency,
    /// The host shed an attempt (429, 502, 503, 504, or it timed out): the concurrency limit
    /// backs off.
    AttemptDropped,
    /// The breaker for this host is held open by hand (isolated) until the hold is released.
    BreakerIsolated,
    /// The caller's retry predicate chose this wait.
    RetryPredicate,
    /// The caller's retry predicate said not to retry this failure.
    PredicateDeclined,
    /// The attempt out has not answered within the fixed hedge delay: another is sent beside it.
    HedgeDelay,
    /// The attempt out is slower than the host's recent latency percentile: another is sent
    /// beside it.
    HedgePercentile,
    /// Another attempt of the same call answered first; this one is abandoned.
    HedgeLost,
    /// The fleet's shared rate limit booked the call a later slot (fleet mode).
    FleetRateLimit,
    /// Another instance's breaker for this host is open; the fleet holds its calls (fleet mode
    /// with `fleet.share_breaker`).
    FleetBreakerOpen,
    /// The fleet's store did not answer in time or could not be reached; the instance uses its
    /// local share of the limit (fleet mode).
    FleetStoreDown,
    /// The TLS handshake failed (a certificate the client refuses, no protocol in common, a
    /// port that does not speak TLS): another attempt would fail the same way.
    TlsFailed,
    /// The server's answer could not be read (a head too large, not HTTP, a body that does not
    /// decode): another attempt would get the same answer.
    Unreadable,
    /// The server refused the request before processing any of it (an HTTP/2 stream refused,
    /// or past a graceful `GOAWAY`): sent again at once, once per call, free of the budget.
    RefusedUnprocessed,
}

/// The unit variant named [`Why::name`], at its place in the declaration, as the derive wrote
/// it: from the one table of names (the derive was a second match over every variant, 1 KB of
/// the browser build).
impl Serialize for Why {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit_variant("Why", *self as u32, self.name())
    }
}

impl Why {
    /// Every reason, in declaration order.
    pub const ALL: [Why; 53] = [
        Why::Success,
        Why::RetryableStatus,
        Why::TooManyRequests,
        Why::RetryAfterHeader,
        Why::Backoff,
        Why::NeverSent,
        Why::MaybeProcessed,
        Why::AttemptTimeout,
        Why::NotRetryableStatus,
        Why::ClientRateLimit,
        Why::ServerRetryAfterHold,
        Why::ServerQuotaHold,
        Why::BreakerOpen,
        Why::BreakerProbesBusy,
        Why::BudgetExhausted,
        Why::MaxAttempts,
        Why::DeadlineExceeded,
        Why::DeadlineWouldPass,
        Why::NotIdempotent,
        Why::BodyNotReplayable,
        Why::RetryAfterTooLong,
        Why::TokenMissing,
        Why::TokenExpiring,
        Why::TokenExpired,
        Why::TokenRejected,
        Why::TokenRejectedAgain,
        Why::TokenFetchFailed,
        Why::HintUnreadable,
        Why::Cancelled,
        Why::TooManyHosts,
        Why::BodyTooLarge,
        Why::Undecodable,
        Why::TooManyRedirects,
        Why::ConcurrencyLimit,
        Why::ConnectionsFailing,
        Why::QueueTimeout,
        Why::AdaptiveRate,
        Why::Throttled,
        Why::RateRecovering,
        Why::AdaptiveConcurrency,
        Why::AttemptDropped,
        Why::BreakerIsolated,
        Why::RetryPredicate,
        Why::PredicateDeclined,
        Why::HedgeDelay,
        Why::HedgePercentile,
        Why::HedgeLost,
        Why::FleetRateLimit,
        Why::FleetBreakerOpen,
        Why::FleetStoreDown,
        Why::TlsFailed,
        Why::Unreadable,
        Why::RefusedUnprocessed,
    ];

    /// The stable name: the same string as its serde form, for logs, metrics and error codes.
    pub fn name(self) -> &'static str {
        match self {
            Why::Success => "success",
            Why::RetryableStatus => "retryable_status",
            Why::TooManyRequests => "too_many_requests",
            Why::RetryAfterHeader => "retry_after_header",
            Why::Backoff => "backoff",
            Why::NeverSent => "never_sent",
            Why::MaybeProcessed => "maybe_processed",
            Why::AttemptTimeout => "attempt_timeout",
            Why::NotRetryableStatus => "not_retryable_status",
            Why::ClientRateLimit => "client_rate_limit",
            Why::ServerRetryAfterHold => "server_retry_after_hold",
            Why::ServerQuotaHold => "server_quota_hold",
            Why::BreakerOpen => "breaker_open",
            Why::BreakerProbesBusy => "breaker_probes_busy",
            Why::BudgetExhausted => "budget_exhausted",
            Why::MaxAttempts => "max_attempts",
            Why::DeadlineExceeded => "deadline_exceeded",
            Why::DeadlineWouldPass => "deadline_would_pass",
            Why::NotIdempotent => "not_idempotent",
            Why::BodyNotReplayable => "body_not_replayable",
            Why::RetryAfterTooLong => "retry_after_too_long",
            Why::TokenMissing => "token_missing",
            Why::TokenExpiring => "token_expiring",
            Why::TokenExpired => "token_expired",
            Why::TokenRejected => "token_rejected",
            Why::TokenRejectedAgain => "token_rejected_again",
            Why::TokenFetchFailed => "token_fetch_failed",
            Why::HintUnreadable => "hint_unreadable",
            Why::Cancelled => "cancelled",
            Why::TooManyHosts => "too_many_hosts",
            Why::BodyTooLarge => "body_too_large",
            Why::Undecodable => "undecodable",
            Why::TooManyRedirects => "too_many_redirects",
            Why::ConcurrencyLimit => "concurrency_limit",
            Why::ConnectionsFailing => "connections_failing",
            Why::QueueTimeout => "queue_timeout",
            Why::AdaptiveRate => "adaptive_rate",
            Why::Throttled => "throttled",
            Why::RateRecovering => "rate_recovering",
            Why::AdaptiveConcurrency => "adaptive_concurrency",
            Why::AttemptDropped => "attempt_dropped",
            Why::BreakerIsolated => "breaker_isolated",
            Why::RetryPredicate => "retry_predicate",
            Why::PredicateDeclined => "predicate_declined",
            Why::HedgeDelay => "hedge_delay",
            Why::HedgePercentile => "hedge_percentile",
            Why::HedgeLost => "hedge_lost",
            Why::FleetRateLimit => "fleet_rate_limit",
            Why::FleetBreakerOpen => "fleet_breaker_open",
            Why::FleetStoreDown => "fleet_store_down",
            Why::TlsFailed => "tls_failed",
            Why::Unreadable => "unreadable",
            Why::RefusedUnprocessed => "refused_unprocessed",
        }
    }

    /// As the reason a call failed: whether making the whole call again later could succeed
    /// and is safe ([`crate::Failure::is_retryable`] answers with this).
    pub fn is_retryable_failure(self) -> bool {
        !matches!(
            self,
            Why::NotIdempotent
                | Why::BodyNotReplayable
                | Why::TokenRejectedAgain
                | Why::Cancelled
                | Why::NotRetryableStatus
                | Why::BodyTooLarge
                | Why::Undecodable
                | Why::TooManyRedirects
                | Why::PredicateDeclined
                | Why::TlsFailed
                | Why::Unreadable
        )
    }

    /// One short sentence a person can read in a log.
    pub fn explain(self) -> &'static str {
        match self {
            Why::Success => "the server answered with a final status",
            Why::RetryableStatus => "the server answered with a status worth retrying",
            Why::TooManyRequests => "the server answered 429 Too Many Requests",
            Why::RetryAfterHeader => "the server said how long to wait in Retry-After",
            Why::Backoff => "exponential backoff with jitter chose this wait",
            Why::NeverSent => "the connection failed before the request was sent",
            Why::MaybeProcessed => {
                "the connection broke after the server may have processed the request"
            }
            Why::AttemptTimeout => "the attempt took longer than its timeout",
            Why::NotRetryableStatus => "the status is final; retrying would not change it",
            Why::ClientRateLimit => "the client-side rate limit has no room yet",
            Why::ServerRetryAfterHold => "the server's Retry-After holds every call to this host",
            Why::ServerQuotaHold => {
                "the server's rate-limit headers say the quota is used up until the reset"
            }
            Why::BreakerOpen => "the circuit breaker for this host is open",
            Why::BreakerProbesBusy => "the breaker is half-open and its probes are all taken",
            Why::BudgetExhausted => {
                "the retry budget for this host is spent; retrying would amplify the outage"
            }
            Why::MaxAttempts => "the call used all of its attempts",
            Why::DeadlineExceeded => "the call's deadline has passed",
            Why::DeadlineWouldPass => "the next attempt could not start before the call's deadline",
            Why::NotIdempotent => {
                "the write may have been applied and has no Idempotency-Key, so it is not repeated"
            }
            Why::BodyNotReplayable => "the request body is a stream that cannot be sent twice",
            Why::RetryAfterTooLong => "the server asked for a longer wait than the configured cap",
            Why::TokenMissing => "there is no access token yet; one is being fetched",
            Why::TokenExpiring => "the access token expires soon; a fresh one is fetched early",
            Why::TokenExpired => "the access token has expired; the call waits for a fresh one",
            Why::TokenRejected => "the server rejected the access token; it is refreshed once",
            Why::TokenRejectedAgain => "the server rejected a freshly fetched token too",
            Why::TokenFetchFailed => "fetching an access token failed",
            Why::HintUnreadable => {
                "a hint header could not be read, so the engine used its own backoff"
            }
            Why::Cancelled => "the call was cancelled",
            Why::TooManyHosts => "the host table is full of hosts with calls in flight",
            Why::BodyTooLarge => "the response body is larger than the configured cap",
            Why::Undecodable => "the response body could not be decoded as asked",
            Why::TooManyRedirects => "the server redirected more times than allowed",
            Why::ConcurrencyLimit => "the limit on attempts in flight is reached; the call queues",
            Why::ConnectionsFailing => {
                "connections to the host failed again and again; the pool is rebuilt"
            }
            Why::QueueTimeout => "the call waited too long for a free slot among those in flight",
            Why::AdaptiveRate => {
                "the host throttled calls, and its adaptive client rate has no token yet"
            }
            Why::Throttled => "the server throttled a call; the adaptive client rate backs off",
            Why::RateRecovering => {
                "answers come without throttling; the adaptive client rate grows back"
            }
            Why::AdaptiveConcurrency => {
                "the host's adaptive concurrency limit is reached; the call queues"
            }
            Why::AttemptDropped => {
                "the host shed an attempt (429, 502-504 or a timeout); the concurrency limit backs off"
            }
            Why::BreakerIsolated => "the breaker for this host is held open by hand (isolated)",
            Why::RetryPredicate => "the caller's retry predicate chose this wait",
            Why::PredicateDeclined => "the caller's retry predicate said not to retry this failure",
            Why::HedgeDelay => "the attempt out did not answer within the hedge delay",
            Why::HedgePercentile => {
                "the attempt out is slower than the host's recent latency percentile"
            }
            Why::HedgeLost => "another attempt of the same call answered first",
            Why::FleetRateLimit => "the fleet's shared rate limit booked a later slot",
            Why::FleetBreakerOpen => {
                "another instance's breaker for this host is open; the fleet holds its calls"
            }
            Why::FleetStoreDown => {
                "the fleet's store is unreachable or slow; this instance uses its local share"
            }
            Why::TlsFailed => {
                "the TLS handshake failed (certificate, protocol, or a port that does not speak TLS); another attempt would fail the same way"
            }
            Why::Unreadable => {
                "the server's answer could not be read (a head too large, not HTTP, a body that does not decode); another attempt would get the same"
            }
            Why::RefusedUnprocessed => {
                "the server refused the request before processing any of it (an HTTP/2 stream refused, or past a graceful GOAWAY); sent again at once, once per call"
            }
        }
    }
}

impl core::fmt::Display for Why {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.explain())
    }
}

#[cfg(test)]
mod tests {
    use super::Why;
    use serde::de::IntoDeserializer;
    use serde::Deserialize;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The serialized variant index is the derive's: serde's derived `Deserialize` reads a
    /// variant from its index, and each reason's index there is its discriminant, which
    /// `Serialize` writes (the name is held to the serde form in `tests/seam.rs`).
    #[test]
    fn the_variant_index_written_is_the_derives() {
        for (i, why) in Why::ALL.iter().enumerate() {
            let index = u32::try_from(i).unwrap();
            let read: Result<Why, serde::de::value::Error> =
                Why::deserialize(index.into_deserializer());
            assert_eq!(read, Ok(*why));
            assert_eq!(*why as u32, index);
        }
    }
}
