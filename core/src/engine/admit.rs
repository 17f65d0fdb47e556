//! Before a send: the admission pipeline a ready (or woken) call walks, in this order:
//!
//! 1. the deadline: passed → [`Why::DeadlineExceeded`];
//! 2. the breaker: open → fail fast with when it may be tried again;
//! 3. a server hold on the host (`Retry-After`, a used-up quota): wait it out, spread over a
//!    slice of its length afterwards; a hold that outlasts the deadline fails the call with the
//!    hold's reason, its end and the header that asked for it;
//! 4. the access token: usable, refresh early in the background, or wait for a fetch;
//! 5. concurrency (client-wide and per host, the per-host bound adaptive where configured): no
//!    free slot → queue, first come first served, for at most `concurrency.max_queue_ms`
//!    ([`Why::QueueTimeout`]) and never past the deadline;
//! 6. the client-side rate limits (configured or learned, and the adaptive client rate): book a
//!    slot and a token and wait for the later; a learned limit that would wait past the cap fails
//!    with [`Why::RetryAfterTooLong`] naming its header; in fleet mode the fleet's store books
//!    the slot instead (`shared.rs`);
//! 7. the breaker's admission (a half-open probe slot) and the send, whose attempt deadline the
//!    engine keeps.
//!
//! Every "not now" answers the same way: a wait until a time, with its [`Why`].

use core::time::Duration;

use crate::breaker::{Admit, Refusal};
use crate::classify::Processed;
use crate::engine::action::{Action, AttemptHeaders};
use crate::engine::call::{Authorization, Phase};
use crate::engine::event::EventKind;
use crate::engine::failure::{Detail, Failure, Hint};
use crate::engine::flight::Flight;
use crate::engine::shared::Gate;
use crate::engine::timer::TimerKey;
use crate::engine::Engine;
use crate::rng::RandomSource;
use crate::time::{duration_nanos, Instant};
use crate::token::{FetchStart, TokenStatus};
use crate::why::Why;

