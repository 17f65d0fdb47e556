//! The engine behind a mutex, and everything that feeds it (quinn's endpoint, in spirit).
//!
//! Every input (a call starts, an attempt ends, a call is dropped, a token arrives, a timer
//! fires) takes the lock, feeds the engine, and drains it before letting go:
//!
//! ```text
//!   lock ─▶ engine.start / handle / cancel / token_* / handle_timeout
//!        ─▶ poll_action: Send, Done, Fail ─▶ that call's channel
//!                        FetchToken       ─▶ spawn the token source
//!        ─▶ poll_event ─▶ tracing + the user's callback + the call's log (when nothing
//!                         listens, only each call's last event is looked for)
//!        ─▶ poll_timeout earlier than the timer task's? ─▶ wake it
//!   unlock
//! ```
//!
//! The lock is never held across an `.await`. One background task sleeps until the engine's
//! next deadline; it holds only a `Weak` reference and ends when the last `Client` is dropped.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use tokio::sync::{Notify, Semaphore};
use url::Url;

use resile_core::breaker::{BreakerHold, BreakerSnapshot};
use resile_core::engine::HostView;
use resile_core::token::{TokenStore, TokenView};
use resile_core::{
    Action, AttemptHeaders, CallId, CallSpec, ControlError, Engine, Failure, FallbackStore,
    FallbackUsed, Instant, Outcome, Stats, UnixTime, Why,
};

use crate::config::ClientConfig;
use crate::control::Stored;
use crate::error::Error;
use crate::events::ClientEvent;
use crate::orders::{Mailboxes, Orders};
use crate::telemetry::{self, CallSink};
use crate::token::{AccessToken, Secret, TokenSource};

/// The user's event callback.
pub(crate) type EventCallback = Arc<dyn Fn(&ClientEvent) + Send + Sync>;

/// The engine's events of one call, collected while it runs (the middleware's decision log).
pub(crate) type CallLog = Arc<Mutex<Vec<resile_core::Event>>>;

/// What the engine tells one call.
pub(crate) enum CallMsg {
    /// Send an attempt now.
    Send(SendOrder),
    /// Drop attempt `attempt`: the engine timed it out, or another attempt of the call
    /// answered first (`why`), and has decided what follows.
    Abort { attempt: u32, why: Why },
    /// The last response is final.
    Done { attempts: u32 },
    /// The call failed (boxed, as the fallback: a call's mailbox keeps its first order
    /// inline, sized by the largest order, and a failure is rare).
    Fail(Box<Failed>),
    /// The call answers with its fallback instead of failing with the failure.
    Fallback(Box<(Failure, FallbackUsed)>),
}

/// How a call failed, as its loop reports it.
pub(crate) struct Failed {
    pub failure: Failure,
    pub detail: Option<String>,
    pub retry_at: Option<SystemTime>,
}

/// One attempt, as the engine ordered it.
pub(crate) struct SendOrder {
    pub attempt: u32,
    /// The attempt's time limit in milliseconds (saturating), for the message of an attempt
    /// the engine aborts: half a `Duration`'s size in the order, which waits in the mailbox.
    pub timeout_ms: Option<u32>,
    /// The headers the engine decided for this attempt.
    pub headers: AttemptHeaders,
    /// The value of the token generation `headers` names.
    pub token: Option<Secret>,
    /// The W3C `traceparent` of the attempt's span, under a caller's trace (boxed: the order
    /// waits in the call's mailbox, sized by it, and most calls carry none).
    pub traceparent: Option<Box<reqwest::header::HeaderValue>>,
}

struct State {
    engine: Engine,
    /// Each call's mailbox, and where its events go (its log, its spans) until its last one.
    waiters: Mailboxes,
    tokens: TokenStore<Secret>,
    token_error: Option<String>,
    /// The deadline the timer task sleeps until.
    armed: Option<Instant>,
    /// The call whose attempt outcome is being fed: the host's events it causes (a hold, a
    /// learned limit, a breaker transition) belong to that call's log too.
    cause: Option<CallId>,
    /// That call's next order, handed back to its own task, which is the one feeding the
    /// engine ([`Shared::handle`]), rather than delivered to its mailbox ([`State::hand_back`]).
    handed: Option<CallMsg>,
}

