//! A download: the call stays open while its answer's body is read, and a body that breaks is
//! that call's next attempt ([`Engine::resume`]).
//!
//! A call started with [`CallSpec::download`](crate::CallSpec::download) ends, for the engine,
//! when its body has been read, not at its head:
//!
//! ```text
//!   start ─▶ … ─▶ Done (the head) ─▶ Streaming ──body_read──▶ CallSucceeded (ends)
//!                                      │  ▲    ──cancel─────▶ CallFailed (Cancelled)
//!                              resume  │  │ Done (the resumed answer's head)
//!                                      ▼  │
//!                     the broken attempt's failure: retry (Send n+1, after its backoff) or Fail
//! ```
//!
//! So resuming continues the call: the same [`CallId`] in every event, the same request id and
//! idempotency key on every attempt, the attempts already made counted against `max_attempts`,
//! the call's own deadline (a resume that would start past it, or a resumed attempt still out
//! when it passes, fails the call with [`Why::DeadlineWouldPass`](crate::Why)), the
//! backoff after the broken attempt, the retry budget and the breaker, exactly as if the attempt
//! had failed before its head arrived. While the body is read nothing waits on a timer: the
//! deadline is checked when the body breaks (see [`crate::resume`] for the `Range` / `If-Range`
//! rule the driver asks with).

use crate::breaker::Admit;
use crate::classify::{classify_transport, TransportError};
use crate::engine::action::Action;
use crate::engine::call::Phase;
use crate::engine::outcome::Last;
use crate::engine::timer::TimerKey;
use crate::engine::{CallEnd, CallId, Engine};
use crate::time::Instant;

/// [`Engine::resume`] on a call that is not a download whose body is being read (it ended,
/// failed, or is not a download).
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("call {call} is not a download whose body is being read")]
pub struct NotStreaming {
    /// The call named.
    pub call: CallId,
}

