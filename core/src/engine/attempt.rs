//! After a send: what an attempt's outcome means for the call and its host — the breaker, the
//! server's hints, a 401's token refresh, then [`retry::decide`](super::retry::decide) — and the
//! attempt deadline the engine keeps, so an outcome that never arrives is timed out here.

use core::time::Duration;

use crate::breaker::{Admit, Refusal};
use crate::classify::{classify_status, classify_transport, Class, Processed, TransportError};
use crate::engine::action::Action;
use crate::engine::call::{CallId, Phase};
use crate::engine::event::EventKind;
use crate::engine::failure::{Detail, Failure};
use crate::engine::flight::Flight;
use crate::engine::outcome::{Last, Outcome, Problem};
use crate::engine::predicate::{self, Attempted, RetryVerdict, Seen};
use crate::engine::retry::{decide, Refused, RetryDecision, RetryInput};
use crate::engine::timer::TimerKey;
use crate::engine::{aws, Engine};
use crate::quota::RetryKind;
use crate::throttle::Throttled;
use crate::time::Instant;
use crate::why::Why;

impl Engine {
    /// Attempt `attempt` of `slot`, in flight, ended with `outcome`.
    pub(crate) fn on_outcome(
        &mut self,
        slot: u32,
        attempt: u32,
        outcome: Outcome<'_>,
        now: Instant,
    ) {
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        let Some(flight) = c.flights.take(attempt, &mut self.hedge_slots) else {
            return;
        };
        self.decide_outcome::<false>(slot, flight, outcome, now);
    }

    /// What [`Engine::on_outcome`] decides once `flight` is out of the call. With `PLAIN`
    /// (the plain path, [`Engine::plain_outcome`]), the caller has made sure that `flight`
    /// was the call's only attempt, that the call has no retry predicate and that no host
    /// has anything configured that reads an outcome beyond the breaker, the budget and the
    /// hints ([`Engine::plain_hosts`]): the steps for those (another attempt out, an adaptive
    /// rate or limit, a hedging percentile, the predicate's verdict, a retry quota or
    /// throttle, the AWS rule) are left out at compile time, the rest is the same code.
    #[inline(always)]
    pub(super) fn decide_outcome<const PLAIN: bool>(
        &mut self,
        slot: u32,
        flight: Flight,
        outcome: Outcome<'_>,
        now: Instant,
    ) {
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        let (admit, token, attempt) = (flight.admit, flight.token, flight.attempt);
        let others = !PLAIN && !c.flights.is_empty(&self.hedge_slots);
        if !others {
            c.phase = Phase::Ready;
            self.timers.disarm(&mut c.timer, TimerKey::of(c.id));
            c.hedge.due = None;
        }
        let (id, host) = (c.id, c.host as usize);
        self.release_slot(host);

        let (class, last) = match outcome {
            Outcome::Response(r) => (
                classify_status(r.status, &self.retry_statuses),
                Last::Status(r.status),
            ),
            Outcome::Transport(e) => (classify_transport(e), Last::Transport(e)),
            Outcome::Unusable(r, problem) => (unusable(problem), Last::Status(r.status)),
        };
        self.attempt_finished(id, attempt, host, admit, class, last, now);
        if !PLAIN {
            self.learn_adaptive(host, flight.sent_with(), &outcome, now);
        }
        self.note_connection(host, outcome, now);

        let x_amz = if PLAIN {
            None
        } else {
            self.x_amz_retry_after(&outcome)
        };
        let asked = match outcome {
            Outcome::Response(r) | Outcome::Unusable(r, _) => {
                if !PLAIN {
                    self.record_latency(host, flight.sent, now);
                }
                self.read_hints(slot, host, &r, class.success, now)
            }
            Outcome::Transport(_) => Default::default(),
        };
        if others {
            let unauthorized = last.status() == Some(401) && token.is_some();
            let settles = class.success
                || !class.retryable
                || unauthorized
                || matches!(outcome, Outcome::Unusable(..));
            if !settles {
                // A retryable failure while another attempt of the call is out: that one
                // decides (gRPC A6's non-fatal status). It still counts as a failure, unless
                // the server said it did nothing.
                let throttle = self.hosts[host].throttle.as_mut();
                if let Some(t) = throttle.filter(|_| costs_throttle(class)) {
                    t.failed();
                }
                self.arm_in_flight(slot);
                return;
            }
            self.abort_flights(slot, now);
            if let Some(c) = self.calls[slot as usize].as_mut() {
                c.phase = Phase::Ready;
                self.timers.disarm(&mut c.timer, TimerKey::of(c.id));
            }
        }
        if let Outcome::Unusable(_, problem) = outcome {
            let f = Failure::new(class.why, 0, Some(last), Processed::Yes)
                .detail(Detail::Problem(problem));
            self.fail(slot, f, now);
            return;
        }
        let status = last.status();
        if status == Some(401) {
            if let Some(generation) = token {
                self.on_unauthorized(slot, generation, now);
                return;
            }
        }
        let verdict = if PLAIN {
            RetryVerdict::Decide
        } else {
            self.judge(slot, attempt, outcome)
        };
        if verdict == RetryVerdict::DontRetry && status.is_none() {
            let f = Failure::new(Why::PredicateDeclined, 0, Some(last), class.processed);
            self.fail(slot, f, now);
            return;
        }
        let (class, predicate_wait) = predicate::apply(verdict, class);
        if class.success && !PLAIN {
            self.preset_success(slot, host);
        }
        if class.success || (!class.retryable && status.is_some()) {
            self.done(slot, status.unwrap_or(0), now);
            return;
        }
        let asked = (asked.retry_after, predicate_wait, x_amz);
        if PLAIN {
            self.retry_or_fail_with::<true>(slot, class, last, asked, now);
        } else {
            self.retry_or_fail_asked(slot, class, last, asked, now);
        }
    }

