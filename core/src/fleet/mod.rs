//! Fleet mode, the store-independent half: what the engine asks a shared store, what the store
//! answers, and a reference store ([`MemoryStore`]) that defines the semantics every real store
//! (the native adapter's Redis script) implements.
//!
//! # The exchange
//!
//! ```text
//!   engine ── Action::Reserve { call, attempt, host, limit, max_wait } ──▶ adapter ──▶ store
//!   engine ◀── Engine::handle_reservation(call, attempt, Reservation) ◀── adapter ◀──┘
//!   engine ── Action::Share { host, update: Hold | Limit | BreakerOpen } ──▶ (fire and forget)
//! ```
//!
//! **Per-attempt reservations, not leases.** Before every attempt to a host the engine asks the
//! store for one slot of the host's shared GCRA (`limit`), and the store answers in one atomic
//! step: a fleet-wide hold in force ([`Reservation::Held`]), a slot now
//! ([`Reservation::Admitted`]), a slot booked `wait` from now ([`Reservation::NotBefore`]), or
//! no slot within `max_wait` ([`Reservation::Refused`], nothing booked). A call that waits for
//! a booked slot asks once more when it wakes, for holds only (`limit: None`), so a 429 another
//! instance saw in the meantime stops it too. It costs one store round trip per attempt (two
//! for an attempt that waited for its slot) (on loopback Redis about a tenth of a millisecond, see
//! BENCHMARKS.md), and in exchange the fleet's pace is exact: leases (a slice of the quota spent
//! locally) would save round trips but let a lease holder that dies or stalls strand its slice,
//! and make a 429's hold reach the others only when their leases run out.
//!
//! **Time.** No instance's clock is compared with another's. The store keeps every absolute
//! time on its own clock (Redis: `TIME`, inside the script) and answers with *relative* waits;
//! the engine adds a wait to its own `now` when the answer arrives, and publishes holds as
//! relative waits the store adds to its clock. The only error is the one-way latency between
//! the store and the instance, at most `fleet.answer_within_ms` for an answer the engine uses:
//! an instance sends at most that much *later* than its slot, never earlier, so the upstream
//! sees at most `rate · (t + answer_within) + burst` in any window `t`.
//!
//! **Degrade, never block.** The engine keeps the answer's deadline itself: an answer later than
//! `fleet.answer_within_ms` (or [`Reservation::Unavailable`]) switches the instance to its
//! local share (`limit / fleet.size`) for `fleet.recheck_ms`, with a
//! [`crate::EventKind::FleetFallback`] event naming the reason; the next ask after that which is
//! answered announces [`crate::EventKind::FleetResumed`]. A late answer is dropped (the store
//! may then hold a slot nobody uses: the fleet errs on the slow side).

use core::time::Duration;
use std::sync::Arc;

use serde::Serialize;

use crate::config::LimitConfig;
use crate::map::SortedMap;
use crate::time::{duration_nanos, Instant};
use crate::why::Why;

/// A host's shared rate limit, as the store computes it: one slot every `interval`, up to
/// `burst` at once (GCRA).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SharedLimit {
    /// Time between two slots (`1 / rate`).
    #[serde(rename = "interval_us", serialize_with = "ser_micros")]
    pub interval: Duration,
    /// Slots that may go at once.
    pub burst: u32,
}

impl SharedLimit {
    /// The limit a config describes.
    pub fn from_config(limit: &LimitConfig) -> SharedLimit {
        SharedLimit {
            interval: Duration::from_nanos(((1e9 / limit.per_second).round() as u64).max(1)),
            burst: limit.burst.max(1),
        }
    }

    /// Slots per second.
    pub fn per_second(&self) -> f64 {
        1e9 / duration_nanos(self.interval).max(1) as f64
    }

    /// One instance's share when `size` instances split this limit: `1 / size` of the rate and
    /// of the burst (at least one).
    pub fn share(&self, size: u32) -> LimitConfig {
        let size = size.max(1);
        LimitConfig {
            per_second: self.per_second() / f64::from(size),
            burst: (self.burst / size).max(1),
        }
    }

    /// The slower of two limits (the fleet's learned limit against this instance's own).
    pub fn slower(self, other: SharedLimit) -> SharedLimit {
        if other.interval > self.interval {
            other
        } else {
            self
        }
    }
}

