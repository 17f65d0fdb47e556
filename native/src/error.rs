//! The one error type of the client, mapped from the engine's [`Failure`] and from what the
//! adapter saw on the wire.
//!
//! Every variant answers three questions: is trying the whole call again later worth it
//! ([`Error::is_retryable`]), may the server have applied the request
//! ([`Error::maybe_processed`]), and what made the engine decide ([`Error::why`]).

use std::fmt;
use std::time::{Duration, SystemTime};

use resile_core::headers::RETRY_AFTER_OUT_OF_RANGE;
use resile_core::{
    ConfigError, Detail, Failure, FailureKind, Last, Problem, Processed, TransportError, Why,
};

/// What the last attempt of a failed call ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LastCause {
    /// The server answered with this status.
    Status(u16),
    /// The transport failed.
    Transport {
        /// The kind, as the engine classified it.
        kind: TransportError,
        /// What the HTTP stack said (no secrets: URLs and headers are not included).
        message: String,
    },
}

impl LastCause {
    pub(crate) fn from_last(last: Last, message: Option<&str>) -> Self {
        match last {
            Last::Status(s) => LastCause::Status(s),
            Last::Transport(kind) => LastCause::Transport {
                kind,
                message: message.unwrap_or_default().to_string(),
            },
        }
    }
}

impl fmt::Display for LastCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LastCause::Status(s) => write!(f, "status {s}"),
            LastCause::Transport { kind, message } if message.is_empty() => {
                write!(f, "{}", transport_name(*kind))
            }
            LastCause::Transport { kind, message } => {
                write!(f, "{} ({message})", transport_name(*kind))
            }
        }
    }
}

pub(crate) fn transport_name(kind: TransportError) -> &'static str {
    match kind {
        TransportError::Connect => "connection failed",
        TransportError::Dns => "DNS lookup failed",
        TransportError::Tls => "TLS handshake failed",
        TransportError::Timeout => "attempt timed out",
        TransportError::Reset => "connection reset",
        TransportError::Truncated => "response body truncated",
        TransportError::Unreadable => "response unreadable",
        TransportError::Refused => "refused before processing",
        _ => "transport error",
    }
}

fn rate_limited_message(
    why: Why,
    retry_after: Option<Duration>,
    header: Option<&'static str>,
    retry_at: Option<SystemTime>,
) -> String {
    let header = header.unwrap_or("a rate-limit header");
    let until = retry_at
        .and_then(|t| t.duration_since(SystemTime::now()).ok())
        .map(|d| format!(" for another {} ms", d.as_millis()))
        .unwrap_or_default();
    match why {
        Why::RetryAfterTooLong => match retry_after {
            // Saturated from a number no clock can hold: not a wait anyone could raise a cap to.
            Some(asked) if asked >= RETRY_AFTER_OUT_OF_RANGE => format!(
                "rate limited: {header} asked for a wait out of range (2^64 seconds or more), so the configured cap (retry.max_retry_after_ms) applies: not retried"
            ),
            _ => format!(
                "rate limited: {header} asked to wait {}, over the configured cap (raise retry.max_retry_after_ms to wait longer)",
                retry_after.map(|d| format!("{} s", d.as_secs())).unwrap_or_else(|| "too long".into())
            ),
        },
        _ => format!(
            "rate limited: the host is held by the server's {header}{until}, past this call's deadline: {why}"
        ),
    }
}

fn last_suffix(last: &Option<LastCause>) -> String {
    last.as_ref()
        .map(|l| format!("; last attempt: {l}"))
        .unwrap_or_default()
}