impl State {
    /// `msg` for `call`, handed back to the call's own task when that task is the one feeding
    /// the engine now and nothing waits before it in the call's mailbox, so that it is read at
    /// once without the mailbox; otherwise given back, to be delivered. Orders decided for
    /// other calls (a timer, another call's completion) always go through their mailboxes.
    fn hand_back(&mut self, call: CallId, msg: CallMsg) -> Option<CallMsg> {
        if self.cause == Some(call) && self.handed.is_none() && self.waiters.idle(call) {
            self.handed = Some(msg);
            return None;
        }
        Some(msg)
    }

    /// Gives `call` its last order and closes its mailbox (handed back, the order ends the
    /// loop, which reads its mailbox no more: the mailbox is only taken away).
    fn finish(&mut self, call: CallId, msg: CallMsg) {
        match self.hand_back(call, msg) {
            Some(msg) => self.waiters.finish(call, msg),
            None => self.waiters.detach(call),
        }
    }
}

thread_local! {
    /// Set while the user's event callback runs on this thread (it runs under the lock).
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn in_callback() -> bool {
    IN_CALLBACK.with(Cell::get)
}

/// What the event callback asked for while it ran (under the engine lock).
#[derive(Default)]
struct Deferred {
    /// Calls whose futures the callback dropped.
    cancels: Vec<CallId>,
    /// Breaker holds the callback released.
    releases: Vec<BreakerHold>,
}

/// Everything a `Client` shares between its clones.
pub(crate) struct Shared {
    state: Mutex<State>,
    origin: tokio::time::Instant,
    notify: Arc<Notify>,
    timer_started: AtomicBool,
    weak: Weak<Shared>,
    http: RwLock<reqwest::Client>,
    /// Whose pool `http` is.
    pool: Pool,
    /// The pool downloads use when `http` decodes (built on the first download).
    identity_http: RwLock<Option<reqwest::Client>>,
    pub(crate) config: ClientConfig,
    pub(crate) base_url: Option<Url>,
    pub(crate) default_headers: HeaderMap,
    pub(crate) has_token_source: bool,
    token_source: Option<Arc<dyn TokenSource>>,
    on_event: Option<EventCallback>,
    recycles: AtomicU64,
    /// The client-wide budget of response bytes being buffered (see `max_buffered_bytes`).
    pub(crate) buffer: Arc<Semaphore>,
    /// The engine's figures at the end of the last drain, for the event callback only (see
    /// [`Shared::stats`]).
    stats: Mutex<Stats>,
    /// What the event callback asked for while it ran under the lock, done once it returned.
    deferred: Mutex<Deferred>,
    /// Whether `deferred` holds anything: the drain looks at this flag, not at the lock. Set
    /// and cleared under the engine lock, where the callback runs.
    deferring: AtomicBool,
    /// Last good responses for fallbacks.
    last_good: Mutex<FallbackStore<Stored>>,
    /// Fleet mode's store.
    #[cfg(feature = "redis")]
    fleet: Option<Arc<crate::fleet::RedisStore>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The timer task holds only a Weak: wake it so it sees the client is gone.
        self.notify.notify_one();
    }
}

fn os_seed() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.finish()
}

/// Whether a pool decodes compressed bodies (the features `gzip`, `brotli`, `deflate`, `zstd`).
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum Decoding {
    /// As the features compiled in say: `Accept-Encoding` sent, bodies decoded.
    AsBuilt,
    /// Never: a download's bytes are the representation as sent, so its offsets are the ones
    /// a `Range` counts.
    Never,
}

/// Whether any decompression feature is compiled in (otherwise no pool decodes).
const DECODES: bool = cfg!(any(
    feature = "gzip",
    feature = "brotli",
    feature = "deflate",
    feature = "zstd"
));

