//! Hedging: while an attempt of an idempotent read is out, another is sent after the hedge
//! delay (gRPC A6 `hedgingPolicy`, Polly's hedging, Finagle's backup requests); the first good
//! answer wins and the others are aborted.
//!
//! ```text
//!   send attempt n ─▶ arm the hedge: at now + delay (fixed, or the host's latency percentile)
//!   hedge due, attempts still out ─▶ deadline? breaker closed? no hold? a free slot now? a
//!        rate-limit slot now? a retry in the budget? ─ yes ─▶ HedgeSent, attempt n+1 (armed again)
//!                                                      └ no ─▶ HedgeRefused{why}; the others carry on
//!   an answer while others are out:
//!        good (or final) ─▶ the others get Abort(hedge_lost); the call goes on as with one attempt
//!        retryable failure ─▶ ends that attempt only; the others decide
//! ```
//!
//! A call has one timer while it is in flight: the earliest of its attempts' deadlines and its
//! next hedge ([`Engine::arm_in_flight`]), so `poll_timeout` stays exact.

use core::time::Duration;

use crate::breaker::BreakerState;
use crate::classify::Method;
use crate::engine::call::{Authorization, Call, Phase};
use crate::engine::event::EventKind;
use crate::engine::timer::TimerKey;
use crate::engine::Engine;
use crate::quota::RetryKind;
use crate::throttle::Throttled;
use crate::time::Instant;
use crate::token::TokenStatus;
use crate::why::Why;

/// A call's next hedge.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hedge {
    /// When it is due, and the delay and reason that set that time.
    pub due: Option<(Instant, Duration, Why)>,
    /// Hedges sent so far.
    pub sent: u32,
}

impl Engine {
    /// Whether `c` may be hedged at all: hedging is on and the call is a replayable GET, HEAD
    /// or OPTIONS (never a write, not even with a key).
    fn hedgeable(&self, c: &Call) -> bool {
        self.config.hedge.enabled
            && c.replayable
            && matches!(c.method, Method::Get | Method::Head | Method::Options)
    }

    /// The hedge delay for `host`: its latency percentile once it has enough samples (within
    /// the floor and the cap), else the fixed delay.
    fn hedge_delay(&self, host: usize) -> (Duration, Why) {
        let h = &self.config.hedge;
        let fixed = (Duration::from_millis(h.delay_ms), Why::HedgeDelay);
        let (Some(q), Some(latencies)) = (
            h.percentile,
            self.hosts.get(host).and_then(|h| h.latencies.as_deref()),
        ) else {
            return fixed;
        };
        if latencies.samples() < h.min_samples {
            return fixed;
        }
        match latencies.quantile(q) {
            Some(d) => (
                d.clamp(
                    Duration::from_millis(h.min_delay_ms),
                    Duration::from_millis(h.max_delay_ms),
                ),
                Why::HedgePercentile,
            ),
            None => fixed,
        }
    }

    /// After an attempt of `slot` was sent at `now`: the next hedge, if the call may have one
    /// before its deadline.
    pub(crate) fn arm_hedge(&mut self, slot: u32, now: Instant) {
        let Some(c) = self.calls[slot as usize].as_ref() else {
            return;
        };
        let more = self.hedgeable(c)
            && c.hedge.sent < self.config.hedge.max_hedges
            && c.attempts < c.max_attempts;
        let due = more.then(|| {
            let (delay, why) = self.hedge_delay(c.host as usize);
            (now + delay, delay, why)
        });
        let due = due.filter(|(at, _, _)| c.deadline.is_none_or(|d| *at < d));
        if let Some(c) = self.calls[slot as usize].as_mut() {
            c.hedge.due = due;
        }
    }

    /// Makes the in-flight call's one timer the earliest of its attempts' deadlines and its
    /// next hedge.
    pub(crate) fn arm_in_flight(&mut self, slot: u32) {
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        let hedge = c.hedge.due.map(|(at, _, _)| at);
        let at = match (c.flights.next_expiry(&self.hedge_slots), hedge) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match at {
            Some(at) if c.timer.at() != Some(at) => self.set_timer(slot, at),
            Some(_) => {}
            None => self.timers.disarm(&mut c.timer, TimerKey::of(c.id)),
        }
    }

    /// The in-flight call's timer fired: time out the attempts past their deadline, send the
    /// hedge if it is due, and arm the timer again.
    pub(crate) fn in_flight_due(&mut self, slot: u32, now: Instant) {
        loop {
            let Some(c) = self.calls[slot as usize].as_ref() else {
                return;
            };
            if !matches!(c.phase, Phase::InFlight) {
                return;
            }
            match c.flights.expired(now, &self.hedge_slots) {
                Some(attempt) => self.expire_attempt(slot, attempt, now),
                None => break,
            }
        }
        let due = self.calls[slot as usize]
            .as_ref()
            .and_then(|c| c.hedge.due)
            .filter(|(at, _, _)| *at <= now);
        if let Some((_, delay, why)) = due {
            self.send_hedge(slot, delay, why, now);
        }
        if matches!(self.calls[slot as usize].as_ref(), Some(c) if matches!(c.phase, Phase::InFlight))
        {
            self.arm_in_flight(slot);
        }
    }

