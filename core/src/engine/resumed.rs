//! A download whose body broke after the engine had handed its answer over: the next attempt
//! is a retry of that call, decided like any other ([`Engine::resume`]).
//!
//! The engine's part of a call ends at the final answer's head, while its body is read by the
//! caller at the caller's pace. When that body breaks, the driver asks for the rest (see
//! [`crate::resume`] for the `Range` / `If-Range` rule) through a call started with
//! [`Engine::resume`]: the broken attempt counts against the breaker, the attempts already made
//! count against `max_attempts`, and the next one waits for its backoff and is paid from the
//! retry budget, exactly as if the attempt had failed before its head arrived.

use crate::breaker::Admit;
use crate::classify::{classify_transport, TransportError};
use crate::engine::call::CallSpec;
use crate::engine::outcome::Last;
use crate::engine::{CallId, Engine};
use crate::time::Instant;

impl Engine {
    /// Starts the continuation of a call whose answer's body broke off with `broke` after
    /// `attempts` attempts (the broken one included). Its first action is the engine's
    /// decision on that failure: a `Send` numbered `attempts + 1` after the backoff, or a
    /// `Fail` (attempts used up, deadline, open breaker, budget).
    pub fn resume(
        &mut self,
        spec: CallSpec<'_>,
        attempts: u32,
        broke: TransportError,
        now: Instant,
    ) -> CallId {
        let (id, slot) = self.open_call(spec, now);
        let Some(slot) = slot else {
            self.settle(now);
            return id;
        };
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return id;
        };
        c.attempts = attempts.max(1);
        let (attempt, host) = (c.attempts, c.host as usize);
        let class = classify_transport(broke);
        let last = Last::Transport(broke);
        // The attempt was admitted as an ordinary one when it was sent (its probe, if it was
        // one, was settled by its head).
        self.attempt_finished(id, attempt, host, Admit::Normal, class, last, now);
        self.retry_or_fail(slot, class, last, None, None, now);
        self.settle(now);
        id
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use crate::classify::TransportError;
    use crate::config::Config;
    use crate::engine::{Action, CallSpec, Engine, Outcome, Response};
    use crate::headers::NoHeaders;
    use crate::time::{Instant, UnixTime};
    use crate::why::Why;

    const HOST: &str = "http://files.test";

    fn ms(n: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(n)
    }

    /// A GET answered 200 at once, as the first attempt of a download.
    fn downloaded(config: Config) -> Engine {
        let mut e = Engine::new(config, 7, Instant::ZERO).unwrap();
        let id = e.start(CallSpec::get(HOST), ms(0));
        assert!(matches!(e.poll_action(), Some(Action::Send { .. })));
        let ok = Response::new(200, &NoHeaders, UnixTime::EPOCH);
        e.handle(id, Outcome::Response(ok), ms(1));
        assert!(matches!(e.poll_action(), Some(Action::Done { .. })));
        e
    }

    #[test]
    fn a_broken_body_is_retried_after_backoff_as_the_next_attempt() {
        let mut e = downloaded(Config::default());
        let before = e.stats();
        let id = e.resume(CallSpec::get(HOST), 1, TransportError::Truncated, ms(10));
        // No send before the backoff.
        assert!(e.poll_action().is_none());
        let at = e.poll_timeout().expect("a retry is scheduled");
        assert!(at > ms(10));
        e.handle_timeout(at);
        let Some(Action::Send { call, attempt, .. }) = e.poll_action() else {
            panic!("send")
        };
        assert_eq!((call, attempt), (id, 2));
        let after = e.stats();
        assert_eq!(after.retries, before.retries + 1);
        assert_eq!(after.calls, before.calls + 1);
        let finished = core::iter::from_fn(|| e.poll_event()).any(|ev| {
            matches!(
                ev.kind,
                crate::engine::EventKind::AttemptFinished {
                    attempt: 1,
                    why: Why::MaybeProcessed,
                    ..
                }
            )
        });
        assert!(finished, "the broken attempt is reported");
    }

    #[test]
    fn attempts_already_made_count_against_the_limit() {
        let mut config = Config::default();
        config.retry.max_attempts = 2;
        let mut e = downloaded(config);
        let _ = e.resume(CallSpec::get(HOST), 2, TransportError::Truncated, ms(10));
        let Some(Action::Fail { failure, .. }) = e.poll_action() else {
            panic!("fail")
        };
        assert_eq!((failure.why, failure.attempts), (Why::MaxAttempts, 2));
    }

    #[test]
    fn an_empty_budget_refuses_the_resume() {
        let mut config = Config::default();
        config.budget.ratio = 0.0;
        config.budget.reserve = 0;
        config.budget.max_saved = 0;
        let mut e = downloaded(config);
        let _ = e.resume(CallSpec::get(HOST), 1, TransportError::Reset, ms(10));
        let Some(Action::Fail { failure, .. }) = e.poll_action() else {
            panic!("fail")
        };
        assert_eq!(failure.why, Why::BudgetExhausted);
    }

    #[test]
    fn broken_bodies_count_against_the_breaker() {
        let mut config = Config::default();
        config.breaker.consecutive_failures = 1;
        let mut e = downloaded(config);
        // The broken body is the failure that trips the breaker: the resume is not sent.
        let _ = e.resume(CallSpec::get(HOST), 1, TransportError::Truncated, ms(10));
        let next = e.poll_action();
        assert!(
            matches!(next, Some(Action::Fail { failure, .. }) if failure.why == Why::BreakerOpen),
            "{next:?}"
        );
        assert_eq!(e.stats().breaker_trips, 1);
    }
}
