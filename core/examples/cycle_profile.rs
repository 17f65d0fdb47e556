//! Tight loops of engine decisions, for profilers (`perf record`, callgrind).
//!
//! - `cycle_profile [N]`: N whole decision cycles (start, send, a 200, done, events drained).
//! - `cycle_profile attempt [B]`: the bench's `engine/attempt_decision` as a plain loop. Calls
//!   are started in batches of 1 024 outside the measured function; then each gets a 200, and
//!   its `Done` and events are drained inside `decide_batch`, the one function to count:
//!
//! ```sh
//! cargo build --release -p resile-core --example cycle_profile
//! valgrind --tool=callgrind --toggle-collect='*decide_batch*' \
//!     target/release/examples/cycle_profile attempt 200
//! ```
//!
//! Instructions per decision = the collected total ÷ (B × 1 024).
//! - `cycle_profile defaults [N]`: the whole cycle under the default config (breaker and
//!   budget on), the engine's share of one native call: count `*Engine::start*`,
//!   `*Engine::handle*` and the polls inclusive, or the whole program ÷ N.
//! - `cycle_profile retry [B]`: the same for a failed attempt (`engine/retry_decision`): a 503
//!   in, the retry scheduled after a backoff; the calls are cancelled outside `decide_batch`.
use std::hint::black_box;

use resile_core::headers::NoHeaders;
use resile_core::{Action, CallId, CallSpec, Config, Engine, Instant, Outcome, Response, UnixTime};

const WALL: UnixTime = UnixTime::from_secs(1_700_000_000);

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mode = args.next_if(|a| ["attempt", "retry", "defaults"].contains(&a.as_str()));
    let status = match mode.as_deref() {
        Some("attempt") => Some(200),
        Some("retry") => Some(503),
        _ => None,
    };
    let n: Option<u64> = args.next().and_then(|a| a.parse().ok());
    let mut config = Config::default();
    if mode.as_deref() != Some("defaults") {
        config.breaker.enabled = false;
        config.budget.enabled = false;
    }
    let mut e = Engine::new(config, 1, Instant::ZERO).expect("valid config");
    if let Some(status) = status {
        attempts(&mut e, status, n.unwrap_or(200));
    } else {
        cycles(&mut e, n.unwrap_or(10_000_000));
    }
}

fn cycles(e: &mut Engine, n: u64) {
    let mut done = 0u64;
    for i in 0..n {
        let t = Instant::from_nanos(i * 1000);
        let id = e.start(CallSpec::get("https://api.test"), t);
        if let Some(Action::Send { .. }) = e.poll_action() {
            e.handle(
                id,
                Outcome::Response(Response::new(200, &NoHeaders, WALL)),
                t,
            );
        }
        if let Some(Action::Done { .. }) = e.poll_action() {
            done += 1;
        }
        e.drain_events(|_| {});
    }
    println!("{done} cycles");
}

fn attempts(e: &mut Engine, status: u16, batches: u64) {
    let mut ids = Vec::with_capacity(1024);
    for _ in 0..batches {
        ids.clear();
        for _ in 0..1024 {
            ids.push(e.start(CallSpec::get("https://api.test"), Instant::ZERO));
        }
        while e.poll_action().is_some() {}
        e.drain_events(|_| {});
        decide_batch(e, &ids, status);
        for &id in &ids {
            e.cancel(id, Instant::ZERO);
        }
        while e.poll_action().is_some() {}
        e.drain_events(|_| {});
    }
    println!("{} decisions", batches * 1024);
}

/// The timed part of `engine/attempt_decision`: an outcome in, the action and events out,
/// the next deadline asked for.
#[inline(never)]
fn decide_batch(e: &mut Engine, ids: &[CallId], status: u16) {
    for &id in ids {
        e.handle(
            id,
            Outcome::Response(Response::new(status, &NoHeaders, WALL)),
            Instant::ZERO,
        );
        e.drain_actions(|a| {
            black_box(a);
        });
        e.drain_events(|ev| {
            black_box(ev);
        });
        // A driver sleeps on the next deadline after every input.
        black_box(e.poll_timeout());
    }
}
