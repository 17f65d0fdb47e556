//! Hedging, written from the rules, on the sim's virtual clock: which attempt wins, when hedges
//! go and when they are refused, and (by proptest) that a write never has two attempts out and
//! hedges never overdraw the budget.
#![allow(clippy::field_reassign_with_default)]

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use resile_core::classify::TransportError;
use resile_core::config::LimitConfig;
use resile_core::sim::{CallResult, SimReply, SimRequest, World};
use resile_core::{CallSpec, Config, Engine, EventKind, Instant, Method, UnixTime, Why};

const HOST: &str = "https://api.test";

fn reply(status: u16, latency_ms: u64) -> SimReply {
    SimReply::Status {
        status,
        headers: vec![],
        body: None,
        latency: Duration::from_millis(latency_ms),
    }
}

/// A server answering attempt `n` of every call with `replies[n-1]` (the last repeating).
fn by_attempt(replies: Vec<SimReply>) -> impl FnMut(&SimRequest, Instant, UnixTime) -> SimReply {
    move |r: &SimRequest, _: Instant, _: UnixTime| {
        let i = (r.attempt as usize - 1).min(replies.len() - 1);
        replies[i].clone()
    }
}

fn hedging(delay_ms: u64) -> Config {
    let mut c = Config::default();
    c.hedge.enabled = true;
    c.hedge.delay_ms = delay_ms;
    c
}

/// What a run shows about hedging.
#[derive(Debug, PartialEq)]
struct Seen {
    outcome: String,
    /// The attempt whose answer finished the call (its last `AttemptFinished`).
    winner: Option<u32>,
    hedges: Vec<(u32, Why)>,
    refused: Vec<Why>,
    aborted: Vec<(u32, Why)>,
}

fn run(
    config: Config,
    spec: CallSpec<'_>,
    replies: Vec<SimReply>,
) -> (
    Seen,
    World<impl FnMut(&SimRequest, Instant, UnixTime) -> SimReply>,
) {
    let engine = Engine::new(config, 5, Instant::ZERO).expect("valid config");
    let mut world = World::new(engine, by_attempt(replies));
    world.start(spec);
    world.drive_bounded(10_000);
    let outcome = match world.results[0] {
        Some(CallResult::Done { status, .. }) => format!("done:{status}"),
        Some(CallResult::Failed { failure, .. }) => format!("fail:{}", failure.why.name()),
        Some(CallResult::FellBack { failure, .. }) => format!("fallback:{}", failure.why.name()),
        None => "pending".into(),
    };
    let mut seen = Seen {
        outcome,
        winner: None,
        hedges: vec![],
        refused: vec![],
        aborted: vec![],
    };
    for e in &world.trace {
        match e.kind {
            EventKind::AttemptFinished { attempt, .. } => seen.winner = Some(attempt),
            EventKind::HedgeSent { attempt, why, .. } => seen.hedges.push((attempt, why)),
            EventKind::HedgeRefused { why, .. } => seen.refused.push(why),
            EventKind::AttemptAborted { attempt, why, .. } => seen.aborted.push((attempt, why)),
            _ => {}
        }
    }
    (seen, world)
}

