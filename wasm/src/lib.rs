//! # resile-wasm: resile in the browser
//!
//! The core engine (`resile-core`) driven by the browser: `fetch` for attempts, an
//! `AbortController` per attempt for its timeout (aborted by a `Drop` guard), `setTimeout` for
//! the engine's wake-ups, `performance.now()` as the monotonic clock, `Date.now()` as the wall
//! clock (Retry-After dates, token lifetimes) and `crypto.getRandomValues` for the seed. The
//! engine decides everything; this crate only translates (see [`driver`] on wasm32).
//!
//! ## From JavaScript
//!
//! ```js
//! import init, { Client, isResileError } from "./pkg/resile_wasm.js";
//! await init();
//! const client = new Client({
//!   baseUrl: "http://127.0.0.1:8080",
//!   maxInFlight: 16,
//!   retry: { maxAttempts: 5, attemptTimeoutMs: 2000 },
//!   backoff: { baseMs: 100, jitter: "full" },
//!   tokenProvider: async () => ({ accessToken: "…", expiresIn: 3600 }),
//! });
//! const stop = client.onEvent((e) => console.log(e.atMs, e.event, e.explain ?? ""));
//! const order = await client.post("/orders", { json: { sku: 1 } }); // Idempotency-Key: auto
//! console.log(order.status, order.headers.get("x-request-id"), order.attempts, await order.json());
//! const walk = new AbortController();
//! for await (const item of client.paginate("/items/cursor?limit=100", { style: "cursor", signal: walk.signal })) {}
//! try { await client.getJson("/status/503") } catch (e) { isResileError(e) && e.code && e.retryable }
//! client.hosts(); client.token(); client.stats(); stop();
//! ```
//!
//! The full TypeScript declarations (config, options, events, errors) are in the generated
//! `resile_wasm.d.ts`; their source is `src/types.d.ts`, checked against the core by
//! `tests/contract.rs`.
//!
//! ## Cross-origin responses
//!
//! A browser shows JavaScript only the headers a cross-origin server lists in
//! `Access-Control-Expose-Headers`. Every cross-origin response is therefore handed to the engine
//! with `hints_may_be_hidden`, so a 429 or 503 whose `Retry-After` / `RateLimit` is not readable
//! produces a `hint_unreadable` event and the engine's own backoff instead of silence.
//!
//! ## From Rust: the same API as native `resile`
//!
//! [`Client`], [`ClientBuilder`], [`RequestBuilder`], [`Response`], [`Error`] and
//! [`ClientEvent`] have the names, methods and signatures of native `resile`'s for everything
//! both targets can do, on the same `http` and `bytes` types, so one crate compiles for the host
//! and for wasm32 by choosing the crate per target:
//!
//! ```toml
//! [target.'cfg(not(target_arch = "wasm32"))'.dependencies]
//! resile = { path = "../native" }
//! [target.'cfg(target_arch = "wasm32")'.dependencies]
//! resile = { package = "resile-wasm", path = "../wasm" }
//! ```
//!
//! (`examples/shared-app` in the repository is such a crate.) Native-only parts (a custom
//! `reqwest::Client`, pool settings, streamed bodies, batches, the OAuth2 client-credentials
//! source, the pagination stream) have no mirror; a [`TokenSource`] here fetches without being
//! lent an HTTP client; the browser adds [`RequestBuilder::signal`] for an `AbortSignal`.
//!
//! ## Native builds
//!
//! On other targets only the pure parts compile (and are unit-tested): [`Error`],
//! [`ClientEvent`], [`IdempotencyKey`], and the translation helpers,
//! so `cargo test --workspace` never builds the JavaScript bindings.
#![warn(missing_docs)]

pub mod conformance;
mod error;
mod events;
pub mod translate;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
pub mod driver;
#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
mod lend;
#[cfg(target_arch = "wasm32")]
mod request;
#[cfg(target_arch = "wasm32")]
mod response;
#[cfg(target_arch = "wasm32")]
mod to_js;
#[cfg(target_arch = "wasm32")]
mod token;

pub use error::Error;
pub use events::ClientEvent;
pub use translate::IdempotencyKey;

#[cfg(target_arch = "wasm32")]
pub use client::{Client, ClientBuilder};
#[cfg(target_arch = "wasm32")]
pub use request::RequestBuilder;
#[cfg(target_arch = "wasm32")]
pub use response::Response;
#[cfg(target_arch = "wasm32")]
pub use token::{AccessToken, Secret, StaticBearer, TokenFuture, TokenSource};

/// The JavaScript API's classes, as Rust sees them (JavaScript sees `Client`, `ResileResponse`,
/// `Paginator` and `ResileError`).
#[cfg(target_arch = "wasm32")]
pub mod js_api {
    pub use crate::api::{
        is_resile_error, BreakerOverride, ClientConfig, JsClient, JsResponse, PaginateOptions,
        Paginator, RequestOptions, ResileError,
    };
}

pub use bytes;
pub use http;
pub use resile_core;
pub use resile_core::engine::HostView;
pub use resile_core::paginate::PageStyle;
pub use resile_core::{Config, Event, EventKind, Processed, Stats, TransportError, Why};

/// The module's allocator: talc instead of the standard library's dlmalloc, the same
/// growth of wasm memory with less code (about 3 KB less of the gzipped module).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
