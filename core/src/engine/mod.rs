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
//!             // Do the HTTP request, adding `headers`; here a scripted server answers at once.
//!             Action::Send { call, attempt, .. } => {
//!                 let status = statuses.next().unwrap();
//!                 let response = Response::new(status, &NoHeaders, UnixTime::EPOCH);
//!                 engine.handle_attempt(call, attempt, Outcome::Response(response), now);
//!             }
//!             Action::Done { status, attempts, .. } => {
//!                 assert_eq!((status, attempts), (200, 2));
//!                 return;
//!             }
//!             other => panic!("unexpected {other:?}"),
//!         }
//!     }
//!     engine.drain_events(|event| println!("{}", serde_json::to_string(event).unwrap()));
//!     // Sleep until the engine's next deadline (a retry's backoff here).
//!     now = engine.poll_timeout().expect("a retry is scheduled");
//!     engine.handle_timeout(now);
//! }
//! ```
//!
//! # The methods, grouped
//! - **Inputs** (each takes `now`; each only queues actions and events):
//!   [`Engine::start`], [`Engine::handle_attempt`] (or [`Engine::handle`] for the oldest
//!   attempt in flight; with hedging a call may have several), [`Engine::cancel`],
//!   [`Engine::token_fetched`], [`Engine::token_failed`], [`Engine::handle_timeout`]; a
//!   download's body: [`Engine::resume`], [`Engine::body_read`]; breakers
//!   by hand: [`Engine::hold_breaker`], [`Engine::release_breaker`], [`Engine::reset_breaker`],
//!   [`Engine::import_breakers`]; in fleet mode [`Engine::handle_reservation`] (the store's
//!   answer to an [`Action::Reserve`]).
//! - **Polls** (`#[must_use]`; drain after every input, in this order): the actions
//!   ([`Engine::drain_actions`], or [`Engine::poll_action`] until `None` to own them), the events ([`Engine::drain_events`], or [`Engine::poll_event`] until
//!   `None` to own them), then [`Engine::poll_timeout`] to know
//!   when to call [`Engine::handle_timeout`]. `poll_timeout` is exact: it reports only a
//!   deadline something waits for.
//! - **Views**: [`Engine::stats`], [`Engine::hosts`], [`Engine::token_view`],
//!   [`Engine::active_calls`], [`Engine::config`], [`Engine::export_breakers`].
//!
//! # Where each decision lives
//! | file | decides |
//! |---|---|
//! | `admit.rs` | before a send: deadline, breaker, server hold, token, concurrency, rate limit |
//! | `attempt.rs` | after a send: what an outcome means; attempt deadlines; 401; pool recycling |
//! | `straight.rs` | the common outcome straight: a success on a call's only attempt, nothing configured reading it |
//! | `retry.rs` | retry now, after a wait, or give up ([`retry::decide`], a pure function) |
//! | `hedge.rs` | another attempt of a slow idempotent read beside the first; the losers' abort |
//! | `flight.rs` | the attempts of one call out at once |
//! | `host.rs` | the host table; holds and limits learned from the server's hints |
//! | `adaptive.rs` | the adaptive client rate and adaptive concurrency limit per host |
//! | `aws.rs` | under the `aws` config section: AWS's retry delay, `x-amz-retry-after`, the long poll's wait |
//! | `resumed.rs` | a download: the call stays open while its body is read; a break is its next attempt ([`Engine::resume`]) |
//! | `timer.rs` | the exact timer queue behind `poll_timeout` |
//! | `queue.rs` | the queues behind `poll_action`/`drain_actions` and `poll_event`/`drain_events` |
//! | `fallback.rs` | whether a failing call answers with its fallback instead, and which |
//! | `predicate.rs` | what the caller's retry predicate may change (only ever narrowing) |
//! | `control.rs` | breakers by hand: hold, release, reset, export, import |
//! | `shared.rs` | fleet mode: the store's reservation instead of the local limiter; fallback |
//! | `failure.rs`, `event.rs`, `action.rs`, `outcome.rs`, `call.rs`, `view.rs` | the types |

mod action;
mod adaptive;
mod admit;
mod attempt;
mod aws;
mod call;
mod control;
mod event;
mod failure;
pub mod fallback;
mod flight;
mod hedge;
mod host;
mod outcome;
pub mod predicate;
mod queue;
mod resumed;
pub mod retry;
mod shared;
mod straight;
mod timer;
mod view;

