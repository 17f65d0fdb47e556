//! The circuit breaker, one per host.
//!
//! ```text
//!  rate ≥ r over the window (≥ min calls), or N in a row (below min calls) / min calls in a row
//!   Closed ───────────────────────────────────────────────────────────────▶ Open(until)
//!     ▲                                                                    │    ▲
//!     │ all probes succeed                           now ≥ until (lazily)  │    │ a probe fails
//!     │                                                                    ▼    │ (open longer)
//!     └───────────────────────────────── HalfOpen (≤ k probes in flight) ───────┘
//! ```
//!
//! While open, calls fail fast with the time they may try again; while half-open, `k` probes go
//! through and everyone else fails fast. Each trip without a full recovery lengthens the open
//! time by `open_growth`, up to `max_open_ms`. The failure-rate window is eight fixed buckets,
//! so the state is small and allocation-free.
//!
//! A short run of consecutive failures (`consecutive_failures`, 5) trips the breaker only while
//! the window holds fewer than `min_calls` attempts: at high concurrency a host failing a fifth
//! of requests at random shows runs of five within seconds, and the rate is the better judge
//! once there is volume to measure it. At volume a run trips only when it is `min_calls` long
//! (every attempt of the minimum sample failed), so a busy host that dies is still cut off
//! after 20 failed attempts rather than once its failures outweigh the window's successes. See
//! [`BreakerConfig`] for the defaults and why.

use core::time::Duration;

use serde::Serialize;

use crate::config::BreakerConfig;
use crate::time::Instant;

mod control;
pub use control::{
    BreakerControl, BreakerHold, BreakerSnapshot, HoldKind, HostBreaker, SnapshotError,
    SnapshotState, SNAPSHOT_VERSION,
};

const BUCKETS: usize = 8;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Bucket {
    epoch: u64,
    calls: u32,
    failures: u32,
}

/// Where a breaker stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls fail fast until `until`.
    Open {
        /// When the breaker turns half-open.
        until: Instant,
    },
    /// A bounded number of probes test the host.
    HalfOpen,
}

/// What the breaker let through.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Admit {
    /// An ordinary attempt, breaker closed.
    Normal,
    /// One of the half-open probes of half-open period `n`; its result decides, unless the
    /// breaker has moved on to another period by the time it answers.
    Probe(u32),
}

/// A refusal: open until a time, or half-open with every probe taken.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Open; may try again at this time.
    Open(Instant),
    /// Half-open and all probes are in flight; the time is unknown until they answer.
    ProbesBusy,
    /// Held open by hand ([`HoldKind::Isolate`]) until the hold is released.
    Isolated,
}

/// A change of state, for events.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Closed or half-open → open.
    Opened {
        /// Until when.
        until: Instant,
        /// Trips since the last full recovery.
        trips: u32,
    },
    /// Open → half-open.
    HalfOpened,
    /// Half-open → closed.
    Closed,
}

/// One host's breaker.
#[derive(Clone, Debug)]
pub struct Breaker {
    state: BreakerState,
    consecutive: u32,
    trips: u32,
    probes_in_flight: u32,
    probe_successes: u32,
    period: u32,
    window: [Bucket; BUCKETS],
    /// The window's totals at one epoch, kept while the epoch lasts: only an attempt counted
    /// (which updates them) changes them until the next bucket begins.
    kept: Kept,
    /// Holds set by hand (see [`control`]).
    holds: control::Holds,
}

/// The attempts and failures live at `epoch` (none yet at `u64::MAX`).
#[derive(Copy, Clone, Debug)]
struct Kept {
    epoch: u64,
    calls: u64,
    failures: u64,
}

/// No totals kept.
const NOT_KEPT: Kept = Kept {
    epoch: u64::MAX,
    calls: 0,
    failures: 0,
};

impl Breaker {
    /// A closed breaker.
    pub fn new() -> Self {
        Breaker {
            state: BreakerState::Closed,
            consecutive: 0,
            trips: 0,
            probes_in_flight: 0,
            probe_successes: 0,
            period: 0,
            window: [Bucket::default(); BUCKETS],
            kept: NOT_KEPT,
            holds: control::Holds::default(),
        }
    }

