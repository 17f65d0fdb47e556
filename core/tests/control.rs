//! Retry predicates, fallbacks and breakers by hand, through the sim driver, written from the
//! rules in `engine/predicate.rs`, `engine/fallback.rs` and `breaker/control.rs`.

use std::time::Duration;

use resile_core::breaker::{BreakerSnapshot, HoldKind, SnapshotError};
use resile_core::sim::{CallResult, SimReply, SimRequest, World};
use resile_core::{
    Attempted, CallSpec, Config, ControlError, Detail, Engine, EventKind, FallbackSpec,
    FallbackUsed, Hint, Idempotency, Instant, Predicate, RetryVerdict, Seen, TransportError,
    UnixTime, Why,
};

const HOST: &str = "https://api.test";

fn reply(code: u16, headers: &[(&str, &str)]) -> SimReply {
    SimReply::Status {
        status: code,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: None,
        latency: Duration::from_millis(5),
    }
}

fn reset() -> SimReply {
    SimReply::Transport {
        error: TransportError::Reset,
        latency: Duration::from_millis(5),
    }
}

/// A server answering `script` in order, then 200s.
fn scripted(script: Vec<SimReply>) -> impl FnMut(&SimRequest, Instant, UnixTime) -> SimReply {
    let mut script = script.into_iter();
    move |_: &SimRequest, _: Instant, _: UnixTime| script.next().unwrap_or_else(|| reply(200, &[]))
}

fn config() -> Config {
    let mut c = Config::default();
    c.backoff.base_ms = 10;
    c.backoff.jitter = resile_core::Jitter::None;
    c
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn predicate(f: fn(&Attempted<'_>) -> RetryVerdict) -> Predicate {
    Predicate::new(f)
}

/// Runs one call against `script`; its result and the reasons of its retries.
fn run_one(
    config: Config,
    spec: CallSpec<'_>,
    script: Vec<SimReply>,
) -> (CallResult, Vec<(Why, u64)>) {
    let engine = Engine::new(config, 3, Instant::ZERO).unwrap();
    let mut world = World::new(engine, scripted(script));
    world.start(spec);
    world.drive_bounded(10_000);
    let retries = world
        .trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::RetryScheduled { why, delay, .. } => Some((why, delay.as_millis() as u64)),
            _ => None,
        })
        .collect();
    (world.results[0].expect("the call ended"), retries)
}

fn why_of(r: &CallResult) -> Option<Why> {
    match r {
        CallResult::Failed { failure, .. } | CallResult::FellBack { failure, .. } => {
            Some(failure.why)
        }
        CallResult::Done { .. } => None,
    }
}

/// A predicate that retries 404s, declines resets and waits 2 s after a 503 that says
/// `x-busy`, and has no opinion otherwise.
fn picky(a: &Attempted<'_>) -> RetryVerdict {
    match a.outcome {
        Seen::Response { status: 404, .. } => RetryVerdict::Retry,
        Seen::Response {
            status: 503,
            headers,
        } if headers.get("x-busy").is_some() => RetryVerdict::RetryAfter(Duration::from_secs(2)),
        Seen::Response { status: 200, .. } => RetryVerdict::Decide,
        Seen::Response { status: 500, .. } => RetryVerdict::DontRetry,
        Seen::Transport(TransportError::Reset) => RetryVerdict::DontRetry,
        _ => RetryVerdict::Decide,
    }
}

