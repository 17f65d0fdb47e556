//! The AWS SDKs' retry quota: a per-host bucket of retry tokens that every retry draws from and
//! that only success refills. The standard mode (smithy-rs `aws-smithy-runtime`
//! `client/retries/token_bucket.rs` and `strategy/standard.rs`, aws-sdk-go-v2
//! `aws/retry/standard.go`) starts full at 500, charges 5 per retry and 10 per retry after a
//! timeout, returns the latest retry's charge when the call finally succeeds, and adds 1 when a
//! call succeeds on its first attempt. A retry the bucket cannot pay for is not made.
//!
//! The bucket is host state ([`RetryQuota`]); what one call holds is call state
//! ([`QuotaHold`]). Both are plain numbers: no clock, no allocation.

use serde::Serialize;

/// The costs and capacity of a retry quota.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Tokens when full (and at start).
    pub capacity: u32,
    /// Tokens a retry after a retryable error costs.
    pub retry_cost: u32,
    /// Tokens a retry after a timeout or a lost connection costs.
    pub timeout_cost: u32,
    /// Tokens a retry after a throttling answer costs.
    pub throttling_cost: u32,
    /// Tokens a call that succeeds on its first attempt adds.
    pub success_increment: u32,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig::AWS_STANDARD
    }
}

impl QuotaConfig {
    /// The AWS SDKs' standard mode: 500, 5 per retry, 10 per timeout retry, +1 on a first-try
    /// success (throttles cost the same 5 as any retryable error).
    pub const AWS_STANDARD: QuotaConfig = QuotaConfig {
        capacity: 500,
        retry_cost: 5,
        timeout_cost: 10,
        throttling_cost: 5,
        success_increment: 1,
    };

    /// AWS "Retry Behavior 2.1": 14 per retry, 10 per timeout retry, 5 per throttled retry
    /// (aws-sdk-net `StandardRetryPolicy`, `CapacityManager(500, 14, 1, 10, 5)` under
    /// `UseNewRetries2026`).
    pub const AWS_2_1: QuotaConfig = QuotaConfig {
        capacity: 500,
        retry_cost: 14,
        timeout_cost: 10,
        throttling_cost: 5,
        success_increment: 1,
    };

    /// The cost of a retry after a failure of this kind.
    pub fn cost(&self, kind: RetryKind) -> u32 {
        match kind {
            RetryKind::Error => self.retry_cost,
            RetryKind::Timeout => self.timeout_cost,
            RetryKind::Throttling => self.throttling_cost,
        }
    }
}

/// Why the failed attempt is retried, which sets its cost.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RetryKind {
    /// A retryable status or error (5xx, a transient error code).
    Error,
    /// A timeout or a connection lost mid-call (smithy-rs' `TransientError`).
    Timeout,
    /// The server throttled the call (429, `Throttling`).
    Throttling,
}

/// The tokens one call holds: the charge of its latest retry, if any.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotaHold {
    held: Option<u32>,
    retried: bool,
}

/// The bucket is too low to pay for a retry: the call fails with its last answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the retry quota holds {available} tokens, a retry costs {cost}")]
pub struct QuotaExhausted {
    /// Tokens left.
    pub available: u32,
    /// Tokens the retry would have cost.
    pub cost: u32,
}

/// A host's retry quota.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetryQuota {
    config: QuotaConfig,
    available: u32,
}

impl RetryQuota {
    /// A full bucket.
    pub fn new(config: QuotaConfig) -> Self {
        RetryQuota {
            config,
            available: config.capacity,
        }
    }

    /// A bucket of `capacity` that currently holds `available` (at most `capacity`).
    pub fn with_available(config: QuotaConfig, available: u32) -> Self {
        RetryQuota {
            config,
            available: available.min(config.capacity),
        }
    }

    /// Tokens left.
    pub fn available(&self) -> u32 {
        self.available
    }

    /// Pays for a retry of `hold`'s call after a failure of `kind`. The call's earlier charge,
    /// if any, is spent for good (only the latest retry's charge comes back on success).
    pub fn try_retry(
        &mut self,
        hold: &mut QuotaHold,
        kind: RetryKind,
    ) -> Result<(), QuotaExhausted> {
        let cost = self.config.cost(kind);
        if self.available < cost {
            return Err(QuotaExhausted {
                available: self.available,
                cost,
            });
        }
        self.available -= cost;
        hold.held = Some(cost);
        hold.retried = true;
        Ok(())
    }

