//! What the engine did, for logs, traces, metrics and UIs: [`Event`], polled like actions.

use core::time::Duration;
use std::sync::Arc;

use serde::Serialize;

use crate::breaker::BreakerControl;
use crate::classify::Method;
use crate::engine::call::CallId;
use crate::engine::failure::Failure;
use crate::engine::fallback::FallbackUsed;
use crate::engine::outcome::Last;
use crate::time::Instant;
use crate::why::Why;

/// Something the engine did, for logs, traces and UIs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// When, on the driver's clock.
    #[serde(rename = "at_ms", serialize_with = "ser_instant_ms")]
    pub at: Instant,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A logical call began.
    CallStarted {
        /// The call.
        call: CallId,
        /// Its host.
        host: Arc<str>,
        /// Its method.
        method: Method,
    },
    /// An attempt was handed to the driver.
    AttemptStarted {
        /// The call.
        call: CallId,
        /// 1 for the first.
        attempt: u32,
        /// Its timeout.
        #[serde(rename = "timeout_ms", serialize_with = "ser_opt_duration_ms")]
        timeout: Option<Duration>,
        /// Whether it is a half-open breaker probe.
        probe: bool,
    },
    /// An attempt ended.
    AttemptFinished {
        /// The call.
        call: CallId,
        /// Which attempt.
        attempt: u32,
        /// How it ended.
        result: Last,
        /// What that means.
        why: Why,
    },
    /// The engine timed an attempt out (its outcome never came), or another attempt of the
    /// same call answered first (`hedge_lost`), and asked the driver to abort it; what it held
    /// (a breaker probe, a concurrency slot) is released.
    AttemptAborted {
        /// The call.
        call: CallId,
        /// Which attempt.
        attempt: u32,
        /// Why.
        why: Why,
    },
    /// Connections to the host failed again and again: the driver is asked to drop its pool.
    ConnectionsRecycled {
        /// The host.
        host: Arc<str>,
        /// Connection failures in a row.
        failures: u32,
    },
    /// The call will try again after a wait.
    RetryScheduled {
        /// The call.
        call: CallId,
        /// The attempt that will be made.
        attempt: u32,
        /// How long until then.
        #[serde(rename = "delay_ms", serialize_with = "ser_duration_ms")]
        delay: Duration,
        /// Backoff or the server's Retry-After.
        why: Why,
    },
    /// The call waits before it may send (rate limit, server hold).
    Waiting {
        /// The call.
        call: CallId,
        /// Until when.
        #[serde(rename = "until_ms", serialize_with = "ser_instant_ms")]
        until: Instant,
        /// Why.
        why: Why,
    },
    /// The call queues for a concurrency slot (client-wide or per host).
    Queued {
        /// The call.
        call: CallId,
        /// Why.
        why: Why,
    },
    /// The call waits for an access token.
    WaitingForToken {
        /// The call.
        call: CallId,
        /// Why there is no usable token.
        why: Why,
    },
    /// The server's hint holds every call to the host until a time.
    HostHeld {
        /// The host.
        host: Arc<str>,
        /// Until when.
        #[serde(rename = "until_ms", serialize_with = "ser_instant_ms")]
        until: Instant,
        /// Retry-After or rate-limit headers.
        why: Why,
    },
    /// The host's rate limit was learned from its rate-limit headers.
    LimitLearned {
        /// The host.
        host: Arc<str>,
        /// The learned sustained rate.
        per_second: f64,
        /// The learned burst.
        burst: u64,
    },
    /// A hint header could not be read; the engine fell back to backoff.
    HintUnreadable {
        /// The call.
        call: CallId,
    },
    /// The breaker opened.
    BreakerOpened {
        /// The host.
        host: Arc<str>,
        /// Until when.
        #[serde(rename = "until_ms", serialize_with = "ser_instant_ms")]
        until: Instant,
        /// Trips since the last full recovery.
        trips: u32,
    },
    /// The breaker turned half-open.
    BreakerHalfOpen {
        /// The host.
        host: Arc<str>,
    },
    /// The breaker closed.
    BreakerClosed {
        /// The host.
        host: Arc<str>,
    },
    /// A retry was refused because the budget is spent.
    BudgetExhausted {
        /// The host.
        host: Arc<str>,
        /// The call refused.
        call: CallId,
    },
    /// A token fetch began.
    TokenFetchStarted {
        /// Why.
        why: Why,
    },
    /// A token arrived.
    TokenRefreshed {
        /// Its generation.
        generation: u32,
        /// Its lifetime, if known.
        #[serde(rename = "expires_in_ms", serialize_with = "ser_opt_duration_ms")]
        expires_in: Option<Duration>,
    },
    /// A token fetch failed.
    TokenFetchFailed {
        /// Calls failed because of it.
        calls_failed: u32,
    },
    /// Another attempt of the call was sent beside the one(s) still out (hedging).
    HedgeSent {
        /// The call.
        call: CallId,
        /// The attempt the hedge is.
        attempt: u32,
        /// How long the attempt before it had been out.
        #[serde(rename = "delay_ms", serialize_with = "ser_duration_ms")]
        delay: Duration,
        /// The fixed hedge delay, or the host's latency percentile.
        why: Why,
    },
    /// A hedge was due but not sent; the attempts out carry on.
    HedgeRefused {
        /// The call.
        call: CallId,
        /// What refused it: the budget, the breaker, a hold, the concurrency or rate limit,
        /// the deadline, or the token.
        why: Why,
    },
    /// The call got its final response.
    CallSucceeded {
        /// The call.
        call: CallId,
        /// The status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// Time from start to end.
        #[serde(rename = "elapsed_ms", serialize_with = "ser_duration_ms")]
        elapsed: Duration,
    },
    /// The call failed.
    CallFailed {
        /// The call.
        call: CallId,
        /// The failure.
        failure: Failure,
        /// Time from start to end.
        #[serde(rename = "elapsed_ms", serialize_with = "ser_duration_ms")]
        elapsed: Duration,
    },
    /// The host's adaptive client rate changed: lowered by a throttle, or grown back by answers
    /// without one (reported once it moved by a tenth).
    AdaptiveRateChanged {
        /// The host.
        host: Arc<str>,
        /// The bucket's new fill rate, tokens (attempts) per second.
        per_second: f64,
        /// The measured send rate, attempts per second.
        measured: f64,
        /// [`Why::Throttled`] or [`Why::RateRecovering`].
        why: Why,
    },
    /// The host's adaptive concurrency limit changed.
    ConcurrencyLimitChanged {
        /// The host.
        host: Arc<str>,
        /// Attempts that may now be in flight to it.
        limit: u32,
        /// The limit before.
        previous: u32,
        /// The sample that moved it: [`Why::Success`] or [`Why::AttemptDropped`].
        why: Why,
    },
    /// The call answered with its fallback instead of failing.
    CallFellBack {
        /// The call.
        call: CallId,
        /// The failure the fallback stands in for.
        failure: Failure,
        /// Which fallback.
        #[serde(rename = "fallback")]
        used: FallbackUsed,
        /// Time from start to end.
        #[serde(rename = "elapsed_ms", serialize_with = "ser_duration_ms")]
        elapsed: Duration,
    },
    /// A breaker was held, released, reset or imported by hand.
    BreakerControlled {
        /// The host.
        host: Arc<str>,
        /// What was done.
        control: BreakerControl,
    },
    /// Fleet mode: the store did not answer in time or could not be reached; this instance
    /// paces each host at its share of the limit (`1 / share_of`) until `until`, then asks the
    /// store again.
    FleetFallback {
        /// What went wrong.
        problem: crate::fleet::StoreProblem,
        /// The fleet size the limit is split by.
        share_of: u32,
        /// When the store is asked again.
        #[serde(rename = "until_ms", serialize_with = "ser_instant_ms")]
        until: Instant,
    },
    /// Fleet mode: the store answers again; the shared limits apply again.
    FleetResumed {
        /// How long the instance ran on its local share.
        #[serde(rename = "down_ms", serialize_with = "ser_duration_ms")]
        down_for: Duration,
    },
}

