//! One attempt's CLIENT span and its `http.client.request.duration`.

use std::borrow::Cow;
use std::time::Instant;

use reqwest::header::HeaderValue;
use resile_core::TransportError;
use tracing::field::Empty;

use super::metrics;
#[cfg(feature = "opentelemetry")]
use super::otel;
use super::Target;

/// How an attempt ended, for its span and its duration.
pub(crate) enum Ended {
    /// A response with this status.
    Status(u16),
    /// A failure below HTTP.
    Transport(TransportError),
    /// The engine aborted it at its deadline.
    Aborted,
    /// Dropped unfinished because the call no longer needs it: another attempt (a hedge) won,
    /// or the call ended.
    Abandoned,
}

impl Ended {
    /// `error.type`: the status code of a 4xx/5xx, the transport failure's name, or
    /// `timeout` for an attempt the engine aborted.
    fn error_type(&self) -> Option<Cow<'static, str>> {
        match self {
            Ended::Status(s) if *s >= 400 => Some(Cow::Owned(s.to_string())),
            Ended::Status(_) => None,
            Ended::Transport(kind) => Some(Cow::Borrowed(transport_name(*kind))),
            Ended::Aborted => Some(Cow::Borrowed("timeout")),
            Ended::Abandoned => Some(Cow::Borrowed("cancelled")),
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            Ended::Status(s) => Some(*s),
            _ => None,
        }
    }
}

fn transport_name(kind: TransportError) -> &'static str {
    match kind {
        TransportError::Connect => "connect",
        TransportError::Dns => "dns",
        TransportError::Tls => "tls",
        TransportError::Timeout => "timeout",
        TransportError::Reset => "reset",
        TransportError::Truncated => "truncated",
        TransportError::Unreadable => "unreadable",
        TransportError::Refused => "refused",
        _ => "_OTHER",
    }
}

/// One attempt in flight: its `tracing` span (and OpenTelemetry span with the feature).
pub(crate) struct AttemptSpan<'a> {
    span: tracing::Span,
    /// When the attempt began; `None` when nothing records its duration (no clock read).
    started: Option<Instant>,
    target: Target<'a>,
    #[cfg(feature = "opentelemetry")]
    otel: otel::AttemptSpan,
}

impl<'a> AttemptSpan<'a> {
    pub(super) fn start(
        target: Target<'a>,
        n: u32,
        #[cfg(feature = "opentelemetry")] call: &otel::CallSpan,
    ) -> Self {
        let method = target.method();
        let resend = n.checked_sub(1).filter(|r| *r > 0);
        let span = tracing::info_span!(
            "resile.attempt",
            otel.name = if method == "_OTHER" { "HTTP" } else { method },
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = method,
            server.address = Empty,
            server.port = Empty,
            url.full = %crate::redact::redact_url(target.url, target.redact),
            http.request.resend_count = resend.map(i64::from),
            http.response.status_code = Empty,
            error.r#type = Empty,
        );
        // The server is read from the URL only for a span that records it.
        if !span.is_disabled() {
            let (address, port) = target.server();
            span.record("server.address", address);
            if let Some(port) = port {
                span.record("server.port", i64::from(port));
            }
        }
        let listened = !span.is_disabled()
            || tracing::enabled!(target: "resile::metrics", tracing::Level::INFO)
            || cfg!(feature = "opentelemetry");
        AttemptSpan {
            #[cfg(feature = "opentelemetry")]
            otel: otel::AttemptSpan::start(call, &target, method, target.server(), resend),
            span,
            started: listened.then(Instant::now),
            target,
        }
    }

    /// Runs `f` inside the attempt's `tracing` span: every poll and the drop of the attempt's
    /// future.
    #[inline]
    pub(crate) fn inside<R>(&self, f: impl FnOnce() -> R) -> R {
        let _inside = self.span.enter();
        f()
    }

    /// The W3C `traceparent` the attempt carries: its own span's, only under a caller's trace.
    pub(crate) fn traceparent(&self) -> Option<HeaderValue> {
        #[cfg(feature = "opentelemetry")]
        return self.otel.traceparent();
        #[cfg(not(feature = "opentelemetry"))]
        None
    }

    /// Records how the attempt ended and its duration.
    pub(crate) fn end(self, ended: Ended) {
        // Nothing recorded it when it began (no span, no metrics): no names to write out, no
        // clock to read.
        let Some(started) = self.started else {
            return;
        };
        let seconds = started.elapsed().as_secs_f64();
        let error = ended.error_type();
        let status = ended.status();
        if let Some(s) = status {
            self.span.record("http.response.status_code", i64::from(s));
        }
        if let Some(e) = &error {
            self.span.record("error.type", e.as_ref());
            self.span.record("otel.status_code", "error");
        }
        let _inside = self.span.enter();
        let (address, port) = self.target.server();
        metrics::duration(&metrics::Attempt {
            seconds,
            method: self.target.method(),
            address,
            port,
            status,
            error: error.as_deref(),
        });
        #[cfg(feature = "opentelemetry")]
        self.otel.end(status, error);
    }
}