/// The store's answer to [`crate::Action::Reserve`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reservation {
    /// A slot now: send.
    Admitted,
    /// A slot booked `wait` from now: send then, without asking again.
    NotBefore {
        /// Relative to the moment the store answered.
        #[serde(rename = "wait_us", serialize_with = "ser_micros")]
        wait: Duration,
    },
    /// No slot within the `max_wait` asked; nothing was booked. A slot could be had `wait`
    /// from now.
    Refused {
        /// Relative to the moment the store answered.
        #[serde(rename = "wait_us", serialize_with = "ser_micros")]
        wait: Duration,
    },
    /// The fleet holds the host for `wait`: an instance saw a `Retry-After` or a used-up quota
    /// ([`Why::ServerRetryAfterHold`], [`Why::ServerQuotaHold`]) or, with
    /// `fleet.share_breaker`, its breaker opened ([`Why::FleetBreakerOpen`]). Nothing was booked.
    Held {
        /// Relative to the moment the store answered.
        #[serde(rename = "wait_us", serialize_with = "ser_micros")]
        wait: Duration,
        /// Why the host is held.
        why: Why,
    },
    /// The store could not answer.
    Unavailable(StoreProblem),
}

/// Why the store gave no answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreProblem {
    /// No answer within `fleet.answer_within_ms` (the engine decides this one itself).
    Timeout,
    /// The store could not be reached (connection refused, reset, not yet reconnected).
    Unreachable,
    /// The store answered with an error (a refused command, a script error, a wrong reply).
    Rejected,
}

impl StoreProblem {
    /// One short sentence for logs.
    pub fn explain(self) -> &'static str {
        match self {
            StoreProblem::Timeout => "the store did not answer in time",
            StoreProblem::Unreachable => "the store could not be reached",
            StoreProblem::Rejected => "the store answered with an error",
        }
    }
}

/// What an instance tells the fleet ([`crate::Action::Share`]); the adapter sends it and
/// expects no answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "update", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SharedUpdate {
    /// The server holds the host for `wait` from now (a 429's or 503's `Retry-After`, a
    /// `RateLimit: r=0;t=…`): every instance waits it out. A hold only ever extends.
    Hold {
        /// From now.
        #[serde(rename = "wait_us", serialize_with = "ser_micros")]
        wait: Duration,
        /// [`Why::ServerRetryAfterHold`] or [`Why::ServerQuotaHold`].
        why: Why,
    },
    /// The host's headers taught this limit; it applies fleet-wide for `ttl` unless a slower
    /// one is taught.
    Limit {
        /// The learned limit.
        limit: SharedLimit,
        /// How long it holds.
        #[serde(rename = "ttl_us", serialize_with = "ser_micros")]
        ttl: Duration,
    },
    /// This instance's breaker for the host opened for `wait` (only with
    /// `fleet.share_breaker`).
    BreakerOpen {
        /// From now.
        #[serde(rename = "wait_us", serialize_with = "ser_micros")]
        wait: Duration,
    },
}

fn ser_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One host's shared state in a [`MemoryStore`]; absolute times are on the store's clock.
#[derive(Clone, Debug, Default)]
struct Entry {
    tat: Option<Instant>,
    hold: Option<(Instant, Why)>,
    breaker_until: Option<Instant>,
    limit: Option<(SharedLimit, Instant)>,
}

