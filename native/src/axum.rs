//! Behind an axum service: a failed upstream call becomes the answer a gateway should give.
//!
//! With the feature `axum`, [`Error`] is an [`IntoResponse`], so a handler that calls an
//! upstream through a shared [`crate::Client`] returns `Result<_, resile::Error>` and uses `?`:
//!
//! ```
//! use axum::extract::{Path, State};
//! use axum::routing::get;
//! use axum::Router;
//!
//! async fn quote(State(upstream): State<resile::Client>, Path(sku): Path<String>) -> Result<String, resile::Error> {
//!     let quote: serde_json::Value = upstream.get_json(format!("rates/{sku}")).await?;
//!     Ok(quote.to_string())
//! }
//!
//! let upstream = resile::Client::builder().base_url("http://127.0.0.1:9000/").build().unwrap();
//! let app: Router = Router::new().route("/quote/{sku}", get(quote)).with_state(upstream);
//! # let _ = app;
//! ```
//!
//! ## The mapping
//!
//! The caller of this service did nothing wrong when an upstream fails, so no failure becomes
//! a 4xx (only [`Passthrough`] hands an upstream 4xx on, when a handler asks for it). The
//! rules, first match wins:
//!
//! | [`Error`] | status | `type` | `Retry-After` |
//! |---|---|---|---|
//! | [`Error::Walk`] | as its `cause` | as its `cause` | as its `cause` |
//! | [`Error::Timeout`]; any error whose last attempt timed out ([`Error::is_timeout`], or [`Error::NotRetried`] after a timeout) | 504 Gateway Timeout | `upstream-timeout` | — |
//! | [`Error::Unavailable`] (the breaker is open) | 503 Service Unavailable | `upstream-unavailable` | until `retry_at`, when known |
//! | [`Error::RateLimited`] (the upstream's rate limit) | 503 | `upstream-unavailable` | the later of `retry_at` and the wait the upstream asked for, of those known |
//! | [`Error::RetriesExhausted`] whose last answer was 503 or 429; [`Error::Status`] 503 or 429 | 503 | `upstream-unavailable` | — (the error does not keep the upstream's own) |
//! | [`Error::Overloaded`] (this service's client is at capacity) | 503 | `overloaded` | — |
//! | [`Error::Cancelled`] | 503 | `cancelled` | — |
//! | [`Error::Auth`] (no token, or the upstream rejected ours) | 502 Bad Gateway | `upstream-auth` | — |
//! | [`Error::RetriesExhausted`], [`Error::NotRetried`], [`Error::Status`], [`Error::Decode`], [`Error::BodyTooLarge`], [`Error::TooManyRedirects`], [`Error::Transport`], [`Error::Resume`], [`Error::Pagination`] | 502 | `bad-upstream` | — |
//! | [`Error::Config`], [`Error::ConfigParse`], [`Error::InvalidUrl`], [`Error::InvalidRequest`] | 500 Internal Server Error | `internal` | — |
//!
//! `Retry-After` is in whole seconds, rounded up, never negative (a `retry_at` already past
//! gives `0`) and at most [`MAX_RETRY_AFTER_SECS`].
//!
//! Why these choices:
//! - **Rate limited is 503, not 429.** The upstream limits *this service*; a 429 would tell
//!   the caller that *they* sent too much.
//! - **`Auth` is 502, not 401.** The upstream refused this service's credentials; the
//!   caller's own are not in question, and a 401 would make them log in again for nothing.
//! - **`Cancelled` is 503, not 499 or 500.** When the caller hangs up, axum drops the handler
//!   and no answer is written at all, so a [`Error::Cancelled`] that reaches a response came
//!   from elsewhere: a batch that gave up, a client shutting down. Nothing is wrong with the
//!   request or this service's configuration (500), and the same request can succeed when
//!   sent again, which is what 503 says; 499 is nginx's log code, not an HTTP status.
//! - **An upstream 404 is 502 by default.** A handler knows whether "not found upstream"
//!   means "not found" for its caller; [`Passthrough`] says so.
//!
//! ## The body
//!
//! An RFC 9457 problem document, `Content-Type: application/problem+json`:
//!
//! ```json
//! {"type":"https://docs.rs/resile/latest/resile/axum/index.html#upstream-unavailable",
//!  "title":"The upstream is unavailable","status":503,
//!  "detail":"every attempt failed: the call used all of its attempts (3 attempt(s); last: status 503)",
//!  "why":"max_attempts","retryable":true,"attempts":3}
//! ```
//!
//! `why` is the engine's reason ([`Why::name`], absent when the engine did not decide),
//! `retryable` is [`Error::is_retryable`] (whether the upstream call could succeed later),
//! `attempts` the attempts made, when known. The `detail` is written here from the error's
//! data, never from text that came from outside: no upstream URL (it may carry credentials or
//! secret query values), no upstream body excerpt, no transport or decoder message, and for a
//! 500 nothing about this service's configuration (a 500 logs the error with `tracing`
//! instead). Log the [`Error`] itself before returning it if you want the rest.
//!
//! ## Problem types
//!
//! Each `type` is [`TYPE_BASE`] followed by one of these names.
//!
//! ### upstream-timeout
//! The upstream did not answer in time, within an attempt's timeout or the call's deadline.
//!
//! ### upstream-unavailable
//! The upstream is not being called now (its breaker is open, its rate limit is used up), or
//! it answered 503 or 429 to every attempt. `Retry-After` says when to try again, when known.
//!
//! ### overloaded
//! This service's own client has too many upstream calls in flight or queued.
//!
//! ### cancelled
//! The upstream call was cancelled before it finished.
//!
//! ### upstream-auth
//! No access token could be had for the upstream, or it rejected a fresh one.
//!
//! ### bad-upstream
//! The upstream failed, or answered with something this service cannot use: an error status,
//! a body that does not decode or is too large, a redirect loop, a broken connection.
//!
//! ### internal
//! This service could not make the upstream request (its configuration, a URL or a request it
//! built).
//!
//! ### upstream-status
//! The upstream's own final status, passed on by [`Passthrough`].

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use ::axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use ::axum::http::{HeaderValue, StatusCode};
use ::axum::response::{IntoResponse, Response};

