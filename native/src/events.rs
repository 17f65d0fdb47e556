//! What the client did, for logs, traces and UIs (core's `ClientEvent`), and how engine events
//! become `tracing` events.

use tracing::Level;

use resile_core::{Event, EventKind};

/// Something the client did.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use resile::ClientEvent;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// let client = resile::Client::builder()
///     .on_event(move |e: &ClientEvent| sink.lock().unwrap().push(serde_json::to_string(e).unwrap()))
///     .build()
///     .unwrap();
/// # drop(client);
/// ```
pub use resile_core::ClientEvent;

fn level(kind: &EventKind) -> Level {
    match kind {
        EventKind::CallStarted { .. }
        | EventKind::AttemptStarted { .. }
        | EventKind::AttemptFinished { .. }
        | EventKind::CallSucceeded { .. }
        | EventKind::WaitingForToken { .. }
        | EventKind::TokenFetchStarted { .. }
        | EventKind::TokenRefreshed { .. } => Level::DEBUG,
        EventKind::RetryScheduled { .. }
        | EventKind::Waiting { .. }
        | EventKind::Queued { .. }
        | EventKind::CallFailed { .. } => Level::INFO,
        _ => Level::WARN,
    }
}

/// Formats [`Event::describe`] only when a subscriber wants the line.
struct Describe<'a>(&'a Event);

impl std::fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.describe())
    }
}

/// Emits an engine event as a `tracing` event (target `resile::engine`), with the call number
/// and the engine's reason as fields. Engine events never hold a token or a header value.
pub(crate) fn trace_engine(e: &Event) {
    let call = e.kind.call().map(|c| c.number());
    let why = e.kind.why().map(|w| w.explain());
    let line = Describe(e);
    match level(&e.kind) {
        Level::DEBUG => tracing::debug!(target: "resile::engine", call, why, "{line}"),
        Level::INFO => tracing::info!(target: "resile::engine", call, why, "{line}"),
        _ => tracing::warn!(target: "resile::engine", call, why, "{line}"),
    }
}
