//! Benchmarks live in `benches/`; this crate only exists to keep their dependencies
//! (criterion, governor, reqwest-middleware, reqwest-retry) out of the test build:
//! - `cargo bench -p resile-bench --bench core`: the core's decisions next to governor;
//! - `cargo bench -p resile-bench --bench load`: the native client against the chaos server
//!   next to raw reqwest and reqwest-middleware + reqwest-retry.
