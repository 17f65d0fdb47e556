//! Delay before retry `n`, as pure math over an injected random source.
//!
//! Formulas from Marc Brooker, "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015),
//! with `t(n) = min(cap, base · factorⁿ)` and `n = 0` for the first retry:
//!
//! | jitter | delay |
//! |---|---|
//! | none | `t(n)` |
//! | full | `random(0, t(n))` |
//! | equal | `t(n)/2 + random(0, t(n)/2)` |
//! | decorrelated | `random(base, min(cap, previous · 3))`, previous starting at `base` |
//!
//! The cap holds after jitter, and the first retry is jittered like the others.
//!
//! Decorrelated jitter draws *below* the cap instead of clamping a draw that went over it: the
//! article's `min(cap, random(base, previous · 3))` puts up to two thirds of all late retries at
//! exactly the cap, which re-synchronises the clients the jitter was meant to spread.

use core::time::Duration;

use crate::config::{BackoffConfig, Jitter};
use crate::rng::RandomSource;
use crate::time::duration_nanos;

/// Retries whose ceiling is worked out once, when the backoff is made.
const KEPT_CEILINGS: usize = 8;

/// Validated backoff parameters, in nanoseconds.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Backoff {
    base: u64,
    factor: f64,
    cap: u64,
    jitter: Jitter,
    /// `ceiling(n)` for the first retries, as [`Backoff::ceiling_of`] says it: most calls
    /// retry a few times, and `powi` is most of a delay's cost.
    ceilings: [u64; KEPT_CEILINGS],
}

impl Backoff {
    /// From an already validated config.
    pub fn new(config: &BackoffConfig) -> Self {
        let mut b = Backoff {
            base: config.base_ms.saturating_mul(1_000_000),
            factor: config.factor,
            cap: config.cap_ms.saturating_mul(1_000_000),
            jitter: config.jitter,
            ceilings: [0; KEPT_CEILINGS],
        };
        b.ceilings = core::array::from_fn(|n| b.ceiling_of(n as u32));
        b
    }

    /// `min(cap, base · factorⁿ)` in nanoseconds.
    #[inline]
    fn ceiling(&self, n: u32) -> u64 {
        match self.ceilings.get(n as usize) {
            Some(&kept) => kept,
            None => self.ceiling_of(n),
        }
    }

    /// `min(cap, base · factorⁿ)` in nanoseconds, without overflow for any `n`.
    fn ceiling_of(&self, n: u32) -> u64 {
        let exact = self.base as f64 * self.factor.powi(n.min(i32::MAX as u32) as i32);
        if exact.is_finite() && exact < self.cap as f64 {
            exact as u64
        } else {
            self.cap
        }
    }

    /// The delay before retry `n` (0 for the first retry). `previous` is the delay chosen for
    /// the retry before (only decorrelated jitter uses it; pass `None` for the first).
    pub fn delay(
        &self,
        n: u32,
        previous: Option<Duration>,
        rng: &mut impl RandomSource,
    ) -> Duration {
        let nanos = match self.jitter {
            Jitter::None => self.ceiling(n),
            Jitter::Full => rng.between(0, self.ceiling(n)),
            Jitter::Equal => {
                let t = self.ceiling(n);
                let half = t / 2;
                half + rng.between(0, t - half)
            }
            Jitter::Decorrelated => {
                let prev = previous.map_or(self.base, duration_nanos).max(self.base);
                rng.between(self.base, prev.saturating_mul(3).min(self.cap))
            }
        };
        Duration::from_nanos(nanos.min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn backoff(jitter: Jitter) -> Backoff {
        Backoff::new(&BackoffConfig {
            base_ms: 100,
            factor: 2.0,
            cap_ms: 1_000,
            jitter,
        })
    }

    #[test]
    fn no_jitter_is_exponential_then_capped() {
        let b = backoff(Jitter::None);
        let mut rng = Rng::seeded(1);
        let ms: Vec<u128> = (0..6)
            .map(|n| b.delay(n, None, &mut rng).as_millis())
            .collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX, None, &mut rng), Duration::from_secs(1));
    }

    #[test]
    fn kept_ceilings_are_the_formula_s() {
        for (base_ms, factor, cap_ms) in [(100, 2.0, 1_000), (7, 1.7, 60_000), (1, 10.0, 5)] {
            let b = Backoff::new(&BackoffConfig {
                base_ms,
                factor,
                cap_ms,
                jitter: Jitter::None,
            });
            for n in 0..3 * KEPT_CEILINGS as u32 {
                assert_eq!(
                    b.ceiling(n),
                    b.ceiling_of(n),
                    "{base_ms} {factor} {cap_ms} {n}"
                );
            }
        }
    }

    #[test]
    fn first_retry_is_jittered() {
        let b = backoff(Jitter::Full);
        let mut rng = Rng::seeded(3);
        let firsts: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| b.delay(0, None, &mut rng)).collect();
        assert!(
            firsts.len() > 10,
            "first retries should spread out: {firsts:?}"
        );
    }

    #[test]
    fn decorrelated_jitter_does_not_pile_up_at_the_cap() {
        let b = backoff(Jitter::Decorrelated);
        let mut rng = Rng::seeded(5);
        let mut prev = None;
        let mut at_cap = 0;
        for n in 0..2000 {
            let d = b.delay(n, prev, &mut rng);
            at_cap += usize::from(d == Duration::from_secs(1));
            prev = Some(d);
        }
        assert!(
            at_cap < 20,
            "{at_cap} of 2000 delays sit exactly at the cap"
        );
    }

    #[test]
    fn same_seed_same_delays() {
        for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
            let b = backoff(jitter);
            let run = |seed| {
                let mut rng = Rng::seeded(seed);
                let mut prev = None;
                (0..10)
                    .map(|n| {
                        let d = b.delay(n, prev, &mut rng);
                        prev = Some(d);
                        d
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(run(9), run(9));
            assert_ne!(run(9), run(10));
        }
    }
}
