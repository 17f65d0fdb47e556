//! One logical call: what the caller asked for ([`CallSpec`]) and where it stands ([`Call`]).

use core::time::Duration;

use serde::Serialize;

use crate::classify::Method;
use crate::engine::fallback::FallbackSpec;
use crate::engine::flight::Flights;
use crate::engine::hedge::Hedge;
use crate::engine::predicate::Predicate;
use crate::rng::Uuid;
use crate::time::Instant;

/// A logical call's handle. It prints as `#n`, numbered from 1 in start order.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId {
    pub(crate) slot: u32,
    pub(crate) seq: u32,
}

impl CallId {
    /// The call's number: 1 for the first call the engine started, and so on.
    pub fn number(self) -> u32 {
        self.seq
    }

    /// The call's place in the engine's table of live calls: no two live calls share it, and
    /// it is reused after a call ends, so a driver may keep its own per-call state in a table
    /// indexed by it (checking the whole id on every look-up) instead of hashing ids.
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

impl core::fmt::Debug for CallId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.seq)
    }
}

impl core::fmt::Display for CallId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.seq)
    }
}

impl Serialize for CallId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.seq)
    }
}

/// Who supplies the `Idempotency-Key` of a write.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Idempotency {
    /// The engine generates one for POST and PATCH, once per call, reused on every attempt.
    Auto,
    /// The caller sends its own key on every attempt.
    Provided,
    /// No key: a write that may have been applied is never repeated.
    Off,
}

/// Who supplies the `Idempotency-Key` header of a call, as a caller says it (the adapters'
/// request builders take it; both re-export it).
///
/// With a key, a server that implements idempotency keys applies a write once however many
/// times it arrives, so the engine may repeat a POST whose first attempt may have been applied.
/// Without one, such a POST is not repeated ([`crate::Why::NotIdempotent`]).
///
/// ```
/// use resile_core::IdempotencyKey;
/// assert_eq!(IdempotencyKey::default(), IdempotencyKey::Auto);
/// assert_eq!(IdempotencyKey::parse(Some("order-7")), IdempotencyKey::Explicit("order-7".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum IdempotencyKey {
    /// The engine generates one for POST and PATCH, once per call, and sends it on every
    /// attempt. Other methods are idempotent already and get none.
    #[default]
    Auto,
    /// This key, on every attempt (any method).
    Explicit(String),
    /// No key: a write that may have been applied is never repeated.
    Off,
}

impl IdempotencyKey {
    /// Reads an option's text: `"auto"` (or absent), `"off"`, or the caller's own key.
    pub fn parse(value: Option<&str>) -> IdempotencyKey {
        match value {
            None | Some("auto") => IdempotencyKey::Auto,
            Some("off") => IdempotencyKey::Off,
            Some(own) => IdempotencyKey::Explicit(own.to_string()),
        }
    }

    /// What the engine is told.
    pub fn idempotency(&self) -> Idempotency {
        match self {
            IdempotencyKey::Auto => Idempotency::Auto,
            IdempotencyKey::Off => Idempotency::Off,
            IdempotencyKey::Explicit(_) => Idempotency::Provided,
        }
    }

    /// The caller's own key, if it is one.
    pub fn explicit(&self) -> Option<&str> {
        match self {
            IdempotencyKey::Explicit(k) => Some(k),
            _ => None,
        }
    }
}

/// Where a call's `Authorization` comes from.
///
/// The one rule every adapter follows: **a caller's own `Authorization` header wins.** It is
/// sent as given on every attempt; the engine attaches no token to that call and a 401 is the
/// caller's answer (no forced refresh). Only [`Authorization::Token`] calls take the token
/// generation the engine names in [`crate::Action::Send`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Authorization {
    /// No `Authorization` header.
    None,
    /// The caller's own header, sent as is.
    Caller,
    /// The access token of the generation the engine names for each attempt.
    Token,
}