/// Why a call or a page failed.
///
/// ```
/// use resile::Error;
///
/// // A final status the engine handed back: it retries every status it is configured to.
/// let e = Error::Status { status: 404, body_excerpt: String::new() };
/// assert!(!e.is_retryable() && e.maybe_processed());
/// assert_eq!(e.why(), None);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The call's deadline passed, or the next attempt could not start before it.
    #[error("timed out after {attempts} attempt(s): {why}{}", last_suffix(last))]
    Timeout {
        /// The engine's reason.
        why: Why,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's result, if one was made.
        last: Option<LastCause>,
        /// Whether the server may have applied the request.
        maybe_processed: bool,
    },
    /// The host is not being called now: its circuit breaker is open (or its half-open probes
    /// are busy). Try again after `retry_at`.
    #[error("host unavailable: {why}{}{}", retry_at.and_then(|t| t.duration_since(SystemTime::now()).ok()).map(|d| format!("; retry in {} ms", d.as_millis())).unwrap_or_default(), last_suffix(last))]
    Unavailable {
        /// The engine's reason.
        why: Why,
        /// When the breaker lets calls through again, if known.
        retry_at: Option<SystemTime>,
        /// Attempts made before the breaker stood in the way (0 when it was open from the
        /// start; more when it opened while the call waited to retry).
        attempts: u32,
        /// The last attempt's result, if one was made.
        last: Option<LastCause>,
        /// Whether the server may have applied the request (an earlier attempt may have).
        maybe_processed: bool,
    },
    /// The server's rate limit stands in the way: it asked for a longer wait than
    /// `retry.max_retry_after_ms` allows ([`Why::RetryAfterTooLong`]), or it holds the host past
    /// the call's deadline ([`Why::ServerRetryAfterHold`], [`Why::ServerQuotaHold`]).
    #[error("{}", rate_limited_message(*why, *retry_after, *header, *retry_at))]
    RateLimited {
        /// The wait the server asked for, when that is why.
        retry_after: Option<Duration>,
        /// Attempts made.
        attempts: u32,
        /// The engine's reason.
        why: Why,
        /// The header that asked for the wait (`Retry-After`, `RateLimit-Reset`, ...).
        header: Option<&'static str>,
        /// When the host may be called again, if known.
        retry_at: Option<SystemTime>,
        /// Whether the server may have applied the request.
        maybe_processed: bool,
    },
    /// Every allowed attempt failed (attempts used up, or the retry budget is spent).
    #[error("gave up after {attempts} attempt(s): {why}; last attempt: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's result.
        last: LastCause,
        /// [`Why::MaxAttempts`] or [`Why::BudgetExhausted`].
        why: Why,
        /// Whether the server may have applied the request.
        maybe_processed: bool,
    },
    /// The last attempt failed and repeating it is unsafe or impossible.
    #[error("not retried: {why}{}", last_suffix(last))]
    NotRetried {
        /// The engine's reason ([`Why::NotIdempotent`], [`Why::BodyNotReplayable`], ...).
        why: Why,
        /// Whether the server may have applied the request.
        maybe_processed: bool,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's result.
        last: Option<LastCause>,
    },
    /// The server answered with a status the caller did not accept (from the typed helpers and
    /// [`crate::Response::error_for_status`]).
    #[error("the server answered {status}: {body_excerpt}")]
    Status {
        /// The status.
        status: u16,
        /// The start of the body (at most 512 bytes, lossy UTF-8).
        body_excerpt: String,
    },
    /// The body is not the JSON the caller asked for.
    #[error(
        "could not decode the response (status {status}): {message}{}",
        resile_core::json_body::quoted(excerpt)
    )]
    Decode {
        /// The status of the response.
        status: u16,
        /// The start of the body (at most 512 bytes, lossy UTF-8).
        excerpt: String,
        /// What serde said.
        message: String,
    },
    /// No access token could be had, or the server rejected a fresh one.
    #[error("authentication failed: {why}{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Auth {
        /// [`Why::TokenFetchFailed`] or [`Why::TokenRejectedAgain`].
        why: Why,
        /// What the token endpoint or the server said (never the token).
        detail: Option<String>,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration{}: {message}", field.as_ref().map(|f| format!(" `{f}`")).unwrap_or_default())]
    Config {
        /// The dotted path of the field, when one is at fault.
        field: Option<String>,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// The request could not be made at all (outside the engine: building the HTTP client, a
    /// token endpoint that cannot be reached).
    #[error("transport error ({}): {message}", transport_name(*kind))]
    Transport {
        /// The kind.
        kind: TransportError,
        /// What the HTTP stack said.
        message: String,
    },
    /// The response body is larger than `max_response_bytes` (or a streamed body's
    /// [`crate::StreamingResponse::max_bytes`]).
    #[error(
        "the response body is larger than {limit} bytes (raise max_response_bytes, or a streamed \
         body's max_bytes, to accept it)"
    )]
    BodyTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// A config file could not be read: bad syntax, an unknown field, or a value of the wrong
    /// type. `field` is the full dotted path of the value at fault (`engine.backoff.factor`),
    /// `line` and `column` (from 1) where it is in the file.
    #[error("invalid configuration{} at line {line}, column {column}: {message}", field.as_ref().map(|f| format!(" `{f}`")).unwrap_or_default())]
    ConfigParse {
        /// The dotted path of the field, when one is at fault.
        field: Option<String>,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A response was still a redirect after `max_redirects` were followed: a redirect loop,
    /// or a chain longer than the limit.
    #[error("more than {limit} redirect(s) (a redirect loop?); raise max_redirects to follow longer chains")]
    TooManyRedirects {
        /// The configured `max_redirects`.
        limit: u32,
    },
    /// The URL cannot be used.
    #[error("invalid URL `{}`: {message}", crate::redact::redact_url(url, &[]))]
    InvalidUrl {
        /// The URL as given, with its user info and secret query values already replaced (see
        /// [`crate::redact`]), so that `Debug` output, which an `unwrap()` or a `main` that
        /// returns the error prints, shows no secret either.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A header, body or query could not be built into a request.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
    },
    /// A paginated collection could not be followed.
    #[error("pagination stopped: {0}")]
    Pagination(#[from] resile_core::paginate::PaginateError),
    /// A paginated walk stopped before its end: `cause` is the error of the page that could
    /// not be had or followed, `resume` where to go on ([`crate::Paginate::resume`]).
    #[error("the walk stopped after {items} item(s) in {pages} page(s): {cause}")]
    Walk {
        /// What stopped it.
        #[source]
        cause: Box<Error>,
        /// The next request, when there is one (none after a repeated cursor).
        resume: Option<resile_core::paginate::Resume>,
        /// Pages taken in.
        pages: u64,
        /// Items taken in.
        items: u64,
    },
    /// The call was cancelled (a batch gave up, or the engine was told to).
    #[error("the call was cancelled")]
    Cancelled,
    /// The client is overloaded: the call waited longer than
    /// `engine.concurrency.max_queue_ms` for a slot among those in flight, or the engine keeps
    /// state for too many hosts with calls in flight.
    #[error("overloaded: {why}")]
    Overloaded {
        /// [`Why::QueueTimeout`] or [`Why::TooManyHosts`].
        why: Why,
    },
    /// A breaker could not be controlled (a full host table, a snapshot that does not import).
    #[error("breaker control: {0}")]
    BreakerControl(#[source] resile_core::ControlError),
    /// A download whose body broke could not be taken up where it broke
    /// ([`crate::RequestBuilder::send_download`]): a 416, a partial answer that is not the range
    /// asked for, or (from [`crate::StreamingResponse::chunk`]) a server that sent the body again
    /// from its first byte. Downloading again from the start may succeed.
    #[error("the download cannot continue: {error}")]
    Resume {
        /// What the answer to the resumed attempt was.
        error: resile_core::resume::ResumeError,
    },
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config {
            field: e.field().map(str::to_string),
            message: e.problem(),
        }
    }
}

/// Context the adapter adds to an engine failure.
pub(crate) struct FailureContext<'a> {
    pub transport_message: Option<&'a str>,
    pub detail: Option<String>,
    pub retry_at: Option<SystemTime>,
    /// What the decoder said, for an undecodable answer.
    pub decode: Option<(String, String)>,
}

