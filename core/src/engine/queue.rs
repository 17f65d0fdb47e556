//! The actions and events not yet handed out, oldest first: [`Queue`].
//!
//! A `Vec` read from a cursor rather than a ring: [`Queue::drain`] lends the queued items in
//! one contiguous pass, and [`Queue::pop`] moves one out from the cursor. Events are bounded
//! by `max_queued_events` ([`Queue::push_bounded`]: the oldest is dropped first); actions
//! never are ([`Queue::push`]). The spent front is compacted away once it is longer than what
//! is still queued (and 64 slots), so the queue never holds more than twice what is queued,
//! plus 64.
//!
//! Emptying the queue forgets its items but keeps their slots (see below for what is left in
//! them): the next pushes write into a slot that is already there, in place, instead of
//! through `Vec::push`, which is not inlined and copies a 120-byte event twice more on its way
//! in. The `Vec` grows only past the most ever queued at once.
//!
//! Most items own nothing ([`Owns`]: an `AttemptFinished`, a `CallSucceeded`, a `Done`), and
//! dropping them is a match on their kind that does nothing. A drain in which none owns
//! anything (the queue keeps a flag, set by the pushes of those that do) leaves them in their
//! slots instead of dropping each, and the next push writes over such a slot without dropping
//! it: what is forgotten there owns nothing, so nothing leaks. An item that owns something (a
//! host name's `Arc`) is still dropped at the drain that hands it out.

/// Popped slots kept at the front before they are compacted away.
const SPENT_BEFORE_COMPACTING: usize = 64;

/// Whether an item owns something its drop must release. The default asks the type; an enum
/// whose common variants own nothing says so per value. Pushed items are built in place of the
/// push, so for them the answer is known when the engine is compiled.
pub(crate) trait Owns {
    /// True if dropping `self` does something.
    #[inline(always)]
    fn owns(&self) -> bool {
        core::mem::needs_drop::<Self>()
    }
}

/// Items, oldest first: `slots[head..end]` are queued (each `Some` until popped); the slots
/// before `head` are `None`, and those from `end` on are `None` or hold a drained item that
/// owns nothing.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    slots: Vec<Option<T>>,
    head: usize,
    end: usize,
    /// Some item pushed since the last drain may own something ([`Owns`]).
    owning: bool,
    /// The most items [`Queue::push_bounded`] keeps queued (`usize::MAX`: no bound).
    bound: usize,
    /// `head + bound`, kept where `head` moves: the end past which a bounded push drops the
    /// oldest, so that the push compares `end` with one field.
    limit: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue::bounded(usize::MAX)
    }
}

impl<T> Queue<T> {
    /// An empty queue whose [`Queue::push_bounded`] keeps at most `bound` items (at least 1).
    pub fn bounded(bound: usize) -> Self {
        Queue {
            slots: Vec::new(),
            head: 0,
            end: 0,
            owning: false,
            bound,
            limit: bound,
        }
    }

    /// Moves the front to `head`, and the bound's end with it.
    #[inline(always)]
    fn set_head(&mut self, head: usize) {
        self.head = head;
        self.limit = head.saturating_add(self.bound);
    }
}

/// Whether [`Queue::push_bounded`] had to drop the oldest item to stay within its bound.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Kept,
    DroppedOldest,
}

impl<T: Owns> Queue<T> {
    /// Queues `item`; with the queue's bound of items already queued the oldest goes.
    ///
    /// The oldest goes after the push, not before: nothing runs between the caller building
    /// `item` and its write into the slot, so the compiler builds it there in place instead of
    /// on the stack and copying it over (a 120-byte event: 16 instructions saved a push).
    #[inline(always)]
    pub fn push_bounded(&mut self, item: T) -> Pushed {
        self.push(item);
        if self.end > self.limit {
            self.drop_oldest();
            return Pushed::DroppedOldest;
        }
        Pushed::Kept
    }

    #[cold]
    fn drop_oldest(&mut self) {
        if let Some(oldest) = self.slots.get_mut(self.head) {
            *oldest = None;
        }
        self.set_head(self.head + 1);
        self.compact_spent();
    }

