//! The seam, from the rules: the engine owns attempt deadlines (a lost outcome can never wedge
//! a host), returns what a cancelled call held, caps every server-asked wait, charges throttled
//! retries, queues over the concurrency limit, decides the attempt headers, and reports only
//! deadlines something waits for.
#![allow(clippy::field_reassign_with_default)]

use std::time::Duration;

use resile_core::config::LimitConfig;
use resile_core::{
    Action, Authorization, CallId, CallSpec, Config, Detail, Engine, EventKind, FailureKind, Hint,
    Instant, Outcome, Response, UnixTime, Why,
};

const HOST: &str = "https://api.test";

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn wall() -> UnixTime {
    UnixTime::from_secs(1_700_000_000)
}

/// Every action queued now.
fn actions(e: &mut Engine) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(a) = e.poll_action() {
        out.push(a);
    }
    out
}

/// The one action queued now.
fn only(e: &mut Engine) -> Action {
    let mut all = actions(e);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn events(e: &mut Engine) -> Vec<EventKind> {
    let mut out = Vec::new();
    while let Some(ev) = e.poll_event() {
        out.push(ev.kind);
    }
    out
}

fn answer(
    e: &mut Engine,
    call: CallId,
    attempt: u32,
    status: u16,
    headers: &[(&str, &str)],
    now: Instant,
) {
    let r = Response::new(status, &headers, wall());
    e.handle_attempt(call, attempt, Outcome::Response(r), now);
}

fn sends(list: &[Action]) -> Vec<(CallId, u32)> {
    list.iter()
        .filter_map(|a| match a {
            Action::Send { call, attempt, .. } => Some((*call, *attempt)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lost_outcome_is_timed_out_and_the_breaker_gets_its_next_probe() {
    let mut config = Config::default();
    config.retry.max_attempts = 1;
    config.retry.attempt_timeout_ms = Some(2_000);
    config.retry.deadline_ms = None;
    config.breaker.consecutive_failures = 1;
    config.breaker.open_ms = 1_000;
    let mut e = Engine::new(config, 1, Instant::ZERO).unwrap();

    let first = e.start(CallSpec::get(HOST), ms(0));
    let sent = sends(&actions(&mut e));
    answer(&mut e, first, sent[0].1, 503, &[], ms(10));
    actions(&mut e);

    // Half-open at 1 s: the probe goes out and its outcome never comes back.
    let probe = e.start(CallSpec::get(HOST), ms(1_010));
    assert_eq!(sends(&actions(&mut e)), vec![(probe, 1)]);
    let busy = e.start(CallSpec::get(HOST), ms(1_500));
    assert!(matches!(
        actions(&mut e).as_slice(),
        [Action::Fail { call, failure }] if *call == busy && failure.why == Why::BreakerProbesBusy
    ));

    // The engine keeps the probe's deadline and wakes for it, exactly then.
    assert_eq!(e.poll_timeout(), Some(ms(3_010)));
    e.handle_timeout(ms(3_010));
    let done = actions(&mut e);
    assert!(done.contains(&Action::Abort {
        call: probe,
        attempt: 1,
        why: Why::AttemptTimeout
    }));
    assert!(events(&mut e)
        .iter()
        .any(|k| matches!(k, EventKind::AttemptAborted { call, .. } if *call == probe)));
    // A late answer for the aborted attempt changes nothing.
    answer(&mut e, probe, 1, 200, &[], ms(3_020));
    assert!(actions(&mut e).is_empty());

    // The failed probe reopened the breaker (for twice as long); after that a new probe goes.
    let mut now = 3_020;
    let probed_at = loop {
        now += 100;
        let c = e.start(CallSpec::get(HOST), ms(now));
        if sends(&actions(&mut e)).contains(&(c, 1)) {
            break now;
        }
        assert!(now < 10_000, "no new probe by {now} ms");
    };
    // Within the attempt timeout plus the (grown) open time of the lost probe's start.
    assert!(
        probed_at <= 1_010 + 2_000 + 2_000 + 100,
        "probe at {probed_at} ms"
    );
}

#[test]
fn a_waiter_that_gives_up_returns_its_rate_limit_slot() {
    let mut config = Config::default();
    config.limit = Some(LimitConfig {
        per_second: 2.0,
        burst: 1,
    });
    config.retry.deadline_ms = None;
    let mut e = Engine::new(config, 2, Instant::ZERO).unwrap();
    let mut waiting: Vec<(CallId, u64)> = Vec::new();
    let mut sent = 0;
    // A caller every 100 ms that gives up after 1 s, for 60 s.
    for step in 0..600u64 {
        let now = step * 100;
        e.handle_timeout(ms(now));
        waiting.retain(|(call, started)| {
            if now - started >= 1_000 {
                e.cancel(*call, ms(now));
                false
            } else {
                true
            }
        });
        let c = e.start(CallSpec::get(HOST), ms(now));
        waiting.push((c, now));
        for (call, attempt) in sends(&actions(&mut e)) {
            sent += 1;
            waiting.retain(|(w, _)| *w != call);
            answer(&mut e, call, attempt, 200, &[], ms(now));
        }
        actions(&mut e);
    }
    // 2/s over 60 s is 120; returned slots keep the limiter serving instead of idling.
    assert!(
        (110..=121).contains(&sent),
        "{sent} requests went out in 60 s"
    );
}

#[test]
fn a_learned_limit_slower_than_the_cap_fails_naming_its_header() {
    let mut e = Engine::new(Config::default(), 3, Instant::ZERO).unwrap();
    let c = e.start(CallSpec::get(HOST), ms(0));
    let policy = [
        ("RateLimit-Policy", "\"h\";q=1;w=1000"),
        ("RateLimit", "\"h\";r=1;t=1000"),
    ];
    answer(&mut e, c, 1, 200, &policy, ms(5));
    actions(&mut e);
    // The one unit left goes; the one after it would wait 1000 s for the learned pace.
    let second = e.start(CallSpec::get(HOST), ms(10));
    assert_eq!(sends(&actions(&mut e)), vec![(second, 1)]);
    answer(&mut e, second, 1, 200, &[], ms(15));
    actions(&mut e);
    let next = e.start(CallSpec::get(HOST), ms(20));
    let Action::Fail { call, failure } = only(&mut e) else {
        panic!("the call fails at once")
    };
    assert_eq!(call, next);
    assert_eq!(failure.why, Why::RetryAfterTooLong);
    assert_eq!(failure.kind(), FailureKind::RateLimited);
    let (asked, cap, hint) = failure.asked_wait().expect("what was asked");
    assert!(asked > Duration::from_secs(900), "{asked:?}");
    assert_eq!(cap, Duration::from_secs(60));
    assert!(matches!(hint, Hint::RateLimit(_)), "{hint:?}");
    assert!(failure.retry_at.is_some());
}

#[test]
fn a_quota_hold_past_the_deadline_says_it_is_held_until_when_and_by_which_header() {
    let mut e = Engine::new(Config::default(), 4, Instant::ZERO).unwrap();
    let c = e.start(CallSpec::get(HOST), ms(0));
    let used_up = [
        ("RateLimit-Policy", "\"h\";q=10;w=3600"),
        ("RateLimit", "\"h\";r=0;t=3600"),
    ];
    answer(&mut e, c, 1, 200, &used_up, ms(5));
    actions(&mut e);
    let next = e.start(CallSpec::get(HOST), ms(10));
    let Action::Fail { call, failure } = only(&mut e) else {
        panic!("the call fails at once")
    };
    assert_eq!(call, next);
    assert_eq!(failure.why, Why::ServerQuotaHold);
    assert_eq!(failure.attempts, 0);
    // Held for the cap (60 s), not the hour asked; the header is named.
    assert_eq!(failure.retry_at, Some(ms(5) + Duration::from_secs(60)));
    assert!(matches!(
        failure.detail,
        Detail::HostHeld {
            hint: Hint::RateLimit(_)
        }
    ));
    assert!(failure.is_retryable());
}

#[test]
fn a_retry_after_over_the_cap_fails_the_call_but_still_holds_the_host() {
    let mut e = Engine::new(Config::default(), 5, Instant::ZERO).unwrap();
    let c = e.start(CallSpec::get(HOST), ms(0));
    actions(&mut e);
    answer(&mut e, c, 1, 429, &[("Retry-After", "3600")], ms(5));
    let Action::Fail { failure, .. } = only(&mut e) else {
        panic!("fails")
    };
    assert_eq!(failure.why, Why::RetryAfterTooLong);
    assert_eq!(
        failure.asked_wait().map(|w| w.0),
        Some(Duration::from_secs(3600))
    );
    assert!(events(&mut e).iter().any(|k| matches!(
        k,
        EventKind::HostHeld {
            why: Why::ServerRetryAfterHold,
            ..
        }
    )));
    // The next call does not walk into the same 429 a millisecond later.
    e.start(CallSpec::get(HOST), ms(6));
    let next = actions(&mut e);
    assert!(sends(&next).is_empty(), "{next:?}");
}

/// Attempts per call under a storm of 429s from a server that never lets up.
fn storm(retry_after: &str) -> f64 {
    let mut e = Engine::new(Config::default(), 6, Instant::ZERO).unwrap();
    let (mut calls, mut attempts) = (0u32, 0u32);
    let mut now = 0;
    let mut out: Vec<(CallId, u32)> = Vec::new();
    for _ in 0..200 {
        e.start(CallSpec::get(HOST), ms(now));
        calls += 1;
    }
    for _ in 0..100_000 {
        out.extend(sends(&actions(&mut e)));
        if let Some((call, attempt)) = out.pop() {
            attempts += 1;
            answer(
                &mut e,
                call,
                attempt,
                429,
                &[("Retry-After", retry_after)],
                ms(now),
            );
            continue;
        }
        match e.poll_timeout() {
            Some(t) => {
                now = now.max(t.as_millis());
                e.handle_timeout(t);
            }
            None => break,
        }
    }
    assert_eq!(e.active_calls(), 0);
    f64::from(attempts) / f64::from(calls)
}

#[test]
fn a_429_storm_cannot_multiply_load() {
    let zero = storm("0");
    assert!(
        zero < 1.3,
        "Retry-After: 0 gave {zero:.2} attempts per call"
    );
    let one = storm("1");
    assert!(one < 2.3, "Retry-After: 1 gave {one:.2} attempts per call");
}

#[test]
fn calls_over_the_concurrency_limit_queue_in_order_and_time_out_there() {
    let mut config = Config::default();
    config.concurrency.max_in_flight = Some(2);
    config.retry.deadline_ms = Some(1_000);
    let mut e = Engine::new(config, 7, Instant::ZERO).unwrap();
    let ids: Vec<CallId> = (0..4)
        .map(|_| e.start(CallSpec::get(HOST), ms(0)))
        .collect();
    assert_eq!(sends(&actions(&mut e)), vec![(ids[0], 1), (ids[1], 1)]);
    let queued = events(&mut e)
        .iter()
        .filter(|k| {
            matches!(
                k,
                EventKind::Queued {
                    why: Why::ConcurrencyLimit,
                    ..
                }
            )
        })
        .count();
    assert_eq!(queued, 2);
    answer(&mut e, ids[0], 1, 200, &[], ms(100));
    let next = actions(&mut e);
    assert_eq!(sends(&next), vec![(ids[2], 1)], "first come, first served");
    // The last one never gets a slot: its deadline fails it where it waits.
    assert_eq!(e.poll_timeout(), Some(ms(1_000)));
    e.handle_timeout(ms(1_000));
    let failed: Vec<_> = actions(&mut e)
        .into_iter()
        .filter_map(|a| match a {
            Action::Fail { call, failure } => Some((call, failure.why)),
            _ => None,
        })
        .collect();
    assert!(
        failed.contains(&(ids[3], Why::DeadlineExceeded)),
        "{failed:?}"
    );
}

#[test]
fn a_host_at_its_own_bound_does_not_hold_up_calls_to_others_and_order_holds_across_hosts() {
    let (a, b) = ("https://a.test", "https://b.test");
    let mut config = Config::default();
    config.concurrency.max_in_flight = Some(3);
    config.concurrency.max_in_flight_per_host = Some(1);
    let mut e = Engine::new(config, 7, Instant::ZERO).unwrap();
    // a1 and b1 go; a2, a3 wait on a's bound; b2 on b's; a cancelled a4 waits too.
    let a1 = e.start(CallSpec::get(a), ms(0));
    let b1 = e.start(CallSpec::get(b), ms(0));
    let a2 = e.start(CallSpec::get(a), ms(1));
    let a3 = e.start(CallSpec::get(a), ms(2));
    let b2 = e.start(CallSpec::get(b), ms(3));
    assert_eq!(sends(&actions(&mut e)), vec![(a1, 1), (b1, 1)]);
    e.cancel(a2, ms(4));
    actions(&mut e);
    // b's slot frees: b2 goes, though a3 (and the cancelled a2) queued before it.
    answer(&mut e, b1, 1, 200, &[], ms(10));
    assert_eq!(sends(&actions(&mut e)), vec![(b2, 1)]);
    // a's slot frees: the cancelled a2 is passed over, a3 goes.
    answer(&mut e, a1, 1, 200, &[], ms(20));
    assert_eq!(sends(&actions(&mut e)), vec![(a3, 1)]);

    // The client-wide bound: the oldest waiting call goes first, whichever its host.
    let mut config = Config::default();
    config.concurrency.max_in_flight = Some(1);
    let mut e = Engine::new(config, 7, Instant::ZERO).unwrap();
    let first = e.start(CallSpec::get(a), ms(0));
    let order = [b, a, b, a].map(|h| e.start(CallSpec::get(h), ms(1)));
    assert_eq!(sends(&actions(&mut e)), vec![(first, 1)]);
    let mut last = first;
    for next in order {
        answer(&mut e, last, 1, 200, &[], ms(10));
        assert_eq!(sends(&actions(&mut e)), vec![(next, 1)]);
        last = next;
    }
}

#[test]
fn poll_timeout_reports_only_what_something_waits_for() {
    let mut config = Config::default();
    config.retry.attempt_timeout_ms = None;
    config.retry.deadline_ms = None;
    let mut e = Engine::new(config, 8, Instant::ZERO).unwrap();
    let c = e.start(CallSpec::get(HOST), ms(0));
    actions(&mut e);
    assert_eq!(
        e.poll_timeout(),
        None,
        "no deadline while the attempt has no timeout"
    );
    answer(&mut e, c, 1, 503, &[], ms(10));
    let wake = e.poll_timeout().expect("the backoff");
    e.cancel(c, ms(11));
    assert_eq!(
        e.poll_timeout(),
        None,
        "the cancelled call's backoff ({wake}) is gone"
    );
}

#[test]
fn the_engine_decides_the_attempt_headers_and_a_callers_authorization_wins() {
    let mut e = Engine::new(Config::default(), 9, Instant::ZERO).unwrap();
    let post = e.start(
        CallSpec::post(HOST).authorization(Authorization::Caller),
        ms(0),
    );
    let Action::Send { call, headers, .. } = only(&mut e) else {
        panic!("one send")
    };
    assert_eq!(call, post);
    assert_eq!(
        headers.token, None,
        "no token is attached over the caller's own header"
    );
    assert_eq!(headers.authorization, Authorization::Caller);
    let names: Vec<&str> = headers.text().map(|(n, _)| n).collect();
    assert_eq!(names, ["x-request-id", "idempotency-key"]);
}

#[test]
fn every_reason_has_a_stable_name_equal_to_its_serde_form() {
    for why in Why::ALL {
        let json = serde_json::to_value(why).unwrap();
        assert_eq!(json.as_str(), Some(why.name()));
        // `Serialize` writes `name()` by hand; the derived `Deserialize` (`rename_all =
        // "snake_case"`) holds the name to the serde form of the variant's own name.
        let read: Why = serde_json::from_value(json).unwrap();
        assert_eq!(read, why);
        assert!(!why.explain().is_empty());
    }
}

#[test]
fn a_queued_call_gives_up_after_the_queue_timeout_with_its_own_reason() {
    let mut config = Config::default();
    config.concurrency.max_in_flight = Some(1);
    config.concurrency.max_queue_ms = Some(1_000);
    config.retry.deadline_ms = Some(60_000);
    config.retry.attempt_timeout_ms = None;
    let mut e = Engine::new(config, 10, Instant::ZERO).unwrap();
    let _busy = e.start(CallSpec::get(HOST), ms(0));
    let waiting = e.start(CallSpec::get(HOST), ms(0));
    actions(&mut e);
    assert_eq!(e.poll_timeout(), Some(ms(1_000)));
    e.handle_timeout(ms(1_000));
    let Action::Fail { call, failure } = only(&mut e) else {
        panic!("fails")
    };
    assert_eq!((call, failure.why), (waiting, Why::QueueTimeout));
    assert_eq!(failure.kind(), FailureKind::Overloaded);
    assert!(failure.is_retryable() && !failure.maybe_processed());
}

mod states {
    //! The engine in a given state, set up by `Setup`, one state per test.
    use super::*;
    use resile_core::sim::Setup;

    #[test]
    fn half_open_with_a_lost_probe_recovers_by_itself() {
        let mut s = Setup::new(Config::default()).probe_out();
        let (probe, _) = s.probe.unwrap();
        // Whatever the attempt timeout is, the engine reclaims the probe at its deadline.
        let deadline = s
            .engine
            .poll_timeout()
            .expect("the probe's deadline is kept");
        s.now = deadline;
        s.engine.handle_timeout(s.now);
        let aborted = actions(&mut s.engine)
            .into_iter()
            .any(|a| matches!(a, Action::Abort { call, .. } if call == probe));
        assert!(aborted);
        // Open again; the next half-open period lets a new probe through.
        s.advance(Duration::from_secs(120));
        let c = s.engine.start(CallSpec::get(Setup::HOST), s.now);
        assert_eq!(sends(&actions(&mut s.engine)), vec![(c, 1)]);
    }

    #[test]
    fn a_held_host_makes_calls_wait_not_send() {
        let mut s = Setup::new(Config::default()).held_for(5);
        let c = s.engine.start(CallSpec::get(Setup::HOST), s.now);
        assert!(actions(&mut s.engine).is_empty());
        assert!(events(&mut s.engine).iter().any(|k| matches!(
            k,
            EventKind::Waiting { call, why: Why::ServerRetryAfterHold, .. } if *call == c
        )));
    }

    #[test]
    fn while_a_token_is_fetched_no_second_fetch_is_asked_for() {
        let mut s = Setup::new(Config::default()).token_fetching();
        s.engine
            .start(CallSpec::get(Setup::HOST).with_token(), s.now);
        let again = actions(&mut s.engine)
            .into_iter()
            .any(|a| matches!(a, Action::FetchToken { .. }));
        assert!(!again, "single flight");
    }
}