impl Error {
    /// [`Error::InvalidUrl`] for `url`, redacted.
    pub(crate) fn invalid_url(url: &str, message: String) -> Error {
        Error::InvalidUrl {
            url: crate::redact::redact_url(url, &[]),
            message,
        }
    }

    /// The same error, its last cause's message filled with `message` where the cause is a
    /// transport failure of `kind` that came without one: a download's break, which the
    /// engine was told of by kind only, so that giving up on it still says what broke.
    pub(crate) fn with_break_message(mut self, kind: TransportError, message: &str) -> Error {
        let last = match &mut self {
            Error::Timeout { last, .. }
            | Error::Unavailable { last, .. }
            | Error::NotRetried { last, .. } => last.as_mut(),
            Error::RetriesExhausted { last, .. } => Some(last),
            _ => None,
        };
        if let Some(LastCause::Transport {
            kind: k,
            message: m,
        }) = last
        {
            if *k == kind && m.is_empty() {
                *m = message.to_string();
            }
        }
        self
    }

    pub(crate) fn from_failure(f: Failure, cx: FailureContext<'_>) -> Error {
        let last = f
            .last
            .map(|l| LastCause::from_last(l, cx.transport_message));
        let maybe_processed = f.processed != Processed::Never;
        match f.kind() {
            FailureKind::Timeout => Error::Timeout {
                why: f.why,
                attempts: f.attempts,
                last,
                maybe_processed,
            },
            FailureKind::Unavailable => Error::Unavailable {
                why: f.why,
                retry_at: cx.retry_at,
                attempts: f.attempts,
                last,
                maybe_processed,
            },
            FailureKind::RateLimited => Error::RateLimited {
                retry_after: f.asked_wait().map(|(asked, _, _)| asked),
                attempts: f.attempts,
                why: f.why,
                header: f.hint().map(resile_core::Hint::header),
                retry_at: cx.retry_at,
                maybe_processed,
            },
            FailureKind::BadResponse => match f.detail {
                Detail::Problem(Problem::BodyTooLarge { limit }) => Error::BodyTooLarge { limit },
                Detail::Problem(Problem::TooManyRedirects { limit }) => {
                    Error::TooManyRedirects { limit }
                }
                _ => {
                    let (message, excerpt) = cx.decode.unwrap_or_default();
                    Error::Decode {
                        status: f.status().unwrap_or(0),
                        excerpt,
                        message,
                    }
                }
            },
            FailureKind::RetriesExhausted => match last {
                Some(last) => Error::RetriesExhausted {
                    attempts: f.attempts,
                    last,
                    why: f.why,
                    maybe_processed,
                },
                None => Error::NotRetried {
                    why: f.why,
                    maybe_processed,
                    attempts: f.attempts,
                    last: None,
                },
            },
            FailureKind::Auth => Error::Auth {
                why: f.why,
                detail: cx.detail,
            },
            FailureKind::Cancelled => Error::Cancelled,
            FailureKind::Overloaded => Error::Overloaded { why: f.why },
            _ => Error::NotRetried {
                why: f.why,
                maybe_processed,
                attempts: f.attempts,
                last,
            },
        }
    }

