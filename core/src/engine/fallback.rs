//! Fallback: a call that would fail because its host is refused or its retries ran out answers
//! with the caller's fallback instead — a value the caller gave, or the last good response to
//! the same request, if it is young enough.
//!
//! The decision is the engine's ([`decide`], asked wherever a call would fail); the adapters
//! hold the values and the last good responses (in a bounded [`FallbackStore`]) and hand one
//! back when the engine says [`crate::Action::Fallback`]. The result and the
//! [`crate::EventKind::CallFellBack`] event carry the failure the fallback stands in for.
//!
//! Which failures qualify ([`qualifies`]):
//! - the host is refused: [`Why::BreakerOpen`], [`Why::BreakerProbesBusy`],
//!   [`Why::BreakerIsolated`], and a server hold that outlasts the deadline
//!   ([`Why::ServerRetryAfterHold`], [`Why::ServerQuotaHold`]);
//! - the retries ran out: [`Why::MaxAttempts`], [`Why::BudgetExhausted`],
//!   [`Why::DeadlineExceeded`], [`Why::DeadlineWouldPass`], [`Why::RetryAfterTooLong`].
//!
//! Everything else fails as it would without a fallback: a cancelled call, a write not
//! repeated, a one-shot body, an authentication failure, an unusable body, a final status (that
//! is an answer, not a failure), a full queue or host table. And a write (POST, PATCH, or any
//! method that is not idempotent) whose last attempt may have been applied never falls back
//! unless the caller said so with [`FallbackWrites::Allow`]: answering it with a stand-in would
//! hide that the write may have happened.

use core::time::Duration;

use serde::Serialize;

use crate::classify::{Method, Processed};
use crate::engine::action::Action;
use crate::engine::call::Ended;
use crate::engine::event::EventKind;
use crate::engine::failure::Failure;
use crate::engine::Engine;
use crate::map::SortedMap;
use crate::time::Instant;
use crate::why::Why;

/// The failures a fallback may stand in for (see the module docs).
pub const QUALIFYING: [Why; 10] = [
    Why::BreakerOpen,
    Why::BreakerProbesBusy,
    Why::BreakerIsolated,
    Why::ServerRetryAfterHold,
    Why::ServerQuotaHold,
    Why::MaxAttempts,
    Why::BudgetExhausted,
    Why::DeadlineExceeded,
    Why::DeadlineWouldPass,
    Why::RetryAfterTooLong,
];

/// Whether a failure with this reason may be answered with a fallback.
pub fn qualifies(why: Why) -> bool {
    QUALIFYING.contains(&why)
}

/// What a call's fallback is, as the engine needs to know it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FallbackSpec {
    /// Where the stand-in comes from.
    pub source: FallbackSource,
    /// Whether a write that may have been applied may fall back too.
    pub writes: FallbackWrites,
}

impl FallbackSpec {
    /// A value the caller gave; writes that may have been applied do not fall back.
    pub fn value() -> Self {
        FallbackSpec {
            source: FallbackSource::Value,
            writes: FallbackWrites::Refuse,
        }
    }

    /// The last good response, stored at `stored_at`, usable while it is at most `max_age` old.
    pub fn stored(stored_at: Instant, max_age: Duration) -> Self {
        FallbackSpec {
            source: FallbackSource::Stored { stored_at, max_age },
            writes: FallbackWrites::Refuse,
        }
    }

    /// Says whether a write that may have been applied falls back too.
    pub fn writes(mut self, writes: FallbackWrites) -> Self {
        self.writes = writes;
        self
    }
}

/// Where a fallback comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FallbackSource {
    /// A value the caller gave with the request.
    Value,
    /// The last good response to the same request, stored by the adapter at `stored_at`.
    Stored {
        /// When the adapter stored it (the engine's clock).
        stored_at: Instant,
        /// The oldest it may be when it is used.
        max_age: Duration,
    },
}