    /// The caller's retry predicate's verdict on the attempt, if the call has one.
    fn judge(&self, slot: u32, attempt: u32, outcome: Outcome<'_>) -> RetryVerdict {
        let Some(c) = self.calls[slot as usize].as_ref() else {
            return RetryVerdict::Decide;
        };
        let Some(p) = c
            .predicate
            .then(|| self.predicates.get(slot as usize))
            .flatten()
            .and_then(Option::as_ref)
        else {
            return RetryVerdict::Decide;
        };
        let seen = match outcome {
            Outcome::Response(r) | Outcome::Unusable(r, _) => Seen::Response {
                status: r.status,
                headers: r.headers,
            },
            Outcome::Transport(e) => Seen::Transport(e),
        };
        p.0.judge(&Attempted {
            method: c.method,
            attempt,
            outcome: seen,
        })
    }

    /// Reports how attempt `attempt` of call `id` ended and records it on its host's breaker.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn attempt_finished(
        &mut self,
        id: CallId,
        attempt: u32,
        host: usize,
        admit: Admit,
        class: Class,
        last: Last,
        now: Instant,
    ) {
        self.event(
            now,
            EventKind::AttemptFinished {
                call: id,
                attempt,
                result: last,
                why: class.why,
            },
        );
        // A disabled breaker records nothing: no call into it.
        if self.config.breaker.enabled {
            let transition = self.hosts[host].breaker.record(
                &self.config.breaker,
                admit,
                class.breaker_failure,
                now,
            );
            self.breaker_event(host, transition, now);
        }
    }

    /// The attempt's deadline passed with no outcome: time it out, tell the driver to abort it,
    /// and decide as for a timeout the driver had seen.
    pub(crate) fn expire_attempt(&mut self, slot: u32, attempt: u32, now: Instant) {
        let Some(c) = self.calls[slot as usize].as_ref() else {
            return;
        };
        let id = c.id;
        self.stats.attempts_aborted += 1;
        self.event(
            now,
            EventKind::AttemptAborted {
                call: id,
                attempt,
                why: Why::AttemptTimeout,
            },
        );
        self.actions.push(Action::Abort {
            call: id,
            attempt,
            why: Why::AttemptTimeout,
        });
        self.on_outcome(
            slot,
            attempt,
            Outcome::Transport(TransportError::Timeout),
            now,
        );
    }

    /// Counts connection failures in a row per host; the configured number asks the driver to
    /// rebuild its pool. Inline where it is called: an answer (nearly every outcome) is one
    /// store; a transport error is counted out of line.
    #[inline(always)]
    fn note_connection(&mut self, host: usize, outcome: Outcome<'_>, now: Instant) {
        match outcome {
            Outcome::Transport(e) => self.note_transport(host, e, now),
            Outcome::Response(_) | Outcome::Unusable(..) => {
                if let Some(h) = self.hosts.get_mut(host) {
                    h.connect_failures = 0;
                }
            }
        }
    }

    /// [`Engine::note_connection`] for a transport error.
    #[inline(never)]
    fn note_transport(&mut self, host: usize, error: TransportError, now: Instant) {
        let threshold = self.config.pool.recycle_after_failures;
        let h = &mut self.hosts[host];
        match error {
            TransportError::Connect | TransportError::Dns | TransportError::Tls => {
                h.connect_failures += 1;
                if threshold > 0 && h.connect_failures >= threshold {
                    let (name, failures) = (h.name.clone(), h.connect_failures);
                    h.connect_failures = 0;
                    self.stats.pool_recycles += 1;
                    self.event(
                        now,
                        EventKind::ConnectionsRecycled {
                            host: name.clone(),
                            failures,
                        },
                    );
                    self.actions.push(Action::RecycleConnections {
                        host: name,
                        failures,
                    });
                }
            }
            _ => {}
        }
    }

    fn on_unauthorized(&mut self, slot: u32, generation: u32, now: Instant) {
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        if !self.config.token.refresh_on_401 || c.attempts >= c.max_attempts {
            self.done(slot, 401, now);
            return;
        }
        if c.forced_refresh {
            let f = Failure::new(
                Why::TokenRejectedAgain,
                0,
                Some(Last::Status(401)),
                Processed::Yes,
            );
            self.fail(slot, f, now);
            return;
        }
        let replayable = c.replayable;
        c.forced_refresh = true;
        c.phase = Phase::Ready;
        if self.token.reject(generation) {
            self.fetch_token(Why::TokenRejected, now);
        }
        if replayable {
            self.advance(slot, now);
        } else {
            // The token is refreshed for the calls that follow, but this body cannot be sent
            // again: the 401 is this call's answer.
            self.done(slot, 401, now);
        }
    }

    pub(super) fn retry_or_fail(
        &mut self,
        slot: u32,
        class: Class,
        last: Last,
        retry_after: Option<Duration>,
        predicate_wait: Option<Duration>,
        now: Instant,
    ) {
        self.retry_or_fail_asked(slot, class, last, (retry_after, predicate_wait, None), now);
    }

    /// [`Engine::retry_or_fail`] with what the answer asked for: the server's `Retry-After`,
    /// the predicate's wait and `x-amz-retry-after` (read only under the `aws` section).
    fn retry_or_fail_asked(
        &mut self,
        slot: u32,
        class: Class,
        last: Last,
        asked: (Option<Duration>, Option<Duration>, Option<&str>),
        now: Instant,
    ) {
        self.retry_or_fail_with::<false>(slot, class, last, asked, now);
    }

    /// [`Engine::retry_or_fail_asked`]; with `PLAIN` ([`Engine::decide_outcome`]'s), no host
    /// has a retry quota or throttle and the config no `aws` section, and their steps are
    /// left out.
    #[inline(always)]
    fn retry_or_fail_with<const PLAIN: bool>(
        &mut self,
        slot: u32,
        class: Class,
        last: Last,
        (retry_after, predicate_wait, x_amz): (Option<Duration>, Option<Duration>, Option<&str>),
        now: Instant,
    ) {
        let Some(c) = self.calls[slot as usize].as_ref() else {
            return;
        };
        if !class.retryable {
            // A failure another attempt would meet the same way (a TLS handshake refused, an
            // unreadable answer): the call fails with what it was.
            let f = Failure::new(class.why, 0, Some(last), class.processed);
            self.fail(slot, f, now);
            return;
        }
        let (host, id, previous, attempts) = (c.host as usize, c.id, c.previous_delay, c.attempts);
        if self.hosts[host].breaker.is_isolated() {
            // Held open by hand: no retry could be admitted, so none is drawn or paid for.
            self.stats.breaker_rejections += 1;
            let f = Failure::new(Why::BreakerIsolated, 0, Some(last), class.processed);
            self.fail(slot, f, now);
            return;
        }
        let mut hold = c.quota_hold;
        let refused = class.why == Why::RefusedUnprocessed;
        let kind = match last {
            _ if class.why == Why::TooManyRequests => RetryKind::Throttling,
            Last::Transport(_) => RetryKind::Timeout,
            Last::Status(_) => RetryKind::Error,
        };
        let input = RetryInput {
            replayable: c.replayable,
            safe_to_repeat: c.method.is_idempotent() || c.has_key,
            processed: class.processed,
            attempts,
            max_attempts: c.max_attempts,
            retry_after,
            cap: self.retry_after_cap(),
            deadline: c.deadline,
            first_throttle: class.why == Why::TooManyRequests && !c.throttled,
            predicate_wait,
            refusal: match (refused, c.refusal_resent) {
                (false, _) => Refused::No,
                (true, false) => Refused::First,
                (true, true) => Refused::Again,
            },
            now,
        };
        // The `!PLAIN` tests below are there for the compiler, to leave code out of the plain
        // copy: the throttle and quota are `None` under `plain_hosts` (known only at run
        // time), and `aws`, `None` here under `PLAIN`, is tested again inside `decide`'s
        // backoff closure, which measured cheaper (BENCHMARKS "Tenth pass", step 4).
        let (aws, jitter) = (
            if PLAIN { None } else { self.aws_rule() },
            self.config.backoff.jitter,
        );
        let (backoff, rng, breaker_config) = (&self.backoff, &mut self.rng, &self.config.breaker);
        let h = &mut self.hosts[host];
        let (breaker, budget) = (&h.breaker, &mut h.budget);
        let (quota, throttle) = (&mut h.quota, &mut h.throttle);
        // gRPC A6: every failed attempt costs a token, retried or not.
        let throttled = throttle
            .as_mut()
            .filter(|_| !PLAIN && costs_throttle(class))
            .map(|t| t.failed());
        let mut budget_refused = false;
        let decision = {
            decide(
                input,
                || match &aws {
                    Some(rule) if !PLAIN => aws::wait(rule, jitter, attempts - 1, kind, x_amz, rng),
                    _ => backoff.delay(attempts - 1, previous, rng),
                },
                |at| match breaker.peek(breaker_config, at) {
                    Err(Refusal::Open(until)) => Some(until),
                    _ => None,
                },
                || {
                    let ok = throttled != Some(Throttled::Refused)
                        && (PLAIN
                            || quota
                                .as_mut()
                                .is_none_or(|q| q.try_retry(&mut hold, kind).is_ok()))
                        && budget.try_withdraw(now);
                    budget_refused = !ok;
                    ok
                },
            )
        };
        match decision {
            RetryDecision::Retry { at, delay, why } => {
                if let Some(c) = self.calls[slot as usize].as_mut() {
                    c.quota_hold = hold;
                    c.throttled |= class.why == Why::TooManyRequests;
                    if input.refusal == Refused::First {
                        // Outside the call's attempts, and not a step of its backoff.
                        c.refusal_resent = true;
                        c.max_attempts = c.max_attempts.saturating_add(1);
                    } else {
                        c.previous_delay = Some(delay);
                    }
                }
                self.stats.retries += 1;
                self.event(
                    now,
                    EventKind::RetryScheduled {
                        call: id,
                        attempt: attempts + 1,
                        delay,
                        why,
                    },
                );
                self.schedule(slot, at, false);
            }
            RetryDecision::Fail {
                why,
                retry_at,
                detail,
            } => {
                match why {
                    Why::BreakerOpen => self.stats.breaker_rejections += 1,
                    Why::BudgetExhausted if budget_refused => self.budget_refused(host, id, now),
                    _ => {}
                }
                let f = Failure::new(why, 0, Some(last), class.processed)
                    .retry_at(retry_at)
                    .detail(detail);
                if !PLAIN && budget_refused && self.long_poll_backoff(slot, f, x_amz, now) {
                    return;
                }
                self.fail(slot, f, now);
            }
        }
    }

    /// The host's budget refused `call` a retry (or a hedge): counted, and said in an event.
    pub(crate) fn budget_refused(&mut self, host: usize, call: CallId, now: Instant) {
        self.stats.budget_refusals += 1;
        let name = self.hosts[host].name.clone();
        self.event(now, EventKind::BudgetExhausted { host: name, call });
    }

    /// A successful attempt under a preset with a quota or a throttle: the quota gets the
    /// call's latest retry charge back (or its first-try increment), the throttle its ratio.
    #[inline(always)]
    fn preset_success(&mut self, slot: u32, host: usize) {
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        if let Some(t) = h.throttle.as_mut() {
            t.succeeded();
        }
        if let (Some(q), Some(c)) = (h.quota.as_mut(), self.calls[slot as usize].as_mut()) {
            q.succeeded(&mut c.quota_hold);
        }
    }

    /// Releases what an attempt in flight held when its call ends some other way.
    pub(crate) fn release_in_flight(&mut self, host: usize, admit: Admit) {
        if let (Some(h), Admit::Probe(_)) = (self.hosts.get_mut(host), admit) {
            h.breaker.release_probe();
        }
    }
}

/// What a response the driver could not use means: a final failure of the call, not of the
/// host (the server answered; the client cannot use what it said).
fn unusable(problem: Problem) -> Class {
    let why = match problem {
        Problem::BodyTooLarge { .. } => Why::BodyTooLarge,
        Problem::Undecodable => Why::Undecodable,
        Problem::TooManyRedirects { .. } => Why::TooManyRedirects,
    };
    Class {
        success: false,
        retryable: false,
        breaker_failure: false,
        processed: Processed::Yes,
        why,
    }
}

/// Whether a retryable failure costs the host's gRPC throttle a token (A6: every failed attempt
/// does), on the retry path and while another attempt of the call is out alike: a refusal
/// before processing is not a failed attempt, the server said it did nothing.
fn costs_throttle(class: Class) -> bool {
    class.why != Why::RefusedUnprocessed
}
