//! The one error type of the browser client, the mirror of native `resile::Error`.
//!
//! A call the engine gave up on is [`Error::Failed`], which carries the engine's [`Failure`]:
//! whether it is retryable, whether the request may have been processed and when the host may be
//! tried again are the failure's answers, never this crate's. The other variants are what the
//! adapter itself refused or could not read, and have the same names and fields as native's.
//!
//! Pure Rust: it compiles and is tested on every target.

use core::fmt;

use resile_core::{ConfigError, Failure, FailureKind, Last, TransportError, Why};

/// Why a call, a page or a client could not be had.
///
/// ```
/// use resile_wasm::Error;
///
/// let e = Error::Status { status: 404, body_excerpt: "no such item".into() };
/// assert_eq!(e.status(), Some(404));
/// assert!(e.maybe_processed() && !e.is_retryable() && e.why().is_none());
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine gave up on the call (attempts, deadline, budget, breaker, token, cancel, ...).
    #[error("{request} failed after {} attempt{}{}: {}{}",
        failure.attempts,
        if failure.attempts == 1 { "" } else { "s" },
        failure.last.as_ref().map(|l| format!(", last: {}", last_text(l))).unwrap_or_default(),
        failure.why.explain(),
        detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Failed {
        /// The engine's decision, with its reason and data.
        failure: Failure,
        /// The method and URL, without query or credentials: `GET https://api.test/items`.
        request: String,
        /// What the token provider last said, for authentication failures.
        detail: Option<String>,
    },
    /// The server answered with a status the caller did not accept
    /// ([`crate::Response::error_for_status`], [`crate::Client::get_json`]).
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
        /// What the decoder said.
        message: String,
    },
    /// A configuration value is out of range or unknown.
    #[error("invalid configuration{}: {message}", field.as_ref().map(|f| format!(" `{f}`")).unwrap_or_default())]
    Config {
        /// The dotted path of the field, when one is at fault.
        field: Option<String>,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// The URL cannot be fetched.
    #[error("invalid URL `{url}`: {message}")]
    InvalidUrl {
        /// The URL as given, without its credentials, query and fragment (they may hold
        /// secrets, and this is printed).
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
    /// A download's resumed answer could not be used (a 416, or a partial answer that is not
    /// the range asked for): see [`resile_core::resume`].
    #[error("the download could not be resumed: {0}")]
    Resume(#[from] resile_core::resume::ResumeError),
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config {
            field: e.field().map(str::to_string),
            message: e.problem(),
        }
    }
}

impl Error {
    /// The engine's failure, for a call it gave up on.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Error::Failed { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// Whether making the whole call again later could succeed: the engine's answer for a call it
    /// gave up on. A status the engine handed back as final, a body that does not decode and a
    /// request that cannot be built would fail the same way again.
    pub fn is_retryable(&self) -> bool {
        self.failure().is_some_and(Failure::is_retryable)
    }

    /// Whether the server may have applied the request (a write may have happened): the engine's
    /// answer for a call it gave up on; `true` whenever the server answered.
    pub fn maybe_processed(&self) -> bool {
        match self {
            Error::Failed { failure, .. } => failure.maybe_processed(),
            Error::Status { .. } | Error::Decode { .. } | Error::Pagination(_) => true,
            _ => false,
        }
    }

    /// The engine's reason, for a call it gave up on.
    pub fn why(&self) -> Option<Why> {
        self.failure().map(|f| f.why)
    }

    /// Whether the call ran out of time (its deadline, or attempts that timed out).
    pub fn is_timeout(&self) -> bool {
        self.failure().is_some_and(|f| {
            f.kind() == FailureKind::Timeout
                || f.last == Some(Last::Transport(TransportError::Timeout))
        })
    }

    /// The status of the response behind the error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::Failed { failure, .. } => match failure.last {
                Some(Last::Status(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the caller cancelled the call.
    pub fn is_cancelled(&self) -> bool {
        self.failure()
            .is_some_and(|f| f.kind() == FailureKind::Cancelled)
    }

    /// The stable `code` of the JavaScript `ResileError` for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Failed { failure, .. } => crate::translate::failure_code(failure.kind()),
            Error::Status { .. } => "status",
            Error::Decode { .. } => "decode",
            Error::Config { .. } => "config",
            Error::InvalidUrl { .. } | Error::InvalidRequest { .. } => "invalid",
            Error::Resume(_) => "resume",
            Error::Pagination(e) => match e {
                resile_core::paginate::PaginateError::Repeated(_)
                | resile_core::paginate::PaginateError::TooManyPages { .. } => "pagination",
                _ => "decode",
            },
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // used by the browser client
    pub(crate) fn invalid_request(message: impl fmt::Display) -> Error {
        Error::InvalidRequest {
            message: message.to_string(),
        }
    }
}

/// How an attempt ended, as short text: `status 503`, `transport timeout`.
pub(crate) fn last_text(last: &Last) -> String {
    match last {
        Last::Status(s) => format!("status {s}"),
        Last::Transport(e) => format!("transport {}", crate::translate::serde_name(e)),
    }
}

/// A method and URL fit for an error message: no query, fragment or credentials.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // used by the browser client
pub(crate) fn request_text(method: &str, url: &str) -> String {
    format!("{method} {}", shown_url(url))
}

/// A URL fit for an error message or `Debug`: no query, fragment or credentials.
pub(crate) fn shown_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or_default();
    // The first "://", found bytewise: `split_once("://")` is the browser build's last `&str`
    // pattern, and its two-way searcher is ≈ 2.5 KB of code.
    let scheme_end = without_query
        .as_bytes()
        .windows(3)
        .position(|w| w == b"://");
    match scheme_end.map(|i| (&without_query[..i], &without_query[i + 3..])) {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            // After the last `@`, found bytewise (`rsplit` is a reverse searcher of its own).
            let host = match authority.bytes().rposition(|b| b == b'@') {
                Some(at) => &authority[at + 1..],
                None => authority,
            };
            format!("{scheme}://{host}{path}")
        }
        None => without_query.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resile_core::{Instant, Processed};
    // On wasm32 the same tests run under wasm-bindgen-test-runner (in Node).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn failed(why: Why, last: Option<Last>, processed: Processed) -> Error {
        Error::Failed {
            failure: Failure::new(why, 3, last, processed).retry_at(Some(Instant::from_millis(10))),
            request: "GET https://h.test/x".into(),
            detail: None,
        }
    }

    #[test]
    fn engine_failures_answer_with_the_failures_own_semantics() {
        let table = [
            (Why::MaxAttempts, Some(Last::Status(503)), Processed::Maybe),
            (
                Why::NotIdempotent,
                Some(Last::Transport(TransportError::Reset)),
                Processed::Maybe,
            ),
            (Why::BreakerOpen, None, Processed::Never),
            (Why::Cancelled, None, Processed::Never),
            (
                Why::TokenRejectedAgain,
                Some(Last::Status(401)),
                Processed::Yes,
            ),
            (
                Why::DeadlineExceeded,
                Some(Last::Transport(TransportError::Timeout)),
                Processed::Maybe,
            ),
        ];
        for (why, last, processed) in table {
            let e = failed(why, last, processed);
            let f = *e.failure().unwrap();
            assert_eq!(e.is_retryable(), f.is_retryable(), "{why:?}");
            assert_eq!(
                e.maybe_processed(),
                f.processed != Processed::Never,
                "{why:?}"
            );
            assert_eq!(e.why(), Some(why));
            assert_eq!(e.code(), crate::translate::failure_code(f.kind()));
        }
        assert!(failed(Why::DeadlineExceeded, None, Processed::Never).is_timeout());
        assert!(failed(
            Why::MaxAttempts,
            Some(Last::Transport(TransportError::Timeout)),
            Processed::Maybe
        )
        .is_timeout());
        assert!(!failed(Why::MaxAttempts, Some(Last::Status(503)), Processed::Maybe).is_timeout());
        assert_eq!(
            failed(Why::MaxAttempts, Some(Last::Status(503)), Processed::Maybe).status(),
            Some(503)
        );
        assert!(failed(Why::Cancelled, None, Processed::Never).is_cancelled());
    }

    #[test]
    fn messages_say_what_happened_without_secrets() {
        let e = failed(Why::MaxAttempts, Some(Last::Status(503)), Processed::Maybe);
        assert_eq!(
            e.to_string(),
            "GET https://h.test/x failed after 3 attempts, last: status 503: the call used all of its attempts"
        );
        assert_eq!(
            request_text("POST", "https://user:pw@h.test:8443/a/b?token=s#f"),
            "POST https://h.test:8443/a/b"
        );
        assert_eq!(request_text("GET", "https://h.test"), "GET https://h.test");
        // What `Error::InvalidUrl` carries (and `RequestBuilder`'s `Debug` shows).
        assert_eq!(
            shown_url("ftp://me:hunter2@h.test/a?token=t0p#f"),
            "ftp://h.test/a"
        );
        // The first "://" ends the scheme; without one the text is kept up to `?` or `#`.
        assert_eq!(shown_url("a://u@b/c://d@e"), "a://b/c://d@e");
        assert_eq!(shown_url("https:/h.test/a?q"), "https:/h.test/a");
        assert_eq!(shown_url("://x@h/"), "://h/");
        assert_eq!(shown_url("h.test#://x"), "h.test");
    }

    #[test]
    fn adapter_errors_are_final() {
        let status = Error::Status {
            status: 503,
            body_excerpt: String::new(),
        };
        assert!(!status.is_retryable() && status.maybe_processed());
        assert_eq!(status.code(), "status");
        let config: Error = resile_core::Config::from_json(r#"{"backoff":{"factor":0.5}}"#)
            .unwrap_err()
            .into();
        assert!(matches!(&config, Error::Config { field: Some(f), .. } if f == "backoff.factor"));
        assert!(!config.maybe_processed() && config.why().is_none());
        use resile_core::excerpt::{excerpt, EXCERPT_BYTES};
        assert_eq!(excerpt(&[b'x'; 600], EXCERPT_BYTES).chars().count(), 513);
    }
}
