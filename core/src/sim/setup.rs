//! Puts an engine into a given state for a test, through its public inputs only (as
//! ureq-proto's test `Scenario` does): a tripped breaker with its half-open probe out, a host
//! held by a server hint, a token fetch in flight. Each step drives the engine the way a
//! driver would, so the state is one the engine can really be in.
//!
//! ```
//! use resile_core::sim::Setup;
//! use resile_core::{Action, CallSpec, Why};
//!
//! let mut s = Setup::new(Default::default()).probe_out();
//! // Every other call fails fast while the probe is out.
//! let call = s.engine.start(CallSpec::get(Setup::HOST), s.now);
//! assert!(matches!(
//!     s.engine.poll_action(),
//!     Some(Action::Fail { call: c, failure }) if c == call && failure.why == Why::BreakerProbesBusy
//! ));
//! ```

use core::time::Duration;

use crate::config::Config;
use crate::engine::{Action, CallId, CallSpec, Engine, Outcome, Response};
use crate::time::{Instant, UnixTime};

/// An engine and its clock, moved into a state step by step.
pub struct Setup {
    /// The engine.
    pub engine: Engine,
    /// The driver's clock.
    pub now: Instant,
    /// The half-open probe in flight, after [`Setup::probe_out`].
    pub probe: Option<(CallId, u32)>,
}

impl Setup {
    /// The host every step talks to.
    pub const HOST: &'static str = "https://setup.test";

    /// A fresh engine (seed 1) at time zero.
    pub fn new(config: Config) -> Self {
        let engine = Engine::new(config, 1, Instant::ZERO).expect("a valid config");
        Setup {
            engine,
            now: Instant::ZERO,
            probe: None,
        }
    }

    /// Moves the clock on and fires what is due.
    pub fn advance(&mut self, by: Duration) -> &mut Self {
        self.now = self.now + by;
        self.engine.handle_timeout(self.now);
        self.drain();
        self
    }

    fn drain(&mut self) -> Vec<Action> {
        let mut all = Vec::new();
        while let Some(a) = self.engine.poll_action() {
            all.push(a);
        }
        self.engine.drain_events(|_| {});
        all
    }

    /// One call whose every attempt gets `status` (with `headers`), until the engine ends it.
    fn call_answered(&mut self, status: u16, headers: &[(&str, &str)]) {
        self.engine
            .start(CallSpec::get(Self::HOST).max_attempts(1), self.now);
        for a in self.drain() {
            if let Action::Send { call, attempt, .. } = a {
                let r = Response::new(status, &headers, UnixTime::from_secs(1_700_000_000));
                self.engine
                    .handle_attempt(call, attempt, Outcome::Response(r), self.now);
                self.drain();
            }
        }
    }

    /// Trips the breaker with failed calls (503s), however many its config needs.
    pub fn tripped(mut self) -> Self {
        for _ in 0..1_000 {
            let open = self
                .engine
                .hosts(self.now)
                .iter()
                .any(|h| matches!(h.breaker, crate::breaker::BreakerState::Open { .. }));
            if open {
                return self;
            }
            self.call_answered(503, &[]);
        }
        panic!("the breaker never opened: is it enabled?")
    }

    /// Trips the breaker, waits until it is half-open and sends one probe whose outcome is
    /// never reported (kept in [`Setup::probe`]).
    pub fn probe_out(mut self) -> Self {
        self = self.tripped();
        let until = self
            .engine
            .hosts(self.now)
            .iter()
            .find_map(|h| match h.breaker {
                crate::breaker::BreakerState::Open { until } => Some(until),
                _ => None,
            })
            .expect("open");
        self.now = until;
        self.engine.handle_timeout(self.now);
        self.engine.start(CallSpec::get(Self::HOST), self.now);
        for a in self.drain() {
            if let Action::Send { call, attempt, .. } = a {
                self.probe = Some((call, attempt));
            }
        }
        assert!(self.probe.is_some(), "a probe went out");
        self
    }

    /// The host answered 429 with `Retry-After: secs`: it is held until then.
    pub fn held_for(mut self, secs: u64) -> Self {
        let value = secs.to_string();
        self.call_answered(429, &[("Retry-After", value.as_str())]);
        self
    }

    /// A call that needs a token started: the engine asked for a fetch, which is still out.
    pub fn token_fetching(mut self) -> Self {
        self.engine
            .start(CallSpec::get(Self::HOST).with_token(), self.now);
        let asked = self
            .drain()
            .iter()
            .any(|a| matches!(a, Action::FetchToken { .. }));
        assert!(asked, "the engine asked for a token");
        self
    }
}