    /// The call of `hold` succeeded: its latest retry's charge comes back, or, if it never
    /// retried, the first-try success adds `success_increment`. Never above capacity.
    pub fn succeeded(&mut self, hold: &mut QuotaHold) {
        let refund = match hold.held.take() {
            Some(cost) => cost,
            None if !hold.retried => self.config.success_increment,
            None => 0,
        };
        self.available = self
            .available
            .saturating_add(refund)
            .min(self.config.capacity);
    }

    /// The call of `hold` failed for good: what it holds stays spent.
    pub fn failed(&mut self, hold: &mut QuotaHold) {
        hold.held = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const STD: QuotaConfig = QuotaConfig::AWS_STANDARD;

    enum Step {
        Retry(RetryKind),
        Success,
        Refused,
    }
    use Step::*;

    /// Replays one call against a bucket: each step and the tokens left after it.
    fn replay(mut quota: RetryQuota, steps: &[(Step, u32)], name: &str) -> RetryQuota {
        let mut hold = QuotaHold::default();
        for (i, (step, left)) in steps.iter().enumerate() {
            match step {
                Retry(kind) => quota.try_retry(&mut hold, *kind).unwrap(),
                Refused => assert_eq!(
                    quota.try_retry(&mut hold, RetryKind::Error),
                    Err(QuotaExhausted {
                        available: *left,
                        cost: STD.retry_cost
                    })
                ),
                Success => quota.succeeded(&mut hold),
            }
            assert_eq!(quota.available(), *left, "{name}, step {i}");
        }
        quota
    }

    // smithy-rs `aws-smithy-runtime/src/client/retries/strategy/standard.rs` tests
    // `eventual_success`, `no_more_attempts`, `backoff_timing`: server errors from a full
    // default bucket.
    #[test]
    fn smithy_rs_eventual_success_and_backoff_timing() {
        let full = RetryQuota::new(STD);
        replay(
            full,
            &[
                (Retry(RetryKind::Error), 495),
                (Retry(RetryKind::Error), 490),
                (Success, 495),
            ],
            "eventual_success",
        );
        replay(
            full,
            &[
                (Retry(RetryKind::Error), 495),
                (Retry(RetryKind::Error), 490),
                (Retry(RetryKind::Error), 485),
                (Retry(RetryKind::Error), 480),
            ],
            "backoff_timing",
        );
    }

    // smithy-rs `standard.rs` `no_quota`: a bucket of 5 pays one retry, then refuses.
    // And `successful_request_and_deser_should_be_retryable`: the charge of 5 comes back.
    #[test]
    fn smithy_rs_no_quota_and_refund() {
        let five = RetryQuota::with_available(QuotaConfig { capacity: 5, ..STD }, 5);
        replay(
            five,
            &[(Retry(RetryKind::Error), 0), (Refused, 0)],
            "no_quota",
        );
        replay(
            five,
            &[(Retry(RetryKind::Error), 0), (Success, 5)],
            "successful_request_and_deser_should_be_retryable",
        );
    }

    // smithy-rs `standard.rs` `quota_replenishes_on_success`: a bucket of 100, two transient
    // errors at 10 each, then success returns the latest 10 only.
    #[test]
    fn smithy_rs_quota_replenishes_on_success() {
        let hundred = RetryQuota::new(QuotaConfig {
            capacity: 100,
            ..STD
        });
        replay(
            hundred,
            &[
                (Retry(RetryKind::Timeout), 90),
                (Retry(RetryKind::Timeout), 80),
                (Success, 90),
            ],
            "quota_replenishes_on_success",
        );
    }

    // smithy-rs `standard.rs` `quota_replenishes_on_first_try_success`: a bucket of 20 drained
    // by two timeout retries (whose charge is forgotten), refilled by 20 first-try successes.
    #[test]
    fn smithy_rs_quota_replenishes_on_first_try_success() {
        let mut q = RetryQuota::new(QuotaConfig {
            capacity: 20,
            ..STD
        });
        let mut hold = QuotaHold::default();
        q.try_retry(&mut hold, RetryKind::Timeout).unwrap();
        q.try_retry(&mut hold, RetryKind::Timeout).unwrap();
        assert_eq!(q.available(), 0);
        q.failed(&mut hold);
        let mut calls = 0;
        while q.available() < 20 {
            q.succeeded(&mut QuotaHold::default());
            calls += 1;
            assert!(calls <= 20);
        }
        assert_eq!(calls, 20);
        q.succeeded(&mut QuotaHold::default());
        assert_eq!(q.available(), 20, "never above capacity");
    }

    // From the rule (aws-sdk-go-v2 `standard.go`: a call that retried and then succeeded
    // returns its latest charge, not the no-retry increment): a retried call whose hold was
    // already refunded adds nothing more.
    #[test]
    fn a_refunded_call_adds_nothing_twice() {
        let mut q = RetryQuota::new(STD);
        let mut hold = QuotaHold::default();
        q.try_retry(&mut hold, RetryKind::Throttling).unwrap();
        q.succeeded(&mut hold);
        assert_eq!(q.available(), 500);
        q.try_retry(&mut QuotaHold::default(), RetryKind::Error)
            .unwrap();
        q.succeeded(&mut hold);
        assert_eq!(q.available(), 495);
    }

    const V21: QuotaConfig = QuotaConfig::AWS_2_1;

    fn v21(capacity: u32) -> RetryQuota {
        RetryQuota::new(QuotaConfig { capacity, ..V21 })
    }

    /// Replays one call under the 2.1 costs: `Some(kind)` a retry that must be paid, `None`
    /// the end of the call (success when `ok`); the tokens after each step.
    fn replay21(quota: &mut RetryQuota, retries: &[(RetryKind, u32)], end: Option<(bool, u32)>) {
        let mut hold = QuotaHold::default();
        for (kind, left) in retries {
            quota.try_retry(&mut hold, *kind).unwrap();
            assert_eq!(quota.available(), *left);
        }
        if let Some((ok, left)) = end {
            if ok {
                quota.succeeded(&mut hold);
            } else {
                quota.failed(&mut hold);
            }
            assert_eq!(quota.available(), left);
        }
    }

    // AWS "Retry Behavior 2.1" SEP standard-mode cases, as aws-sdk-net
    // `RetryHandlerStandardMode21Tests` carries them (quota columns).
    #[test]
    fn sep_2_1_quota_cases() {
        use RetryKind::*;
        // "Retry eventually succeeds": 486 → 472 → 486.
        replay21(
            &mut v21(500),
            &[(Error, 486), (Error, 472)],
            Some((true, 486)),
        );
        // "Fail due to max attempts reached": 486 → 472.
        replay21(
            &mut v21(500),
            &[(Error, 486), (Error, 472)],
            Some((false, 472)),
        );
        // "Retry quota reached after a single retry": 14 → 0, then refused.
        let mut q = v21(14);
        let mut hold = QuotaHold::default();
        q.try_retry(&mut hold, Error).unwrap();
        assert_eq!(q.available(), 0);
        assert!(q.try_retry(&mut hold, Error).is_err());
        // "No retries at all if retry quota is 0".
        assert!(v21(0).try_retry(&mut QuotaHold::default(), Error).is_err());
        // "Verifying exponential backoff timing": 486 → 472 → 458 → 444.
        replay21(
            &mut v21(500),
            &[(Error, 486), (Error, 472), (Error, 458), (Error, 444)],
            Some((false, 444)),
        );
        // "Retry stops after retry quota exhaustion": 20 → 6, the second retry refused.
        let mut q = v21(20);
        let mut hold = QuotaHold::default();
        q.try_retry(&mut hold, Error).unwrap();
        assert_eq!(
            q.try_retry(&mut hold, Error),
            Err(QuotaExhausted {
                available: 6,
                cost: 14
            })
        );
        // "Retry quota recovery after successful responses": 30 → 16 → 2 → 16, then 16 → 2 → 16.
        let mut q = v21(30);
        replay21(&mut q, &[(Error, 16), (Error, 2)], Some((true, 16)));
        replay21(&mut q, &[(Error, 2)], Some((true, 16)));
        // "Throttling error token bucket drain": 495 → 500.
        replay21(&mut v21(500), &[(Throttling, 495)], Some((true, 500)));
        // "Honor x-amz-retry-after": 486 → 500.
        replay21(&mut v21(500), &[(Error, 486)], Some((true, 500)));
    }

    #[test]
    fn aws_2_1_costs() {
        assert_eq!(QuotaConfig::AWS_2_1.cost(RetryKind::Error), 14);
        assert_eq!(QuotaConfig::AWS_2_1.cost(RetryKind::Throttling), 5);
        let mut q = RetryQuota::new(QuotaConfig::AWS_2_1);
        let mut hold = QuotaHold::default();
        // 500 / 14 = 35 retries, 10 left.
        for _ in 0..35 {
            q.try_retry(&mut hold, RetryKind::Error).unwrap();
        }
        assert_eq!(q.available(), 10);
        assert_eq!(
            q.try_retry(&mut hold, RetryKind::Error),
            Err(QuotaExhausted {
                available: 10,
                cost: 14
            })
        );
        q.try_retry(&mut hold, RetryKind::Throttling).unwrap();
        assert_eq!(q.available(), 5);
    }
}
