//! After warm-up, a decision cycle allocates nothing: start a call, send, answer, finish,
//! including a retry with a timer and the events of all of it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use resile_core::headers::NoHeaders;
use resile_core::{Action, CallSpec, Config, Engine, Instant, Outcome, Response, UnixTime};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
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
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..1000 {
        cycle(&mut engine, &mut now, &headers);
    }
    COUNTING.store(false, Ordering::SeqCst);
    let n = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(n, 0, "{n} heap allocations in 1000 warm decision cycles");
}
