//! The core's hot paths next to governor, in one run.
//!
//! - `limiter/resile_gcra` vs `limiter/governor`: one conforming check each, both on a fake
//!   clock that advances 1 ms per check, quota 1000/s with burst 50.
//! - `engine/decision_cycle`: start a call, send, a 200, done, drain events.
//! - `engine/retry_cycle`: a 503 with Retry-After, the timer, the retry, a 200.
//! - `engine/attempt_decision` vs `anchor/retry_policies_should_retry`: the engine's decision
//!   on one attempt's outcome, events included, next to retry-policies' single
//!   `should_retry` (what reqwest-retry asks once per failed attempt).
//! - `engine/retry_decision`: the same for a failed attempt (a 503 in, the retry scheduled
//!   after a backoff and its events out), the case `should_retry` answers.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};
use resile_core::config::LimitConfig;
use resile_core::headers::NoHeaders;
use resile_core::limit::Gcra;
use resile_core::{Action, CallSpec, Config, Engine, Instant, Outcome, Response, UnixTime};

fn limiter(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter");
    group.bench_function("resile_gcra", |b| {
        let mut g = Gcra::new(&LimitConfig {
            per_second: 1000.0,
            burst: 50,
        });
        let mut now = 0u64;
        b.iter(|| {
            now += 1_000_000;
            black_box(g.check(black_box(Instant::from_nanos(now)))).is_ok()
        })
    });
    group.bench_function("governor", |b| {
        let clock = FakeRelativeClock::default();
        let quota = Quota::per_second(NonZeroU32::new(1000).unwrap())
            .allow_burst(NonZeroU32::new(50).unwrap());
        let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
        b.iter(|| {
            clock.advance(Duration::from_millis(1));
            black_box(limiter.check()).is_ok()
        })
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    let mut config = Config::default();
    config.breaker.enabled = false;
    config.budget.enabled = false;
    let wall = UnixTime::from_secs(1_700_000_000);
    let mut group = c.benchmark_group("engine");
    group.bench_function("decision_cycle", |b| {
        let mut e = Engine::new(config.clone(), 1, Instant::ZERO).unwrap();
        let mut now = 0u64;
        b.iter(|| {
            now += 1_000;
            let t = Instant::from_nanos(now);
            let id = e.start(CallSpec::get("https://api.test"), t);
            let Some(Action::Send { .. }) = e.poll_action() else {
                unreachable!()
            };
            e.handle(
                id,
                Outcome::Response(Response::new(200, &NoHeaders, wall)),
                t,
            );
            let done = e.poll_action();
            e.drain_events(|_| {});
            black_box(done)
        })
    });
    group.bench_function("attempt_decision", |b| {
        // Only the decision on an attempt's outcome: a 200 in, `Done` and its events out.
        let mut e = Engine::new(config.clone(), 1, Instant::ZERO).unwrap();
        b.iter_custom(|iters| decisions(&mut e, iters, 200, wall));
    });
    group.bench_function("retry_decision", |b| {
        // The decision on a failed attempt, as `should_retry` is asked: a 503 in (no hint
        // headers), the retry scheduled after a backoff (a timer, no action yet) and its
        // events out.
        let mut e = Engine::new(config.clone(), 1, Instant::ZERO).unwrap();
        b.iter_custom(|iters| decisions(&mut e, iters, 503, wall));
    });
    group.bench_function("retry_cycle", |b| {
        let mut e = Engine::new(config.clone(), 1, Instant::ZERO).unwrap();
        let headers = [("Retry-After", "1")];
        let mut now = 0u64;
        b.iter(|| {
            now += 1_000;
            let t = Instant::from_nanos(now);
            let id = e.start(CallSpec::get("https://api.test"), t);
            let _ = e.poll_action();
            e.handle(id, Outcome::Response(Response::new(503, &headers, wall)), t);
            let wake = e.poll_timeout().unwrap();
            e.handle_timeout(wake);
            let _ = e.poll_action();
            e.handle(
                id,
                Outcome::Response(Response::new(200, &NoHeaders, wall)),
                wake,
            );
            now = wake.as_nanos();
            let done = e.poll_action();
            e.drain_events(|_| {});
            black_box(done)
        })
    });
    group.finish();
}

fn anchor(c: &mut Criterion) {
    use retry_policies::policies::ExponentialBackoff;
    use retry_policies::RetryPolicy;
    let mut group = c.benchmark_group("anchor");
    group.bench_function("retry_policies_should_retry", |b| {
        let policy = ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(100), Duration::from_secs(10))
            .build_with_max_retries(3);
        let start = std::time::SystemTime::now();
        b.iter(|| black_box(policy.should_retry(black_box(start), black_box(1))))
    });
    group.finish();
}

/// The time `iters` decisions on an attempt answered `status` take: calls are started
/// (untimed) in batches of 1024, each answered once (timed, its action and events drained and
/// the next deadline polled, as a driver does),
/// and what is left of them cancelled (untimed).
fn decisions(e: &mut Engine, iters: u64, status: u16, wall: UnixTime) -> Duration {
    let mut ids = Vec::with_capacity(1024);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(1024);
        left -= batch;
        ids.clear();
        for _ in 0..batch {
            ids.push(e.start(CallSpec::get("https://api.test"), Instant::ZERO));
        }
        while e.poll_action().is_some() {}
        e.drain_events(|_| {});
        let start = std::time::Instant::now();
        for &id in &ids {
            e.handle(
                id,
                Outcome::Response(Response::new(status, &NoHeaders, wall)),
                Instant::ZERO,
            );
            e.drain_actions(|a| {
                black_box(a);
            });
            e.drain_events(|ev| {
                black_box(ev);
            });
            // A driver sleeps on the next deadline after every input.
            black_box(e.poll_timeout());
        }
        total += start.elapsed();
        for &id in &ids {
            e.cancel(id, Instant::ZERO);
        }
        while e.poll_action().is_some() {}
        e.drain_events(|_| {});
    }
    total
}

criterion_group!(benches, limiter, engine, anchor);
criterion_main!(benches);