#[test]
fn a_predicate_narrows_and_widens_within_the_rules() {
    type Row = (&'static str, CallSpec<'static>, Vec<SimReply>, &'static str);
    let get = || CallSpec::get(HOST).retry_predicate(predicate(picky));
    let rows: Vec<Row> = vec![
        (
            "404 retried, then 200",
            get(),
            vec![reply(404, &[])],
            "done:200 after 2",
        ),
        (
            "500 is the answer",
            get(),
            vec![reply(500, &[])],
            "done:500 after 1",
        ),
        (
            "reset declined",
            get(),
            vec![reset()],
            "fail:predicate_declined after 1",
        ),
        (
            "503 waits as asked",
            get(),
            vec![reply(503, &[("x-busy", "1")])],
            "done:200 after 2",
        ),
        (
            "a POST without a key is not repeated after a 404",
            CallSpec::post(HOST)
                .idempotency(Idempotency::Off)
                .retry_predicate(predicate(picky)),
            vec![reply(404, &[])],
            "fail:not_idempotent after 1",
        ),
        (
            "a 404 retried runs out of attempts",
            get().max_attempts(2),
            vec![reply(404, &[]), reply(404, &[])],
            "fail:max_attempts after 2",
        ),
        (
            "no predicate: 404 is final",
            CallSpec::get(HOST),
            vec![reply(404, &[])],
            "done:404 after 1",
        ),
    ];
    for (name, spec, script, want) in rows {
        let (result, _) = run_one(config(), spec, script);
        let got = match result {
            CallResult::Done {
                status, attempts, ..
            } => format!("done:{status} after {attempts}"),
            CallResult::Failed { failure, .. } => {
                format!("fail:{} after {}", failure.why.name(), failure.attempts)
            }
            CallResult::FellBack { .. } => "fallback".into(),
        };
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_predicates_wait_is_its_own_and_capped_like_retry_after() {
    let spec = CallSpec::get(HOST).retry_predicate(predicate(picky));
    let (_, retries) = run_one(config(), spec, vec![reply(503, &[("x-busy", "1")])]);
    assert_eq!(retries, [(Why::RetryPredicate, 2000)]);

    let mut capped = config();
    capped.retry.max_retry_after_ms = 1000;
    let spec = CallSpec::get(HOST).retry_predicate(predicate(picky));
    let (result, _) = run_one(capped, spec, vec![reply(503, &[("x-busy", "1")])]);
    let CallResult::Failed { failure, .. } = result else {
        panic!("{result:?}")
    };
    assert_eq!(failure.why, Why::RetryAfterTooLong);
    assert_eq!(
        failure.detail,
        Detail::WaitTooLong {
            asked: Duration::from_secs(2),
            cap: Duration::from_secs(1),
            hint: Hint::RetryPredicate
        }
    );
    // A server's hold is the server's: the predicate's wait does not hold the host.
    assert_eq!(failure.retry_at, None);
}

#[test]
fn a_predicate_cannot_bypass_the_budget_or_the_breaker() {
    let always = |_: &Attempted<'_>| RetryVerdict::Retry;
    let mut no_budget = config();
    no_budget.budget.reserve = 0;
    no_budget.budget.ratio = 0.0;
    let spec = CallSpec::get(HOST).retry_predicate(Predicate::new(always));
    let (result, _) = run_one(no_budget, spec, vec![reply(404, &[])]);
    assert_eq!(why_of(&result), Some(Why::BudgetExhausted));

    let mut touchy = config();
    touchy.breaker.consecutive_failures = 1;
    touchy.breaker.failure_rate = None;
    let spec = CallSpec::get(HOST).retry_predicate(Predicate::new(always));
    let (result, _) = run_one(touchy, spec, vec![reply(503, &[])]);
    assert_eq!(why_of(&result), Some(Why::BreakerOpen));
}

#[test]
fn a_predicate_sees_the_method_attempt_and_outcome() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let spec = CallSpec::new(resile_core::Method::Put, HOST).retry_predicate(Predicate::new(
        move |a: &Attempted<'_>| {
            log.lock().unwrap().push(format!(
                "{} {} {:?}",
                a.method.as_str(),
                a.attempt,
                a.outcome
            ));
            RetryVerdict::Decide
        },
    ));
    run_one(config(), spec, vec![reset(), reply(503, &[])]);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "PUT 1 Transport(Reset)",
            "PUT 2 Response { status: 503, .. }",
            "PUT 3 Response { status: 200, .. }"
        ]
    );
}

