//! resile-core: the sans-IO decision engine behind resile.
//!
//! This crate decides *what to do and when* for HTTP calls to APIs that fail: send an attempt,
//! wait (and why), fetch an access token, give up (and why). It never does any of it. There is
//! no I/O, no async runtime, no clock read and no global random number generator here: time
//! ([`Instant`], and [`UnixTime`] where HTTP needs the calendar) and a seed come in from the
//! driver, so the same decisions run natively, in a browser (wasm32), and on a virtual clock in
//! tests, and the same seed and inputs always give the same decisions.
//!
//! # In scope
//! - [`classify`]: what a status or transport failure means (retry? breaker failure? processed?).
//! - [`backoff`]: exponential backoff with none / full / equal / decorrelated jitter.
//! - [`headers`]: total parsers for `Retry-After`, the IETF `RateLimit` fields, `X-RateLimit-*`
//!   and RFC 8288 `Link`.
//! - [`budget`], [`breaker`], [`limit`], [`token`]: per-host retry budget, circuit breaker and
//!   GCRA rate limit, and the access-token lifecycle with single-flight refresh.
//! - [`engine`]: many concurrent logical calls over shared host state: the attempt loop with
//!   deadlines, per-attempt timeouts, idempotency keys and server hints.
//! - [`paginate`]: the walk over a paginated collection that every driver runs: the next page
//!   from a `Link` header, a cursor, an offset or a page number, one retry allowance and
//!   deadline for the whole walk, and where a stopped walk resumes.
//! - [`preset`]: named policies that reproduce peers' published behaviour (`aws-standard`,
//!   `aws-2.1`, `grpc-a6`, `dotnet-standard`), with the pure components they need:
//!   [`quota`] (the AWS retry quota), [`aws_backoff`] (AWS's delay rules), [`throttle`]
//!   (gRPC A6 retry throttling) and [`adaptive`] (AWS's adaptive client rate, CUBIC).
//! - [`concurrency_limit`]: adaptive per-host concurrency limits (Netflix's AIMD and Gradient2).
//! - [`resume`]: taking a broken download up where it broke: the `Range` / `If-Range` an
//!   attempt sends and whether its answer continues the bytes delivered, restarts them, or
//!   fails; [`Engine::resume`] makes that attempt a retry of the call.
//! - [`sim`]: a virtual-clock driver with scripted servers, for tests, benchmarks and demos.
//!
//! # Out of scope
//! Sockets, TLS, HTTP framing, body handling, sleeping and spawning belong to the adapters
//! (`resile` for reqwest + tokio, `resile-wasm` for the browser's fetch). An adapter translates;
//! it never decides whether to retry.
//!
//! # The driving loop
//! Feed one input (`start`, `handle`, `cancel`, `token_fetched`, `handle_timeout`), drain
//! the actions ([`Engine::drain_actions`] lends them; [`Engine::poll_action`] moves them out
//! one by one) and the events ([`Engine::drain_events`], [`Engine::poll_event`]), then sleep until
//! [`Engine::poll_timeout`] or until I/O completes, and repeat. The [`engine`] module docs hold a
//! complete, runnable loop.
//!
//! ```
//! use resile_core::{Action, CallSpec, Config, Engine, Instant};
//!
//! let mut engine = Engine::new(Config::default(), 7, Instant::ZERO).unwrap();
//! let call = engine.start(CallSpec::get("https://api.example"), Instant::ZERO);
//! match engine.poll_action() {
//!     Some(Action::Send { call: c, attempt: 1, .. }) => assert_eq!(c, call),
//!     other => panic!("expected the first attempt, got {other:?}"),
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adaptive;
pub mod aws_backoff;
pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod classify;
pub mod concurrency_limit;
pub mod config;
pub mod engine;
pub mod excerpt;
pub mod fleet;
pub mod headers;
pub mod json_body;
pub mod latency;
pub mod limit;
pub mod map;
pub mod paginate;
pub mod preset;
pub mod quota;
pub mod resume;
pub mod rng;
pub mod sim;
mod slots;
pub mod throttle;
pub mod time;
pub mod token;
pub mod why;

pub use classify::{Method, Processed, TransportError};
pub use config::{Config, ConfigError, FleetConfig, Jitter};
pub use engine::{
    Action, AttemptHeaders, Authorization, CallEnd, CallId, CallSpec, ClientEvent, Detail, Engine,
    Event, EventKind, Failure, FailureKind, Hint, Idempotency, IdempotencyKey, Last, Outcome,
    Problem, Response, Stats,
};
pub use engine::{
    Attempted, ControlError, FallbackSpec, FallbackStore, FallbackUsed, FallbackWrites,
    NotStreaming, Predicate, RetryPredicate, RetryVerdict, Seen,
};
pub use preset::Preset;
pub use rng::{Uuid, UuidText};
pub use time::{Instant, UnixTime};
pub use why::Why;
