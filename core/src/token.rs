//! The access-token lifecycle, with single-flight fetching.
//!
//! ```text
//!  Missing ──fetch──▶ Fetching ──ok──▶ Valid(gen, expires_at) ──(now ≥ expires_at − window)──▶ refresh early
//!     ▲                  │ error                 │ 401 on this generation (once)
//!     └──────────────────┘                       └──▶ invalidated → Fetching
//! ```
//!
//! Exactly one fetch is in flight at a time; calls that need a token meanwhile wait. A token
//! within its early-refresh window of its expiry is still used while a fresh one is fetched in
//! the background. That window is `refresh_skew`, but at most a fifth of the token's lifetime,
//! so a token shorter than the skew is not refreshed on every call. A 401 invalidates the
//! generation that was sent, once; a call that gets a 401 with a freshly fetched token fails
//! instead of looping.
//!
//! A fetch that fails, or returns a token living less than `fetch_backoff` (`expires_in: 0`),
//! is degenerate: the next fetch may not start until `fetch_backoff · 2ⁿ⁻¹` (capped) after it,
//! for the `n`-th degenerate fetch in a row, so a broken authorization server is asked a
//! handful of times a minute, not in a hot loop (and not once per call when calls come one
//! after another). [`Token::begin_fetch`] answers [`FetchStart::NotUntil`] meanwhile; the
//! engine keeps a timer for it. After a failed fetch, a call that needs a token while the next
//! fetch is put off is refused at once ([`TokenStatus::Refused`]) instead of waiting for it; an
//! unexpired token is still used meanwhile.
//!
//! [`TokenStore`] keeps the secret values of the last few generations for the drivers: an
//! attempt may still carry the previous generation when a new one arrives.

use core::time::Duration;

use serde::Serialize;

use crate::config::TokenConfig;
use crate::time::Instant;
use crate::why::Why;

/// The early-refresh window is at most this fraction of the token's lifetime (1/5).
const REFRESH_FRACTION_DIVISOR: u32 = 5;

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
    /// No usable token, and the last fetch failed: fail now (`token_fetch_failed`); no fetch
    /// may start before `until`.
    Refused {
        /// When the next fetch may start.
        until: Instant,
    },
}

/// Whether a fetch may start now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum FetchStart {
    /// Started: the driver must fetch a token.
    Start,
    /// A fetch is already in flight; its result will serve everyone.
    InFlight,
    /// The last fetches failed or returned tokens that expired at once: no fetch before this
    /// time.
    NotUntil(Instant),
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
#[derive(Clone, Debug)]
pub struct Token {
    generation: u32,
    valid: bool,
    expires_at: Option<Instant>,
    /// The early-refresh window of the current token: `min(skew, lifetime / 5)`.
    refresh_window: Duration,
    fetching: bool,
    /// Degenerate fetches (failed, or tokens that expired at once) in a row.
    degenerate: u32,
    /// No fetch may start before this (after degenerate fetches).
    next_fetch: Option<Instant>,
    /// The last fetch failed: calls without a usable token are refused until the next fetch.
    failed: bool,
    skew: Duration,
    backoff: Duration,
    max_backoff: Duration,
}

impl Token {
    /// No token yet, with the lifecycle settings of a validated config.
    pub fn new(config: &TokenConfig) -> Self {
        Token {
            generation: 0,
            valid: false,
            expires_at: None,
            refresh_window: Duration::ZERO,
            fetching: false,
            degenerate: 0,
            next_fetch: None,
            failed: false,
            skew: Duration::from_millis(config.refresh_skew_ms),
            backoff: Duration::from_millis(config.fetch_backoff_ms),
            max_backoff: Duration::from_millis(config.max_fetch_backoff_ms),
        }
    }

    /// What a call should do at `now`.
    pub fn status(&self, now: Instant) -> TokenStatus {
        let status = self.token_status(now);
        match (status, self.next_fetch) {
            // No usable token, and the last fetch failed: refused until the next may start.
            (TokenStatus::Wait(_), Some(until)) if self.failed && now < until => {
                TokenStatus::Refused { until }
            }
            _ => status,
        }
    }

