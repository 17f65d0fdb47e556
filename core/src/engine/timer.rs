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
//!
//! A call's deadline ([`Armed`]) changes only through the queue ([`TimerQueue::arm`],
//! [`TimerQueue::disarm`], [`TimerQueue::fired`]), which so knows when an entry goes stale: it
//! drops it at once if it is the FIFO's front (the oldest attempt in flight answered first,
//! the common case), else counts it. While nothing is counted, every entry is live and the
//! prune after an input is one test; it looks at the fronts only while some entry is stale.

use core::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::engine::call::CallId;
use crate::time::Instant;

/// Whose deadline an entry is: a call's start order (`seq`) and slot, in one word, `seq`
/// high, so that keys compare in one instruction, in start order first: deadlines at the
/// same instant fire first come, first served.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey(u64);

impl TimerKey {
    /// The key of call `id`'s deadline.
    #[inline(always)]
    pub fn of(id: CallId) -> TimerKey {
        TimerKey::new(id.slot, id.seq)
    }

    /// The key of the call started `seq`-th, in `slot`.
    #[inline(always)]
    pub fn new(slot: u32, seq: u32) -> TimerKey {
        TimerKey(u64::from(seq) << 32 | u64::from(slot))
    }

    /// The call's slot.
    #[inline(always)]
    pub fn slot(self) -> u32 {
        self.0 as u32
    }

    /// The call's start order.
    #[inline(always)]
    pub fn seq(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

type Entry = (Instant, TimerKey);

/// The deadline a call's timer entry stands for, if any. Read anywhere ([`Armed::at`]);
/// changed only through the [`TimerQueue`], so that the queue knows which entries are stale.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Armed(Option<Instant>);

impl Armed {
    /// The deadline, if one is armed.
    #[inline(always)]
    pub fn at(self) -> Option<Instant> {
        self.0
    }
}

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
    /// Entries that went stale and are still queued (at least: a deadline armed again at the
    /// same instant may be counted while its first entry still looks live). Zero means every
    /// entry is live.
    stale: usize,
}

/// Which queue holds the earliest entry.
enum Front {
    Fifo,
    Heap,
}

impl TimerQueue {
    /// Makes `at` the deadline of `timer` (whose owner `key` names), in place of the one it had.
    pub fn arm(&mut self, timer: &mut Armed, at: Instant, key: TimerKey) {
        self.disarm(timer, key);
        timer.0 = Some(at);
        self.push(at, key);
    }

    /// Clears the deadline of `timer` (whose owner `key` names): its entry goes stale.
    #[inline]
    pub fn disarm(&mut self, timer: &mut Armed, key: TimerKey) {
        if let Some(at) = timer.0.take() {
            self.went_stale((at, key));
        }
    }

    /// [`TimerQueue::disarm`] with all of it inline, for the straight success (the common
    /// outcome); the other callers share one copy of the stale entry's drop, which keeps the
    /// browser build small.
    #[inline(always)]
    pub fn disarm_inline(&mut self, timer: &mut Armed, key: TimerKey) {
        if let Some(at) = timer.0.take() {
            self.went_stale_inline((at, key));
        }
    }

    /// Clears the deadline of `timer`, whose entry [`TimerQueue::pop_due`] just returned.
    #[inline(always)]
    pub fn fired(&mut self, timer: &mut Armed) {
        timer.0 = None;
    }

    /// `entry` is stale now: dropped at once if it is the FIFO's front, else counted.
    #[inline]
    fn went_stale(&mut self, entry: Entry) {
        self.went_stale_inline(entry);
    }

    /// [`TimerQueue::went_stale`], inline.
    #[inline(always)]
    fn went_stale_inline(&mut self, entry: Entry) {
        if self.fifo.front() != Some(&entry) {
            self.stale += 1;
            return;
        }
        self.fifo.pop_front();
        if self.heap.is_empty() {
            self.next = self.fifo.front().map(|&(at, _)| at);
        } else if self.next == Some(entry.0) {
            // The heap's front may be the earliest now. (If it already was, earlier than the
            // entry, `next` stays: the FIFO's new front is no earlier than the entry.)
            self.renew_next();
        }
    }

    /// Works `next` out again from both fronts.
    #[inline(never)]
    fn renew_next(&mut self) {
        self.next = self.front().map(|((at, _), _)| at);
    }