impl EventKind {
    /// The reason the event carries, if it carries one.
    pub fn why(&self) -> Option<Why> {
        match self {
            EventKind::AttemptFinished { why, .. }
            | EventKind::AttemptAborted { why, .. }
            | EventKind::RetryScheduled { why, .. }
            | EventKind::Waiting { why, .. }
            | EventKind::WaitingForToken { why, .. }
            | EventKind::Queued { why, .. }
            | EventKind::HostHeld { why, .. }
            | EventKind::TokenFetchStarted { why }
            | EventKind::AdaptiveRateChanged { why, .. }
            | EventKind::ConcurrencyLimitChanged { why, .. }
            | EventKind::HedgeSent { why, .. }
            | EventKind::HedgeRefused { why, .. } => Some(*why),
            EventKind::CallFailed { failure, .. } | EventKind::CallFellBack { failure, .. } => {
                Some(failure.why)
            }
            EventKind::BreakerControlled {
                control: BreakerControl::Isolated,
                ..
            } => Some(Why::BreakerIsolated),
            EventKind::BreakerOpened { .. } => Some(Why::BreakerOpen),
            EventKind::BudgetExhausted { .. } => Some(Why::BudgetExhausted),
            EventKind::ConnectionsRecycled { .. } => Some(Why::ConnectionsFailing),
            EventKind::HintUnreadable { .. } => Some(Why::HintUnreadable),
            EventKind::TokenFetchFailed { .. } => Some(Why::TokenFetchFailed),
            EventKind::CallSucceeded { .. } => Some(Why::Success),
            EventKind::FleetFallback { .. } => Some(Why::FleetStoreDown),
            _ => None,
        }
    }

