//! The common case, straight: a success on a call's only attempt in flight.
//!
//! Most outcomes are that one, and most of what `attempt.rs` asks of an outcome cannot apply
//! to it: there is no other attempt to settle, nothing to retry, no 401 to refresh for, no
//! unusable answer. When, besides, neither the call nor its host has anything configured
//! that reads a success (a retry predicate, a download kept open, an adaptive rate or limit,
//! a hedging percentile, a retry quota or throttle), the outcome is decided here, with the
//! general path's steps in its order and none of its other tests (what the hosts have
//! configured is one flag, worked out when the engine is built): the attempt's slot freed,
//! `AttemptFinished` and the breaker, the connection-failure count reset, the hint headers
//! read, then the call ended (`CallSucceeded`, `Done`). Anything else goes to
//! [`Engine::on_outcome`], which decides the same for this case.
//!
//! The plain path is the same idea for every other outcome (a failure above all): under the
//! same flag, on a call with no retry predicate and one attempt in flight, the outcome is
//! decided by the general path's own code compiled without the steps for what is not
//! configured ([`Engine::decide_outcome`] with `PLAIN`).

use crate::classify::{is_success, Class};
use crate::engine::outcome::{Last, Outcome, Response};
use crate::engine::timer::TimerKey;
use crate::engine::Engine;
use crate::headers::parse_ratelimit;
use crate::time::Instant;

impl Engine {
    /// Attempt `attempt` of `slot` (the oldest in flight with `None`) ended with `outcome`:
    /// straight here when it is the common case, else through [`Engine::on_outcome`].
    #[inline(always)]
    pub(super) fn outcome(
        &mut self,
        slot: u32,
        attempt: Option<u32>,
        outcome: Outcome<'_>,
        now: Instant,
    ) {
        if let Outcome::Response(r) = &outcome {
            if is_success(r.status, &self.retry_statuses)
                && self.straight_success(slot, attempt, r, now)
            {
                return;
            }
        }
        if self.plain_outcome(slot, attempt, outcome, now) {
            return;
        }
        let attempt = match attempt {
            Some(attempt) => Some(attempt),
            None => self.calls[slot as usize]
                .as_ref()
                .and_then(|c| c.flights.oldest(&self.hedge_slots)),
        };
        if let Some(attempt) = attempt {
            self.on_outcome(slot, attempt, outcome, now);
        }
    }

    /// Decides a success ([`is_success`]) on the call's only attempt in flight (`attempt`, or
    /// whichever it is with `None`), when nothing configured reads it; false (and nothing
    /// done) otherwise.
    #[inline(always)]
    fn straight_success(
        &mut self,
        slot: u32,
        attempt: Option<u32>,
        r: &Response<'_>,
        now: Instant,
    ) -> bool {
        let Some(place) = self.calls.get_mut(slot as usize) else {
            return false;
        };
        let Some(c) = place.as_mut() else {
            return false;
        };
        if !c.straight {
            return false;
        }
        let host = c.host as usize;
        let Some(h) = self.hosts.get_mut(host) else {
            return false;
        };
        let Some(flight) = c.flights.take_only(attempt) else {
            return false;
        };
        // The hint headers are read first (a pure look at the response; what they say is
        // applied after `AttemptFinished`, as on the general path), so that what follows keeps
        // its values in registers instead of across the headers' call.
        let hint = parse_ratelimit(r.headers, r.wall);
        // The call holds nothing now (its only attempt was taken out above): it ends here,
        // without `finish`'s look at what it might still hold or `vacate`'s for a predicate,
        // and its slot is freed before the events, as nothing after this reads it (a success's hints hold or tune the
        // host; only a 429's or a 503's may name the call). Its host's three counts change
        // together, with one look-up.
        let call = c.ended();
        h.in_flight = h.in_flight.saturating_sub(1);
        h.connect_failures = 0;
        h.active = h.active.saturating_sub(1);
        self.in_flight = self.in_flight.saturating_sub(1);
        // No predicate (tested above): nothing is kept for the call elsewhere. Its deadline
        // (the attempt's) goes with it, dropped at once when it is the earliest in order.
        self.timers
            .disarm_inline(&mut c.timer, TimerKey::of(call.id));
        *place = None;
        self.free.push(slot);
        let last = Last::Status(r.status);
        let (id, attempt) = (call.id, flight.attempt);
        self.attempt_finished(id, attempt, host, flight.admit, Class::SUCCESS, last, now);
        self.apply_limit_hints(slot, host, r, None, hint, now);
        let (id, attempts) = self.call_succeeded(&call, r.status, now);
        self.done_action(id, r.status, attempts);
        true
    }

