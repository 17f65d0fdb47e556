//! The engine: many logical calls, shared host state, and the polling API.
//!
//! # Driving it
//!
//! An adapter owns the I/O and the clock. It feeds one input, drains the polls, and sleeps until
//! the next wake-up or until I/O completes:
//!
//! ```
//! use resile_core::{Action, CallSpec, Config, Engine, Instant, Outcome, Response, UnixTime};
//! use resile_core::headers::NoHeaders;
//!
//! let mut engine = Engine::new(Config::default(), 42, Instant::ZERO).unwrap();
//! let mut now = Instant::ZERO;
//! let call = engine.start(CallSpec::get("https://api.example"), now);
//! let mut statuses = [503u16, 200].into_iter();
//! loop {
//!     while let Some(action) = engine.poll_action() {
//!         match action {
//!             // Do the HTTP request; here a scripted server answers at once.
//!             Action::Send { call, .. } => {
//!                 let status = statuses.next().unwrap();
//!                 let response = Response::new(status, &NoHeaders, UnixTime::EPOCH);
//!                 engine.handle(call, Outcome::Response(response), now);
//!             }
//!             Action::Done { status, attempts, .. } => {
//!                 assert_eq!((status, attempts), (200, 2));
//!                 return;
//!             }
//!             other => panic!("unexpected {other:?}"),
//!         }
//!     }
//!     while let Some(event) = engine.poll_event() {
//!         println!("{}", serde_json::to_string(&event).unwrap());
//!     }
//!     // Sleep until the engine's next deadline (a retry's backoff here).
//!     now = engine.poll_timeout().expect("a retry is scheduled");
//!     engine.handle_timeout(now);
//! }
//! ```
//!
//! The order within one step does not matter: `handle`, `start`, `cancel`, `token_*` and
//! `handle_timeout` only queue actions and events; `poll_*` only drains them.

use core::cmp::Reverse;
use core::time::Duration;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::backoff::Backoff;
use crate::breaker::{Admit, Breaker, BreakerState, Refusal, Transition};
use crate::budget::Budget;
use crate::classify::{
    classify_status, classify_transport, Class, Method, Processed, StatusSet, TransportError,
};
use crate::config::LimitConfig;
use crate::config::{Config, ConfigError};
use crate::headers::{parse_ratelimit, parse_retry_after, Headers, RateLimitHint};
use crate::limit::Gcra;
use crate::rng::{RandomSource, Rng, Uuid};
use crate::time::{duration_nanos, Instant, UnixTime};
use crate::token::{FetchStart, Token, TokenStatus, TokenView};
use crate::why::Why;

/// A logical call's handle. It prints as `#n`, numbered from 1 in start order.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId {
    slot: u32,
    seq: u32,
}

impl CallId {
    /// The call's number: 1 for the first call the engine started, and so on.
    pub fn number(self) -> u32 {
        self.seq
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
    /// Whether the call carries an access token.
    pub needs_token: bool,
    /// Overrides the configured deadline.
    pub deadline: Option<Duration>,
    /// Overrides the configured attempt count.
    pub max_attempts: Option<u32>,
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
            deadline: None,
            max_attempts: None,
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
}

/// An HTTP response's meta data, as the engine needs it.
#[derive(Clone, Copy)]
pub struct Response<'a> {
    /// The status code.
    pub status: u16,
    /// The headers (only hint headers are read).
    pub headers: &'a dyn Headers,
    /// The wall clock when the response arrived (for `Retry-After` HTTP-dates).
    pub wall: UnixTime,
    /// The driver cannot see every header (a cross-origin browser response): a missing hint
    /// may be hidden rather than absent.
    pub hints_may_be_hidden: bool,
}

impl<'a> Response<'a> {
    /// A response with the given status and headers.
    pub fn new(status: u16, headers: &'a dyn Headers, wall: UnixTime) -> Self {
        Response {
            status,
            headers,
            wall,
            hints_may_be_hidden: false,
        }
    }
}

impl core::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// The server answered.
    Response(Response<'a>),
    /// The transport failed.
    Transport(TransportError),
}

/// What the last attempt of a failed call ended with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Last {
    /// A status code.
    Status(u16),
    /// A transport failure.
    Transport(TransportError),
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
        /// Abort the attempt after this long (the attempt timeout, shortened to the deadline).
        timeout: Option<Duration>,
        /// The key to send as `Idempotency-Key`, generated once per call (with
        /// [`Idempotency::Auto`] on POST and PATCH).
        idempotency_key: Option<Uuid>,
        /// The value for `X-Request-ID`: the same on every attempt of the call.
        request_id: Uuid,
        /// Which token generation to attach, for calls that need one.
        token: Option<u32>,
    },
    /// Fetch an access token and report it with [`Engine::token_fetched`] or
    /// [`Engine::token_failed`]. Only one is asked for at a time.
    FetchToken {
        /// Why a token is needed.
        why: Why,
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
}