    /// Whether making the whole call again later could succeed.
    ///
    /// ```
    /// use resile::{Error, Why};
    ///
    /// let e = Error::NotRetried { why: Why::NotIdempotent, maybe_processed: true, attempts: 1, last: None };
    /// assert!(!e.is_retryable());
    /// let open = Error::Unavailable {
    ///     why: Why::BreakerOpen, retry_at: None, attempts: 0, last: None, maybe_processed: false,
    /// };
    /// assert!(open.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Walk { cause, .. } => cause.is_retryable(),
            Error::Timeout { .. }
            | Error::Unavailable { .. }
            | Error::RateLimited { .. }
            | Error::RetriesExhausted { .. }
            | Error::Transport { .. }
            | Error::Overloaded { .. }
            | Error::Resume { .. } => true,
            Error::NotRetried { why, .. } => why.is_retryable_failure(),
            // A final status handed back by the engine: the engine retries every status it
            // is configured to, so one that reached the caller is not worth repeating as is.
            Error::Status { .. } => false,
            Error::Auth { why, .. } => *why == Why::TokenFetchFailed,
            Error::Decode { .. }
            | Error::Config { .. }
            | Error::ConfigParse { .. }
            | Error::TooManyRedirects { .. }
            | Error::BodyTooLarge { .. }
            | Error::InvalidUrl { .. }
            | Error::InvalidRequest { .. }
            | Error::Pagination(_)
            | Error::BreakerControl(_)
            | Error::Cancelled => false,
        }
    }

    /// Whether the server may have applied the request (a write may have happened). For
    /// [`Error::Cancelled`] it answers `true`: an attempt may have been in flight.
    pub fn maybe_processed(&self) -> bool {
        match self {
            Error::Walk { cause, .. } => cause.maybe_processed(),
            Error::Timeout {
                maybe_processed, ..
            }
            | Error::RetriesExhausted {
                maybe_processed, ..
            }
            | Error::NotRetried {
                maybe_processed, ..
            }
            | Error::RateLimited {
                maybe_processed, ..
            }
            | Error::Unavailable {
                maybe_processed, ..
            } => *maybe_processed,
            // The server answered 401 to a fresh token: it saw the request.
            Error::Auth { why, .. } => *why == Why::TokenRejectedAgain,
            Error::Status { .. }
            | Error::Decode { .. }
            | Error::BodyTooLarge { .. }
            | Error::TooManyRedirects { .. }
            | Error::Pagination(_) => true,
            Error::Cancelled => true,
            Error::Transport { kind, .. } => !matches!(
                kind,
                TransportError::Connect
                    | TransportError::Dns
                    | TransportError::Tls
                    | TransportError::Refused
            ),
            _ => false,
        }
    }

    /// The engine's reason, for errors the engine decided.
    pub fn why(&self) -> Option<Why> {
        match self {
            Error::Walk { cause, .. } => cause.why(),
            Error::Timeout { why, .. }
            | Error::Unavailable { why, .. }
            | Error::RetriesExhausted { why, .. }
            | Error::NotRetried { why, .. }
            | Error::Auth { why, .. }
            | Error::Overloaded { why } => Some(*why),
            Error::RateLimited { why, .. } => Some(*why),
            Error::BodyTooLarge { .. } => Some(Why::BodyTooLarge),
            Error::Decode { .. } => Some(Why::Undecodable),
            Error::TooManyRedirects { .. } => Some(Why::TooManyRedirects),
            Error::Cancelled => Some(Why::Cancelled),
            _ => None,
        }
    }

    /// Whether the call ran out of time (its deadline, or attempts that timed out).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Walk { cause, .. } => cause.is_timeout(),
            Error::Timeout { .. } => true,
            Error::RetriesExhausted { last, .. } => matches!(
                last,
                LastCause::Transport {
                    kind: TransportError::Timeout,
                    ..
                }
            ),
            Error::Transport { kind, .. } => *kind == TransportError::Timeout,
            _ => false,
        }
    }

    /// The status of the response that caused the error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Walk { cause, .. } => cause.status(),
            Error::Status { status, .. } | Error::Decode { status, .. } => Some(*status),
            _ => match self.last_cause() {
                Some(LastCause::Status(s)) => Some(*s),
                _ => None,
            },
        }
    }

    /// How the call's last attempt ended, for the errors the engine ended a call with after
    /// an attempt (a status, or a failure below HTTP with its message).
    ///
    /// ```
    /// use resile::{Error, LastCause, Why};
    ///
    /// let e = Error::RetriesExhausted {
    ///     why: Why::MaxAttempts,
    ///     maybe_processed: false,
    ///     attempts: 4,
    ///     last: LastCause::Status(503),
    /// };
    /// assert_eq!(e.last_cause(), Some(&LastCause::Status(503)));
    /// assert_eq!(Error::Cancelled.last_cause(), None);
    /// ```
    pub fn last_cause(&self) -> Option<&LastCause> {
        match self {
            Error::Walk { cause, .. } => cause.last_cause(),
            Error::RetriesExhausted { last, .. } => Some(last),
            Error::NotRetried { last, .. }
            | Error::Timeout { last, .. }
            | Error::Unavailable { last, .. } => last.as_ref(),
            _ => None,
        }
    }

    /// Attempts the call made, for the errors the engine ended a call with (`None` for errors
    /// found before any attempt could be counted: a bad URL, a config error, ...).
    ///
    /// ```
    /// use resile::{Error, Why};
    ///
    /// let e = Error::NotRetried { why: Why::NotIdempotent, maybe_processed: true, attempts: 1, last: None };
    /// assert_eq!(e.attempts(), Some(1));
    /// assert_eq!(Error::Cancelled.attempts(), None);
    /// ```
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Walk { cause, .. } => cause.attempts(),
            Error::Timeout { attempts, .. }
            | Error::Unavailable { attempts, .. }
            | Error::RateLimited { attempts, .. }
            | Error::RetriesExhausted { attempts, .. }
            | Error::NotRetried { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// Where a stopped paginated walk goes on ([`Error::Walk`]).
    pub fn resume(&self) -> Option<&resile_core::paginate::Resume> {
        match self {
            Error::Walk { resume, .. } => resume.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn invalid_request(message: impl fmt::Display) -> Error {
        Error::InvalidRequest {
            message: message.to_string(),
        }
    }
}

pub(crate) use resile_core::excerpt::excerpt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_kinds_map_to_variants() {
        let base = Failure::new(
            Why::MaxAttempts,
            3,
            Some(Last::Status(503)),
            Processed::Maybe,
        );
        let with = |why: Why| {
            let mut f = base;
            f.why = why;
            f
        };
        let cx = || FailureContext {
            transport_message: None,
            detail: None,
            retry_at: None,
            decode: None,
        };
        let e = Error::from_failure(base, cx());
        assert!(matches!(
            e,
            Error::RetriesExhausted {
                attempts: 3,
                last: LastCause::Status(503),
                ..
            }
        ));
        assert!(e.is_retryable() && e.maybe_processed());
        assert_eq!(e.status(), Some(503));

        let e = Error::from_failure(with(Why::NotIdempotent), cx());
        assert!(matches!(
            e,
            Error::NotRetried {
                why: Why::NotIdempotent,
                maybe_processed: true,
                ..
            }
        ));
        assert!(!e.is_retryable());

        let e = Error::from_failure(
            Failure::new(Why::BreakerOpen, 3, None, Processed::Never),
            cx(),
        );
        assert!(matches!(e, Error::Unavailable { .. }) && !e.maybe_processed());

        let e = Error::from_failure(with(Why::DeadlineWouldPass), cx());
        assert!(e.is_timeout());
        let e = Error::from_failure(with(Why::RetryAfterTooLong), cx());
        assert!(matches!(e, Error::RateLimited { .. }));
        let e = Error::from_failure(with(Why::TokenFetchFailed), cx());
        assert!(matches!(e, Error::Auth { .. }));
        let e = Error::from_failure(with(Why::Cancelled), cx());
        assert!(matches!(e, Error::Cancelled));
        let too_large = Failure::new(
            Why::BodyTooLarge,
            1,
            Some(Last::Status(200)),
            Processed::Yes,
        )
        .detail(Detail::Problem(Problem::BodyTooLarge { limit: 10 }));
        let e = Error::from_failure(too_large, cx());
        assert!(matches!(e, Error::BodyTooLarge { limit: 10 }) && !e.is_retryable());
        let held = Failure::new(Why::ServerQuotaHold, 0, None, Processed::Never).detail(
            Detail::HostHeld {
                hint: resile_core::Hint::RetryAfter,
            },
        );
        let e = Error::from_failure(held, cx());
        assert!(
            e.to_string().contains("held by the server's Retry-After"),
            "{e}"
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let e: Error = resile_core::Config::from_json(r#"{"backoff":{"factor":0.5}}"#)
            .unwrap_err()
            .into();
        assert!(
            matches!(&e, Error::Config { field: Some(f), .. } if f == "backoff.factor"),
            "{e:?}"
        );
        assert!(e.to_string().contains("backoff.factor"));
    }

    #[test]
    fn redirect_loops_and_bad_urls_say_what_to_change_and_hide_secrets() {
        let e = Error::TooManyRedirects { limit: 10 };
        assert!(!e.is_retryable() && e.maybe_processed());
        assert!(e.to_string().contains("max_redirects"), "{e}");
        let e = Error::InvalidUrl {
            url: "http://me:pw@h.test/?token=t0k".into(),
            message: "bad".into(),
        };
        let shown = e.to_string();
        assert!(!shown.contains("pw") && !shown.contains("t0k"), "{shown}");
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt(b"abc", 512), "abc");
        let long = vec![b'x'; 2000];
        assert_eq!(excerpt(&long, 512).chars().count(), 513);
        assert_eq!(excerpt("é".as_bytes(), 1), "\u{fffd}…");
    }
}
