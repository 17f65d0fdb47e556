//! Benchmarks live in `benches/`; this crate only exists to keep their dependencies
//! (criterion, governor, reqwest-middleware, reqwest-retry) out of the test build:
//! - `cargo bench -p resile-bench --bench core`: the core's decisions next to governor;
//! - `cargo bench -p resile-bench --bench load`: the native client against the chaos server
//!   next to raw reqwest and reqwest-middleware + reqwest-retry;
//! - `cargo bench -p resile-bench --bench middleware`:
//!   `ResileMiddleware` next to `RetryTransientMiddleware` in the same reqwest-middleware stack.
//!
//! What the load benches share: [`setup`] starts the chaos server and the clients' runtime;
//! [`drive`] runs a bounded number of logical calls from a fixed number of workers and
//! measures them.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The chaos server on its own threads (up to 4096 connections) and a two-worker runtime for
/// the clients.
pub fn setup() -> (resile_chaos::BackgroundServer, tokio::runtime::Runtime) {
    let server = resile_chaos::start_in_background(resile_chaos::ChaosConfig {
        max_connections: 4096,
        ..Default::default()
    })
    .expect("chaos server");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    (server, runtime)
}

/// What [`drive`] measured.
pub struct Sample {
    /// Logical calls made (fewer than asked when the cap ended the run).
    pub calls: usize,
    /// Calls that ended in a 2xx with the body read.
    pub ok: usize,
    /// From the first call to the last answer.
    pub wall: Duration,
    /// Every call's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Sample {
    /// Calls per second of wall time.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The latency at `p` in `[0, 1]` (nearest rank); zero without calls.
    pub fn percentile(&self, p: f64) -> Duration {
        let sorted = &self.latencies;
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }
}

/// Runs `calls` logical calls from `concurrency` workers, each call `call()` (`true` for a
/// 2xx with its body read); stops starting calls once `cap` has passed.
pub async fn drive<C, F>(call: C, calls: usize, concurrency: usize, cap: Duration) -> Sample
where
    C: Fn() -> F + Clone + Send + 'static,
    F: Future<Output = bool> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(calls)));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let call = call.clone();
        let (next, ok, latencies) = (next.clone(), ok.clone(), latencies.clone());
        workers.spawn(async move {
            let mut mine = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < calls && started.elapsed() < cap {
                let t = Instant::now();
                if call().await {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                mine.push(t.elapsed());
            }
            latencies.lock().unwrap().extend(mine);
        });
    }
    while workers.join_next().await.is_some() {}
    let wall = started.elapsed();
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort_unstable();
    Sample {
        calls: latencies.len(),
        ok: ok.load(Ordering::Relaxed),
        wall,
        latencies,
    }
}

/// The machine's 1, 5 and 15 minute load averages (`/proc/loadavg`), to read a run's figures
/// by; `None` where there is no such file.
pub fn load_averages() -> Option<Vec<String>> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .map(str::to_string)
            .collect(),
    )
}

/// The reqwest-middleware + reqwest-retry anchor, as its users build it: `pool` under
/// `RetryTransientMiddleware` with exponential backoff from 100 ms to 10 s and 3 retries (4
/// attempts, resile's default).
pub fn retry_transient(pool: reqwest::Client) -> reqwest_middleware::ClientWithMiddleware {
    let policy = reqwest_retry::policies::ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(100), Duration::from_secs(10))
        .build_with_max_retries(3);
    reqwest_middleware::ClientBuilder::new(pool)
        .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(
            policy,
        ))
        .build()
}
