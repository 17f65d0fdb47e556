//! Brooker's "Exponential Backoff And Jitter" experiment, run through the real engine.
//!
//! Many clients each want one write to a single resource guarded by optimistic concurrency:
//! a write that starts while another is still in progress loses and is answered 409-style with
//! a retryable 503. The article's finding: without jitter, clients that failed together retry
//! together and keep colliding; full jitter does the least work; equal jitter does more work and
//! takes longer; decorrelated jitter is close to full.

use core::time::Duration;

use super::world::{SimReply, SimRequest, World};
use crate::config::{Config, Jitter};
use crate::engine::{CallSpec, Engine};
use crate::time::{Instant, UnixTime};

/// One run's totals.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ContentionResult {
    /// The jitter used.
    pub jitter: Jitter,
    /// Attempts sent by all clients ("work").
    pub calls: u64,
    /// When the last client's write went through ("time"), in virtual milliseconds.
    pub completion_ms: u64,
    /// Clients that gave up (should be zero with the generous limits used).
    pub gave_up: u32,
}

/// Runs `clients` contending writers with the given jitter; each write holds the resource for
/// `write_ms`. Backoff base 10 ms, factor 2, cap 10 s; retries unlimited in practice.
pub fn contention(jitter: Jitter, clients: u32, write_ms: u64, seed: u64) -> ContentionResult {
    let mut config = Config::default();
    config.backoff.base_ms = 10;
    config.backoff.factor = 2.0;
    config.backoff.cap_ms = 10_000;
    config.backoff.jitter = jitter;
    config.retry.max_attempts = 100;
    config.retry.deadline_ms = None;
    config.retry.attempt_timeout_ms = None;
    config.budget.enabled = false;
    config.breaker.enabled = false;
    let engine = match Engine::new(config, seed, Instant::ZERO) {
        Ok(e) => e,
        Err(_) => unreachable!("the experiment's config is valid"),
    };
    let mut busy_until = Instant::ZERO;
    let write = Duration::from_millis(write_ms);
    let server = move |_: &SimRequest, now: Instant, _: UnixTime| {
        if now >= busy_until {
            busy_until = now + write;
            SimReply::Status {
                status: 200,
                headers: Vec::new(),
                body: None,
                latency: write,
            }
        } else {
            SimReply::Status {
                status: 503,
                headers: Vec::new(),
                body: None,
                latency: Duration::from_millis(1),
            }
        }
    };
    let mut world = World::new(engine, server).without_trace();
    for _ in 0..clients {
        world.start(CallSpec::get("http://contended.test"));
    }
    world.drive_bounded(10_000_000);
    let mut completion = 0;
    let mut gave_up = 0;
    for r in world.results.iter().flatten() {
        match r {
            super::CallResult::Done { at, .. } => completion = completion.max(at.as_millis()),
            super::CallResult::Failed { .. } | super::CallResult::FellBack { .. } => gave_up += 1,
        }
    }
    ContentionResult {
        jitter,
        calls: world.attempts,
        completion_ms: completion,
        gave_up,
    }
}
