//! The adaptive client rate and the adaptive concurrency limit, driven through the engine on the
//! virtual clock and written from the rules: off until configured (the rate: until the first
//! throttle), waits with their reason, never past a deadline, and events when they change (that
//! they allocate nothing per decision is in `alloc.rs`, beside the engine's other such tests).

use std::cell::Cell;
use std::time::Duration;

use resile_core::config::{AdaptiveConcurrency, AimdConfig, Gradient2Config, Jitter};
use resile_core::sim::{CallResult, SimReply, SimRequest, World};
use resile_core::{CallSpec, Config, Engine, EventKind, Instant, Preset, UnixTime, Why};

const HOST: &str = "https://api.test";

fn reply(status: u16, latency_ms: u64) -> SimReply {
    SimReply::Status {
        status,
        headers: vec![],
        body: None,
        latency: Duration::from_millis(latency_ms),
    }
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// Adaptive rate on; backoff without jitter, so the waits are exact.
fn rate_config() -> Config {
    let mut c = Config::default();
    c.adaptive_rate.enabled = true;
    c.backoff.jitter = Jitter::None;
    c.backoff.base_ms = 100;
    c
}

fn world<S>(config: Config, server: S) -> World<S>
where
    S: FnMut(&SimRequest, Instant, UnixTime) -> SimReply,
{
    World::new(Engine::new(config, 7, Instant::ZERO).unwrap(), server)
}

/// A server whose first answer is a 429 and every later one a 200, each after 10 ms.
fn throttle_once() -> impl FnMut(&SimRequest, Instant, UnixTime) -> SimReply {
    let mut first = true;
    move |_: &SimRequest, _: Instant, _: UnixTime| {
        reply(if std::mem::take(&mut first) { 429 } else { 200 }, 10)
    }
}

fn waits<S>(w: &World<S>, why: Why) -> usize {
    w.trace
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Waiting { why: w, .. } if w == why))
        .count()
}

fn rate_events<S>(w: &World<S>) -> Vec<(u64, f64, f64, Why)> {
    w.trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::AdaptiveRateChanged {
                per_second,
                measured,
                why,
                ..
            } => Some((e.at.as_millis(), per_second, measured, why)),
            _ => None,
        })
        .collect()
}