impl Engine {
    /// Moves a ready (or woken) call as far as it can go: fail, wait, queue or send.
    pub(crate) fn advance(&mut self, slot: u32, now: Instant) {
        let Some(c) = self.calls[slot as usize].as_ref() else {
            return;
        };
        let (id, host, deadline) = (c.id, c.host as usize, c.deadline);
        let needs_token = c.authorization == Authorization::Token;
        let reserved = matches!(c.phase, Phase::Waiting { reserved: true, .. });
        if let Some(c) = self.calls[slot as usize].as_mut() {
            // Woken: the slot booked for now is used now (or given up below).
            c.phase = Phase::Ready;
        }
        // 1. The deadline.
        if deadline.is_some_and(|d| now >= d) {
            self.fail_why(slot, Why::DeadlineExceeded, Processed::Never, now);
            return;
        }
        let past_deadline = |t: Instant| deadline.is_some_and(|d| t >= d);

        // 2. The breaker: fail fast while open.
        if let Err(refusal) = self.hosts[host].breaker.peek(&self.config.breaker, now) {
            self.refuse(slot, refusal, now);
            return;
        }
        // 3. A server hold on the host. Waiters wake spread over a slice of their wait after
        // the hold ends, so the host is not met by all of them in one instant.
        let h = &self.hosts[host];
        if h.hold_until > now {
            let (hold, why, hint) = (h.hold_until, h.hold_why, h.hold_hint);
            let spread = duration_nanos(hold - now) as f64 * self.config.retry.hold_spread;
            let until = hold + Duration::from_nanos(self.rng.below(spread as u64));
            if past_deadline(until) {
                let f = Failure::new(why, 0, None, Processed::Never)
                    .retry_at(Some(hold))
                    .detail(Detail::HostHeld { hint });
                self.fail(slot, f, now);
                return;
            }
            self.wait_for_slot(slot, until, why, false, now);
            return;
        }
        // 4. The token.
        let mut token = None;
        if needs_token {
            match self.token.status(now) {
                TokenStatus::Usable {
                    generation,
                    refresh,
                } => {
                    token = Some(generation);
                    if refresh {
                        self.fetch_token(Why::TokenExpiring, now);
                    }
                }
                TokenStatus::Refused { until } => {
                    let failure = Failure::new(Why::TokenFetchFailed, 0, None, Processed::Never);
                    self.fail(slot, failure.retry_at(Some(until)), now);
                    return;
                }
                TokenStatus::Wait(why) => {
                    self.fetch_token(why, now);
                    if let Some(c) = self.calls[slot as usize].as_mut() {
                        c.phase = Phase::WaitingToken;
                    }
                    if let Some(d) = deadline {
                        self.set_timer(slot, d);
                    }
                    self.event(now, EventKind::WaitingForToken { call: id, why });
                    return;
                }
            }
        }
        // 5. Concurrency: queue for a slot.
        if !self.has_room(host) {
            self.stats.concurrency_waits += 1;
            if let Some(c) = self.calls[slot as usize].as_mut() {
                c.phase = Phase::Queued;
            }
            let h = &mut self.hosts[host];
            if h.queued.is_empty() {
                self.queued_hosts.push(host as u32);
            }
            h.queued.push_back((self.queue_seq, id));
            self.queue_seq += 1;
            let limit = self
                .config
                .concurrency
                .max_queue_ms
                .map(|ms| now + Duration::from_millis(ms));
            let until = match (deadline, limit) {
                (Some(d), Some(l)) => Some(d.min(l)),
                (d, l) => d.or(l),
            };
            if let Some(at) = until {
                self.set_timer(slot, at);
            }
            let why = self.queue_why(host);
            self.event(now, EventKind::Queued { call: id, why });
            return;
        }
        // 6. The client-side rate limits: book a slot and a token, and wait for the later.
        self.lapse_learned_limit(host, now);
        if !reserved && self.fleet.is_some() {
            // Fleet mode: the store's shared limit (or, while it is down, the local share).
            if self.fleet_limit(slot, host, now) == Gate::Stop {
                return;
            }
        } else if !reserved {
            if let Some(at) = self
                .adaptive_rate_wait(host, now)
                .filter(|t| past_deadline(*t))
            {
                let f = Failure::new(Why::DeadlineWouldPass, 0, None, Processed::Never)
                    .retry_at(Some(at));
                self.fail(slot, f, now);
                return;
            }
            let mut wait = None;
            let cap = self.retry_after_cap();
            let learned_from = self.hosts[host].learned_from;
            if let Some(limiter) = self.hosts[host].limiter.as_mut() {
                if let Err(not_until) = limiter.peek(now) {
                    let asked = not_until.wait_time_from(now);
                    if let (Some(source), true) = (learned_from, asked > cap) {
                        // A server taught this pace: cap it like any other server-asked wait.
                        let f = Failure::new(Why::RetryAfterTooLong, 0, None, Processed::Never)
                            .retry_at(Some(not_until.at))
                            .detail(Detail::WaitTooLong {
                                asked,
                                cap,
                                hint: Hint::RateLimit(source),
                            });
                        self.fail(slot, f, now);
                        return;
                    }
                    if past_deadline(not_until.at) {
                        let f = Failure::new(Why::DeadlineWouldPass, 0, None, Processed::Never)
                            .retry_at(Some(not_until.at));
                        self.fail(slot, f, now);
                        return;
                    }
                }
                let at = limiter.reserve(now);
                if at > now {
                    wait = Some((at, Why::ClientRateLimit));
                }
            }
            if let Some(at) = self.book_adaptive_rate(host, now) {
                if wait.is_none_or(|(w, _)| at > w) {
                    wait = Some((at, Why::AdaptiveRate));
                }
            }
            if let Some((until, why)) = wait {
                self.wait_for_slot(slot, until, why, true, now);
                return;
            }
        }
        // 7. Admission (takes a half-open probe slot) and send.
        let (admitted, transition) = self.hosts[host].breaker.admit(&self.config.breaker, now);
        self.breaker_event(host, transition, now);
        let admit = match admitted {
            Ok(a) => a,
            Err(refusal) => {
                self.refuse(slot, refusal, now);
                return;
            }
        };
        self.send(slot, admit, token, now);
    }

    /// Sends the call's next attempt (a hedge too: see `hedge.rs`).
    pub(crate) fn send(&mut self, slot: u32, admit: Admit, token: Option<u32>, now: Instant) {
        let attempt_timeout = self.attempt_timeout;
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        let host = c.host as usize;
        c.attempts += 1;
        let left = c.deadline.map(|d| d - now);
        let timeout = match (attempt_timeout, left) {
            (Some(a), Some(l)) => Some(a.min(l)),
            (a, l) => a.or(l),
        };
        let expires = timeout.map(|t| now + t);
        c.phase = Phase::InFlight;
        let flight = Flight {
            attempt: c.attempts,
            admit,
            token,
            expires,
            sent: now,
            in_flight: self.hosts[host].in_flight + 1,
        };
        c.flights.push(flight, &mut self.hedge_slots);
        let headers = AttemptHeaders {
            request_id: c.request_id,
            idempotency_key: c.key,
            token,
            authorization: c.authorization,
        };
        let (id, attempt) = (c.id, c.attempts);
        self.hosts[host].in_flight += 1;
        self.in_flight += 1;
        self.arm_hedge(slot, now);
        self.arm_in_flight(slot);
        self.stats.attempts += 1;
        self.event(
            now,
            EventKind::AttemptStarted {
                call: id,
                attempt,
                timeout,
                probe: matches!(admit, Admit::Probe(_)),
            },
        );
        // Built where it is pushed, with nothing between: written into its queue slot in
        // place, not built on the stack and copied there.
        self.actions.push(Action::Send {
            call: id,
            attempt,
            timeout,
            headers,
        });
    }

