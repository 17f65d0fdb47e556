//! Traces and metrics in OpenTelemetry's names, for every call: the client's own, the
//! reqwest-middleware integration's and the tower service's alike (they all run through the
//! one call loop and the one event sink).
//!
//! ## Spans
//!
//! | span | level | what it carries |
//! |---|---|---|
//! | `resile.call` / `resile.middleware` / `resile.tower` | INFO | the logical call: `method`, `url` (redacted), `call`, `request_id`; the engine's decisions as events inside it |
//! | `resile.attempt` | INFO | one attempt, a CLIENT span named after the method (`otel.name`, `otel.kind = "client"`): `http.request.method`, `server.address`, `server.port`, `url.full` (redacted by [`crate::redact`]), `http.response.status_code`, `error.type`, `http.request.resend_count` (from the second attempt on), `otel.status_code = "error"` on a failure |
//!
//! The decisions are `tracing` events of target `resile::engine` inside the call's span, with
//! `call`, `why` (the engine's one-line reason) and the line of [`crate::Event::describe`].
//! With `tracing-opentelemetry` the spans become OpenTelemetry spans and the events their span
//! events.
//!
//! ## Metrics
//!
//! | instrument | kind | unit | attributes |
//! |---|---|---|---|
//! | `http.client.request.duration` | histogram, per attempt | `s` | `http.request.method`, `server.address`, `server.port`, `http.response.status_code`, `error.type` |
//! | `resile.events` | counter | `{event}` | `resile.event` (`retry_scheduled`, `waiting`, `queued`, `attempt_aborted`, `host_held`, `breaker_opened`, `breaker_half_open`, `breaker_closed`, `budget_exhausted`, `call_failed`, ...), `resile.reason` (the engine's [`crate::Why::name`]), `resile.host` (`scheme://authority`) when the event names its host |
//!
//! `resile.events` counts the engine's resilience events, one instrument with the event as
//! an attribute, as Polly's `resilience.polly.strategy.events` does: retries, waits and
//! refusals of the rate limit, the budget, the breaker's transitions, calls that failed and
//! why. Through `tracing` they are events of target `resile::metrics` with
//! `tracing-opentelemetry`'s metric fields (`histogram.http.client.request.duration`,
//! `monotonic_counter.resile.events`), so its `MetricsLayer` records them; give that
//! histogram the semantic-convention buckets with a view.
//!
//! ## With the `opentelemetry` feature
//!
//! The same spans, span events and instruments are also recorded with the `opentelemetry` API
//! on the global tracer and meter providers (scope `resile`), the histogram with the
//! semantic-convention buckets (5 ms to 10 s). The call's span is a child of
//! `opentelemetry::Context::current()` when the call starts, and each attempt carries a W3C
//! `traceparent` of its own span **only when that context has a span**: resile never starts a
//! trace of its own on the wire. Install the providers before the first call (the instruments
//! are made once). Without the feature no `traceparent` is added; one the caller put on the
//! request is sent as it is. Whether there is a caller's trace is decided when the call starts,
//! in the caller's context, before the call's own `tracing` span is entered.
//!
//! Record through one pipeline: `tracing-opentelemetry`'s layers or this feature. With both,
//! every span and measurement is there twice.

mod attempt;
mod metrics;
#[cfg(feature = "opentelemetry")]
mod otel;

use resile_core::Event;

use crate::driver::CallLog;

pub(crate) use attempt::{AttemptSpan, Ended};

/// What a call is sent to, for its attempts' spans and metrics.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    /// The request's method, as sent.
    pub method: &'a str,
    /// The request's URL, as sent (redacted before it is recorded).
    pub url: &'a str,
    /// Query parameters to hide on top of the standard ones.
    pub redact: &'a [String],
}

impl<'a> Target<'a> {
    /// The method as the semantic conventions name it: a known method, or `_OTHER`.
    fn method(&self) -> &'static str {
        const KNOWN: [&str; 9] = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        ];
        KNOWN
            .into_iter()
            .find(|m| *m == self.method)
            .unwrap_or("_OTHER")
    }

    /// `server.address` and `server.port` (the scheme's default when the URL has none).
    fn server(&self) -> (&'a str, Option<u16>) {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", self.url));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match host_port.rsplit_once(':') {
            // `[::1]` without a port: the colon is inside the brackets.
            Some((h, p)) if !p.contains(']') => (h, p.parse().ok()),
            _ => (host_port, None),
        };
        let default = match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        (host, port.or(default))
    }
}

/// One logical call's telemetry, from its start to its end.
pub(crate) struct Call<'a> {
    target: Target<'a>,
    #[cfg(feature = "opentelemetry")]
    otel: otel::CallSpan,
}

impl<'a> Call<'a> {
    /// Starts the call's telemetry, inside the call's `tracing` span.
    pub(crate) fn start(target: Target<'a>) -> Self {
        Call {
            #[cfg(feature = "opentelemetry")]
            otel: otel::CallSpan::start(&target),
            target,
        }
    }

