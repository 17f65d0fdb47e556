//! The browser's concurrency bulkhead: at most `max_in_flight` logical calls at once over the
//! client, and at most `max_in_flight_per_host` per host; the others wait, first come first
//! served, before the engine starts them (so their deadline starts when they do), as native's
//! semaphores do.
//!
//! Pure bookkeeping, no JavaScript: the driver parks a waiter for each [`Admit::Wait`] ticket and
//! wakes the tickets [`Bulkhead::release`] grants. Invariant after every call: no queued ticket
//! could be granted, so a newcomer that fits may go ahead of waiters that do not (they wait for
//! their own host).

use std::collections::{HashMap, VecDeque};

/// A waiter's place in the queue.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

/// The answer to "may this call start?".
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Admit {
    /// Yes: it holds a slot until [`Bulkhead::release`].
    Now,
    /// Not yet: it holds a slot once `release` hands back this ticket.
    Wait(Ticket),
}

/// The in-flight counts and the queue.
#[derive(Debug)]
pub struct Bulkhead {
    max: usize,
    per_host: Option<usize>,
    total: usize,
    hosts: HashMap<String, usize>,
    queue: VecDeque<(Ticket, String)>,
    next: u64,
}

impl Bulkhead {
    /// Limits: over the client, and per host (`None`: only the client-wide one). A limit of 0
    /// is read as 1: a client that can never call is a misconfiguration, not a bulkhead.
    pub fn new(max: usize, per_host: Option<usize>) -> Bulkhead {
        Bulkhead {
            max: max.max(1),
            per_host: per_host.map(|n| n.max(1)),
            total: 0,
            hosts: HashMap::new(),
            queue: VecDeque::new(),
            next: 0,
        }
    }

    fn fits(&self, host: &str) -> bool {
        self.total < self.max
            && self
                .per_host
                .map_or(true, |cap| self.hosts.get(host).copied().unwrap_or(0) < cap)
    }

    fn take(&mut self, host: &str) {
        self.total += 1;
        *self.hosts.entry(host.to_string()).or_default() += 1;
    }

    /// A call to `host` asks for a slot.
    pub fn admit(&mut self, host: &str) -> Admit {
        if self.fits(host) {
            self.take(host);
            return Admit::Now;
        }
        let ticket = Ticket(self.next);
        self.next += 1;
        self.queue.push_back((ticket, host.to_string()));
        Admit::Wait(ticket)
    }

    /// A call to `host` gave its slot back; returns the waiting tickets that now hold one, in
    /// queue order, with their hosts.
    pub fn release(&mut self, host: &str) -> Vec<(Ticket, String)> {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.hosts.get_mut(host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.hosts.remove(host);
            }
        }
        let mut granted = Vec::new();
        let mut i = 0;
        while i < self.queue.len() && self.total < self.max {
            if self.fits(&self.queue[i].1) {
                if let Some((ticket, host)) = self.queue.remove(i) {
                    self.take(&host);
                    granted.push((ticket, host));
                }
            } else {
                i += 1;
            }
        }
        granted
    }

    /// A waiter gave up (its call was dropped or cancelled): `true` if it was still queued.
    pub fn withdraw(&mut self, ticket: Ticket) -> bool {
        let before = self.queue.len();
        self.queue.retain(|(t, _)| *t != ticket);
        self.queue.len() != before
    }

    /// Calls holding a slot.
    pub fn in_flight(&self) -> usize {
        self.total
    }

    /// Calls waiting for one.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // On wasm32 the same tests run under wasm-bindgen-test-runner (in Node).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn granted(b: &mut Bulkhead, host: &str) -> Vec<Ticket> {
        b.release(host).into_iter().map(|(t, _)| t).collect()
    }

    fn ticket(a: Admit) -> Ticket {
        match a {
            Admit::Wait(t) => t,
            Admit::Now => panic!("expected to wait"),
        }
    }

    #[test]
    fn the_client_wide_limit_queues_in_order() {
        let mut b = Bulkhead::new(2, None);
        assert_eq!(b.admit("a"), Admit::Now);
        assert_eq!(b.admit("b"), Admit::Now);
        let third = ticket(b.admit("a"));
        let fourth = ticket(b.admit("c"));
        assert_eq!((b.in_flight(), b.queued()), (2, 2));
        assert_eq!(granted(&mut b, "b"), [third]);
        assert_eq!(granted(&mut b, "a"), [fourth]);
        assert_eq!(granted(&mut b, "a"), []);
        assert_eq!(granted(&mut b, "c"), []);
        assert_eq!((b.in_flight(), b.queued()), (0, 0));
    }

    #[test]
    fn a_full_host_does_not_block_other_hosts() {
        let mut b = Bulkhead::new(10, Some(1));
        assert_eq!(b.admit("a"), Admit::Now);
        let second_a = ticket(b.admit("a"));
        assert_eq!(b.admit("b"), Admit::Now, "host b has room");
        assert_eq!(granted(&mut b, "b"), [], "a's waiter still waits for a");
        assert_eq!(granted(&mut b, "a"), [second_a]);
        assert_eq!(b.in_flight(), 1);
    }

    #[test]
    fn a_withdrawn_waiter_is_never_granted() {
        let mut b = Bulkhead::new(1, None);
        assert_eq!(b.admit("a"), Admit::Now);
        let gone = ticket(b.admit("a"));
        let next = ticket(b.admit("a"));
        assert!(b.withdraw(gone));
        assert!(!b.withdraw(gone));
        assert_eq!(granted(&mut b, "a"), [next]);
    }

    #[test]
    fn a_zero_limit_still_lets_one_call_through() {
        let mut b = Bulkhead::new(0, Some(0));
        assert_eq!(b.admit("a"), Admit::Now);
        assert!(matches!(b.admit("a"), Admit::Wait(_)));
    }
}