    /// Adds a deadline ([`TimerQueue::arm`]'s last step).
    fn push(&mut self, at: Instant, key: TimerKey) {
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

    /// Pops the earliest live entry due at `now` (`live` says which are), dropping the stale
    /// ones before it.
    pub fn pop_due(
        &mut self,
        now: Instant,
        live: impl Fn(Instant, TimerKey) -> bool,
    ) -> Option<(Instant, TimerKey)> {
        loop {
            let (entry, front) = self.front().filter(|((at, _), _)| *at <= now)?;
            self.pop_front(front);
            if live(entry.0, entry.1) {
                return Some(entry);
            }
            self.popped_stale();
        }
    }

    /// A stale entry left the queue.
    #[inline(always)]
    fn popped_stale(&mut self) {
        debug_assert!(self.stale > 0, "a stale entry that went uncounted");
        self.stale = self.stale.saturating_sub(1);
    }

    /// Drops stale entries from the front, so [`TimerQueue::next`] is exact.
    ///
    /// Inline where it runs (after every input): with no entry stale (the common case, see
    /// the module docs) it is one test; the look at the fronts is out of line.
    #[inline(always)]
    pub fn prune(&mut self, live: impl Fn(Instant, TimerKey) -> bool) {
        if self.stale > 0 {
            self.prune_stale(live);
        }
    }

    /// [`TimerQueue::prune`] with some entry stale: the earlier of the two fronts, until one
    /// is live or none is stale.
    #[inline(never)]
    fn prune_stale(&mut self, live: impl Fn(Instant, TimerKey) -> bool) {
        while let Some(((at, key), front)) = self.front().filter(|_| self.stale > 0) {
            if live(at, key) {
                return;
            }
            self.pop_front(front);
            self.popped_stale();
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

    /// Every entry is live (for [`TimerQueue::prune`] and [`TimerQueue::pop_due`]).
    fn all_live(_: Instant, _: TimerKey) -> bool {
        true
    }

    /// The key of the call in `slot` (started `slot + 1`-th).
    fn key(slot: u32) -> TimerKey {
        TimerKey::new(slot, slot + 1)
    }

    /// A queue with three calls' deadlines, in order: slot 0 at 10 ms, 1 at 20, 2 at 30.
    fn three_armed() -> (TimerQueue, [Armed; 3]) {
        let mut q = TimerQueue::default();
        let mut timers = [Armed::default(); 3];
        for (slot, ms) in [(0, 10), (1, 20), (2, 30)] {
            q.arm(&mut timers[slot as usize], at(ms), key(slot));
        }
        (q, timers)
    }

    #[test]
    fn stale_entries_never_surface_after_prune() {
        let (mut q, mut timers) = three_armed();
        // The second moves on (counted: it is not at the front), then the first (dropped
        // at once: it is), so the front is stale until the prune.
        q.disarm(&mut timers[1], key(1));
        q.disarm(&mut timers[0], key(0));
        assert_eq!((q.len(), q.stale, q.next()), (2, 1, Some(at(20))));
        q.prune(|t, k| timers[k.slot() as usize].at() == Some(t));
        assert_eq!((q.len(), q.stale, q.next()), (1, 0, Some(at(30))));
        assert_eq!(q.pop_due(at(29), all_live), None);
        assert_eq!(q.pop_due(at(30), all_live), Some((at(30), key(2))));
        assert_eq!(q.next(), None);
    }

    #[test]
    fn a_deadline_given_up_at_the_front_goes_at_once_and_the_prune_looks_at_nothing() {
        let (mut q, mut timers) = three_armed();
        // The oldest ends first, then the next (its deadline armed again, later): each
        // old entry is the front when it goes stale.
        q.disarm(&mut timers[0], key(0));
        q.arm(&mut timers[1], at(40), key(1));
        assert_eq!((q.len(), q.stale, q.next()), (2, 0, Some(at(30))));
        // Nothing is stale, so the prune asks nothing.
        q.prune(|_, _| panic!("asked about an entry"));
        let due: Vec<_> = core::iter::from_fn(|| q.pop_due(at(100), all_live)).collect();
        assert_eq!(due, [(at(30), key(2)), (at(40), key(1))]);
    }

    #[test]
    fn the_fifo_keeps_its_order_and_bounds_its_spent_front() {
        let mut f = Fifo::default();
        let key = |seq| TimerKey::new(0, seq);
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
    fn a_key_orders_by_start_first_then_slot_and_gives_both_back() {
        let keys = [(3, 1), (0, 2), (1, 2), (u32::MAX, 7), (0, u32::MAX)];
        for pair in keys.windows(2) {
            let (a, b) = (
                TimerKey::new(pair[0].0, pair[0].1),
                TimerKey::new(pair[1].0, pair[1].1),
            );
            assert!(a < b, "{pair:?}");
        }
        for (slot, seq) in keys {
            let key = TimerKey::new(slot, seq);
            assert_eq!((key.slot(), key.seq()), (slot, seq));
        }
    }

    #[test]
    fn in_order_and_out_of_order_deadlines_come_out_earliest_first() {
        let mut q = TimerQueue::default();
        let key = |seq| TimerKey::new(9 - seq, seq);
        // In order (the FIFO), then earlier ones (the heap), then ties at one instant.
        for (ms, seq) in [(10, 1), (20, 2), (30, 3), (15, 4), (5, 5), (30, 6), (20, 7)] {
            q.push(at(ms), key(seq));
        }
        let mut out = Vec::new();
        while let Some((t, k)) = q.pop_due(at(100), all_live) {
            out.push((t, k.seq()));
        }
        let want = [(5, 5), (10, 1), (15, 4), (20, 2), (20, 7), (30, 3), (30, 6)];
        assert_eq!(out, want.map(|(ms, seq)| (at(ms), seq)));
        assert_eq!(q.len(), 0);
    }

    /// Whether an entry is live among `calls` (by slot: a call's key and its deadline).
    fn live_in(calls: &[Option<(TimerKey, Armed)>]) -> impl Fn(Instant, TimerKey) -> bool + '_ {
        |t, k| matches!(&calls[k.slot() as usize], Some((key, timer)) if *key == k && timer.at() == Some(t))
    }

    #[test]
    fn the_kept_next_is_the_earliest_live_deadline_after_every_prune() {
        use crate::rng::{RandomSource, Rng};
        let mut rng = Rng::seeded(15);
        let mut q = TimerQueue::default();
        // Sixteen slots, each holding a call (its key) and its one deadline, or nothing, as
        // the engine's calls do.
        let mut calls: Vec<Option<(TimerKey, Armed)>> = vec![None; 16];
        let mut seq = 0;
        let mut now = 0;
        for step in 0..40_000u32 {
            let slot = rng.below(16) as usize;
            match (rng.below(6), &mut calls[slot]) {
                (_, place @ None) => {
                    seq += 1;
                    let key = TimerKey::new(slot as u32, seq);
                    *place = Some((key, Armed::default()));
                }
                // Mostly in order (a fixed timeout), sometimes earlier (a wait): both
                // queues; and at times the instant it already has.
                (0..=2, Some((key, timer))) => {
                    let spread = if rng.below(3) == 0 { 5 } else { 50 };
                    let t = match timer.at() {
                        Some(t) if rng.below(8) == 0 => t,
                        _ => at(now + rng.below(spread)),
                    };
                    q.arm(timer, t, *key);
                }
                (3, Some((key, timer))) => q.disarm(timer, *key),
                // The call ends: its deadline goes with it.
                (4, place @ Some(_)) => {
                    if let Some((key, mut timer)) = place.take() {
                        q.disarm(&mut timer, key);
                    }
                }
                (_, Some(_)) => {
                    now += rng.below(20);
                    while let Some((t, k)) = q.pop_due(at(now), live_in(&calls)) {
                        assert!(t <= at(now));
                        if let Some((_, timer)) = calls[k.slot() as usize].as_mut() {
                            q.fired(timer);
                        }
                    }
                }
            }
            assert_eq!(q.next(), q.front().map(|((t, _), _)| t), "step {step}");
            let live = live_in(&calls);
            // At least every stale entry is counted (a deadline armed again at an instant
            // it had makes its old entry look live again), and no more than are queued.
            assert_counted(&q, &live, &format!("step {step}"));
            assert!(q.stale <= q.len(), "step {step}");
            q.prune(live);
            let earliest = calls
                .iter()
                .flatten()
                .filter_map(|(_, timer)| timer.at())
                .min();
            assert_eq!(q.next(), earliest, "step {step}");
        }
        assert!(q.len() < 64, "stale entries pile up: {}", q.len());
        // Every call ends: the count goes back to nothing with the entries.
        for place in &mut calls {
            if let Some((key, mut timer)) = place.take() {
                q.disarm(&mut timer, key);
            }
        }
        assert_eq!(q.pop_due(Instant::MAX, live_in(&calls)), None);
        assert_eq!((q.len(), q.stale, q.next()), (0, 0, None));
    }

    /// The engine's timers after an input: the kept `next` is the earliest deadline a call
    /// holds, and every stale entry is counted.
    fn assert_exact(e: &crate::engine::Engine, what: &str) {
        let earliest = e.calls.iter().flatten().filter_map(|c| c.timer.at()).min();
        assert_eq!(e.timers.next(), earliest, "after {what}");
        let live = crate::engine::timer_live(&e.calls);
        assert_counted(&e.timers, &live, &format!("after {what}"));
    }

    /// Every entry of `q` that is not `live` is counted stale.
    fn assert_counted(q: &TimerQueue, live: &impl Fn(Instant, TimerKey) -> bool, what: &str) {
        let entries = q.fifo.entries[q.fifo.head..]
            .iter()
            .chain(q.heap.iter().map(|Reverse(e)| e));
        let stale = entries.filter(|(t, k)| !live(*t, *k)).count();
        assert!(
            q.stale >= stale,
            "{} counted, {stale} stale: {what}",
            q.stale
        );
    }

    #[test]
    fn the_engines_next_deadline_is_exact_after_every_input() {
        use crate::classify::TransportError;
        use crate::engine::{Action, CallId, CallSpec, Engine, Outcome, Response};
        use crate::rng::{RandomSource, Rng};
        use crate::time::UnixTime;
        let soon: &[(&str, &str)] = &[("retry-after", "1")];
        let none: &[(&str, &str)] = &[];
        let mut hedged = crate::Config::default();
        hedged.hedge.enabled = true;
        hedged.hedge.delay_ms = 40;
        let mut limited = crate::Config::default();
        limited.concurrency.max_in_flight_per_host = Some(3);
        for (seed, config) in [crate::Config::default(), hedged, limited]
            .into_iter()
            .enumerate()
        {
            let mut e = Engine::new(config, seed as u64, Instant::ZERO).unwrap();
            let mut rng = Rng::seeded(seed as u64 + 100);
            let mut now = Instant::ZERO;
            let mut out: Vec<(CallId, u32)> = Vec::new();
            let mut calls: Vec<CallId> = Vec::new();
            for step in 0..3_000 {
                let what = match rng.below(10) {
                    0 | 1 => {
                        let host = ["https://a.test", "https://b.test"][rng.below(2) as usize];
                        calls.push(e.start(CallSpec::get(host), now));
                        "a start"
                    }
                    // An answer to any attempt out, oldest or not.
                    2..=6 if !out.is_empty() => {
                        let (call, attempt) = out.swap_remove(rng.below(out.len() as u64) as usize);
                        let outcome = match rng.below(8) {
                            0 => Outcome::Transport(TransportError::Connect),
                            1 => Outcome::Response(Response::new(503, &soon, UnixTime::EPOCH)),
                            2 => Outcome::Response(Response::new(503, &none, UnixTime::EPOCH)),
                            _ => Outcome::Response(Response::new(200, &none, UnixTime::EPOCH)),
                        };
                        e.handle_attempt(call, attempt, outcome, now);
                        "an answer"
                    }
                    7 if !calls.is_empty() => {
                        let call = calls.swap_remove(rng.below(calls.len() as u64) as usize);
                        e.cancel(call, now);
                        "a cancel"
                    }
                    _ => {
                        // Now and then long enough for attempts to time out.
                        let ms = if rng.below(10) == 0 { 12_000 } else { 300 };
                        now = now + core::time::Duration::from_millis(rng.below(ms));
                        if let Some(t) = e.poll_timeout().filter(|t| *t <= now) {
                            e.handle_timeout(t.max(now));
                        }
                        "the time moving on"
                    }
                };
                while let Some(action) = e.poll_action() {
                    if let Action::Send { call, attempt, .. } = action {
                        out.push((call, attempt));
                    }
                }
                e.drain_events(|_| {});
                assert_exact(&e, &format!("{what} (config {seed}, step {step})"));
            }
        }
    }
}