use core::time::Duration;
use std::sync::Arc;

pub use action::{Action, AttemptHeaders, IDEMPOTENCY_KEY_HEADER, REQUEST_ID_HEADER};
pub use call::{Authorization, CallEnd, CallId, CallSpec, Idempotency, IdempotencyKey};
pub use control::ControlError;
pub use event::{ClientEvent, Event, EventKind};
pub use failure::{Detail, Failure, FailureKind, Hint};
pub use fallback::{FallbackSpec, FallbackStore, FallbackUsed, FallbackWrites};
pub use outcome::{Last, Outcome, Problem, Response};
pub use predicate::{Attempted, Predicate, RetryPredicate, RetryVerdict, Seen};
pub use resumed::NotStreaming;
pub use view::{AdaptiveRateView, HostView, Stats};

use crate::backoff::Backoff;
use crate::breaker::BreakerState;
use crate::classify::{classify_status, Processed, StatusSet};
use crate::config::{Config, ConfigError, RequestIds};
use crate::map::SortedMap;
use crate::rng::Rng;
use crate::slots::Slots;
use crate::time::{Instant, UnixTime};
use crate::token::{Token, TokenView};
use crate::why::Why;
use call::{Call, Ended, Phase};
use host::Host;
use queue::{Pushed, Queue};
use timer::{TimerKey, TimerQueue};

