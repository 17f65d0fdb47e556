//! The engine's timers: one optional deadline per call, kept exact.
//!
//! Each call has at most one deadline that something waits for: the end of a wait (backoff, a
//! rate-limit slot, a server hold), its deadline while it waits for a token or a concurrency
//! slot, or the end of its attempt in flight. The queue is a heap of `(at, slot, seq)` entries;
//! an entry is live only while its call still holds exactly that deadline. Stale entries are
//! dropped as soon as they reach the top ([`TimerQueue::prune`] runs after every input), so
//! [`TimerQueue::next`] — and the engine's `poll_timeout()` — reports only deadlines something
//! waits for, as quinn-proto's `TimerTable` does, and a driver never wakes for nothing.

use core::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::time::Instant;

/// Whose deadline an entry is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    pub slot: u32,
    pub seq: u32,
}

/// Deadlines, earliest first.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

impl TimerQueue {
    /// Adds a deadline; the owner records `at` as its current one.
    pub fn push(&mut self, at: Instant, key: TimerKey) {
        self.heap.push(Reverse((at, key)));
    }

    /// Pops the earliest entry due at `now`, live or not: the caller checks it.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Drops stale entries from the top, so [`TimerQueue::next`] is exact.
    pub fn prune(&mut self, live: impl Fn(Instant, TimerKey) -> bool) {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if live(*at, *key) {
                return;
            }
            self.heap.pop();
        }
    }

    /// The earliest deadline (exact once [`TimerQueue::prune`] ran).
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Entries held, live or stale (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn stale_entries_never_surface_after_prune() {
        let mut q = TimerQueue::default();
        let a = TimerKey { slot: 0, seq: 1 };
        let b = TimerKey { slot: 1, seq: 2 };
        q.push(at(10), a);
        q.push(at(20), b);
        // `a` moved on: only `b`'s deadline is waited for.
        q.prune(|t, k| k == b && t == at(20));
        assert_eq!(q.next(), Some(at(20)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_due(at(19)), None);
        assert_eq!(q.pop_due(at(20)), Some((at(20), b)));
        assert_eq!(q.next(), None);
    }
}
