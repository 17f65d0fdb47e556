//! The attempts of one call that are out at once: one, or with hedging up to 1 + `MAX_HEDGES`.
//!
//! A fixed array, not a `Vec`: a call's attempts in flight are few and bounded. Only the first
//! is inline in the call's state; the hedges' slots are out of line and reused from call to
//! call, which keeps the state small and a decision allocation-free.

use crate::breaker::Admit;
use crate::config::MAX_HEDGES;
use crate::time::Instant;

/// The most attempts of one call in flight at once.
pub(crate) const MAX_FLIGHTS: usize = 1 + MAX_HEDGES as usize;

/// One attempt in flight.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Flight {
    /// Its number (1 for the call's first).
    pub attempt: u32,
    /// How the breaker let it through (a half-open probe is given back if it is lost).
    pub admit: Admit,
    /// The token generation it carries.
    pub token: Option<u32>,
    /// When the engine times it out itself.
    pub expires: Option<Instant>,
    /// When it was sent (its latency is measured from here).
    pub sent: Instant,
    /// Attempts in flight to its host once it was sent (itself included), for the adaptive
    /// concurrency limit.
    pub in_flight: u32,
}

impl Flight {
    /// Its send, as the adaptive concurrency limit samples it.
    pub fn sent_with(&self) -> crate::engine::adaptive::Sent {
        crate::engine::adaptive::Sent {
            at: self.sent,
            in_flight: self.in_flight,
        }
    }
}

/// One call's hedges' slots.
type HedgeSet = [Option<Flight>; MAX_FLIGHTS - 1];

/// The hedges' slots of every hedged call, out of line: most calls are never hedged, so a
/// call's state keeps one attempt inline and, on its first hedge, the number of a set of these
/// (a spare one, or a new one), given back emptied when the call ends. A number, not a box:
/// a call's state then owns nothing, and freeing its slot is a store (see `call.rs`).
#[derive(Debug, Default)]
pub(crate) struct HedgeSlots {
    sets: Vec<HedgeSet>,
    /// Sets no call holds, all empty.
    spare: Vec<u32>,
}

impl HedgeSlots {
    fn set(&self, n: u32) -> &[Option<Flight>] {
        self.sets.get(n as usize).map_or(&[], |s| &s[..])
    }

    fn set_mut(&mut self, n: u32) -> &mut [Option<Flight>] {
        self.sets
            .get_mut(n as usize)
            .map_or(&mut [], |s| &mut s[..])
    }

    /// A set for a call's first hedge: a spare one, else a new one.
    fn take(&mut self) -> u32 {
        self.spare.pop().unwrap_or_else(|| {
            self.sets.push(Default::default());
            (self.sets.len() - 1) as u32
        })
    }

    /// Sets made so far (for tests).
    #[cfg(test)]
    pub fn made(&self) -> usize {
        self.sets.len()
    }
}

/// The attempts of a call in flight, oldest first: the first slot inline, the hedges' slots
/// (a set of [`HedgeSlots`]) taken on the first hedge and given back when the call ends
/// ([`Flights::give_back`]), so a hedged call allocates nothing once the engine has spares.
/// Every method that may look past the first slot takes the engine's [`HedgeSlots`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flights {
    first: Option<Flight>,
    more: Option<u32>,
}

