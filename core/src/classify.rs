//! What an attempt's outcome means: worth retrying? a failure for the breaker? possibly applied?
//!
//! | outcome | retry? | breaker failure? | processed? |
//! |---|---|---|---|
//! | 2xx, 3xx | no (done) | no | yes |
//! | 429 | yes | no (it slows the host down instead) | no |
//! | 408 | yes | yes | never (the server did not get the whole request) |
//! | 500, 502, 503, 504 | yes | yes | maybe |
//! | other 5xx | no | yes | maybe |
//! | other 4xx | no | no (the request is at fault, not the host) | yes |
//! | connect / DNS error | yes | yes | never sent |
//! | TLS handshake refused (certificate, protocol, a port that does not speak TLS) | no | yes | never sent |
//! | attempt timeout, reset, truncated body | yes | yes | maybe |
//! | unreadable answer (a head too large, not HTTP, a body that does not decode) | no | no | maybe |
//! | status 0–99 (fetch's opaque response, no real status) | yes | yes | maybe |
//!
//! The set of retryable statuses comes from [`crate::config::RetryConfig::retry_statuses`].
//! A status below 100 is not an HTTP answer: browsers report 0 for an opaque or failed
//! response, so it is classified as the transport failure it stands for, never as success.

use serde::{Deserialize, Serialize};

use crate::why::Why;

/// The HTTP method, for idempotency (RFC 9110 §9.2.2).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// OPTIONS
    Options,
    /// TRACE
    Trace,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// POST
    Post,
    /// PATCH
    Patch,
}

impl Method {
    /// Safe to repeat by definition: everything but POST and PATCH.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Patch)
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        }
    }

    /// Parses a method name, case-insensitively; CONNECT and extension methods are `None`.
    pub fn parse(name: &str) -> Option<Method> {
        const ALL: [Method; 8] = [
            Method::Get,
            Method::Head,
            Method::Options,
            Method::Trace,
            Method::Put,
            Method::Delete,
            Method::Post,
            Method::Patch,
        ];
        ALL.into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }
}

impl core::fmt::Display for Method {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an attempt failed below HTTP, as the adapter saw it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportError {
    /// The TCP connection was refused or could not be made.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed: a certificate the client refuses, no protocol in common, or
    /// a server that does not speak TLS on that port. The same handshake fails the same way,
    /// so it is not retried (a connection that breaks during the handshake is
    /// [`TransportError::Connect`]).
    Tls,
    /// The attempt timed out (after the request may have been sent).
    Timeout,
    /// The connection was reset or closed before a complete response.
    Reset,
    /// The body ended before its announced length.
    Truncated,
    /// Any other I/O failure after the request may have been sent.
    Other,
    /// The server's answer could not be read: a head larger than the client accepts, a
    /// message that is not HTTP, or a body whose content encoding does not decode (a corrupt
    /// gzip stream). The same request gets the same answer, so it is not retried.
    Unreadable,
    /// The server refused the request before processing any of it: an HTTP/2 stream refused
    /// (`REFUSED_STREAM`) or past a graceful `GOAWAY`, as a server rotating its connections
    /// sends. Nothing was applied and the host is healthy: sent again at once, once per call,
    /// free of the budget; not a failure of the host (see `engine/retry.rs`).
    Refused,
}

/// Whether the server may have acted on the request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Processed {
    /// The request never reached the server, or the server said it did nothing.
    Never,
    /// It may have been applied; the client cannot know.
    Maybe,
    /// The server answered; whatever it did, it did.
    Yes,
}

/// The meaning of one attempt's outcome.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// Final success: hand the response to the caller.
    pub success: bool,
    /// Another attempt might succeed.
    pub retryable: bool,
    /// Counts as a failure of the host for the circuit breaker.
    pub breaker_failure: bool,
    /// Whether the server may have applied the request.
    pub processed: Processed,
    /// The reason, for events.
    pub why: Why,
}

impl Class {
    /// A success ([`is_success`]): no breaker counts it, and the server processed it.
    pub const SUCCESS: Class = Class {
        success: true,
        retryable: false,
        breaker_failure: false,
        processed: Processed::Yes,
        why: Why::Success,
    };
}

/// A set of HTTP statuses as a bitmap (100..=599): checking is one shift, building allocates
/// nothing.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct StatusSet([u64; 8]);