#[test]
fn who_wins_and_what_is_hedged() {
    use Why::{HedgeDelay, HedgeLost};
    let get = || CallSpec::get(HOST);
    let slow_then_fast = || vec![reply(200, 1_000), reply(200, 20)];
    let three_hedges = {
        let mut c = hedging(100);
        c.hedge.max_hedges = 2;
        c
    };
    let one_attempt = {
        let mut c = hedging(100);
        c.retry.max_attempts = 1;
        c
    };
    // (what, config, call, replies by attempt, winner, hedges, refused, aborted)
    #[allow(clippy::type_complexity)]
    let table: Vec<(
        &str,
        Config,
        CallSpec,
        Vec<SimReply>,
        Option<u32>,
        Vec<(u32, Why)>,
        Vec<Why>,
        Vec<(u32, Why)>,
    )> = vec![
        (
            "slow first: the hedge wins, the first is aborted",
            hedging(100),
            get(),
            slow_then_fast(),
            Some(2),
            vec![(2, HedgeDelay)],
            vec![],
            vec![(1, HedgeLost)],
        ),
        (
            "fast first: no hedge",
            hedging(100),
            get(),
            vec![reply(200, 50)],
            Some(1),
            vec![],
            vec![],
            vec![],
        ),
        (
            "the first answers before the hedge: the hedge is aborted",
            hedging(100),
            get(),
            vec![reply(200, 150), reply(200, 500)],
            Some(1),
            vec![(2, HedgeDelay)],
            vec![],
            vec![(2, HedgeLost)],
        ),
        (
            "hedging off: no hedge",
            Config::default(),
            get(),
            slow_then_fast(),
            Some(1),
            vec![],
            vec![],
            vec![],
        ),
        (
            "POST: never hedged",
            hedging(100),
            CallSpec::post(HOST),
            slow_then_fast(),
            Some(1),
            vec![],
            vec![],
            vec![],
        ),
        (
            "PUT, idempotent but a write: never hedged",
            hedging(100),
            CallSpec::new(Method::Put, HOST),
            slow_then_fast(),
            Some(1),
            vec![],
            vec![],
            vec![],
        ),
        (
            "HEAD: hedged",
            hedging(100),
            CallSpec::new(Method::Head, HOST),
            slow_then_fast(),
            Some(2),
            vec![(2, HedgeDelay)],
            vec![],
            vec![(1, HedgeLost)],
        ),
        (
            "a one-shot body: never hedged",
            hedging(100),
            get().not_replayable(),
            slow_then_fast(),
            Some(1),
            vec![],
            vec![],
            vec![],
        ),
        (
            "two hedges: the third attempt wins",
            three_hedges,
            get(),
            vec![reply(200, 1_000), reply(200, 900), reply(200, 50)],
            Some(3),
            vec![(2, HedgeDelay), (3, HedgeDelay)],
            vec![],
            vec![(1, HedgeLost), (2, HedgeLost)],
        ),
        (
            "a hedge is an attempt: max_attempts 1 allows none",
            one_attempt,
            get(),
            slow_then_fast(),
            Some(1),
            vec![],
            vec![],
            vec![],
        ),
        (
            "no hedge after the deadline",
            hedging(300),
            get().deadline(Duration::from_millis(250)),
            vec![reply(200, 200)],
            Some(1),
            vec![],
            vec![],
            vec![],
        ),
    ];
    for (what, config, spec, replies, winner, hedges, refused, aborted) in table {
        let (seen, _) = run(config, spec, replies);
        let want = Seen {
            outcome: seen.outcome.clone(),
            winner,
            hedges,
            refused,
            aborted,
        };
        assert_eq!(seen, want, "{what}");
        assert!(
            seen.outcome.starts_with("done:2"),
            "{what}: {}",
            seen.outcome
        );
    }
}

#[test]
fn a_due_hedge_is_refused_by_what_would_refuse_an_attempt() {
    let mut budget = hedging(100);
    budget.budget.reserve = 0;
    budget.budget.ratio = 0.0;
    let mut concurrency = hedging(100);
    concurrency.concurrency.max_in_flight = Some(1);
    let mut rate = hedging(100);
    rate.limit = Some(LimitConfig {
        per_second: 1.0,
        burst: 1,
    });
    for (config, why) in [
        (budget, Why::BudgetExhausted),
        (concurrency, Why::ConcurrencyLimit),
        (rate, Why::ClientRateLimit),
    ] {
        let (seen, world) = run(
            config,
            CallSpec::get(HOST),
            vec![reply(200, 400), reply(200, 10)],
        );
        // The refused hedge costs nothing and the attempt out carries on to answer.
        assert_eq!(seen.refused, vec![why]);
        assert_eq!((seen.winner, seen.outcome.as_str()), (Some(1), "done:200"));
        assert_eq!(world.attempts, 1, "{why:?}");
        assert_eq!(world.engine.stats().hedges, 0);
    }
}

