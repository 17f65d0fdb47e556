//! A breaker under control by hand: holds (isolate, force closed), reset, and its state
//! exported and imported.
//!
//! - **Isolate** ([`HoldKind::Isolate`]) holds the breaker open: every call to the host fails
//!   fast with [`crate::Why::BreakerIsolated`] and no time to try again, until every isolation
//!   is released. Isolations count (two holders, two releases), as cockatiel's `isolate()`
//!   handles do; when the last is released the breaker is closed with a fresh window.
//! - **Force closed** ([`HoldKind::ForceClosed`]) holds it closed: calls flow, attempts are
//!   still counted, but nothing trips it until the hold is released. Isolation wins over it.
//! - **Reset** closes the breaker now with a fresh window and no trips (Polly's manual
//!   `Close`); holds stay.
//! - **Export** ([`BreakerSnapshot`]) writes each host's state with times relative to the
//!   export (an open breaker's remaining time), never a process's clock, plus the caller's wall
//!   clock if given so that an import much later can subtract the time in between. It is
//!   versioned ([`SNAPSHOT_VERSION`]); a snapshot of another version, or one that does not
//!   parse, is a [`SnapshotError`]. Holds are not exported: they belong to whoever holds them.
//!   The failure-rate window is not exported either; an imported breaker starts a fresh one.

use core::time::Duration;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Breaker, BreakerState, Refusal};
use crate::breaker::Admit;
use crate::config::BreakerConfig;
use crate::time::{Instant, UnixTime};

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Which way a hold holds the breaker.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// Held open: calls fail fast.
    Isolate,
    /// Held closed: calls flow and nothing trips it.
    ForceClosed,
}

/// A hold on one host's breaker, from [`crate::Engine::hold_breaker`]; give it back to
/// [`crate::Engine::release_breaker`]. It cannot be cloned, so it is released at most once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "the breaker stays held until the hold is released"]
pub struct BreakerHold {
    pub(crate) host: Arc<str>,
    pub(crate) kind: HoldKind,
}

impl BreakerHold {
    /// The host held.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How it is held.
    pub fn kind(&self) -> HoldKind {
        self.kind
    }
}

/// What was done to a breaker by hand, for events.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerControl {
    /// An isolation began.
    Isolated,
    /// An isolation was released.
    IsolationReleased,
    /// A force-closed hold began.
    ForcedClosed,
    /// A force-closed hold was released.
    ForceReleased,
    /// The breaker was reset to closed.
    Reset,
    /// The breaker's state was imported from a snapshot.
    Imported,
}

impl BreakerControl {
    /// The stable name (its serde form).
    pub fn name(self) -> &'static str {
        match self {
            BreakerControl::Isolated => "isolated",
            BreakerControl::IsolationReleased => "isolation_released",
            BreakerControl::ForcedClosed => "forced_closed",
            BreakerControl::ForceReleased => "force_released",
            BreakerControl::Reset => "reset",
            BreakerControl::Imported => "imported",
        }
    }
}

/// The holds on one breaker.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Holds {
    isolated: u32,
    forced_closed: u32,
}

impl Holds {
    /// What a hold says about an attempt, if a hold is in force.
    pub(crate) fn admit(&self) -> Option<Result<Admit, Refusal>> {
        if self.isolated > 0 {
            Some(Err(Refusal::Isolated))
        } else if self.forced_closed > 0 {
            Some(Ok(Admit::Normal))
        } else {
            None
        }
    }

    pub(crate) fn forced_closed(&self) -> bool {
        self.forced_closed > 0
    }

    pub(crate) fn any(&self) -> bool {
        self.isolated > 0 || self.forced_closed > 0
    }
}

impl Breaker {
    /// Takes a hold; the breaker is closed under a force-closed hold.
    pub(crate) fn hold(&mut self, kind: HoldKind) {
        match kind {
            HoldKind::Isolate => self.holds.isolated = self.holds.isolated.saturating_add(1),
            HoldKind::ForceClosed => {
                self.holds.forced_closed = self.holds.forced_closed.saturating_add(1);
                self.close_fresh();
            }
        }
    }

