//! The default breaker, in the simulator: it judges a busy host by its failure rate, not by a
//! run of failures that concurrency makes common, and still cuts off a dead host quickly.
//!
//! Every run is seeded: the server's failures and the engine's jitter are the same each time.
//! The defaults under test are `BreakerConfig::default()`: trip at a 50 % failure rate over
//! 10 s once 20 attempts are in the window, or on 5 failures in a row below that volume.

use std::time::Duration;

use resile_core::rng::{RandomSource, Rng};
use resile_core::sim::{SimReply, SimRequest, World};
use resile_core::{CallSpec, Config, Engine, EventKind, Instant, UnixTime};

const HOST: &str = "https://api.test";

/// A server failing a fraction of requests at random with a 503, answering in 20–80 ms.
fn flaky(
    failure_percent: u64,
    seed: u64,
) -> impl FnMut(&SimRequest, Instant, UnixTime) -> SimReply {
    let mut rng = Rng::seeded(seed);
    move |_: &SimRequest, _: Instant, _: UnixTime| SimReply::Status {
        status: if rng.below(100) < failure_percent {
            503
        } else {
            200
        },
        headers: vec![],
        body: None,
        latency: Duration::from_millis(rng.between(20, 80)),
    }
}

/// Runs `calls` calls keeping `concurrency` of them in flight; returns the world after.
fn closed_loop<S: resile_core::sim::Server>(
    server: S,
    calls: usize,
    concurrency: usize,
    seed: u64,
) -> World<S> {
    let engine = Engine::new(Config::default(), seed, Instant::ZERO).expect("default config");
    let mut world = World::new(engine, server);
    let mut open: Vec<usize> = Vec::with_capacity(concurrency);
    let mut started = 0;
    for _ in 0..10 * calls + 1000 {
        open.retain(|&label| world.results[label].is_none());
        while open.len() < concurrency && started < calls {
            open.push(world.start(CallSpec::get(HOST)));
            started += 1;
        }
        if open.iter().all(|&label| world.results[label].is_some()) && started == calls {
            break;
        }
        world.step();
    }
    assert!(
        world.results.iter().all(Option::is_some),
        "every call ended within the step bound"
    );
    world
}

/// Attempt results the breaker saw before it first opened, if it opened.
fn results_before_first_trip<S>(world: &World<S>) -> Option<usize> {
    let mut finished = 0;
    for e in &world.trace {
        match e.kind {
            EventKind::AttemptFinished { .. } => finished += 1,
            EventKind::BreakerOpened { .. } => return Some(finished),
            _ => {}
        }
    }
    None
}

fn succeeded<S>(world: &World<S>) -> usize {
    world
        .results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Some(resile_core::sim::CallResult::Done { status: 200, .. })
            )
        })
        .count()
}

#[test]
fn twenty_percent_random_failures_at_concurrency_64_never_open_it() {
    for seed in [1, 2, 3] {
        let world = closed_loop(flaky(20, seed), 10_000, 64, seed);
        let stats = world.engine.stats();
        assert_eq!(
            (stats.breaker_trips, stats.breaker_rejections),
            (0, 0),
            "seed {seed}: a mostly healthy host is never cut off"
        );
        // Without fail-fast, every call gets its attempts as far as the retry budget allows
        // (a fifth of a retry per call, plus the reserve): the 80 % that succeed at once and
        // most of the rest through retries (about 96 % in these runs; 88 % with gRPC's 0.1).
        let ok = succeeded(&world);
        assert!(ok > 9_400, "seed {seed}: {ok} of 10 000 succeeded");
    }
}

#[test]
fn sixty_percent_random_failures_open_it() {
    for seed in [1, 2, 3] {
        let world = closed_loop(flaky(60, seed), 2_000, 64, seed);
        let first = results_before_first_trip(&world);
        assert!(
            first.is_some_and(|n| n <= 30),
            "seed {seed}: opens within the first 30 attempt results, opened after {first:?}"
        );
        assert!(
            world.engine.stats().breaker_rejections > 0,
            "and fails calls fast"
        );
    }
}

#[test]
fn a_dead_host_opens_it_on_the_fifth_failed_attempt() {
    // At concurrency 64, the first 64 attempts are already out; the fifth failure to come back
    // opens the breaker (fewer than 20 attempts in the window: the run of 5 decides).
    let world = closed_loop(flaky(100, 9), 1_000, 64, 9);
    assert_eq!(results_before_first_trip(&world), Some(5));
    // One call at a time: five attempts reach the host, then calls fail fast.
    let world = closed_loop(flaky(100, 9), 20, 1, 9);
    assert_eq!(results_before_first_trip(&world), Some(5));
    let first_fast_fail = world
        .trace
        .iter()
        .position(|e| matches!(e.kind, EventKind::CallFailed { failure, .. } if failure.why == resile_core::Why::BreakerOpen))
        .expect("calls fail fast once open");
    let attempts_before = world.trace[..first_fast_fail]
        .iter()
        .filter(|e| matches!(e.kind, EventKind::AttemptStarted { .. }))
        .count();
    assert_eq!(attempts_before, 5);
}

#[test]
fn a_busy_host_that_dies_opens_it_after_min_calls_failures_in_a_row() {
    // Healthy for 10 s at concurrency 64 (thousands of successes in the window), then down.
    // The rate would need about 5 s to pass 50 %; the run of 20 failures (the whole minimum
    // sample failed) opens the breaker on the 20th failed attempt.
    let outage = Instant::from_millis(10_000);
    let server = move |_: &SimRequest, now: Instant, _: UnixTime| SimReply::Status {
        status: if now < outage { 200 } else { 503 },
        headers: vec![],
        body: None,
        latency: Duration::from_millis(50),
    };
    let world = closed_loop(server, 30_000, 64, 4);
    let mut failures = 0;
    let mut opened = None;
    for e in &world.trace {
        match &e.kind {
            EventKind::AttemptFinished { why, .. } if *why != resile_core::Why::Success => {
                failures += 1
            }
            EventKind::BreakerOpened { .. } => {
                opened = Some(e.at);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(failures, 20, "opened on the 20th failed attempt");
    let after = opened.expect("the breaker opens").as_millis() - 10_000;
    assert!(after < 100, "opened {after} ms into the outage");
}
