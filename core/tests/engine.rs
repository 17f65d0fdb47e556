//! Engine behaviour through the sim driver, written from the rules.
#![allow(clippy::field_reassign_with_default)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use resile_core::config::{BreakerConfig, BudgetConfig, LimitConfig, RequestIds};
use resile_core::sim::{CallResult, SimReply, SimRequest, World};
use resile_core::{
    CallSpec, Config, Engine, EventKind, Idempotency, Instant, Jitter, Method, UnixTime, Why,
};

const HOST: &str = "https://api.test";

fn ok(latency_ms: u64) -> SimReply {
    SimReply::Status {
        status: 200,
        headers: vec![],
        body: None,
        latency: Duration::from_millis(latency_ms),
    }
}

fn status(code: u16, headers: &[(&str, &str)], latency_ms: u64) -> SimReply {
    SimReply::Status {
        status: code,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: None,
        latency: Duration::from_millis(latency_ms),
    }
}

/// A server whose first answer is `first` and every later one a 200 after `later_ms`.
fn first_then_ok(
    first: SimReply,
    later_ms: u64,
) -> impl FnMut(&SimRequest, Instant, UnixTime) -> SimReply {
    let mut first = Some(first);
    move |_: &SimRequest, _: Instant, _: UnixTime| first.take().unwrap_or_else(|| ok(later_ms))
}

fn engine(config: Config) -> Engine {
    Engine::new(config, 7, Instant::ZERO).expect("valid config")
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn attempt_times<S>(world: &World<S>) -> Vec<(u64, u32)> {
    world
        .trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::AttemptStarted { call, .. } => Some((e.at.as_millis(), call.number())),
            _ => None,
        })
        .collect()
}

/// The most attempts the default budget allows `calls` calls against a dead host, the run
/// having lasted until `end`: each call and a tenth of a retry, plus the reserve (10) once for
/// every 10 s window the run touched.
fn budget_bound(calls: u64, end: &Instant) -> u64 {
    let b = resile_core::config::BudgetConfig::default();
    let windows = end.as_millis() / 10_000 + 1;
    calls + (calls as f64 * b.ratio).ceil() as u64 + u64::from(b.reserve) * windows
}