    /// Gives a hold back; when the last isolation goes, the breaker is closed with a fresh
    /// window (as cockatiel's does).
    pub(crate) fn release(&mut self, kind: HoldKind) {
        match kind {
            HoldKind::Isolate => {
                self.holds.isolated = self.holds.isolated.saturating_sub(1);
                if self.holds.isolated == 0 {
                    self.close_fresh();
                }
            }
            HoldKind::ForceClosed => {
                self.holds.forced_closed = self.holds.forced_closed.saturating_sub(1);
            }
        }
    }

    /// Whether a hold is in force (such a host is never forgotten).
    pub(crate) fn is_held(&self) -> bool {
        self.holds.any()
    }

    /// Whether the breaker is isolated.
    pub fn is_isolated(&self) -> bool {
        self.holds.isolated > 0
    }

    /// The hold in force, if any: an isolation outranks a force-closed hold, as in admission.
    pub fn hold_kind(&self) -> Option<HoldKind> {
        if self.holds.isolated > 0 {
            Some(HoldKind::Isolate)
        } else if self.holds.forced_closed > 0 {
            Some(HoldKind::ForceClosed)
        } else {
            None
        }
    }

    /// Closed now, with no trips and a fresh window; probes still out answer into a period
    /// that is over, so they decide nothing.
    pub(crate) fn close_fresh(&mut self) {
        self.state = BreakerState::Closed;
        self.consecutive = 0;
        self.trips = 0;
        self.probe_successes = 0;
        self.period = self.period.wrapping_add(1);
        self.fresh_window();
    }

    /// The state as a snapshot entry at `now`.
    pub(crate) fn export(&self, host: &str, now: Instant) -> HostBreaker {
        let (state, open_remaining_ms) = match self.state {
            BreakerState::Closed => (SnapshotState::Closed, None),
            BreakerState::Open { until } if until > now => (
                SnapshotState::Open,
                Some(u64::try_from((until - now).as_millis()).unwrap_or(u64::MAX)),
            ),
            BreakerState::Open { .. } | BreakerState::HalfOpen => (SnapshotState::HalfOpen, None),
        };
        HostBreaker {
            host: host.to_string(),
            state,
            open_remaining_ms,
            trips: self.trips,
            consecutive_failures: self.consecutive,
        }
    }

    /// Takes the state of a snapshot entry at `now`, `elapsed` after it was exported. An open
    /// time longer than `max_open_ms` (the config changed) is cut to it.
    pub(crate) fn import(
        &mut self,
        entry: &HostBreaker,
        config: &BreakerConfig,
        elapsed: Duration,
        now: Instant,
    ) {
        self.close_fresh();
        self.trips = entry.trips;
        match entry.state {
            SnapshotState::Closed => self.consecutive = entry.consecutive_failures,
            SnapshotState::HalfOpen => self.state = BreakerState::HalfOpen,
            SnapshotState::Open => {
                let remaining = entry.open_remaining_ms.unwrap_or(0).min(config.max_open_ms);
                let left = Duration::from_millis(remaining).saturating_sub(elapsed);
                self.state = if left.is_zero() {
                    BreakerState::HalfOpen
                } else {
                    BreakerState::Open { until: now + left }
                };
            }
        }
    }
}

/// Where a breaker stood when it was exported.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    /// Closed.
    Closed,
    /// Open, for `open_remaining_ms` more.
    Open,
    /// Half-open (or open with its time up): probes decide.
    HalfOpen,
}

/// One host's breaker in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostBreaker {
    /// `scheme://authority`.
    pub host: String,
    /// Its state.
    pub state: SnapshotState,
    /// For an open breaker: how long it stays open, from the export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_remaining_ms: Option<u64>,
    /// Trips since its last full recovery (the next open time grows with them).
    #[serde(default)]
    pub trips: u32,
    /// Failures in a row while closed.
    #[serde(default)]
    pub consecutive_failures: u32,
}

