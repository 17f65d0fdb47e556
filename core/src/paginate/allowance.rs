//! How much failure a walk absorbs: one allowance of retries and one deadline for the whole
//! walk, instead of each page's own attempt count.
//!
//! A walk is one logical operation. Ending it when one page fails `retry.max_attempts` times
//! in a row makes a long walk through a flaky server fail almost surely (at 35 % failures a
//! streak of four comes every ~70 pages), and restarting it from the first page repeats
//! everything. So each page call is given what the walk has left: at most
//! `1 + retries left` attempts (capped at 100, the engine's own bound) and the time left before
//! the walk's deadline. Every attempt after a page's first is charged to the allowance, and
//! every page that arrives earns `earned_per_page` retries back, up to `retries`: like the
//! engine's retry budget (gRPC A6, Finagle), the allowance lets a walk ride out streaks of
//! any length a mostly healthy server produces, and ends a walk through a dead one after
//! `retries` failed attempts. The host's own retry budget and breaker still apply to every
//! attempt, so a walk cannot multiply load beyond what a single caller may.
//!
//! ```
//! use core::time::Duration;
//! use resile_core::paginate::{Allowance, WalkPolicy};
//! use resile_core::Instant;
//!
//! let policy = WalkPolicy { retries: 3, deadline_ms: Some(1_000), ..WalkPolicy::default() };
//! let mut a = Allowance::new(policy);
//! let t0 = Instant::ZERO;
//! assert_eq!(a.limits(t0), Some((4, Some(Duration::from_secs(1)))));
//! a.page_arrived(3); // two retries spent, one earned back
//! assert_eq!(a.retries_left(), 2);
//! assert_eq!(a.limits(t0 + Duration::from_millis(400)), Some((3, Some(Duration::from_millis(600)))));
//! assert_eq!(a.limits(t0 + Duration::from_secs(1)), None, "the walk's deadline has passed");
//! ```

use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Instant;

/// The most attempts one call may make (the engine's bound on `retry.max_attempts`).
const MAX_ATTEMPTS: u32 = 100;

/// A walk's shared retry allowance and deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalkPolicy {
    /// Retries (attempts after a page's first) the walk may spend, over all its pages; also the
    /// most it can save up. Default 10.
    pub retries: u32,
    /// Retries each page that arrives earns back. Default 1: a walk survives as long as pages
    /// need fewer than two attempts on average, and a run of failures up to `retries` long.
    pub earned_per_page: u32,
    /// The whole walk's deadline, from its first page. Each page call gets the time left as
    /// its own deadline. `None` (the default): no walk deadline, and each page keeps the
    /// configured per-call deadline.
    pub deadline_ms: Option<u64>,
    /// The longest the walk waits, in all, for the host of one page while it cannot be called
    /// (an open breaker, a server's hold) before fetching the page again; a longer wait ends
    /// the walk with a resume point. Default 60 s, the default cap on `Retry-After`: under the
    /// default breaker a dead host ends a walk after its breaker opened three times.
    pub max_wait_ms: u64,
}

impl Default for WalkPolicy {
    fn default() -> Self {
        WalkPolicy {
            retries: 10,
            earned_per_page: 1,
            deadline_ms: None,
            max_wait_ms: 60_000,
        }
    }
}

/// What a walk has left of its [`WalkPolicy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowance {
    policy: WalkPolicy,
    left: u32,
    started: Option<Instant>,
}

impl Allowance {
    /// A full allowance; the deadline starts with the first [`Allowance::limits`].
    pub fn new(policy: WalkPolicy) -> Self {
        Allowance {
            left: policy.retries,
            policy,
            started: None,
        }
    }

    /// Retries left.
    pub fn retries_left(&self) -> u32 {
        self.left
    }

    /// When the walk's deadline passes (`None`: no deadline, or the walk has not started).
    pub fn deadline(&self) -> Option<Instant> {
        let d = Duration::from_millis(self.policy.deadline_ms?);
        Some(self.started?.saturating_add(d))
    }

