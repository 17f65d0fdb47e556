//! After warm-up, a decision cycle allocates nothing: start a call, send, answer, finish,
//! including a retry with a timer and the events of all of it; and a hedged call: the first
//! attempt, the hedge after the host's latency percentile (the estimator is a fixed
//! histogram), the loser's abort, the done. Only the test's own thread's allocations are
//! counted, so the harness's other threads (and other tests run beside it) cannot disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use resile_core::headers::NoHeaders;
use resile_core::{Action, CallSpec, Config, Engine, Instant, Outcome, Response, UnixTime, Why};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCS: AtomicU64 = AtomicU64::new(0);

fn count() {
    // `try_with`: the thread-local may be gone while a thread shuts down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
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
                    while engine.poll_event().is_some() {}
                    return;
                }
                _ => panic!("unexpected action"),
            }
        }
        while engine.poll_event().is_some() {}
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
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    for _ in 0..1000 {
        cycle(&mut engine, &mut now, &headers);
    }
    COUNTING.with(|c| c.set(false));
    let n = ALLOCS.load(Ordering::SeqCst);
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
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    let mut lost = 0;
    for _ in 0..1000 {
        lost += usize::from(hedged_call(&mut engine, &mut now));
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        lost, 1000,
        "every call was hedged and its first attempt aborted"
    );
    assert!(engine.stats().hedges >= 1100);
    let n = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(n, 0, "{n} heap allocations in 1000 warm hedged calls");
}