/// Every known host's breaker, as [`crate::Engine::export_breakers`] writes it.
///
/// ```
/// use resile_core::breaker::{BreakerSnapshot, SnapshotError};
///
/// let text = r#"{"version":1,"hosts":[{"host":"https://api.example","state":"open","open_remaining_ms":4000,"trips":1}]}"#;
/// let snapshot = BreakerSnapshot::from_json(text).unwrap();
/// assert_eq!(snapshot.hosts[0].open_remaining_ms, Some(4000));
/// assert!(matches!(
///     BreakerSnapshot::from_json(r#"{"version":9,"hosts":[]}"#),
///     Err(SnapshotError::UnsupportedVersion { found: 9, supported: 1 })
/// ));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSnapshot {
    /// The format's version: [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// The caller's wall clock at the export, if it gave one (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_at_unix_ms: Option<u64>,
    /// The hosts.
    pub hosts: Vec<HostBreaker>,
}

/// A snapshot that cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Written by another version of the format.
    #[error(
        "breaker snapshot version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version the snapshot says.
        found: u64,
        /// The version this build reads.
        supported: u32,
    },
    /// Not a snapshot: bad JSON or a missing or unknown field.
    #[error("not a breaker snapshot: {message}")]
    Malformed {
        /// What is wrong.
        message: String,
    },
    /// An entry names no host, or a host twice.
    #[error("breaker snapshot entry {index}: {problem}")]
    BadEntry {
        /// The entry's index.
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// More hosts than the engine keeps state for (`max_hosts`).
    #[error("breaker snapshot has {hosts} hosts; the engine keeps at most {max_hosts}")]
    TooManyHosts {
        /// Hosts in the snapshot.
        hosts: usize,
        /// The engine's bound.
        max_hosts: u32,
    },
}