#[test]
fn a_hedge_withdraws_from_the_budget() {
    let mut config = hedging(100);
    config.budget.reserve = 1;
    config.budget.ratio = 0.0;
    let (seen, world) = run(
        config,
        CallSpec::get(HOST),
        vec![reply(200, 400), reply(503, 10), reply(200, 10)],
    );
    // The hedge took the one retry the budget held; it failed, the first attempt answered.
    assert_eq!(seen.hedges.len(), 1);
    assert_eq!(seen.winner, Some(1));
    let host = &world.engine.hosts(world.now)[0];
    assert_eq!(
        host.budget_available, 0.0,
        "the hedge withdrew the one retry"
    );
}

#[test]
fn a_hedge_refused_unprocessed_costs_the_throttle_nothing() {
    // gRPC A6's throttle under hedging: a hedge that fails while the first attempt is out
    // costs a token; one the server refused before processing it costs none, as on the retry
    // path. The first attempt then answers, which gives back a tenth of a token.
    let mut config = hedging(100);
    config.retry_throttling = Some(resile_core::throttle::ThrottleConfig::GRPC_A6);
    let refused = SimReply::Transport {
        error: TransportError::Refused,
        latency: Duration::from_millis(10),
    };
    for (hedge, tokens_milli) in [(reply(503, 10), 9_100), (refused, 10_000)] {
        let (seen, world) = run(
            config.clone(),
            CallSpec::get(HOST),
            vec![reply(200, 400), hedge.clone()],
        );
        assert_eq!(seen.hedges.len(), 1, "{hedge:?}");
        assert_eq!((seen.winner, seen.outcome.as_str()), (Some(1), "done:200"));
        let host = &world.engine.hosts(world.now)[0];
        assert_eq!(host.retry_throttle_milli, Some(tokens_milli), "{hedge:?}");
    }
}

#[test]
fn when_every_attempt_out_fails_the_retry_policy_decides() {
    let mut config = hedging(100);
    config.backoff.jitter = resile_core::Jitter::None;
    config.backoff.base_ms = 50;
    let (seen, world) = run(
        config,
        CallSpec::get(HOST),
        vec![reply(503, 300), reply(503, 300), reply(200, 10)],
    );
    // Attempt 1 fails at 300 with attempt 2 still out: that ends attempt 1 only. Attempt 2
    // fails at 400: the last one out, so a retry is scheduled after the backoff for a third
    // attempt (50 ms · 2: the hedge was an attempt); the retry answers at 510, before its own
    // hedge is due.
    assert_eq!(seen.outcome, "done:200");
    assert_eq!(seen.winner, Some(3));
    assert_eq!(seen.hedges, vec![(2, Why::HedgeDelay)]);
    let retries: Vec<u64> = world
        .trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::RetryScheduled { .. } => Some(e.at.as_millis()),
            _ => None,
        })
        .collect();
    assert_eq!(retries, vec![400]);
    assert_eq!(world.results[0].map(|r| r.at().as_millis()), Some(510));
}

#[test]
fn the_percentile_delay_follows_the_host_after_min_samples() {
    let mut config = hedging(100);
    config.hedge.percentile = Some(0.9);
    config.hedge.min_samples = 20;
    config.hedge.min_delay_ms = 5;
    let engine = Engine::new(config, 1, Instant::ZERO).unwrap();
    // Calls 1..=19 answer in 30 ms; call 20 and later: the first attempt is slow.
    let mut world = World::new(engine, |r: &SimRequest, _: Instant, _: UnixTime| {
        if r.label >= 19 && r.attempt == 1 {
            reply(200, 2_000)
        } else {
            reply(200, 30)
        }
    });
    let delays = |world: &World<_>| -> Vec<(u64, Why)> {
        world
            .trace
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::HedgeSent { delay, why, .. } => Some((delay.as_millis() as u64, why)),
                _ => None,
            })
            .collect()
    };
    for _ in 0..19 {
        world.start(CallSpec::get(HOST));
        world.drive_bounded(1_000);
    }
    assert!(delays(&world).is_empty(), "fast calls are never hedged");
    // 19 samples: the fixed delay still holds.
    world.start(CallSpec::get(HOST));
    world.drive_bounded(1_000);
    assert_eq!(delays(&world), vec![(100, Why::HedgeDelay)]);
    // 20 samples and more (the loser's 100 ms counts too): the p90 of mostly 30 ms, rounded up
    // to its bucket.
    world.start(CallSpec::get(HOST));
    world.drive_bounded(1_000);
    let (delay, why) = delays(&world)[1];
    assert_eq!(why, Why::HedgePercentile);
    assert!(
        (30..=34).contains(&delay),
        "p90 of 30 ms answers: {delay} ms"
    );
}

