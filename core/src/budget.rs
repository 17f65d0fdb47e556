//! The retry budget: retries are earned by calls, so an outage is not multiplied.
//!
//! A fixed "max retries" per call lets a client send `max_attempts` times its normal load to a
//! host that is already down. A budget (Finagle's `RetryBudget`, gRPC's retry throttling) ties
//! retries to traffic instead: every logical call deposits `ratio` of a retry and every retry
//! withdraws a whole one.
//!
//! Deposits and withdrawals both count only within a sliding window (`window_ms`, 10 s by
//! default, as Finagle's `ttl`), so what a host saved during an hour of health cannot be spent
//! in one burst at the start of an outage: the balance is
//!
//! ```text
//!   min(max_saved, reserve + ratio · calls in the window − retries in the window)
//! ```
//!
//! Under a total outage at `R` calls per second the engine therefore sends at most
//! `1 + ratio + reserve / (window · R)` attempts per call; the `reserve` comes back every
//! window, so a quiet client can still retry its odd failure. The window is ten fixed buckets
//! of a tenth of it each, in thousandths of a retry: exact, small and allocation-free. (A
//! deposit or withdrawal counts for the nine to ten tenths of the window its bucket lives.)
//!
//! A retry after a 429 with `Retry-After` costs nothing: a healthy server is pacing its clients,
//! and the engine holds the whole host until then. A 503 with `Retry-After` still costs a
//! retry, so an outage is never multiplied, whatever headers it comes with.

use crate::config::BudgetConfig;
use crate::time::Instant;

const ONE: i64 = 1000;
const BUCKETS: usize = 10;

/// What one tenth of the window added to the balance.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Bucket {
    /// Which tenth of time (`now / bucket length`) the bucket holds; stale when older than
    /// the window.
    epoch: u64,
    /// Deposits minus withdrawals (and minus deposits refused above `max_saved`), in
    /// thousandths of a retry.
    net: i64,
}

/// One host's retry budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    enabled: bool,
    reserve: i64,
    deposit: i64,
    max: i64,
    bucket_nanos: u64,
    window: [Bucket; BUCKETS],
    /// The live buckets' sum at one epoch, kept while the epoch stays: only a deposit or a
    /// withdrawal (which update it) changes the sum until the next tenth begins.
    live: Live,
}

/// The sum of the buckets live at `epoch` (none yet at `u64::MAX`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Live {
    epoch: u64,
    sum: i64,
}

impl Budget {
    /// A full reserve, from a validated config.
    pub fn new(config: &BudgetConfig) -> Self {
        Budget {
            enabled: config.enabled,
            reserve: i64::from(config.reserve) * ONE,
            deposit: (config.ratio * ONE as f64).round() as i64,
            max: i64::from(config.max_saved) * ONE,
            bucket_nanos: (config.window_ms.saturating_mul(1_000_000) / BUCKETS as u64).max(1),
            window: [Bucket::default(); BUCKETS],
            live: Live {
                epoch: u64::MAX,
                sum: 0,
            },
        }
    }

    /// A logical call started at `now`: it earns `ratio` of a retry, for one window.
    pub fn deposit(&mut self, now: Instant) {
        if !self.enabled {
            // Nothing reads a disabled budget's balance.
            return;
        }
        let room = self.max - self.kept_balance(now);
        let earned = self.deposit.min(room);
        if earned > 0 {
            self.add(now, earned);
        }
    }

    /// Takes one retry at `now` if the budget holds one.
    pub fn try_withdraw(&mut self, now: Instant) -> bool {
        if !self.enabled {
            return true;
        }
        let raw = self.kept_balance(now);
        if raw < ONE {
            return false;
        }
        // Withdrawals that left the window give their retries back, which can lift the raw
        // balance over `max_saved`; the excess is dropped here so no burst exceeds it.
        let excess = (raw - self.max).max(0);
        self.add(now, -(ONE + excess));
        true
    }