/// Why a call failed, with what the caller needs to react.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The reason.
    pub why: Why,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt ended with, if one was made.
    pub last: Option<Last>,
    /// When the host may be tried again (breaker open, server hold).
    pub retry_at: Option<Instant>,
    /// Whether the server may have applied the request.
    pub processed: Processed,
}

/// A coarse kind of failure, for mapping onto an adapter's error type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The call ran out of time.
    Timeout,
    /// The host is not being called (breaker open or probes busy).
    Unavailable,
    /// The server's rate limit asked for too long a wait.
    RateLimited,
    /// Retries ran out (attempts, budget) with the host still failing.
    RetriesExhausted,
    /// The last attempt failed and repeating it is unsafe or impossible.
    NotRetried,
    /// A token could not be had or was rejected.
    Auth,
    /// The caller cancelled.
    Cancelled,
    /// The engine has no room for another host.
    Overloaded,
}

impl Failure {
    /// The kind, for error mapping.
    pub fn kind(&self) -> FailureKind {
        match self.why {
            Why::DeadlineExceeded | Why::DeadlineWouldPass => FailureKind::Timeout,
            Why::AttemptTimeout => FailureKind::Timeout,
            Why::BreakerOpen | Why::BreakerProbesBusy => FailureKind::Unavailable,
            Why::RetryAfterTooLong => FailureKind::RateLimited,
            Why::MaxAttempts | Why::BudgetExhausted => FailureKind::RetriesExhausted,
            Why::TokenFetchFailed | Why::TokenRejectedAgain => FailureKind::Auth,
            Why::Cancelled => FailureKind::Cancelled,
            Why::TooManyHosts => FailureKind::Overloaded,
            _ => FailureKind::NotRetried,
        }
    }

    /// Whether trying the whole call again later could succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self.why,
            Why::NotIdempotent
                | Why::BodyNotReplayable
                | Why::TokenRejectedAgain
                | Why::Cancelled
                | Why::NotRetryableStatus
        )
    }
}

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
}

impl EventKind {
    /// The reason the event carries, if it carries one.
    pub fn why(&self) -> Option<Why> {
        match self {
            EventKind::AttemptFinished { why, .. }
            | EventKind::RetryScheduled { why, .. }
            | EventKind::Waiting { why, .. }
            | EventKind::WaitingForToken { why, .. }
            | EventKind::HostHeld { why, .. }
            | EventKind::TokenFetchStarted { why } => Some(*why),
            EventKind::CallFailed { failure, .. } => Some(failure.why),
            EventKind::BreakerOpened { .. } => Some(Why::BreakerOpen),
            EventKind::BudgetExhausted { .. } => Some(Why::BudgetExhausted),
            EventKind::HintUnreadable { .. } => Some(Why::HintUnreadable),
            EventKind::TokenFetchFailed { .. } => Some(Why::TokenFetchFailed),
            EventKind::CallSucceeded { .. } => Some(Why::Success),
            _ => None,
        }
    }

    /// The call the event is about, if it is about one.
    pub fn call(&self) -> Option<CallId> {
        match self {
            EventKind::CallStarted { call, .. }
            | EventKind::AttemptStarted { call, .. }
            | EventKind::AttemptFinished { call, .. }
            | EventKind::RetryScheduled { call, .. }
            | EventKind::Waiting { call, .. }
            | EventKind::WaitingForToken { call, .. }
            | EventKind::HintUnreadable { call }
            | EventKind::BudgetExhausted { call, .. }
            | EventKind::CallSucceeded { call, .. }
            | EventKind::CallFailed { call, .. } => Some(*call),
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
        };
        match self.kind.why() {
            Some(why) if !matches!(self.kind, EventKind::CallSucceeded { .. }) => {
                format!("[{}] {what}: {}", self.at, why.explain())
            }
            _ => format!("[{}] {what}", self.at),
        }
    }
}

fn ser_duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
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

fn ser_instant_ms<S: serde::Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(t.as_nanos() as f64 / 1e6)
}

/// Running totals, for reports.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Logical calls started.
    pub calls: u64,
    /// Attempts sent.
    pub attempts: u64,
    /// Calls that ended with a response.
    pub succeeded: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Breaker trips.
    pub breaker_trips: u64,
    /// Calls failed fast by an open breaker.
    pub breaker_rejections: u64,
    /// Retries refused by the budget.
    pub budget_refusals: u64,
    /// Token fetches asked for.
    pub token_fetches: u64,
    /// Waits caused by the client or server rate limit.
    pub rate_limited_waits: u64,
    /// Events dropped because nobody drained the queue.
    pub events_dropped: u64,
}

