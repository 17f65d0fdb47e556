//! After an attempt failed: retry now, after a wait (and why), or give up (and why).
//!
//! [`decide`] is the whole rule, as a pure function over what the engine knows; the engine
//! supplies the backoff draw, the breaker's view of the retry time and the budget's answer as
//! closures, each asked only when the rule gets that far (so a failure decided early draws no
//! random number and spends no budget). The order of the checks is the order below:
//!
//! 1. a one-shot body cannot be sent again → [`Why::BodyNotReplayable`];
//! 2. a write that may have been applied, without an Idempotency-Key → [`Why::NotIdempotent`];
//! 3. attempts used up → [`Why::MaxAttempts`] (the resend of a refusal, below, is not counted);
//! 4. the server asked for a wait over the cap → [`Why::RetryAfterTooLong`];
//! 5. the wait: the caller's predicate's when it asked for one (capped as `Retry-After` is, in
//!    4.), else `Retry-After` when the server gave one (a zero `Retry-After` is no wait at
//!    all, so backoff applies), else backoff;
//! 6. the retry would start at or after the deadline → [`Why::DeadlineWouldPass`];
//! 7. the breaker will still be open then → [`Why::BreakerOpen`];
//! 8. the budget refuses → [`Why::BudgetExhausted`]. Every retry costs budget, throttled ones
//!    (429) included, as gRPC A6, Finagle and AWS charge them, with one exception: the first
//!    429 of a call that came with a positive `Retry-After` (so the whole host is held until
//!    then, and its learned limit paces what follows) is honoured once without charge. A 429
//!    storm therefore costs at most one extra, server-paced attempt per call plus what the
//!    budget allows, however its `Retry-After` reads (`Retry-After: 0` holds nothing and is
//!    charged).
//!
//! A request the server refused before processing any of it (an HTTP/2 `REFUSED_STREAM`, a
//! stream past a graceful `GOAWAY`: [`Why::RefusedUnprocessed`]) is gRPC A6's transparent
//! retry: the call's first refusal is sent again at once (no backoff), outside its attempts
//! and free of the budget, so a server rotating its connections costs a busy client nothing.
//! Only a one-shot body (1.), the deadline (6.) and an open breaker (7.) stop it; a caller's
//! predicate that asked for a wait has it. A later refusal of the same call is a retry that
//! waits its backoff and counts in its attempts, but it too is free of the budget (and of a
//! quota's retry share): the server processed nothing, so it added none of the load the budget
//! bounds. A server that rotates its HTTP/2 connections often under many concurrent streams
//! refuses some calls on several connections in a row; charged, those resends emptied the
//! budget and failed calls that the next connection would have served.

use core::time::Duration;

use crate::classify::Processed;
use crate::engine::failure::{Detail, Hint};
use crate::time::Instant;
use crate::why::Why;

/// What the rule looks at.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetryInput {
    /// The body can be sent again.
    pub replayable: bool,
    /// The method is idempotent or the call carries an Idempotency-Key.
    pub safe_to_repeat: bool,
    /// Whether the failed attempt may have been applied.
    pub processed: Processed,
    /// Attempts made so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The server's `Retry-After`, uncapped.
    pub retry_after: Option<Duration>,
    /// The cap on server-asked waits.
    pub cap: Duration,
    /// The call's deadline.
    pub deadline: Option<Instant>,
    /// The failure was a 429 and the call has not yet had its one budget-free, server-paced
    /// retry.
    pub first_throttle: bool,
    /// The wait the caller's retry predicate asked for ([`crate::RetryVerdict::RetryAfter`]):
    /// it replaces the server's and backoff, is capped like `Retry-After`, and is never the
    /// budget-free retry of a 429 (a refusal's resend stays free with it: [`Refused::First`]).
    pub predicate_wait: Option<Duration>,
    /// Whether the failure was a refusal before any processing, and the call's first or not.
    pub refusal: Refused,
    /// Now.
    pub now: Instant,
}