use crate::error::{transport_name, Error, LastCause};
use crate::{TransportError, Why};

/// The largest `Retry-After` sent, in seconds (an hour): a later `retry_at` is capped to it.
pub const MAX_RETRY_AFTER_SECS: u64 = 3600;

/// The media type of the problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where the problem types are described: each `type` member is this followed by
/// [`ProblemType::name`].
pub const TYPE_BASE: &str = "https://docs.rs/resile/latest/resile/axum/index.html#";

/// What kind of failure a problem document reports (its RFC 9457 `type`). See the
/// [module docs](self#problem-types).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemType {
    /// 504: the upstream did not answer in time.
    UpstreamTimeout,
    /// 503: the upstream is not being called now, or answered 503/429 to every attempt.
    UpstreamUnavailable,
    /// 503: this service's own client is at capacity.
    Overloaded,
    /// 503: the upstream call was cancelled.
    Cancelled,
    /// 502: no token for the upstream, or it rejected ours.
    UpstreamAuth,
    /// 502: the upstream failed or answered with something unusable.
    BadUpstream,
    /// 500: the upstream request could not be made.
    Internal,
    /// The upstream's own final status ([`Passthrough`]).
    UpstreamStatus,
}

impl ProblemType {
    /// The stable name, the fragment of the `type` URI.
    pub fn name(self) -> &'static str {
        match self {
            ProblemType::UpstreamTimeout => "upstream-timeout",
            ProblemType::UpstreamUnavailable => "upstream-unavailable",
            ProblemType::Overloaded => "overloaded",
            ProblemType::Cancelled => "cancelled",
            ProblemType::UpstreamAuth => "upstream-auth",
            ProblemType::BadUpstream => "bad-upstream",
            ProblemType::Internal => "internal",
            ProblemType::UpstreamStatus => "upstream-status",
        }
    }

    /// The RFC 9457 `title`: the same for every problem of this type.
    pub fn title(self) -> &'static str {
        match self {
            ProblemType::UpstreamTimeout => "The upstream did not answer in time",
            ProblemType::UpstreamUnavailable => "The upstream is unavailable",
            ProblemType::Overloaded => "Too many upstream calls in flight",
            ProblemType::Cancelled => "The upstream call was cancelled",
            ProblemType::UpstreamAuth => "The upstream refused this service's credentials",
            ProblemType::BadUpstream => "The upstream failed or answered unusably",
            ProblemType::Internal => "The upstream request could not be made",
            ProblemType::UpstreamStatus => "The upstream answered with an error status",
        }
    }

    /// The RFC 9457 `type`: [`TYPE_BASE`] and [`ProblemType::name`].
    pub fn uri(self) -> String {
        format!("{TYPE_BASE}{}", self.name())
    }
}

