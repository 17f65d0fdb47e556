//! The caller's retry predicate: a second opinion on an attempt's outcome that can only narrow
//! what the engine's rules allow.
//!
//! A [`RetryPredicate`] sees what an attempt ended with (the response head, or the kind of
//! transport failure) and answers with a [`RetryVerdict`]. The adapters wrap the caller's
//! closure (native) or function (browser) in one, holding the request's method, URL and headers
//! for it to look at. The engine asks it once per failed or answered attempt, after the breaker
//! and the server's hints have been recorded and after a 401's token refresh, and before
//! [`retry::decide`](super::retry::decide):
//!
//! | verdict | a response | a transport failure |
//! |---|---|---|
//! | [`RetryVerdict::Decide`] | the engine's rules, unchanged | the same |
//! | [`RetryVerdict::DontRetry`] | the response is the call's answer (as a 404 is) | the call fails with [`Why::PredicateDeclined`] |
//! | [`RetryVerdict::Retry`] | retried, even a status the engine takes as final | retried, even a failure the engine would not retry |
//! | [`RetryVerdict::RetryAfter`] | retried after this wait (not backoff) | the same |
//!
//! What a predicate cannot do: every retry it asks for still goes through `decide`, so a write
//! that may have been applied without an Idempotency-Key is not repeated
//! ([`Why::NotIdempotent`]), a one-shot body is not resent, the attempt count, the deadline,
//! the breaker and the budget all still refuse, and a `RetryAfter` longer than
//! `retry.max_retry_after_ms` fails the call with [`Why::RetryAfterTooLong`] as a server's
//! `Retry-After` would. A predicate's wait is never the budget-free first retry after a 429.
//!
//! [`Why::PredicateDeclined`]: crate::Why::PredicateDeclined
//! [`Why::NotIdempotent`]: crate::Why::NotIdempotent
//! [`Why::RetryAfterTooLong`]: crate::Why::RetryAfterTooLong

use core::time::Duration;

use crate::classify::{Class, Method, TransportError};
use crate::headers::Headers;

/// What the predicate is told about an attempt.
#[derive(Clone, Copy)]
pub struct Attempted<'a> {
    /// The call's method.
    pub method: Method,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// How it ended.
    pub outcome: Seen<'a>,
}

/// How an attempt ended, as the predicate sees it.
#[derive(Clone, Copy)]
pub enum Seen<'a> {
    /// The server answered with this head.
    Response {
        /// The status.
        status: u16,
        /// The headers (`get` takes a lowercase name).
        headers: &'a dyn Headers,
    },
    /// The transport failed.
    Transport(TransportError),
}

impl core::fmt::Debug for Seen<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Seen::Response { status, .. } => f
                .debug_struct("Response")
                .field("status", status)
                .finish_non_exhaustive(),
            Seen::Transport(e) => f.debug_tuple("Transport").field(e).finish(),
        }
    }
}

/// The predicate's answer.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryVerdict {
    /// No opinion: the engine's rules decide.
    #[default]
    Decide,
    /// Retry, if the engine's safety rules allow it.
    Retry,
    /// Retry after this wait, if the engine's safety rules (and the `Retry-After` cap) allow.
    RetryAfter(Duration),
    /// Do not retry: a response is the call's answer, a transport failure fails the call.
    DontRetry,
}

/// A caller's retry predicate. `Send + Sync` so an engine holding one can live behind the
/// native client's mutex; it is called with the engine borrowed, so it must not call back into
/// the client.
pub trait RetryPredicate: Send + Sync {
    /// The verdict on one attempt.
    fn judge(&self, attempted: &Attempted<'_>) -> RetryVerdict;
}

impl<F> RetryPredicate for F
where
    F: Fn(&Attempted<'_>) -> RetryVerdict + Send + Sync,
{
    fn judge(&self, attempted: &Attempted<'_>) -> RetryVerdict {
        self(attempted)
    }
}

/// A shared retry predicate, as a call carries it.
#[derive(Clone)]
pub struct Predicate(pub std::sync::Arc<dyn RetryPredicate>);

impl Predicate {
    /// Wraps a predicate.
    pub fn new(predicate: impl RetryPredicate + 'static) -> Self {
        Predicate(std::sync::Arc::new(predicate))
    }
}

impl core::fmt::Debug for Predicate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Predicate(..)")
    }
}

/// What the verdict does to the engine's classification of the outcome: the class to decide
/// on, and a wait the predicate asked for. A retry the predicate asks for keeps the class's
/// `processed`, so `decide` still refuses to repeat a write that may have been applied.
pub(crate) fn apply(verdict: RetryVerdict, mut class: Class) -> (Class, Option<Duration>) {
    match verdict {
        RetryVerdict::Decide => (class, None),
        RetryVerdict::DontRetry => {
            class.retryable = false;
            class.success = false;
            (class, None)
        }
        RetryVerdict::Retry => {
            class.retryable = true;
            class.success = false;
            (class, None)
        }
        RetryVerdict::RetryAfter(wait) => {
            class.retryable = true;
            class.success = false;
            (class, Some(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Processed;
    use crate::why::Why;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn class(success: bool, retryable: bool) -> Class {
        Class {
            success,
            retryable,
            breaker_failure: false,
            processed: Processed::Yes,
            why: Why::RetryableStatus,
        }
    }

    #[test]
    fn verdicts_change_only_retryable_and_success_never_processed() {
        let wait = Duration::from_millis(250);
        let rows = [
            (
                RetryVerdict::Decide,
                class(true, false),
                (true, false, None),
            ),
            (
                RetryVerdict::DontRetry,
                class(false, true),
                (false, false, None),
            ),
            (RetryVerdict::Retry, class(true, false), (false, true, None)),
            (
                RetryVerdict::RetryAfter(wait),
                class(false, false),
                (false, true, Some(wait)),
            ),
        ];
        for (verdict, input, (success, retryable, delay)) in rows {
            let (out, asked) = apply(verdict, input);
            assert_eq!(
                (out.success, out.retryable, asked),
                (success, retryable, delay),
                "{verdict:?}"
            );
            assert_eq!(out.processed, input.processed, "{verdict:?}");
        }
    }
}