    /// The hedge is due: send it if everything a retry needs allows it now, or say why not.
    fn send_hedge(&mut self, slot: u32, delay: Duration, why: Why, now: Instant) {
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        c.hedge.due = None;
        let (id, host, deadline) = (c.id, c.host as usize, c.deadline);
        let needs_token = c.authorization == Authorization::Token;
        if let Err(refused) = self.hedge_admits(slot, host, deadline, now) {
            self.event(
                now,
                EventKind::HedgeRefused {
                    call: id,
                    why: refused,
                },
            );
            return;
        }
        let token = if needs_token {
            match self.token.status(now) {
                TokenStatus::Usable { generation, .. } => Some(generation),
                TokenStatus::Wait(w) => {
                    self.event(now, EventKind::HedgeRefused { call: id, why: w });
                    return;
                }
                TokenStatus::Refused { .. } => {
                    let why = Why::TokenFetchFailed;
                    self.event(now, EventKind::HedgeRefused { call: id, why });
                    return;
                }
            }
        } else {
            None
        };
        // The budget last: a hedge refused for any other reason costs nothing.
        if !self.hedge_withdraw(slot, host, now) {
            self.budget_refused(host, id, now);
            self.event(
                now,
                EventKind::HedgeRefused {
                    call: id,
                    why: Why::BudgetExhausted,
                },
            );
            return;
        }
        if let Some(limiter) = self.hosts[host].limiter.as_mut() {
            // `hedge_admits` saw a slot free now: book it.
            limiter.reserve(now);
        }
        let (admitted, transition) = self.hosts[host].breaker.admit(&self.config.breaker, now);
        self.breaker_event(host, transition, now);
        let Ok(admit) = admitted else {
            self.event(
                now,
                EventKind::HedgeRefused {
                    call: id,
                    why: Why::BreakerOpen,
                },
            );
            return;
        };
        let attempt = match self.calls[slot as usize].as_mut() {
            Some(c) => {
                c.hedge.sent += 1;
                c.attempts + 1
            }
            None => return,
        };
        self.stats.hedges += 1;
        self.event(
            now,
            EventKind::HedgeSent {
                call: id,
                attempt,
                delay,
                why,
            },
        );
        self.send(slot, admit, token, now);
    }

    /// What must hold for a hedge besides the budget: before the deadline, the breaker
    /// closed, no server hold, a concurrency slot and a rate-limit slot free now (a hedge never
    /// waits or queues: the attempts out are already waiting).
    fn hedge_admits(
        &self,
        slot: u32,
        host: usize,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Result<(), Why> {
        let h = &self.hosts[host];
        if deadline.is_some_and(|d| now >= d) {
            return Err(Why::DeadlineExceeded);
        }
        let closed = h.breaker.current() == BreakerState::Closed
            && h.breaker.peek(&self.config.breaker, now).is_ok();
        if !closed {
            return Err(Why::BreakerOpen);
        }
        if h.hold_until > now {
            return Err(h.hold_why);
        }
        if self.fleet.is_some() {
            // A hedge never waits, and a slot of the fleet's limit is the store's to give (a
            // round trip that may book a later one): in fleet mode no hedge is sent.
            return Err(Why::FleetRateLimit);
        }
        let full = self.calls[slot as usize]
            .as_ref()
            .is_none_or(|c| c.flights.len(&self.hedge_slots) >= super::flight::MAX_FLIGHTS);
        if full || !self.has_room(host) {
            return Err(Why::ConcurrencyLimit);
        }
        if h.limiter.as_ref().is_some_and(|l| l.peek(now).is_err()) {
            return Err(Why::ClientRateLimit);
        }
        Ok(())
    }

    /// Takes a hedge from the host's budget as a retry would: the retry budget, and under a
    /// preset its gRPC throttle or AWS quota.
    fn hedge_withdraw(&mut self, slot: u32, host: usize, now: Instant) -> bool {
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return false;
        };
        let h = &mut self.hosts[host];
        if h.throttle
            .is_some_and(|t| t.allows_retry() == Throttled::Refused)
        {
            return false;
        }
        if let Some(q) = h.quota.as_mut() {
            if q.try_retry(&mut c.quota_hold, RetryKind::Timeout).is_err() {
                return false;
            }
        }
        h.budget.try_withdraw(now)
    }

    /// An answer settled the call while other attempts were out: abort them (the engine
    /// already ignores whatever they return) and give back what they held.
    pub(crate) fn abort_flights(&mut self, slot: u32, now: Instant) {
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        let (id, host) = (c.id, c.host as usize);
        c.hedge.due = None;
        while let Some(flight) = self.calls[slot as usize]
            .as_mut()
            .and_then(|c| c.flights.pop(&mut self.hedge_slots))
        {
            self.release_slot(host);
            self.release_in_flight(host, flight.admit);
            // It took at least this long: counting it keeps the slow tail in the estimate.
            self.record_latency(host, flight.sent, now);
            self.stats.attempts_aborted += 1;
            self.event(
                now,
                EventKind::AttemptAborted {
                    call: id,
                    attempt: flight.attempt,
                    why: Why::HedgeLost,
                },
            );
            self.actions.push(crate::engine::Action::Abort {
                call: id,
                attempt: flight.attempt,
                why: Why::HedgeLost,
            });
        }
    }

    /// The latency of an attempt sent at `sent` and ended at `now`, for the host's percentile
    /// (kept only when hedging uses one; worked out only then).
    pub(crate) fn record_latency(&mut self, host: usize, sent: Instant, now: Instant) {
        if let Some(l) = self
            .hosts
            .get_mut(host)
            .and_then(|h| h.latencies.as_deref_mut())
        {
            l.record(now - sent);
        }
    }
}