    /// The call the event is about, if it is about one.
    pub fn call(&self) -> Option<CallId> {
        match self {
            EventKind::CallStarted { call, .. }
            | EventKind::AttemptStarted { call, .. }
            | EventKind::AttemptFinished { call, .. }
            | EventKind::AttemptAborted { call, .. }
            | EventKind::RetryScheduled { call, .. }
            | EventKind::Waiting { call, .. }
            | EventKind::WaitingForToken { call, .. }
            | EventKind::Queued { call, .. }
            | EventKind::HintUnreadable { call }
            | EventKind::BudgetExhausted { call, .. }
            | EventKind::HedgeSent { call, .. }
            | EventKind::HedgeRefused { call, .. }
            | EventKind::CallSucceeded { call, .. }
            | EventKind::CallFailed { call, .. }
            | EventKind::CallFellBack { call, .. } => Some(*call),
            _ => None,
        }
    }

    /// The call this event ends, if it is a call's last event (it succeeded, failed or fell
    /// back): what a driver keeps for the call's events can go.
    #[inline]
    pub fn ended_call(&self) -> Option<CallId> {
        match self {
            EventKind::CallSucceeded { call, .. }
            | EventKind::CallFailed { call, .. }
            | EventKind::CallFellBack { call, .. } => Some(*call),
            _ => None,
        }
    }
}

impl Event {
    /// One line a person can read: what happened and, where there is one, why.
    pub fn describe(&self) -> String {
        let what = match &self.kind {
            EventKind::CallStarted { call, host, method } => format!("{call} {method} {host}"),
            EventKind::AttemptStarted {
                call,
                attempt,
                probe,
                ..
            } => {
                format!(
                    "{call} attempt {attempt}{}",
                    if *probe { " (breaker probe)" } else { "" }
                )
            }
            EventKind::AttemptFinished {
                call,
                attempt,
                result,
                ..
            } => match result {
                Last::Status(s) => format!("{call} attempt {attempt} answered {s}"),
                Last::Transport(e) => format!("{call} attempt {attempt} failed: {e:?}"),
            },
            EventKind::AttemptAborted { call, attempt, .. } => {
                format!("{call} attempt {attempt} aborted")
            }
            EventKind::ConnectionsRecycled { host, failures } => {
                format!("{host}: pool rebuilt after {failures} connection failures in a row")
            }
            EventKind::RetryScheduled {
                call,
                attempt,
                delay,
                ..
            } => {
                format!("{call} retry {attempt} in {} ms", delay.as_millis())
            }
            EventKind::Waiting { call, until, .. } => format!("{call} waits until {until}"),
            EventKind::WaitingForToken { call, .. } => format!("{call} waits for a token"),
            EventKind::Queued { call, .. } => format!("{call} queues for a slot"),
            EventKind::HostHeld { host, until, .. } => format!("{host} held until {until}"),
            EventKind::LimitLearned {
                host,
                per_second,
                burst,
            } => {
                format!("{host} paced at {per_second:.2}/s, burst {burst}, as its rate-limit headers say")
            }
            EventKind::HintUnreadable { call } => format!("{call} could not read a hint header"),
            EventKind::BreakerOpened { host, until, trips } => {
                format!("breaker for {host} opened until {until} (trip {trips})")
            }
            EventKind::BreakerHalfOpen { host } => format!("breaker for {host} half-open"),
            EventKind::BreakerClosed { host } => format!("breaker for {host} closed"),
            EventKind::BudgetExhausted { host, call } => {
                format!("{call} retry refused: budget for {host} spent")
            }
            EventKind::HedgeSent {
                call,
                attempt,
                delay,
                ..
            } => format!(
                "{call} hedge: attempt {attempt} after {} ms",
                delay.as_millis()
            ),
            EventKind::HedgeRefused { call, .. } => format!("{call} hedge not sent"),
            EventKind::TokenFetchStarted { .. } => "fetching an access token".to_string(),
            EventKind::TokenRefreshed {
                generation,
                expires_in,
            } => match expires_in {
                Some(d) => format!("token {generation} ready, expires in {} s", d.as_secs()),
                None => format!("token {generation} ready"),
            },
            EventKind::TokenFetchFailed { calls_failed } => {
                format!("token fetch failed; {calls_failed} waiting call(s) failed")
            }
            EventKind::CallSucceeded {
                call,
                status,
                attempts,
                elapsed,
            } => format!(
                "{call} done: {status} after {attempts} attempt(s), {} ms",
                elapsed.as_millis()
            ),
            EventKind::CallFailed {
                call,
                failure,
                elapsed,
            } => format!(
                "{call} failed after {} attempt(s), {} ms",
                failure.attempts,
                elapsed.as_millis()
            ),
            EventKind::AdaptiveRateChanged {
                host,
                per_second,
                measured,
                ..
            } => format!("{host} adaptive rate {per_second:.2}/s (measured {measured:.2}/s)"),
            EventKind::ConcurrencyLimitChanged {
                host,
                limit,
                previous,
                ..
            } => format!("{host} concurrency limit {previous} -> {limit}"),
            EventKind::CallFellBack {
                call,
                failure,
                used,
                elapsed,
            } => format!(
                "{call} answered with its fallback ({}) after {} attempt(s), {} ms",
                match used {
                    FallbackUsed::Value => "the caller's value".to_string(),
                    FallbackUsed::LastGood { age } =>
                        format!("the last good response, {} ms old", age.as_millis()),
                },
                failure.attempts,
                elapsed.as_millis()
            ),
            EventKind::BreakerControlled { host, control } => {
                format!("breaker for {host}: {} by hand", control.name())
            }
            EventKind::FleetFallback {
                problem,
                share_of,
                until,
            } => format!(
                "fleet store: {}; local share 1/{share_of} until {until}",
                problem.explain()
            ),
            EventKind::FleetResumed { down_for } => format!(
                "fleet store answers again after {} ms on the local share",
                down_for.as_millis()
            ),
        };
        match self.kind.why() {
            Some(why) if !matches!(self.kind, EventKind::CallSucceeded { .. }) => {
                format!("[{}] {what}: {}", self.at, why.explain())
            }
            _ => format!("[{}] {what}", self.at),
        }
    }
}

