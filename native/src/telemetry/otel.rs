//! The same spans and instruments through the `opentelemetry` API (feature `opentelemetry`),
//! and the W3C `traceparent` of an attempt under a caller's trace.

use std::borrow::Cow;
use std::sync::OnceLock;

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{global, Context, InstrumentationScope, KeyValue};
use reqwest::header::HeaderValue;
use resile_core::Event;

use super::Target;

/// The semantic conventions' buckets for `http.client.request.duration`, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("resile")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

struct Instruments {
    duration: Histogram<f64>,
    events: Counter<u64>,
}

/// Made once, on the global meter provider of the first call.
fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let meter = global::meter_with_scope(scope());
        Instruments {
            duration: meter
                .f64_histogram("http.client.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP client requests (one per attempt).")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            events: meter
                .u64_counter("resile.events")
                .with_unit("{event}")
                .with_description(
                    "Resilience events of the resile engine: retries, waits, refusals, breaker transitions, failed calls.",
                )
                .build(),
        }
    })
}

pub(super) fn duration(a: &super::metrics::Attempt<'_>) {
    let mut attrs = vec![
        KeyValue::new("http.request.method", a.method),
        KeyValue::new("server.address", a.address.to_string()),
    ];
    if let Some(port) = a.port {
        attrs.push(KeyValue::new("server.port", i64::from(port)));
    }
    if let Some(status) = a.status {
        attrs.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    if let Some(error) = a.error {
        attrs.push(KeyValue::new("error.type", error.to_string()));
    }
    instruments().duration.record(a.seconds, &attrs);
}

pub(super) fn count(name: &'static str, reason: Option<&'static str>, host: Option<&str>) {
    let mut attrs = vec![KeyValue::new("resile.event", name)];
    if let Some(reason) = reason {
        attrs.push(KeyValue::new("resile.reason", reason));
    }
    if let Some(host) = host {
        attrs.push(KeyValue::new("resile.host", host.to_string()));
    }
    instruments().events.add(1, &attrs);
}

/// The logical call's span (INTERNAL, `resile.call`), under the caller's context.
pub(super) struct CallSpan {
    cx: Context,
    /// Whether the caller's context has a span: only then do attempts carry `traceparent`.
    under_trace: bool,
}

impl CallSpan {
    pub(super) fn start(target: &Target<'_>) -> Self {
        let parent = Context::current();
        let under_trace = parent.span().span_context().is_valid();
        let tracer = global::tracer_with_scope(scope());
        let span = tracer
            .span_builder("resile.call")
            .with_kind(SpanKind::Internal)
            .with_attributes([KeyValue::new("http.request.method", target.method())])
            .start_with_context(&tracer, &parent);
        CallSpan {
            cx: parent.with_span(span),
            under_trace,
        }
    }

    pub(super) fn context(&self) -> Context {
        self.cx.clone()
    }

    pub(super) fn finish(&self, succeeded: bool) {
        if !succeeded {
            self.cx.span().set_status(Status::error("the call failed"));
        }
        self.cx.span().end();
    }
}

/// An engine decision of the call, as an event of its span: named after the event, with the
/// engine's reason.
pub(super) fn decision(cx: &Context, e: &Event) {
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    let name = super::metrics::event_name(&e.kind).unwrap_or("decision");
    let mut attrs = vec![KeyValue::new("resile.decision", e.describe())];
    if let Some(why) = e.kind.why() {
        attrs.push(KeyValue::new("resile.reason", why.name()));
        attrs.push(KeyValue::new("resile.why", why.explain()));
    }
    span.add_event(name, attrs);
}

/// One attempt's CLIENT span, named after the method.
pub(super) struct AttemptSpan {
    cx: Context,
    under_trace: bool,
}

impl AttemptSpan {
    pub(super) fn start(
        call: &CallSpan,
        target: &Target<'_>,
        method: &'static str,
        (address, port): (&str, Option<u16>),
        resend: Option<u32>,
    ) -> Self {
        let mut attrs = vec![
            KeyValue::new("http.request.method", method),
            KeyValue::new("server.address", address.to_string()),
            KeyValue::new(
                "url.full",
                crate::redact::redact_url(target.url, target.redact),
            ),
        ];
        if let Some(port) = port {
            attrs.push(KeyValue::new("server.port", i64::from(port)));
        }
        if let Some(resend) = resend {
            attrs.push(KeyValue::new(
                "http.request.resend_count",
                i64::from(resend),
            ));
        }
        let name: Cow<'static, str> =
            Cow::Borrowed(if method == "_OTHER" { "HTTP" } else { method });
        let tracer = global::tracer_with_scope(scope());
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attrs)
            .start_with_context(&tracer, &call.cx);
        AttemptSpan {
            cx: call.cx.with_span(span),
            under_trace: call.under_trace,
        }
    }

    /// `00-{trace id}-{span id}-{flags}` of this attempt's span, under a caller's trace only.
    pub(super) fn traceparent(&self) -> Option<HeaderValue> {
        let span = self.cx.span();
        let sc = span.span_context();
        if !self.under_trace || !sc.is_valid() {
            return None;
        }
        let value = format!(
            "00-{:032x}-{:016x}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags()
        );
        HeaderValue::from_str(&value).ok()
    }

    pub(super) fn end(&self, status: Option<u16>, error: Option<Cow<'static, str>>) {
        let span = self.cx.span();
        if let Some(status) = status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(error) = error {
            span.set_attribute(KeyValue::new("error.type", error.clone()));
            span.set_status(Status::error(error));
        }
        span.end();
    }
}