    /// Retries available at `now` (fractional), for snapshots.
    pub fn available(&self, now: Instant) -> f64 {
        if self.enabled {
            self.balance(now).max(0).min(self.max) as f64 / ONE as f64
        } else {
            f64::INFINITY
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        now.as_nanos() / self.bucket_nanos
    }

    /// The reserve plus every live bucket: may be negative (spent more than the window now
    /// holds) or above `max` (withdrawals expired) until the next withdrawal trims it.
    fn balance(&self, now: Instant) -> i64 {
        let epoch = self.epoch(now);
        let live: i64 = self
            .window
            .iter()
            .filter(|b| b.epoch <= epoch && b.epoch + BUCKETS as u64 > epoch)
            .map(|b| b.net)
            .sum();
        self.reserve + live
    }

    /// [`Budget::balance`], from the kept sum while the epoch it was taken at lasts.
    fn kept_balance(&mut self, now: Instant) -> i64 {
        let epoch = self.epoch(now);
        if self.live.epoch != epoch {
            self.live = Live {
                epoch,
                sum: self.balance(now) - self.reserve,
            };
        }
        self.reserve + self.live.sum
    }

    /// Adds `net` to the bucket of `now`, and to the kept sum (taken at `now`'s epoch by
    /// [`Budget::kept_balance`] just before). A bucket reused for a new epoch was not live.
    fn add(&mut self, now: Instant, net: i64) {
        self.current(now).net += net;
        self.live.sum += net;
    }

    fn current(&mut self, now: Instant) -> &mut Bucket {
        let epoch = self.epoch(now);
        let bucket = &mut self.window[(epoch % BUCKETS as u64) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket { epoch, net: 0 };
        }
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn outage_amplification_is_bounded() {
        let config = BudgetConfig::default();
        let mut b = Budget::new(&config);
        // 10 000 calls, one every 10 ms (100 s), each wanting 3 retries against a dead host.
        let calls = 10_000u64;
        let mut retries = 0u64;
        for i in 0..calls {
            let now = ms(i * 10);
            b.deposit(now);
            for _ in 0..3 {
                if b.try_withdraw(now) {
                    retries += 1;
                } else {
                    break;
                }
            }
        }
        // ratio · calls, plus the reserve once per window (100 s / 10 s, and the first one).
        let bound = config.ratio * calls as f64 + f64::from(config.reserve) * 11.0;
        assert!((retries as f64) <= bound, "{retries} retries > {bound}");
        let earned = (config.ratio * calls as f64) as u64;
        assert!(retries >= earned, "the ratio is still earned: {retries}");
    }

    #[test]
    fn savings_expire_after_the_window() {
        let mut b = Budget::new(&BudgetConfig::default());
        // A busy, healthy minute at 200 calls/s saves more than the cap.
        for i in 0..12_000u64 {
            b.deposit(ms(i * 5));
        }
        assert_eq!(b.available(ms(59_995)), 100.0, "capped at max_saved");
        // The outage starts 11 s after the last call: only the reserve is left.
        let outage = ms(59_995 + 11_000);
        assert_eq!(b.available(outage), 10.0);
        let spent = (0..200).take_while(|_| b.try_withdraw(outage)).count();
        assert_eq!(
            spent, 10,
            "the saved 100 expired; only the reserve is spendable"
        );
    }

    #[test]
    fn the_reserve_returns_each_window() {
        let mut b = Budget::new(&BudgetConfig::default());
        let spent = (0..50).take_while(|_| b.try_withdraw(ms(0))).count();
        assert_eq!(spent, 10);
        assert!(!b.try_withdraw(ms(9_000)), "still inside the window");
        assert_eq!(
            b.available(ms(10_000)),
            10.0,
            "the withdrawals left the window"
        );
        assert!(b.try_withdraw(ms(10_000)));
    }

    #[test]
    fn expired_withdrawals_never_lift_a_burst_over_max_saved() {
        let config = BudgetConfig {
            ratio: 1.0,
            reserve: 10,
            max_saved: 20,
            ..BudgetConfig::default()
        };
        let mut b = Budget::new(&config);
        // Spend the reserve at 0 s, save up to the cap at 1 s.
        assert_eq!((0..50).take_while(|_| b.try_withdraw(ms(0))).count(), 10);
        for _ in 0..50 {
            b.deposit(ms(1_000));
        }
        assert_eq!(b.available(ms(1_000)), 20.0);
        // At 10.5 s the withdrawals have left the window and the deposits not yet: the raw
        // sum is 30, but a burst still gets no more than max_saved.
        assert_eq!(b.available(ms(10_500)), 20.0);
        assert_eq!(
            (0..50).take_while(|_| b.try_withdraw(ms(10_500))).count(),
            20
        );
    }

    #[test]
    fn disabled_budget_always_allows_and_saving_is_capped() {
        let mut off = Budget::new(&BudgetConfig {
            enabled: false,
            ..BudgetConfig::default()
        });
        assert!((0..1000).all(|_| off.try_withdraw(ms(0))));
        assert_eq!(off.available(ms(0)), f64::INFINITY);
        let mut b = Budget::new(&BudgetConfig::default());
        for _ in 0..100_000 {
            b.deposit(ms(0));
        }
        assert_eq!(b.available(ms(0)), 100.0);
    }

    #[test]
    fn the_kept_sum_is_the_balance_at_every_step() {
        use crate::rng::{wander_ms, RandomSource, Rng};
        // Deposits and withdrawals at times that mostly go forward, sometimes jump a window
        // and sometimes go back: the kept sum always answers what a fresh sum would.
        let mut b = Budget::new(&BudgetConfig::default());
        let mut rng = Rng::seeded(3);
        let mut t = 0u64;
        for _ in 0..20_000 {
            t = wander_ms(&mut rng, t, 300, 25_000, 3_000);
            let now = ms(t);
            if rng.below(3) == 0 {
                b.try_withdraw(now);
            } else {
                b.deposit(now);
            }
            assert_eq!(b.kept_balance(now), b.balance(now), "at {t} ms");
        }
    }
}