/// One host's state, for UIs and reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostView {
    /// `scheme://authority`.
    pub host: Arc<str>,
    /// The breaker.
    pub breaker: BreakerState,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Retries the budget holds now.
    pub budget_available: f64,
    /// When the client limiter has its next free slot (none without a limiter).
    pub limiter_next_free: Option<Instant>,
    /// A server hold in force.
    pub held_until: Option<Instant>,
    /// Calls currently started and not finished.
    pub active_calls: u32,
}

struct Host {
    name: Arc<str>,
    breaker: Breaker,
    budget: Budget,
    limiter: Option<Gcra>,
    /// A limit learned from the host's headers lapses at this time unless the host repeats it.
    learned_until: Option<Instant>,
    hold_until: Instant,
    hold_why: Why,
    active: u32,
    last_used: Instant,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Ready,
    Waiting { until: Instant, reserved: bool },
    WaitingToken,
    InFlight { admit: Admit, token: Option<u32> },
}

struct Call {
    id: CallId,
    host: u32,
    method: Method,
    has_key: bool,
    key: Option<Uuid>,
    request_id: Uuid,
    replayable: bool,
    needs_token: bool,
    max_attempts: u32,
    started: Instant,
    deadline: Option<Instant>,
    attempts: u32,
    previous_delay: Option<Duration>,
    forced_refresh: bool,
    phase: Phase,
}

/// The decision engine. See the module docs for the driving loop.
pub struct Engine {
    config: Config,
    retry_statuses: StatusSet,
    backoff: Backoff,
    rng: Rng,
    hosts: Vec<Host>,
    host_index: HashMap<Arc<str>, u32>,
    last_host: u32,
    calls: Vec<Option<Call>>,
    free: Vec<u32>,
    next_seq: u32,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    token: Token,
    /// A token fetch put off by degenerate tokens (see [`FetchStart::NotUntil`]): when, and why.
    token_fetch_at: Option<(Instant, Why)>,
    stats: Stats,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("hosts", &self.hosts.len())
            .field("active_calls", &(self.calls.len() - self.free.len()))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with a validated config and a seed for its random choices. `now` is unused
    /// today but fixes the driver's origin in the signature, as every other entry point does.
    pub fn new(config: Config, seed: u64, now: Instant) -> Result<Engine, ConfigError> {
        let _ = now;
        config.validate()?;
        Ok(Engine {
            retry_statuses: StatusSet::from_list(&config.retry.retry_statuses),
            backoff: Backoff::new(&config.backoff),
            rng: Rng::seeded(seed),
            hosts: Vec::new(),
            host_index: HashMap::new(),
            last_host: 0,
            calls: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            timers: BinaryHeap::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            token: Token::new(&config.token),
            token_fetch_at: None,
            stats: Stats::default(),
            config,
        })
    }

    /// The config in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Running totals.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The token's state.
    pub fn token_view(&self) -> TokenView {
        self.token.view()
    }

    /// Every known host's state at `now`.
    pub fn hosts(&self, now: Instant) -> Vec<HostView> {
        self.hosts
            .iter()
            .map(|h| HostView {
                host: h.name.clone(),
                breaker: match h.breaker.current() {
                    BreakerState::Open { until } if now >= until => BreakerState::HalfOpen,
                    other => other,
                },
                consecutive_failures: h.breaker.consecutive_failures(),
                budget_available: h.budget.available(now),
                limiter_next_free: h.limiter.map(|l| l.next_free(now)),
                held_until: (h.hold_until > now).then_some(h.hold_until),
                active_calls: h.active,
            })
            .collect()
    }

    /// Number of calls started and not yet finished.
    pub fn active_calls(&self) -> usize {
        self.calls.len() - self.free.len()
    }