    /// What the token itself allows at `now`: usable (and whether to refresh it early), or
    /// wait for a fetch.
    fn token_status(&self, now: Instant) -> TokenStatus {
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
                refresh: now >= at.saturating_sub(self.refresh_window) && !self.fetching,
            },
            None => TokenStatus::Usable {
                generation: self.generation,
                refresh: false,
            },
        }
    }

    /// Starts a fetch at `now` unless one is in flight or degenerate fetches put it off.
    pub fn begin_fetch(&mut self, now: Instant) -> FetchStart {
        if self.fetching {
            return FetchStart::InFlight;
        }
        if let Some(at) = self.next_fetch.filter(|at| now < *at) {
            return FetchStart::NotUntil(at);
        }
        self.fetching = true;
        FetchStart::Start
    }

    /// Whether a fetch is in flight.
    pub fn is_fetching(&self) -> bool {
        self.fetching
    }

    /// A fetch succeeded at `now` with a token living `expires_in`; returns the new generation.
    pub fn fetched(&mut self, expires_in: Option<Duration>, now: Instant) -> u32 {
        self.fetching = false;
        self.generation = self.generation.wrapping_add(1).max(1);
        self.valid = true;
        self.expires_at = expires_in.map(|d| now + d);
        let lifetime = expires_in.unwrap_or(Duration::MAX);
        self.refresh_window = self.skew.min(lifetime / REFRESH_FRACTION_DIVISOR);
        self.failed = false;
        if lifetime < self.backoff {
            self.put_off(now);
        } else {
            self.degenerate = 0;
            self.next_fetch = None;
        }
        self.generation
    }

    /// A fetch failed at `now`. The old token stays usable if it has not expired; the next
    /// fetch is put off as after a degenerate one.
    pub fn fetch_failed(&mut self, now: Instant) {
        self.fetching = false;
        self.failed = true;
        self.put_off(now);
    }

    /// One more degenerate fetch in a row: the next may start `backoff · 2ⁿ⁻¹` (capped) later.
    fn put_off(&mut self, now: Instant) {
        self.degenerate = self.degenerate.saturating_add(1);
        let doublings = (self.degenerate - 1).min(31);
        let wait = self
            .backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        self.next_fetch = Some(now + wait);
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

/// How many token generations a [`TokenStore`] keeps.
pub const KEPT_GENERATIONS: usize = 4;

/// The secret values of the last [`KEPT_GENERATIONS`] token generations, for drivers: the
/// engine hands out generation numbers, the driver attaches the value it stored for one.
/// Attempts in flight may still carry an older generation when a new token arrives, so a few
/// are kept; older ones are dropped (and their values with them).
#[derive(Clone)]
pub struct TokenStore<T> {
    slots: [Option<(u32, T)>; KEPT_GENERATIONS],
    /// The slot the next new generation goes to: the oldest one, as generations arrive in order.
    next: usize,
}

impl<T> TokenStore<T> {
    /// An empty store.
    pub fn new() -> Self {
        TokenStore {
            slots: core::array::from_fn(|_| None),
            next: 0,
        }
    }

    /// Keeps `value` as `generation` (the engine's [`Token::fetched`] answer), dropping the
    /// oldest kept generation when full. A generation already kept is replaced.
    pub fn insert(&mut self, generation: u32, value: T) {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .flatten()
            .find(|(g, _)| *g == generation)
        {
            slot.1 = value;
            return;
        }
        // `next` is below KEPT_GENERATIONS already; the `%` lets the compiler see it (no bounds
        // check, no panic location).
        self.slots[self.next % KEPT_GENERATIONS] = Some((generation, value));
        self.next = (self.next + 1) % KEPT_GENERATIONS;
    }

    /// The value of `generation`, if it is still kept.
    pub fn get(&self, generation: u32) -> Option<&T> {
        self.slots
            .iter()
            .flatten()
            .find_map(|(g, value)| (*g == generation).then_some(value))
    }
}

impl<T> Default for TokenStore<T> {
    fn default() -> Self {
        TokenStore::new()
    }
}

/// Lists the kept generations only: the values are secrets.
impl<T> core::fmt::Debug for TokenStore<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.slots.iter().flatten().map(|(g, _)| g))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn token() -> Token {
        Token::new(&TokenConfig::default())
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn lifecycle() {
        let mut t = token();
        let t0 = ms(0);
        assert_eq!(t.status(t0), TokenStatus::Wait(Why::TokenMissing));
        assert_eq!(t.begin_fetch(t0), FetchStart::Start);
        assert_eq!(t.begin_fetch(t0), FetchStart::InFlight, "single flight");
        let g = t.fetched(Some(Duration::from_secs(300)), t0);
        assert_eq!(g, 1);
        assert_eq!(
            t.status(ms(1000)),
            TokenStatus::Usable {
                generation: 1,
                refresh: false
            }
        );
        let early = ms(240_000);
        assert_eq!(
            t.status(early),
            TokenStatus::Usable {
                generation: 1,
                refresh: true
            }
        );
        assert_eq!(t.begin_fetch(early), FetchStart::Start);
        assert_eq!(
            t.status(early),
            TokenStatus::Usable {
                generation: 1,
                refresh: false
            },
            "already fetching"
        );
        assert_eq!(t.status(ms(300_000)), TokenStatus::Wait(Why::TokenExpired));
        assert_eq!(t.fetched(Some(Duration::from_secs(300)), early), 2);
    }

