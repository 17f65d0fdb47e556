//! Benchmarks live in `benches/`; this crate only exists to keep their dependencies
//! (criterion, governor) out of the test build. Run them with
//! `cargo bench -p resile-bench --bench core`.
