//! The events not yet handed out, oldest first, bounded by `max_queued_events`.
//!
//! A `Vec` read from a cursor rather than a ring: [`EventQueue::drain`] lends the events in
//! one contiguous pass and empties the queue with one `clear`, and [`EventQueue::pop`] moves
//! one out from the cursor. When the bound is reached the oldest event is dropped; the spent
//! front is compacted away once it is longer than what is still queued (and 64 slots), so the
//! queue never holds more than twice what is queued, plus 64.

use crate::engine::event::Event;

/// Popped slots kept at the front before they are compacted away.
const SPENT_BEFORE_COMPACTING: usize = 64;

/// Events, oldest first: `slots[head..]` are queued (each `Some` until popped).
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    slots: Vec<Option<Event>>,
    head: usize,
}

/// Whether [`EventQueue::push`] had to drop the oldest event to stay within its bound.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Kept,
    DroppedOldest,
}

impl EventQueue {
    /// Queues `event`; with `bound` events already queued the oldest goes first.
    #[inline(always)]
    pub fn push(&mut self, event: Event, bound: usize) -> Pushed {
        let mut pushed = Pushed::Kept;
        if self.slots.len() - self.head >= bound {
            self.slots[self.head] = None;
            self.head += 1;
            pushed = Pushed::DroppedOldest;
        }
        // A driver that pops a few at a time never empties the queue: the spent front goes
        // once it outnumbers the queued events (each event is moved at most once for that).
        if self.head >= SPENT_BEFORE_COMPACTING && self.head >= self.slots.len() - self.head {
            self.slots.drain(..self.head);
            self.head = 0;
        }
        self.slots.push(Some(event));
        pushed
    }

    /// Moves the oldest event out.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        let event = self.slots.get_mut(self.head)?.take();
        self.head += 1;
        if self.head == self.slots.len() {
            self.clear();
        }
        event
    }

    /// Lends every queued event to `f`, oldest first, then forgets them all.
    #[inline]
    pub fn drain(&mut self, f: impl FnMut(&Event)) {
        self.slots[self.head..].iter().flatten().for_each(f);
        self.clear();
    }

    #[inline]
    fn clear(&mut self) {
        self.slots.clear();
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::EventKind;
    use crate::time::Instant;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn event(n: u32) -> Event {
        Event {
            at: Instant::from_nanos(u64::from(n)),
            kind: EventKind::TokenFetchFailed { calls_failed: n },
        }
    }

    fn numbers(q: &mut EventQueue) -> Vec<u64> {
        let mut out = Vec::new();
        q.drain(|e| out.push(e.at.as_nanos()));
        out
    }

    #[test]
    fn pops_and_drains_oldest_first_and_keeps_only_the_newest_at_the_bound() {
        let mut q = EventQueue::default();
        let dropped = (0..10)
            .map(|n| q.push(event(n), 4))
            .filter(|p| *p == Pushed::DroppedOldest)
            .count();
        assert_eq!(dropped, 6);
        assert_eq!(q.pop().map(|e| e.at.as_nanos()), Some(6));
        assert_eq!(numbers(&mut q), [7, 8, 9]);
        assert!(q.pop().is_none());
        // Past many bounds' worth of pushes the spent front is compacted away.
        for n in 0..1000 {
            q.push(event(n), 4);
            assert!(q.slots.len() <= 4 + 1 + SPENT_BEFORE_COMPACTING);
        }
        assert_eq!(numbers(&mut q), [996, 997, 998, 999]);
        // So it is for a driver that pops one event per push and never empties the queue.
        q.push(event(0), 4);
        for n in 1..1000 {
            q.push(event(n), 4);
            assert_eq!(q.pop().map(|e| e.at.as_nanos()), Some(u64::from(n) - 1));
            assert!(q.slots.len() <= 2 + SPENT_BEFORE_COMPACTING);
        }
        assert_eq!(numbers(&mut q), [999]);
        q.push(event(1), 4);
        assert_eq!(q.pop().map(|e| e.at.as_nanos()), Some(1));
        assert!(q.pop().is_none() && q.slots.is_empty());
    }
}
