//! The bench's `engine/attempt_decision` as a plain loop, for callgrind: calls are started in
//! batches of 1 024 (outside the measured function), then each gets a 200 and its `Done` and
//! events are drained inside `decide_batch`, the one function to count:
//!
//! ```sh
//! cargo build --release -p resile-core --example attempt_profile
//! valgrind --tool=callgrind --toggle-collect='*decide_batch*' \
//!     target/release/examples/attempt_profile 200
//! ```
//!
//! Instructions per decision = the collected total ÷ (batches × 1 024).
use std::hint::black_box;

use resile_core::headers::NoHeaders;
use resile_core::{CallId, CallSpec, Config, Engine, Instant, Outcome, Response, UnixTime};

#[inline(never)]
fn decide_batch(e: &mut Engine, ids: &[CallId], wall: UnixTime) {
    for &id in ids {
        e.handle(
            id,
            Outcome::Response(Response::new(200, &NoHeaders, wall)),
            Instant::ZERO,
        );
        black_box(e.poll_action());
        while let Some(ev) = e.poll_event() {
            black_box(ev);
        }
    }
}

fn main() {
    let batches: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut config = Config::default();
    config.breaker.enabled = false;
    config.budget.enabled = false;
    let wall = UnixTime::from_secs(1_700_000_000);
    let mut e = Engine::new(config, 1, Instant::ZERO).expect("valid config");
    let mut ids = Vec::with_capacity(1024);
    for _ in 0..batches {
        ids.clear();
        for _ in 0..1024 {
            ids.push(e.start(CallSpec::get("https://api.test"), Instant::ZERO));
        }
        while e.poll_action().is_some() {}
        while e.poll_event().is_some() {}
        decide_batch(&mut e, &ids, wall);
    }
    println!("{} decisions", batches * 1024);
}
