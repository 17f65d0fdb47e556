//! The client-side rate limit: GCRA with its whole state in one integer.
//!
//! The generic cell rate algorithm keeps a "theoretical arrival time" (TAT). With emission
//! interval `T = 1 / rate` and burst `b`, a request at `now` conforms when
//! `max(TAT, now) − now ≤ (b − 1)·T`, and then moves TAT on by `T`. In any window of length `t`
//! it admits at most `rate·t + b` requests, the property the proptests check.
//!
//! [`Gcra::check`] answers "may I, now?" with `Err(NotUntil)` saying when; [`Gcra::peek`] asks
//! the same without consuming; [`Gcra::reserve`] books the earliest slot for a caller that will
//! wait for it, so queued calls do not all wake at once and collide.

use core::time::Duration;

use crate::config::LimitConfig;
use crate::time::Instant;
use crate::why::Why;

/// A refusal that says when to come back.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NotUntil {
    /// The earliest time the answer may change.
    pub at: Instant,
    /// Why not now.
    pub why: Why,
}

impl NotUntil {
    /// How long from `now` until [`NotUntil::at`] (zero if already past).
    pub fn wait_time_from(&self, now: Instant) -> Duration {
        self.at.saturating_duration_since(now)
    }
}

/// A GCRA limiter: the theoretical arrival time is the whole state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Gcra {
    tat: u64,
    interval: u64,
    tolerance: u64,
}

impl Gcra {
    /// From a validated config.
    pub fn new(config: &LimitConfig) -> Self {
        let interval = ((1e9 / config.per_second).round() as u64).max(1);
        Gcra {
            tat: 0,
            interval,
            tolerance: interval.saturating_mul(u64::from(config.burst.max(1)) - 1),
        }
    }

    fn earliest(&self, now: Instant) -> u64 {
        self.tat.saturating_sub(self.tolerance).max(now.as_nanos())
    }

    /// Whether a request may go at `now`, consuming nothing.
    pub fn peek(&self, now: Instant) -> Result<(), NotUntil> {
        let at = self.earliest(now);
        if at <= now.as_nanos() {
            Ok(())
        } else {
            Err(NotUntil {
                at: Instant::from_nanos(at),
                why: Why::ClientRateLimit,
            })
        }
    }

    /// Admits a request at `now`, or says when one could go.
    pub fn check(&mut self, now: Instant) -> Result<(), NotUntil> {
        self.peek(now)?;
        self.tat = self.tat.max(now.as_nanos()).saturating_add(self.interval);
        Ok(())
    }

    /// Books the earliest slot at or after `now` and returns it.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let at = self.earliest(now);
        self.tat = self.tat.max(now.as_nanos()).saturating_add(self.interval);
        Instant::from_nanos(at)
    }

    /// Returns a slot booked with [`Gcra::reserve`] for `at` that will not be used (its caller
    /// gave up before `at`): the next booking may take it. A slot already due, or one the
    /// limiter no longer holds, is not returned.
    pub fn release(&mut self, at: Instant, now: Instant) {
        if at > now && self.tat > now.as_nanos() {
            self.tat = self.tat.saturating_sub(self.interval).max(now.as_nanos());
        }
    }

    /// The sustained rate, per second.
    pub fn per_second(&self) -> f64 {
        1e9 / self.interval as f64
    }

    /// The burst.
    pub fn burst(&self) -> u64 {
        self.tolerance / self.interval + 1
    }

    /// A new limiter at `config`'s rate that keeps this one's booked slots.
    pub fn retuned(&self, config: &LimitConfig) -> Gcra {
        let mut g = Gcra::new(config);
        g.tat = self.tat;
        g
    }

    /// The server says only `remaining` requests are left now, and (if it says `reset`) that its
    /// whole quota is back after `reset`: admit no more than that. This only ever tightens; a
    /// hint looser than the limiter's own view changes nothing.
    pub fn tighten(&mut self, now: Instant, remaining: u64, reset: Option<Duration>) {
        let burst = self.burst();
        let used = burst.saturating_sub(remaining.min(burst));
        let mut floor = now
            .as_nanos()
            .saturating_add(used.saturating_mul(self.interval));
        if let Some(reset) = reset {
            floor = floor.min(now.saturating_add(reset).as_nanos());
        }
        self.tat = self.tat.max(floor);
    }

    /// Where the next free slot is, for snapshots.
    pub fn next_free(&self, now: Instant) -> Instant {
        Instant::from_nanos(self.earliest(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn limiter(per_second: f64, burst: u32) -> Gcra {
        Gcra::new(&LimitConfig { per_second, burst })
    }

    #[test]
    fn burst_then_steady_rate() {
        let mut g = limiter(10.0, 3);
        let t0 = Instant::from_millis(1000);
        assert!(g.check(t0).is_ok());
        assert!(g.check(t0).is_ok());
        assert!(g.check(t0).is_ok());
        let refused = g.check(t0).unwrap_err();
        assert_eq!(refused.at, Instant::from_millis(1100));
        assert_eq!(refused.wait_time_from(t0), Duration::from_millis(100));
        assert!(g.peek(Instant::from_millis(1099)).is_err());
        assert!(g.check(Instant::from_millis(1100)).is_ok());
        assert!(g.check(Instant::from_millis(1100)).is_err());
    }

    #[test]
    fn peek_consumes_nothing() {
        let mut g = limiter(1.0, 1);
        let t = Instant::from_millis(5);
        for _ in 0..10 {
            assert!(g.peek(t).is_ok());
        }
        assert!(g.check(t).is_ok());
        assert!(g.peek(t).is_err());
    }

    #[test]
    fn a_server_hint_only_tightens() {
        let mut g = limiter(10.0, 5);
        let t = Instant::from_millis(1000);
        g.tighten(t, 2, None);
        assert!(g.check(t).is_ok());
        assert!(g.check(t).is_ok());
        assert!(g.check(t).is_err(), "the server said two were left");
        let mut g = limiter(10.0, 5);
        g.check(t).unwrap();
        g.tighten(t, 5, None);
        let admitted = (0..10).filter(|_| g.check(t).is_ok()).count();
        assert_eq!(admitted, 4, "a looser hint does not add room");
        assert_eq!((g.per_second(), g.burst()), (10.0, 5));
        // A quota that is back in full after the reset books nothing past the reset.
        let mut g = limiter(1.0, 10);
        g.tighten(t, 0, Some(Duration::from_secs(2)));
        assert!(g.check(Instant::from_millis(3000)).is_ok());
    }

    #[test]
    fn reservations_are_spaced() {
        let mut g = limiter(4.0, 1);
        let t = Instant::from_millis(0);
        let slots: Vec<u64> = (0..4).map(|_| g.reserve(t).as_millis()).collect();
        assert_eq!(slots, [0, 250, 500, 750]);
    }
}