    /// The next page call's attempts and deadline at `now`; `None` when the walk's deadline
    /// has passed.
    pub fn limits(&mut self, now: Instant) -> Option<(u32, Option<Duration>)> {
        self.started.get_or_insert(now);
        let attempts = self.left.saturating_add(1).min(MAX_ATTEMPTS);
        match self.deadline() {
            None => Some((attempts, None)),
            Some(at) if now < at => Some((attempts, Some(at.saturating_duration_since(now)))),
            Some(_) => None,
        }
    }

    /// A page arrived after `attempts` attempts.
    pub fn page_arrived(&mut self, attempts: u32) {
        self.charge(attempts);
        self.left = self
            .left
            .saturating_add(self.policy.earned_per_page)
            .min(self.policy.retries);
    }

    /// A page call failed after `attempts` attempts.
    pub fn page_failed(&mut self, attempts: u32) {
        self.charge(attempts);
    }

    /// Takes one retry for fetching a failed page again, if one is left and `at` is before the
    /// walk's deadline.
    pub fn take_refetch(&mut self, at: Instant) -> bool {
        let in_time = self.deadline().is_none_or(|deadline| at < deadline);
        if self.left == 0 || !in_time {
            return false;
        }
        self.left -= 1;
        true
    }

    fn charge(&mut self, attempts: u32) {
        self.left = self.left.saturating_sub(attempts.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn policy(retries: u32, earned: u32, deadline_ms: Option<u64>) -> WalkPolicy {
        WalkPolicy {
            retries,
            earned_per_page: earned,
            deadline_ms,
            ..WalkPolicy::default()
        }
    }

    #[test]
    fn attempts_follow_what_is_left_and_pages_earn_it_back() {
        let t = Instant::ZERO;
        let mut a = Allowance::new(policy(10, 1, None));
        assert_eq!(a.limits(t), Some((11, None)));
        // (attempts the page took, retries left after it)
        let table = [(1, 10), (4, 8), (4, 6), (1, 7), (2, 7), (11, 1), (1, 2)];
        for (attempts, left) in table {
            a.page_arrived(attempts);
            assert_eq!(
                a.retries_left(),
                left,
                "after a page of {attempts} attempts"
            );
            assert_eq!(a.limits(t), Some((left + 1, None)));
        }
        a.page_failed(2);
        assert_eq!(a.retries_left(), 1);
        assert!(a.take_refetch(t));
        assert_eq!(a.retries_left(), 0);
        assert!(!a.take_refetch(t), "nothing left");
        assert_eq!(
            a.limits(t),
            Some((1, None)),
            "a page still gets its own attempt"
        );
    }

    #[test]
    fn attempts_are_capped_at_the_engines_bound() {
        let mut a = Allowance::new(policy(u32::MAX, 1, None));
        assert_eq!(a.limits(Instant::ZERO), Some((MAX_ATTEMPTS, None)));
    }

    #[test]
    fn the_deadline_is_the_walks_and_starts_with_its_first_page() {
        let t0 = Instant::from_millis(5_000);
        let mut a = Allowance::new(policy(2, 1, Some(10_000)));
        assert_eq!(a.deadline(), None, "not started");
        assert_eq!(a.limits(t0), Some((3, Some(Duration::from_secs(10)))));
        let later = t0 + Duration::from_millis(9_999);
        assert_eq!(a.limits(later), Some((3, Some(Duration::from_millis(1)))));
        assert_eq!(a.limits(t0 + Duration::from_secs(10)), None);
        assert!(a.take_refetch(later));
        assert!(
            !a.take_refetch(t0 + Duration::from_secs(11)),
            "a refetch after the deadline is refused"
        );
        assert_eq!(a.retries_left(), 1, "a refused refetch costs nothing");
    }
}