    /// Where the engine's events of this call go: the middleware's decision log, if any, and
    /// the call's spans (`span` is the call's own `tracing` span).
    pub(crate) fn sink(&self, log: Option<CallLog>, span: &tracing::Span) -> CallSink {
        CallSink {
            log,
            span: (!span.is_disabled()).then(|| span.clone()),
            #[cfg(feature = "opentelemetry")]
            otel: self.otel.context(),
        }
    }

    /// Starts attempt `n` (from 1): its span, and the `traceparent` it carries.
    pub(crate) fn attempt(&self, n: u32) -> AttemptSpan<'a> {
        AttemptSpan::start(
            self.target,
            n,
            #[cfg(feature = "opentelemetry")]
            &self.otel,
        )
    }

    /// The call's telemetry without its target, while what the target borrows moves (the
    /// client's request, from the call's first poll into the future that runs the call).
    pub(crate) fn detach(self) -> Detached {
        Detached {
            #[cfg(feature = "opentelemetry")]
            otel: self.otel,
        }
    }

    /// The call ended: with a response (`true`) or a failure.
    pub(crate) fn finish(self, succeeded: bool) {
        #[cfg(feature = "opentelemetry")]
        self.otel.finish(succeeded);
        #[cfg(not(feature = "opentelemetry"))]
        let _ = succeeded;
    }
}

/// A call's telemetry, started, without its target ([`Call::detach`]).
pub(crate) struct Detached {
    #[cfg(feature = "opentelemetry")]
    otel: otel::CallSpan,
}

impl Detached {
    /// The call's telemetry again, with its target (the same as when it started).
    pub(crate) fn attach(self, target: Target<'_>) -> Call<'_> {
        Call {
            target,
            #[cfg(feature = "opentelemetry")]
            otel: self.otel,
        }
    }
}

/// Where one call's engine events go, kept by the driver until the call's last event.
pub(crate) struct CallSink {
    log: Option<CallLog>,
    span: Option<tracing::Span>,
    #[cfg(feature = "opentelemetry")]
    otel: opentelemetry::Context,
}

/// Whether no `tracing` subscriber takes anything at all: then no span is looked up or
/// recorded into, and no event's fields are made.
pub(crate) fn tracing_off() -> bool {
    tracing::level_filters::LevelFilter::current() == tracing::level_filters::LevelFilter::OFF
}

/// Whether an engine event would reach nothing through [`engine_event`] but its call's log:
/// no `tracing` subscriber at all (so no spans, no `tracing` metrics) and no OpenTelemetry
/// recording compiled in.
pub(crate) fn unheard() -> bool {
    !cfg!(feature = "opentelemetry") && tracing_off()
}

impl CallSink {
    /// Whether the call's events are kept in a log (the middleware's decision log).
    pub(crate) fn logs(&self) -> bool {
        self.log.is_some()
    }
}

/// Sends an engine event to `tracing` (inside its call's span when it has one), the
/// resilience counters, the call's OpenTelemetry span and the call's log.
pub(crate) fn engine_event(e: &Event, sink: Option<&CallSink>) {
    // Only the resilience events are counted: the routine ones (a call or an attempt
    // starting, a success) cost this test. With no `tracing` subscriber at all, nothing would
    // take the event: its fields are not even made. (The counter has an OpenTelemetry side of
    // its own.)
    let counted = metrics::event_name(&e.kind);
    if tracing_off() {
        if let Some(name) = counted {
            metrics::count(e, name);
        }
    } else {
        let _inside = sink.and_then(|s| s.span.as_ref()).map(tracing::Span::enter);
        crate::events::trace_engine(e);
        if let Some(name) = counted {
            metrics::count(e, name);
        }
    }
    let Some(sink) = sink else { return };
    #[cfg(feature = "opentelemetry")]
    otel::decision(&sink.otel, e);
    if let Some(log) = &sink.log {
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    fn server(url: &str) -> (String, Option<u16>) {
        let t = Target {
            method: "GET",
            url,
            redact: &[],
        };
        let (h, p) = t.server();
        (h.to_string(), p)
    }

    #[test]
    fn server_address_and_port_come_from_the_url() {
        let cases = [
            ("http://a.test/x", ("a.test", Some(80))),
            ("https://a.test", ("a.test", Some(443))),
            ("https://user:pw@a.test:8443/x?q=1", ("a.test", Some(8443))),
            ("http://127.0.0.1:9/x", ("127.0.0.1", Some(9))),
            ("http://[::1]/x", ("::1", Some(80))),
            ("http://[::1]:81/x", ("::1", Some(81))),
        ];
        for (url, (host, port)) in cases {
            assert_eq!(server(url), (host.to_string(), port), "{url}");
        }
    }

    #[test]
    fn unknown_methods_are_other() {
        for (m, want) in [
            ("GET", "GET"),
            ("PATCH", "PATCH"),
            ("PURGE", "_OTHER"),
            ("get", "_OTHER"),
        ] {
            let t = Target {
                method: m,
                url: "http://a.test",
                redact: &[],
            };
            assert_eq!(t.method(), want);
        }
    }
}
