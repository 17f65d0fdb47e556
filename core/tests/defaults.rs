//! The defaults as users hit them, in the simulator: degenerate tokens, statuses below 100,
//! and a retry budget whose savings expire.
#![allow(clippy::field_reassign_with_default)]

use std::time::Duration;

use proptest::prelude::*;
use resile_core::budget::Budget;
use resile_core::config::BudgetConfig;
use resile_core::headers::NoHeaders;
use resile_core::sim::{CallResult, SimReply, SimRequest, World};
use resile_core::{
    Action, CallSpec, Config, Engine, EventKind, Instant, Last, Outcome, Processed, Response,
    UnixTime, Why,
};

const HOST: &str = "https://api.test";

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn engine(config: Config) -> Engine {
    Engine::new(config, 11, Instant::ZERO).expect("valid config")
}

fn reply(status: u16) -> SimReply {
    SimReply::Status {
        status,
        headers: vec![],
        body: None,
        latency: Duration::from_millis(10),
    }
}

fn ok_server(_: &SimRequest, _: Instant, _: UnixTime) -> SimReply {
    reply(200)
}

// --- tokens ----------------------------------------------------------------------------------

#[test]
fn three_second_tokens_cost_a_handful_of_fetches_not_one_per_call() {
    let mut world = World::new(engine(Config::default()), ok_server);
    world.token_server.expires_in = Some(Duration::from_secs(3));
    for i in 0..100u64 {
        world.run_until(ms(i * 100), 10_000);
        world.start(CallSpec::get(HOST).with_token());
    }
    world.drive_bounded(10_000);
    assert!(
        world
            .results
            .iter()
            .all(|r| matches!(r, Some(CallResult::Done { status: 200, .. }))),
        "every call got a token and succeeded"
    );
    // One fetch, then one early refresh in the last 600 ms of each 3 s token: 10 s / 2.4 s.
    assert!(
        (4..=6).contains(&world.token_fetches),
        "{} fetches for 100 calls over 10 s",
        world.token_fetches
    );
}

#[test]
fn expires_in_zero_makes_a_bounded_number_of_fetches_over_30_s() {
    let mut world = World::new(engine(Config::default()), ok_server);
    world.token_server.expires_in = Some(Duration::ZERO);
    for i in 0..300u64 {
        world.run_until(ms(i * 100), 10_000);
        world.start(CallSpec::get(HOST).with_token());
    }
    let steps = world.drive_bounded(10_000);
    // Fetches at 0, 1, 3, 7, 15 and 31 s (1 s doubling, from each degenerate token's arrival),
    // five of them in the first 30 s. The last call gives up at 59.9 s; the fetch that would
    // follow at 61 s is dropped, as nobody waits for it.
    let fetch_times: Vec<u64> = world
        .trace
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TokenFetchStarted { .. }))
        .map(|e| e.at.as_millis())
        .collect();
    assert_eq!(fetch_times, [0, 1_020, 3_040, 7_060, 15_080, 31_100]);
    assert_eq!(world.token_fetches, 6, "a hot loop would make about 3 000");
    assert!(
        steps < 2_000,
        "the world slept between fetches: {steps} steps"
    );
    for r in &world.results {
        let Some(CallResult::Failed { failure, .. }) = r else {
            panic!("no usable token, so no call can succeed: {r:?}")
        };
        assert_eq!(failure.why, Why::DeadlineExceeded);
        assert_eq!(failure.attempts, 0);
    }
    assert_eq!(world.engine.poll_timeout(), None, "nothing is left waiting");
}

#[test]
fn a_put_off_fetch_starts_on_its_timer_and_wakes_the_waiting_calls() {
    let mut e = engine(Config::default());
    let call = e.start(CallSpec::get(HOST).with_token(), ms(0));
    assert!(matches!(e.poll_action(), Some(Action::FetchToken { .. })));
    e.token_fetched(Some(Duration::ZERO), ms(10));
    // The expired token cannot be used and the next fetch is put off by 1 s.
    assert_eq!(e.poll_action(), None);
    assert_eq!(e.poll_timeout(), Some(ms(1_010)));
    e.handle_timeout(ms(1_009));
    assert_eq!(e.poll_action(), None, "early timeouts do nothing");
    e.handle_timeout(ms(1_010));
    assert!(matches!(
        e.poll_action(),
        Some(Action::FetchToken {
            why: Why::TokenExpired
        })
    ));
    assert_eq!(
        e.poll_timeout(),
        Some(ms(30_000)),
        "only the call's deadline is left"
    );
    e.token_fetched(Some(Duration::from_secs(3600)), ms(1_030));
    let Some(Action::Send {
        call: sent,
        headers,
        ..
    }) = e.poll_action()
    else {
        panic!("the waiting call is sent with the good token")
    };
    assert_eq!(
        headers.token,
        Some(2),
        "the waiting call is sent with the good token"
    );
    assert_eq!(sent, call);
}

// --- statuses below 100 ----------------------------------------------------------------------