impl Flights {
    /// Adds an attempt, in the first free slot (the hedges' slots taken from `hedges` when
    /// the first is taken); `false` (and nothing added) when all slots are taken, which the
    /// engine's bound on hedges rules out.
    pub fn push(&mut self, flight: Flight, hedges: &mut HedgeSlots) -> bool {
        if self.first.is_none() {
            self.first = Some(flight);
            return true;
        }
        let n = *self.more.get_or_insert_with(|| hedges.take());
        match hedges.set_mut(n).iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(flight);
                true
            }
            None => false,
        }
    }

    /// The hedges' slots back to `hedges` (emptied), for the next hedged call.
    #[inline]
    pub fn give_back(&mut self, hedges: &mut HedgeSlots) {
        if let Some(n) = self.more.take() {
            hedges.set_mut(n).fill(None);
            hedges.spare.push(n);
        }
    }

    /// Every slot, the first one first.
    fn slots<'a>(&'a self, hedges: &'a HedgeSlots) -> impl Iterator<Item = &'a Option<Flight>> {
        let more = self.more.map_or(&[][..], |n| hedges.set(n));
        core::iter::once(&self.first).chain(more)
    }

    /// Whether no hedge's slot holds an attempt.
    #[inline]
    fn no_more(&self, hedges: &HedgeSlots) -> bool {
        self.more
            .is_none_or(|n| hedges.set(n).iter().all(Option::is_none))
    }

    /// Takes attempt `attempt` out, if it is in flight.
    pub fn take(&mut self, attempt: u32, hedges: &mut HedgeSlots) -> Option<Flight> {
        let holds = |s: &Option<Flight>| s.is_some_and(|f| f.attempt == attempt);
        if holds(&self.first) {
            return self.first.take();
        }
        let n = self.more?;
        hedges.set_mut(n).iter_mut().find(|s| holds(s))?.take()
    }

    /// Takes attempt `attempt` out (any attempt with `None`) if it is the only one in flight
    /// and the call never took the hedges' slots (a call that did ends through the general
    /// path, which gives them back).
    #[inline]
    pub fn take_only(&mut self, attempt: Option<u32>) -> Option<Flight> {
        match &self.first {
            Some(f) if attempt.is_none_or(|a| f.attempt == a) && self.more.is_none() => {
                self.first.take()
            }
            _ => None,
        }
    }

    /// The oldest attempt in flight (the lowest number). Usually the only one, in the first
    /// slot: that case is one look at the first slot and one at the hedges', not a search for
    /// a minimum.
    #[inline]
    pub fn oldest(&self, hedges: &HedgeSlots) -> Option<u32> {
        match &self.first {
            Some(f) if self.no_more(hedges) => Some(f.attempt),
            _ => self.iter(hedges).map(|f| f.attempt).min(),
        }
    }

    /// Takes any one attempt out (to abort them all).
    pub fn pop(&mut self, hedges: &mut HedgeSlots) -> Option<Flight> {
        if let Some(f) = self.first.take() {
            return Some(f);
        }
        let n = self.more?;
        hedges.set_mut(n).iter_mut().find_map(Option::take)
    }

    /// Attempts in flight.
    pub fn len(&self, hedges: &HedgeSlots) -> usize {
        self.iter(hedges).count()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self, hedges: &HedgeSlots) -> bool {
        self.first.is_none() && self.no_more(hedges)
    }

    /// The attempts in flight.
    pub fn iter<'a>(&'a self, hedges: &'a HedgeSlots) -> impl Iterator<Item = &'a Flight> {
        self.slots(hedges).flatten()
    }

    /// The earliest attempt deadline.
    #[inline]
    pub fn next_expiry(&self, hedges: &HedgeSlots) -> Option<Instant> {
        match self.more {
            None => self.first.and_then(|f| f.expires),
            Some(_) => self.iter(hedges).filter_map(|f| f.expires).min(),
        }
    }

    /// The attempt whose deadline passed first by `now`, if any.
    pub fn expired(&self, now: Instant, hedges: &HedgeSlots) -> Option<u32> {
        if self.more.is_none() {
            return self
                .first
                .filter(|f| f.expires.is_some_and(|e| e <= now))
                .map(|f| f.attempt);
        }
        self.iter(hedges)
            .filter(|f| f.expires.is_some_and(|e| e <= now))
            .min_by_key(|f| f.expires)
            .map(|f| f.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn flight(attempt: u32, expires_ms: Option<u64>) -> Flight {
        Flight {
            attempt,
            admit: Admit::Normal,
            token: None,
            expires: expires_ms.map(|ms| Instant::ZERO + Duration::from_millis(ms)),
            sent: Instant::ZERO,
            in_flight: 1,
        }
    }

    #[test]
    fn flights_are_bounded_and_found_by_attempt() {
        let mut f = Flights::default();
        let mut spare = HedgeSlots::default();
        for a in 1..=MAX_FLIGHTS as u32 {
            assert!(f.push(flight(a, Some(100 * u64::from(a))), &mut spare));
        }
        assert!(!f.push(flight(9, None), &mut spare), "full");
        assert_eq!(f.len(&spare), MAX_FLIGHTS);
        assert_eq!(f.next_expiry(&spare), Some(Instant::from_millis(100)));
        assert_eq!(f.expired(Instant::from_millis(250), &spare), Some(1));
        assert_eq!(f.take_only(Some(1)), None, "not the only one");
        assert_eq!(f.take_only(None), None, "not the only one");
        assert_eq!(f.take(1, &mut spare).map(|x| x.attempt), Some(1));
        assert_eq!(f.len(&spare), MAX_FLIGHTS - 1);
        assert_eq!(f.take(1, &mut spare), None, "taken once");
        assert_eq!(f.expired(Instant::from_millis(250), &spare), Some(2));
        while f.len(&spare) > 1 {
            f.pop(&mut spare);
        }
        let last = f.iter(&spare).next().map(|x| x.attempt).unwrap_or(0);
        if f.first.is_some() {
            assert_eq!(f.take_only(Some(last + 1)), None, "another attempt");
            assert_eq!(f.take_only(Some(last)).map(|x| x.attempt), Some(last));
        }
        while f.pop(&mut spare).is_some() {}
        assert!(f.is_empty(&spare));
        assert!(f.push(flight(7, None), &mut spare));
        assert_eq!(
            f.take_only(Some(7)),
            None,
            "the hedges' slots are still held"
        );
        f.give_back(&mut spare);
        assert_eq!(f.oldest(&spare), Some(7));
        assert_eq!(
            f.take_only(Some(7)).map(|x| x.attempt),
            Some(7),
            "alone in the first slot"
        );
        assert!(f.push(flight(8, None), &mut spare));
        assert_eq!(f.take_only(None).map(|x| x.attempt), Some(8), "any, alone");
        assert_eq!(f.next_expiry(&spare), None);
    }

    #[test]
    fn the_oldest_is_the_lowest_attempt_in_any_slot() {
        let mut f = Flights::default();
        let mut spare = HedgeSlots::default();
        assert_eq!(f.oldest(&spare), None);
        assert!(f.push(flight(1, None), &mut spare));
        assert_eq!(f.oldest(&spare), Some(1), "alone in the first slot");
        assert!(f.push(flight(2, None), &mut spare) && f.push(flight(3, None), &mut spare));
        assert_eq!(f.oldest(&spare), Some(1));
        // The first slot freed and taken again by a later attempt: it is not the oldest.
        assert_eq!(f.take(1, &mut spare).map(|x| x.attempt), Some(1));
        assert!(f.push(flight(4, None), &mut spare));
        assert_eq!(f.oldest(&spare), Some(2));
        // Alone, but not in the first slot.
        assert!(f.take(4, &mut spare).is_some() && f.take(2, &mut spare).is_some());
        assert_eq!(f.oldest(&spare), Some(3));
    }

    #[test]
    fn the_hedges_slots_are_given_back_empty_and_reused() {
        let mut spare = HedgeSlots::default();
        let mut f = Flights::default();
        assert!(f.push(flight(1, None), &mut spare));
        assert!(f.more.is_none(), "one attempt takes no hedge slots");
        f.give_back(&mut spare);
        assert!(spare.spare.is_empty(), "nothing to give back");
        assert!(f.push(flight(2, None), &mut spare) && f.push(flight(3, None), &mut spare));
        let made = f.more;
        f.give_back(&mut spare);
        assert_eq!(f.iter(&spare).map(|x| x.attempt).collect::<Vec<_>>(), [1]);
        assert_eq!(spare.spare.len(), 1);
        assert!(
            spare.sets[0].iter().all(Option::is_none),
            "given back empty"
        );
        let mut g = Flights::default();
        assert!(g.push(flight(4, None), &mut spare) && g.push(flight(5, None), &mut spare));
        assert!(spare.spare.is_empty(), "taken from the spares");
        assert_eq!((g.more, spare.made()), (made, 1), "the same slots");
        assert_eq!(g.oldest(&spare), Some(4));
        assert_eq!(g.take_only(None), None, "not the only one");
    }
}