/// The rule's answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum RetryDecision {
    /// Try again at `at` (after `delay`), because of `why` (backoff or Retry-After).
    Retry {
        /// When.
        at: Instant,
        /// How long from now.
        delay: Duration,
        /// [`Why::Backoff`] or [`Why::RetryAfterHeader`].
        why: Why,
    },
    /// Give up.
    Fail {
        /// Why.
        why: Why,
        /// When the host may be tried again, if known.
        retry_at: Option<Instant>,
        /// Data for the reason.
        detail: Detail,
    },
}

fn fail(why: Why) -> RetryDecision {
    RetryDecision::Fail {
        why,
        retry_at: None,
        detail: Detail::None,
    }
}

/// A failure the server refused before processing any of it (an HTTP/2 `REFUSED_STREAM`, a
/// stream past a graceful `GOAWAY`), as the retry rule sees it. Every refusal's retry is free
/// of the budget.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a refusal.
    No,
    /// The call's first: sent again at once, outside its attempts.
    First,
    /// A later one: a retry that waits its backoff and counts in the call's attempts.
    Again,
}

/// The retry rule (see the module docs for its order). Inline into its one caller in the
/// engine, which then passes its input and closures in registers instead of building them in
/// memory.
#[inline(always)]
pub fn decide(
    input: RetryInput,
    backoff: impl FnOnce() -> Duration,
    open_until: impl FnOnce(Instant) -> Option<Instant>,
    withdraw: impl FnOnce() -> bool,
) -> RetryDecision {
    if !input.replayable {
        return fail(Why::BodyNotReplayable);
    }
    if input.processed != Processed::Never && !input.safe_to_repeat {
        return fail(Why::NotIdempotent);
    }
    if input.attempts >= input.max_attempts && input.refusal != Refused::First {
        return fail(Why::MaxAttempts);
    }
    let (asked, hint) = match input.predicate_wait {
        Some(wait) => (Some(wait), Hint::RetryPredicate),
        None => (input.retry_after, Hint::RetryAfter),
    };
    if let Some(asked) = asked.filter(|ra| *ra > input.cap) {
        return RetryDecision::Fail {
            why: Why::RetryAfterTooLong,
            // When the server said it may be called again (the engine holds it for the cap).
            retry_at: (hint == Hint::RetryAfter).then_some(input.now + asked),
            detail: Detail::WaitTooLong {
                asked,
                cap: input.cap,
                hint,
            },
        };
    }
    let (delay, why) = match (input.predicate_wait, input.retry_after) {
        (Some(wait), _) => (wait, Why::RetryPredicate),
        _ if input.refusal == Refused::First => (Duration::ZERO, Why::RefusedUnprocessed),
        (None, Some(ra)) if !ra.is_zero() => (ra, Why::RetryAfterHeader),
        _ => (backoff(), Why::Backoff),
    };
    let at = input.now + delay;
    if input.deadline.is_some_and(|d| at >= d) {
        return fail(Why::DeadlineWouldPass);
    }
    if let Some(until) = open_until(at) {
        return RetryDecision::Fail {
            why: Why::BreakerOpen,
            retry_at: Some(until),
            detail: Detail::None,
        };
    }
    let server_paced = input.first_throttle && why == Why::RetryAfterHeader;
    let free = server_paced || input.refusal != Refused::No;
    if !free && !withdraw() {
        return fail(Why::BudgetExhausted);
    }
    RetryDecision::Retry { at, delay, why }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const MS: Duration = Duration::from_millis(1);

    fn base() -> RetryInput {
        RetryInput {
            replayable: true,
            safe_to_repeat: true,
            processed: Processed::Yes,
            attempts: 1,
            max_attempts: 4,
            retry_after: None,
            cap: 60_000 * MS,
            deadline: Some(Instant::ZERO + 30_000 * MS),
            first_throttle: false,
            predicate_wait: None,
            refusal: Refused::No,
            now: Instant::ZERO,
        }
    }

    /// Each row: a change to the base input, whether the breaker is open at the retry time,
    /// whether the budget holds, and the expected reason (Backoff / RetryAfterHeader mean a
    /// retry).
    #[test]
    fn the_rule_as_a_table() {
        type Row = (&'static str, fn(&mut RetryInput), bool, bool, Why);
        let rows: [Row; 16] = [
            ("plain retry", |_| {}, false, true, Why::Backoff),
            (
                "one-shot body",
                |i| i.replayable = false,
                false,
                true,
                Why::BodyNotReplayable,
            ),
            (
                "applied write, no key",
                |i| i.safe_to_repeat = false,
                false,
                true,
                Why::NotIdempotent,
            ),
            (
                "unsent write, no key",
                |i| {
                    i.safe_to_repeat = false;
                    i.processed = Processed::Never;
                },
                false,
                true,
                Why::Backoff,
            ),
            (
                "attempts used up",
                |i| i.attempts = 4,
                false,
                true,
                Why::MaxAttempts,
            ),
            (
                "retry-after 2 s",
                |i| i.retry_after = Some(2000 * MS),
                false,
                true,
                Why::RetryAfterHeader,
            ),
            (
                "retry-after 0 backs off",
                |i| i.retry_after = Some(Duration::ZERO),
                false,
                true,
                Why::Backoff,
            ),
            (
                "retry-after over cap",
                |i| i.retry_after = Some(61_000 * MS),
                false,
                true,
                Why::RetryAfterTooLong,
            ),
            (
                "retry-after past deadline",
                |i| i.retry_after = Some(30_000 * MS),
                false,
                true,
                Why::DeadlineWouldPass,
            ),
            ("breaker open then", |_| {}, true, true, Why::BreakerOpen),
            ("budget spent", |_| {}, false, false, Why::BudgetExhausted),
            (
                "budget spent, repeated 429",
                |i| i.retry_after = Some(1000 * MS),
                false,
                false,
                Why::BudgetExhausted,
            ),
            (
                "budget spent, first paced 429 is free",
                |i| {
                    i.retry_after = Some(1000 * MS);
                    i.first_throttle = true;
                },
                false,
                false,
                Why::RetryAfterHeader,
            ),
            (
                "budget spent, 429 with Retry-After 0 is charged",
                |i| {
                    i.retry_after = Some(Duration::ZERO);
                    i.first_throttle = true;
                },
                false,
                false,
                Why::BudgetExhausted,
            ),
            (
                "budget spent, a later refusal backs off free",
                |i| {
                    i.processed = Processed::Never;
                    i.refusal = Refused::Again;
                },
                false,
                false,
                Why::Backoff,
            ),
            (
                "a later refusal with its attempts used up",
                |i| {
                    i.processed = Processed::Never;
                    i.refusal = Refused::Again;
                    i.attempts = 4;
                },
                false,
                false,
                Why::MaxAttempts,
            ),
        ];
        for (name, change, open, budget, expected) in rows {
            let mut input = base();
            change(&mut input);
            let got = decide(
                input,
                || 100 * MS,
                |at| open.then_some(at + 5 * MS),
                || budget,
            );
            let why = match got {
                RetryDecision::Retry { why, .. } => why,
                RetryDecision::Fail { why, .. } => why,
            };
            assert_eq!(why, expected, "{name}: {got:?}");
        }
    }

    #[test]
    fn an_early_failure_draws_no_backoff_and_spends_no_budget() {
        let mut input = base();
        input.attempts = 4;
        let got = decide(
            input,
            || panic!("no backoff draw"),
            |_| panic!("no breaker look"),
            || panic!("no budget spent"),
        );
        assert!(matches!(
            got,
            RetryDecision::Fail {
                why: Why::MaxAttempts,
                ..
            }
        ));
    }

    #[test]
    fn a_wait_over_the_cap_carries_what_was_asked() {
        let mut input = base();
        input.retry_after = Some(3_600_000 * MS);
        let got = decide(input, || MS, |_| None, || true);
        assert_eq!(
            got,
            RetryDecision::Fail {
                why: Why::RetryAfterTooLong,
                retry_at: Some(Instant::ZERO + 3_600_000 * MS),
                detail: Detail::WaitTooLong {
                    asked: 3_600_000 * MS,
                    cap: 60_000 * MS,
                    hint: Hint::RetryAfter
                },
            }
        );
    }
}
