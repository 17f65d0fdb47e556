//! resile-core: the sans-IO decision engine.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod classify;
pub mod config;
pub mod engine;
pub mod headers;
pub mod limit;
pub mod paginate;
pub mod rng;
pub mod sim;
pub mod time;
pub mod token;
pub mod why;

pub use classify::{Method, Processed, TransportError};
pub use config::{Config, ConfigError, Jitter};
pub use engine::{Action, CallId, CallSpec, Engine, Event, EventKind, Failure, FailureKind, Idempotency, Last, Outcome, Response, Stats};
pub use rng::Uuid;
pub use time::{Instant, UnixTime};
pub use why::Why;
