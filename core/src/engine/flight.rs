//! The attempts of one call that are out at once: one, or with hedging up to 1 + `MAX_HEDGES`.
//!
//! A fixed array, not a `Vec`: a call's attempts in flight are few and bounded, and keeping
//! them inline keeps a decision allocation-free.

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

/// The attempts of a call in flight, oldest first.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flights {
    slots: [Option<Flight>; MAX_FLIGHTS],
}

impl Flights {
    /// Adds an attempt; `false` (and nothing added) when all slots are taken, which the
    /// engine's bound on hedges rules out.
    pub fn push(&mut self, flight: Flight) -> bool {
        match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(flight);
                true
            }
            None => false,
        }
    }

    /// Takes attempt `attempt` out, if it is in flight.
    pub fn take(&mut self, attempt: u32) -> Option<Flight> {
        self.slots
            .iter_mut()
            .find(|s| s.is_some_and(|f| f.attempt == attempt))
            .and_then(Option::take)
    }

    /// Takes attempt `attempt` out (any attempt with `None`) if it is the only one in flight.
    #[inline]
    pub fn take_only(&mut self, attempt: Option<u32>) -> Option<Flight> {
        let [first, rest @ ..] = &mut self.slots;
        match first {
            Some(f)
                if attempt.is_none_or(|a| f.attempt == a) && rest.iter().all(Option::is_none) =>
            {
                first.take()
            }
            _ => None,
        }
    }

    /// The oldest attempt in flight (the lowest number). Usually the only one, in the first
    /// slot: that case is one look at each slot, not a search for a minimum.
    #[inline]
    pub fn oldest(&self) -> Option<u32> {
        match &self.slots {
            [Some(f), rest @ ..] if rest.iter().all(Option::is_none) => Some(f.attempt),
            _ => self.iter().map(|f| f.attempt).min(),
        }
    }

    /// Takes any one attempt out (to abort them all).
    pub fn pop(&mut self) -> Option<Flight> {
        self.slots.iter_mut().find_map(Option::take)
    }

    /// Attempts in flight.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The attempts in flight.
    pub fn iter(&self) -> impl Iterator<Item = &Flight> {
        self.slots.iter().flatten()
    }

    /// The earliest attempt deadline.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.iter().filter_map(|f| f.expires).min()
    }

    /// The attempt whose deadline passed first by `now`, if any.
    pub fn expired(&self, now: Instant) -> Option<u32> {
        self.iter()
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
        for a in 1..=MAX_FLIGHTS as u32 {
            assert!(f.push(flight(a, Some(100 * u64::from(a)))));
        }
        assert!(!f.push(flight(9, None)), "full");
        assert_eq!(f.len(), MAX_FLIGHTS);
        assert_eq!(f.next_expiry(), Some(Instant::from_millis(100)));
        assert_eq!(f.expired(Instant::from_millis(250)), Some(1));
        assert_eq!(f.take_only(Some(1)), None, "not the only one");
        assert_eq!(f.take_only(None), None, "not the only one");
        assert_eq!(f.take(1).map(|x| x.attempt), Some(1));
        assert_eq!(f.len(), MAX_FLIGHTS - 1);
        assert_eq!(f.take(1), None, "taken once");
        assert_eq!(f.expired(Instant::from_millis(250)), Some(2));
        while f.len() > 1 {
            f.pop();
        }
        let last = f.iter().next().map(|x| x.attempt).unwrap_or(0);
        if f.slots[0].is_some() {
            assert_eq!(f.take_only(Some(last + 1)), None, "another attempt");
            assert_eq!(f.take_only(Some(last)).map(|x| x.attempt), Some(last));
        }
        while f.pop().is_some() {}
        assert!(f.is_empty());
        assert!(f.push(flight(7, None)));
        assert_eq!(
            f.take_only(Some(7)).map(|x| x.attempt),
            Some(7),
            "alone in the first slot"
        );
        assert!(f.push(flight(8, None)));
        assert_eq!(f.take_only(None).map(|x| x.attempt), Some(8), "any, alone");
        assert_eq!(f.next_expiry(), None);
    }

    #[test]
    fn the_oldest_is_the_lowest_attempt_in_any_slot() {
        let mut f = Flights::default();
        assert_eq!(f.oldest(), None);
        assert!(f.push(flight(1, None)));
        assert_eq!(f.oldest(), Some(1), "alone in the first slot");
        assert!(f.push(flight(2, None)) && f.push(flight(3, None)));
        assert_eq!(f.oldest(), Some(1));
        // The first slot freed and taken again by a later attempt: it is not the oldest.
        assert_eq!(f.take(1).map(|x| x.attempt), Some(1));
        assert!(f.push(flight(4, None)));
        assert_eq!(f.oldest(), Some(2));
        // Alone, but not in the first slot.
        assert!(f.take(4).is_some() && f.take(2).is_some());
        assert_eq!(f.oldest(), Some(3));
    }
}