impl BreakerSnapshot {
    /// Reads a snapshot from JSON: the version first, so a snapshot of another version says so
    /// rather than failing on a field it does not know.
    pub fn from_json(text: &str) -> Result<BreakerSnapshot, SnapshotError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SnapshotError::Malformed {
                message: e.to_string(),
            })?;
        BreakerSnapshot::from_value(value)
    }

    /// Reads a snapshot from a JSON value (see [`BreakerSnapshot::from_json`]).
    pub fn from_value(value: serde_json::Value) -> Result<BreakerSnapshot, SnapshotError> {
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        match version {
            Some(v) if v == u64::from(SNAPSHOT_VERSION) => {}
            Some(found) => {
                return Err(SnapshotError::UnsupportedVersion {
                    found,
                    supported: SNAPSHOT_VERSION,
                })
            }
            None => {
                return Err(SnapshotError::Malformed {
                    message: "no numeric `version`".into(),
                })
            }
        }
        let snapshot =
            crate::config::breaker_snapshot(&value).map_err(|e| SnapshotError::Malformed {
                message: e.to_string(),
            })?;
        snapshot.check()?;
        Ok(snapshot)
    }

    /// The snapshot as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), SnapshotError> {
        let mut seen = crate::map::SortedMap::new();
        for (index, entry) in self.hosts.iter().enumerate() {
            if entry.host.is_empty() {
                return Err(SnapshotError::BadEntry {
                    index,
                    problem: "the host is empty",
                });
            }
            if seen.insert(entry.host.as_str(), ()).is_some() {
                return Err(SnapshotError::BadEntry {
                    index,
                    problem: "the host appears twice",
                });
            }
        }
        Ok(())
    }

    /// Time between the export and `wall`, when both clocks are known (zero otherwise, and
    /// zero for a wall clock that went backwards).
    pub(crate) fn elapsed(&self, wall: Option<UnixTime>) -> Duration {
        match (self.exported_at_unix_ms, wall) {
            (Some(at), Some(wall)) => UnixTime::from_millis(at).until(wall),
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 2,
            failure_rate: None,
            open_ms: 1000,
            max_open_ms: 5000,
            half_open_probes: 1,
            ..BreakerConfig::default()
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn trip(b: &mut Breaker, at: Instant) {
        let c = config();
        for _ in 0..2 {
            let _ = b.record(&c, Admit::Normal, true, at);
        }
    }

    #[test]
    fn isolations_count_and_win_over_force_closed() {
        let c = config();
        let mut b = Breaker::new();
        b.hold(HoldKind::Isolate);
        b.hold(HoldKind::Isolate);
        b.hold(HoldKind::ForceClosed);
        assert_eq!(b.admit(&c, ms(0)).0, Err(Refusal::Isolated));
        assert_eq!(b.peek(&c, ms(0)), Err(Refusal::Isolated));
        b.release(HoldKind::Isolate);
        assert_eq!(b.admit(&c, ms(0)).0, Err(Refusal::Isolated));
        b.release(HoldKind::Isolate);
        assert_eq!(b.admit(&c, ms(0)).0, Ok(Admit::Normal));
        // Forced closed: failures are counted but trip nothing.
        trip(&mut b, ms(1));
        assert_eq!(b.current(), BreakerState::Closed);
        b.release(HoldKind::ForceClosed);
        trip(&mut b, ms(2));
        assert!(matches!(b.current(), BreakerState::Open { .. }));
    }

    #[test]
    fn force_closed_closes_an_open_breaker_and_isolation_ignores_a_disabled_one() {
        let mut b = Breaker::new();
        trip(&mut b, ms(0));
        b.hold(HoldKind::ForceClosed);
        assert_eq!(b.current(), BreakerState::Closed);
        let disabled = BreakerConfig {
            enabled: false,
            ..config()
        };
        let mut d = Breaker::new();
        d.hold(HoldKind::Isolate);
        assert_eq!(d.admit(&disabled, ms(0)).0, Err(Refusal::Isolated));
    }

    #[test]
    fn export_is_relative_and_import_restores_it_later() {
        let c = config();
        let mut b = Breaker::new();
        trip(&mut b, ms(10_000));
        let entry = b.export("http://h", ms(10_400));
        assert_eq!(
            (entry.state, entry.open_remaining_ms, entry.trips),
            (SnapshotState::Open, Some(600), 1)
        );
        // Another process, another origin: open for what was left.
        let mut other = Breaker::new();
        other.import(&entry, &c, Duration::ZERO, ms(5));
        assert_eq!(other.current(), BreakerState::Open { until: ms(605) });
        // 200 ms of wall time since the export are taken off.
        other.import(&entry, &c, Duration::from_millis(200), ms(5));
        assert_eq!(other.current(), BreakerState::Open { until: ms(405) });
        // All of it gone: half-open.
        other.import(&entry, &c, Duration::from_secs(1), ms(5));
        assert_eq!(other.current(), BreakerState::HalfOpen);
        // A remaining time over the cap is cut to it.
        let long = HostBreaker {
            open_remaining_ms: Some(60_000),
            ..entry
        };
        other.import(&long, &c, Duration::ZERO, ms(0));
        assert_eq!(other.current(), BreakerState::Open { until: ms(5000) });
    }

    #[test]
    fn bad_snapshots_are_typed_errors() {
        type Row = (&'static str, fn(&SnapshotError) -> bool);
        let rows: [Row; 6] = [
            ("not json", |e| matches!(e, SnapshotError::Malformed { .. })),
            (r#"{"hosts":[]}"#, |e| {
                matches!(e, SnapshotError::Malformed { .. })
            }),
            (r#"{"version":2,"hosts":[]}"#, |e| {
                matches!(e, SnapshotError::UnsupportedVersion { found: 2, .. })
            }),
            (
                r#"{"version":1,"hosts":[{"host":"h","state":"ajar"}]}"#,
                |e| matches!(e, SnapshotError::Malformed { .. }),
            ),
            (
                r#"{"version":1,"hosts":[{"host":"","state":"closed"}]}"#,
                |e| matches!(e, SnapshotError::BadEntry { index: 0, .. }),
            ),
            (
                r#"{"version":1,"hosts":[{"host":"h","state":"closed"},{"host":"h","state":"open"}]}"#,
                |e| matches!(e, SnapshotError::BadEntry { index: 1, .. }),
            ),
        ];
        for (text, is) in rows {
            let e = BreakerSnapshot::from_json(text).unwrap_err();
            assert!(is(&e), "{text}: {e}");
        }
        let ok = BreakerSnapshot {
            version: 1,
            exported_at_unix_ms: Some(5),
            hosts: vec![Breaker::new().export("http://h", ms(0))],
        };
        assert_eq!(BreakerSnapshot::from_json(&ok.to_json()), Ok(ok));
    }
}