fn attempt_times<S>(w: &World<S>) -> Vec<u64> {
    w.trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::AttemptStarted { .. } => Some(e.at.as_millis()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_rate_is_off_until_the_host_throttles() {
    let mut w = world(rate_config(), |_: &SimRequest, _: Instant, _: UnixTime| {
        reply(200, 5)
    });
    for _ in 0..50 {
        w.start(CallSpec::get(HOST));
    }
    w.drive_bounded(10_000);
    assert_eq!(attempt_times(&w), vec![0; 50], "all 50 go at once");
    assert_eq!(waits(&w, Why::AdaptiveRate), 0);
    assert!(rate_events(&w).is_empty());
}

#[test]
fn a_throttle_turns_the_bucket_on_and_the_retry_waits_for_its_token() {
    // 429 at 10 ms; the measured rate is 0 (no half-second bucket closed yet), so the fill rate
    // is its floor, 0.5/s, and the bucket holds 0.05 tokens when the 100 ms backoff ends: the
    // retry waits (1 − 0.05) / 0.5 = 1.9 s more, to 2.01 s.
    let mut w = world(rate_config(), throttle_once());
    w.start(CallSpec::get(HOST));
    w.drive_bounded(1_000);
    assert_eq!(attempt_times(&w), vec![0, 2_010]);
    assert_eq!(waits(&w, Why::AdaptiveRate), 1);
    let events = rate_events(&w);
    assert_eq!(events[0], (10, 0.5, 0.0, Why::Throttled));
    // The success at 2.02 s: measured 0.8 · 2 / 2 s = 0.8; CUBIC gives more than 2·measured, so
    // the fill rate is 1.6 — moved by more than a tenth, so reported.
    let (at, fill, measured, why) = events[1];
    assert_eq!((at, why), (2_020, Why::RateRecovering));
    assert!(
        (measured - 0.8).abs() < 1e-9 && (fill - 1.6).abs() < 1e-9,
        "{events:?}"
    );
    assert!(matches!(
        w.results[0],
        Some(CallResult::Done { status: 200, .. })
    ));
}

#[test]
fn a_throttle_backs_the_rate_off_to_0_7_of_the_measured_rate_and_paces_sends() {
    // 20 calls a second for 5 s; the server throttles the answers sent between 2 s and 2.2 s.
    let server = |_: &SimRequest, now: Instant, _: UnixTime| {
        let t = now.as_millis();
        if (2_000..2_200).contains(&t) {
            reply(429, 5)
        } else {
            reply(200, 5)
        }
    };
    let mut w = world(rate_config(), server);
    for i in 0..100 {
        w.run_until(ms(i * 50), 100_000);
        w.start(CallSpec::get(HOST));
    }
    w.drive_bounded(100_000);
    let events = rate_events(&w);
    let (_, fill, measured, why) = events[0];
    assert_eq!(why, Why::Throttled);
    assert!((15.0..=25.0).contains(&measured), "measured {measured}");
    assert!(
        (fill - 0.7 * measured).abs() < 1e-9,
        "×0.7: {fill} vs {measured}"
    );
    // Later throttles take 0.7 of min(measured, fill) each.
    for pair in events.windows(2) {
        let ((_, before, _, _), (_, after, m, w)) = (pair[0], pair[1]);
        if w == Why::Throttled {
            assert!((after - 0.7 * m.min(before)).abs() < 1e-6 || after >= 0.5);
        }
    }
    // The bucket turned on: some calls waited for a token, and in no second after the first
    // throttle did more attempts start than the bucket could give (its capacity, at most the
    // fill rate, plus one fill rate of tokens, plus the rounding of a boundary).
    assert!(waits(&w, Why::AdaptiveRate) > 0);
    let times = attempt_times(&w);
    let max_fill = events.iter().map(|e| e.1).fold(0.0, f64::max);
    for start in (2_300..5_000).step_by(100) {
        let n = times
            .iter()
            .filter(|t| (start..start + 1_000).contains(*t))
            .count();
        assert!(
            n as f64 <= 2.0 * max_fill.max(1.0) + 1.0,
            "{n} attempts in the second from {start} ms, fill at most {max_fill}"
        );
    }
    // And every call still finished.
    assert!(w.results.iter().all(|r| r.is_some()));
}

#[test]
fn a_token_wait_past_the_deadline_fails_the_call_at_once() {
    let mut w = world(rate_config(), throttle_once());
    let mut one = CallSpec::get(HOST);
    one.max_attempts = Some(1);
    w.start(one);
    w.drive_bounded(100);
    // The bucket is on at 0.5/s and empty; a call with 500 ms to live cannot get a token.
    let label = w.start(CallSpec::get(HOST).deadline(Duration::from_millis(500)));
    w.drive_bounded(100);
    match &w.results[label] {
        Some(CallResult::Failed { failure, .. }) => {
            assert_eq!(failure.why, Why::DeadlineWouldPass);
            assert_eq!(failure.attempts, 0);
            assert_eq!(failure.retry_at, Some(ms(2_010)));
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn the_aws_adaptive_preset_is_standard_mode_with_the_adaptive_rate() {
    let adaptive = Config::preset(Preset::AwsAdaptive);
    let mut standard = Config::preset(Preset::AwsStandard);
    assert!(adaptive.adaptive_rate.enabled && !standard.adaptive_rate.enabled);
    standard.adaptive_rate.enabled = true;
    standard.preset = Some(Preset::AwsAdaptive);
    assert_eq!(adaptive, standard);
    assert_eq!(
        Config::from_json(r#"{"preset":"aws-adaptive"}"#).unwrap(),
        adaptive
    );
    assert_eq!(Preset::AwsAdaptive.quota(), Preset::AwsStandard.quota());
}

fn aimd(initial: u32, min: u32, max: u32) -> Config {
    let mut c = Config::default();
    c.concurrency.adaptive = Some(AdaptiveConcurrency::Aimd(AimdConfig {
        initial_limit: initial,
        min_limit: min,
        max_limit: max,
        ..AimdConfig::default()
    }));
    c.budget.enabled = false;
    c.breaker.enabled = false;
    c
}

/// The most attempts in flight at any instant, from the trace.
fn peak_in_flight<S>(w: &World<S>) -> u32 {
    let (mut now, mut peak) = (0i64, 0i64);
    for e in &w.trace {
        match e.kind {
            EventKind::AttemptStarted { .. } => now += 1,
            EventKind::AttemptFinished { .. } => now -= 1,
            _ => {}
        }
        peak = peak.max(now);
    }
    peak as u32
}

fn limit_events<S>(w: &World<S>) -> Vec<(u32, u32, Why)> {
    w.trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ConcurrencyLimitChanged {
                limit,
                previous,
                why,
                ..
            } => Some((previous, limit, why)),
            _ => None,
        })
        .collect()
}

#[test]
fn aimd_replaces_the_fixed_bound_grows_by_one_and_backs_off_on_drops() {
    // 20 calls at once, 100 ms each; the 7th answer is a 503 (a drop).
    let mut n = 0;
    let server = move |_: &SimRequest, _: Instant, _: UnixTime| {
        n += 1;
        reply(if n == 7 { 503 } else { 200 }, 100)
    };
    let mut config = aimd(2, 1, 4);
    config.concurrency.max_in_flight_per_host = Some(100);
    let mut w = world(config, server);
    for _ in 0..20 {
        w.start(CallSpec::get(HOST));
    }
    w.drive_bounded(10_000);
    let queued = w
        .trace
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Queued {
                    why: Why::AdaptiveConcurrency,
                    ..
                }
            )
        })
        .count();
    // Two go at once; the adaptive limit (not the fixed 100) queues the other 18 first attempts
    // and, at 0.4 s with all four slots busy, the 503's retry.
    assert_eq!(queued, 19);
    let events = limit_events(&w);
    // Two successes with 1 and 2 in flight (2·in_flight ≥ limit): 2 → 3 → 4; the max holds at
    // 4; the drop takes it to ⌊4 · 0.9⌋ = 3; successes bring it back to 4.
    assert_eq!(events[0], (2, 3, Why::Success));
    assert_eq!(events[1], (3, 4, Why::Success));
    assert_eq!(events[2], (4, 3, Why::AttemptDropped));
    assert_eq!(events[3], (3, 4, Why::Success));
    assert_eq!(events.len(), 4);
    assert_eq!(peak_in_flight(&w), 4);
    assert!(w.results.iter().all(|r| r.is_some()));
}

#[test]
fn gradient2_grows_while_latency_holds_and_sheds_when_it_climbs() {
    // Latency is 20 ms up to 12 attempts in flight, then grows with the queue: 20 ms per
    // attempt over 12 (a server with 12 workers). Sampling windows of 100 ms (Netflix's
    // shortest), so the limit moves up to ten times a second.
    let mut config = Config::default();
    config.concurrency.adaptive = Some(AdaptiveConcurrency::Gradient2(Gradient2Config {
        initial_limit: 4,
        min_limit: 1,
        max_limit: 64,
        min_window_ms: 100,
        max_window_ms: 100,
        ..Gradient2Config::default()
    }));
    config.retry.deadline_ms = None;
    config.concurrency.max_queue_ms = None;
    let in_flight = std::rc::Rc::new(Cell::new(0u64));
    let seen = in_flight.clone();
    let server = move |_: &SimRequest, _: Instant, _: UnixTime| {
        let n = seen.get();
        reply(200, 20 + 20 * n.saturating_sub(12))
    };
    let mut w = world(config, server);
    for _ in 0..3_000 {
        w.start(CallSpec::get(HOST));
    }
    let mut peak = 0;
    for _ in 0..1_000_000 {
        // The server sees how many attempts are out when each arrives.
        in_flight.set(w.engine.hosts(w.now)[0].in_flight.into());
        peak = peak.max(in_flight.get());
        if !w.step() {
            break;
        }
    }
    assert!(w.results.iter().all(|r| r.is_some()), "every call ended");
    let events = limit_events(&w);
    assert!(
        events.first().is_some_and(|e| e.1 > 4),
        "it grew: {events:?}"
    );
    assert!(
        events.iter().any(|(p, l, _)| l < p),
        "and shrank once latency climbed"
    );
    assert!(events.iter().all(|(_, l, _)| (1..=64).contains(l)));
    let top = events.iter().map(|e| e.1).max().unwrap();
    assert!(top < 64, "latency kept it off the maximum: {top}");
    assert!(
        peak <= u64::from(top),
        "in flight {peak} never above the limit {top}"
    );
}

#[test]
fn a_scenario_holds_its_minimum_waits() {
    let scenario = |replies: &str| {
        resile_core::sim::Scenario::from_json(&format!(
            r#"{{"name":"t","config":{{"adaptive_rate":{{"enabled":true}}}},
                "calls":[{{"method":"GET"}}],"replies":{replies},
                "expect":{{"min_waits":{{"adaptive_rate":1}}}}}}"#
        ))
        .unwrap()
    };
    let never = resile_core::sim::run_scenario(&scenario(r#"[{"status":200}]"#)).unwrap();
    assert_eq!(
        never.mismatches,
        ["waits (adaptive_rate): expected at least 1, got 0"]
    );
    let throttled =
        resile_core::sim::run_scenario(&scenario(r#"[{"status":429},{"status":200}]"#)).unwrap();
    assert!(
        throttled.mismatches.is_empty(),
        "{:?}",
        throttled.mismatches
    );
}
