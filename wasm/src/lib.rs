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
//! import init, { Client } from "./pkg/resile_wasm.js";
//! await init();
//! const client = new Client({
//!   baseUrl: "http://127.0.0.1:8080",
//!   retry: { max_attempts: 5, attempt_timeout_ms: 2000 },
//!   backoff: { base_ms: 100, jitter: "full" },
//!   tokenProvider: async () => ({ accessToken: "…", expiresIn: 3600 }),
//! });
//! client.onEvent((e) => console.log(e.at_ms, e.event, e.explain ?? ""));
//! const order = await client.post("/orders", { json: { sku: 1 } }); // Idempotency-Key: auto
//! console.log(order.status, order.attempts, order.requestId, await order.json());
//! for await (const item of client.paginate("/items/cursor?limit=100", { style: "cursor" })) {}
//! try { await client.getJson("/status/503") } catch (e) { e.name === "ResileError"; e.code; e.retryable }
//! client.hosts(); client.token(); client.stats();
//! ```
//!
//! The full TypeScript declarations (config, options, events, errors) are in the generated
//! `resile_wasm.d.ts`; their source is the `typescript_custom_section` in `api.rs`.
//!
//! ## Cross-origin responses
//!
//! A browser shows JavaScript only the headers a cross-origin server lists in
//! `Access-Control-Expose-Headers`. Every cross-origin response is therefore handed to the engine
//! with `hints_may_be_hidden`, so a 429 or 503 whose `Retry-After` / `RateLimit` is not readable
//! produces a `hint_unreadable` event and the engine's own backoff instead of silence.
//!
//! ## Native builds
//!
//! On other targets only the pure translation helpers compile (and are unit-tested), so
//! `cargo test --workspace` never builds the JavaScript bindings.
#![warn(missing_docs)]

pub mod conformance;
pub mod translate;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
pub mod driver;
#[cfg(target_arch = "wasm32")]
pub mod js;

#[cfg(target_arch = "wasm32")]
pub use api::{Client, ClientConfig, PaginateOptions, Paginator, RequestOptions, ResileResponse};