/// Whether a write whose last attempt may have been applied may fall back.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackWrites {
    /// No: it fails, so the caller learns the write may have happened (the default).
    #[default]
    Refuse,
    /// Yes: the caller asked for a stand-in even then.
    Allow,
}

/// Which fallback answered, for the result and the event.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum FallbackUsed {
    /// The caller's value.
    Value,
    /// The last good response, this old.
    LastGood {
        /// Its age when used.
        #[serde(
            rename = "age_ms",
            serialize_with = "crate::engine::event::ser_duration_ms"
        )]
        age: Duration,
    },
}

/// The rule: whether a call with this method and fallback, about to fail with `failure` at
/// `now`, answers with its fallback instead, and which.
pub fn decide(
    method: Method,
    spec: Option<FallbackSpec>,
    failure: &Failure,
    now: Instant,
) -> Option<FallbackUsed> {
    let spec = spec?;
    if !qualifies(failure.why) {
        return None;
    }
    let maybe_applied_write = !method.is_idempotent() && failure.processed != Processed::Never;
    if maybe_applied_write && spec.writes == FallbackWrites::Refuse {
        return None;
    }
    match spec.source {
        FallbackSource::Value => Some(FallbackUsed::Value),
        FallbackSource::Stored { stored_at, max_age } => {
            let age = now - stored_at;
            (age <= max_age).then_some(FallbackUsed::LastGood { age })
        }
    }
}

impl Engine {
    /// A call that would have failed with `failure` answers with its fallback.
    pub(crate) fn fell_back(
        &mut self,
        call: &Ended,
        failure: Failure,
        used: FallbackUsed,
        now: Instant,
    ) {
        self.stats.fallbacks += 1;
        self.event(
            now,
            EventKind::CallFellBack {
                call: call.id,
                failure,
                used,
                elapsed: now - call.started,
            },
        );
        self.actions.push(Action::Fallback {
            call: call.id,
            failure,
            used,
        });
    }
}

/// The adapters' store of last good responses, bounded in entries and in bytes: a new entry
/// evicts the oldest stored ones until both bounds hold; an entry larger than the byte bound is
/// not stored. Keys are the adapter's (method and URL).
#[derive(Debug)]
pub struct FallbackStore<T> {
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    next: u64,
    entries: SortedMap<String, Stored<T>>,
}

#[derive(Debug)]
struct Stored<T> {
    value: T,
    bytes: usize,
    at: Instant,
    order: u64,
}

impl<T> FallbackStore<T> {
    /// 256 entries, 8 MiB: the adapters' default.
    pub const DEFAULT_ENTRIES: usize = 256;
    /// See [`FallbackStore::DEFAULT_ENTRIES`].
    pub const DEFAULT_BYTES: usize = 8 << 20;

