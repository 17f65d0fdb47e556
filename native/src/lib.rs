//! # resile: a resilient HTTP client
//!
//! reqwest on the wire, the [`resile_core`] engine for every decision: retries with backoff and
//! jitter, `Retry-After` and rate-limit headers, a retry budget, a circuit breaker per host, a
//! client-side rate limit, deadlines, idempotency keys, OAuth2 tokens with single-flight
//! refresh, and pagination. This crate only translates: it sends what the engine orders and
//! tells it what came back. The same engine drives the browser adapter and the simulator, and
//! the conformance suite checks that all of them decide alike.
//!
//! ## Quick start
//!
//! ```no_run
//! use resile::{Client, Error};
//!
//! #[derive(serde::Deserialize)]
//! struct User {
//!     id: u64,
//!     name: String,
//! }
//!
//! # async fn demo() -> Result<(), Error> {
//! let client = Client::builder().base_url("https://api.example.com/v1/").build()?;
//!
//! // A GET: retried on 429/5xx/timeouts/resets within a 30 s deadline, waits as the server asks.
//! let user: User = client.get_json("users/42").await?;
//!
//! // A POST: it carries an automatic Idempotency-Key, the same on every attempt, so the engine
//! // may repeat it after a reset without creating the order twice.
//! let order: serde_json::Value = client.post_json("orders", &serde_json::json!({"sku": "A-1"})).await?;
//!
//! // Errors say what happened and whether the write may have been applied.
//! match client.get("flaky").send().await {
//!     Ok(response) => println!("{} after {} attempt(s)", response.status(), response.attempts()),
//!     Err(e) => println!("{e} (retryable later: {}, maybe applied: {})", e.is_retryable(), e.maybe_processed()),
//! }
//! # let _ = (user.id, user.name, order); Ok(()) }
//! ```
//!
//! ## What is where
//!
//! | feature | API |
//! |---|---|
//! | requests | [`Client::get`], [`Client::post`], ... → [`RequestBuilder`] → [`Response`] |
//! | typed JSON | [`Client::get_json`], [`Client::post_json`], [`Response::json`] |
//! | policy | [`ClientConfig::engine`] ([`Config`]): attempts, deadline, backoff, budget, breaker, limit, token |
//! | writes | [`IdempotencyKey`]: `Auto` (default for POST/PATCH), `Explicit`, `Off` |
//! | batches | [`Client::get_many`] with [`BatchMode`] |
//! | pagination | [`Client::paginate`] → [`Paginate`] (a `Stream`), four [`PageStyle`]s |
//! | tokens | [`TokenSource`], [`ClientCredentials`], [`StaticBearer`] |
//! | observability | [`ClientBuilder::on_event`] ([`ClientEvent`]), `tracing` spans and metrics in OpenTelemetry's names ([`telemetry`]; feature `opentelemetry` for the API itself and `traceparent`), [`Client::stats`], [`Client::hosts`] |
//! | printing safely | [`redact`]: URLs without credentials or secret query values, credential headers hidden |
//! | errors | [`Error`] with [`Error::is_retryable`], [`Error::maybe_processed`], [`Error::why`] |
//! | reqwest-middleware | `middleware::ResileMiddleware` (feature `reqwest-middleware`): the engine inside a reqwest-middleware stack |
//! | tower | `tower::ResileLayer`, `tower::ResileService` (feature `tower`): the engine around any tower service of `http` requests |
//! | fleets | [`ClientConfig::redis_url`] and `engine.fleet` (feature `redis`): instances share rate limits, server holds and learned limits through Redis, and fall back to a local share when it is down |
//!
//! ## How it drives the engine
//!
//! The engine lives behind a `std::sync::Mutex`, held only while it decides. Each input (a
//! call starts, an attempt ends, a future is dropped, a token arrives, a timer fires) locks it,
//! feeds it, routes the engine's actions to the call they are for, hands its events to
//! `tracing` and the callback, and unlocks. A background task sleeps until the engine's next
//! deadline; it ends with the last `Client` clone. Attempt timeouts are `tokio::time::timeout`
//! around the whole exchange, body included: a body cut short is a failed attempt the engine
//! may repeat, not a broken response handed to the caller.
//!
//! ## TLS, proxies, and your own reqwest client
//!
//! | feature | TLS backend | trusted roots |
//! |---|---|---|
//! | `rustls` (default) | rustls (aws-lc-rs) | Mozilla's, built in (webpki) |
//! | `rustls-native-roots` | rustls (aws-lc-rs) | the operating system's |
//! | `native-tls` | the platform's (OpenSSL on Linux) | the operating system's |
//!
//! No TLS feature: plain HTTP only. `rustls` with `rustls-native-roots` trusts both sets;
//! `native-tls` next to either picks the native backend, as reqwest does. Proxies are
//! reqwest's: `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, and the system settings on
//! macOS and Windows.
//!
//! Anything else about the HTTP stack (a proxy with credentials, a private CA, a client
//! certificate, a DNS resolver, a pool shared with other code) is configured on a
//! `reqwest::Client` handed to [`ClientBuilder::http_client`]; the engine still decides.
//!
//! ## Scope
//!
//! In: JSON APIs over HTTP/1.1 and HTTP/2, HTTPS (see above), redirects followed within an
//! attempt (credentials dropped across origins), response bodies read whole up to
//! `max_response_bytes` or streamed. Out: cookies, caching.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
mod body;
mod call_loop;
mod client;
mod config;
mod control;
mod driver;
mod error;
mod events;
#[cfg(feature = "redis")]
mod fleet;
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
mod http_call;
#[cfg(feature = "reqwest-middleware")]
pub mod middleware;
mod orders;
mod paginate;
pub mod redact;
mod request;
mod response;
mod resume;
mod stream;
pub mod telemetry;
mod tls;
mod token;
#[cfg(feature = "tower")]
pub mod tower;
mod transport;

