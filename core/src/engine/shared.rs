//! Fleet mode in the engine: the rate-limit step of admission asks the fleet's store
//! ([`Action::Reserve`]) instead of the local limiter, and what the engine learns from servers
//! (holds, limits, with `fleet.share_breaker` breaker openings) goes to the store
//! ([`Action::Share`]). The exchange, its cost and how time is agreed are in [`crate::fleet`].
//!
//! ```text
//!   admission step 6 ─ store up ──▶ Reserve ─▶ Phase::Reserving (timer: answer_within, deadline)
//!                    │                 answer ─▶ Admitted: send · NotBefore: wait, then send
//!                    │                           Refused: fail (the deadline would pass)
//!                    │                           Held: hold the host locally, admission again
//!                    │                           Unavailable ─┐
//!                    │                 timer fires ───────────┴▶ fallback (event), admission again
//!                    └ store down (for recheck_ms) ─▶ the local share: limit / fleet.size
//! ```
//!
//! The engine decides every fallback itself, on its own timers: an adapter only carries the
//! question and the answer, so a store that hangs costs a call at most `answer_within_ms`.

use core::time::Duration;
use std::sync::Arc;

use crate::classify::Processed;
use crate::config::FleetConfig;
use crate::engine::action::Action;
use crate::engine::call::{CallId, Phase};
use crate::engine::event::EventKind;
use crate::engine::failure::{Failure, Hint};
use crate::engine::timer::TimerKey;
use crate::engine::Engine;
use crate::fleet::{Reservation, SharedLimit, SharedUpdate, StoreProblem};
use crate::limit::Gcra;
use crate::map::SortedMap;
use crate::time::Instant;
use crate::why::Why;

/// The engine's fleet state: whether the store answers, and each host's local share for when
/// it does not.
#[derive(Debug)]
pub(crate) struct Fleet {
    pub config: FleetConfig,
    health: Health,
    /// Per host: the shared limit a local share was cut from, and that share's limiter.
    local: SortedMap<Arc<str>, (SharedLimit, Gcra)>,
}

/// Whether the store is asked.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Health {
    Up,
    /// It failed at `since`; the local share applies until `recheck`, then it is asked again.
    Down {
        since: Instant,
        recheck: Instant,
    },
}

/// Where a call stands with the store for its next attempt.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Ticket {
    #[default]
    None,
    /// The store booked a later slot for this attempt; on waking, the call asks once more,
    /// only for holds, so a hold published meanwhile (a 429 elsewhere) still stops it.
    Booked(u32),
    /// The store cleared this attempt: send.
    Cleared(u32),
}

/// What the fleet's rate-limit step lets the call do.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Go on to the send.
    Send,
    /// The call waits (for the store's answer or a slot) or has ended.
    Stop,
}

impl Fleet {
    pub(crate) fn new(config: FleetConfig) -> Fleet {
        Fleet {
            config,
            health: Health::Up,
            local: SortedMap::new(),
        }
    }
}