/// The answer an [`Error`] becomes: status, `Retry-After` and an RFC 9457 problem document.
/// [`Error`]'s `IntoResponse` builds one with [`ProblemDetails::new`]; build it yourself to
/// change a member before answering (it is an `IntoResponse` too).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use axum::http::StatusCode;
/// use resile::axum::{ProblemDetails, ProblemType};
/// use resile::{Error, Why};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
/// let open = Error::Unavailable {
///     why: Why::BreakerOpen, retry_at: Some(now + Duration::from_millis(4_200)),
///     attempts: 0, last: None, maybe_processed: false,
/// };
/// let problem = ProblemDetails::at(&open, now);
/// assert_eq!(problem.status, StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(problem.kind, ProblemType::UpstreamUnavailable);
/// assert_eq!(problem.retry_after_secs, Some(5));
/// assert_eq!(problem.why, Some(Why::BreakerOpen));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProblemDetails {
    /// What kind of failure (`type` and `title`).
    pub kind: ProblemType,
    /// The status answered (also the `status` member).
    pub status: StatusCode,
    /// One sentence for a human, written from the error's data only.
    pub detail: String,
    /// The engine's reason, when it decided.
    pub why: Option<Why>,
    /// [`Error::is_retryable`].
    pub retryable: bool,
    /// Attempts made, when known.
    pub attempts: Option<u32>,
    /// The `Retry-After` header, in seconds, when it is known.
    pub retry_after_secs: Option<u64>,
}

#[derive(serde::Serialize)]
struct Document<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<&'static str>,
    retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
}

impl ProblemDetails {
    /// The answer for `error`, with `Retry-After` counted from the wall clock now.
    pub fn new(error: &Error) -> Self {
        ProblemDetails::at(error, SystemTime::now())
    }

    /// The answer for `error`, with `Retry-After` counted from `now`.
    pub fn at(error: &Error, now: SystemTime) -> Self {
        let (status, kind) = gateway_status(error);
        ProblemDetails {
            kind,
            status,
            detail: detail(error),
            why: error.why(),
            retryable: error.is_retryable(),
            attempts: error.attempts(),
            retry_after_secs: retry_after(error, now),
        }
    }

    /// The problem document, as JSON.
    pub fn to_json(&self) -> String {
        let doc = Document {
            type_uri: self.kind.uri(),
            title: self.kind.title(),
            status: self.status.as_u16(),
            detail: &self.detail,
            why: self.why.map(Why::name),
            retryable: self.retryable,
            attempts: self.attempts,
        };
        // Strings, numbers and booleans only: serializing cannot fail.
        serde_json::to_string(&doc).unwrap_or_default()
    }
}

impl IntoResponse for ProblemDetails {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            self.to_json(),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// 502, 503, 504 or 500 with a problem document: see the [module docs](self#the-mapping).
///
/// A 500 also logs the error (`tracing` target `resile::axum`, level `warn`): its document
/// says nothing about this service's configuration, so the log is where to find the cause.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let problem = ProblemDetails::new(&self);
        if problem.kind == ProblemType::Internal {
            tracing::warn!(target: "resile::axum", error = %self, "answering 500: the upstream request could not be made");
        }
        problem.into_response()
    }
}

