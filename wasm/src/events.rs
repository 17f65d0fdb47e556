//! What the client did, for logs, traces and UIs: core's `ClientEvent`, the same type native
//! `resile::ClientEvent` is.

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
pub use resile_core::ClientEvent;