#[test]
fn a_losers_late_answer_changes_nothing() {
    let engine = Engine::new(hedging(100), 3, Instant::ZERO).unwrap();
    let mut e = engine;
    let call = e.start(CallSpec::get(HOST), Instant::ZERO);
    let _ = e.poll_action();
    e.handle_timeout(Instant::from_millis(100));
    let sends: Vec<_> = std::iter::from_fn(|| e.poll_action()).collect();
    assert!(
        matches!(
            sends.as_slice(),
            [resile_core::Action::Send { attempt: 2, .. }]
        ),
        "{sends:?}"
    );
    let ok = resile_core::Response::new(200, &resile_core::headers::NoHeaders, UnixTime::EPOCH);
    e.handle_attempt(
        call,
        2,
        resile_core::Outcome::Response(ok),
        Instant::from_millis(120),
    );
    let after: Vec<_> = std::iter::from_fn(|| e.poll_action()).collect();
    assert!(
        matches!(
            after.as_slice(),
            [
                resile_core::Action::Abort {
                    attempt: 1,
                    why: Why::HedgeLost,
                    ..
                },
                resile_core::Action::Done {
                    status: 200,
                    attempts: 2,
                    ..
                }
            ]
        ),
        "{after:?}"
    );
    let stats = e.stats();
    e.handle_attempt(
        call,
        1,
        resile_core::Outcome::Transport(TransportError::Reset),
        Instant::from_millis(130),
    );
    assert_eq!(e.poll_action(), None);
    assert_eq!(e.stats(), stats);
    assert_eq!(
        e.hosts(Instant::from_millis(130))[0].in_flight,
        0,
        "every slot returned"
    );
    assert_eq!(e.poll_timeout(), None, "nothing waits");
}

/// One call of the proptest: its method and its attempts' replies.
#[derive(Clone, Debug)]
struct Plan {
    method: Method,
    replies: Vec<(u16, u64)>,
}