#[test]
fn outage_is_capped_and_the_host_recovers() {
    // The host is down for the first 2 s, then healthy. Calls arrive every 10 ms for 6 s.
    let mut config = Config::default();
    config.breaker.open_ms = 200;
    config.breaker.max_open_ms = 800;
    let server = |_: &SimRequest, now: Instant, _: UnixTime| {
        if now < ms(2000) {
            status(503, &[], 5)
        } else {
            ok(5)
        }
    };
    let mut world = World::new(engine(config), server);
    for i in 0..600u64 {
        world.run_until(ms(i * 10), 100_000);
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(100_000);

    let during: Vec<&CallResult> = world.results[..200].iter().flatten().collect();
    let attempts_during: u32 = during.iter().map(|r| r.attempts()).sum();
    assert_eq!(during.len(), 200);
    assert!(
        f64::from(attempts_during) / 200.0 <= 1.1,
        "outage amplification {attempts_during} attempts for 200 calls"
    );
    let opened = world
        .trace
        .iter()
        .filter(|e| matches!(e.kind, EventKind::BreakerOpened { .. }))
        .count();
    let closed = world
        .trace
        .iter()
        .filter(|e| matches!(e.kind, EventKind::BreakerClosed { .. }))
        .count();
    assert!(opened >= 1, "the breaker should open during the outage");
    assert_eq!(closed, 1, "and close once after recovery");
    // Recovery: once the longest open time after the outage has passed, every call succeeds.
    for (i, r) in world.results.iter().enumerate().skip(300) {
        assert!(
            matches!(r, Some(CallResult::Done { status: 200, .. })),
            "call {i}: {r:?}"
        );
    }
}

#[test]
fn budget_alone_bounds_amplification() {
    let mut config = Config::default();
    config.breaker.enabled = false;
    config.retry.deadline_ms = None;
    config.budget = BudgetConfig {
        enabled: true,
        ratio: 0.1,
        reserve: 10,
        max_saved: 100,
        ..BudgetConfig::default()
    };
    let server = |_: &SimRequest, _: Instant, _: UnixTime| status(503, &[], 1);
    let mut world = World::new(engine(config), server).without_trace();
    for i in 0..1000u64 {
        world.run_until(ms(i * 20), 100_000);
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(1_000_000);
    let bound = budget_bound(1000, &world.now);
    assert!(
        world.attempts <= bound,
        "{} attempts for 1000 calls, over {bound}",
        world.attempts
    );
    assert!(world.results.iter().all(|r| r.is_some()));
    assert!(world.engine.stats().budget_refusals > 0);
}

#[test]
fn a_429_holds_the_whole_host_until_retry_after() {
    let server = first_then_ok(status(429, &[("Retry-After", "1")], 10), 10);
    let mut world = World::new(engine(Config::default()), server);
    world.start(CallSpec::get(HOST));
    world.run_until(ms(20), 1000);
    for _ in 0..49 {
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(100_000);
    let times = attempt_times(&world);
    assert_eq!(times.len(), 51, "50 calls, one retried");
    assert!(
        times.iter().skip(1).all(|(t, _)| *t >= 1010),
        "no attempt between the 429 and its Retry-After: {times:?}"
    );
    assert!(world.trace.iter().any(|e| matches!(
        e.kind,
        EventKind::HostHeld {
            why: Why::ServerRetryAfterHold,
            ..
        }
    )));
    assert!(world
        .results
        .iter()
        .all(|r| matches!(r, Some(CallResult::Done { status: 200, .. }))));
}

#[test]
fn ratelimit_remaining_zero_holds_until_reset() {
    let hint = [
        ("RateLimit", "\"default\";r=0;t=2"),
        ("RateLimit-Policy", "\"default\";q=10;w=60"),
    ];
    let server = first_then_ok(status(200, &hint, 0), 0);
    let mut config = Config::default();
    config.retry.hold_spread = 0.0;
    let mut world = World::new(engine(config), server);
    world.start(CallSpec::get(HOST));
    world.step();
    world.start(CallSpec::get(HOST));
    world.drive_bounded(1000);
    let times = attempt_times(&world);
    assert_eq!(
        times,
        vec![(0, 1), (2000, 2)],
        "the second call waits for the quota reset"
    );
}

#[test]
fn half_open_admits_a_bounded_number_of_probes() {
    let mut config = Config::default();
    config.breaker = BreakerConfig {
        consecutive_failures: 2,
        failure_rate: None,
        open_ms: 1000,
        half_open_probes: 2,
        ..BreakerConfig::default()
    };
    config.retry.max_attempts = 1;
    // Failures until 500 ms, slow successes after.
    let server = |_: &SimRequest, now: Instant, _: UnixTime| {
        if now < ms(500) {
            status(500, &[], 1)
        } else {
            ok(100)
        }
    };
    let mut world = World::new(engine(config), server);
    world.start(CallSpec::get(HOST));
    world.start(CallSpec::get(HOST));
    world.drive_bounded(100);
    world.run_until(ms(1100), 100);
    for _ in 0..10 {
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(1000);
    let probes = world
        .trace
        .iter()
        .filter(|e| matches!(e.kind, EventKind::AttemptStarted { probe: true, .. }))
        .count();
    assert_eq!(probes, 2);
    let busy = world
        .results
        .iter()
        .flatten()
        .filter(|r| matches!(r, CallResult::Failed { failure, .. } if failure.why == Why::BreakerProbesBusy))
        .count();
    assert_eq!(busy, 8, "everyone else fails fast while the probes are out");
    assert!(world
        .trace
        .iter()
        .any(|e| matches!(e.kind, EventKind::BreakerClosed { .. })));
    // Closed again: the next call goes straight through.
    world.start(CallSpec::get(HOST));
    world.drive_bounded(100);
    assert!(matches!(
        world.results.last(),
        Some(Some(CallResult::Done { status: 200, .. }))
    ));
}

#[test]
fn cancelling_a_probe_frees_its_slot() {
    let mut config = Config::default();
    config.breaker.consecutive_failures = 1;
    config.breaker.failure_rate = None;
    config.breaker.open_ms = 100;
    config.retry.max_attempts = 1;
    let mut e = engine(config);
    let id = e.start(CallSpec::get(HOST), ms(0));
    let _ = e.poll_action();
    e.handle(
        id,
        resile_core::Outcome::Transport(resile_core::TransportError::Connect),
        ms(1),
    );
    while e.poll_action().is_some() {}
    let probe = e.start(CallSpec::get(HOST), ms(200));
    assert!(matches!(
        e.poll_action(),
        Some(resile_core::Action::Send { .. })
    ));
    let refused = e.start(CallSpec::get(HOST), ms(201));
    assert!(
        matches!(e.poll_action(), Some(resile_core::Action::Fail { call, failure }) if call == refused && failure.why == Why::BreakerProbesBusy)
    );
    e.cancel(probe, ms(202));
    assert!(
        matches!(e.poll_action(), Some(resile_core::Action::Fail { failure, .. }) if failure.why == Why::Cancelled)
    );
    e.start(CallSpec::get(HOST), ms(203));
    assert!(
        matches!(e.poll_action(), Some(resile_core::Action::Send { .. })),
        "the slot is free again"
    );
}

#[test]
fn idempotency_key_and_request_id_are_stable_across_attempts() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let server = move |r: &SimRequest, _: Instant, _: UnixTime| {
        s.borrow_mut().push((r.label, r.attempt, r.idempotency_key));
        if r.attempt < 3 {
            SimReply::Transport {
                error: resile_core::TransportError::Reset,
                latency: Duration::from_millis(1),
            }
        } else {
            ok(1)
        }
    };
    let mut config = Config::default();
    config.breaker.enabled = false;
    let mut world = World::new(engine(config), server);
    world.start(CallSpec::post(HOST));
    world.start(CallSpec::post(HOST));
    world.start(CallSpec::get(HOST));
    world.drive_bounded(1000);
    let seen = seen.borrow();
    let keys = |label: usize| {
        seen.iter()
            .filter(|(l, _, _)| *l == label)
            .map(|(_, _, k)| *k)
            .collect::<Vec<_>>()
    };
    let (a, b, g) = (keys(0), keys(1), keys(2));
    assert_eq!(a.len(), 3);
    assert!(
        a[0].is_some() && a.iter().all(|k| *k == a[0]),
        "one key per call: {a:?}"
    );
    assert_ne!(a[0], b[0], "different calls, different keys");
    assert!(g.iter().all(Option::is_none), "a GET needs no key");
}

#[test]
fn request_id_is_reused_on_every_attempt() {
    for mode in [RequestIds::Generate, RequestIds::Off] {
        let mut config = Config::default();
        config.request_id = mode;
        let request_ids = request_ids_of_three_attempts(config);
        assert_eq!(request_ids.len(), 3);
        assert!(request_ids.iter().all(|r| *r == request_ids[0]));
        match mode {
            RequestIds::Generate => assert!(request_ids[0].is_some()),
            RequestIds::Off => assert_eq!(request_ids[0], None, "off: no id at all"),
        }
    }
}

fn request_ids_of_three_attempts(config: Config) -> Vec<Option<resile_core::Uuid>> {
    let mut e = engine(config);
    let id = e.start(CallSpec::get(HOST), ms(0));
    let mut request_ids = vec![];
    let mut now = ms(0);
    for _ in 0..3 {
        while let Some(a) = e.poll_action() {
            if let resile_core::Action::Send { headers, .. } = a {
                let request_id = headers.request_id;
                request_ids.push(request_id);
                e.handle(
                    id,
                    resile_core::Outcome::Transport(resile_core::TransportError::Connect),
                    now,
                );
            }
        }
        if let Some(t) = e.poll_timeout() {
            now = t;
            e.handle_timeout(now);
        }
    }
    request_ids
}

#[test]
fn attempt_timeout_is_shortened_to_the_deadline() {
    let mut config = Config::default();
    config.retry.attempt_timeout_ms = Some(1000);
    config.retry.deadline_ms = Some(1500);
    config.backoff.jitter = Jitter::None;
    config.backoff.base_ms = 100;
    let mut e = engine(config);
    let id = e.start(CallSpec::get(HOST), ms(0));
    let Some(resile_core::Action::Send { timeout, .. }) = e.poll_action() else {
        panic!("send")
    };
    assert_eq!(timeout, Some(Duration::from_millis(1000)));
    e.handle(
        id,
        resile_core::Outcome::Transport(resile_core::TransportError::Timeout),
        ms(1000),
    );
    let wake = e.poll_timeout().expect("retry scheduled");
    assert_eq!(wake, ms(1100));
    e.handle_timeout(wake);
    let Some(resile_core::Action::Send {
        timeout, attempt, ..
    }) = e.poll_action()
    else {
        panic!("send")
    };
    assert_eq!((attempt, timeout), (2, Some(Duration::from_millis(400))));
}

#[test]
fn non_replayable_bodies_are_never_retried() {
    let mut e = engine(Config::default());
    let id = e.start(CallSpec::new(Method::Put, HOST).not_replayable(), ms(0));
    let _ = e.poll_action();
    e.handle(
        id,
        resile_core::Outcome::Transport(resile_core::TransportError::Reset),
        ms(5),
    );
    let Some(resile_core::Action::Fail { failure, .. }) = e.poll_action() else {
        panic!("fail")
    };
    assert_eq!(failure.why, Why::BodyNotReplayable);
    assert_eq!(failure.processed, resile_core::Processed::Maybe);
}

#[test]
fn provided_keys_make_posts_retryable() {
    let mut e = engine(Config::default());
    let id = e.start(
        CallSpec::post(HOST).idempotency(Idempotency::Provided),
        ms(0),
    );
    let Some(resile_core::Action::Send { headers, .. }) = e.poll_action() else {
        panic!("send")
    };
    assert_eq!(headers.idempotency_key, None, "the caller sends its own");
    e.handle(
        id,
        resile_core::Outcome::Transport(resile_core::TransportError::Timeout),
        ms(5),
    );
    assert_eq!(e.poll_action(), None, "a retry is scheduled, not a failure");
    assert!(e.poll_timeout().is_some());
}

#[test]
fn client_rate_limit_spaces_attempts() {
    let mut config = Config::default();
    config.limit = Some(LimitConfig {
        per_second: 10.0,
        burst: 2,
    });
    let mut world = World::new(engine(config), |_: &SimRequest, _: Instant, _: UnixTime| {
        ok(1)
    });
    for _ in 0..6 {
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(1000);
    let times: Vec<u64> = attempt_times(&world).iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![0, 0, 100, 200, 300, 400]);
}

#[test]
fn host_table_is_bounded() {
    let mut config = Config::default();
    config.max_hosts = 4;
    let mut e = engine(config);
    for i in 0..100 {
        let host = format!("https://h{i}.test");
        let id = e.start(CallSpec::get(&host), ms(i));
        let _ = e.poll_action();
        e.handle(
            id,
            resile_core::Outcome::Response(resile_core::Response::new(
                200,
                &resile_core::headers::NoHeaders,
                UnixTime::EPOCH,
            )),
            ms(i),
        );
        while e.poll_action().is_some() {}
    }
    assert_eq!(e.hosts(ms(100)).len(), 4);
    // Four hosts busy: a fifth is refused rather than growing the table.
    for i in 0..4 {
        e.start(CallSpec::get(&format!("https://busy{i}.test")), ms(200));
    }
    while e.poll_action().is_some() {}
    e.start(CallSpec::get("https://fifth.test"), ms(201));
    let Some(resile_core::Action::Fail { failure, .. }) = e.poll_action() else {
        panic!("refused")
    };
    assert_eq!(failure.why, Why::TooManyHosts);
}

#[test]
fn hint_unreadable_is_reported_and_backoff_used() {
    let mut e = engine(Config::default());
    let id = e.start(CallSpec::get(HOST), ms(0));
    let _ = e.poll_action();
    let mut r = resile_core::Response::new(429, &resile_core::headers::NoHeaders, UnixTime::EPOCH);
    r.hints_may_be_hidden = true;
    e.handle(id, resile_core::Outcome::Response(r), ms(1));
    let mut saw_hint = false;
    let mut saw_backoff = false;
    while let Some(ev) = e.poll_event() {
        saw_hint |= matches!(ev.kind, EventKind::HintUnreadable { .. });
        saw_backoff |= matches!(
            ev.kind,
            EventKind::RetryScheduled {
                why: Why::Backoff,
                ..
            }
        );
    }
    assert!(saw_hint && saw_backoff);
}

#[test]
fn events_serialize_as_json_lines() {
    let mut world = World::new(
        engine(Config::default()),
        |_: &SimRequest, _: Instant, _: UnixTime| status(503, &[("Retry-After", "1")], 3),
    );
    world.start(CallSpec::post(HOST));
    world.drive_bounded(100);
    for e in &world.trace {
        let line = serde_json::to_string(e).expect("serializable");
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert!(v["event"].is_string() && v["at_ms"].is_number(), "{line}");
        assert!(!line.contains('\n'));
    }
    assert!(world
        .trace
        .iter()
        .any(|e| matches!(e.kind, EventKind::CallFailed { .. })));
}

#[test]
fn events_describe_themselves_with_their_reason() {
    let mut world = World::new(
        engine(Config::default()),
        |_: &SimRequest, _: Instant, _: UnixTime| status(429, &[("Retry-After", "2")], 3),
    );
    world.start(CallSpec::get(HOST).max_attempts(2));
    world.drive_bounded(100);
    let lines: Vec<String> = world.trace.iter().map(|e| e.describe()).collect();
    assert!(
        lines.iter().any(|l| l
            .contains("#1 retry 2 in 2000 ms: the server said how long to wait in Retry-After")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(
            |l| l.contains("#1 failed after 2 attempt(s)") && l.contains("all of its attempts")
        ),
        "{lines:#?}"
    );
    for e in &world.trace {
        if let Some(call) = e.kind.call() {
            assert_eq!(call.number(), 1);
        }
    }
}

/// A token-bucket server (20/s, burst 20) that says so in `RateLimit-Policy`: after the first
/// wave of 429s the engine paces itself and stops walking into the limit.
#[test]
fn learned_limits_pace_calls_before_the_server_refuses() {
    let bucket = Rc::new(RefCell::new((20.0f64, Instant::ZERO)));
    let refusals = Rc::new(RefCell::new(Vec::new()));
    let (b, r) = (bucket.clone(), refusals.clone());
    let server = move |_: &SimRequest, now: Instant, _: UnixTime| {
        let mut bucket = b.borrow_mut();
        let elapsed = (now - bucket.1).as_secs_f64();
        bucket.0 = (bucket.0 + elapsed * 20.0).min(20.0);
        bucket.1 = now;
        let policy = ("RateLimit-Policy", "\"default\";q=20;w=1");
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            let remaining = format!("\"default\";r={};t=1", bucket.0 as u64);
            status(200, &[policy, ("RateLimit", remaining.as_str())], 2)
        } else {
            r.borrow_mut().push(now.as_millis());
            status(
                429,
                &[
                    policy,
                    ("RateLimit", "\"default\";r=0;t=1"),
                    ("Retry-After", "1"),
                ],
                2,
            )
        }
    };
    let mut world = World::new(engine(Config::default()), server);
    for _ in 0..100 {
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(100_000);
    let bad: Vec<_> = world
        .results
        .iter()
        .filter(|r| !matches!(r, Some(CallResult::Done { status: 200, .. })))
        .collect();
    assert!(
        bad.is_empty(),
        "every call succeeds: {} did not, e.g. {:?}; refusals at {:?}",
        bad.len(),
        bad.first(),
        refusals.borrow()
    );
    let late = refusals.borrow().iter().filter(|t| **t > 10).count();
    assert_eq!(
        late,
        0,
        "after the first wave the engine paces itself: {:?}",
        refusals.borrow()
    );
    assert!(world
        .trace
        .iter()
        .any(|e| matches!(e.kind, EventKind::LimitLearned { burst: 20, .. })));
    let finished = world
        .results
        .iter()
        .flatten()
        .map(|r| r.at().as_millis())
        .max()
        .unwrap();
    assert!(
        finished <= 5_100,
        "100 calls at 20/s after a 1 s hold: done by ~5 s, took {finished} ms"
    );
}

#[test]
fn a_learned_limit_lapses_when_the_host_stops_sending_it() {
    let hint = [
        ("RateLimit-Policy", "\"default\";q=1;w=10"),
        ("RateLimit", "\"default\";r=0;t=10"),
    ];
    let server = first_then_ok(status(200, &hint, 0), 0);
    let mut config = Config::default();
    config.retry.hold_spread = 0.0;
    let mut world = World::new(engine(config), server);
    world.start(CallSpec::get(HOST));
    world.drive_bounded(100);
    // Right after the hint: paced (the quota of 1 per 10 s is used up, reset in 10 s).
    world.start(CallSpec::get(HOST));
    world.drive_bounded(100);
    let times = attempt_times(&world);
    assert_eq!(times[1].0, 10_000, "{times:?}");
    // 20 s later the host has not repeated the policy: the limit has lapsed.
    world.run_until(ms(40_000), 100);
    for _ in 0..5 {
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(100);
    let times = attempt_times(&world);
    assert!(times[2..].iter().all(|(t, _)| *t == 40_000), "{times:?}");
}

#[test]
fn a_401_on_a_one_shot_body_refreshes_the_token_but_is_the_answer() {
    let mut e = engine(Config::default());
    let id = e.start(
        CallSpec::new(Method::Put, HOST)
            .not_replayable()
            .with_token(),
        ms(0),
    );
    assert!(matches!(
        e.poll_action(),
        Some(resile_core::Action::FetchToken { .. })
    ));
    e.token_fetched(None, ms(1));
    let Some(resile_core::Action::Send { headers, .. }) = e.poll_action() else {
        panic!("send with token 1")
    };
    assert_eq!(headers.token, Some(1), "send with token 1");
    e.handle(
        id,
        resile_core::Outcome::Response(resile_core::Response::new(
            401,
            &resile_core::headers::NoHeaders,
            UnixTime::EPOCH,
        )),
        ms(2),
    );
    let actions: Vec<_> = std::iter::from_fn(|| e.poll_action()).collect();
    assert!(
        actions.iter().any(|a| matches!(
            a,
            resile_core::Action::FetchToken {
                why: Why::TokenRejected
            }
        )),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| matches!(
            a,
            resile_core::Action::Done {
                status: 401,
                attempts: 1,
                ..
            }
        )),
        "{actions:?}"
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, resile_core::Action::Send { .. })),
        "{actions:?}"
    );
}

#[test]
fn an_outage_with_retry_after_still_spends_the_budget() {
    let mut config = Config::default();
    config.breaker.enabled = false;
    config.retry.deadline_ms = None;
    let server = |_: &SimRequest, _: Instant, _: UnixTime| status(503, &[("Retry-After", "1")], 1);
    let mut world = World::new(engine(config), server).without_trace();
    for i in 0..1000u64 {
        world.run_until(ms(i * 20), 100_000);
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(1_000_000);
    let bound = budget_bound(1000, &world.now);
    assert!(
        world.attempts <= bound,
        "{} attempts for 1000 calls, over {bound}",
        world.attempts
    );
}

#[test]
fn calls_waiting_out_a_hold_wake_spread_after_it_never_before() {
    let server = first_then_ok(status(429, &[("Retry-After", "2")], 0), 1);
    let mut world = World::new(engine(Config::default()), server);
    world.start(CallSpec::get(HOST));
    world.step();
    for _ in 0..50 {
        world.start(CallSpec::get(HOST));
    }
    world.drive_bounded(10_000);
    let waiters: Vec<u64> = attempt_times(&world)
        .iter()
        .filter(|(_, c)| *c > 1)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(waiters.len(), 50);
    // Held until 2000 ms; a 10% spread of the 2 s wait: [2000, 2200).
    assert!(
        waiters.iter().all(|t| (2000..2200).contains(t)),
        "{waiters:?}"
    );
    let distinct: std::collections::BTreeSet<_> = waiters.iter().collect();
    assert!(
        distinct.len() > 25,
        "spread out, not one instant: {waiters:?}"
    );
}

/// The events of a call with a retry, polled one by one (`poll_event`) or lent in one pass
/// (`drain_events`), from two engines fed the same inputs.
fn events_of_a_retried_call(drain: bool) -> Vec<resile_core::Event> {
    use resile_core::headers::NoHeaders;
    use resile_core::{Action, Outcome, Response};
    let wall = UnixTime::from_secs(1_700_000_000);
    let mut e = Engine::new(Config::default(), 7, Instant::ZERO).unwrap();
    let mut seen = Vec::new();
    let mut collect = |e: &mut Engine| {
        if drain {
            e.drain_events(|ev| seen.push(ev.clone()));
        } else {
            seen.extend(core::iter::from_fn(|| e.poll_event()));
        }
    };
    let id = e.start(CallSpec::get(HOST), Instant::ZERO);
    let mut now = Instant::ZERO;
    for status in [503, 200] {
        assert!(matches!(e.poll_action(), Some(Action::Send { .. })));
        e.handle(
            id,
            Outcome::Response(Response::new(status, &NoHeaders, wall)),
            now,
        );
        collect(&mut e);
        if let Some(wake) = e.poll_timeout().filter(|_| status == 503) {
            now = wake;
            e.handle_timeout(now);
        }
    }
    assert!(matches!(
        e.poll_action(),
        Some(Action::Done {
            status: 200,
            attempts: 2,
            ..
        })
    ));
    collect(&mut e);
    assert!(e.poll_event().is_none(), "a drain leaves nothing behind");
    seen
}

#[test]
fn drain_events_lends_what_poll_event_hands_out_in_the_same_order() {
    let polled = events_of_a_retried_call(false);
    let drained = events_of_a_retried_call(true);
    assert!(drained.len() >= 6, "{drained:?}");
    assert!(matches!(drained[0].kind, EventKind::CallStarted { .. }));
    assert!(drained
        .iter()
        .any(|e| matches!(e.kind, EventKind::RetryScheduled { .. })));
    assert!(matches!(
        drained.last().map(|e| &e.kind),
        Some(EventKind::CallSucceeded { .. })
    ));
    assert_eq!(drained, polled);
}

#[test]
fn what_another_attempt_would_meet_the_same_way_is_not_retried() {
    use resile_core::{Processed, TransportError};
    // (the failure, the reason the call fails with, whether the server may have acted)
    let table = [
        (TransportError::Tls, Why::TlsFailed, Processed::Never),
        (
            TransportError::Unreadable,
            Why::Unreadable,
            Processed::Maybe,
        ),
    ];
    for (error, why, processed) in table {
        let server = first_then_ok(
            SimReply::Transport {
                error,
                latency: Duration::from_millis(5),
            },
            5,
        );
        let mut world = World::new(engine(Config::default()), server);
        world.start(CallSpec::get(HOST));
        world.drive_bounded(100);
        match world.results.last() {
            Some(Some(CallResult::Failed { failure, .. })) => {
                assert_eq!(failure.attempts, 1, "{error:?}");
                assert_eq!((failure.why, failure.processed), (why, processed));
                assert!(!failure.is_retryable(), "{error:?}");
            }
            other => panic!("{error:?}: {other:?}"),
        }
    }
    // A connection that fails is still retried (the server's next answer is a 200).
    let server = first_then_ok(
        SimReply::Transport {
            error: TransportError::Connect,
            latency: Duration::from_millis(5),
        },
        5,
    );
    let mut world = World::new(engine(Config::default()), server);
    world.start(CallSpec::get(HOST));
    world.drive_bounded(100);
    assert!(matches!(
        world.results.last(),
        Some(Some(CallResult::Done {
            status: 200,
            attempts: 2,
            ..
        }))
    ));
}

/// A server that refuses the first `refusals` attempts before processing them (an HTTP/2
/// `REFUSED_STREAM` or a stream past a graceful `GOAWAY`), then answers 200.
fn refusing(refusals: usize) -> impl FnMut(&SimRequest, Instant, UnixTime) -> SimReply {
    let mut left = refusals;
    move |_: &SimRequest, _: Instant, _: UnixTime| {
        if left == 0 {
            return ok(5);
        }
        left -= 1;
        SimReply::Transport {
            error: resile_core::TransportError::Refused,
            latency: Duration::from_millis(5),
        }
    }
}

#[test]
fn a_refusal_before_processing_is_sent_again_at_once_once_free_of_attempts_and_budget() {
    use resile_core::Processed;
    // One attempt allowed, a budget that allows no retry, a breaker that opens on one failure:
    // the first refusal of each call is still sent again, at once.
    let mut config = Config::default();
    config.retry.max_attempts = 1;
    config.budget.ratio = 0.0;
    config.budget.reserve = 0;
    config.breaker.consecutive_failures = 1;
    let mut world = World::new(engine(config.clone()), refusing(1));
    world.start(CallSpec::new(Method::Post, HOST));
    world.drive_bounded(100);
    assert!(
        matches!(
            world.results.last(),
            Some(Some(CallResult::Done {
                status: 200,
                attempts: 2,
                ..
            }))
        ),
        "{:?}",
        world.results
    );
    let resends: Vec<_> = world
        .trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::RetryScheduled { delay, why, .. } => Some((e.at.as_millis(), delay, why)),
            _ => None,
        })
        .collect();
    assert_eq!(resends, [(5, Duration::ZERO, Why::RefusedUnprocessed)]);
    assert_eq!(attempt_times(&world), [(0, 1), (5, 1)]);
    assert_eq!(world.engine.stats().budget_refusals, 0);
    assert!(
        world
            .trace
            .iter()
            .all(|e| !matches!(e.kind, EventKind::BreakerOpened { .. })),
        "a refusal is not a failure of the host"
    );

    // A second refusal of the same call is an ordinary retry: here the attempts are used up,
    // and the call fails saying nothing was processed.
    let mut world = World::new(engine(config), refusing(2));
    world.start(CallSpec::new(Method::Post, HOST));
    world.drive_bounded(100);
    match world.results.last() {
        Some(Some(CallResult::Failed { failure, .. })) => {
            assert_eq!(failure.attempts, 2);
            assert_eq!(failure.why, Why::MaxAttempts);
            assert_eq!(failure.processed, Processed::Never);
        }
        other => panic!("{other:?}"),
    }

    // With attempts and budget to spare, a second refusal waits its backoff like any retry.
    let mut world = World::new(engine(Config::default()), refusing(2));
    world.start(CallSpec::get(HOST));
    world.drive_bounded(100);
    let whys: Vec<_> = world
        .trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::RetryScheduled { delay, why, .. } => Some((delay.is_zero(), why)),
            _ => None,
        })
        .collect();
    assert_eq!(
        whys,
        [(true, Why::RefusedUnprocessed), (false, Why::Backoff)]
    );
    assert!(matches!(
        world.results.last(),
        Some(Some(CallResult::Done { attempts: 3, .. }))
    ));

    // And a budget that allows no retry does not stop a later refusal's retry either: nothing
    // was processed, so it is free (it still counts in the call's attempts and waits).
    let mut config = Config::default();
    config.budget.ratio = 0.0;
    config.budget.reserve = 0;
    let mut world = World::new(engine(config), refusing(3));
    world.start(CallSpec::get(HOST));
    world.drive_bounded(100);
    assert!(
        matches!(
            world.results.last(),
            Some(Some(CallResult::Done { attempts: 4, .. }))
        ),
        "{:?}",
        world.results
    );
    assert_eq!(world.engine.stats().budget_refusals, 0);
}