/// An [`Error`] that answers with the upstream's own final status when that status is about
/// the caller's request (400, 404, 409, 410, 412, 422), and as the [`Error`] itself otherwise.
///
/// Other statuses are not passed on: a 401, 403 or 407 is about this service's credentials,
/// a 429 about its quota, and a 5xx is the upstream's failure (502/503/504 above). The
/// document says `upstream-status`; the upstream's body is not copied.
///
/// ```
/// use axum::extract::{Path, State};
/// use resile::axum::Passthrough;
///
/// // An unknown SKU upstream (404) is a 404 for our caller too; `?` converts the error.
/// async fn item(State(upstream): State<resile::Client>, Path(sku): Path<String>) -> Result<String, Passthrough> {
///     let item: serde_json::Value = upstream.get_json(format!("items/{sku}")).await?;
///     Ok(item.to_string())
/// }
/// # let _ = axum::routing::get(item);
/// ```
#[derive(Debug)]
pub struct Passthrough(pub Error);

impl From<Error> for Passthrough {
    fn from(e: Error) -> Self {
        Passthrough(e)
    }
}

/// Upstream statuses [`Passthrough`] hands on.
const PASSED_THROUGH: [u16; 6] = [400, 404, 409, 410, 412, 422];

impl Passthrough {
    /// The answer, with `Retry-After` counted from `now`.
    pub fn problem_at(&self, now: SystemTime) -> ProblemDetails {
        match &self.0 {
            Error::Status { status, .. } if PASSED_THROUGH.contains(status) => ProblemDetails {
                kind: ProblemType::UpstreamStatus,
                status: StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
                detail: format!("the upstream answered {status}"),
                why: None,
                retryable: false,
                attempts: None,
                retry_after_secs: None,
            },
            other => ProblemDetails::at(other, now),
        }
    }
}

impl IntoResponse for Passthrough {
    fn into_response(self) -> Response {
        self.problem_at(SystemTime::now()).into_response()
    }
}

/// The decision: which status, which problem type.
fn gateway_status(e: &Error) -> (StatusCode, ProblemType) {
    use ProblemType as T;
    const TIMEOUT: (StatusCode, ProblemType) = (StatusCode::GATEWAY_TIMEOUT, T::UpstreamTimeout);
    const UNAVAILABLE: (StatusCode, ProblemType) =
        (StatusCode::SERVICE_UNAVAILABLE, T::UpstreamUnavailable);
    const BAD: (StatusCode, ProblemType) = (StatusCode::BAD_GATEWAY, T::BadUpstream);
    const INTERNAL: (StatusCode, ProblemType) = (StatusCode::INTERNAL_SERVER_ERROR, T::Internal);
    if upstream_timed_out(e) {
        return TIMEOUT;
    }
    match e {
        Error::Walk { cause, .. } => gateway_status(cause),
        Error::Timeout { .. } => TIMEOUT,
        Error::Unavailable { .. } | Error::RateLimited { .. } => UNAVAILABLE,
        Error::RetriesExhausted {
            last: LastCause::Status(503 | 429),
            ..
        }
        | Error::Status {
            status: 503 | 429, ..
        } => UNAVAILABLE,
        Error::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, T::Overloaded),
        Error::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, T::Cancelled),
        Error::Auth { .. } => (StatusCode::BAD_GATEWAY, T::UpstreamAuth),
        Error::RetriesExhausted { .. }
        | Error::NotRetried { .. }
        | Error::Status { .. }
        | Error::Decode { .. }
        | Error::BodyTooLarge { .. }
        | Error::TooManyRedirects { .. }
        | Error::Transport { .. }
        | Error::Resume { .. }
        | Error::Pagination(_) => BAD,
        Error::Config { .. }
        | Error::ConfigParse { .. }
        | Error::InvalidUrl { .. }
        | Error::InvalidRequest { .. }
        | Error::BreakerControl(_) => INTERNAL,
    }
}

fn upstream_timed_out(e: &Error) -> bool {
    e.is_timeout()
        || matches!(
            e,
            Error::NotRetried {
                last: Some(LastCause::Transport {
                    kind: TransportError::Timeout,
                    ..
                }),
                ..
            }
        )
}