fn plan() -> impl Strategy<Value = Plan> {
    let method = prop_oneof![
        Just(Method::Get),
        Just(Method::Head),
        Just(Method::Post),
        Just(Method::Put),
        Just(Method::Delete),
        Just(Method::Patch),
    ];
    // Statuses 0 stand for a reset connection. No 429: a first 429 retries without budget.
    let answer = (
        prop_oneof![Just(200u16), Just(503), Just(500), Just(0)],
        1u64..400,
    );
    (method, proptest::collection::vec(answer, 1..5))
        .prop_map(|(method, replies)| Plan { method, replies })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// With hedging on, whatever the server does: a call that is not an idempotent read never
    /// has two attempts out, no call has more than 1 + max_hedges, every call ends, and
    /// retries plus hedges never exceed what the budget holds (one window here:
    /// reserve + ratio · calls).
    #[test]
    fn writes_are_never_hedged_and_the_budget_is_never_overdrawn(
        plans in proptest::collection::vec(plan(), 1..40),
        spacing in 0u64..100,
        delay in 5u64..200,
        max_hedges in 1u32..=3,
        reserve in 0u32..6,
        ratio in 0.0f64..0.5,
        seed in any::<u64>(),
    ) {
        let mut config = hedging(delay);
        config.hedge.max_hedges = max_hedges;
        config.retry.max_attempts = 4;
        config.budget.reserve = reserve;
        config.budget.max_saved = 1_000;
        config.budget.ratio = ratio;
        config.budget.window_ms = 1_000_000_000;
        config.breaker.enabled = false;
        let engine = Engine::new(config, seed, Instant::ZERO).unwrap();
        let table = plans.clone();
        let server = move |r: &SimRequest, _: Instant, _: UnixTime| {
            let replies = &table[r.label].replies;
            let (status, latency) = replies[(r.attempt as usize - 1).min(replies.len() - 1)];
            match status {
                0 => SimReply::Transport { error: TransportError::Reset, latency: Duration::from_millis(latency) },
                s => reply(s, latency),
            }
        };
        let mut world = World::new(engine, server);
        for p in &plans {
            world.start(CallSpec::new(p.method, HOST));
            world.run_until(world.now + Duration::from_millis(spacing), 10_000);
        }
        world.drive_bounded(100_000);
        prop_assert!(world.results.iter().all(Option::is_some), "every call ends");

        let mut out: HashMap<u32, i64> = HashMap::new();
        let mut labels = HashMap::new();
        for e in &world.trace {
            match e.kind {
                EventKind::CallStarted { call, .. } => { labels.insert(call, labels.len()); }
                EventKind::AttemptStarted { call, .. } => {
                    let n = out.entry(call.number()).or_default();
                    *n += 1;
                    let read = matches!(plans[labels[&call]].method, Method::Get | Method::Head);
                    let most = if read { 1 + i64::from(max_hedges) } else { 1 };
                    prop_assert!(*n <= most, "{call}: {n} attempts out, at most {most}");
                }
                EventKind::AttemptFinished { call, .. } | EventKind::AttemptAborted { call, .. } => {
                    *out.entry(call.number()).or_default() -= 1;
                }
                _ => {}
            }
        }
        let stats = world.engine.stats();
        // The budget keeps thousandths of a retry: each call deposits the ratio rounded so.
        let per_call = (ratio * 1000.0).round() / 1000.0;
        let allowed = f64::from(reserve) + per_call * plans.len() as f64 + 1e-9;
        prop_assert!((stats.retries + stats.hedges) as f64 <= allowed,
            "{} retries + {} hedges > {allowed}", stats.retries, stats.hedges);
    }
}

#[test]
fn no_hedge_to_a_host_whose_breaker_opened_or_that_holds_its_calls() {
    // Call 0 is slow; calls 1 and 2 start at once and fail fast: two 503s open a breaker that
    // trips on two failures in a row, a 429 with Retry-After holds the host.
    let mut breaker = hedging(100);
    breaker.breaker.consecutive_failures = 2;
    let hold = hedging(100);
    for (config, others, why) in [
        (breaker, status(503, &[]), Why::BreakerOpen),
        (
            hold,
            status(429, &[("Retry-After", "5")]),
            Why::ServerRetryAfterHold,
        ),
    ] {
        let engine = Engine::new(config, 9, Instant::ZERO).unwrap();
        let mut world = World::new(
            engine,
            move |r: &SimRequest, _: Instant, _: UnixTime| match r.label {
                0 => reply(200, 400),
                _ => others.clone(),
            },
        );
        world.start(CallSpec::get(HOST));
        for _ in 0..2 {
            world.start(CallSpec::get(HOST).max_attempts(1));
        }
        world.drive_bounded(10_000);
        let refused: Vec<Why> = world
            .trace
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::HedgeRefused { why, .. } => Some(why),
                _ => None,
            })
            .collect();
        assert_eq!(refused, vec![why]);
        assert_eq!(world.engine.stats().hedges, 0);
        assert!(
            matches!(
                world.results[0],
                Some(CallResult::Done {
                    status: 200,
                    attempts: 1,
                    ..
                })
            ),
            "{why:?}: the slow attempt still answers: {:?}",
            world.results[0]
        );
    }
}

fn status(code: u16, headers: &[(&str, &str)]) -> SimReply {
    SimReply::Status {
        status: code,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: None,
        latency: Duration::from_millis(10),
    }
}