    /// Starts a logical call. Its first action (usually `Send`) is ready to poll.
    pub fn start(&mut self, spec: CallSpec<'_>, now: Instant) -> CallId {
        self.next_seq = self.next_seq.wrapping_add(1);
        let seq = self.next_seq;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.calls.push(None);
                (self.calls.len() - 1) as u32
            }
        };
        let id = CallId { slot, seq };
        self.stats.calls += 1;
        let key = match (spec.idempotency, spec.method.is_idempotent()) {
            (Idempotency::Auto, false) => Some(self.rng.uuid_v4()),
            _ => None,
        };
        let request_id = self.rng.uuid_v4();
        let deadline = spec
            .deadline
            .or(self.config.retry.deadline_ms.map(Duration::from_millis))
            .map(|d| now + d);
        let host = match self.host_for(spec.host, now) {
            Some(h) => h,
            None => {
                // No room: fail the call without touching any host.
                self.calls[slot as usize] = Some(Call {
                    id,
                    host: u32::MAX,
                    method: spec.method,
                    has_key: false,
                    key: None,
                    request_id,
                    replayable: spec.replayable,
                    needs_token: false,
                    max_attempts: 1,
                    started: now,
                    deadline,
                    attempts: 0,
                    previous_delay: None,
                    forced_refresh: false,
                    phase: Phase::Ready,
                });
                self.fail(slot, Why::TooManyHosts, None, None, Processed::Never, now);
                return id;
            }
        };
        let h = &mut self.hosts[host as usize];
        h.active += 1;
        h.budget.deposit(now);
        let host_name = h.name.clone();
        self.calls[slot as usize] = Some(Call {
            id,
            host,
            method: spec.method,
            has_key: key.is_some() || spec.idempotency == Idempotency::Provided,
            key,
            request_id,
            replayable: spec.replayable,
            needs_token: spec.needs_token,
            max_attempts: spec
                .max_attempts
                .unwrap_or(self.config.retry.max_attempts)
                .max(1),
            started: now,
            deadline,
            attempts: 0,
            previous_delay: None,
            forced_refresh: false,
            phase: Phase::Ready,
        });
        self.event(
            now,
            EventKind::CallStarted {
                call: id,
                host: host_name,
                method: spec.method,
            },
        );
        self.advance(slot, now);
        id
    }

    /// Reports how the attempt in flight for `call` ended. Stale ids are ignored.
    pub fn handle(&mut self, call: CallId, outcome: Outcome<'_>, now: Instant) {
        let Some(slot) = self.live(call) else { return };
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        let Phase::InFlight { admit, token } = c.phase else {
            return;
        };
        c.phase = Phase::Ready;
        let attempt = c.attempts;
        let host = c.host as usize;

        let (class, last) = match outcome {
            Outcome::Response(r) => (
                classify_status(r.status, &self.retry_statuses),
                Last::Status(r.status),
            ),
            Outcome::Transport(e) => (classify_transport(e), Last::Transport(e)),
        };
        self.event(
            now,
            EventKind::AttemptFinished {
                call,
                attempt,
                result: last,
                why: class.why,
            },
        );
        let transition = self.hosts[host].breaker.record(
            &self.config.breaker,
            admit,
            class.breaker_failure,
            now,
        );
        self.breaker_event(host, transition, now);

        // Server hints: they hold the whole host, so concurrent calls do not walk into the
        // same 429.
        let mut retry_after = None;
        if let Outcome::Response(r) = outcome {
            retry_after = self.read_hints(slot, host, &r, &class, now);
        }

        let status = match last {
            Last::Status(s) => Some(s),
            Last::Transport(_) => None,
        };
        if status == Some(401) {
            if let Some(generation) = token {
                self.on_unauthorized(slot, generation, now);
                return;
            }
        }
        if class.success || (!class.retryable && status.is_some()) {
            self.done(slot, status.unwrap_or(0), now);
            return;
        }
        self.retry_or_fail(slot, class, last, retry_after, now);
    }

    /// Fails the call at once (the caller gave up on it). Stale ids are ignored.
    pub fn cancel(&mut self, call: CallId, now: Instant) {
        let Some(slot) = self.live(call) else { return };
        self.fail(slot, Why::Cancelled, None, None, Processed::Maybe, now);
    }

    /// Fires every timer due at `now`. Early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, why)) = self.token_fetch_at.filter(|(at, _)| *at <= now) {
            self.token_fetch_at = None;
            // A put-off fetch starts only if a call still waits for it; an early refresh that
            // nobody waits for is asked for again by the next call that uses the token.
            let waited_for = self
                .calls
                .iter()
                .flatten()
                .any(|c| c.phase == Phase::WaitingToken);
            if waited_for {
                self.fetch_token(why, now);
            }
        }
        while let Some(&Reverse((at, slot, seq))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.calls.get(slot as usize).and_then(Option::as_ref) else {
                continue;
            };
            if c.id.seq != seq {
                continue;
            }
            match c.phase {
                Phase::Waiting { until, .. } if until <= now => self.advance(slot, now),
                Phase::WaitingToken if c.deadline.is_some_and(|d| d <= now) => {
                    self.fail(
                        slot,
                        Why::DeadlineExceeded,
                        None,
                        None,
                        Processed::Never,
                        now,
                    );
                }
                _ => {}
            }
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for logs and UIs.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Engine::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let call = self.timers.peek().map(|Reverse((at, _, _))| *at);
        let token = self.token_fetch_at.map(|(at, _)| at);
        match (call, token) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A token fetch asked for by [`Action::FetchToken`] succeeded. `expires_in` is its
    /// lifetime from `now` (OAuth2 `expires_in`), `None` if unknown.
    pub fn token_fetched(&mut self, expires_in: Option<Duration>, now: Instant) -> u32 {
        let generation = self.token.fetched(expires_in, now);
        self.event(
            now,
            EventKind::TokenRefreshed {
                generation,
                expires_in,
            },
        );
        self.wake_token_waiters(now, None);
        generation
    }

    /// Like [`Engine::token_fetched`] with an absolute expiry on the wall clock (a JWT `exp`).
    pub fn token_fetched_until(
        &mut self,
        expires_at: UnixTime,
        wall: UnixTime,
        now: Instant,
    ) -> u32 {
        self.token_fetched(Some(wall.until(expires_at)), now)
    }

    /// A token fetch failed: every call waiting for a token fails with an auth error.
    pub fn token_failed(&mut self, now: Instant) {
        self.token.fetch_failed();
        let failed = self.wake_token_waiters(now, Some(Why::TokenFetchFailed));
        self.event(
            now,
            EventKind::TokenFetchFailed {
                calls_failed: failed,
            },
        );
    }

    fn wake_token_waiters(&mut self, now: Instant, fail: Option<Why>) -> u32 {
        let mut n = 0;
        for slot in 0..self.calls.len() as u32 {
            let waiting = matches!(self.calls[slot as usize].as_ref(), Some(c) if c.phase == Phase::WaitingToken);
            if !waiting {
                continue;
            }
            n += 1;
            match fail {
                Some(why) => self.fail(slot, why, None, None, Processed::Never, now),
                None => {
                    if let Some(c) = self.calls[slot as usize].as_mut() {
                        c.phase = Phase::Ready;
                    }
                    self.advance(slot, now);
                }
            }
        }
        n
    }

    // --- internals -------------------------------------------------------------------------

    fn live(&self, id: CallId) -> Option<u32> {
        match self.calls.get(id.slot as usize) {
            Some(Some(c)) if c.id == id => Some(id.slot),
            _ => None,
        }
    }

    #[inline(always)]
    fn event(&mut self, at: Instant, kind: EventKind) {
        if self.events.len() >= self.config.max_queued_events as usize {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(Event { at, kind });
    }

    fn host_for(&mut self, name: &str, now: Instant) -> Option<u32> {
        // Most clients talk to one host: try the last one before hashing.
        if let Some(h) = self.hosts.get_mut(self.last_host as usize) {
            if &*h.name == name {
                h.last_used = now;
                return Some(self.last_host);
            }
        }
        if let Some(&i) = self.host_index.get(name) {
            self.last_host = i;
            self.hosts[i as usize].last_used = now;
            return Some(i);
        }
        let fresh = Host {
            name: Arc::from(name),
            breaker: Breaker::new(),
            budget: Budget::new(&self.config.budget),
            limiter: self.config.limit.as_ref().map(Gcra::new),
            learned_until: None,
            hold_until: Instant::ZERO,
            hold_why: Why::ServerRetryAfterHold,
            active: 0,
            last_used: now,
        };
        let index = if self.hosts.len() < self.config.max_hosts as usize {
            self.hosts.push(fresh);
            (self.hosts.len() - 1) as u32
        } else {
            // Forget the least recently used idle host.
            let (i, _) = self
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| h.active == 0)
                .min_by_key(|(_, h)| h.last_used)?;
            self.host_index.remove(&self.hosts[i].name);
            self.hosts[i] = fresh;
            i as u32
        };
        self.host_index
            .insert(self.hosts[index as usize].name.clone(), index);
        self.last_host = index;
        Some(index)
    }

    fn breaker_event(&mut self, host: usize, transition: Option<Transition>, now: Instant) {
        let Some(t) = transition else { return };
        let name = self.hosts[host].name.clone();
        let kind = match t {
            Transition::Opened { until, trips } => {
                self.stats.breaker_trips += 1;
                EventKind::BreakerOpened {
                    host: name,
                    until,
                    trips,
                }
            }
            Transition::HalfOpened => EventKind::BreakerHalfOpen { host: name },
            Transition::Closed => EventKind::BreakerClosed { host: name },
        };
        self.event(now, kind);
    }

    fn schedule(&mut self, slot: u32, until: Instant, reserved: bool) {
        if let Some(c) = self.calls[slot as usize].as_mut() {
            c.phase = Phase::Waiting { until, reserved };
            self.timers.push(Reverse((until, slot, c.id.seq)));
        }
    }

    /// Moves a ready (or woken) call as far as it can go: fail, wait, or send.
    fn advance(&mut self, slot: u32, now: Instant) {
        let Some(c) = self.calls[slot as usize].as_ref() else {
            return;
        };
        let (id, host, deadline, needs_token) = (c.id, c.host as usize, c.deadline, c.needs_token);
        let reserved = matches!(c.phase, Phase::Waiting { reserved: true, .. });
        if deadline.is_some_and(|d| now >= d) {
            self.fail(
                slot,
                Why::DeadlineExceeded,
                None,
                None,
                Processed::Never,
                now,
            );
            return;
        }
        let past_deadline = |t: Instant| deadline.is_some_and(|d| t >= d);

        // 1. The breaker: fail fast while open.
        if let Err(refusal) = self.hosts[host].breaker.peek(&self.config.breaker, now) {
            self.refuse(slot, refusal, now);
            return;
        }
        // 2. A server hold on the host. Waiters wake spread over a slice of their wait after
        // the hold ends, so the host is not met by all of them in one instant.
        let h = &self.hosts[host];
        if h.hold_until > now {
            let (hold, why) = (h.hold_until, h.hold_why);
            let spread = duration_nanos(hold - now) as f64 * self.config.retry.hold_spread;
            let until = hold + Duration::from_nanos(self.rng.below(spread as u64));
            if past_deadline(until) {
                self.fail(
                    slot,
                    Why::DeadlineWouldPass,
                    None,
                    Some(until),
                    Processed::Never,
                    now,
                );
                return;
            }
            self.stats.rate_limited_waits += 1;
            self.event(
                now,
                EventKind::Waiting {
                    call: id,
                    until,
                    why,
                },
            );
            self.schedule(slot, until, false);
            return;
        }
        // 3. The token.
        let mut token = None;
        if needs_token {
            match self.token.status(now) {
                TokenStatus::Usable {
                    generation,
                    refresh,
                } => {
                    token = Some(generation);
                    if refresh {
                        self.fetch_token(Why::TokenExpiring, now);
                    }
                }
                TokenStatus::Wait(why) => {
                    self.fetch_token(why, now);
                    if let Some(c) = self.calls[slot as usize].as_mut() {
                        c.phase = Phase::WaitingToken;
                    }
                    if let Some(d) = deadline {
                        self.timers.push(Reverse((d, slot, id.seq)));
                    }
                    self.event(now, EventKind::WaitingForToken { call: id, why });
                    return;
                }
            }
        }
        // 4. The client-side rate limit: book a slot and wait for it.
        self.lapse_learned_limit(host, now);
        if !reserved {
            if let Some(limiter) = self.hosts[host].limiter.as_mut() {
                if let Err(not_until) = limiter.peek(now) {
                    if past_deadline(not_until.at) {
                        self.fail(
                            slot,
                            Why::DeadlineWouldPass,
                            None,
                            Some(not_until.at),
                            Processed::Never,
                            now,
                        );
                        return;
                    }
                }
                let at = limiter.reserve(now);
                if at > now {
                    self.stats.rate_limited_waits += 1;
                    self.event(
                        now,
                        EventKind::Waiting {
                            call: id,
                            until: at,
                            why: Why::ClientRateLimit,
                        },
                    );
                    self.schedule(slot, at, true);
                    return;
                }
            }
        }
        // 5. Admission (takes a half-open probe slot) and send.
        let (admitted, transition) = self.hosts[host].breaker.admit(&self.config.breaker, now);
        self.breaker_event(host, transition, now);
        let admit = match admitted {
            Ok(a) => a,
            Err(refusal) => {
                self.refuse(slot, refusal, now);
                return;
            }
        };
        let attempt_timeout = self
            .config
            .retry
            .attempt_timeout_ms
            .map(Duration::from_millis);
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        c.attempts += 1;
        c.phase = Phase::InFlight { admit, token };
        let left = deadline.map(|d| d - now);
        let timeout = match (attempt_timeout, left) {
            (Some(a), Some(l)) => Some(a.min(l)),
            (a, l) => a.or(l),
        };
        let action = Action::Send {
            call: id,
            attempt: c.attempts,
            timeout,
            idempotency_key: c.key,
            request_id: c.request_id,
            token,
        };
        let attempt = c.attempts;
        self.stats.attempts += 1;
        self.event(
            now,
            EventKind::AttemptStarted {
                call: id,
                attempt,
                timeout,
                probe: matches!(admit, Admit::Probe(_)),
            },
        );
        self.actions.push_back(action);
    }

    fn refuse(&mut self, slot: u32, refusal: Refusal, now: Instant) {
        self.stats.breaker_rejections += 1;
        let (why, at) = match refusal {
            Refusal::Open(until) => (Why::BreakerOpen, Some(until)),
            Refusal::ProbesBusy => (Why::BreakerProbesBusy, None),
        };
        self.fail(slot, why, None, at, Processed::Never, now);
    }

    fn fetch_token(&mut self, why: Why, now: Instant) {
        match self.token.begin_fetch(now) {
            FetchStart::Start => {
                self.token_fetch_at = None;
                self.stats.token_fetches += 1;
                self.event(now, EventKind::TokenFetchStarted { why });
                self.actions.push_back(Action::FetchToken { why });
            }
            FetchStart::InFlight => {}
            // Degenerate tokens put the fetch off; `handle_timeout` starts it then, and the
            // calls waiting for a token are woken when it arrives.
            FetchStart::NotUntil(at) => {
                if self.token_fetch_at.is_none_or(|(t, _)| at < t) {
                    self.token_fetch_at = Some((at, why));
                }
            }
        }
    }

    fn read_hints(
        &mut self,
        slot: u32,
        host: usize,
        r: &Response<'_>,
        class: &Class,
        now: Instant,
    ) -> Option<Duration> {
        let mut retry_after = None;
        if self.config.retry.respect_retry_after && !class.success {
            retry_after = r
                .headers
                .get("retry-after")
                .and_then(|v| parse_retry_after(v, r.wall));
        }
        let cap = Duration::from_millis(self.config.retry.max_retry_after_ms);
        if let Some(ra) = retry_after {
            if (r.status == 429 || r.status == 503) && ra > Duration::ZERO && ra <= cap {
                self.hold(host, now + ra, Why::ServerRetryAfterHold, now);
            }
        }
        let hint = parse_ratelimit(r.headers, r.wall);
        if let Some(hint) = hint {
            if self.config.learn_limits {
                self.learn_limit(host, &hint, now);
            }
            if retry_after.is_none() && hint.remaining == Some(0) {
                if let Some(reset) = hint.reset.filter(|d| *d > Duration::ZERO) {
                    self.hold(host, now + reset.min(cap), Why::ServerQuotaHold, now);
                }
            }
        } else if retry_after.is_none()
            && r.hints_may_be_hidden
            && (r.status == 429 || r.status == 503)
        {
            if let Some(id) = self.calls[slot as usize].as_ref().map(|c| c.id) {
                self.event(now, EventKind::HintUnreadable { call: id });
            }
        }
        retry_after
    }

    /// A learned limit holds while the host keeps sending it: two windows (at least 1 s) past
    /// the last hint, then the configured limit (or none) applies again.
    fn lapse_learned_limit(&mut self, host: usize, now: Instant) {
        let h = &mut self.hosts[host];
        if h.learned_until.is_some_and(|t| now >= t) {
            h.learned_until = None;
            h.limiter = match (&h.limiter, &self.config.limit) {
                (Some(g), Some(configured)) => Some(g.retuned(configured)),
                (None, Some(configured)) => Some(Gcra::new(configured)),
                (_, None) => None,
            };
        }
    }

    fn learn_limit(&mut self, host: usize, hint: &RateLimitHint, now: Instant) {
        let h = &mut self.hosts[host];
        if let (Some(quota), Some(window)) = (hint.limit, hint.window) {
            if quota > 0 && !window.is_zero() {
                if h.learned_until.is_some() {
                    h.learned_until = Some(now + (window * 2).max(Duration::from_secs(1)));
                }
                let per_second = quota as f64 / window.as_secs_f64();
                let looser = h
                    .limiter
                    .as_ref()
                    .is_none_or(|g| g.per_second() > per_second * 1.001);
                if looser && (0.001..=1e9).contains(&per_second) {
                    let learned = LimitConfig {
                        per_second,
                        burst: u32::try_from(quota).unwrap_or(u32::MAX),
                    };
                    h.limiter = Some(match &h.limiter {
                        Some(g) => g.retuned(&learned),
                        None => Gcra::new(&learned),
                    });
                    h.learned_until = Some(now + (window * 2).max(Duration::from_secs(1)));
                    let name = h.name.clone();
                    let burst = learned.burst.into();
                    self.event(
                        now,
                        EventKind::LimitLearned {
                            host: name,
                            per_second,
                            burst,
                        },
                    );
                }
            }
        }
        if let (Some(remaining), Some(g)) = (hint.remaining, self.hosts[host].limiter.as_mut()) {
            g.tighten(now, remaining, hint.reset);
        }
    }

    fn hold(&mut self, host: usize, until: Instant, why: Why, now: Instant) {
        let h = &mut self.hosts[host];
        if until > h.hold_until {
            h.hold_until = until;
            h.hold_why = why;
            let name = h.name.clone();
            self.event(
                now,
                EventKind::HostHeld {
                    host: name,
                    until,
                    why,
                },
            );
        }
    }

    fn on_unauthorized(&mut self, slot: u32, generation: u32, now: Instant) {
        let Some(c) = self.calls[slot as usize].as_mut() else {
            return;
        };
        if !self.config.token.refresh_on_401 || c.attempts >= c.max_attempts {
            self.done(slot, 401, now);
            return;
        }
        if c.forced_refresh {
            let last = Some(Last::Status(401));
            self.fail(
                slot,
                Why::TokenRejectedAgain,
                last,
                None,
                Processed::Yes,
                now,
            );
            return;
        }
        let replayable = c.replayable;
        c.forced_refresh = true;
        c.phase = Phase::Ready;
        if self.token.reject(generation) {
            self.fetch_token(Why::TokenRejected, now);
        }
        if replayable {
            self.advance(slot, now);
        } else {
            // The token is refreshed for the calls that follow, but this body cannot be sent
            // again: the 401 is this call's answer.
            self.done(slot, 401, now);
        }
    }

    fn retry_or_fail(
        &mut self,
        slot: u32,
        class: Class,
        last: Last,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let Some(c) = self.calls[slot as usize].as_ref() else {
            return;
        };
        let (host, attempts) = (c.host as usize, c.attempts);
        let fail_why = if !c.replayable {
            Some(Why::BodyNotReplayable)
        } else if class.processed != Processed::Never && !c.method.is_idempotent() && !c.has_key {
            Some(Why::NotIdempotent)
        } else if attempts >= c.max_attempts {
            Some(Why::MaxAttempts)
        } else if retry_after
            .is_some_and(|ra| ra > Duration::from_millis(self.config.retry.max_retry_after_ms))
        {
            Some(Why::RetryAfterTooLong)
        } else {
            None
        };
        if let Some(why) = fail_why {
            self.fail(slot, why, Some(last), None, class.processed, now);
            return;
        }
        let (delay, why) = match retry_after {
            Some(ra) => (ra, Why::RetryAfterHeader),
            None => (
                self.backoff
                    .delay(attempts - 1, c.previous_delay, &mut self.rng),
                Why::Backoff,
            ),
        };
        let at = now + delay;
        if c.deadline.is_some_and(|d| at >= d) {
            self.fail(
                slot,
                Why::DeadlineWouldPass,
                Some(last),
                None,
                class.processed,
                now,
            );
            return;
        }
        // A breaker that will still be open when the retry wakes would only fail it then.
        if let Err(Refusal::Open(until)) = self.hosts[host].breaker.peek(&self.config.breaker, at) {
            self.stats.breaker_rejections += 1;
            self.fail(
                slot,
                Why::BreakerOpen,
                Some(last),
                Some(until),
                class.processed,
                now,
            );
            return;
        }
        // A 429 with Retry-After is a healthy server pacing its clients (and the whole host is
        // held until then): that retry costs no budget. Every other retry does, a 503 with
        // Retry-After included, so an outage is never multiplied whatever its headers say.
        let paced_by_server = why == Why::RetryAfterHeader && class.why == Why::TooManyRequests;
        if !paced_by_server && !self.hosts[host].budget.try_withdraw(now) {
            self.stats.budget_refusals += 1;
            let (name, id) = (self.hosts[host].name.clone(), c.id);
            self.event(
                now,
                EventKind::BudgetExhausted {
                    host: name,
                    call: id,
                },
            );
            self.fail(
                slot,
                Why::BudgetExhausted,
                Some(last),
                None,
                class.processed,
                now,
            );
            return;
        }
        let id = c.id;
        if let Some(c) = self.calls[slot as usize].as_mut() {
            c.previous_delay = Some(delay);
        }
        self.stats.retries += 1;
        self.event(
            now,
            EventKind::RetryScheduled {
                call: id,
                attempt: attempts + 1,
                delay,
                why,
            },
        );
        self.schedule(slot, at, false);
    }

    fn finish(&mut self, slot: u32) -> Option<Call> {
        let call = self.calls[slot as usize].take()?;
        self.free.push(slot);
        if let Some(h) = self.hosts.get_mut(call.host as usize) {
            h.active = h.active.saturating_sub(1);
            if let Phase::InFlight {
                admit: Admit::Probe(_),
                ..
            } = call.phase
            {
                h.breaker.release_probe();
            }
        }
        Some(call)
    }

    fn done(&mut self, slot: u32, status: u16, now: Instant) {
        let Some(call) = self.finish(slot) else {
            return;
        };
        self.stats.succeeded += 1;
        self.event(
            now,
            EventKind::CallSucceeded {
                call: call.id,
                status,
                attempts: call.attempts,
                elapsed: now - call.started,
            },
        );
        self.actions.push_back(Action::Done {
            call: call.id,
            status,
            attempts: call.attempts,
        });
    }

    fn fail(
        &mut self,
        slot: u32,
        why: Why,
        last: Option<Last>,
        retry_at: Option<Instant>,
        processed: Processed,
        now: Instant,
    ) {
        let Some(call) = self.finish(slot) else {
            return;
        };
        self.stats.failed += 1;
        let processed = if call.attempts == 0 {
            Processed::Never
        } else {
            processed
        };
        let failure = Failure {
            why,
            attempts: call.attempts,
            last,
            retry_at,
            processed,
        };
        self.event(
            now,
            EventKind::CallFailed {
                call: call.id,
                failure,
                elapsed: now - call.started,
            },
        );
        self.actions.push_back(Action::Fail {
            call: call.id,
            failure,
        });
    }
}
