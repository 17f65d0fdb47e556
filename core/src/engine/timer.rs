//! The engine's timers: one optional deadline per call, kept exact.
//!
//! Each call has at most one deadline that something waits for: the end of a wait (backoff, a
//! rate-limit slot, a server hold), its deadline while it waits for a token or a concurrency
//! slot, or the end of its attempt in flight. The queue holds `(at, key)` entries, earliest
//! first and, at the same instant, the call started first first; an entry is live only while
//! its call still holds exactly that deadline. Stale entries are dropped as soon as they reach
//! the front ([`TimerQueue::prune`] runs after every input), so
//! [`TimerQueue::next`] — and the engine's `poll_timeout()` — reports only deadlines something
//! waits for, as quinn-proto's `TimerTable` does, and a driver never wakes for nothing.
//!
//! Most deadlines are `now + a fixed timeout`, so they arrive in order: those go to a FIFO
//! (push and pop in O(1)); only a deadline earlier than the last one queued (a shorter
//! timeout, a wait) goes to a heap. The earliest entry is the earlier of the two fronts; its
//! instant is kept (`next`), updated by every push and pop, so that `poll_timeout()`, which
//! every driver asks after every input, reads one field instead of both fronts.

use core::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::time::Instant;

/// Whose deadline an entry is. Ordered by `seq` (start order) first, so deadlines at the same
/// instant fire first come, first served.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    pub slot: u32,
    pub seq: u32,
}

impl Ord for TimerKey {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (self.seq, self.slot).cmp(&(other.seq, other.slot))
    }
}

impl PartialOrd for TimerKey {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

type Entry = (Instant, TimerKey);

/// Entries pushed in order, oldest first: a `Vec` read from a cursor (`entries[head..]`).
///
/// A `VecDeque`'s pop wraps its head around its capacity, at every pop; here a pop moves the
/// cursor, and the spent front goes when the FIFO empties (the common case: every deadline
/// popped or pruned) or, when a push finds the `Vec` full, if it is at least half of what is
/// held (else the `Vec` grows), so each entry is moved at most once for that, and the `Vec`
/// grows only when more than half of it is queued: its capacity stays under four times the
/// most entries ever queued at once.
#[derive(Debug, Default)]
struct Fifo {
    entries: Vec<Entry>,
    /// The first entry still queued; `entries` is empty when it reaches the end.
    head: usize,
}

impl Fifo {
    #[inline(always)]
    fn front(&self) -> Option<&Entry> {
        self.entries.get(self.head)
    }

    /// The newest entry (the spent front is empty whenever nothing is queued).
    #[inline(always)]
    fn back(&self) -> Option<&Entry> {
        self.entries.last()
    }

    #[inline(always)]
    fn push_back(&mut self, entry: Entry) {
        if self.entries.len() == self.entries.capacity() {
            self.make_room();
        }
        self.entries.push(entry);
    }

    /// The `Vec` is full: drops the spent front if it is at least half of it.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self) {
        if self.head > 0 && self.head * 2 >= self.entries.len() {
            self.entries.drain(..self.head);
            self.head = 0;
        }
    }

    #[inline(always)]
    fn pop_front(&mut self) {
        self.head += 1;
        if self.head >= self.entries.len() {
            self.entries.clear();
            self.head = 0;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len() - self.head
    }
}

/// Deadlines, earliest first.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    /// Entries pushed in order: each no earlier than the one before.
    fifo: Fifo,
    /// Entries that came out of order.
    heap: BinaryHeap<Reverse<Entry>>,
    /// The earliest entry's instant, live or not: what [`TimerQueue::front`] would say.
    next: Option<Instant>,
}

/// Which queue holds the earliest entry.
enum Front {
    Fifo,
    Heap,
}

impl TimerQueue {
    /// Adds a deadline; the owner records `at` as its current one.
    pub fn push(&mut self, at: Instant, key: TimerKey) {
        let entry = (at, key);
        match self.fifo.back() {
            // The earliest entry is at or before the FIFO's last: `next` stays.
            Some(last) if entry >= *last => {
                self.fifo.push_back(entry);
                return;
            }
            Some(_) => self.heap.push(Reverse(entry)),
            None => self.fifo.push_back(entry),
        }
        self.next = Some(self.next.map_or(at, |next| next.min(at)));
    }

    #[inline]
    fn front(&self) -> Option<(Entry, Front)> {
        match (self.fifo.front(), self.heap.peek()) {
            (Some(f), Some(Reverse(h))) if h < f => Some((*h, Front::Heap)),
            (Some(f), _) => Some((*f, Front::Fifo)),
            (None, Some(Reverse(h))) => Some((*h, Front::Heap)),
            (None, None) => None,
        }
    }

    fn pop_front(&mut self, front: Front) {
        match front {
            Front::Fifo => self.fifo.pop_front(),
            Front::Heap => {
                self.heap.pop();
            }
        }
        self.next = self.front().map(|((at, _), _)| at);
    }