pub(crate) fn build_http(
    config: &ClientConfig,
    decoding: Decoding,
) -> Result<reqwest::Client, Error> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // The engine decides every resend. reqwest's own policy resends only HTTP/2 streams
        // the server refused unprocessed (`REFUSED_STREAM`, a graceful `GOAWAY`), and to be
        // able to it copies every request's headers before sending it; those refusals reach
        // the engine instead (`TransportError::Refused`), which sends each call's first one
        // again at once, free of the budget and not a failure of the host.
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .user_agent(config.user_agent.clone())
        .pool_max_idle_per_host(
            config.pool_max_idle_per_host.unwrap_or(
                config
                    .max_in_flight_per_host
                    .unwrap_or(config.max_in_flight),
            ),
        )
        .pool_idle_timeout(config.pool_idle_timeout_ms.map(Duration::from_millis));
    if let Some(ms) = config.connect_timeout_ms {
        b = b.connect_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = config.read_timeout_ms {
        b = b.read_timeout(Duration::from_millis(ms));
    }
    if decoding == Decoding::Never {
        b = b.no_gzip().no_brotli().no_deflate().no_zstd();
    }
    if config.http2_prior_knowledge {
        b = b.http2_prior_knowledge();
    }
    let b = crate::tls::roots(b, config).map_err(|message| Error::Config {
        field: Some("root_certificates_pem".into()),
        message,
    })?;
    b.build().map_err(|e| Error::Config {
        field: None,
        message: format!(
            "the HTTP client could not be built: {}",
            crate::transport::error_text(&e)
        ),
    })
}

/// Whose connection pool the client sends with.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Pool {
    /// Built from the [`ClientConfig`]; rebuilt after connection failures in a row.
    Own,
    /// The caller's (`ClientBuilder::http_client`): never replaced.
    Callers,
}

/// The engine's config with the client's own settings for what the engine decides: the
/// concurrency limits (unless the engine config sets them) and pool recycling (off for a
/// caller's pool).
fn engine_config(config: &ClientConfig, pool: Pool) -> resile_core::Config {
    let mut engine = config.engine.clone();
    let c = &mut engine.concurrency;
    c.max_in_flight = c.max_in_flight.or(u32::try_from(config.max_in_flight).ok());
    c.max_in_flight_per_host = c.max_in_flight_per_host.or(config
        .max_in_flight_per_host
        .and_then(|n| u32::try_from(n).ok()));
    engine.pool.recycle_after_failures = match pool {
        Pool::Own => config.recycle_pool_after,
        Pool::Callers => 0,
    };
    if config.redis_url.is_some() && engine.fleet.is_none() {
        engine.fleet = Some(resile_core::FleetConfig::default());
    }
    engine
}