/// The decision engine. See the module docs for the driving loop and the method groups.
pub struct Engine {
    config: Config,
    retry_statuses: StatusSet,
    backoff: Backoff,
    rng: Rng,
    hosts: Slots<Host>,
    host_index: SortedMap<Arc<str>, u32>,
    last_host: u32,
    calls: Slots<Option<Call>>,
    free: Vec<u32>,
    next_seq: u32,
    timers: TimerQueue,
    /// Hosts with calls waiting for a concurrency slot (each host's own queue is
    /// `Host::queued`); served first come first served across hosts.
    queued_hosts: Vec<u32>,
    /// The next place in the engine-wide order of queued calls.
    queue_seq: u64,
    /// Attempts in flight, all hosts.
    in_flight: u32,
    /// The failures of the calls in [`Phase::Failing`], which they end with when it is over.
    failing: SortedMap<CallId, Failure>,
    /// The config's `retry.deadline_ms` in nanoseconds, worked out once (a call's deadline
    /// is `now` plus it, unless the call brings its own).
    deadline_nanos: Option<u64>,
    /// The config's `retry.max_retry_after_ms` ([`Engine::retry_after_cap`]).
    retry_after_cap: Duration,
    /// The config's `retry.attempt_timeout_ms`, worked out once.
    attempt_timeout: Option<Duration>,
    /// Nothing on any host learns from a success ([`host::hosts_read_no_success`]).
    plain_hosts: bool,
    /// The hedges' slots of hedged calls, and those given back by ended ones.
    hedge_slots: flight::HedgeSlots,
    /// The retry predicates of the calls that have one ([`Call::predicate`]), by slot.
    predicates: Vec<Option<Predicate>>,
    actions: Queue<Action>,
    events: Queue<Event>,
    token: Token,
    /// A token fetch put off because the last ones returned tokens that expired at once.
    token_fetch_at: Option<(Instant, Why)>,
    stats: Stats,
    /// Fleet mode's state (`config.fleet`).
    fleet: Option<shared::Fleet>,
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
            hosts: Slots::new(),
            host_index: SortedMap::new(),
            last_host: 0,
            calls: Slots::new(),
            free: Vec::new(),
            next_seq: 0,
            timers: TimerQueue::default(),
            queued_hosts: Vec::new(),
            queue_seq: 0,
            in_flight: 0,
            plain_hosts: host::hosts_read_no_success(&config),
            deadline_nanos: config
                .retry
                .deadline_ms
                .map(|ms| crate::time::duration_nanos(Duration::from_millis(ms))),
            attempt_timeout: config.retry.attempt_timeout_ms.map(Duration::from_millis),
            retry_after_cap: Duration::from_millis(config.retry.max_retry_after_ms),
            hedge_slots: Default::default(),
            predicates: Vec::new(),
            failing: SortedMap::new(),
            actions: Queue::default(),
            events: Queue::bounded(config.max_queued_events as usize),
            token: Token::new(&config.token),
            token_fetch_at: None,
            stats: Stats::default(),
            fleet: config.fleet.clone().map(shared::Fleet::new),
            config,
        })
    }

    // --- views ---------------------------------------------------------------------------

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

    /// Whether the engine would retry this status (the configured retry statuses), for
    /// adapters that describe a final status to their caller.
    pub fn is_retryable_status(&self, status: u16) -> bool {
        classify_status(status, &self.retry_statuses).retryable
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
                in_flight: h.in_flight,
                breaker_hold: h.breaker.hold_kind(),
                adaptive_rate: h.adaptive.rate().map(AdaptiveRateView::of),
                concurrency_limit: h.adaptive.concurrency_limit(),
                retry_quota: h.quota.as_ref().map(|q| q.available()),
                retry_throttle_milli: h.throttle.as_ref().map(|t| t.tokens_milli()),
            })
            .collect()
    }

    /// Number of calls started and not yet finished.
    pub fn active_calls(&self) -> usize {
        self.calls.len() - self.free.len()
    }

    // --- inputs --------------------------------------------------------------------------

    /// Starts a logical call. Its first action (usually `Send`) is ready to poll.
    pub fn start(&mut self, spec: CallSpec<'_>, now: Instant) -> CallId {
        let (id, slot) = self.open_call(spec, now);
        if let Some(slot) = slot {
            // Every logical call earns its host's budget a share of a retry (a resumed call
            // does not: it continues one).
            let host = self.calls[slot as usize].as_ref().map(|c| c.host as usize);
            if let Some(h) = host.and_then(|h| self.hosts.get_mut(h)) {
                h.budget.deposit(now);
            }
            self.advance(slot, now);
        }
        self.settle(now);
        id
    }

    /// Makes a call's state and announces it; its slot, unless it already failed (no room
    /// for its host). The caller decides its first step.
    fn open_call(&mut self, spec: CallSpec<'_>, now: Instant) -> (CallId, Option<u32>) {
        self.next_seq = self.next_seq.wrapping_add(1);
        let seq = self.next_seq;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.calls.push(None);
                self.predicates.push(None);
                (self.calls.len() - 1) as u32
            }
        };
        let id = CallId { slot, seq };
        self.stats.calls += 1;
        let key = match (spec.idempotency, spec.method.is_idempotent()) {
            (Idempotency::Auto, false) => Some(self.rng.uuid_v4()),
            _ => None,
        };
        let request_id = match self.config.request_id {
            RequestIds::Generate => Some(self.rng.uuid_v4()),
            RequestIds::Off => None,
        };
        let deadline = match spec.deadline {
            Some(d) => Some(now + d),
            None => self.deadline_nanos.map(|d| now.saturating_add_nanos(d)),
        };
        let authorization = spec.effective_authorization();
        if let (Some(p), Some(kept)) = (&spec.predicate, self.predicates.get_mut(slot as usize)) {
            *kept = Some(p.clone());
        }
        let host = self.host_for(spec.host, now);
        // Built in its slot, not moved there: a call's state is a few hundred bytes.
        self.calls[slot as usize] = Some(Call {
            id,
            host: host.unwrap_or(u32::MAX),
            method: spec.method,
            has_key: key.is_some() || spec.idempotency == Idempotency::Provided,
            key,
            request_id,
            replayable: spec.replayable,
            authorization,
            max_attempts: spec
                .max_attempts
                .unwrap_or(self.config.retry.max_attempts)
                .max(1),
            started: now,
            deadline,
            attempts: 0,
            previous_delay: None,
            forced_refresh: false,
            throttled: false,
            refusal_resent: false,
            quota_hold: Default::default(),
            phase: Phase::Ready,
            flights: Default::default(),
            hedge: Default::default(),
            fleet: Default::default(),
            timer: Default::default(),
            fallback: spec.fallback,
            predicate: spec.predicate.is_some(),
            ends: spec.ends,
            straight: self.plain_hosts & spec.predicate.is_none() & (spec.ends == CallEnd::AtHead),
        });
        let Some(host) = host else {
            // No room: fail the call without touching any host.
            self.fail_why(slot, Why::TooManyHosts, Processed::Never, now);
            return (id, None);
        };
        let h = &mut self.hosts[host as usize];
        h.active += 1;
        let host_name = h.name.clone();
        self.event(
            now,
            EventKind::CallStarted {
                call: id,
                host: host_name,
                method: spec.method,
            },
        );
        (id, Some(slot))
    }

    /// Reports how attempt `attempt` of `call` ended. Outcomes of an attempt the engine has
    /// already timed out (or of a call that ended) are ignored, so a late answer can never be
    /// taken for a later attempt's.
    pub fn handle_attempt(
        &mut self,
        call: CallId,
        attempt: u32,
        outcome: Outcome<'_>,
        now: Instant,
    ) {
        let Some(slot) = self.live(call) else { return };
        self.outcome(slot, Some(attempt), outcome, now);
        self.settle(now);
    }

    /// Reports how the oldest attempt in flight for `call` ended (see
    /// [`Engine::handle_attempt`], which names the attempt meant: with hedging several may be
    /// out). Stale ids are ignored.
    pub fn handle(&mut self, call: CallId, outcome: Outcome<'_>, now: Instant) {
        let Some(slot) = self.live(call) else { return };
        self.outcome(slot, None, outcome, now);
        self.settle(now);
    }

    /// Fails the call at once (the caller gave up on it). What it held is returned: a booked
    /// rate-limit slot, a half-open probe, a concurrency slot. Stale ids are ignored.
    pub fn cancel(&mut self, call: CallId, now: Instant) {
        let Some(slot) = self.live(call) else { return };
        self.fail_why(slot, Why::Cancelled, Processed::Maybe, now);
        self.settle(now);
    }

    /// Fires every deadline due at `now`. Early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, why)) = self.token_fetch_at.filter(|(at, _)| *at <= now) {
            self.token_fetch_at = None;
            let waited_for = self
                .calls
                .iter()
                .flatten()
                .any(|c| matches!(c.phase, Phase::WaitingToken));
            if waited_for {
                self.fetch_token(why, now);
            }
        }
        while let Some((_, key)) = self.timers.pop_due(now, timer_live(&self.calls)) {
            let Some(c) = self
                .calls
                .get_mut(key.slot() as usize)
                .and_then(Option::as_mut)
            else {
                continue;
            };
            let (slot, id) = (key.slot(), c.id);
            self.timers.fired(&mut c.timer);
            let past_deadline = c.deadline.is_some_and(|d| now >= d);
            match c.phase {
                Phase::Waiting { .. } => self.advance(slot, now),
                Phase::Queued if !past_deadline => {
                    self.fail_why(slot, Why::QueueTimeout, Processed::Never, now)
                }
                Phase::WaitingToken | Phase::Queued => {
                    self.fail_why(slot, Why::DeadlineExceeded, Processed::Never, now)
                }
                Phase::InFlight => self.in_flight_due(slot, now),
                Phase::Reserving => self.reservation_timed_out(slot, past_deadline, now),
                Phase::Failing { .. } => {
                    if let Some(failure) = self.take_failing(id) {
                        self.fail(slot, failure, now);
                    }
                }
                Phase::Ready | Phase::Streaming { .. } => {}
            }
        }
        self.settle(now);
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
        self.settle(now);
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

    /// A token fetch failed: every call waiting for a token fails with an auth error, and so
    /// does every call that needs one until the next fetch may start (the backoff of
    /// `token.fetch_backoff_ms`, doubling while fetches keep failing).
    pub fn token_failed(&mut self, now: Instant) {
        self.token.fetch_failed(now);
        let failed = self.wake_token_waiters(now, Some(Why::TokenFetchFailed));
        self.event(
            now,
            EventKind::TokenFetchFailed {
                calls_failed: failed,
            },
        );
        self.settle(now);
    }

    // --- polls ---------------------------------------------------------------------------

    /// The next action for the driver, moved out: for a driver that feeds the engine again
    /// while it acts on one (cancels a call whose caller left). Otherwise prefer
    /// [`Engine::drain_actions`], which lends them.
    #[must_use]
    #[inline]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop()
    }

    /// Hands every queued action to `f`, oldest first, by reference, and forgets them: the
    /// cheap way to drain (no action is moved out). `f` sees the same actions, in the same
    /// order, as [`Engine::poll_action`] until `None` would return. If `f` panics, the actions
    /// stay queued (those it saw included).
    #[inline]
    pub fn drain_actions(&mut self, f: impl FnMut(&Action)) {
        self.actions.drain(f);
    }

    /// The next event for logs and UIs, moved out: for a driver that must keep events past its
    /// next input (one whose listeners may call the engine again). Otherwise prefer
    /// [`Engine::drain_events`], which lends them.
    #[must_use]
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// Hands every queued event to `f`, oldest first, by reference, and forgets them: the
    /// cheap way to drain (no event is moved out). `f` sees the same events, in the same
    /// order, as [`Engine::poll_event`] until `None` would return; clone one to keep it. If `f`
    /// panics, the events stay queued (those it saw included).
    #[inline]
    pub fn drain_events(&mut self, f: impl FnMut(&Event)) {
        self.events.drain(f);
    }

    /// When [`Engine::handle_timeout`] should next be called, if ever: the earliest deadline
    /// something waits for (a wait's end, an attempt's deadline, a queued or token-waiting
    /// call's deadline), never a stale one.
    #[must_use]
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let token = self.token_fetch_at.map(|(at, _)| at);
        match (self.timers.next(), token) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // --- internals -----------------------------------------------------------------------

    /// After every input: queued calls take freed slots, and stale timers go. Inline: most
    /// inputs find no call queued and only in-order deadlines, a few tests and one look-up.
    #[inline(always)]
    fn settle(&mut self, now: Instant) {
        if !self.queued_hosts.is_empty() {
            self.dispatch_queue(now);
        }
        self.timers.prune(timer_live(&self.calls));
    }

    fn wake_token_waiters(&mut self, now: Instant, fail: Option<Why>) -> u32 {
        let mut n = 0;
        for slot in 0..self.calls.len() as u32 {
            let waiting = matches!(self.calls[slot as usize].as_ref(), Some(c) if matches!(c.phase, Phase::WaitingToken));
            if !waiting {
                continue;
            }
            n += 1;
            match fail {
                Some(why) => self.fail_why(slot, why, Processed::Never, now),
                None => {
                    if let Some(c) = self.calls[slot as usize].as_mut() {
                        c.phase = Phase::Ready;
                        self.timers.disarm(&mut c.timer, TimerKey::of(c.id));
                    }
                    self.advance(slot, now);
                }
            }
        }
        n
    }

    /// The slot of call `id`, if it is still there. A call's id names its slot, so at that
    /// slot only the start order (`seq`) need match.
    fn live(&self, id: CallId) -> Option<u32> {
        match self.calls.get(id.slot as usize) {
            Some(Some(c)) if c.id.seq == id.seq => Some(id.slot),
            _ => None,
        }
    }

    #[inline(always)]
    fn event(&mut self, at: Instant, kind: EventKind) {
        if self.events.push_bounded(Event { at, kind }) == Pushed::DroppedOldest {
            self.stats.events_dropped += 1;
        }
    }

    /// Makes `at` the call's one live deadline.
    fn set_timer(&mut self, slot: u32, at: Instant) {
        if let Some(c) = self.calls[slot as usize].as_mut() {
            self.timers.arm(&mut c.timer, at, TimerKey::of(c.id));
        }
    }

    /// The call waits until `until` for `why` (a rate-limit slot: `reserved` when the slot is
    /// already booked): counted, said in a `Waiting` event, and scheduled.
    fn wait_for_slot(&mut self, slot: u32, until: Instant, why: Why, reserved: bool, now: Instant) {
        self.stats.rate_limited_waits += 1;
        if let Some(id) = self.calls[slot as usize].as_ref().map(|c| c.id) {
            self.event(
                now,
                EventKind::Waiting {
                    call: id,
                    until,
                    why,
                },
            );
        }
        self.schedule(slot, until, reserved);
    }

    fn schedule(&mut self, slot: u32, until: Instant, reserved: bool) {
        if let Some(c) = self.calls[slot as usize].as_mut() {
            c.phase = Phase::Waiting { until, reserved };
        }
        self.set_timer(slot, until);
    }

    /// Ends a call: returns what it held and frees its slot. The call's state is dropped in
    /// place; only the few fields its result needs are copied out.
    #[inline(always)]
    fn finish(&mut self, slot: u32, now: Instant) -> Option<Ended> {
        let c = self.calls.get_mut(slot as usize)?.as_mut()?;
        let (id, host, phase) = (c.id, c.host as usize, c.phase);
        match phase {
            Phase::InFlight => {
                while let Some(flight) = self.calls[slot as usize]
                    .as_mut()
                    .and_then(|c| c.flights.pop(&mut self.hedge_slots))
                {
                    self.release_in_flight(host, flight.admit);
                    self.release_slot(host);
                }
            }
            Phase::Waiting {
                until,
                reserved: true,
            } => {
                // A booked rate-limit slot the call will not use goes back to the limiter.
                if let Some(g) = self.hosts.get_mut(host).and_then(|h| h.limiter.as_mut()) {
                    g.release(until, now);
                }
            }
            Phase::Failing { .. } => {
                self.take_failing(id);
            }
            _ => {}
        }
        if let Some(c) = self.calls[slot as usize].as_mut() {
            c.flights.give_back(&mut self.hedge_slots);
        }
        self.free_call(slot)
    }

    /// The failure kept for `id` in [`Phase::Failing`], taken out.
    fn take_failing(&mut self, id: CallId) -> Option<Failure> {
        self.failing.remove(&id)
    }

    /// Frees the slot of a call that holds nothing any more (no attempt out, no booked
    /// rate-limit slot, no hedges' slots): [`Engine::finish`]'s last step, and all of it for a
    /// call whose only attempt was just taken out ([`Engine::straight_success`]: never a
    /// hedged one).
    #[inline(always)]
    fn free_call(&mut self, slot: u32) -> Option<Ended> {
        let c = self.calls.get_mut(slot as usize)?.as_mut()?;
        let ended = c.ended();
        let host = c.host as usize;
        self.vacate(slot);
        if let Some(h) = self.hosts.get_mut(host) {
            h.active = h.active.saturating_sub(1);
        }
        Some(ended)
    }

    /// Drops the call in `slot` and puts the slot on the free list.
    #[inline(always)]
    fn vacate(&mut self, slot: u32) {
        if let Some(call) = self.calls.get_mut(slot as usize) {
            if let Some(c) = call.as_mut() {
                self.timers.disarm(&mut c.timer, TimerKey::of(c.id));
                if c.predicate {
                    if let Some(p) = self.predicates.get_mut(slot as usize) {
                        *p = None;
                    }
                }
            }
            *call = None;
        }
        self.free.push(slot);
    }

    fn done(&mut self, slot: u32, status: u16, now: Instant) {
        if self.keep_open(slot, status) {
            return;
        }
        self.done_at_head(slot, status, now);
    }

    /// Ends a call with its final answer's head ([`CallEnd::AtHead`]): `CallSucceeded` and
    /// `Done`.
    #[inline(always)]
    fn done_at_head(&mut self, slot: u32, status: u16, now: Instant) {
        if let Some((call, attempts)) = self.succeeded(slot, status, now) {
            self.done_action(call, status, attempts);
        }
    }

    #[inline(always)]
    fn done_action(&mut self, call: CallId, status: u16, attempts: u32) {
        self.actions.push(Action::Done {
            call,
            status,
            attempts,
        });
    }

    /// Ends a call that succeeded with `status`: its id and attempts.
    fn succeeded(&mut self, slot: u32, status: u16, now: Instant) -> Option<(CallId, u32)> {
        let call = self.finish(slot, now)?;
        Some(self.call_succeeded(&call, status, now))
    }

    /// Counts and says that the ended `call` succeeded with `status`: its id and attempts.
    #[inline(always)]
    fn call_succeeded(&mut self, call: &Ended, status: u16, now: Instant) -> (CallId, u32) {
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
        (call.id, call.attempts)
    }

    fn fail_why(&mut self, slot: u32, why: Why, processed: Processed, now: Instant) {
        self.fail(slot, Failure::new(why, 0, None, processed), now);
    }

    /// Fails a call; `failure.attempts` is filled in here.
    fn fail(&mut self, slot: u32, mut failure: Failure, now: Instant) {
        let Some(call) = self.finish(slot, now) else {
            return;
        };
        failure.attempts = call.attempts;
        if call.attempts == 0 {
            failure.processed = Processed::Never;
        }
        if let Some(used) = fallback::decide(call.method, call.fallback, &failure, now) {
            self.fell_back(&call, failure, used, now);
            return;
        }
        self.stats.failed += 1;
        self.event(
            now,
            EventKind::CallFailed {
                call: call.id,
                failure,
                elapsed: now - call.started,
            },
        );
        self.actions.push(Action::Fail {
            call: call.id,
            failure,
        });
    }
}

/// Whether a timer entry is live: its call is still there and holds exactly that deadline.
#[inline(always)]
fn timer_live(calls: &Slots<Option<Call>>) -> impl Fn(Instant, TimerKey) -> bool + '_ {
    move |at, key| matches!(calls.get(key.slot() as usize), Some(Some(c)) if c.id.seq == key.seq() && c.timer.at() == Some(at))
}