/// What a logical call is, as far as deciding goes.
#[derive(Clone, Debug)]
pub struct CallSpec<'a> {
    /// The method (idempotency follows from it).
    pub method: Method,
    /// `scheme://authority`: the unit of breaker, limiter and budget state.
    pub host: &'a str,
    /// Who supplies an Idempotency-Key.
    pub idempotency: Idempotency,
    /// Whether the body can be sent again (false for one-shot streams).
    pub replayable: bool,
    /// Whether the call carries an access token. A call whose caller set its own
    /// `Authorization` must say so with [`CallSpec::authorization`] instead.
    pub needs_token: bool,
    /// The caller set its own `Authorization` header (see [`Authorization`]).
    pub own_authorization: bool,
    /// Overrides the configured deadline.
    pub deadline: Option<Duration>,
    /// Overrides the configured attempt count.
    pub max_attempts: Option<u32>,
    /// The call's fallback, if it has one (see [`crate::engine::fallback`]).
    pub fallback: Option<FallbackSpec>,
    /// The caller's retry predicate, if any (see [`crate::engine::predicate`]).
    pub predicate: Option<Predicate>,
    /// When the call ends: at its final answer's head, or once a download's body is read.
    pub ends: CallEnd,
}

/// When a call ends, as far as the engine goes.
///
/// ```
/// use resile_core::{CallEnd, CallSpec};
/// assert_eq!(CallSpec::get("https://files.example").ends, CallEnd::AtHead);
/// assert_eq!(CallSpec::get("https://files.example").download().ends, CallEnd::AfterBody);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum CallEnd {
    /// With its final answer's head ([`crate::Action::Done`]): the body is the caller's.
    #[default]
    AtHead,
    /// A download: the call stays open while the body is read, so a body that breaks is
    /// taken up by the same call ([`crate::Engine::resume`]), under its deadline, attempt
    /// count and request id, and it ends with [`crate::Engine::body_read`] (or a cancel).
    AfterBody,
}

impl<'a> CallSpec<'a> {
    /// A call with the given method to `host`.
    pub fn new(method: Method, host: &'a str) -> Self {
        CallSpec {
            method,
            host,
            idempotency: Idempotency::Auto,
            replayable: true,
            needs_token: false,
            own_authorization: false,
            deadline: None,
            max_attempts: None,
            fallback: None,
            predicate: None,
            ends: CallEnd::AtHead,
        }
    }

    /// A GET to `host`.
    pub fn get(host: &'a str) -> Self {
        CallSpec::new(Method::Get, host)
    }

    /// A POST to `host`.
    pub fn post(host: &'a str) -> Self {
        CallSpec::new(Method::Post, host)
    }

    /// Sets who supplies the Idempotency-Key.
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// Marks the body as a one-shot stream.
    pub fn not_replayable(mut self) -> Self {
        self.replayable = false;
        self
    }

    /// Marks the call as carrying an access token.
    pub fn with_token(mut self) -> Self {
        self.needs_token = true;
        self
    }

    /// Says where the call's `Authorization` comes from; [`Authorization::Caller`] wins over
    /// a configured token source.
    pub fn authorization(mut self, authorization: Authorization) -> Self {
        self.needs_token = authorization == Authorization::Token;
        self.own_authorization = authorization == Authorization::Caller;
        self
    }

    /// Overrides the deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Overrides the number of attempts (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// Gives the call a fallback.
    pub fn fallback(mut self, fallback: FallbackSpec) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Makes the call a download that stays open while its body is read ([`CallEnd::AfterBody`]).
    pub fn download(mut self) -> Self {
        self.ends = CallEnd::AfterBody;
        self
    }

    /// Gives the call a retry predicate.
    pub fn retry_predicate(mut self, predicate: Predicate) -> Self {
        self.predicate = Some(predicate);
        self
    }

