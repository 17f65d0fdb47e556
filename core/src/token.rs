//! The access-token lifecycle, with single-flight fetching.
//!
//! ```text
//!  Missing ──fetch──▶ Fetching ──ok──▶ Valid(gen, expires_at) ──(now ≥ expires_at − skew)──▶ refresh early
//!     ▲                  │ error                 │ 401 on this generation (once)
//!     └──────────────────┘                       └──▶ invalidated → Fetching
//! ```
//!
//! Exactly one fetch is in flight at a time; calls that need a token meanwhile wait. A token
//! within `refresh_skew` of its expiry is still used while a fresh one is fetched in the
//! background. A 401 invalidates the generation that was sent, once; a call that gets a 401
//! with a freshly fetched token fails instead of looping.

use core::time::Duration;

use serde::Serialize;

use crate::time::Instant;
use crate::why::Why;

/// What a call that needs a token should do now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// Send with this generation. `refresh` asks for an early background fetch.
    Usable {
        /// The generation to attach.
        generation: u32,
        /// Whether to start an early refresh now.
        refresh: bool,
    },
    /// Wait for a fetch; the reason says why there is no usable token.
    Wait(Why),
}

/// The token's state, for snapshots.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenView {
    /// The current generation (0 before the first fetch).
    pub generation: u32,
    /// When it expires, if known.
    pub expires_at: Option<Instant>,
    /// Whether a fetch is in flight.
    pub fetching: bool,
    /// Whether the current generation is usable at all.
    pub valid: bool,
}

/// The token state machine.
#[derive(Clone, Debug, Default)]
pub struct Token {
    generation: u32,
    valid: bool,
    expires_at: Option<Instant>,
    fetching: bool,
}

impl Token {
    /// No token yet.
    pub fn new() -> Self {
        Token::default()
    }

    /// What a call should do at `now`.
    pub fn status(&self, skew: Duration, now: Instant) -> TokenStatus {
        if !self.valid {
            return TokenStatus::Wait(if self.generation == 0 {
                Why::TokenMissing
            } else {
                Why::TokenExpired
            });
        }
        match self.expires_at {
            Some(at) if now >= at => TokenStatus::Wait(Why::TokenExpired),
            Some(at) => TokenStatus::Usable {
                generation: self.generation,
                refresh: now >= at.saturating_sub(skew) && !self.fetching,
            },
            None => TokenStatus::Usable {
                generation: self.generation,
                refresh: false,
            },
        }
    }

    /// Starts a fetch unless one is in flight; `true` means the driver must fetch.
    pub fn begin_fetch(&mut self) -> bool {
        if self.fetching {
            false
        } else {
            self.fetching = true;
            true
        }
    }

    /// Whether a fetch is in flight.
    pub fn is_fetching(&self) -> bool {
        self.fetching
    }

    /// A fetch succeeded; returns the new generation.
    pub fn fetched(&mut self, expires_in: Option<Duration>, now: Instant) -> u32 {
        self.fetching = false;
        self.generation = self.generation.wrapping_add(1).max(1);
        self.valid = true;
        self.expires_at = expires_in.map(|d| now + d);
        self.generation
    }

    /// A fetch failed. The old token stays usable if it has not expired.
    pub fn fetch_failed(&mut self) {
        self.fetching = false;
    }

    /// The server rejected `generation`. Returns `true` when that was the current one and it is
    /// now invalidated (a fetch is needed); `false` when a newer token already exists.
    pub fn reject(&mut self, generation: u32) -> bool {
        if generation == self.generation && self.valid {
            self.valid = false;
            true
        } else {
            false
        }
    }

    /// A view for snapshots.
    pub fn view(&self) -> TokenView {
        TokenView {
            generation: self.generation,
            expires_at: self.expires_at,
            fetching: self.fetching,
            valid: self.valid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SKEW: Duration = Duration::from_secs(60);

    #[test]
    fn lifecycle() {
        let mut t = Token::new();
        let t0 = Instant::from_millis(0);
        assert_eq!(t.status(SKEW, t0), TokenStatus::Wait(Why::TokenMissing));
        assert!(t.begin_fetch());
        assert!(!t.begin_fetch(), "single flight");
        let g = t.fetched(Some(Duration::from_secs(300)), t0);
        assert_eq!(g, 1);
        assert_eq!(
            t.status(SKEW, Instant::from_millis(1000)),
            TokenStatus::Usable {
                generation: 1,
                refresh: false
            }
        );
        let early = Instant::from_millis(240_000);
        assert_eq!(
            t.status(SKEW, early),
            TokenStatus::Usable {
                generation: 1,
                refresh: true
            }
        );
        assert!(t.begin_fetch());
        assert_eq!(
            t.status(SKEW, early),
            TokenStatus::Usable {
                generation: 1,
                refresh: false
            },
            "already fetching"
        );
        assert_eq!(
            t.status(SKEW, Instant::from_millis(300_000)),
            TokenStatus::Wait(Why::TokenExpired)
        );
        assert_eq!(t.fetched(Some(Duration::from_secs(300)), early), 2);
    }

    #[test]
    fn rejection_invalidates_once_per_generation() {
        let mut t = Token::new();
        t.begin_fetch();
        t.fetched(None, Instant::ZERO);
        assert!(t.reject(1));
        assert!(
            !t.reject(1),
            "a second 401 on the same generation needs no second fetch"
        );
        assert!(t.begin_fetch());
        t.fetched(None, Instant::ZERO);
        assert!(
            !t.reject(1),
            "an old generation's 401 does not touch the new token"
        );
        assert_eq!(
            t.status(SKEW, Instant::ZERO),
            TokenStatus::Usable {
                generation: 2,
                refresh: false
            }
        );
    }
}