impl Engine {
    /// A download's final answer (`status`): hand its head over and keep the call open while
    /// the body is read. False for a call that ends at its head.
    pub(super) fn keep_open(&mut self, slot: u32, status: u16) -> bool {
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return false;
        };
        if c.ends != CallEnd::AfterBody {
            return false;
        }
        c.phase = Phase::Streaming { status };
        self.timers.disarm(&mut c.timer, TimerKey::of(c.id));
        let (call, attempts) = (c.id, c.attempts);
        self.actions.push(Action::Done {
            call,
            status,
            attempts,
        });
        true
    }

    /// The body of download `call` broke off with `broke`: the broken attempt's failure is
    /// decided like any other. The call's next action is a `Send` of the next attempt after
    /// its backoff, or a `Fail` (attempts used up, deadline, open breaker, budget).
    pub fn resume(
        &mut self,
        call: CallId,
        broke: TransportError,
        now: Instant,
    ) -> Result<(), NotStreaming> {
        let slot = self.streaming(call).ok_or(NotStreaming { call })?;
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return Err(NotStreaming { call });
        };
        c.phase = Phase::Ready;
        let (attempt, host) = (c.attempts, c.host as usize);
        let class = classify_transport(broke);
        let last = Last::Transport(broke);
        // The attempt was admitted as an ordinary one when it was sent (its probe, if it was
        // one, was settled by its head).
        self.attempt_finished(call, attempt, host, Admit::Normal, class, last, now);
        self.retry_or_fail(slot, class, last, None, None, now);
        self.settle(now);
        Ok(())
    }

    /// The body of download `call` was read to its end: the call succeeds with the status of
    /// its last answer. Stale ids (and calls not being read) are ignored.
    pub fn body_read(&mut self, call: CallId, now: Instant) {
        let Some(slot) = self.streaming(call) else {
            return;
        };
        let status = match self.calls[slot as usize].as_ref().map(|c| c.phase) {
            Some(Phase::Streaming { status }) => status,
            _ => return,
        };
        let _ = self.succeeded(slot, status, now);
        self.settle(now);
    }

    /// The slot of `call` if its body is being read.
    fn streaming(&self, call: CallId) -> Option<u32> {
        let slot = self.live(call)?;
        let c = self.calls[slot as usize].as_ref()?;
        matches!(c.phase, Phase::Streaming { .. }).then_some(slot)
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::NotStreaming;
    use crate::classify::TransportError;
    use crate::config::Config;
    use crate::engine::{Action, CallId, CallSpec, Engine, EventKind, Outcome, Response};
    use crate::headers::NoHeaders;
    use crate::rng::Uuid;
    use crate::time::{Instant, UnixTime};
    use crate::why::Why;

    const HOST: &str = "http://files.test";

    fn ms(n: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(n)
    }

    fn ok() -> Outcome<'static> {
        Outcome::Response(Response::new(200, &NoHeaders, UnixTime::EPOCH))
    }

    /// The next send: its attempt and request id.
    fn sent(e: &mut Engine) -> (CallId, u32, Option<Uuid>) {
        match e.poll_action() {
            Some(Action::Send {
                call,
                attempt,
                headers,
                ..
            }) => (call, attempt, headers.request_id),
            other => panic!("expected a send, got {other:?}"),
        }
    }

    /// A download whose first attempt was answered 200 at `at` ms: its head handed over.
    fn downloaded(config: Config, spec: CallSpec<'_>, at: u64) -> (Engine, CallId, Option<Uuid>) {
        let mut e = Engine::new(config, 7, Instant::ZERO).unwrap();
        let id = e.start(spec.download(), ms(0));
        let (_, _, request_id) = sent(&mut e);
        e.handle(id, ok(), ms(at));
        assert!(matches!(
            e.poll_action(),
            Some(Action::Done { attempts: 1, .. })
        ));
        (e, id, request_id)
    }

    /// Jumps to the engine's next deadline and fires it.
    fn wake(e: &mut Engine) -> Instant {
        let at = e.poll_timeout().expect("something waits");
        e.handle_timeout(at);
        at
    }

    fn events(e: &mut Engine) -> Vec<EventKind> {
        core::iter::from_fn(|| e.poll_event())
            .map(|ev| ev.kind)
            .collect()
    }

    #[test]
    fn a_download_stays_open_until_its_body_is_read() {
        let (mut e, id, _) = downloaded(Config::default(), CallSpec::get(HOST), 1);
        assert_eq!(e.active_calls(), 1);
        // Nothing waits while the body is read.
        assert_eq!(e.poll_timeout(), None);
        assert!(!events(&mut e)
            .iter()
            .any(|k| matches!(k, EventKind::CallSucceeded { .. })));
        e.body_read(id, ms(50));
        assert_eq!(e.active_calls(), 0);
        let done = events(&mut e).into_iter().find_map(|k| match k {
            EventKind::CallSucceeded {
                call,
                attempts,
                elapsed,
                ..
            } => Some((call, attempts, elapsed)),
            _ => None,
        });
        assert_eq!(done, Some((id, 1, Duration::from_millis(50))));
        assert_eq!(e.stats().succeeded, 1);
        // A plain call ends at its head.
        let plain = e.start(CallSpec::get(HOST), ms(60));
        let _ = sent(&mut e);
        e.handle(plain, ok(), ms(61));
        assert!(matches!(e.poll_action(), Some(Action::Done { .. })));
        assert_eq!(e.active_calls(), 0);
        assert_eq!(
            e.resume(plain, TransportError::Truncated, ms(62)),
            Err(NotStreaming { call: plain })
        );
    }

    #[test]
    fn a_broken_body_is_the_same_calls_next_attempt_after_its_backoff() {
        let (mut e, id, request_id) = downloaded(Config::default(), CallSpec::get(HOST), 1);
        assert!(request_id.is_some());
        let before = e.stats();
        e.resume(id, TransportError::Truncated, ms(10)).unwrap();
        // No send before the backoff.
        assert!(e.poll_action().is_none());
        assert!(wake(&mut e) > ms(10));
        assert_eq!(sent(&mut e), (id, 2, request_id));
        let after = e.stats();
        assert_eq!(after.retries, before.retries + 1);
        assert_eq!(after.calls, before.calls, "no new call");
        e.handle(id, ok(), ms(500));
        assert!(
            matches!(e.poll_action(), Some(Action::Done { call, attempts: 2, .. }) if call == id)
        );
        e.body_read(id, ms(600));
        let kinds = events(&mut e);
        assert!(
            kinds.iter().all(|k| k.call().is_none_or(|c| c == id)),
            "one call: {kinds:?}"
        );
        assert!(kinds.iter().any(|k| matches!(
            k,
            EventKind::AttemptFinished {
                attempt: 1,
                why: Why::MaybeProcessed,
                ..
            }
        )));
        let ended: Vec<_> = kinds
            .iter()
            .filter_map(|k| match k {
                EventKind::CallSucceeded {
                    attempts, elapsed, ..
                } => Some((*attempts, *elapsed)),
                _ => None,
            })
            .collect();
        assert_eq!(ended, [(2, Duration::from_millis(600))]);
    }

    #[test]
    fn attempts_already_made_count_against_the_limit() {
        let (mut e, id, _) = downloaded(Config::default(), CallSpec::get(HOST).max_attempts(2), 1);
        e.resume(id, TransportError::Truncated, ms(10)).unwrap();
        let _ = wake(&mut e);
        let _ = sent(&mut e);
        e.handle(id, ok(), ms(300));
        assert!(matches!(
            e.poll_action(),
            Some(Action::Done { attempts: 2, .. })
        ));
        e.resume(id, TransportError::Reset, ms(400)).unwrap();
        let Some(Action::Fail { failure, .. }) = e.poll_action() else {
            panic!("fail")
        };
        assert_eq!((failure.why, failure.attempts), (Why::MaxAttempts, 2));
        assert_eq!(e.active_calls(), 0);
    }

    #[test]
    fn the_calls_deadline_holds_across_a_resume() {
        let spec = || CallSpec::get(HOST).deadline(Duration::from_millis(1_000));
        // The body breaks after the deadline: no resume.
        let (mut e, id, _) = downloaded(Config::default(), spec(), 100);
        e.resume(id, TransportError::Truncated, ms(1_200)).unwrap();
        let Some(Action::Fail { failure, .. }) = e.poll_action() else {
            panic!("fail")
        };
        assert_eq!(failure.why, Why::DeadlineWouldPass);
        // The resumed attempt is still out when the deadline passes: the engine times it out
        // at the deadline the call was started with, and no time is left for another.
        let (mut e, id, _) = downloaded(Config::default(), spec(), 100);
        e.resume(id, TransportError::Truncated, ms(500)).unwrap();
        let _ = wake(&mut e);
        let (_, attempt, _) = sent(&mut e);
        assert_eq!(attempt, 2);
        let at = wake(&mut e);
        assert_eq!(at, ms(1_000));
        let actions: Vec<_> = core::iter::from_fn(|| e.poll_action()).collect();
        assert!(
            matches!(actions.as_slice(), [Action::Abort { attempt: 2, .. }, Action::Fail { failure, .. }] if failure.why == Why::DeadlineWouldPass),
            "{actions:?}"
        );
    }

    #[test]
    fn an_empty_budget_refuses_the_resume() {
        let mut config = Config::default();
        config.budget.ratio = 0.0;
        config.budget.reserve = 0;
        config.budget.max_saved = 0;
        let (mut e, id, _) = downloaded(config, CallSpec::get(HOST), 1);
        e.resume(id, TransportError::Reset, ms(10)).unwrap();
        let Some(Action::Fail { failure, .. }) = e.poll_action() else {
            panic!("fail")
        };
        assert_eq!(failure.why, Why::BudgetExhausted);
    }

    #[test]
    fn broken_bodies_count_against_the_breaker() {
        let mut config = Config::default();
        config.breaker.consecutive_failures = 1;
        let (mut e, id, _) = downloaded(config, CallSpec::get(HOST), 1);
        // The broken body is the failure that trips the breaker: the resume is not sent.
        e.resume(id, TransportError::Truncated, ms(10)).unwrap();
        let next = e.poll_action();
        assert!(
            matches!(next, Some(Action::Fail { failure, .. }) if failure.why == Why::BreakerOpen),
            "{next:?}"
        );
        assert_eq!(e.stats().breaker_trips, 1);
    }

    #[test]
    fn a_download_given_up_while_read_fails_as_cancelled() {
        let (mut e, id, _) = downloaded(Config::default(), CallSpec::get(HOST), 1);
        e.cancel(id, ms(5));
        let failed = events(&mut e).into_iter().find_map(|k| match k {
            EventKind::CallFailed { failure, .. } => Some(failure.why),
            _ => None,
        });
        assert_eq!(failed, Some(Why::Cancelled));
        assert_eq!(e.active_calls(), 0);
        // Ended: neither a resume nor a second end applies.
        assert_eq!(
            e.resume(id, TransportError::Reset, ms(6)),
            Err(NotStreaming { call: id })
        );
        e.body_read(id, ms(7));
        assert_eq!(e.stats().succeeded, 0);
    }
}