    /// Whether an attempt to `host` may start under the concurrency limits.
    pub(crate) fn has_room(&self, host: usize) -> bool {
        let c = &self.config.concurrency;
        c.max_in_flight.is_none_or(|m| self.in_flight < m)
            && self
                .per_host_limit(host)
                .is_none_or(|m| self.hosts[host].in_flight < m)
    }

    /// An attempt to `host` ended: its concurrency slot is free.
    pub(crate) fn release_slot(&mut self, host: usize) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.in_flight = h.in_flight.saturating_sub(1);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Hands free concurrency slots to queued calls, first come first served. Runs at the end
    /// of every input, after the call that freed a slot has decided. Out of line: most
    /// inputs find no call queued, and `settle` stays small for them.
    #[inline(never)]
    pub(crate) fn dispatch_queue(&mut self, now: Instant) {
        // Each host keeps its own queue, so a host at its own bound costs one look per input,
        // not one per call queued behind it; the oldest head among hosts with room goes first.
        loop {
            // No slot anywhere: no queued call can go, whatever its host.
            if self
                .config
                .concurrency
                .max_in_flight
                .is_some_and(|m| self.in_flight >= m)
            {
                return;
            }
            let mut oldest: Option<(u64, usize)> = None;
            let mut i = 0;
            while i < self.queued_hosts.len() {
                let host = self.queued_hosts[i] as usize;
                // Calls that ended or moved on while queued leave when they reach the head.
                while let Some(&(_, id)) = self.hosts[host].queued.front() {
                    let waiting = self
                        .live(id)
                        .and_then(|s| self.calls[s as usize].as_ref())
                        .is_some_and(|c| matches!(c.phase, Phase::Queued));
                    if waiting {
                        break;
                    }
                    self.hosts[host].queued.pop_front();
                }
                let Some(&(seq, _)) = self.hosts[host].queued.front() else {
                    self.queued_hosts.swap_remove(i);
                    continue;
                };
                if self.has_room(host) && oldest.is_none_or(|(s, _)| seq < s) {
                    oldest = Some((seq, host));
                }
                i += 1;
            }
            let Some((_, host)) = oldest else { return };
            let Some((_, id)) = self.hosts[host].queued.pop_front() else {
                return;
            };
            if let Some(c) = self.calls[id.slot as usize].as_mut() {
                c.phase = Phase::Ready;
                self.timers.disarm(&mut c.timer, TimerKey::of(c.id));
            }
            self.advance(id.slot, now);
        }
    }

    pub(crate) fn refuse(&mut self, slot: u32, refusal: Refusal, now: Instant) {
        self.stats.breaker_rejections += 1;
        let (why, at) = match refusal {
            Refusal::Open(until) => (Why::BreakerOpen, Some(until)),
            Refusal::ProbesBusy => (Why::BreakerProbesBusy, None),
            Refusal::Isolated => (Why::BreakerIsolated, None),
        };
        self.fail(
            slot,
            Failure::new(why, 0, None, Processed::Never).retry_at(at),
            now,
        );
    }

    /// Asks for a token fetch, unless one is in flight or put off (the last ones returned
    /// tokens that expired at once: the fetch then waits on its own timer).
    pub(crate) fn fetch_token(&mut self, why: Why, now: Instant) {
        match self.token.begin_fetch(now) {
            FetchStart::Start => {
                self.token_fetch_at = None;
                self.stats.token_fetches += 1;
                self.event(now, EventKind::TokenFetchStarted { why });
                self.actions.push(Action::FetchToken { why });
            }
            FetchStart::InFlight => {}
            FetchStart::NotUntil(at) => {
                if self.token_fetch_at.is_none_or(|(t, _)| at < t) {
                    self.token_fetch_at = Some((at, why));
                }
            }
        }
    }
}