    /// The state at `now`, turning an expired open state half-open.
    pub fn state(&mut self, now: Instant) -> (BreakerState, Option<Transition>) {
        let mut transition = None;
        if let BreakerState::Open { until } = self.state {
            if now >= until {
                // Probes from an earlier half-open period may still be out: they keep their
                // slots until they answer, so the host never sees more than the allowed number.
                self.state = BreakerState::HalfOpen;
                self.period = self.period.wrapping_add(1);
                self.probe_successes = 0;
                transition = Some(Transition::HalfOpened);
            }
        }
        (self.state, transition)
    }

    /// The state as last computed, without advancing it (for snapshots).
    pub fn current(&self) -> BreakerState {
        self.state
    }

    /// Consecutive failures counted while closed.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    /// Asks to send an attempt at `now`; a half-open admission takes a probe slot.
    pub fn admit(
        &mut self,
        config: &BreakerConfig,
        now: Instant,
    ) -> (Result<Admit, Refusal>, Option<Transition>) {
        if let Some(held) = self.holds.admit() {
            return (held, None);
        }
        if !config.enabled {
            return (Ok(Admit::Normal), None);
        }
        let (state, transition) = self.state(now);
        let answer = match state {
            BreakerState::Closed => Ok(Admit::Normal),
            BreakerState::Open { until } => Err(Refusal::Open(until)),
            BreakerState::HalfOpen if self.probes_in_flight < config.half_open_probes => {
                self.probes_in_flight += 1;
                Ok(Admit::Probe(self.period))
            }
            BreakerState::HalfOpen => Err(Refusal::ProbesBusy),
        };
        (answer, transition)
    }

    /// Whether an attempt could go at `now`, taking nothing.
    pub fn peek(&self, config: &BreakerConfig, now: Instant) -> Result<(), Refusal> {
        if let Some(held) = self.holds.admit() {
            return held.map(|_| ());
        }
        if !config.enabled {
            return Ok(());
        }
        match self.state {
            BreakerState::Open { until } if now < until => Err(Refusal::Open(until)),
            BreakerState::HalfOpen if self.probes_in_flight >= config.half_open_probes => {
                Err(Refusal::ProbesBusy)
            }
            _ => Ok(()),
        }
    }

    /// A probe was abandoned (the call was cancelled): its slot is free again.
    pub fn release_probe(&mut self) {
        self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
    }