pub use body::BodyFactory;
pub use client::{BatchMode, Client, ClientBuilder};
pub use config::ClientConfig;
pub use control::{BreakerOverride, Fallback, FallbackAnswer, RetryCheck};
pub use error::{Error, LastCause};
pub use events::ClientEvent;
pub use paginate::{Page, Paginate};
pub use request::{IdempotencyKey, RequestBuilder};
pub use resile_core::breaker::{BreakerSnapshot, HoldKind, SnapshotError};
pub use resile_core::{ControlError, FallbackUsed, RetryVerdict, Seen};
pub use response::Response;
pub use resume::Piece;
pub use stream::StreamingResponse;
pub use token::{
    AccessToken, ClientAuth, ClientCredentials, Secret, StaticBearer, TokenFuture, TokenSource,
};

pub use bytes;
pub use http;
/// The reqwest that [`ClientBuilder::http_client`], [`TokenSource::fetch`] and the
/// `reqwest-middleware` integration take. resile's own types name the [`http`] crate's
/// (`Method`, `StatusCode`, `HeaderMap`, `Version`) and [`Url`], the same ones reqwest
/// re-exports: a reqwest major version changes only those entry points.
pub use reqwest;
pub use resile_core;
pub use resile_core::config::RequestIds;
pub use resile_core::engine::HostView;
pub use resile_core::paginate::{PageStyle, Resume, WalkPolicy};
pub use resile_core::{Config, Event, EventKind, Processed, Stats, TransportError, Why};
pub use url::Url;

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}

    #[test]
    fn the_client_and_its_futures_cross_threads() {
        send_sync::<Client>();
        send_sync::<Error>();
        send_sync::<Response>();
        send_sync::<ClientEvent>();
        let client = Client::new();
        send(&client.get("http://x.test").send());
        send(&client.get_json::<serde_json::Value>("http://x.test"));
        send(&client.get_many::<serde_json::Value, _, _>(["http://x.test"], BatchMode::Partial));
        send(&client.paginate("http://x.test", PageStyle::Link, None));
    }
}

/// The README's Rust example, compiled with the doc tests so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