    #[test]
    fn the_refresh_window_is_at_most_a_fifth_of_the_lifetime() {
        // (lifetime, the first instant an early refresh is asked for)
        let table = [
            (3_000, 2_400),     // 3 s token: the last 600 ms, not the whole 60 s skew
            (30_000, 24_000),   // 30 s token: the last 6 s
            (300_000, 240_000), // 5 min token: the full 60 s skew
            (3_600_000, 3_540_000),
        ];
        for (lifetime, refresh_from) in table {
            let mut t = token();
            let _ = t.begin_fetch(ms(0));
            t.fetched(Some(Duration::from_millis(lifetime)), ms(0));
            let refresh =
                |at| matches!(t.status(ms(at)), TokenStatus::Usable { refresh: true, .. });
            assert!(!refresh(refresh_from - 1), "lifetime {lifetime}");
            assert!(refresh(refresh_from), "lifetime {lifetime}");
        }
    }

    #[test]
    fn failed_fetches_back_off_and_refuse_calls_until_the_next_fetch() {
        let mut t = token();
        let mut now = ms(0);
        let mut waits = vec![];
        for _ in 0..7 {
            assert_eq!(t.begin_fetch(now), FetchStart::Start);
            t.fetch_failed(now);
            let TokenStatus::Refused { until } = t.status(now) else {
                panic!("a call right after a failed fetch is refused")
            };
            let before = until.saturating_sub(Duration::from_millis(1));
            assert_eq!(t.status(before), TokenStatus::Refused { until });
            assert_eq!(t.begin_fetch(before), FetchStart::NotUntil(until));
            assert_eq!(t.status(until), TokenStatus::Wait(Why::TokenMissing));
            waits.push((until - now).as_millis());
            now = until;
        }
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        // A token ends the streak.
        assert_eq!(t.begin_fetch(now), FetchStart::Start);
        t.fetched(Some(Duration::from_secs(300)), now);
        assert!(matches!(t.status(now), TokenStatus::Usable { .. }));
        assert!(t.reject(t.view().generation));
        assert_eq!(t.status(now), TokenStatus::Wait(Why::TokenExpired));
        assert_eq!(t.begin_fetch(now), FetchStart::Start);
    }

    #[test]
    fn a_failed_refresh_keeps_the_unexpired_token_and_puts_the_next_refresh_off() {
        let mut t = token();
        let _ = t.begin_fetch(ms(0));
        t.fetched(Some(Duration::from_secs(300)), ms(0));
        let early = ms(250_000);
        assert_eq!(t.begin_fetch(early), FetchStart::Start);
        t.fetch_failed(early);
        // Still usable, and the refresh is not asked for again on every call meanwhile.
        assert!(matches!(
            t.status(early),
            TokenStatus::Usable { generation: 1, .. }
        ));
        assert_eq!(t.begin_fetch(early), FetchStart::NotUntil(ms(251_000)));
        // Expired while the server stays broken: refused until the next fetch may go.
        t.fetch_failed(ms(300_000));
        assert_eq!(
            t.status(ms(300_000)),
            TokenStatus::Refused { until: ms(302_000) }
        );
    }