    /// Records an attempt's result; only probes move a half-open breaker, and results that
    /// arrive while open (attempts sent before the trip) change nothing.
    pub fn record(
        &mut self,
        config: &BreakerConfig,
        admit: Admit,
        failure: bool,
        now: Instant,
    ) -> Option<Transition> {
        if !config.enabled {
            return None;
        }
        if let Admit::Probe(_) = admit {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        }
        match (self.state, admit) {
            (BreakerState::HalfOpen, Admit::Probe(period)) if period == self.period => {
                if failure {
                    Some(self.trip(config, now))
                } else {
                    self.probe_successes += 1;
                    if self.probe_successes >= config.half_open_probes {
                        self.state = BreakerState::Closed;
                        self.trips = 0;
                        self.consecutive = 0;
                        self.fresh_window();
                        Some(Transition::Closed)
                    } else {
                        None
                    }
                }
            }
            (BreakerState::Closed, Admit::Normal) => {
                // The window's bucket for `now`, worked out once for the count and the test.
                let epoch = Self::epoch(config, now);
                self.count(config, failure, epoch);
                if failure {
                    self.consecutive = self.consecutive.saturating_add(1);
                } else {
                    self.consecutive = 0;
                }
                if !self.holds.forced_closed() && self.should_trip(config, now, epoch) {
                    Some(self.trip(config, now))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn trip(&mut self, config: &BreakerConfig, now: Instant) -> Transition {
        self.trips = self.trips.saturating_add(1);
        let growth = config
            .open_growth
            .powi(self.trips.saturating_sub(1).min(64) as i32);
        let open_ms = (config.open_ms as f64 * growth).min(config.max_open_ms as f64) as u64;
        let until = now + Duration::from_millis(open_ms);
        self.state = BreakerState::Open { until };
        self.consecutive = 0;
        self.probe_successes = 0;
        self.fresh_window();
        Transition::Opened {
            until,
            trips: self.trips,
        }
    }

    fn bucket_len(config: &BreakerConfig) -> u64 {
        (config.window_ms.saturating_mul(1_000_000) / BUCKETS as u64).max(1)
    }

    /// The number of the window's bucket that `now` falls in.
    fn epoch(config: &BreakerConfig, now: Instant) -> u64 {
        now.as_nanos() / Self::bucket_len(config)
    }

    fn count(&mut self, config: &BreakerConfig, failure: bool, epoch: u64) {
        if config.failure_rate.is_none() {
            return;
        }
        let bucket = &mut self.window[(epoch % BUCKETS as u64) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket {
                epoch,
                calls: 0,
                failures: 0,
            };
        }
        let before = (bucket.calls, bucket.failures);
        bucket.calls = bucket.calls.saturating_add(1);
        if failure {
            bucket.failures = bucket.failures.saturating_add(1);
        }
        if self.kept.epoch == epoch {
            // A bucket reused for a new epoch was not live at it: only this one moved.
            self.kept.calls += u64::from(bucket.calls - before.0);
            self.kept.failures += u64::from(bucket.failures - before.1);
        }
    }

    /// An empty failure-rate window.
    fn fresh_window(&mut self) {
        self.window = [Bucket::default(); BUCKETS];
        self.kept = NOT_KEPT;
    }

    /// [`Breaker::window_counts`], from the kept totals while the epoch they were taken at
    /// lasts.
    /// `epoch` is `now`'s bucket ([`Breaker::epoch`]).
    fn kept_counts(&mut self, config: &BreakerConfig, now: Instant, epoch: u64) -> (u64, u64) {
        if self.kept.epoch != epoch {
            let (calls, failures) = self.window_counts(config, now);
            self.kept = Kept {
                epoch,
                calls,
                failures,
            };
        }
        (self.kept.calls, self.kept.failures)
    }

    /// Attempts and failures in the window ending at `now`.
    fn window_counts(&self, config: &BreakerConfig, now: Instant) -> (u64, u64) {
        let epoch = Self::epoch(config, now);
        self.window
            .iter()
            .filter(|b| b.epoch + (BUCKETS as u64) > epoch && b.epoch <= epoch)
            .fold((0u64, 0u64), |(c, f), b| {
                (c + u64::from(b.calls), f + u64::from(b.failures))
            })
    }

    /// Below `min_calls` attempts in the window a rate says little, so a run of
    /// `consecutive_failures` decides. At volume the rate decides, and a run only when it is
    /// as long as `min_calls`: the latest `min_calls` attempts all failed, a 100 % rate over
    /// the minimum sample. A shorter run never trips a busy breaker: concurrent attempts
    /// against a host failing at random make runs of five common (0.2⁵ ≈ 1/3000 per attempt
    /// at 20 %), runs of twenty not (0.2²⁰ ≈ 10⁻¹⁴).
    fn should_trip(&mut self, config: &BreakerConfig, now: Instant, epoch: u64) -> bool {
        let consecutive = self.consecutive;
        let run_of = |n: u32| config.consecutive_failures > 0 && consecutive >= n;
        let Some(rate) = config.failure_rate else {
            return run_of(config.consecutive_failures);
        };
        let (calls, failures) = self.kept_counts(config, now, epoch);
        if calls < u64::from(config.min_calls.max(1)) {
            return run_of(config.consecutive_failures);
        }
        run_of(config.consecutive_failures.max(config.min_calls))
            || failures as f64 >= rate * calls as f64
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            failure_rate: None,
            open_ms: 1000,
            open_growth: 2.0,
            max_open_ms: 3000,
            half_open_probes: 2,
            ..BreakerConfig::default()
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn trips_after_consecutive_failures_and_recovers_through_probes() {
        let c = config();
        let mut b = Breaker::new();
        assert_eq!(b.record(&c, Admit::Normal, true, ms(0)), None);
        assert_eq!(
            b.record(&c, Admit::Normal, false, ms(1)),
            None,
            "a success resets the run"
        );
        assert_eq!(b.record(&c, Admit::Normal, true, ms(2)), None);
        assert_eq!(b.record(&c, Admit::Normal, true, ms(3)), None);
        let t = b.record(&c, Admit::Normal, true, ms(4));
        assert_eq!(
            t,
            Some(Transition::Opened {
                until: ms(1004),
                trips: 1
            })
        );
        assert_eq!(b.admit(&c, ms(500)).0, Err(Refusal::Open(ms(1004))));
        // Half-open: two probes, then busy.
        let (first, t) = b.admit(&c, ms(1004));
        assert_eq!(
            (first, t),
            (Ok(Admit::Probe(1)), Some(Transition::HalfOpened))
        );
        assert_eq!(b.admit(&c, ms(1005)).0, Ok(Admit::Probe(1)));
        assert_eq!(b.admit(&c, ms(1006)).0, Err(Refusal::ProbesBusy));
        assert_eq!(b.record(&c, Admit::Probe(1), false, ms(1010)), None);
        assert_eq!(
            b.record(&c, Admit::Probe(1), false, ms(1011)),
            Some(Transition::Closed)
        );
        assert_eq!(b.admit(&c, ms(1012)).0, Ok(Admit::Normal));
    }

    #[test]
    fn failed_probe_reopens_for_longer_up_to_the_cap() {
        let c = config();
        let mut b = Breaker::new();
        for i in 0..3 {
            b.record(&c, Admit::Normal, true, ms(i));
        }
        let mut now = 2;
        let mut opens = vec![];
        for _ in 0..4 {
            let BreakerState::Open { until } = b.current() else {
                panic!("should be open")
            };
            opens.push(until.as_millis() - now);
            now = until.as_millis();
            let (admitted, _) = b.admit(&c, ms(now));
            let Ok(probe) = admitted else {
                panic!("a probe should go through")
            };
            b.record(&c, probe, true, ms(now));
        }
        assert_eq!(opens, [1000, 2000, 3000, 3000]);
    }

    #[test]
    fn failure_rate_needs_minimum_calls_and_forgets_old_buckets() {
        let c = BreakerConfig {
            consecutive_failures: 0,
            failure_rate: Some(0.5),
            window_ms: 800,
            min_calls: 4,
            ..BreakerConfig::default()
        };
        let mut b = Breaker::new();
        // Alternate failure/success: 50% but only trips once 4 calls are in the window.
        assert_eq!(b.record(&c, Admit::Normal, true, ms(0)), None);
        assert_eq!(b.record(&c, Admit::Normal, false, ms(1)), None);
        assert_eq!(b.record(&c, Admit::Normal, true, ms(2)), None);
        assert!(matches!(
            b.record(&c, Admit::Normal, false, ms(3)),
            Some(Transition::Opened { .. })
        ));

        let mut b = Breaker::new();
        b.record(&c, Admit::Normal, true, ms(0));
        b.record(&c, Admit::Normal, true, ms(1));
        b.record(&c, Admit::Normal, true, ms(2));
        // 900 ms later those failures have left the window.
        assert_eq!(b.record(&c, Admit::Normal, false, ms(902)), None);
        assert_eq!(b.record(&c, Admit::Normal, false, ms(903)), None);
        assert_eq!(b.record(&c, Admit::Normal, false, ms(904)), None);
        assert_eq!(b.record(&c, Admit::Normal, true, ms(905)), None);
    }

    #[test]
    fn a_short_run_trips_only_at_low_volume_and_a_long_one_always() {
        let c = BreakerConfig::default();
        // Low volume: 5 failures in a row, the window holding fewer than 20 attempts.
        let mut b = Breaker::new();
        for i in 0..4 {
            assert_eq!(b.record(&c, Admit::Normal, true, ms(i)), None);
        }
        assert!(matches!(
            b.record(&c, Admit::Normal, true, ms(4)),
            Some(Transition::Opened { .. })
        ));
        // Volume: 100 successes in the window, then runs of failures.
        let mut b = Breaker::new();
        for i in 0..100 {
            b.record(&c, Admit::Normal, false, ms(i));
        }
        for i in 0..19 {
            assert_eq!(
                b.record(&c, Admit::Normal, true, ms(100 + i)),
                None,
                "a run of {} at volume",
                i + 1
            );
        }
        assert_eq!(b.current(), BreakerState::Closed);
        assert!(
            matches!(
                b.record(&c, Admit::Normal, true, ms(119)),
                Some(Transition::Opened { .. })
            ),
            "a run of min_calls: the whole minimum sample failed"
        );
        // Without a rate, the run of consecutive_failures always decides.
        let only_runs = BreakerConfig {
            failure_rate: None,
            ..BreakerConfig::default()
        };
        let mut b = Breaker::new();
        for i in 0..100 {
            b.record(&only_runs, Admit::Normal, false, ms(i));
        }
        for i in 0..4 {
            b.record(&only_runs, Admit::Normal, true, ms(100 + i));
        }
        assert!(matches!(
            b.record(&only_runs, Admit::Normal, true, ms(104)),
            Some(Transition::Opened { .. })
        ));
    }

    #[test]
    fn a_stale_probe_keeps_its_slot_but_not_its_vote() {
        let c = BreakerConfig {
            half_open_probes: 1,
            ..config()
        };
        let mut b = Breaker::new();
        for i in 0..3 {
            b.record(&c, Admit::Normal, true, ms(i));
        }
        let (first, _) = b.admit(&c, ms(1002));
        let stale = first.unwrap();
        // The probe hangs; meanwhile something else reopens the breaker... simulate with a
        // second period: the stale probe is still out, so no new probe is admitted.
        b.trip(&c, ms(1003));
        let BreakerState::Open { until } = b.current() else {
            panic!("open")
        };
        assert_eq!(
            b.admit(&c, until).0,
            Err(Refusal::ProbesBusy),
            "the stale probe still holds the slot"
        );
        // It answers with success in the new period: it frees the slot but does not close.
        assert_eq!(b.record(&c, stale, false, until), None);
        assert_eq!(b.current(), BreakerState::HalfOpen);
        assert!(matches!(b.admit(&c, until).0, Ok(Admit::Probe(2))));
    }

    #[test]
    fn late_results_while_open_change_nothing() {
        let c = config();
        let mut b = Breaker::new();
        for i in 0..3 {
            b.record(&c, Admit::Normal, true, ms(i));
        }
        let before = b.current();
        assert_eq!(b.record(&c, Admit::Normal, false, ms(10)), None);
        assert_eq!(b.record(&c, Admit::Normal, true, ms(11)), None);
        assert_eq!(b.current(), before);
    }

    #[test]
    fn the_kept_totals_are_the_window_at_every_step() {
        use crate::rng::{wander_ms, RandomSource, Rng};
        // Attempts through trips, half-open probes and recoveries, at times that mostly go
        // forward, sometimes jump a window and sometimes go back: the kept totals always
        // answer what a fresh count of the window would.
        let c = BreakerConfig {
            consecutive_failures: 4,
            failure_rate: Some(0.5),
            window_ms: 800,
            min_calls: 6,
            open_ms: 300,
            ..BreakerConfig::default()
        };
        let mut b = Breaker::new();
        let mut rng = Rng::seeded(5);
        let mut t = 0u64;
        let mut trips = 0;
        for _ in 0..20_000 {
            t = wander_ms(&mut rng, t, 40, 5_000, 500);
            let now = ms(t);
            if let (Ok(admit), _) = b.admit(&c, now) {
                let failure = rng.below(5) < 2;
                if let Some(Transition::Opened { .. }) = b.record(&c, admit, failure, now) {
                    trips += 1;
                }
            }
            assert_eq!(
                b.kept_counts(&c, now, Breaker::epoch(&c, now)),
                b.window_counts(&c, now),
                "at {t} ms"
            );
        }
        assert!(trips > 10, "the window was emptied by trips too ({trips})");
    }
}