impl Engine {
    /// Admission step 6 in fleet mode (the caller checked that the call holds no slot yet).
    pub(crate) fn fleet_limit(&mut self, slot: u32, host: usize, now: Instant) -> Gate {
        let limit = self.hosts[host].limiter.map(|g| {
            SharedLimit::from_config(&crate::config::LimitConfig {
                per_second: g.per_second(),
                burst: u32::try_from(g.burst()).unwrap_or(u32::MAX),
            })
        });
        let Some(fleet) = self.fleet.as_mut() else {
            return Gate::Send;
        };
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return Gate::Stop;
        };
        let (id, deadline) = (c.id, c.deadline);
        let attempt = c.attempts + 1;
        let limit = match c.fleet {
            Ticket::Cleared(a) if a == attempt => return Gate::Send,
            // Its slot is booked: only holds are asked about.
            Ticket::Booked(a) if a == attempt => None,
            _ => limit,
        };
        if let Health::Down { recheck, .. } = fleet.health {
            if now < recheck {
                return self.local_share(slot, host, limit, now);
            }
        }
        // Ask the store, and wait for its answer at most `answer_within_ms` (never past the
        // deadline).
        c.phase = Phase::Reserving;
        let within = now + Duration::from_millis(fleet.config.answer_within_ms);
        let cap = self.retry_after_cap();
        let max_wait = deadline.map_or(cap, |d| (d - now).min(cap));
        self.set_timer(slot, deadline.map_or(within, |d| d.min(within)));
        self.actions.push(Action::Reserve {
            call: id,
            attempt,
            host: self.hosts[host].name.clone(),
            limit,
            max_wait,
        });
        Gate::Stop
    }

    /// The store is down: pace this host at this instance's share of its limit.
    fn local_share(
        &mut self,
        slot: u32,
        host: usize,
        limit: Option<SharedLimit>,
        now: Instant,
    ) -> Gate {
        let Some(limit) = limit else {
            return Gate::Send;
        };
        let Some(fleet) = self.fleet.as_mut() else {
            return Gate::Send;
        };
        let size = fleet.config.size;
        let name = &self.hosts[host].name;
        let share = fleet.local.get_or_insert_with(&**name, || {
            (name.clone(), (limit, Gcra::new(&limit.share(size))))
        });
        if share.0 != limit {
            *share = (limit, share.1.retuned(&limit.share(size)));
        }
        let at = share.1.reserve(now);
        if at <= now {
            return Gate::Send;
        }
        let Some(c) = self.calls[slot as usize].as_ref() else {
            return Gate::Stop;
        };
        let deadline = c.deadline;
        if deadline.is_some_and(|d| at >= d) {
            share.1.release(at, now);
            self.fail_slot_too_late(slot, at, now);
        } else {
            // The local share's slot is booked: on waking the call sends.
            self.wait_for_slot(slot, at, Why::ClientRateLimit, true, now);
        }
        Gate::Stop
    }

    /// The first slot is at `at`, past the call's deadline: fail it, saying when.
    fn fail_slot_too_late(&mut self, slot: u32, at: Instant, now: Instant) {
        let f = Failure::new(Why::DeadlineWouldPass, 0, None, Processed::Never).retry_at(Some(at));
        self.fail(slot, f, now);
    }

    /// The store's answer to the [`Action::Reserve`] for attempt `attempt` of `call`. An answer
    /// that comes after the engine stopped waiting for it (the attempt fell back, or the call
    /// ended) is ignored. `now` is when the answer arrived: waits count from it.
    pub fn handle_reservation(
        &mut self,
        call: CallId,
        attempt: u32,
        answer: Reservation,
        now: Instant,
    ) {
        let Some(slot) = self.live(call) else { return };
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        if !matches!(c.phase, Phase::Reserving) || c.attempts + 1 != attempt {
            return;
        }
        c.phase = Phase::Ready;
        self.timers.disarm(&mut c.timer, TimerKey::of(c.id));
        let (host, deadline) = (c.host as usize, c.deadline);
        match answer {
            Reservation::Unavailable(problem) => self.store_down(problem, now),
            _ => self.store_up(now),
        }
        match answer {
            Reservation::Admitted => {
                if let Some(c) = self.calls[slot as usize].as_mut() {
                    c.fleet = Ticket::Cleared(attempt);
                }
                self.advance(slot, now);
            }
            Reservation::NotBefore { wait } => {
                let at = now + wait;
                if deadline.is_some_and(|d| at >= d) {
                    self.fail_slot_too_late(slot, at, now);
                } else {
                    if let Some(c) = self.calls[slot as usize].as_mut() {
                        c.fleet = Ticket::Booked(attempt);
                    }
                    self.wait_for_slot(slot, at, Why::FleetRateLimit, false, now);
                }
            }
            Reservation::Refused { wait } => self.fail_slot_too_late(slot, now + wait, now),
            Reservation::Held { wait, why } => {
                // Another instance's hint: hold the host here too (without telling the fleet
                // again), and walk admission anew, which waits the hold out. A slot booked
                // before the hold is given up: after it, the call books afresh.
                if let Some(c) = self.calls[slot as usize].as_mut() {
                    c.fleet = Ticket::None;
                }
                self.hold_local(host, now + wait, why, Hint::Fleet, now);
                self.advance(slot, now);
            }
            Reservation::Unavailable(_) => self.advance(slot, now),
        }
        self.settle(now);
    }

    /// The timer of a call in [`Phase::Reserving`] fired: its deadline passed, or the store
    /// took longer than `answer_within_ms`.
    pub(crate) fn reservation_timed_out(&mut self, slot: u32, past_deadline: bool, now: Instant) {
        if let Some(c) = self.calls[slot as usize].as_mut() {
            c.phase = Phase::Ready;
        }
        if past_deadline {
            self.fail_why(slot, Why::DeadlineExceeded, Processed::Never, now);
            return;
        }
        self.store_down(StoreProblem::Timeout, now);
        self.advance(slot, now);
    }

    fn store_down(&mut self, problem: StoreProblem, now: Instant) {
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        let recheck = now + Duration::from_millis(fleet.config.recheck_ms);
        let was_up = fleet.health == Health::Up;
        let since = match fleet.health {
            Health::Down { since, .. } => since,
            Health::Up => now,
        };
        fleet.health = Health::Down { since, recheck };
        if was_up {
            let share_of = fleet.config.size;
            self.event(
                now,
                EventKind::FleetFallback {
                    problem,
                    share_of,
                    until: recheck,
                },
            );
        }
    }

    fn store_up(&mut self, now: Instant) {
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        if let Health::Down { since, .. } = fleet.health {
            fleet.health = Health::Up;
            // A share's limiter starts afresh at the next fallback.
            fleet.local.clear();
            self.event(
                now,
                EventKind::FleetResumed {
                    down_for: now - since,
                },
            );
        }
    }

    /// Tells the fleet what this instance learned about `host` (no-op outside fleet mode).
    pub(crate) fn share(&mut self, host: usize, update: SharedUpdate) {
        let Some(fleet) = self.fleet.as_ref() else {
            return;
        };
        if matches!(update, SharedUpdate::BreakerOpen { .. }) && !fleet.config.share_breaker {
            return;
        }
        self.actions.push(Action::Share {
            host: self.hosts[host].name.clone(),
            update,
        });
    }
}

#[cfg(test)]
mod tests;
