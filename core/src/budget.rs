//! The retry budget: retries are earned by calls, so an outage is not multiplied.
//!
//! A fixed "max retries" per call lets a client send `max_attempts` times its normal load to a
//! host that is already down. A budget (Finagle's `RetryBudget`, gRPC's retry throttling) ties
//! retries to traffic instead: every logical call deposits `ratio` of a retry and every retry
//! withdraws a whole one. While a host answers, retries stay available for the odd failure;
//! under a total outage the engine sends at most `1 + ratio` attempts per call once the
//! `reserve` is spent. The balance is kept in thousandths of a retry, so it is exact and cheap.
//!
//! A retry after a 429 with `Retry-After` costs nothing: a healthy server is pacing its clients,
//! and the engine holds the whole host until then. A 503 with `Retry-After` still costs a
//! retry, so an outage is never multiplied, whatever headers it comes with.

use crate::config::BudgetConfig;

const ONE: u64 = 1000;

/// One host's retry budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    enabled: bool,
    balance: u64,
    deposit: u64,
    max: u64,
}

impl Budget {
    /// A full reserve, from a validated config.
    pub fn new(config: &BudgetConfig) -> Self {
        Budget {
            enabled: config.enabled,
            balance: u64::from(config.reserve) * ONE,
            deposit: (config.ratio * ONE as f64).round() as u64,
            max: u64::from(config.max_saved) * ONE,
        }
    }

    /// A logical call started: it earns `ratio` of a retry.
    pub fn deposit(&mut self) {
        self.balance = (self.balance + self.deposit).min(self.max);
    }

    /// Takes one retry if the budget holds one.
    pub fn try_withdraw(&mut self) -> bool {
        if !self.enabled {
            return true;
        }
        if self.balance >= ONE {
            self.balance -= ONE;
            true
        } else {
            false
        }
    }

    /// Retries available now (fractional), for snapshots.
    pub fn available(&self) -> f64 {
        if self.enabled {
            self.balance as f64 / ONE as f64
        } else {
            f64::INFINITY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn outage_amplification_is_bounded() {
        let config = BudgetConfig {
            enabled: true,
            ratio: 0.1,
            reserve: 10,
            max_saved: 100,
        };
        let mut b = Budget::new(&config);
        let calls = 10_000u64;
        let mut attempts = 0u64;
        for _ in 0..calls {
            b.deposit();
            attempts += 1;
            // Each call would like 3 retries against a dead host.
            for _ in 0..3 {
                if b.try_withdraw() {
                    attempts += 1;
                } else {
                    break;
                }
            }
        }
        assert!(attempts as f64 / calls as f64 <= 1.1 + 10.0 / calls as f64);
        assert!(attempts as f64 / calls as f64 >= 1.09);
    }

    #[test]
    fn disabled_budget_always_allows_and_saving_is_capped() {
        let mut off = Budget::new(&BudgetConfig {
            enabled: false,
            ..BudgetConfig::default()
        });
        assert!((0..1000).all(|_| off.try_withdraw()));
        let mut b = Budget::new(&BudgetConfig::default());
        for _ in 0..100_000 {
            b.deposit();
        }
        assert_eq!(b.available(), 100.0);
    }
}