#[test]
fn an_isolated_host_fails_fast_and_a_retry_waiting_on_it_is_not_paid_for() {
    let mut engine = Engine::new(config(), 1, Instant::ZERO).unwrap();
    let hold = engine.hold_breaker(HOST, HoldKind::Isolate, ms(0)).unwrap();
    let mut world = World::new(engine, scripted(vec![reply(503, &[])]));
    world.start(CallSpec::get(HOST));
    world.start(CallSpec::get(HOST).fallback(FallbackSpec::value()));
    world.drive_bounded(1000);
    assert_eq!(
        why_of(&world.results[0].unwrap()),
        Some(Why::BreakerIsolated)
    );
    assert!(matches!(
        world.results[1],
        Some(CallResult::FellBack {
            used: FallbackUsed::Value,
            ..
        })
    ));
    assert_eq!(world.attempts, 0);
    world.engine.release_breaker(hold, world.now);

    // Isolated while an attempt is out: its failure is not retried, and nothing is withdrawn.
    let budget_before = world.engine.hosts(world.now)[0].budget_available;
    world.start(CallSpec::get(HOST));
    let hold = world
        .engine
        .hold_breaker(HOST, HoldKind::Isolate, world.now)
        .unwrap();
    world.drive_bounded(1000);
    assert_eq!(
        why_of(&world.results[2].unwrap()),
        Some(Why::BreakerIsolated)
    );
    let budget_after = world.engine.hosts(world.now)[0].budget_available;
    assert!(
        budget_after >= budget_before,
        "{budget_before} -> {budget_after}"
    );
    world.engine.release_breaker(hold, world.now);
    world.start(CallSpec::get(HOST));
    world.drive_bounded(1000);
    assert!(matches!(
        world.results[3],
        Some(CallResult::Done { status: 200, .. })
    ));
}

#[test]
fn a_held_host_is_never_forgotten_and_a_full_table_is_a_typed_error() {
    let mut c = config();
    c.max_hosts = 2;
    let mut engine = Engine::new(c, 1, Instant::ZERO).unwrap();
    let _a = engine
        .hold_breaker("https://a.test", HoldKind::Isolate, ms(0))
        .unwrap();
    let _b = engine
        .hold_breaker("https://b.test", HoldKind::ForceClosed, ms(1))
        .unwrap();
    assert_eq!(
        engine.hold_breaker("https://c.test", HoldKind::Isolate, ms(2)),
        Err(ControlError::TooManyHosts { max_hosts: 2 })
    );
    let names: Vec<String> = engine
        .hosts(ms(3))
        .iter()
        .map(|h| h.host.to_string())
        .collect();
    assert_eq!(names, ["https://a.test", "https://b.test"]);
}

#[test]
fn export_and_import_carry_an_open_breaker_to_another_engine() {
    let mut c = config();
    c.breaker.consecutive_failures = 1;
    c.breaker.failure_rate = None;
    c.breaker.open_ms = 4000;
    let engine = Engine::new(c.clone(), 1, Instant::ZERO).unwrap();
    let mut world = World::new(engine, scripted(vec![reply(503, &[])]));
    world.start(CallSpec::get(HOST).max_attempts(1));
    world.drive_bounded(100);
    // Tripped at 5 ms, open until 4005 ms; exported at 1005 ms with the wall clock.
    world.run_until(ms(1005), 100);
    let wall = world.wall();
    let text = world
        .engine
        .export_breakers(world.now, Some(wall))
        .to_json();
    let snapshot = BreakerSnapshot::from_json(&text).unwrap();
    assert_eq!(snapshot.hosts[0].open_remaining_ms, Some(3000));

    // Another engine, its clock at 50 ms, imports it 1 s of wall time later.
    let mut other = Engine::new(c, 2, Instant::ZERO).unwrap();
    let later = wall.saturating_add(Duration::from_secs(1));
    assert_eq!(other.import_breakers(&snapshot, ms(50), Some(later)), Ok(1));
    let view = &other.hosts(ms(50))[0];
    assert_eq!(
        view.breaker,
        resile_core::breaker::BreakerState::Open { until: ms(2050) }
    );
    let events: Vec<EventKind> = std::iter::from_fn(|| other.poll_event())
        .map(|e| e.kind)
        .collect();
    assert!(matches!(
        events.as_slice(),
        [EventKind::BreakerControlled {
            control: resile_core::breaker::BreakerControl::Imported,
            ..
        }]
    ));
    // Reset closes it; a snapshot of another version is refused and changes nothing.
    other.reset_breaker(HOST, ms(60)).unwrap();
    let bad = BreakerSnapshot::from_json(r#"{"version":2,"hosts":[]}"#);
    assert!(matches!(
        bad,
        Err(SnapshotError::UnsupportedVersion { found: 2, .. })
    ));
    assert_eq!(
        other.hosts(ms(60))[0].breaker,
        resile_core::breaker::BreakerState::Closed
    );
}