/// The reference store: the semantics of the fleet's one atomic decision, in memory, on the
/// store's own clock (`now`). The Redis script in the native adapter is this function in Lua;
/// the engine's tests run several engines against one `MemoryStore`.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    hosts: SortedMap<Arc<str>, Entry>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// One reservation for `host` at the store's time `now`: a hold in force answers first,
    /// then the host's GCRA (the slower of `limit` and a limit the fleet learned) books a slot
    /// unless it is more than `max_wait` away. `limit: None` asks about holds only.
    pub fn reserve(
        &mut self,
        host: &str,
        limit: Option<SharedLimit>,
        max_wait: Duration,
        now: Instant,
    ) -> Reservation {
        let e = self
            .hosts
            .get_or_insert_with(host, || (Arc::from(host), Entry::default()));
        let holds = [
            e.hold.filter(|(until, _)| *until > now),
            e.breaker_until
                .filter(|until| *until > now)
                .map(|until| (until, Why::FleetBreakerOpen)),
        ];
        if let Some((until, why)) = holds.into_iter().flatten().max_by_key(|(until, _)| *until) {
            return Reservation::Held {
                wait: until - now,
                why,
            };
        }
        // Without a limit of its own the instance asks about holds only (a call whose slot is
        // already booked); a learned limit only ever slows an instance's own.
        let Some(own) = limit else {
            return Reservation::Admitted;
        };
        let limit = match e.limit.filter(|(_, until)| *until > now) {
            Some((learned, _)) => own.slower(learned),
            None => own,
        };
        let tat = e.tat.unwrap_or(Instant::ZERO);
        let tolerance = limit.interval * (limit.burst - 1);
        let earliest = tat.saturating_sub(tolerance).max(now);
        let wait = earliest - now;
        if wait > max_wait {
            return Reservation::Refused { wait };
        }
        e.tat = Some(tat.max(now) + limit.interval);
        if wait.is_zero() {
            Reservation::Admitted
        } else {
            Reservation::NotBefore { wait }
        }
    }

    /// Applies an instance's update at the store's time `now`.
    pub fn share(&mut self, host: &str, update: SharedUpdate, now: Instant) {
        let e = self
            .hosts
            .get_or_insert_with(host, || (Arc::from(host), Entry::default()));
        match update {
            SharedUpdate::Hold { wait, why } => {
                let until = now + wait;
                if e.hold.is_none_or(|(t, _)| until > t) {
                    e.hold = Some((until, why));
                }
            }
            SharedUpdate::Limit { limit, ttl } => {
                let keep = e
                    .limit
                    .is_some_and(|(l, until)| until > now && l.interval > limit.interval);
                if !keep {
                    e.limit = Some((limit, now + ttl));
                }
            }
            SharedUpdate::BreakerOpen { wait } => {
                let until = now + wait;
                if e.breaker_until.is_none_or(|t| until > t) {
                    e.breaker_until = Some(until);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const HOST: &str = "http://api.test";

    fn limit(per_second: f64, burst: u32) -> SharedLimit {
        SharedLimit::from_config(&LimitConfig { per_second, burst })
    }

    #[test]
    fn the_store_books_bursts_then_the_rate() {
        let mut s = MemoryStore::new();
        let t = Instant::from_millis(1_000);
        let l = Some(limit(10.0, 2));
        let far = Duration::from_secs(10);
        assert_eq!(s.reserve(HOST, l, far, t), Reservation::Admitted);
        assert_eq!(s.reserve(HOST, l, far, t), Reservation::Admitted);
        assert_eq!(
            s.reserve(HOST, l, far, t),
            Reservation::NotBefore {
                wait: Duration::from_millis(100)
            }
        );
        // Past `max_wait`: refused, and nothing is booked.
        let short = Duration::from_millis(150);
        assert_eq!(
            s.reserve(HOST, l, short, t),
            Reservation::Refused {
                wait: Duration::from_millis(200)
            }
        );
        assert_eq!(
            s.reserve(HOST, l, far, t),
            Reservation::NotBefore {
                wait: Duration::from_millis(200)
            }
        );
    }

    #[test]
    fn holds_answer_first_and_only_extend() {
        let mut s = MemoryStore::new();
        let t = Instant::from_millis(1_000);
        let hold = |ms| SharedUpdate::Hold {
            wait: Duration::from_millis(ms),
            why: Why::ServerRetryAfterHold,
        };
        s.share(HOST, hold(2_000), t);
        s.share(HOST, hold(500), t);
        let far = Duration::from_secs(10);
        assert_eq!(
            s.reserve(HOST, None, far, t + Duration::from_millis(500)),
            Reservation::Held {
                wait: Duration::from_millis(1_500),
                why: Why::ServerRetryAfterHold
            }
        );
        assert_eq!(
            s.reserve(HOST, None, far, t + Duration::from_secs(2)),
            Reservation::Admitted
        );
        s.share(
            HOST,
            SharedUpdate::BreakerOpen {
                wait: Duration::from_secs(1),
            },
            t + Duration::from_secs(2),
        );
        assert!(matches!(
            s.reserve(HOST, None, far, t + Duration::from_secs(2)),
            Reservation::Held {
                why: Why::FleetBreakerOpen,
                ..
            }
        ));
    }

    #[test]
    fn a_learned_limit_slows_every_instance_until_it_lapses() {
        let mut s = MemoryStore::new();
        let t = Instant::from_millis(0);
        let far = Duration::from_secs(100);
        s.share(
            HOST,
            SharedUpdate::Limit {
                limit: limit(1.0, 1),
                ttl: Duration::from_secs(5),
            },
            t,
        );
        let own = Some(limit(100.0, 1));
        assert_eq!(s.reserve(HOST, own, far, t), Reservation::Admitted);
        assert_eq!(
            s.reserve(HOST, own, far, t),
            Reservation::NotBefore {
                wait: Duration::from_secs(1)
            }
        );
        // Lapsed: the instance's own (faster) limit applies again.
        let later = t + Duration::from_secs(10);
        assert_eq!(s.reserve(HOST, own, far, later), Reservation::Admitted);
        assert_eq!(
            s.reserve(HOST, own, far, later),
            Reservation::NotBefore {
                wait: Duration::from_millis(10)
            }
        );
    }

    #[test]
    fn a_share_splits_rate_and_burst() {
        let share = limit(100.0, 10).share(4);
        assert_eq!((share.per_second, share.burst), (25.0, 2));
        assert_eq!(limit(1.0, 3).share(4).burst, 1);
    }
}
