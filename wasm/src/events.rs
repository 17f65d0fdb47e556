//! What the client did, for logs, traces and UIs: the mirror of native `resile::ClientEvent`.

use resile_core::Event;
use serde::Serialize;

/// Something the client did.
///
/// The same type as native's, so an `on_event` callback written once compiles for both:
///
/// ```
/// use resile_wasm::ClientEvent;
///
/// fn log(e: &ClientEvent) -> Option<String> {
///     e.engine().map(|e| e.describe())
/// }
/// # let _ = log;
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientEvent {
    /// A decision of the engine (attempts, retries, breaker, budget, tokens, ...).
    Engine(Event),
}

impl ClientEvent {
    /// The engine event, if this is one.
    pub fn engine(&self) -> Option<&Event> {
        match self {
            ClientEvent::Engine(e) => Some(e),
        }
    }
}