impl Shared {
    pub(crate) fn new(
        config: ClientConfig,
        token_source: Option<Arc<dyn TokenSource>>,
        on_event: Option<EventCallback>,
        http: Option<reqwest::Client>,
    ) -> Result<Arc<Shared>, Error> {
        config.validate()?;
        let base_url = config
            .base_url
            .as_deref()
            .map(crate::request::parse_base)
            .transpose()?;
        let mut default_headers = HeaderMap::new();
        for (name, value) in &config.default_headers {
            let name = http::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(Error::invalid_request)?;
            let mut value =
                http::header::HeaderValue::from_str(value).map_err(Error::invalid_request)?;
            value.set_sensitive(crate::transport::is_sensitive(&name));
            default_headers.insert(name, value);
        }
        let pool = match http {
            Some(_) => Pool::Callers,
            None => Pool::Own,
        };
        let http = match http {
            Some(http) => http,
            None => build_http(&config, Decoding::AsBuilt)?,
        };
        let engine_settings = engine_config(&config, pool);
        #[cfg(feature = "redis")]
        let fleet = match (&config.redis_url, &engine_settings.fleet) {
            (Some(url), Some(f)) => Some(Arc::new(crate::fleet::RedisStore::new(url, &f.name)?)),
            _ => None,
        };
        #[cfg(feature = "redis")]
        if let (Some(store), Ok(runtime)) = (&fleet, tokio::runtime::Handle::try_current()) {
            let store = store.clone();
            runtime.spawn(async move { store.warm().await });
        }
        let engine = Engine::new(
            engine_settings,
            config.seed.unwrap_or_else(os_seed),
            Instant::ZERO,
        )?;
        Ok(Arc::new_cyclic(|weak| Shared {
            state: Mutex::new(State {
                engine,
                waiters: Mailboxes::default(),
                tokens: TokenStore::new(),
                token_error: None,
                armed: None,
                cause: None,
                handed: None,
            }),
            origin: tokio::time::Instant::now(),
            notify: Arc::new(Notify::new()),
            timer_started: AtomicBool::new(false),
            weak: weak.clone(),
            http: RwLock::new(http),
            pool,
            identity_http: RwLock::new(None),
            base_url,
            default_headers,
            has_token_source: token_source.is_some(),
            token_source,
            on_event,
            recycles: AtomicU64::new(0),
            buffer: Arc::new(Semaphore::new(
                usize::try_from(config.max_buffered_bytes).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            stats: Mutex::new(Stats::default()),
            deferred: Mutex::new(Deferred::default()),
            deferring: AtomicBool::new(false),
            last_good: Mutex::new(FallbackStore::new(
                config.fallback_store_entries,
                usize::try_from(config.fallback_store_bytes).unwrap_or(usize::MAX),
            )),
            #[cfg(feature = "redis")]
            fleet,
            config,
        }))
    }

    // --- time -------------------------------------------------------------------------------

    /// The engine's clock: nanoseconds since the client was built.
    pub(crate) fn now(&self) -> Instant {
        let d = tokio::time::Instant::now().saturating_duration_since(self.origin);
        Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    fn to_tokio(&self, at: Instant) -> tokio::time::Instant {
        let far = self.origin + Duration::from_secs(86_400 * 365);
        self.origin
            .checked_add(Duration::from_nanos(at.as_nanos()))
            .map_or(far, |t| t.min(far))
    }

    pub(crate) fn wall() -> UnixTime {
        let ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        UnixTime::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// An engine instant as wall-clock time.
    pub(crate) fn system_time(&self, at: Instant, now: Instant) -> SystemTime {
        if at >= now {
            SystemTime::now() + (at - now)
        } else {
            SystemTime::now() - (now - at)
        }
    }

    // --- the lock and the drain ---------------------------------------------------------------

    fn deferred(&self) -> MutexGuard<'_, Deferred> {
        self.deferred.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Feeds one input and drains the engine, under the lock.
    fn with_engine<R>(&self, input: impl FnOnce(&mut State, Instant) -> R) -> R {
        self.feed(input).0
    }

    /// Feeds one input and drains the engine, under the lock; with the order handed back to
    /// the call whose attempt's outcome the input was, if any ([`State::hand_back`]).
    fn feed<R>(&self, input: impl FnOnce(&mut State, Instant) -> R) -> (R, Option<CallMsg>) {
        self.ensure_timer();
        let mut st = self.lock();
        let now = self.now();
        let r = input(&mut st, now);
        self.drain(&mut st, now, false);
        st.cause = None;
        (r, st.handed.take())
    }

    fn drain(&self, st: &mut State, now: Instant, from_timer: bool) {
        // Bounded: each action is produced by an input; a stray send (a call whose future is
        // gone) is cancelled, which produces one Fail that finds no waiter. Calls dropped by the
        // event callback are cancelled in a later pass (a few here, the rest next time).
        for _pass in 0..4 {
            self.drain_once(st, now);
            if !self.deferring.swap(false, Ordering::AcqRel) {
                break;
            }
            let Deferred {
                cancels: dropped,
                releases: released,
            } = std::mem::take(&mut *self.deferred());
            for hold in released {
                st.engine.release_breaker(hold, now);
            }
            for id in dropped {
                st.waiters.end(id);
                st.engine.cancel(id, now);
            }
        }
        // The copy is only read from inside the event callback, which runs under this lock;
        // everyone else reads the engine's own figures.
        if self.on_event.is_some() {
            *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = st.engine.stats();
        }
        let next = st.engine.poll_timeout();
        if from_timer {
            st.armed = next;
        } else if let Some(t) = next {
            if st.armed.is_none_or(|armed| t < armed) {
                st.armed = Some(t);
                self.notify.notify_one();
            }
        }
    }

    fn drain_once(&self, st: &mut State, now: Instant) {
        while let Some(action) = st.engine.poll_action() {
            match action {
                Action::Send {
                    call,
                    attempt,
                    timeout,
                    headers,
                    ..
                } => {
                    let token = headers.token.and_then(|g| st.tokens.get(g).cloned());
                    let order = SendOrder {
                        attempt,
                        timeout_ms: timeout
                            .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
                        token,
                        headers,
                        traceparent: None,
                    };
                    let Some(send) = st.hand_back(call, CallMsg::Send(order)) else {
                        continue;
                    };
                    if !st.waiters.deliver(call, send) {
                        st.waiters.close(call);
                        st.engine.cancel(call, now);
                    }
                }
                Action::Abort { call, attempt, why } => {
                    if let Some(abort) = st.hand_back(call, CallMsg::Abort { attempt, why }) {
                        st.waiters.deliver(call, abort);
                    }
                }
                Action::RecycleConnections { failures, .. } => self.recycle_pool(failures),
                Action::FetchToken { .. } => self.spawn_token_fetch(st, now),
                #[cfg(feature = "redis")]
                Action::Reserve {
                    call,
                    attempt,
                    host,
                    limit,
                    max_wait,
                } => self.spawn_reserve(call, attempt, host, limit, max_wait),
                #[cfg(feature = "redis")]
                Action::Share { host, update } => self.spawn_share(host, update),
                Action::Done { call, attempts, .. } => {
                    st.finish(call, CallMsg::Done { attempts });
                }
                Action::Fallback {
                    call,
                    failure,
                    used,
                } => {
                    st.finish(call, CallMsg::Fallback(Box::new((failure, used))));
                }
                Action::Fail { call, failure } => {
                    let detail = match failure.why {
                        Why::TokenFetchFailed => st.token_error.clone(),
                        Why::TokenRejectedAgain => {
                            Some("the server answered 401 to a freshly fetched token".to_string())
                        }
                        _ => None,
                    };
                    let retry_at = failure.retry_at.map(|at| self.system_time(at, now));
                    let fail = CallMsg::Fail(Box::new(Failed {
                        failure,
                        detail,
                        retry_at,
                    }));
                    st.finish(call, fail);
                }
                _ => {}
            }
        }
        let (waiters, cause) = (&mut st.waiters, st.cause);
        if self.on_event.is_none() && !waiters.logging() && telemetry::unheard() {
            // Nothing takes the events: only a call's last one matters, which lets its entry
            // (its sink, which takes nothing either) go.
            st.engine.drain_events(|event| {
                if let Some(call) = event.kind.ended_call() {
                    waiters.end(call);
                }
            });
            return;
        }
        st.engine.drain_events(|event| {
            let call = event.kind.call().or(cause);
            telemetry::engine_event(event, call.and_then(|c| waiters.sink(c)));
            if let Some(call) = event.kind.ended_call() {
                waiters.end(call);
            }
            if self.on_event.is_some() {
                self.emit(&ClientEvent::Engine(event.clone()));
            }
        });
    }

    /// Runs the user's callback (under the lock, so events arrive in order).
    fn emit(&self, event: &ClientEvent) {
        if let Some(cb) = &self.on_event {
            IN_CALLBACK.with(|f| f.set(true));
            if catch_unwind(AssertUnwindSafe(|| cb(event))).is_err() {
                tracing::error!(target: "resile", "the on_event callback panicked; the event was dropped");
            }
            IN_CALLBACK.with(|f| f.set(false));
        }
    }

    // --- inputs ------------------------------------------------------------------------------

    /// Starts a call; its orders arrive on the returned channel, and its events go to `sink`.
    pub(crate) fn start(&self, spec: CallSpec<'_>, sink: CallSink) -> (CallId, Orders) {
        self.with_engine(move |st, now| {
            let id = st.engine.start(spec, now);
            (id, st.waiters.open(id, sink))
        })
    }

    /// Takes up download `call`, whose body broke with `broke` ([`Engine::resume`]): its
    /// orders arrive on the returned channel again; `None` if the call is no longer open.
    pub(crate) fn resume(
        &self,
        call: CallId,
        broke: resile_core::TransportError,
        sink: CallSink,
    ) -> Option<Orders> {
        self.with_engine(move |st, now| {
            st.engine.resume(call, broke, now).ok()?;
            Some(st.waiters.open(call, sink))
        })
    }

    /// Download `call`'s body was read to its end ([`Engine::body_read`]).
    pub(crate) fn body_read(&self, call: CallId) {
        self.with_engine(|st, now| st.engine.body_read(call, now));
    }

    /// Reports how an attempt ended, from the call's own task. The call's next order comes
    /// back here when nothing waits before it in the call's mailbox (`Done` after a success,
    /// the next `Send` of a retry at once): the caller carries it out before it reads its
    /// mailbox again. The rest are in the mailbox, in the engine's order.
    #[must_use]
    pub(crate) fn handle(&self, id: CallId, attempt: u32, outcome: Outcome<'_>) -> Option<CallMsg> {
        let ((), handed) = self.feed(|st, now| {
            st.cause = Some(id);
            st.engine.handle_attempt(id, attempt, outcome, now)
        });
        handed
    }

    /// Runs a breaker control on the engine. Not from inside the event callback, which runs
    /// under the engine's lock.
    pub(crate) fn control<R>(
        &self,
        f: impl FnOnce(&mut Engine, Instant) -> Result<R, ControlError>,
    ) -> Result<R, Error> {
        if in_callback() {
            return Err(Error::InvalidRequest {
                message: "breakers cannot be controlled from inside the event callback".into(),
            });
        }
        Ok(self.with_engine(|st, now| f(&mut st.engine, now))?)
    }

    /// Gives a breaker hold back (after the event callback returns, if it runs now).
    pub(crate) fn release_breaker(&self, hold: BreakerHold) {
        if in_callback() {
            self.deferred().releases.push(hold);
            self.deferring.store(true, Ordering::Release);
            return;
        }
        self.with_engine(|st, now| st.engine.release_breaker(hold, now));
    }

    /// Every breaker, relative to now and the wall clock.
    pub(crate) fn export_breakers(&self) -> Result<BreakerSnapshot, Error> {
        self.control(|e, now| Ok(e.export_breakers(now, Some(Shared::wall()))))
    }

    /// The last good responses kept for fallbacks.
    pub(crate) fn last_good(&self) -> MutexGuard<'_, FallbackStore<Stored>> {
        self.last_good.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The caller gave up on a call (its future was dropped).
    pub(crate) fn cancel(&self, id: CallId) {
        if in_callback() {
            // The callback runs under the lock: cancel once it has returned.
            self.deferred().cancels.push(id);
            self.deferring.store(true, Ordering::Release);
            return;
        }
        self.with_engine(|st, now| {
            st.waiters.end(id);
            st.engine.cancel(id, now);
        });
    }

    fn token_result(&self, result: Result<AccessToken, Error>) {
        // A token that cannot be sent as `Authorization: Bearer …` (a CR, LF or other control
        // byte) is a failed fetch, not a token: attached it would be dropped, and the server's
        // 401 would only fetch the same token again.
        let result = result.and_then(|token| {
            if token.secret.is_sendable() {
                Ok(token)
            } else {
                Err(Error::Auth {
                    why: Why::TokenFetchFailed,
                    detail: Some(resile_core::token::UNSENDABLE_TOKEN.into()),
                })
            }
        });
        self.with_engine(|st, now| match result {
            Ok(token) => {
                let generation = st.engine.token_fetched(token.expires_in, now);
                st.tokens.insert(generation, token.secret);
                st.token_error = None;
            }
            Err(e) => {
                tracing::warn!(target: "resile", error = %e, "token fetch failed");
                st.token_error = Some(match e {
                    Error::Auth {
                        detail: Some(d), ..
                    } => d,
                    other => other.to_string(),
                });
                st.engine.token_failed(now);
            }
        });
    }

    fn spawn_token_fetch(&self, st: &mut State, now: Instant) {
        let (Some(source), Ok(runtime)) = (
            self.token_source.clone(),
            tokio::runtime::Handle::try_current(),
        ) else {
            st.token_error = Some("no token source, or no tokio runtime to fetch one on".into());
            st.engine.token_failed(now);
            return;
        };
        let http = self.http();
        let weak = self.weak.clone();
        let limit = Duration::from_millis(self.config.token_fetch_timeout_ms);
        runtime.spawn(async move {
            let result = match tokio::time::timeout(limit, source.fetch(&http)).await {
                Ok(r) => r,
                Err(_) => Err(Error::Auth {
                    why: Why::TokenFetchFailed,
                    detail: Some(format!(
                        "the token fetch took longer than {} ms",
                        limit.as_millis()
                    )),
                }),
            };
            if let Some(shared) = weak.upgrade() {
                shared.token_result(result);
            }
        });
    }

    // --- the fleet's store ----------------------------------------------------------------------

    /// Asks the store for a slot; the answer goes to the engine whenever it comes (the engine
    /// has its own deadline for it and ignores a late one).
    #[cfg(feature = "redis")]
    fn spawn_reserve(
        &self,
        call: CallId,
        attempt: u32,
        host: Arc<str>,
        limit: Option<resile_core::fleet::SharedLimit>,
        max_wait: Duration,
    ) {
        let (Some(store), Ok(runtime)) =
            (self.fleet.clone(), tokio::runtime::Handle::try_current())
        else {
            // No runtime to ask on: the engine's own timer falls back.
            return;
        };
        let weak = self.weak.clone();
        runtime.spawn(async move {
            let answer = store.reserve(&host, limit, max_wait).await;
            if let Some(shared) = weak.upgrade() {
                shared.with_engine(|st, now| {
                    st.engine.handle_reservation(call, attempt, answer, now)
                });
            }
        });
    }

    #[cfg(feature = "redis")]
    fn spawn_share(&self, host: Arc<str>, update: resile_core::fleet::SharedUpdate) {
        if let (Some(store), Ok(runtime)) =
            (self.fleet.clone(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move { store.share(&host, update).await });
        }
    }

    // --- the timer task -----------------------------------------------------------------------

    fn ensure_timer(&self) {
        if self.timer_started.load(Ordering::Acquire)
            || self.timer_started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(run_timer(self.weak.clone(), self.notify.clone()));
            }
            Err(_) => self.timer_started.store(false, Ordering::Release),
        }
    }

    /// Fires due timers; returns when to wake next.
    fn fire_timers(&self) -> Option<tokio::time::Instant> {
        let mut st = self.lock();
        let now = self.now();
        st.engine.handle_timeout(now);
        self.drain(&mut st, now, true);
        st.armed.map(|t| self.to_tokio(t))
    }

    // --- the pool -----------------------------------------------------------------------------

    pub(crate) fn http(&self) -> reqwest::Client {
        self.http.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The pool a download sends with: one that never decodes, so the bytes delivered are the
    /// representation as sent and a resume's offsets are the server's. Without a
    /// decompression feature, or with the caller's own pool, that is the client's pool.
    pub(crate) fn download_http(&self) -> reqwest::Client {
        if !DECODES || self.pool == Pool::Callers {
            return self.http();
        }
        if let Some(http) = &*self.identity_http.read().unwrap_or_else(|p| p.into_inner()) {
            return http.clone();
        }
        let mut slot = self
            .identity_http
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(http) => http.clone(),
            None => match build_http(&self.config, Decoding::Never) {
                Ok(http) => slot.insert(http).clone(),
                // The same settings built the client's own pool; should they fail now, the
                // download goes on that pool (asking for `identity` all the same).
                Err(_) => self.http(),
            },
        }
    }

    /// The engine saw connection failures in a row: rebuild the pool (its event is the
    /// engine's `connections_recycled`). Runs under the lock, so it must not emit again.
    fn recycle_pool(&self, failures: u32) {
        let Ok(fresh) = build_http(&self.config, Decoding::AsBuilt) else {
            return;
        };
        *self.http.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        // The downloads' pool is built again on the next download.
        *self
            .identity_http
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
        let recycles = self.recycles.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::warn!(target: "resile", consecutive_failures = failures, recycles, "connection pool rebuilt after connection failures in a row");
    }

    pub(crate) fn recycles(&self) -> u64 {
        self.recycles.load(Ordering::Acquire)
    }

    // --- snapshots ----------------------------------------------------------------------------

    /// The engine's figures; inside the event callback (under the engine lock), as they were
    /// at the end of the previous drain.
    pub(crate) fn stats(&self) -> Stats {
        if in_callback() {
            return *self.stats.lock().unwrap_or_else(|p| p.into_inner());
        }
        self.lock().engine.stats()
    }

    pub(crate) fn hosts(&self) -> Vec<HostView> {
        if in_callback() {
            tracing::warn!(target: "resile", "Client::hosts called from the event callback; answering empty");
            return Vec::new();
        }
        let st = self.lock();
        st.engine.hosts(self.now())
    }

    pub(crate) fn token_view(&self) -> TokenView {
        if in_callback() {
            return TokenView {
                generation: 0,
                expires_at: None,
                fetching: false,
                valid: false,
            };
        }
        self.lock().engine.token_view()
    }

    pub(crate) fn active_calls(&self) -> usize {
        if in_callback() {
            return 0;
        }
        self.lock().engine.active_calls()
    }
}

async fn run_timer(weak: Weak<Shared>, notify: Arc<Notify>) {
    loop {
        let next = match weak.upgrade() {
            Some(shared) => shared.fire_timers(),
            None => return,
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = notify.notified() => {}
                }
            }
            None => notify.notified().await,
        }
    }
}