impl StatusSet {
    /// The statuses in `list`; values outside 100..=599 are ignored.
    pub fn from_list(list: &[u16]) -> Self {
        let mut set = StatusSet::default();
        for &s in list {
            if (100..=599).contains(&s) {
                let i = usize::from(s - 100);
                set.0[i / 64] |= 1 << (i % 64);
            }
        }
        set
    }

    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        if !(100..=599).contains(&status) {
            return false;
        }
        let i = usize::from(status - 100);
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

/// Classifies a status code. Below 100 there is no HTTP status, only a response the driver
/// could not read: a transport failure after the request may have been sent.
#[inline(always)]
pub fn classify_status(status: u16, retry: &StatusSet) -> Class {
    if status < 100 {
        return classify_transport(TransportError::Other);
    }
    if is_success(status, retry) {
        return Class::SUCCESS;
    }
    classify_failure(status, retry.contains(status))
}

/// Whether `status` is a success: below 400 and not one of the `retry` statuses.
#[inline]
pub fn is_success(status: u16, retry: &StatusSet) -> bool {
    (100..400).contains(&status) && !retry.contains(status)
}

/// [`classify_status`] for a status that is not a success: 400 and up, or a retryable one.
fn classify_failure(status: u16, retryable: bool) -> Class {
    let (breaker_failure, processed) = match status {
        429 => (false, Processed::Never),
        408 => (true, Processed::Never),
        500..=599 => (true, Processed::Maybe),
        _ => (false, Processed::Yes),
    };
    let why = if status == 429 {
        Why::TooManyRequests
    } else if retryable {
        Why::RetryableStatus
    } else {
        Why::NotRetryableStatus
    };
    Class {
        success: false,
        retryable,
        breaker_failure,
        processed,
        why,
    }
}

/// Classifies a transport failure: (retryable, breaker failure, processed, why) per kind.
pub fn classify_transport(error: TransportError) -> Class {
    let (retryable, breaker_failure, processed, why) = match error {
        TransportError::Connect | TransportError::Dns => {
            (true, true, Processed::Never, Why::NeverSent)
        }
        TransportError::Tls => (false, true, Processed::Never, Why::TlsFailed),
        TransportError::Timeout => (true, true, Processed::Maybe, Why::AttemptTimeout),
        TransportError::Reset | TransportError::Truncated | TransportError::Other => {
            (true, true, Processed::Maybe, Why::MaybeProcessed)
        }
        // The server answered; the client cannot read what it said (as with an unusable
        // answer, not a failure of the host).
        TransportError::Unreadable => (false, false, Processed::Maybe, Why::Unreadable),
        // The server is up and said it did nothing: not a failure of the host.
        TransportError::Refused => (true, false, Processed::Never, Why::RefusedUnprocessed),
    };
    Class {
        success: false,
        retryable,
        breaker_failure,
        processed,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn status_table() {
        let set = StatusSet::from_list(&[408, 429, 500, 502, 503, 504]);
        // (status, success, retryable, breaker failure, processed)
        let table = [
            (200, true, false, false, Processed::Yes),
            (204, true, false, false, Processed::Yes),
            (304, true, false, false, Processed::Yes),
            (400, false, false, false, Processed::Yes),
            (401, false, false, false, Processed::Yes),
            (404, false, false, false, Processed::Yes),
            (408, false, true, true, Processed::Never),
            (429, false, true, false, Processed::Never),
            (500, false, true, true, Processed::Maybe),
            (501, false, false, true, Processed::Maybe),
            (502, false, true, true, Processed::Maybe),
            (503, false, true, true, Processed::Maybe),
            (504, false, true, true, Processed::Maybe),
            // No HTTP status (fetch's opaque response reports 0): a transport failure.
            (0, false, true, true, Processed::Maybe),
            (1, false, true, true, Processed::Maybe),
            (42, false, true, true, Processed::Maybe),
            (99, false, true, true, Processed::Maybe),
            (100, true, false, false, Processed::Yes),
        ];
        for (status, success, retryable, breaker, processed) in table {
            let c = classify_status(status, &set);
            assert_eq!(
                (c.success, c.retryable, c.breaker_failure, c.processed),
                (success, retryable, breaker, processed),
                "status {status}"
            );
        }
    }

    #[test]
    fn statuses_below_100_are_never_success_whatever_the_retry_set() {
        for set in [StatusSet::default(), StatusSet::from_list(&[200, 404])] {
            for status in 0..100 {
                let c = classify_status(status, &set);
                assert_eq!(
                    c,
                    classify_transport(TransportError::Other),
                    "status {status}"
                );
                assert_eq!(c.why, Why::MaybeProcessed);
            }
        }
    }

    #[test]
    fn transport_table() {
        for e in [
            TransportError::Connect,
            TransportError::Dns,
            TransportError::Tls,
        ] {
            assert_eq!(classify_transport(e).processed, Processed::Never);
        }
        // What another attempt would meet the same way is not retried, and says what it was.
        let tls = classify_transport(TransportError::Tls);
        assert!(!tls.retryable && tls.breaker_failure && tls.why == Why::TlsFailed);
        let unreadable = classify_transport(TransportError::Unreadable);
        assert!(!unreadable.retryable && !unreadable.breaker_failure);
        assert_eq!(
            (unreadable.processed, unreadable.why),
            (Processed::Maybe, Why::Unreadable)
        );
        for e in [
            TransportError::Timeout,
            TransportError::Reset,
            TransportError::Truncated,
            TransportError::Other,
        ] {
            let c = classify_transport(e);
            assert_eq!(c.processed, Processed::Maybe);
            assert!(c.retryable && c.breaker_failure);
        }
    }

    #[test]
    fn status_set_bounds() {
        let set = StatusSet::from_list(&[100, 599, 0, 600, 65535]);
        assert!(set.contains(100) && set.contains(599));
        assert!(!set.contains(0) && !set.contains(600) && !set.contains(200));
    }

    #[test]
    fn methods() {
        assert!(
            Method::Get.is_idempotent()
                && Method::Put.is_idempotent()
                && Method::Delete.is_idempotent()
        );
        assert!(!Method::Post.is_idempotent() && !Method::Patch.is_idempotent());
        assert_eq!(Method::parse("post"), Some(Method::Post));
        assert_eq!(Method::parse("CONNECT"), None);
    }
}