/// Whole seconds until the upstream may be called again, when the error knows.
fn retry_after(e: &Error, now: SystemTime) -> Option<u64> {
    let until = |t: &SystemTime| t.duration_since(now).unwrap_or(Duration::ZERO);
    let wait = match e {
        Error::Walk { cause, .. } => return retry_after(cause, now),
        Error::Unavailable { retry_at, .. } => retry_at.as_ref().map(until),
        // Not before the upstream said, nor before this service's engine calls it again.
        Error::RateLimited {
            retry_at,
            retry_after,
            ..
        } => match (retry_at.as_ref().map(until), *retry_after) {
            (Some(held), Some(asked)) => Some(held.max(asked)),
            (held, asked) => held.or(asked),
        },
        _ => None,
    }?;
    let secs = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0));
    Some(secs.min(MAX_RETRY_AFTER_SECS))
}

/// What the last attempt ended with, without the transport's own words.
fn last_said(last: &LastCause) -> String {
    match last {
        LastCause::Status(s) => format!("status {s}"),
        LastCause::Transport { kind, .. } => transport_name(*kind).to_string(),
    }
}

/// The `detail` sentence: the error's kind, the engine's explanation and numbers, nothing
/// that came from outside (URLs, bodies, messages of the HTTP stack or the decoder).
fn detail(e: &Error) -> String {
    let counted = |attempts: u32, last: Option<&LastCause>| {
        let mut s = format!(" ({attempts} attempt(s)");
        if let Some(last) = last {
            let _ = write!(s, "; last: {}", last_said(last));
        }
        s.push(')');
        s
    };
    match e {
        Error::Walk {
            cause,
            pages,
            items,
            ..
        } => format!(
            "a paginated walk stopped after {items} item(s) in {pages} page(s): {}",
            detail(cause)
        ),
        Error::Timeout {
            why,
            attempts,
            last,
            ..
        } => format!(
            "the upstream did not answer in time: {}{}",
            why.explain(),
            counted(*attempts, last.as_ref())
        ),
        Error::Unavailable { why, .. } => {
            format!("the upstream is not being called now: {}", why.explain())
        }
        Error::RateLimited {
            why,
            attempts,
            header,
            ..
        } => format!(
            "the upstream's rate limit stands in the way ({}): {}{}",
            header.unwrap_or("a rate-limit header"),
            why.explain(),
            counted(*attempts, None)
        ),
        Error::RetriesExhausted {
            why,
            attempts,
            last,
            ..
        } => format!(
            "every attempt failed: {}{}",
            why.explain(),
            counted(*attempts, Some(last))
        ),
        Error::NotRetried {
            why,
            attempts,
            last,
            ..
        } => format!(
            "the upstream call failed and was not repeated: {}{}",
            why.explain(),
            counted(*attempts, last.as_ref())
        ),
        Error::Status { status, .. } => format!("the upstream answered {status}"),
        Error::Decode { status, .. } => {
            format!("the upstream's answer (status {status}) is not what this service expects")
        }
        Error::BodyTooLarge { limit } => {
            format!("the upstream's answer is larger than {limit} bytes")
        }
        Error::TooManyRedirects { limit } => {
            format!("the upstream redirected more than {limit} time(s)")
        }
        Error::Transport { kind, .. } => {
            format!(
                "the upstream could not be reached: {}",
                transport_name(*kind)
            )
        }
        Error::Resume { .. } => "the upstream's download could not be resumed".to_string(),
        Error::Auth { why, .. } => format!(
            "the upstream did not accept this service's credentials: {}",
            why.explain()
        ),
        Error::Pagination(_) => "the upstream's pages could not be followed".to_string(),
        Error::Cancelled => "the upstream call was cancelled before it finished".to_string(),
        Error::Overloaded { why } => format!(
            "this service has too many upstream calls in flight: {}",
            why.explain()
        ),
        Error::Config { .. }
        | Error::ConfigParse { .. }
        | Error::InvalidUrl { .. }
        | Error::InvalidRequest { .. }
        | Error::BreakerControl(_) => {
            "this service could not make the upstream request".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resile_core::paginate::PaginateError;

    /// The breaker's refusal of a call that made no attempt.
    fn unavailable(why: Why, retry_at: Option<SystemTime>) -> Error {
        Error::Unavailable {
            why,
            retry_at,
            attempts: 0,
            last: None,
            maybe_processed: false,
        }
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn status(s: u16) -> Option<LastCause> {
        Some(LastCause::Status(s))
    }

    fn timed_out() -> LastCause {
        LastCause::Transport {
            kind: TransportError::Timeout,
            message: "operation timed out".into(),
        }
    }

    #[test]
    fn every_error_maps_to_a_gateway_status_type_and_retry_after() {
        use ProblemType as T;
        let later = |ms: u64| Some(now() + Duration::from_millis(ms));
        let table: Vec<(Error, u16, ProblemType, Option<u64>)> = vec![
            (
                Error::Timeout {
                    why: Why::DeadlineExceeded,
                    attempts: 2,
                    last: None,
                    maybe_processed: false,
                },
                504,
                T::UpstreamTimeout,
                None,
            ),
            (
                Error::RetriesExhausted {
                    attempts: 3,
                    last: timed_out(),
                    why: Why::MaxAttempts,
                    maybe_processed: true,
                },
                504,
                T::UpstreamTimeout,
                None,
            ),
            (
                Error::NotRetried {
                    why: Why::NotIdempotent,
                    maybe_processed: true,
                    attempts: 1,
                    last: Some(timed_out()),
                },
                504,
                T::UpstreamTimeout,
                None,
            ),
            (
                Error::Transport {
                    kind: TransportError::Timeout,
                    message: String::new(),
                },
                504,
                T::UpstreamTimeout,
                None,
            ),
            (
                unavailable(Why::BreakerOpen, later(4_001)),
                503,
                T::UpstreamUnavailable,
                Some(5),
            ),
            (
                unavailable(Why::BreakerProbesBusy, None),
                503,
                T::UpstreamUnavailable,
                None,
            ),
            // A retry_at already past: 0, never negative.
            (
                unavailable(Why::BreakerOpen, Some(now() - Duration::from_secs(3))),
                503,
                T::UpstreamUnavailable,
                Some(0),
            ),
            // Whole seconds stay whole; the later of the hold and the asked wait.
            (
                Error::RateLimited {
                    retry_after: Some(Duration::from_secs(1)),
                    attempts: 1,
                    why: Why::ServerRetryAfterHold,
                    header: Some("Retry-After"),
                    retry_at: later(2_000),
                    maybe_processed: false,
                },
                503,
                T::UpstreamUnavailable,
                Some(2),
            ),
            // The engine stops waiting at its cap (60 s), the upstream asked for 120 s.
            (
                Error::RateLimited {
                    retry_after: Some(Duration::from_secs(120)),
                    attempts: 1,
                    why: Why::RetryAfterTooLong,
                    header: Some("Retry-After"),
                    retry_at: later(60_000),
                    maybe_processed: false,
                },
                503,
                T::UpstreamUnavailable,
                Some(120),
            ),
            // No retry_at: the wait the upstream asked for, capped at an hour.
            (
                Error::RateLimited {
                    retry_after: Some(Duration::from_secs(7200)),
                    attempts: 1,
                    why: Why::RetryAfterTooLong,
                    header: Some("Retry-After"),
                    retry_at: None,
                    maybe_processed: false,
                },
                503,
                T::UpstreamUnavailable,
                Some(MAX_RETRY_AFTER_SECS),
            ),
            (
                Error::RateLimited {
                    retry_after: None,
                    attempts: 0,
                    why: Why::ServerQuotaHold,
                    header: None,
                    retry_at: Some(now() + Duration::from_secs(u64::MAX / 4)),
                    maybe_processed: false,
                },
                503,
                T::UpstreamUnavailable,
                Some(MAX_RETRY_AFTER_SECS),
            ),
            (
                Error::RetriesExhausted {
                    attempts: 4,
                    last: LastCause::Status(503),
                    why: Why::MaxAttempts,
                    maybe_processed: true,
                },
                503,
                T::UpstreamUnavailable,
                None,
            ),
            (
                Error::RetriesExhausted {
                    attempts: 4,
                    last: LastCause::Status(429),
                    why: Why::BudgetExhausted,
                    maybe_processed: false,
                },
                503,
                T::UpstreamUnavailable,
                None,
            ),
            (
                Error::Status {
                    status: 503,
                    body_excerpt: String::new(),
                },
                503,
                T::UpstreamUnavailable,
                None,
            ),
            (
                Error::Overloaded {
                    why: Why::QueueTimeout,
                },
                503,
                T::Overloaded,
                None,
            ),
            (Error::Cancelled, 503, T::Cancelled, None),
            (
                Error::RetriesExhausted {
                    attempts: 4,
                    last: LastCause::Status(500),
                    why: Why::MaxAttempts,
                    maybe_processed: true,
                },
                502,
                T::BadUpstream,
                None,
            ),
            (
                Error::RetriesExhausted {
                    attempts: 4,
                    last: LastCause::Transport {
                        kind: TransportError::Reset,
                        message: String::new(),
                    },
                    why: Why::MaxAttempts,
                    maybe_processed: true,
                },
                502,
                T::BadUpstream,
                None,
            ),
            (
                Error::NotRetried {
                    why: Why::NotIdempotent,
                    maybe_processed: true,
                    attempts: 1,
                    last: status(503),
                },
                502,
                T::BadUpstream,
                None,
            ),
            (
                Error::Status {
                    status: 404,
                    body_excerpt: "nope".into(),
                },
                502,
                T::BadUpstream,
                None,
            ),
            (
                Error::Decode {
                    status: 200,
                    excerpt: "<html>".into(),
                    message: "expected value".into(),
                },
                502,
                T::BadUpstream,
                None,
            ),
            (Error::BodyTooLarge { limit: 10 }, 502, T::BadUpstream, None),
            (
                Error::TooManyRedirects { limit: 10 },
                502,
                T::BadUpstream,
                None,
            ),
            (
                Error::Transport {
                    kind: TransportError::Connect,
                    message: String::new(),
                },
                502,
                T::BadUpstream,
                None,
            ),
            (
                Error::Pagination(PaginateError::TooManyPages { max: 5 }),
                502,
                T::BadUpstream,
                None,
            ),
            (
                Error::Auth {
                    why: Why::TokenRejectedAgain,
                    detail: None,
                },
                502,
                T::UpstreamAuth,
                None,
            ),
            (
                Error::Config {
                    field: Some("retry.max_attempts".into()),
                    message: "is 0".into(),
                },
                500,
                T::Internal,
                None,
            ),
            (
                Error::ConfigParse {
                    field: None,
                    line: 1,
                    column: 2,
                    message: "x".into(),
                },
                500,
                T::Internal,
                None,
            ),
            (
                Error::InvalidUrl {
                    url: "nope".into(),
                    message: "relative".into(),
                },
                500,
                T::Internal,
                None,
            ),
            (
                Error::InvalidRequest {
                    message: "bad header".into(),
                },
                500,
                T::Internal,
                None,
            ),
            // A walk answers as the page that stopped it.
            (
                Error::Walk {
                    cause: Box::new(unavailable(Why::BreakerOpen, later(500))),
                    resume: None,
                    pages: 3,
                    items: 300,
                },
                503,
                T::UpstreamUnavailable,
                Some(1),
            ),
        ];
        for (error, want_status, want_kind, want_retry_after) in table {
            let p = ProblemDetails::at(&error, now());
            assert_eq!(
                (p.status.as_u16(), p.kind, p.retry_after_secs),
                (want_status, want_kind, want_retry_after),
                "{error:?}"
            );
            assert_eq!(p.why, error.why(), "{error:?}");
            assert_eq!(p.retryable, error.is_retryable(), "{error:?}");
        }
    }

    #[test]
    fn the_document_names_the_reason_and_counts_attempts() {
        let e = Error::RetriesExhausted {
            attempts: 3,
            last: LastCause::Status(503),
            why: Why::MaxAttempts,
            maybe_processed: true,
        };
        let doc: serde_json::Value =
            serde_json::from_str(&ProblemDetails::at(&e, now()).to_json()).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "type": format!("{TYPE_BASE}upstream-unavailable"),
                "title": "The upstream is unavailable",
                "status": 503,
                "detail": format!("every attempt failed: {} (3 attempt(s); last: status 503)", Why::MaxAttempts.explain()),
                "why": "max_attempts",
                "retryable": true,
                "attempts": 3,
            })
        );
        // Members that are unknown are left out, not null.
        let doc: serde_json::Value = serde_json::from_str(
            &ProblemDetails::at(
                &Error::Status {
                    status: 404,
                    body_excerpt: String::new(),
                },
                now(),
            )
            .to_json(),
        )
        .unwrap();
        let members: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            members,
            ["detail", "retryable", "status", "title", "type"],
            "{doc}"
        );
    }

    #[test]
    fn nothing_from_outside_reaches_the_document() {
        let secret = "s3cr3t";
        let errors = [
            Error::Status {
                status: 404,
                body_excerpt: format!("no such item; token={secret}"),
            },
            Error::Decode {
                status: 200,
                excerpt: format!("{{\"password\":\"{secret}\""),
                message: format!("invalid type: string \"{secret}\""),
            },
            Error::Transport {
                kind: TransportError::Connect,
                message: format!("http://me:{secret}@h.test/ refused"),
            },
            Error::RetriesExhausted {
                attempts: 2,
                last: LastCause::Transport {
                    kind: TransportError::Reset,
                    message: format!("reset by http://h.test/?api_key={secret}"),
                },
                why: Why::MaxAttempts,
                maybe_processed: true,
            },
            Error::Auth {
                why: Why::TokenFetchFailed,
                detail: Some(format!("invalid_client for {secret}")),
            },
            Error::InvalidUrl {
                url: format!("http://h.test/?token={secret}"),
                message: "bad".into(),
            },
            Error::Config {
                field: Some("token.client_secret".into()),
                message: format!("is {secret}"),
            },
            Error::Pagination(PaginateError::Repeated(format!(
                "https://h.test/items?token={secret}"
            ))),
            Error::Walk {
                cause: Box::new(Error::Decode {
                    status: 200,
                    excerpt: secret.into(),
                    message: secret.into(),
                }),
                resume: None,
                pages: 1,
                items: 10,
            },
        ];
        for e in errors {
            let doc = ProblemDetails::at(&e, now()).to_json();
            assert!(!doc.contains(secret), "{doc}");
            assert!(!doc.contains("h.test"), "{doc}");
        }
    }

    #[tokio::test]
    async fn a_response_carries_status_media_type_retry_after_and_the_document() {
        let e = unavailable(
            Why::BreakerOpen,
            Some(SystemTime::now() + Duration::from_secs(30)),
        );
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let headers = response.headers();
        assert_eq!(headers[CONTENT_TYPE], PROBLEM_JSON);
        let secs: u64 = headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=30).contains(&secs), "{secs}");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["status"], 503);
        assert_eq!(doc["why"], "breaker_open");

        let response = Error::Timeout {
            why: Why::DeadlineExceeded,
            attempts: 1,
            last: None,
            maybe_processed: false,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(response.headers().get(RETRY_AFTER).is_none());
    }

    #[test]
    fn passthrough_hands_on_statuses_about_the_callers_request_only() {
        let passed = |s: u16| {
            Passthrough(Error::Status {
                status: s,
                body_excerpt: "upstream body".into(),
            })
            .problem_at(now())
        };
        for s in PASSED_THROUGH {
            let p = passed(s);
            assert_eq!(
                (p.status.as_u16(), p.kind),
                (s, ProblemType::UpstreamStatus)
            );
            assert!(!p.to_json().contains("upstream body"));
        }
        for (s, want) in [(401, 502), (403, 502), (407, 502), (429, 503), (500, 502)] {
            let p = passed(s);
            assert_eq!(p.status.as_u16(), want, "{s}");
            assert_ne!(p.kind, ProblemType::UpstreamStatus, "{s}");
        }
        let timeout = Passthrough(Error::Timeout {
            why: Why::DeadlineExceeded,
            attempts: 1,
            last: None,
            maybe_processed: false,
        })
        .problem_at(now());
        assert_eq!(timeout.status, StatusCode::GATEWAY_TIMEOUT);
    }
}