/// Cancels its call when dropped before the call ended (the caller's future went away).
pub(crate) struct CallGuard<'s> {
    /// Borrowed from the call's future, which holds the client.
    pub(crate) shared: &'s Shared,
    pub(crate) id: CallId,
    pub(crate) live: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self.live {
            self.shared.cancel(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use futures::Stream;
    use resile_core::{EventKind, Method};

    use crate::orders::tests::sink;
    use crate::transport::HintHeaders;

    fn next(orders: &mut Orders) -> Poll<Option<CallMsg>> {
        Pin::new(orders).poll_next(&mut Context::from_waker(Waker::noop()))
    }

    /// A call started, its first order (a `Send`) unread in its mailbox.
    fn started() -> (Arc<Shared>, CallId, Orders) {
        let shared = Shared::new(ClientConfig::default(), None, None, None).unwrap();
        let (id, orders) = shared.start(CallSpec::new(Method::Get, "http://a.test"), sink());
        (shared, id, orders)
    }

    /// The call's report of its first attempt: a 200.
    fn ok(shared: &Shared, id: CallId) -> Option<CallMsg> {
        let map = HeaderMap::new();
        let hints = HintHeaders::new(&map);
        let response = resile_core::Response::new(200, &hints, Shared::wall());
        shared.handle(id, 1, Outcome::Response(response))
    }

    #[test]
    fn a_calls_own_report_gets_its_next_order_back_without_the_mailbox() {
        let (shared, id, mut orders) = started();
        // The first order was decided as the call started: in its mailbox.
        assert!(matches!(
            next(&mut orders),
            Poll::Ready(Some(CallMsg::Send(_)))
        ));
        assert!(matches!(
            ok(&shared, id),
            Some(CallMsg::Done { attempts: 1 })
        ));
        // The mailbox holds nothing more, and nothing more is delivered to it: the loop
        // returns with the order handed back and never reads it again.
        assert!(next(&mut orders).is_pending());
        assert!(!shared
            .lock()
            .waiters
            .deliver(id, CallMsg::Done { attempts: 1 }));
    }

    #[test]
    fn with_nothing_listening_a_calls_log_still_gets_its_events_and_its_entry_goes() {
        // No subscriber, no callback: the events take the quiet way, but for the log.
        assert!(telemetry::tracing_off());
        let shared = Shared::new(ClientConfig::default(), None, None, None).unwrap();
        let log = CallLog::default();
        let target = crate::telemetry::Target {
            method: "GET",
            url: "http://a.test/",
            redact: &[],
        };
        let logged =
            crate::telemetry::Call::start(target).sink(Some(log.clone()), &tracing::Span::none());
        let spec = || CallSpec::new(Method::Get, "http://a.test");
        let (id, _orders) = shared.start(spec(), logged);
        let (quiet, _quiet_orders) = shared.start(spec(), sink());
        let _ = ok(&shared, quiet);
        let _ = ok(&shared, id);
        let log = log.lock().unwrap();
        // The logged call's events, from its start to its success, and none of the other's.
        assert!(matches!(
            log.first().map(|e| &e.kind),
            Some(EventKind::CallStarted { call, .. }) if *call == id
        ));
        assert!(matches!(
            log.last().map(|e| &e.kind),
            Some(EventKind::CallSucceeded { call, .. }) if *call == id
        ));
        assert!(log.iter().all(|e| e.kind.call().is_none_or(|c| c == id)));
        let st = shared.lock();
        assert!(st.waiters.sink(id).is_none() && st.waiters.sink(quiet).is_none());
        assert!(!st.waiters.logging());
    }

    #[test]
    fn an_order_handed_back_never_overtakes_one_in_the_mailbox() {
        let (shared, id, mut orders) = started();
        // The first order is still unread when the call reports: what follows queues behind it.
        assert!(ok(&shared, id).is_none());
        assert!(matches!(
            next(&mut orders),
            Poll::Ready(Some(CallMsg::Send(_)))
        ));
        assert!(matches!(
            next(&mut orders),
            Poll::Ready(Some(CallMsg::Done { attempts: 1 }))
        ));
        assert!(matches!(next(&mut orders), Poll::Ready(None)));
    }
}
