//! Under the config's `aws` section (the AWS presets): AWS's retry delay in place of the
//! generic backoff, the `x-amz-retry-after` header it may honour, and the long poll's wait
//! before it fails when the quota refused its retry.

use core::time::Duration;

use crate::aws_backoff::AwsBackoff;
use crate::config::Jitter;
use crate::engine::call::Phase;
use crate::engine::event::EventKind;
use crate::engine::failure::Failure;
use crate::engine::outcome::Outcome;
use crate::engine::Engine;
use crate::quota::RetryKind;
use crate::rng::RandomSource;
use crate::time::Instant;
use crate::why::Why;

/// The header AWS services use to ask for a wait, in milliseconds.
pub const X_AMZ_RETRY_AFTER: &str = "x-amz-retry-after";

/// A uniform draw in `[0, 1]` at 53-bit resolution.
fn unit(rng: &mut impl RandomSource) -> f64 {
    const SPAN: u64 = 1 << 53;
    rng.between(0, SPAN) as f64 / SPAN as f64
}

/// AWS's delay before retry `n` (0 for the first) after a failure of `kind` under `rule`: `r`
/// is drawn uniform in `[0, 1]` under full jitter and is 1 without jitter (the only two
/// jitters the `aws` section accepts).
pub(super) fn wait(
    rule: &AwsBackoff,
    jitter: Jitter,
    n: u32,
    kind: RetryKind,
    x_amz_retry_after: Option<&str>,
    rng: &mut impl RandomSource,
) -> Duration {
    let r = match jitter {
        Jitter::None => 1.0,
        _ => unit(rng),
    };
    Duration::from_millis(rule.delay_ms(n, kind, r, x_amz_retry_after))
}

impl Engine {
    /// The `x-amz-retry-after` value of `outcome`, read only when the AWS rule honours it.
    pub(super) fn x_amz_retry_after<'o>(&self, outcome: &Outcome<'o>) -> Option<&'o str> {
        let honoured = self
            .config
            .aws
            .as_ref()
            .is_some_and(|a| a.retry_after_slack_ms.is_some());
        match outcome {
            Outcome::Response(r) | Outcome::Unusable(r, _) if honoured => {
                r.headers.get(X_AMZ_RETRY_AFTER)
            }
            _ => None,
        }
    }

    /// The AWS delay rule, when the config has the `aws` section.
    pub(super) fn aws_rule(&self) -> Option<AwsBackoff> {
        Some(self.config.aws.as_ref()?.backoff(&self.config.backoff))
    }

    /// The quota refused the retry of a long poll: it waits out its backoff at the
    /// non-throttling base (honouring `x-amz-retry-after` as a retry would), then fails with
    /// `failure` (see [`Phase::Failing`]). False when the config does not make calls long
    /// polls.
    pub(super) fn long_poll_backoff(
        &mut self,
        slot: u32,
        failure: Failure,
        x_amz_retry_after: Option<&str>,
        now: Instant,
    ) -> bool {
        if !self.config.aws.as_ref().is_some_and(|a| a.long_polling) {
            return false;
        }
        let Some(c) = self.calls[slot as usize].as_ref() else {
            return false;
        };
        let (id, n, deadline) = (c.id, c.attempts.saturating_sub(1), c.deadline);
        let Some(rule) = self.aws_rule() else {
            return false;
        };
        let jitter = self.config.backoff.jitter;
        let wait = wait(
            &rule,
            jitter,
            n,
            RetryKind::Error,
            x_amz_retry_after,
            &mut self.rng,
        );
        // This draw is not the one the retry rule checked against the deadline: the wait
        // ends at the deadline at the latest.
        let until = deadline.map_or(now + wait, |d| d.min(now + wait));
        if let Some(c) = self.calls[slot as usize].as_mut() {
            c.phase = Phase::Failing { until };
            self.failing.insert(id, failure);
        }
        self.set_timer(slot, until);
        self.event(
            now,
            EventKind::Waiting {
                call: id,
                until,
                why: Why::BudgetExhausted,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::{Action, CallSpec, Engine, Outcome, Response};
    use crate::headers::NoHeaders;
    use crate::time::{Instant, UnixTime};
    use crate::{Config, Why};
    use core::time::Duration;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Starts a long poll on `engine` and answers its first attempt with a 500 the empty
    /// quota cannot pay for: it backs off in `Phase::Failing`.
    fn backing_off(engine: &mut Engine) -> crate::engine::CallId {
        let id = engine.start(CallSpec::get("https://a.test"), Instant::ZERO);
        let Some(Action::Send { attempt, .. }) = engine.poll_action() else {
            panic!("no first attempt")
        };
        let response = Response::new(500, &NoHeaders, UnixTime::EPOCH);
        engine.handle_attempt(id, attempt, Outcome::Response(response), Instant::ZERO);
        id
    }

    #[test]
    fn a_failing_calls_kept_failure_goes_with_it_however_it_ends() {
        let doc = serde_json::json!({
            "preset": "aws-2.1",
            "breaker": { "enabled": false },
            "backoff": { "jitter": "none" },
            "aws": { "long_polling": true, "quota": { "capacity": 0 } },
        });
        let mut engine = Engine::new(Config::from_value(doc).unwrap(), 1, Instant::ZERO).unwrap();
        let cancelled = backing_off(&mut engine);
        let waited = backing_off(&mut engine);
        assert_eq!(
            engine.failing.len(),
            2,
            "both back off, their failures kept"
        );
        while engine.poll_action().is_some() {}
        engine.cancel(cancelled, Instant::ZERO + Duration::from_millis(1));
        assert!(matches!(
            engine.poll_action(),
            Some(Action::Fail { failure, .. }) if failure.why == Why::Cancelled
        ));
        assert_eq!(
            engine.failing.len(),
            1,
            "the cancelled call's failure went with it"
        );
        let wake = engine.poll_timeout().expect("the other one waits");
        engine.handle_timeout(wake);
        assert!(matches!(
            engine.poll_action(),
            Some(Action::Fail { call, failure }) if call == waited && failure.why == Why::BudgetExhausted
        ));
        assert!(engine.failing.is_empty());
        assert_eq!(engine.active_calls(), 0);
    }
}