    #[test]
    fn degenerate_tokens_back_off_exponentially_up_to_the_cap() {
        let mut t = token();
        let mut now = ms(0);
        let mut waits = vec![];
        for _ in 0..8 {
            assert_eq!(t.begin_fetch(now), FetchStart::Start);
            t.fetched(Some(Duration::ZERO), now);
            assert_eq!(t.status(now), TokenStatus::Wait(Why::TokenExpired));
            let FetchStart::NotUntil(at) = t.begin_fetch(now) else {
                panic!("a degenerate token puts the next fetch off")
            };
            assert_eq!(
                t.begin_fetch(at.saturating_sub(Duration::from_millis(1))),
                FetchStart::NotUntil(at)
            );
            waits.push((at - now).as_millis());
            now = at;
        }
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        // A good token ends the streak: the next fetch may go at once.
        assert_eq!(t.begin_fetch(now), FetchStart::Start);
        t.fetched(Some(Duration::from_secs(3)), now);
        assert!(t.reject(t.view().generation));
        assert_eq!(t.begin_fetch(now), FetchStart::Start);
    }

    #[test]
    fn rejection_invalidates_once_per_generation() {
        let mut t = token();
        let _ = t.begin_fetch(ms(0));
        t.fetched(None, Instant::ZERO);
        assert!(t.reject(1));
        assert!(
            !t.reject(1),
            "a second 401 on the same generation needs no second fetch"
        );
        assert_eq!(t.begin_fetch(ms(0)), FetchStart::Start);
        t.fetched(None, Instant::ZERO);
        assert!(
            !t.reject(1),
            "an old generation's 401 does not touch the new token"
        );
        assert_eq!(
            t.status(Instant::ZERO),
            TokenStatus::Usable {
                generation: 2,
                refresh: false
            }
        );
    }

    #[test]
    fn the_store_keeps_the_last_generations() {
        let mut store = TokenStore::new();
        assert_eq!(store.get(1), None::<&String>);
        for g in 1..=6u32 {
            store.insert(g, format!("secret-{g}"));
        }
        let kept: Vec<u32> = (0..=7).filter(|g| store.get(*g).is_some()).collect();
        assert_eq!(
            kept,
            [3, 4, 5, 6],
            "the last {KEPT_GENERATIONS} generations"
        );
        assert_eq!(store.get(5).map(String::as_str), Some("secret-5"));
        store.insert(5, "replaced".to_string());
        assert_eq!(store.get(5).map(String::as_str), Some("replaced"));
        assert_eq!(
            store.get(3).map(String::as_str),
            Some("secret-3"),
            "replacing drops nothing"
        );
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("secret"),
            "Debug shows generations only: {shown}"
        );
    }
}

/// A secret string whose `Debug` never shows it (an access token, a client secret). Both
/// adapters use this one type.
///
/// ```
/// let s = resile_core::token::Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "Secret(***)");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(std::sync::Arc::from(secret.into()))
    }

    /// The secret itself; call it only where it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret can be sent as `Authorization: Bearer <secret>`: not empty, and only
    /// visible ASCII, spaces and tabs (no CR, LF or other control byte a header cannot carry).
    ///
    /// ```
    /// use resile_core::token::Secret;
    /// assert!(Secret::new("eyJhbGciOi.x-y_z~").is_sendable());
    /// assert!(!Secret::new("abc\r\nX-Injected: 1").is_sendable());
    /// assert!(!Secret::new("").is_sendable());
    /// ```
    pub fn is_sendable(&self) -> bool {
        sendable(&self.0)
    }
}

/// Whether `token` can be sent as `Authorization: Bearer <token>` (see [`Secret::is_sendable`]).
pub fn sendable(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// Why a fetched token is refused before it is stored: it cannot be sent as a header, so
/// storing it would only earn a 401 and a refetch of the same token.
pub const UNSENDABLE_TOKEN: &str = "the token source returned a token that is empty or holds \
     control characters, which an Authorization header cannot carry";

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

/// A fetched access token, as a token source hands it to its adapter.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// The bearer token.
    pub secret: Secret,
    /// Its lifetime from now (OAuth2 `expires_in`), if known.
    pub expires_in: Option<Duration>,
}