pub(crate) fn ser_duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_nanos() as f64 / 1e6)
}

fn ser_opt_duration_ms<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration_ms(d, s),
        None => s.serialize_none(),
    }
}

pub(crate) fn ser_instant_ms<S: serde::Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(t.as_nanos() as f64 / 1e6)
}

/// What an adapter's client reports to its `on_event` callback: one type for both adapters, so
/// a callback written once compiles for the host and for wasm32.
///
/// ```
/// use resile_core::ClientEvent;
///
/// fn log(e: &ClientEvent) -> Option<String> {
///     e.engine().map(|e| e.describe())
/// }
/// # let _ = log;
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientEvent {
    /// A decision of the engine (attempts, retries, breaker, budget, tokens, ...).
    Engine(Event),
}

impl ClientEvent {
    /// The engine event, if this is one.
    pub fn engine(&self) -> Option<&Event> {
        match self {
            ClientEvent::Engine(e) => Some(e),
        }
    }
}

// What the queue may forget instead of dropping (see `queue::Owns`): every variant but those
// naming a host. The types below are the fields of the variants that own nothing.
const _: () = assert!(
    !core::mem::needs_drop::<Failure>()
        && !core::mem::needs_drop::<Last>()
        && !core::mem::needs_drop::<Why>()
        && !core::mem::needs_drop::<FallbackUsed>()
        && !core::mem::needs_drop::<crate::fleet::StoreProblem>()
);

impl crate::engine::queue::Owns for Event {
    #[inline(always)]
    fn owns(&self) -> bool {
        // No `_` arm: a new kind must be sorted here.
        match &self.kind {
            EventKind::CallStarted { .. }
            | EventKind::ConnectionsRecycled { .. }
            | EventKind::HostHeld { .. }
            | EventKind::LimitLearned { .. }
            | EventKind::BreakerOpened { .. }
            | EventKind::BreakerHalfOpen { .. }
            | EventKind::BreakerClosed { .. }
            | EventKind::BudgetExhausted { .. }
            | EventKind::AdaptiveRateChanged { .. }
            | EventKind::ConcurrencyLimitChanged { .. }
            | EventKind::BreakerControlled { .. } => true,
            EventKind::AttemptStarted { .. }
            | EventKind::AttemptFinished { .. }
            | EventKind::AttemptAborted { .. }
            | EventKind::RetryScheduled { .. }
            | EventKind::Waiting { .. }
            | EventKind::Queued { .. }
            | EventKind::WaitingForToken { .. }
            | EventKind::HintUnreadable { .. }
            | EventKind::TokenFetchStarted { .. }
            | EventKind::TokenRefreshed { .. }
            | EventKind::TokenFetchFailed { .. }
            | EventKind::HedgeSent { .. }
            | EventKind::HedgeRefused { .. }
            | EventKind::CallSucceeded { .. }
            | EventKind::CallFailed { .. }
            | EventKind::CallFellBack { .. }
            | EventKind::FleetFallback { .. }
            | EventKind::FleetResumed { .. } => false,
        }
    }
}
