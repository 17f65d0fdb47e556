//! `http.client.request.duration` per attempt and `resile.events` per resilience event, as
//! `tracing` metric events (target `resile::metrics`) and, with the feature, OpenTelemetry
//! instruments.

use resile_core::{Event, EventKind};

/// One attempt's measurement.
pub(super) struct Attempt<'a> {
    pub seconds: f64,
    pub method: &'static str,
    pub address: &'a str,
    pub port: Option<u16>,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
}

/// Records `http.client.request.duration`.
pub(super) fn duration(a: &Attempt<'_>) {
    tracing::event!(
        target: "resile::metrics",
        tracing::Level::INFO,
        histogram.http.client.request.duration = a.seconds,
        http.request.method = a.method,
        server.address = a.address,
        server.port = a.port.map(i64::from),
        http.response.status_code = a.status.map(i64::from),
        error.r#type = a.error,
        "http.client.request.duration"
    );
    #[cfg(feature = "opentelemetry")]
    super::otel::duration(a);
}

/// The engine's resilience events: what it retried, waited for, refused or gave up on. The
/// routine ones (a call or attempt starting, a success, a token arriving) are not counted.
pub(super) fn event_name(kind: &EventKind) -> Option<&'static str> {
    Some(match kind {
        EventKind::RetryScheduled { .. } => "retry_scheduled",
        EventKind::Waiting { .. } => "waiting",
        EventKind::Queued { .. } => "queued",
        EventKind::AttemptAborted { .. } => "attempt_aborted",
        EventKind::HostHeld { .. } => "host_held",
        EventKind::LimitLearned { .. } => "limit_learned",
        EventKind::HintUnreadable { .. } => "hint_unreadable",
        EventKind::ConnectionsRecycled { .. } => "connections_recycled",
        EventKind::BreakerOpened { .. } => "breaker_opened",
        EventKind::BreakerHalfOpen { .. } => "breaker_half_open",
        EventKind::BreakerClosed { .. } => "breaker_closed",
        EventKind::BudgetExhausted { .. } => "budget_exhausted",
        EventKind::TokenFetchFailed { .. } => "token_fetch_failed",
        EventKind::CallFailed { .. } => "call_failed",
        _ => return None,
    })
}

/// The host an event names, if it names one.
pub(super) fn host(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::HostHeld { host, .. }
        | EventKind::LimitLearned { host, .. }
        | EventKind::ConnectionsRecycled { host, .. }
        | EventKind::BreakerOpened { host, .. }
        | EventKind::BreakerHalfOpen { host }
        | EventKind::BreakerClosed { host }
        | EventKind::BudgetExhausted { host, .. } => Some(host),
        _ => None,
    }
}

/// Counts a resilience event in `resile.events`, under its `name` ([`event_name`]).
pub(super) fn count(e: &Event, name: &'static str) {
    let reason = e.kind.why().map(|w| w.name());
    let host = host(&e.kind);
    tracing::event!(
        target: "resile::metrics",
        tracing::Level::INFO,
        monotonic_counter.resile.events = 1_u64,
        resile.event = name,
        resile.reason = reason,
        resile.host = host,
        "resile.events"
    );
    #[cfg(feature = "opentelemetry")]
    super::otel::count(name, reason, host);
}