    /// A store holding at most `max_entries` responses of at most `max_bytes` in all.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        FallbackStore {
            max_entries,
            max_bytes,
            bytes: 0,
            next: 0,
            entries: SortedMap::new(),
        }
    }

    /// Stores `value` (`bytes` long) under `key` at `now`, replacing what was there; `false` if
    /// it is too large to store at all.
    pub fn put(&mut self, key: String, value: T, bytes: usize, now: Instant) -> bool {
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.bytes;
        }
        if bytes > self.max_bytes || self.max_entries == 0 {
            return false;
        }
        while self.entries.len() >= self.max_entries || self.bytes + bytes > self.max_bytes {
            let Some(oldest) = (self.entries.iter().enumerate())
                .min_by_key(|(_, (_, s))| s.order)
                .map(|(i, _)| i)
            else {
                break;
            };
            if let Some((_, gone)) = self.entries.remove_at(oldest) {
                self.bytes -= gone.bytes;
            }
        }
        self.next += 1;
        self.bytes += bytes;
        self.entries.insert(
            key,
            Stored {
                value,
                bytes,
                at: now,
                order: self.next,
            },
        );
        true
    }

    /// The value stored under `key` and when it was stored.
    pub fn get(&self, key: &str) -> Option<(&T, Instant)> {
        self.entries.get(key).map(|s| (&s.value, s.at))
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<T> Default for FallbackStore<T> {
    fn default() -> Self {
        FallbackStore::new(Self::DEFAULT_ENTRIES, Self::DEFAULT_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::outcome::Last;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn failure(why: Why, processed: Processed) -> Failure {
        Failure::new(why, 3, Some(Last::Status(503)), processed)
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn every_reason_qualifies_or_not_as_the_module_docs_say() {
        for why in Why::ALL {
            let f = failure(why, Processed::Never);
            let got = decide(Method::Get, Some(FallbackSpec::value()), &f, ms(0));
            assert_eq!(got.is_some(), QUALIFYING.contains(&why), "{why:?}");
        }
        for why in [
            Why::Cancelled,
            Why::NotIdempotent,
            Why::BodyNotReplayable,
            Why::TokenFetchFailed,
            Why::NotRetryableStatus,
            Why::QueueTimeout,
            Why::PredicateDeclined,
        ] {
            assert!(!qualifies(why), "{why:?}");
        }
    }

    /// Rows: method, processed, writes, expected.
    #[test]
    fn a_write_that_may_have_been_applied_falls_back_only_when_asked() {
        let rows = [
            (Method::Get, Processed::Maybe, FallbackWrites::Refuse, true),
            (Method::Put, Processed::Yes, FallbackWrites::Refuse, true),
            (Method::Post, Processed::Never, FallbackWrites::Refuse, true),
            (
                Method::Post,
                Processed::Maybe,
                FallbackWrites::Refuse,
                false,
            ),
            (Method::Patch, Processed::Yes, FallbackWrites::Refuse, false),
            (Method::Post, Processed::Maybe, FallbackWrites::Allow, true),
        ];
        for (method, processed, writes, expected) in rows {
            let spec = FallbackSpec {
                source: FallbackSource::Value,
                writes,
            };
            let f = failure(Why::MaxAttempts, processed);
            let got = decide(method, Some(spec), &f, ms(0));
            assert_eq!(
                got.is_some(),
                expected,
                "{method:?} {processed:?} {writes:?}"
            );
        }
    }

    #[test]
    fn a_stored_response_answers_only_within_its_max_age() {
        let spec = FallbackSpec::stored(ms(1_000), Duration::from_millis(500));
        let f = failure(Why::BreakerOpen, Processed::Never);
        assert_eq!(
            decide(Method::Get, Some(spec), &f, ms(1_500)),
            Some(FallbackUsed::LastGood {
                age: Duration::from_millis(500)
            })
        );
        assert_eq!(decide(Method::Get, Some(spec), &f, ms(1_501)), None);
        assert_eq!(decide(Method::Get, None, &f, ms(1_000)), None);
    }

    #[test]
    fn the_store_keeps_within_its_entry_and_byte_bounds_oldest_out_first() {
        let mut store = FallbackStore::new(2, 100);
        assert!(store.put("a".into(), 1, 40, ms(1)));
        assert!(store.put("b".into(), 2, 40, ms(2)));
        assert!(store.put("c".into(), 3, 10, ms(3)));
        assert_eq!((store.len(), store.bytes()), (2, 50));
        assert!(store.get("a").is_none());
        // 50 + 90 is over the byte bound: the oldest (b) goes, c and d fit.
        assert!(store.put("d".into(), 4, 90, ms(4)));
        assert_eq!((store.len(), store.bytes()), (2, 100));
        assert!(store.get("b").is_none());
        assert_eq!(store.get("d"), Some((&4, ms(4))));
        assert!(!store.put("huge".into(), 5, 101, ms(5)));
        // Replacing an entry frees its bytes first.
        assert!(store.put("d".into(), 6, 20, ms(6)));
        assert_eq!((store.len(), store.bytes()), (2, 30));
        assert_eq!(store.get("d"), Some((&6, ms(6))));
        let mut none = FallbackStore::new(0, 100);
        assert!(!none.put("a".into(), 1, 1, ms(0)));
        assert!(none.is_empty());
    }
}
