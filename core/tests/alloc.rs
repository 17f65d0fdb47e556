//! After warm-up, a decision cycle allocates nothing: start a call, send, answer, finish,
//! including a retry with a timer and the events of all of it; and a hedged call: the first
//! attempt, the hedge after the host's latency percentile (the estimator is a fixed
//! histogram), the loser's abort, the done; and the adaptive rate and concurrency limit's
//! decisions; and the bench's decisions on many calls in flight, actions and events lent.
//! Each test counts only its own thread's allocations (flag and count are both
//! thread-local), so the harness's other threads and the tests run beside it cannot disturb
//! it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use resile_core::config::{AdaptiveConcurrency, AimdConfig, Gradient2Config, Jitter};
use resile_core::headers::NoHeaders;
use resile_core::{Action, CallSpec, Config, Engine, Instant, Outcome, Response, UnixTime, Why};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    }
}

/// Runs `f` and returns the heap allocations this thread made in it.
fn counted(f: impl FnOnce()) -> u64 {
    ALLOCS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One logical call: a 503 with Retry-After, a timer, a retry, a 200.
fn cycle(engine: &mut Engine, now: &mut u64, retry_headers: &[(&str, &str)]) {
    let t = Instant::from_millis(*now);
    let id = engine.start(CallSpec::get("https://api.test"), t);
    let mut sent = 0;
    loop {
        while let Some(action) = engine.poll_action() {
            match action {
                Action::Send { .. } => {
                    sent += 1;
                    let t = Instant::from_millis(*now);
                    let response = if sent == 1 {
                        Response::new(503, &retry_headers, UnixTime::from_secs(1_700_000_000))
                    } else {
                        Response::new(200, &NoHeaders, UnixTime::from_secs(1_700_000_000))
                    };
                    engine.handle(id, Outcome::Response(response), t);
                }
                Action::Done { .. } => {
                    engine.drain_events(|e| {
                        std::hint::black_box(e);
                    });
                    return;
                }
                _ => panic!("unexpected action"),
            }
        }
        engine.drain_events(|e| {
            std::hint::black_box(e);
        });
        let wake = engine.poll_timeout().expect("a retry is due");
        *now = wake.as_millis();
        engine.handle_timeout(wake);
    }
}

#[test]
fn a_decision_cycle_allocates_nothing_after_warm_up() {
    let mut config = Config::default();
    config.breaker.enabled = false;
    config.budget.enabled = false;
    let mut engine = Engine::new(config, 1, Instant::ZERO).unwrap();
    let headers = [("Retry-After", "1"), ("RateLimit", "\"default\";r=5;t=1")];
    let mut now = 0;
    for _ in 0..100 {
        cycle(&mut engine, &mut now, &headers);
    }
    let n = counted(|| {
        for _ in 0..1000 {
            cycle(&mut engine, &mut now, &headers);
        }
    });
    assert_eq!(n, 0, "{n} heap allocations in 1000 warm decision cycles");
}

/// One call: attempt 1 stays out, the hedge is sent when due and answers 200 at once; returns
/// whether the loser was aborted as `hedge_lost`.
fn hedged_call(engine: &mut Engine, now: &mut u64) -> bool {
    let id = engine.start(
        CallSpec::get("https://api.test"),
        Instant::from_millis(*now),
    );
    let mut lost = false;
    loop {
        while let Some(action) = engine.poll_action() {
            match action {
                Action::Send { attempt: 2, .. } => {
                    let ok = Response::new(200, &NoHeaders, UnixTime::from_secs(1_700_000_000));
                    engine.handle_attempt(id, 2, Outcome::Response(ok), Instant::from_millis(*now));
                }
                Action::Abort {
                    attempt: 1,
                    why: Why::HedgeLost,
                    ..
                } => lost = true,
                Action::Done { .. } => {
                    while engine.poll_event().is_some() {}
                    return lost;
                }
                _ => {}
            }
        }
        while engine.poll_event().is_some() {}
        let wake = engine.poll_timeout().expect("the hedge is due");
        *now = wake.as_millis();
        engine.handle_timeout(wake);
    }
}

#[test]
fn a_hedged_call_allocates_nothing_after_warm_up() {
    let mut config = Config::default();
    config.budget.enabled = false;
    config.hedge.enabled = true;
    config.hedge.percentile = Some(0.9);
    let mut engine = Engine::new(config, 1, Instant::ZERO).unwrap();
    let mut now = 0;
    for _ in 0..100 {
        assert!(hedged_call(&mut engine, &mut now));
    }
    let mut lost = 0;
    let n = counted(|| {
        for _ in 0..1000 {
            lost += usize::from(hedged_call(&mut engine, &mut now));
        }
    });
    assert_eq!(
        lost, 1000,
        "every call was hedged and its first attempt aborted"
    );
    assert!(engine.stats().hedges >= 1100);
    assert_eq!(n, 0, "{n} heap allocations in 1000 warm hedged calls");
}

/// One call: a 429 (a throttle, a drop), a wait for a token, a 200.
fn adaptive_cycle(engine: &mut Engine, now: &mut u64) {
    let id = engine.start(
        CallSpec::get("https://api.test"),
        Instant::from_millis(*now),
    );
    let mut sent = 0;
    loop {
        while let Some(action) = engine.poll_action() {
            match action {
                Action::Send { .. } => {
                    sent += 1;
                    *now += 5;
                    let status = if sent == 1 { 429 } else { 200 };
                    let r = Response::new(status, &NoHeaders, UnixTime::from_secs(1_700_000_000));
                    engine.handle(id, Outcome::Response(r), Instant::from_millis(*now));
                }
                Action::Done { .. } | Action::Fail { .. } => {
                    engine.drain_events(|e| {
                        std::hint::black_box(e);
                    });
                    return;
                }
                _ => panic!("unexpected action"),
            }
        }
        engine.drain_events(|e| {
            std::hint::black_box(e);
        });
        let at = engine.poll_timeout().expect("a wait");
        *now = at.as_millis() + 1;
        engine.handle_timeout(Instant::from_millis(*now));
    }
}

#[test]
fn adaptive_decisions_allocate_nothing_after_warm_up() {
    for adaptive in [
        AdaptiveConcurrency::Aimd(AimdConfig::default()),
        AdaptiveConcurrency::Gradient2(Gradient2Config::default()),
    ] {
        // The adaptive rate on (it turns on at the first 429), with exact waits.
        let mut config = Config::default();
        config.adaptive_rate.enabled = true;
        config.backoff.jitter = Jitter::None;
        config.backoff.base_ms = 100;
        config.concurrency.adaptive = Some(adaptive);
        config.budget.enabled = false;
        config.breaker.enabled = false;
        let mut engine = Engine::new(config, 1, Instant::ZERO).unwrap();
        let mut now = 0;
        for _ in 0..50 {
            adaptive_cycle(&mut engine, &mut now);
        }
        let n = counted(|| {
            for _ in 0..200 {
                adaptive_cycle(&mut engine, &mut now);
            }
        });
        assert_eq!(n, 0, "allocations in 200 cycles");
    }
}

/// The bench's shape: 256 calls in flight, each answered once with `status`; the actions
/// and events lent (`drain_actions`, `drain_events`); what is left cancelled. Returns the
/// `Done`s seen.
fn answered_batch(engine: &mut Engine, ids: &mut Vec<resile_core::CallId>, status: u16) -> u64 {
    ids.clear();
    for _ in 0..256 {
        ids.push(engine.start(CallSpec::get("https://api.test"), Instant::ZERO));
    }
    engine.drain_actions(|a| {
        std::hint::black_box(a);
    });
    engine.drain_events(|e| {
        std::hint::black_box(e);
    });
    let mut done = 0;
    for &id in ids.iter() {
        let r = Response::new(status, &NoHeaders, UnixTime::from_secs(1_700_000_000));
        engine.handle(id, Outcome::Response(r), Instant::ZERO);
        engine.drain_actions(|a| done += u64::from(matches!(a, Action::Done { .. })));
        engine.drain_events(|e| {
            std::hint::black_box(e);
        });
    }
    for &id in ids.iter() {
        engine.cancel(id, Instant::ZERO);
    }
    engine.drain_actions(|a| {
        std::hint::black_box(a);
    });
    engine.drain_events(|e| {
        std::hint::black_box(e);
    });
    done
}

#[test]
fn lent_decisions_on_many_calls_in_flight_allocate_nothing_after_warm_up() {
    // A success (decided straight, with the breaker off and on) and a retry scheduled.
    for (status, breaker) in [(200, false), (200, true), (503, true)] {
        let mut config = Config::default();
        config.breaker.enabled = breaker;
        config.budget.enabled = false;
        let mut engine = Engine::new(config, 1, Instant::ZERO).unwrap();
        let mut ids = Vec::with_capacity(256);
        for _ in 0..4 {
            answered_batch(&mut engine, &mut ids, status);
        }
        let mut done = 0;
        let n = counted(|| {
            for _ in 0..20 {
                done += answered_batch(&mut engine, &mut ids, status);
            }
        });
        let want = if status == 200 { 20 * 256 } else { 0 };
        assert_eq!(done, want, "Done actions for status {status}");
        assert_eq!(n, 0, "{n} allocations in 20 × 256 decisions on {status}");
    }
}
