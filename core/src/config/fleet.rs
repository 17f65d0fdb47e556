//! Fleet mode: instances that share one quota through a store (see [`crate::fleet`]).

use serde::Serialize;

use super::{check_ms, out_of_range, ConfigError};

/// Several instances share their hosts' rate limits, server holds, learned limits and
/// (opt-in) breaker openings through a store the adapter reaches (Redis in the native client).
///
/// With a fleet section the engine asks the store before every attempt
/// ([`crate::Action::Reserve`]); the configured `limit` (or a learned one) is then the
/// **fleet's** limit, not one instance's. When the store does not answer within
/// `answer_within_ms`, or cannot be reached, the instance falls back to its local share of the
/// limit (`limit / size`) for `recheck_ms`, announces it ([`crate::EventKind::FleetFallback`]),
/// and asks the store again afterwards: a call never waits on the store past that bound nor
/// past its own deadline.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "deserialize", derive(serde::Deserialize))]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// The fleet's name: instances with the same name (and store) share their state. It
    /// prefixes the store's keys. 1 to 64 characters, none of `{`, `}` or whitespace.
    /// Default `"resile"`.
    pub name: String,
    /// How many instances share the quota. While the store is unreachable each instance sends
    /// at most `1 / size` of the limit, so the fleet as a whole stays within it. Set it to the
    /// number of instances you run (rounding up is safe). Default 1.
    pub size: u32,
    /// The longest an attempt waits for the store's answer before the instance falls back to
    /// its local share. Default 5 ms.
    pub answer_within_ms: u64,
    /// After a store failure, how long the instance uses its local share before asking the
    /// store again. Default 500 ms.
    pub recheck_ms: u64,
    /// Share breaker openings: an instance whose breaker opens tells the fleet "open until T",
    /// and the others hold their calls to that host until then. Advisory only: no failure
    /// counts are shared, so one instance's bad network cannot open the others' breakers for
    /// longer than its own. Default false.
    pub share_breaker: bool,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            name: "resile".to_string(),
            size: 1,
            answer_within_ms: 5,
            recheck_ms: 500,
            share_breaker: false,
        }
    }
}

impl FleetConfig {
    /// Checks every field; the error names the first one that is off.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = (1..=64).contains(&self.name.chars().count())
            && !self
                .name
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace());
        if !name_ok {
            return Err(out_of_range(
                "fleet.name",
                &self.name,
                "must be 1 to 64 characters without `{`, `}` or whitespace",
            ));
        }
        if self.size == 0 {
            return Err(out_of_range("fleet.size", 0, "must be at least 1"));
        }
        if !(1..=10_000).contains(&self.answer_within_ms) {
            return Err(out_of_range(
                "fleet.answer_within_ms",
                self.answer_within_ms,
                "must be between 1 and 10000 ms",
            ));
        }
        if self.recheck_ms == 0 {
            return Err(out_of_range("fleet.recheck_ms", 0, "must be positive"));
        }
        check_ms("fleet.recheck_ms", self.recheck_ms)
    }
}
