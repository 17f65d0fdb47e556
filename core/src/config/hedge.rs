//! Hedging: a further attempt of a slow idempotent read while the first is still out.

use serde::Serialize;

use super::{check_ms, out_of_range, ConfigError};

/// The most hedges one call may send (gRPC A6 caps a hedging policy at 5 attempts in all;
/// resile at 1 + 3 in flight at once).
pub const MAX_HEDGES: u32 = 3;

/// Hedged requests (gRPC A6 `hedgingPolicy`, Polly's hedging strategy, Finagle's backup
/// requests): when an attempt of a GET, HEAD or OPTIONS call has not answered after the hedge
/// delay, the engine sends another attempt of the same call beside it; the first good answer
/// wins and the others are aborted ([`crate::Why::HedgeLost`]).
///
/// A hedge is an attempt like any other: it counts against `retry.max_attempts`, withdraws a
/// retry from the host's budget (no budget, no hedge; the attempts already out carry on),
/// takes a concurrency slot and a rate-limit slot (none free now: no hedge, it never waits for
/// one), is never sent while the host's breaker is not closed or its server hold lasts, and
/// never past the call's deadline. Writes are never hedged, with or without a key.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct HedgeConfig {
    /// Hedge idempotent reads at all. Default false.
    pub enabled: bool,
    /// The hedge delay: how long an attempt may go unanswered before the next is sent, when
    /// `percentile` is unset or the host has fewer than `min_samples` latencies yet.
    /// Default 100 ms.
    pub delay_ms: u64,
    /// Hedge after this quantile of the host's recent attempt latencies instead (Finagle's
    /// backup requests: `0.95` sends a backup for the slowest 5 %), in (0, 1). Default none.
    pub percentile: Option<f64>,
    /// Latencies a host must have shown before its percentile is used. Default 20.
    pub min_samples: u32,
    /// The shortest delay a percentile may give. Default 5 ms.
    pub min_delay_ms: u64,
    /// The longest delay a percentile may give. Default 2 s.
    pub max_delay_ms: u64,
    /// Hedges per call, at most [`MAX_HEDGES`]. Default 1.
    pub max_hedges: u32,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        HedgeConfig {
            enabled: false,
            delay_ms: 100,
            percentile: None,
            min_samples: 20,
            min_delay_ms: 5,
            max_delay_ms: 2_000,
            max_hedges: 1,
        }
    }
}

impl HedgeConfig {
    /// Checks every field; the error names the first one that is off.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("hedge.delay_ms", self.delay_ms),
            ("hedge.min_delay_ms", self.min_delay_ms),
            ("hedge.max_delay_ms", self.max_delay_ms),
        ] {
            check_ms(field, value)?;
        }
        if self.delay_ms == 0 {
            return Err(out_of_range("hedge.delay_ms", 0, "must be positive"));
        }
        if let Some(p) = self.percentile {
            if !(p.is_finite() && p > 0.0 && p < 1.0) {
                return Err(out_of_range(
                    "hedge.percentile",
                    p,
                    "must be in (0, 1) or null",
                ));
            }
        }
        if self.min_samples == 0 {
            return Err(out_of_range("hedge.min_samples", 0, "must be at least 1"));
        }
        if self.max_delay_ms < self.min_delay_ms {
            return Err(out_of_range(
                "hedge.max_delay_ms",
                self.max_delay_ms,
                "must be at least hedge.min_delay_ms",
            ));
        }
        if !(1..=MAX_HEDGES).contains(&self.max_hedges) {
            return Err(out_of_range(
                "hedge.max_hedges",
                self.max_hedges,
                "must be between 1 and 3",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn off_by_default_and_read_by_its_json_names() {
        assert!(!Config::default().hedge.enabled);
        let c = Config::from_json(
            r#"{"hedge": {"enabled": true, "delay_ms": 40, "percentile": 0.95, "min_samples": 50,
                "min_delay_ms": 10, "max_delay_ms": 500, "max_hedges": 2}}"#,
        )
        .unwrap();
        let h = &c.hedge;
        assert!(h.enabled);
        assert_eq!(
            (h.delay_ms, h.percentile, h.min_samples),
            (40, Some(0.95), 50)
        );
        assert_eq!((h.min_delay_ms, h.max_delay_ms, h.max_hedges), (10, 500, 2));
        let unknown = Config::from_json(r#"{"hedge": {"delay": 40}}"#).unwrap_err();
        assert!(matches!(unknown, ConfigError::Parse(_)), "{unknown}");
    }

    #[test]
    fn each_bad_field_is_named() {
        for (json, field) in [
            (r#"{"delay_ms": 0}"#, "hedge.delay_ms"),
            (r#"{"percentile": 1.0}"#, "hedge.percentile"),
            (r#"{"percentile": 0.0}"#, "hedge.percentile"),
            (r#"{"min_samples": 0}"#, "hedge.min_samples"),
            (
                r#"{"min_delay_ms": 10, "max_delay_ms": 5}"#,
                "hedge.max_delay_ms",
            ),
            (r#"{"max_hedges": 0}"#, "hedge.max_hedges"),
            (r#"{"max_hedges": 4}"#, "hedge.max_hedges"),
            (r#"{"max_delay_ms": 3000000000}"#, "hedge.max_delay_ms"),
        ] {
            let err = Config::from_json(&format!(r#"{{"hedge": {json}}}"#)).unwrap_err();
            assert_eq!(err.field(), Some(field), "{json}: {err}");
        }
    }
}
