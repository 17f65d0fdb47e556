//! Whether calls carry an `X-Request-ID`.

use serde::Serialize;

/// Whether the engine gives every call an `X-Request-ID` (one random UUID, the same on every
/// attempt of the call, for tracing a call across client and server logs).
///
/// `"off"` generates none and sends none: no random draw, no formatting, no header, and the
/// adapters' `request_id()` of a response is empty. A caller's own `X-Request-ID` header is sent
/// either way.
///
/// ```
/// let config = resile_core::Config::from_json(r#"{"request_id": "off"}"#).unwrap();
/// assert_eq!(config.request_id, resile_core::config::RequestIds::Off);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(rename_all = "snake_case")]
pub enum RequestIds {
    /// A fresh UUID v4 per call (the default).
    #[default]
    Generate,
    /// No request id at all.
    Off,
}