    /// Queues `item`, whatever is queued already.
    #[inline(always)]
    pub fn push(&mut self, item: T) {
        self.owning |= item.owns();
        match self.slots.get_mut(self.end) {
            // `None`, or a drained item that owns nothing: nothing to drop.
            Some(slot) => core::mem::forget(slot.replace(item)),
            None => self.grow(item),
        }
        self.end += 1;
    }

    /// Queues `item` in a new slot at the end.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, item: T) {
        self.slots.push(Some(item));
    }

    /// A driver that pops a few at a time never empties the queue: the spent front goes once
    /// it outnumbers the queued items (each item is moved at most once for that). Checked
    /// where the front moves (a pop, the bound's drop), so a push tests nothing for it.
    #[inline(always)]
    fn compact_spent(&mut self) {
        if self.head >= SPENT_BEFORE_COMPACTING && self.head >= self.end - self.head {
            self.compact();
        }
    }

    /// Moves the queued items to the front, and the spent slots behind them.
    #[cold]
    fn compact(&mut self) {
        if let Some(used) = self.slots.get_mut(..self.end) {
            used.rotate_left(self.head);
        }
        self.end -= self.head;
        self.set_head(0);
    }

    /// Moves the oldest item out.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<T> {
        if self.head >= self.end {
            return None;
        }
        let item = self.slots.get_mut(self.head)?.take();
        if self.head + 1 == self.end {
            self.set_head(0);
            self.end = 0;
        } else {
            self.set_head(self.head + 1);
            self.compact_spent();
        }
        item
    }

    /// Lends every queued item to `f`, oldest first, then forgets them all: drops them if
    /// any may own something, else leaves them for the next pushes to write over.
    #[inline]
    pub fn drain(&mut self, f: impl FnMut(&T)) {
        if self.owning {
            let queued = self.slots.get_mut(self.head..self.end).unwrap_or_default();
            queued.iter().flatten().for_each(f);
            queued.iter_mut().for_each(|slot| *slot = None);
            self.owning = false;
        } else {
            // By index, not over a sub-slice: for the few items of a drain, the index's one
            // bound (at most the slots held, so no check on each) costs less than the slice's
            // range check and the iterator's trip count.
            let mut f = f;
            let end = self.end.min(self.slots.len());
            let mut i = self.head;
            while i < end {
                if let Some(item) = &self.slots[i] {
                    f(item);
                }
                i += 1;
            }
        }
        self.set_head(0);
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::{Event, EventKind};
    use crate::time::Instant;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    impl Owns for u32 {}
    impl Owns for std::sync::Arc<str> {}

    fn event(n: u32) -> Event {
        Event {
            at: Instant::from_nanos(u64::from(n)),
            kind: EventKind::TokenFetchFailed { calls_failed: n },
        }
    }

    fn numbers(q: &mut Queue<Event>) -> Vec<u64> {
        let mut out = Vec::new();
        q.drain(|e| out.push(e.at.as_nanos()));
        out
    }

    #[test]
    fn pops_and_drains_oldest_first_and_keeps_only_the_newest_at_the_bound() {
        let mut q = Queue::bounded(4);
        let dropped = (0..10)
            .map(|n| q.push_bounded(event(n)))
            .filter(|p| *p == Pushed::DroppedOldest)
            .count();
        assert_eq!(dropped, 6);
        assert_eq!(q.pop().map(|e| e.at.as_nanos()), Some(6));
        assert_eq!(numbers(&mut q), [7, 8, 9]);
        assert!(q.pop().is_none());
        // Past many bounds' worth of pushes the spent front is compacted away.
        for n in 0..1000 {
            q.push_bounded(event(n));
            assert!(q.end <= 4 + 1 + SPENT_BEFORE_COMPACTING);
        }
        assert_eq!(numbers(&mut q), [996, 997, 998, 999]);
        // So it is for a driver that pops one event per push and never empties the queue.
        q.push_bounded(event(0));
        for n in 1..1000 {
            q.push_bounded(event(n));
            assert_eq!(q.pop().map(|e| e.at.as_nanos()), Some(u64::from(n) - 1));
            assert!(q.end <= 2 + SPENT_BEFORE_COMPACTING);
        }
        assert_eq!(numbers(&mut q), [999]);
        q.push_bounded(event(1));
        assert_eq!(q.pop().map(|e| e.at.as_nanos()), Some(1));
        assert!(q.pop().is_none() && q.end == 0);
        // The slots stay for the next pushes; the `Vec` never grew past the most in use.
        assert!(q.slots.len() <= 4 + 1 + SPENT_BEFORE_COMPACTING);
        assert!(q.slots.iter().flatten().all(|e| !e.owns()));
    }

    #[test]
    fn unbounded_pushes_keep_every_item_in_order_and_compact_the_spent_front() {
        let mut q = Queue::default();
        let mut next_out = 0u32;
        // Two pushed for every one popped: nothing is ever dropped, and the popped front
        // does not pile up.
        for n in 0..1000u32 {
            q.push(n);
            if n % 2 == 1 {
                assert_eq!(q.pop(), Some(next_out));
                next_out += 1;
            }
            assert!(q.end <= 2 * (q.end - q.head) + SPENT_BEFORE_COMPACTING);
        }
        let mut rest = Vec::new();
        q.drain(|n| rest.push(*n));
        assert_eq!(rest, (next_out..1000).collect::<Vec<_>>());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn an_emptied_queue_drops_its_items_and_writes_the_next_into_the_same_slots() {
        let host: std::sync::Arc<str> = "https://a.test".into();
        let mut q = Queue::default();
        for _ in 0..3 {
            q.push(std::sync::Arc::clone(&host));
        }
        let mut seen = 0;
        q.drain(|h| seen += usize::from(**h == *host));
        assert_eq!(seen, 3);
        // Forgotten means dropped, not kept alive in a spare slot.
        assert_eq!(std::sync::Arc::strong_count(&host), 1);
        q.push(std::sync::Arc::clone(&host));
        assert_eq!((q.slots.len(), q.end), (3, 1));
        assert_eq!(q.pop().as_deref(), Some(&*host));
        assert_eq!(std::sync::Arc::strong_count(&host), 1);
        assert!(q.pop().is_none());
    }

    #[test]
    fn items_that_own_nothing_are_written_over_and_those_that_do_are_dropped_at_their_drain() {
        let host: std::sync::Arc<str> = "https://a.test".into();
        let started = |n: u32| Event {
            at: Instant::from_nanos(u64::from(n)),
            kind: EventKind::CallStarted {
                call: crate::engine::call::CallId { slot: n, seq: n },
                host: std::sync::Arc::clone(&host),
                method: crate::classify::Method::Get,
            },
        };
        let mut q = Queue::default();
        for round in 0..4u32 {
            // Plain events only: drained, left in their slots, written over by the next round.
            for n in 0..3 {
                q.push_bounded(event(n));
            }
            assert_eq!(numbers(&mut q), [0, 1, 2]);
            assert_eq!(std::sync::Arc::strong_count(&host), 1);
            // One naming a host among them, in a different place each round: dropped at the
            // drain that hands it out, so the host's name is not kept alive in a spare slot.
            for n in 0..3 {
                q.push_bounded(if n == round % 3 { started(n) } else { event(n) });
            }
            assert_eq!(std::sync::Arc::strong_count(&host), 2);
            assert_eq!(numbers(&mut q), [0, 1, 2]);
            assert_eq!(std::sync::Arc::strong_count(&host), 1, "round {round}");
            assert!(q.slots.iter().all(Option::is_none));
        }
        // The bound's drop of the oldest and a pop release theirs at once.
        let mut q = Queue::bounded(2);
        for n in 0..3 {
            q.push_bounded(started(n));
        }
        assert_eq!(std::sync::Arc::strong_count(&host), 3);
        drop(q.pop());
        assert_eq!(std::sync::Arc::strong_count(&host), 2);
        drop(q);
        assert_eq!(std::sync::Arc::strong_count(&host), 1);
    }
}