    /// The authorization the engine applies: the caller's header wins over a token.
    pub(crate) fn effective_authorization(&self) -> Authorization {
        if self.own_authorization {
            Authorization::Caller
        } else if self.needs_token {
            Authorization::Token
        } else {
            Authorization::None
        }
    }
}

/// Where a call stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Between decisions.
    Ready,
    /// Sleeping until `until` (backoff, a hold, or a booked rate-limit slot).
    Waiting {
        until: Instant,
        /// The limiter slot booked for `until`, returned if the call ends before it.
        reserved: bool,
    },
    /// Waiting for an access token.
    WaitingToken,
    /// Waiting for a concurrency slot.
    Queued,
    /// Waiting for the fleet store's answer to a reservation (fleet mode).
    Reserving,
    /// One attempt or more is out (see [`Call::flights`]).
    InFlight,
    /// A download's final answer (`status`) was handed over; its body is being read
    /// ([`CallEnd::AfterBody`], see `resumed.rs`).
    Streaming { status: u16 },
    /// A long poll whose retry the AWS quota refused backs off until `until`, then fails (the
    /// config's `aws.long_polling`) with the failure the engine keeps for it out of line
    /// (`Engine::failing`: it is most of a call's state's size and rarely needed).
    Failing { until: Instant },
}

/// One logical call's state. It owns nothing (what a call has that must be dropped, its
/// retry predicate and its hedges' slots, the engine keeps by number), so freeing a call's
/// slot is one store, with no drop to call.
#[derive(Debug)]
pub(crate) struct Call {
    pub id: CallId,
    pub host: u32,
    pub method: Method,
    pub has_key: bool,
    pub key: Option<Uuid>,
    pub request_id: Option<Uuid>,
    pub replayable: bool,
    /// Where its `Authorization` comes from (the caller's header wins over a token).
    pub authorization: Authorization,
    pub max_attempts: u32,
    pub started: Instant,
    pub deadline: Option<Instant>,
    pub attempts: u32,
    pub previous_delay: Option<Duration>,
    pub forced_refresh: bool,
    /// The call had its one budget-free retry after a 429 (see `retry.rs`).
    pub throttled: bool,
    /// The call had its one resend of a refusal before any processing (see `retry.rs`).
    pub refusal_resent: bool,
    /// What the call holds of its host's retry quota (presets with a quota only).
    pub quota_hold: crate::quota::QuotaHold,
    pub phase: Phase,
    /// The attempts out while `phase` is [`Phase::InFlight`].
    pub flights: Flights,
    /// The next hedge, if one is due and when (see `hedge.rs`).
    pub hedge: Hedge,
    /// Where the call stands with the fleet's store (fleet mode).
    pub fleet: crate::engine::shared::Ticket,
    /// The deadline this call's timer entry stands for, if any.
    pub timer: super::timer::Armed,
    /// Its fallback.
    pub fallback: Option<FallbackSpec>,
    /// Whether it has a retry predicate (kept in `Engine::predicates`, by slot: the call's
    /// state owns nothing).
    pub predicate: bool,
    /// When it ends.
    pub ends: CallEnd,
    /// Its success on its only attempt is decided straight (`straight.rs`): no retry
    /// predicate, it ends at its head, and no host reads a success
    /// (`Engine::plain_hosts`). Worked out at its start: the three tests in one.
    pub straight: bool,
}

impl Call {
    /// What it leaves when it ends.
    #[inline(always)]
    pub fn ended(&self) -> Ended {
        Ended {
            id: self.id,
            method: self.method,
            attempts: self.attempts,
            started: self.started,
            fallback: self.fallback,
        }
    }
}

const _: () = assert!(!core::mem::needs_drop::<Call>());

/// What an ended call leaves for its result and its event: copied out of [`Call`] before its
/// slot is freed, so ending a call moves a few words, not the whole state.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Ended {
    pub id: CallId,
    pub method: Method,
    pub attempts: u32,
    pub started: Instant,
    pub fallback: Option<FallbackSpec>,
}