#[test]
fn status_0_is_a_transport_failure_never_a_success() {
    let server = |_: &SimRequest, _: Instant, _: UnixTime| reply(0);
    let mut world = World::new(engine(Config::default()), server);
    let get = world.start(CallSpec::get(HOST));
    let post = world.start(CallSpec::post(HOST).idempotency(resile_core::Idempotency::Off));
    world.drive_bounded(10_000);
    let Some(CallResult::Failed { failure, .. }) = world.results[get] else {
        panic!("a GET answered 0 fails: {:?}", world.results[get])
    };
    assert_eq!(
        (
            failure.why,
            failure.attempts,
            failure.last,
            failure.processed
        ),
        (Why::MaxAttempts, 4, Some(Last::Status(0)), Processed::Maybe),
        "retried as a transport failure"
    );
    let Some(CallResult::Failed { failure, .. }) = world.results[post] else {
        panic!("a POST answered 0 fails: {:?}", world.results[post])
    };
    assert_eq!(
        (failure.why, failure.attempts, failure.processed),
        (Why::NotIdempotent, 1, Processed::Maybe),
        "it may have been applied, so a keyless write is not repeated"
    );
}

#[test]
fn statuses_below_100_count_against_the_breaker() {
    let mut e = engine(Config::default());
    for i in 0..5u64 {
        let call = e.start(CallSpec::get(HOST).max_attempts(1), ms(i));
        assert!(matches!(e.poll_action(), Some(Action::Send { .. })));
        let response = Response::new(42, &NoHeaders, UnixTime::EPOCH);
        e.handle(call, Outcome::Response(response), ms(i));
        let _ = e.poll_action();
    }
    assert_eq!(
        e.stats().breaker_trips,
        1,
        "five in a row at low volume trip it"
    );
    assert_eq!(e.stats().succeeded, 0);
}

// --- the retry budget ------------------------------------------------------------------------

#[test]
fn savings_from_a_quiet_healthy_spell_are_not_spent_at_the_start_of_an_outage() {
    // Ten minutes of health at 2 calls/s would have saved the full 100 retries with a budget
    // that never forgets; then the host dies and a batch of 200 calls arrives at once.
    let mut config = Config::default();
    config.breaker.enabled = false;
    config.retry.deadline_ms = None;
    let outage = ms(600_000);
    let server = move |_: &SimRequest, now: Instant, _: UnixTime| {
        reply(if now < outage { 200 } else { 503 })
    };
    let mut world = World::new(engine(config), server);
    for i in 0..1_200u64 {
        world.run_until(ms(i * 500), 10_000);
        world.start(CallSpec::get(HOST));
    }
    world.run_until(outage, 10_000);
    let budget = world.engine.hosts(outage)[0].budget_available;
    // The reserve (10) and the last 10 s of deposits (20 calls · 0.2).
    assert!(
        budget <= 14.0,
        "only the reserve and the last 10 s of deposits are left: {budget}"
    );
    for _ in 0..200 {
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(100_000);
    let retries = world
        .trace
        .iter()
        .filter(|e| e.at >= outage && matches!(e.kind, EventKind::RetryScheduled { .. }))
        .count();
    // Reserve 10 + 2 calls/s · 0.2 · 10 s + 200 · 0.2 = 54; a budget that never forgets
    // would allow 100 + 40.
    assert!(
        retries <= 54,
        "{retries} retries at the start of the outage"
    );
    assert!(
        retries >= 40,
        "the batch still earns its own fifth: {retries}"
    );
}

/// Failing cases are saved next to this file and replayed first on every run.
fn persistence() -> Option<Box<dyn proptest::test_runner::FailurePersistence>> {
    Some(Box::new(
        proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
    ))
}

#[derive(Clone, Debug)]
enum Op {
    Deposit,
    Withdraw,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Deposit),
        3 => Just(Op::Withdraw),
        1 => (0u64..4_000).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: persistence(), ..ProptestConfig::default() })]

    /// Retries in any window are bounded by the reserve plus what calls earned in (about) that
    /// window; the balance never exceeds `max_saved`; a burst spends at most `max_saved`.
    #[test]
    fn budget_windows_bound_retries(
        ratio in 0.0f64..=1.0,
        reserve in 0u32..20,
        extra in 0u32..50,
        window_ms in 1_000u64..20_000,
        ops in proptest::collection::vec(op(), 0..1500),
    ) {
        let config = BudgetConfig { enabled: true, ratio, reserve, max_saved: reserve + extra, window_ms };
        let mut b = Budget::new(&config);
        let per_call = (ratio * 1000.0).round() / 1000.0;
        let mut now = 0u64;
        let (mut deposits, mut withdrawals): (Vec<u64>, Vec<u64>) = (vec![], vec![]);
        let mut burst = 0u32;
        for op in ops {
            match op {
                Op::Deposit => {
                    b.deposit(ms(now));
                    deposits.push(now);
                    burst = 0;
                }
                Op::Withdraw => {
                    if b.try_withdraw(ms(now)) {
                        withdrawals.push(now);
                        burst += 1;
                        prop_assert!(burst <= config.max_saved, "a burst of {burst}");
                        // Ten buckets: a withdrawal counts for the last 9 to 10 tenths of the
                        // window, a deposit for at most the whole window.
                        let recent = withdrawals.iter().filter(|t| 10 * **t + 9 * window_ms > 10 * now).count();
                        let earned = deposits.iter().filter(|t| **t + window_ms >= now).count();
                        prop_assert!(
                            recent as f64 <= f64::from(reserve) + per_call * earned as f64 + 1e-9,
                            "{recent} retries in the window at {now}, {earned} calls"
                        );
                    }
                }
                Op::Advance(dt) => {
                    now += dt;
                    burst = 0;
                }
            }
            prop_assert!(b.available(ms(now)) <= f64::from(config.max_saved));
        }
    }
}