    /// Decides any other outcome on the call's only attempt in flight (`attempt`, or
    /// whichever it is with `None`) on the plain path, when neither the call (a retry
    /// predicate) nor its host ([`Engine::plain_hosts`]) has anything configured that reads
    /// an outcome beyond the breaker, the budget and the hints; false (and nothing done)
    /// otherwise. The same steps as [`Engine::on_outcome`], less those tests
    /// ([`Engine::decide_outcome`]).
    #[inline(always)]
    fn plain_outcome(
        &mut self,
        slot: u32,
        attempt: Option<u32>,
        outcome: Outcome<'_>,
        now: Instant,
    ) -> bool {
        if !self.plain_hosts {
            return false;
        }
        let Some(c) = self.calls.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        if c.predicate {
            return false;
        }
        let Some(flight) = c.flights.take_only(attempt) else {
            return false;
        };
        self.decide_outcome::<true>(slot, flight, outcome, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::classify::TransportError;
    use crate::engine::predicate::{Attempted, Predicate, RetryVerdict};
    use crate::engine::{Action, CallSpec, Engine, Event, EventKind, Outcome, Response};
    use crate::time::{Instant, UnixTime};
    use crate::why::Why;
    use crate::Config;
    use core::time::Duration;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const WALL: UnixTime = UnixTime::from_secs(1_700_000_000);

    /// Everything an engine said, in order, and where it ended up.
    #[derive(Debug, PartialEq)]
    struct Trace {
        actions: Vec<Action>,
        events: Vec<Event>,
        stats: crate::engine::Stats,
        hosts: Vec<crate::engine::HostView>,
    }

    /// Three calls in flight at once, answered (`answers`, in turn, one per attempt sent)
    /// until each ends; with `general`, every call has a retry predicate with no opinion,
    /// which sends each outcome down the general path.
    /// A status and its headers, one per attempt answered ([`CONNECT`] and [`TIMEOUT`]: no
    /// answer, a transport error).
    type Answer<'a> = (u16, &'a [(&'a str, &'a str)]);

    /// In an [`Answer`]: the connection failed (counted towards recycling the pool).
    const CONNECT: u16 = 1;
    /// In an [`Answer`]: the attempt timed out at the driver.
    const TIMEOUT: u16 = 2;

    fn run(config: &Config, answers: &[Answer<'_>], general: bool) -> Trace {
        let mut e = Engine::new(config.clone(), 7, Instant::ZERO).unwrap();
        let mut now = Instant::ZERO;
        let mut trace = Trace {
            actions: Vec::new(),
            events: Vec::new(),
            stats: e.stats(),
            hosts: Vec::new(),
        };
        for host in ["https://a.test", "https://a.test", "https://b.test"] {
            let mut spec = CallSpec::get(host);
            if general {
                spec =
                    spec.retry_predicate(Predicate::new(|_: &Attempted<'_>| RetryVerdict::Decide));
            }
            let _ = e.start(spec, now);
        }
        let mut answers = answers.iter().cycle();
        for _ in 0..50 {
            let mut sends = Vec::new();
            while let Some(action) = e.poll_action() {
                if let Action::Send { call, attempt, .. } = action {
                    sends.push((call, attempt));
                }
                trace.actions.push(action);
            }
            trace.events.extend(core::iter::from_fn(|| e.poll_event()));
            now = now + Duration::from_millis(3);
            // What fell due meanwhile (a hedge's delay) goes before the answers.
            if e.poll_timeout().is_some_and(|t| t <= now) {
                e.handle_timeout(now);
            }
            for (call, attempt) in sends {
                let outcome = match answers.next().unwrap() {
                    (CONNECT, _) => Outcome::Transport(TransportError::Connect),
                    (TIMEOUT, _) => Outcome::Transport(TransportError::Timeout),
                    (status, headers) => Outcome::Response(Response::new(*status, headers, WALL)),
                };
                e.handle_attempt(call, attempt, outcome, now);
            }
            if let Some(t) = e.poll_timeout() {
                now = now.max(t);
                e.handle_timeout(now);
            }
        }
        trace.stats = e.stats();
        trace.hosts = e.hosts(now);
        trace
    }

    #[test]
    fn a_success_decided_straight_says_and_leaves_what_the_general_path_does() {
        let limited: &[(&str, &str)] = &[
            ("ratelimit", "\"default\";r=0;t=2"),
            ("ratelimit-policy", "\"default\";q=10;w=1"),
        ];
        let cases: [&[Answer<'_>]; 4] = [
            &[(200, &[])],
            &[(503, &[]), (204, &[]), (301, &[])],
            &[(200, limited), (429, &[("retry-after", "1")]), (200, &[])],
            &[
                (500, &[]),
                (500, &[]),
                (200, limited),
                (503, &[]),
                (200, &[]),
            ],
        ];
        let mut breaker_on = Config::default();
        breaker_on.breaker.enabled = true;
        let mut breaker_off = Config::default();
        breaker_off.breaker.enabled = false;
        breaker_off.budget.enabled = false;
        for config in [&breaker_on, &breaker_off, &Config::default()] {
            for answers in cases {
                let straight = run(config, answers, false);
                let general = run(config, answers, true);
                assert!(
                    straight.stats.succeeded > 0,
                    "some call succeeded: {answers:?}"
                );
                assert_eq!(straight, general, "answers {answers:?}");
            }
        }
    }

    /// The whys the calls of `trace` failed with.
    fn failed_with(trace: &Trace) -> Vec<Why> {
        let failures = trace.events.iter().filter_map(|e| match &e.kind {
            EventKind::CallFailed { failure, .. } => Some(failure.why),
            _ => None,
        });
        failures.collect()
    }

    #[test]
    fn a_failure_decided_on_the_plain_path_says_and_leaves_what_the_general_path_does() {
        let mut rich = Config::default();
        rich.budget.ratio = 1.0;
        rich.breaker.enabled = false;
        let mut two_attempts = rich.clone();
        two_attempts.retry.max_attempts = 2;
        two_attempts.pool.recycle_after_failures = 2;
        let mut off = Config::default();
        off.breaker.enabled = false;
        off.budget.enabled = false;
        let mut no_budget = off.clone();
        no_budget.budget.enabled = true;
        no_budget.budget.ratio = 0.0;
        no_budget.budget.reserve = 0;
        let mut breaker_on = off.clone();
        breaker_on.breaker.enabled = true;
        breaker_on.breaker.consecutive_failures = 2;
        let mut hedged = off.clone();
        hedged.hedge.enabled = true;
        hedged.hedge.delay_ms = 1;
        let soon: &[(&str, &str)] = &[("retry-after", "1")];
        let too_long: &[(&str, &str)] = &[("retry-after", "120")];
        // A config, the answers in turn, and a why some call must fail with (the case
        // reached what it is there for).
        let cases: [(&Config, &[Answer<'_>], Option<Why>); 13] = [
            (&off, &[(503, &[])], Some(Why::MaxAttempts)),
            (&rich, &[(503, &[])], Some(Why::MaxAttempts)),
            (&off, &[(503, &[]), (500, &[]), (200, &[])], None),
            (&rich, &[(CONNECT, &[]), (TIMEOUT, &[])], None),
            (&two_attempts, &[(CONNECT, &[])], Some(Why::MaxAttempts)),
            (&rich, &[(503, &[]), (404, &[])], None),
            (&Config::default(), &[(503, &[])], None),
            (&no_budget, &[(503, &[])], Some(Why::BudgetExhausted)),
            (
                &two_attempts,
                &[(500, &[]), (502, &[])],
                Some(Why::MaxAttempts),
            ),
            (&off, &[(503, soon), (429, soon), (204, &[])], None),
            (
                &off,
                &[(408, &[]), (503, too_long)],
                Some(Why::RetryAfterTooLong),
            ),
            (&breaker_on, &[(500, &[])], Some(Why::BreakerOpen)),
            (&hedged, &[(503, &[]), (TIMEOUT, &[]), (200, &[])], None),
        ];
        for (config, answers, why) in cases {
            let plain = run(config, answers, false);
            let general = run(config, answers, true);
            let retried = plain.stats.retries > 0 || plain.stats.budget_refusals > 0;
            assert!(
                retried,
                "some call retried or was refused a retry: {answers:?}"
            );
            let hedged = plain.stats.hedges > 0;
            assert_eq!(hedged, config.hedge.enabled, "hedges sent: {answers:?}");
            if let Some(why) = why {
                assert!(
                    failed_with(&plain).contains(&why),
                    "a call failed with {why:?}: {answers:?}, {:?}",
                    failed_with(&plain)
                );
            }
            assert_eq!(plain, general, "answers {answers:?}");
        }
    }
}
