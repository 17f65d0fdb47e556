//! resile-core: the sans-IO decision engine.
#![forbid(unsafe_code)]

pub mod headers;
pub mod time;

pub use time::{Instant, UnixTime};