    /// Pops the earliest entry due at `now`, live or not: the caller checks it.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        let (entry, front) = self.front().filter(|((at, _), _)| *at <= now)?;
        self.pop_front(front);
        Some(entry)
    }

    /// Drops stale entries from the front, so [`TimerQueue::next`] is exact.
    ///
    /// Inline where it runs (after every input): most deadlines come in order, so with the
    /// heap empty only the FIFO's front is looked at, a few instructions without a call; the
    /// heap's part is out of line.
    #[inline(always)]
    pub fn prune(&mut self, live: impl Fn(Instant, TimerKey) -> bool) {
        let mut popped = false;
        while self.heap.is_empty() {
            match self.fifo.front() {
                Some(&(at, key)) if !live(at, key) => {
                    self.fifo.pop_front();
                    popped = true;
                }
                front => {
                    if popped {
                        self.next = front.map(|&(at, _)| at);
                    }
                    return;
                }
            }
        }
        self.prune_both(live);
    }

    /// [`TimerQueue::prune`] with entries in the heap: the earlier of the two fronts, until
    /// one is live.
    #[inline(never)]
    fn prune_both(&mut self, live: impl Fn(Instant, TimerKey) -> bool) {
        while let Some(((at, key), front)) = self.front() {
            if live(at, key) {
                return;
            }
            self.pop_front(front);
        }
    }

    /// The earliest deadline (exact once [`TimerQueue::prune`] ran).
    #[inline]
    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    /// Entries held, live or stale (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.fifo.len() + self.heap.len()
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

    #[test]
    fn the_fifo_keeps_its_order_and_bounds_its_spent_front() {
        let mut f = Fifo::default();
        let key = |seq| TimerKey { slot: 0, seq };
        let (mut pushed, mut popped) = (0u32, 0u32);
        // Three in, two out, over and over: the spent front goes at a full `Vec`'s push.
        for _ in 0..1_000 {
            for _ in 0..3 {
                f.push_back((at(u64::from(pushed)), key(pushed)));
                pushed += 1;
            }
            for _ in 0..2 {
                assert_eq!(f.front(), Some(&(at(u64::from(popped)), key(popped))));
                f.pop_front();
                popped += 1;
            }
            assert_eq!(
                f.back(),
                Some(&(at(u64::from(pushed - 1)), key(pushed - 1)))
            );
            let cap = f.entries.capacity();
            assert!(
                cap < 4 * f.len().max(1) + 4,
                "capacity {cap} for {}",
                f.len()
            );
        }
        while f.front().is_some() {
            f.pop_front();
            popped += 1;
        }
        assert_eq!((popped, f.len(), f.head, f.back()), (pushed, 0, 0, None));
    }

    #[test]
    fn in_order_and_out_of_order_deadlines_come_out_earliest_first() {
        let mut q = TimerQueue::default();
        let key = |seq| TimerKey { slot: 9 - seq, seq };
        // In order (the FIFO), then earlier ones (the heap), then ties at one instant.
        for (ms, seq) in [(10, 1), (20, 2), (30, 3), (15, 4), (5, 5), (30, 6), (20, 7)] {
            q.push(at(ms), key(seq));
        }
        let mut out = Vec::new();
        while let Some((t, k)) = q.pop_due(at(100)) {
            out.push((t, k.seq));
        }
        let want = [(5, 5), (10, 1), (15, 4), (20, 2), (20, 7), (30, 3), (30, 6)];
        assert_eq!(out, want.map(|(ms, seq)| (at(ms), seq)));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn the_kept_next_is_the_earliest_live_deadline_after_every_prune() {
        use crate::rng::{RandomSource, Rng};
        let mut rng = Rng::seeded(15);
        let mut q = TimerQueue::default();
        // Each key's one live deadline, as the engine's calls hold them.
        let mut live: Vec<Option<Instant>> = vec![None; 16];
        let mut now = 0;
        for step in 0..20_000u32 {
            let slot = rng.below(16) as u32;
            let key = TimerKey { slot, seq: step };
            match rng.below(4) {
                // Mostly in order (a fixed timeout), sometimes earlier (a wait): both queues.
                0 | 1 => {
                    let spread = if rng.below(3) == 0 { 5 } else { 50 };
                    let t = at(now + rng.below(spread));
                    live[slot as usize] = Some(t);
                    q.push(t, key);
                }
                2 => live[slot as usize] = None,
                _ => {
                    now += rng.below(20);
                    while let Some((t, k)) = q.pop_due(at(now)) {
                        if live[k.slot as usize] == Some(t) {
                            live[k.slot as usize] = None;
                        }
                        assert_eq!(q.next(), q.front().map(|((t, _), _)| t), "step {step}");
                    }
                }
            }
            assert_eq!(q.next(), q.front().map(|((t, _), _)| t), "step {step}");
            q.prune(|t, k| live[k.slot as usize] == Some(t));
            let earliest_live = live.iter().flatten().min().copied();
            assert_eq!(q.next(), earliest_live, "step {step}");
        }
    }
}
