//! What the engine asks the driver to do.

use core::time::Duration;

use crate::engine::call::{Authorization, CallId};
use crate::engine::failure::Failure;
use crate::engine::fallback::FallbackUsed;
use crate::rng::Uuid;
use crate::why::Why;

/// `X-Request-ID`.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The headers an attempt must carry, decided by the engine; drivers copy them.
///
/// - `X-Request-ID`: the same on every attempt of the call.
/// - `Idempotency-Key`: generated once per call for POST and PATCH with
///   [`crate::Idempotency::Auto`], the same on every attempt. A call whose caller provides its
///   own key carries none here: the caller's header is sent as is.
/// - `Authorization`: for [`Authorization::Token`] calls, the token of generation
///   [`AttemptHeaders::token`] (`Bearer <token>`); a caller's own `Authorization`
///   ([`Authorization::Caller`]) is left as is and never replaced.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AttemptHeaders {
    /// The value for `X-Request-ID`; `None` when request ids are off
    /// ([`crate::config::RequestIds::Off`]).
    pub request_id: Option<Uuid>,
    /// The value for `Idempotency-Key`, if the engine generated one.
    pub idempotency_key: Option<Uuid>,
    /// Which token generation to send as `Authorization: Bearer …`.
    pub token: Option<u32>,
    /// Where this call's `Authorization` comes from.
    pub authorization: Authorization,
}

impl AttemptHeaders {
    /// The text headers to set, as `(lower-case name, value)`: `X-Request-ID` unless request
    /// ids are off and, if generated, `Idempotency-Key`. `Authorization` needs the token's value, which the driver
    /// holds: see [`AttemptHeaders::token`].
    pub fn text(&self) -> impl Iterator<Item = (&'static str, [u8; 36])> {
        let id = self.request_id.map(|id| (REQUEST_ID_HEADER, id.to_text()));
        let key = self
            .idempotency_key
            .map(|k| (IDEMPOTENCY_KEY_HEADER, k.to_text()));
        id.into_iter().chain(key)
    }
}

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Action {
    /// Send attempt `attempt` of `call` now.
    Send {
        /// The call.
        call: CallId,
        /// 1 for the first attempt.
        attempt: u32,
        /// The attempt's time limit (the attempt timeout, shortened to the deadline). The
        /// engine keeps this deadline itself: when it passes without an outcome the engine
        /// times the attempt out and asks for an [`Action::Abort`]. Drivers need no timer of
        /// their own.
        timeout: Option<Duration>,
        /// Every header the attempt must add: the request id, the Idempotency-Key, and the
        /// token generation to send as `Authorization`.
        headers: AttemptHeaders,
    },
    /// Stop attempt `attempt` of `call` and drop whatever it returns: the engine timed it out,
    /// or another attempt of the same call answered first (hedging, [`Why::HedgeLost`]), and
    /// has already decided what follows. With hedging a call may have several attempts out:
    /// abort only the one named.
    Abort {
        /// The call.
        call: CallId,
        /// The attempt to abort.
        attempt: u32,
        /// Why.
        why: Why,
    },
    /// Fetch an access token and report it with [`crate::Engine::token_fetched`] or
    /// [`crate::Engine::token_failed`]. Only one is asked for at a time.
    FetchToken {
        /// Why a token is needed.
        why: Why,
    },
    /// Connections to `host` keep failing: drop the pooled ones and connect afresh.
    RecycleConnections {
        /// The host (`scheme://authority`).
        host: std::sync::Arc<str>,
        /// Connection failures in a row that led to it.
        failures: u32,
    },
    /// The call is over: hand the last response (with this status) to the caller.
    Done {
        /// The call.
        call: CallId,
        /// The final status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The call is over without a usable response.
    Fail {
        /// The call.
        call: CallId,
        /// Why the engine gave up.
        failure: Failure,
    },
    /// The call is over without a usable response, and answers with its fallback instead
    /// (see [`crate::engine::fallback`]): the caller's value, or the last good response.
    Fallback {
        /// The call.
        call: CallId,
        /// The failure the fallback stands in for (its `why` says why).
        failure: Failure,
        /// Which fallback.
        used: FallbackUsed,
    },
    /// Fleet mode: ask the fleet's store for a slot for attempt `attempt` of `call` (see
    /// [`crate::fleet`]) and report its answer with [`crate::Engine::handle_reservation`],
    /// [`crate::fleet::Reservation::Unavailable`] if it cannot be had. The engine waits for it
    /// at most `fleet.answer_within_ms`, then falls back on its own: the driver needs no timer.
    Reserve {
        /// The call.
        call: CallId,
        /// The attempt the slot is for.
        attempt: u32,
        /// The host (`scheme://authority`): the key of the shared state.
        host: std::sync::Arc<str>,
        /// The host's limit (configured or learned); `None`: only holds apply.
        limit: Option<crate::fleet::SharedLimit>,
        /// Book nothing further away than this (the time left to the call's deadline, at most
        /// the Retry-After cap): answer `Refused` instead.
        max_wait: Duration,
    },
    /// Fleet mode: tell the fleet's store what this instance learned about `host`. Fire and
    /// forget: nothing is reported back.
    Share {
        /// The host.
        host: std::sync::Arc<str>,
        /// What to record.
        update: crate::fleet::SharedUpdate,
    },
}

// What the queue may forget instead of dropping (see `queue::Owns`): every action but those
// naming a host. The types below are the fields of the actions that own nothing.
const _: () = assert!(
    !core::mem::needs_drop::<Failure>()
        && !core::mem::needs_drop::<FallbackUsed>()
        && !core::mem::needs_drop::<AttemptHeaders>()
        && !core::mem::needs_drop::<Why>()
);

impl crate::engine::queue::Owns for Action {
    #[inline(always)]
    fn owns(&self) -> bool {
        // No `_` arm: a new action must be sorted here.
        match self {
            Action::RecycleConnections { .. } | Action::Reserve { .. } | Action::Share { .. } => {
                true
            }
            Action::Send { .. }
            | Action::Abort { .. }
            | Action::FetchToken { .. }
            | Action::Done { .. }
            | Action::Fail { .. }
            | Action::Fallback { .. } => false,
        }
    }
}
