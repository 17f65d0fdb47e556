//! Breakers by hand: hold one open or closed, release it, reset it, and export or import
//! every breaker's state. The rules are in [`crate::breaker`]'s `control` module; this is
//! the engine's side: finding the host, keeping it known while held, and the events.

use std::sync::Arc;

use crate::breaker::{BreakerControl, BreakerHold, BreakerSnapshot, HoldKind, SnapshotError};
use crate::engine::event::EventKind;
use crate::engine::Engine;
use crate::time::{Instant, UnixTime};

/// A breaker could not be controlled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The host table is full of hosts with calls in flight or holds.
    #[error("the host table is full ({max_hosts} hosts with calls in flight or held breakers)")]
    TooManyHosts {
        /// The engine's bound (`max_hosts`).
        max_hosts: u32,
    },
    /// The snapshot cannot be imported.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl Engine {
    /// Holds `host`'s breaker open ([`HoldKind::Isolate`]: every call fails fast with
    /// [`crate::Why::BreakerIsolated`]) or closed ([`HoldKind::ForceClosed`]) until the hold is
    /// given back to [`Engine::release_breaker`]. Holds count; a held host is never forgotten.
    pub fn hold_breaker(
        &mut self,
        host: &str,
        kind: HoldKind,
        now: Instant,
    ) -> Result<BreakerHold, ControlError> {
        let index = self.control_host(host, now)?;
        let h = &mut self.hosts[index];
        h.breaker.hold(kind);
        let name = h.name.clone();
        let control = match kind {
            HoldKind::Isolate => BreakerControl::Isolated,
            HoldKind::ForceClosed => BreakerControl::ForcedClosed,
        };
        self.controlled(name.clone(), control, now);
        Ok(BreakerHold { host: name, kind })
    }

    /// Gives a hold back. When the last isolation goes, the breaker is closed afresh.
    pub fn release_breaker(&mut self, hold: BreakerHold, now: Instant) {
        let Some(&index) = self.host_index.get(&hold.host) else {
            return;
        };
        self.hosts[index as usize].breaker.release(hold.kind);
        let control = match hold.kind {
            HoldKind::Isolate => BreakerControl::IsolationReleased,
            HoldKind::ForceClosed => BreakerControl::ForceReleased,
        };
        self.controlled(hold.host, control, now);
        self.settle(now);
    }

    /// Closes `host`'s breaker now, with no trips and a fresh window (holds stay).
    pub fn reset_breaker(&mut self, host: &str, now: Instant) -> Result<(), ControlError> {
        let index = self.control_host(host, now)?;
        self.hosts[index].breaker.close_fresh();
        let name = self.hosts[index].name.clone();
        self.controlled(name, BreakerControl::Reset, now);
        Ok(())
    }

    /// Every known host's breaker at `now`, with times relative to `now` and, if given, the
    /// caller's wall clock (see [`BreakerSnapshot`]).
    pub fn export_breakers(&self, now: Instant, wall: Option<UnixTime>) -> BreakerSnapshot {
        BreakerSnapshot {
            version: crate::breaker::SNAPSHOT_VERSION,
            exported_at_unix_ms: wall.map(UnixTime::as_millis),
            hosts: self
                .hosts
                .iter()
                .map(|h| h.breaker.export(&h.name, now))
                .collect(),
        }
    }

    /// Takes each host's breaker state from `snapshot`. With the caller's wall clock and a
    /// snapshot that carries one, the time since the export is taken off open times. Returns
    /// the number of hosts imported; nothing is imported when the snapshot does not fit.
    pub fn import_breakers(
        &mut self,
        snapshot: &BreakerSnapshot,
        now: Instant,
        wall: Option<UnixTime>,
    ) -> Result<usize, ControlError> {
        let max_hosts = self.config.max_hosts;
        if snapshot.hosts.len() > max_hosts as usize {
            return Err(SnapshotError::TooManyHosts {
                hosts: snapshot.hosts.len(),
                max_hosts,
            }
            .into());
        }
        let elapsed = snapshot.elapsed(wall);
        for entry in &snapshot.hosts {
            let index = self.control_host(&entry.host, now)?;
            let h = &mut self.hosts[index];
            h.breaker.import(entry, &self.config.breaker, elapsed, now);
            let name = h.name.clone();
            self.controlled(name, BreakerControl::Imported, now);
        }
        Ok(snapshot.hosts.len())
    }

    fn control_host(&mut self, host: &str, now: Instant) -> Result<usize, ControlError> {
        self.host_for(host, now)
            .map(|i| i as usize)
            .ok_or(ControlError::TooManyHosts {
                max_hosts: self.config.max_hosts,
            })
    }

    fn controlled(&mut self, host: Arc<str>, control: BreakerControl, now: Instant) {
        self.event(now, EventKind::BreakerControlled { host, control });
    }
}
