//! The driver: the core engine, fed by `fetch`, `setTimeout` and `performance.now()`.
//!
//! ```text
//!   request() ──start──▶ ┌────────────────────────┐ ◀──handle── attempt task (fetch + AbortController)
//!   setTimeout ─timeout─▶ │ Rc<Inner>              │ ◀──token──  token task (the JS provider)
//!                         │   RefCell<Engine>      │
//!                         └──────────┬─────────────┘
//!                                pump│ drain events → listeners
//!                                    │ drain actions → Send: spawn an attempt task
//!                                    │                 FetchToken: spawn a token task
//!                                    │                 Done / Fail: settle the caller's future
//!                                    └ arm one setTimeout for poll_timeout()
//! ```
//!
//! The concurrency bulkhead (`max_in_flight`, `max_in_flight_per_host`) is the engine's, as on
//! native: calls over the limit queue in the engine, first come first served, with a `queued`
//! event; a dropped future cancels the engine's call, as native's `CallGuard` does.
//!
//! Every input takes the engine's `RefCell` for one decision and lets go before anything is
//! awaited or any JavaScript runs. The driver has no `if` about retrying: it reports what fetch
//! did, and does what the engine says.
//!
//! What a browser cannot tell apart: `fetch` rejects with the same `TypeError` for a refused
//! connection, a reset, a DNS failure and a CORS refusal. The driver reports all of them as
//! [`TransportError::Reset`] (the request may have been processed), the safe reading for writes.
//! A body that breaks off after the headers arrived is [`TransportError::Truncated`]; an attempt
//! aborted by its own timeout is [`TransportError::Timeout`].
//!
//! A download ([`RequestSpec::ends`] = [`CallEnd::AfterBody`]) reads its body with the stream's
//! reader instead of whole. The engine's call stays open while it is read; when the body breaks,
//! the engine decides the call's next attempt ([`Engine::resume`]), which asks for the rest with
//! `Range` / `If-Range` as [`resile_core::resume`] plans it, and its answer is judged there too:
//! it continues the bytes, or (a server that ignores `Range`, a changed resource) the body
//! starts again from its first byte and the bytes kept so far are dropped.

use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::rc::{Rc, Weak};

use js_sys::{Promise, Uint8Array};
use resile_core::breaker::{BreakerHold, BreakerSnapshot, HoldKind};
use resile_core::map::SortedMap;
use resile_core::resume::{Delivery, Download, Plan, ResumeError, Verdict};
use resile_core::token::TokenStore;
use resile_core::{
    Action, AttemptHeaders, CallEnd, CallId, CallSpec, Config, ConfigError, ControlError, Engine,
    Event, Failure, FallbackSpec, FallbackStore, FallbackUsed, FallbackWrites, Instant, Method,
    Outcome, Predicate, Response, TransportError, Uuid,
};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::js::{self, Timer};
use crate::lend::Lend;
use crate::translate::IdempotencyKey;

/// A request body.
#[derive(Clone, Debug)]
pub enum Body {
    /// Text (JSON included), sent again on every attempt.
    Text(String),
    /// Bytes, sent again on every attempt.
    Bytes(Vec<u8>),
    /// A JavaScript function called once per attempt for that attempt's body: a
    /// `ReadableStream`, a `Blob`, text or bytes, or a promise of one. The call can be retried
    /// as with a body in memory.
    Factory(js_sys::Function),
    /// A `ReadableStream` sent once: the first attempt takes it, and the engine does not retry
    /// the call after that attempt (`Why::BodyNotReplayable`).
    Stream(Rc<RefCell<Option<JsValue>>>),
}

/// Whether `value` is a `ReadableStream` (or anything with a `getReader()`).
pub fn is_stream(value: &JsValue) -> bool {
    value.is_object()
        && js_sys::Reflect::get(value, &JsValue::from_str("getReader"))
            .is_ok_and(|f| f.is_function())
}

impl Body {
    /// What one attempt sends. A stream is read into a `Blob` first: Chromium sends a
    /// streamed request body only with `duplex: "half"` and only over HTTP/2 (never over
    /// HTTP/1.1), so a stream is never handed to `fetch` as it is.
    async fn for_attempt(&self) -> Result<Option<JsValue>, Stage> {
        let source = match self {
            Body::Text(t) => return Ok(Some(JsValue::from_str(t))),
            Body::Bytes(b) => return Ok(Some(Uint8Array::from(b.as_slice()).into())),
            Body::Factory(make) => {
                let made = make.call0(&JsValue::NULL).map_err(|_| Stage::Request)?;
                match made.dyn_into::<Promise>() {
                    Ok(p) => JsFuture::from(p).await.map_err(|_| Stage::Request)?,
                    Err(value) => value,
                }
            }
            // Taken by the first attempt; the engine asks for no other.
            Body::Stream(slot) => slot.lend_mut().take().ok_or(Stage::Request)?,
        };
        if !is_stream(&source) {
            return Ok(Some(source));
        }
        let stream: web_sys::ReadableStream = source.unchecked_into();
        let whole = web_sys::Response::new_with_opt_readable_stream(Some(&stream))
            .map_err(|_| Stage::Request)?;
        let blob = whole.blob().map_err(|_| Stage::Request)?;
        Ok(Some(
            JsFuture::from(blob).await.map_err(|_| Stage::Request)?,
        ))
    }
}

/// One logical request.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// Absolute, or relative to the client's base URL (or the page).
    pub url: String,
    /// Headers besides the client's defaults.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Option<Body>,
    /// Who supplies the Idempotency-Key.
    pub key: IdempotencyKey,
    /// The call's deadline, instead of the configured one.
    pub deadline: Option<Duration>,
    /// Attempts, instead of the configured number.
    pub max_attempts: Option<u32>,
    /// Whether to attach an access token; `None`: when the client has a token provider.
    pub token: Option<bool>,
    /// Cancels the call when aborted (the engine fails it with `Why::Cancelled`).
    pub signal: Option<web_sys::AbortSignal>,
    /// Answers instead of failing when the host is refused or the retries run out.
    pub fallback: Option<Fallback>,
    /// The caller's retry predicate.
    pub retry_if: Option<Predicate>,
    /// [`CallEnd::AfterBody`]: a download, whose body is read as it arrives and taken up where
    /// it breaks (a GET without a body; see the module docs).
    pub ends: CallEnd,
}

/// A request's fallback (see `resile_core::engine::fallback` for which failures qualify).
#[derive(Clone, Debug)]
pub struct Fallback {
    /// Where the stand-in comes from.
    pub source: FallbackSource,
    /// Whether a write that may have been applied falls back too.
    pub writes: FallbackWrites,
}

/// Where a fallback comes from.
#[derive(Clone, Debug)]
pub enum FallbackSource {
    /// This status, headers and body.
    Value {
        /// The status.
        status: u16,
        /// The headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// The last 2xx reply to the same method and URL, at most this old when used.
    LastGood {
        /// The oldest usable age.
        max_age: Duration,
    },
}

impl RequestSpec {
    /// A request with defaults.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        RequestSpec {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            key: IdempotencyKey::Auto,
            deadline: None,
            max_attempts: None,
            token: None,
            signal: None,
            fallback: None,
            retry_if: None,
            ends: CallEnd::AtHead,
        }
    }
}

/// The final response of a call.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The headers JavaScript may read (lowercase names, repeated fields joined by the browser).
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: String,
    /// Attempts the call made.
    pub attempts: u32,
    /// The `X-Request-ID` sent on every attempt; empty when request ids are off.
    pub request_id: String,
    /// The call's number in the engine's events.
    pub call: u32,
    /// A cross-origin answer (some headers may be hidden by CORS).
    pub cross_origin: bool,
    /// Set when this is the request's fallback: the failure it stands in for and which one.
    pub fallback: Option<(Failure, FallbackUsed)>,
}

/// Why a call produced no response.
#[derive(Clone, Debug)]
pub enum CallError {
    /// The engine gave up; `at` is when, on the driver's clock.
    Failed {
        /// The engine's reason and data.
        failure: Failure,
        /// When.
        at: Instant,
        /// The last token provider error, for auth failures.
        token_error: Option<String>,
    },
    /// The request could not even be started (bad URL or header).
    Invalid(String),
    /// A download's resumed answer could not be used (a 416, or a partial answer that is not
    /// the range asked for).
    Resume(ResumeError),
}

/// What a token provider hands back.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The bearer token.
    pub access_token: String,
    /// Its lifetime, if known.
    pub expires_in: Option<Duration>,
}

/// A token provider's future.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<Grant, String>>>>;
/// Fetches a fresh token; called by the engine's `FetchToken`, one at a time.
pub type TokenProvider = Rc<dyn Fn() -> TokenFuture>;
/// Receives every engine event; for `call_started`, also the method and URL of the call.
pub type Listener = Rc<dyn Fn(&Event, Option<(&str, &str)>)>;

/// Client-level settings besides the engine's config.
#[derive(Clone)]
pub struct Options {
    /// Relative URLs resolve against it (else against the page's location).
    pub base_url: Option<String>,
    /// Sent on every request.
    pub headers: Vec<(String, String)>,
    /// The engine's seed; `None` draws one from `crypto.getRandomValues`.
    pub seed: Option<u64>,
    /// Supplies access tokens.
    pub token_provider: Option<TokenProvider>,
    /// Logical calls in flight at once over the client; more wait for a slot before they start
    /// (their deadline starts when they do). Default 512, as native's.
    pub max_in_flight: usize,
    /// Logical calls in flight at once per host (`scheme://authority`). Default `None`: only the
    /// client-wide bound.
    pub max_in_flight_per_host: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            base_url: None,
            headers: Vec::new(),
            seed: None,
            token_provider: None,
            max_in_flight: 512,
            max_in_flight_per_host: None,
        }
    }
}

struct Slot {
    request: Rc<RequestSpec>,
    url: String,
    last: Option<Reply>,
    /// What the call answers with if the engine says it falls back.
    stand_in: Option<Reply>,
    /// The last-good key a good answer is kept under, for requests with that fallback.
    keep_as: Option<String>,
    settle: Option<Settle>,
    /// The attempts in flight (several when the call is hedged), by number; each is aborted
    /// when the engine says so, all when the call fails.
    inflight: Vec<(u32, web_sys::AbortController)>,
    /// The caller's abort listener, removed when the call ends.
    on_abort: Option<(web_sys::AbortSignal, Closure<dyn FnMut()>)>,
    /// A download's body so far, for [`CallEnd::AfterBody`].
    transfer: Option<Transfer>,
}

/// A download between its attempts: what was delivered and against what it resumes.
#[derive(Default)]
struct Transfer {
    /// Set by the first full answer (a 200).
    download: Option<Download>,
    /// The head of the answer the body comes from (its first full answer, or the latest
    /// restart): what the call answers with, once the body is whole.
    head: Option<Reply>,
    /// The bytes of the body so far.
    body: Vec<u8>,
    /// The latest answer, its body unread.
    unread: Option<web_sys::Response>,
    /// Its fetch, aborted when the transfer goes (the call ended, or the body is whole).
    fetch: Option<AbortGuard>,
}

impl Transfer {
    /// The `Range` and `If-Range` of the next attempt, if it resumes.
    fn range(&self) -> Option<(String, String)> {
        match self.download.as_ref()?.plan() {
            Plan::Resume { range, if_range } => Some((range, if_range)),
            Plan::Restart { .. } => None,
        }
    }
}

impl Slot {
    fn finish(&mut self) {
        if let Some((signal, listener)) = self.on_abort.take() {
            let _ = signal
                .remove_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        }
    }
}

struct Inner {
    engine: RefCell<Engine>,
    calls: RefCell<SortedMap<CallId, Slot>>,
    tokens: RefCell<TokenStore<String>>,
    last_token_error: RefCell<Option<String>>,
    listeners: RefCell<Vec<(u32, Listener)>>,
    next_listener: Cell<u32>,
    timer: RefCell<Option<(Instant, Timer)>>,
    pumping: Cell<bool>,
    /// Last good replies for fallbacks.
    last_good: RefCell<FallbackStore<Reply>>,
    options: Options,
}

/// A call's answer on its way to [`Driver::request`]: set once by the driver ([`Settle`]),
/// awaited by the caller ([`Settled`]). A channel for one thread (the browser runs every task
/// on one): futures-channel's oneshot is made for threads, with an `Arc`, atomics and locks.
#[derive(Default)]
struct Answer {
    value: Option<Result<Reply, CallError>>,
    /// The [`Settle`] was dropped without an answer (the client went while the call ran).
    gone: bool,
    waker: Option<Waker>,
}

/// The driver's end of a call's [`Answer`].
struct Settle(Rc<RefCell<Answer>>);

/// The caller's end of a call's [`Answer`]: a future of the answer, `None` if it never comes.
struct Settled(Rc<RefCell<Answer>>);

fn answer() -> (Settle, Settled) {
    let shared = Rc::new(RefCell::new(Answer::default()));
    (Settle(shared.clone()), Settled(shared))
}

impl Settle {
    fn send(self, value: Result<Reply, CallError>) {
        self.0.lend_mut().value = Some(value);
        // `Drop` wakes the caller.
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        let waker = {
            let mut answer = self.0.lend_mut();
            answer.gone = true;
            answer.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for Settled {
    type Output = Option<Result<Reply, CallError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut answer = self.0.lend_mut();
        if answer.value.is_some() || answer.gone {
            return Poll::Ready(answer.value.take());
        }
        answer.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Cancels the engine's call when the caller drops the request before it ends, as native does.
struct CancelOnDrop {
    inner: Weak<Inner>,
    call: CallId,
    live: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        let (weak, call) = (self.inner.clone(), self.call);
        // Not here: a drop may run inside a pump. A task runs once the current one returned.
        spawn(Box::pin(cancel_later(weak, call)));
    }
}

/// Cancels `call` if the driver is still alive (a task, for callers that must not cancel while
/// the engine may be borrowed).
async fn cancel_later(inner: Weak<Inner>, call: CallId) {
    if let Some(inner) = inner.upgrade() {
        inner.cancel(call);
    }
}

/// Runs `task` on the event loop once the current task returned. Every task of the driver is
/// spawned through this one instantiation of `spawn_local`: one task type in the module instead
/// of a copy of the executor's glue per future type.
fn spawn(task: Pin<Box<dyn Future<Output = ()>>>) {
    spawn_local(task);
}

/// The browser driver. Cheap to clone; clones share one engine.
#[derive(Clone)]
pub struct Driver {
    inner: Rc<Inner>,
}

/// A driver that does not keep its engine alive (for callbacks handed to JavaScript).
#[derive(Clone)]
pub struct WeakDriver {
    inner: Weak<Inner>,
}

impl WeakDriver {
    /// The driver, while a clone of it is alive.
    pub fn upgrade(&self) -> Option<Driver> {
        self.inner.upgrade().map(|inner| Driver { inner })
    }
}

/// Rounds one pump may take before it yields to the event loop (a listener that starts a call
/// on every event must not freeze the page).
const MAX_PUMP_ROUNDS: u32 = 10_000;

impl Driver {
    /// A driver with a validated config.
    pub fn new(config: Config, options: Options) -> Result<Driver, ConfigError> {
        let seed = options.seed.unwrap_or_else(js::random_seed);
        let mut config = config;
        // The client's own limits fill the engine's, unless the engine config sets them.
        let c = &mut config.concurrency;
        c.max_in_flight = c
            .max_in_flight
            .or(u32::try_from(options.max_in_flight.max(1)).ok());
        c.max_in_flight_per_host = c.max_in_flight_per_host.or(options
            .max_in_flight_per_host
            .and_then(|n| u32::try_from(n.max(1)).ok()));
        let engine = Engine::new(config, seed, js::now())?;
        Ok(Driver {
            inner: Rc::new(Inner {
                engine: RefCell::new(engine),
                calls: RefCell::new(SortedMap::new()),
                tokens: RefCell::new(TokenStore::new()),
                last_token_error: RefCell::new(None),
                listeners: RefCell::new(Vec::new()),
                next_listener: Cell::new(1),
                timer: RefCell::new(None),
                pumping: Cell::new(false),
                last_good: RefCell::new(FallbackStore::default()),
                options,
            }),
        })
    }

    /// A handle that does not keep the engine alive.
    pub fn downgrade(&self) -> WeakDriver {
        WeakDriver {
            inner: Rc::downgrade(&self.inner),
        }
    }

    /// Runs `f` with the engine borrowed (for snapshots; never across an await).
    pub fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.inner.engine.lend())
    }

    /// What the token provider last failed with, while no fetch has succeeded since.
    pub fn last_token_error(&self) -> Option<String> {
        self.inner.last_token_error.lend().clone()
    }

    /// The driver's clock now.
    pub fn now(&self) -> Instant {
        js::now()
    }

    /// Adds an event listener; returns its id for [`Driver::remove_listener`].
    pub fn add_listener(&self, listener: Listener) -> u32 {
        let id = self.inner.next_listener.get();
        self.inner.next_listener.set(id.wrapping_add(1));
        self.inner.listeners.lend_mut().push((id, listener));
        id
    }

    /// Removes a listener; `false` if there was none with that id.
    pub fn remove_listener(&self, id: u32) -> bool {
        // Ids are handed out once each, so there is at most one; `remove` keeps the others'
        // order (the order they hear events in).
        let mut listeners = self.inner.listeners.lend_mut();
        match listeners.iter().position(|(i, _)| *i == id) {
            Some(at) => {
                listeners.remove(at);
                true
            }
            None => false,
        }
    }

    /// Resolves `url` against the base URL (or the page); returns the absolute URL.
    pub fn resolve(&self, url: &str) -> Result<String, String> {
        resolve(url, self.inner.options.base_url.as_deref()).map(|(href, _)| href)
    }

    /// Runs one logical call to its end.
    pub async fn request(&self, spec: RequestSpec) -> Result<Reply, CallError> {
        let (url, origin) = resolve(&spec.url, self.inner.options.base_url.as_deref())
            .map_err(CallError::Invalid)?;
        // A header the browser refuses would fail every attempt alike: refuse it up front.
        let check = web_sys::Headers::new().map_err(|e| CallError::Invalid(js_text(&e)))?;
        for (k, v) in self.inner.options.headers.iter().chain(&spec.headers) {
            check
                .set(k, v)
                .map_err(|e| CallError::Invalid(format!("header `{k}`: {}", js_text(&e))))?;
        }
        if let IdempotencyKey::Explicit(k) = &spec.key {
            check
                .set("idempotency-key", k)
                .map_err(|e| CallError::Invalid(format!("idempotencyKey: {}", js_text(&e))))?;
        }
        if spec.ends == CallEnd::AfterBody && (spec.method != Method::Get || spec.body.is_some()) {
            return Err(CallError::Invalid(
                "a download is a GET without a body".into(),
            ));
        }
        let needs_token = spec
            .token
            .unwrap_or(self.inner.options.token_provider.is_some());
        let mut call_spec = CallSpec::new(spec.method, &origin).idempotency(spec.key.idempotency());
        call_spec.needs_token = needs_token;
        call_spec.replayable = !matches!(spec.body, Some(Body::Stream(_)));
        call_spec.deadline = spec.deadline;
        call_spec.max_attempts = spec.max_attempts;
        call_spec.predicate = spec.retry_if.clone();
        call_spec.ends = spec.ends;
        let key = format!("{} {url}", spec.method.as_str());
        let (stand_in, keep_as) = match &spec.fallback {
            Some(f) => {
                let stand_in = self.stand_in(f, &key, &url);
                if let Some((fallback, _)) = &stand_in {
                    call_spec.fallback = Some(*fallback);
                }
                let keeps = matches!(f.source, FallbackSource::LastGood { .. });
                (stand_in.map(|(_, r)| r), keeps.then_some(key))
            }
            None => (None, None),
        };

        let signal = spec.signal.clone();

        let (settle, settled) = answer();
        let now = js::now();
        let call = self.inner.engine.lend_mut().start(call_spec, now);
        let mut guard = CancelOnDrop {
            inner: Rc::downgrade(&self.inner),
            call,
            live: true,
        };
        let transfer = (spec.ends == CallEnd::AfterBody).then(Transfer::default);
        let mut slot = Slot {
            request: Rc::new(spec),
            url,
            last: None,
            stand_in,
            keep_as,
            settle: Some(settle),
            inflight: Vec::new(),
            on_abort: None,
            transfer,
        };
        let mut cancelled = false;
        if let Some(signal) = signal {
            cancelled = signal.aborted();
            let weak = Rc::downgrade(&self.inner);
            // The listener only schedules the cancel: cancelling ends the call, which removes
            // and drops this very listener.
            let listener = Closure::<dyn FnMut()>::new(move || {
                spawn(Box::pin(cancel_later(weak.clone(), call)));
            });
            if signal
                .add_event_listener_with_callback("abort", listener.as_ref().unchecked_ref())
                .is_ok()
            {
                slot.on_abort = Some((signal, listener));
            }
        }
        self.inner.calls.lend_mut().insert(call, slot);
        if cancelled {
            self.inner.cancel(call);
        } else {
            self.inner.pump();
        }
        let result = settled.await;
        guard.live = false;
        match result {
            Some(result) => result,
            None => Err(CallError::Invalid(
                "the client was dropped while the call ran".into(),
            )),
        }
    }
}

impl Driver {
    /// The engine's spec of a fallback, and the reply it stands in with.
    fn stand_in(&self, f: &Fallback, key: &str, url: &str) -> Option<(FallbackSpec, Reply)> {
        let (spec, reply) = match &f.source {
            FallbackSource::Value {
                status,
                headers,
                body,
            } => (
                FallbackSpec::value(),
                Reply {
                    status: *status,
                    headers: headers.clone(),
                    body: body.clone(),
                    url: url.to_string(),
                    ..Reply::default()
                },
            ),
            FallbackSource::LastGood { max_age } => {
                let store = self.inner.last_good.lend();
                let (reply, at) = store.get(key)?;
                (FallbackSpec::stored(at, *max_age), reply.clone())
            }
        };
        Some((spec.writes(f.writes), reply))
    }

    /// Holds the breaker of `url`'s host open ([`HoldKind::Isolate`]) or closed until the hold
    /// is given back to [`Driver::release_breaker`].
    pub fn hold_breaker(&self, url: &str, kind: HoldKind) -> Result<BreakerHold, String> {
        let host = self.origin_of(url)?;
        let now = js::now();
        let hold = self
            .inner
            .engine
            .lend_mut()
            .hold_breaker(&host, kind, now)
            .map_err(|e| e.to_string())?;
        self.inner.pump();
        Ok(hold)
    }

    /// Gives a hold back.
    pub fn release_breaker(&self, hold: BreakerHold) {
        let now = js::now();
        self.inner.engine.lend_mut().release_breaker(hold, now);
        self.inner.pump();
    }

    /// Closes the breaker of `url`'s host now, with a fresh window.
    pub fn reset_breaker(&self, url: &str) -> Result<(), String> {
        let host = self.origin_of(url)?;
        let now = js::now();
        let r = self.inner.engine.lend_mut().reset_breaker(&host, now);
        self.inner.pump();
        r.map_err(|e| e.to_string())
    }

    /// Every known host's breaker, relative to now and the wall clock.
    pub fn export_breakers(&self) -> BreakerSnapshot {
        self.inner
            .engine
            .lend()
            .export_breakers(js::now(), Some(js::wall()))
    }

    /// Takes each host's breaker from `snapshot`, less the wall-clock time since its export.
    pub fn import_breakers(&self, snapshot: &BreakerSnapshot) -> Result<usize, ControlError> {
        let now = js::now();
        let r = self
            .inner
            .engine
            .lend_mut()
            .import_breakers(snapshot, now, Some(js::wall()));
        self.inner.pump();
        r
    }

    fn origin_of(&self, url: &str) -> Result<String, String> {
        resolve(url, self.inner.options.base_url.as_deref()).map(|(_, origin)| origin)
    }
}

/// `(absolute URL, origin)`.
fn resolve(url: &str, base: Option<&str>) -> Result<(String, String), String> {
    let page = || -> Option<String> {
        let location = js_sys::Reflect::get(&js_sys::global(), &"location".into()).ok()?;
        js_sys::Reflect::get(&location, &"href".into())
            .ok()?
            .as_string()
    };
    let base = base.map(str::to_string).or_else(page);
    // Messages show the URL without its credentials and query: they may hold secrets.
    let shown = crate::error::shown_url(url);
    let parsed = match &base {
        Some(b) => web_sys::Url::new_with_base(url, b),
        None => web_sys::Url::new(url),
    }
    .map_err(|_| format!("`{shown}` is not a URL (and no baseUrl makes it one)"))?;
    let scheme = parsed.protocol();
    if scheme != "http:" && scheme != "https:" {
        return Err(format!(
            "`{shown}`: only http and https URLs can be fetched"
        ));
    }
    if !parsed.username().is_empty() || !parsed.password().is_empty() {
        // fetch() throws on it, and would on every attempt: refuse it once, typed.
        return Err(format!(
            "`{shown}`: a URL with credentials cannot be fetched in a browser; send them in an Authorization header"
        ));
    }
    Ok((parsed.href(), parsed.origin()))
}

/// A base URL: http(s), with a trailing slash so relative paths append to it (as native's).
pub(crate) fn parse_base(base: &str) -> Result<String, String> {
    let url = web_sys::Url::new(base).map_err(|_| "not an absolute URL".to_string())?;
    if url.protocol() != "http:" && url.protocol() != "https:" {
        return Err("only http and https URLs can be a base".into());
    }
    let path = url.pathname();
    if !path.ends_with('/') {
        url.set_pathname(&format!("{path}/"));
    }
    Ok(url.href())
}

/// `url` with `params` appended to its query.
pub(crate) fn append_query(url: &str, params: &[(String, String)]) -> Result<String, String> {
    let u = web_sys::Url::new(url)
        .map_err(|_| format!("`{}` is not a URL", crate::error::shown_url(url)))?;
    let search = u.search_params();
    for (k, v) in params {
        search.append(k, v);
    }
    Ok(u.href())
}

fn js_text(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

enum Stage {
    /// Before or during the request: no response at all.
    Request,
    /// The headers arrived, the body broke off.
    Body,
}

/// How an attempt reads its answer's body.
enum Read {
    /// Whole, before the engine hears of the answer.
    Whole,
    /// After the engine handed the answer over (a download), asking with these `Range` and
    /// `If-Range` values when it resumes.
    Later { range: Option<(String, String)> },
}

/// The whole body of `response`.
async fn whole_body(response: &web_sys::Response) -> Result<Vec<u8>, Stage> {
    let buffer = response.array_buffer().map_err(|_| Stage::Body)?;
    let buffer = JsFuture::from(buffer).await.map_err(|_| Stage::Body)?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Aborts the attempt's fetch when dropped (the call's future went away). The attempt's time
/// limit is the engine's: it answers `Action::Abort` when the deadline passes.
struct AbortGuard {
    controller: Option<web_sys::AbortController>,
}

impl AbortGuard {
    fn new() -> AbortGuard {
        AbortGuard {
            controller: web_sys::AbortController::new().ok(),
        }
    }

    fn signal(&self) -> Option<web_sys::AbortSignal> {
        self.controller.as_ref().map(|c| c.signal())
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some(c) = &self.controller {
            c.abort();
        }
    }
}

impl Inner {
    /// Drains the engine: events to listeners, actions to tasks; then arms the timer.
    fn pump(self: &Rc<Self>) {
        if self.pumping.replace(true) {
            // An outer pump (a listener started a call) drains what this input queued.
            return;
        }
        let mut rounds = 0;
        loop {
            let (events, actions) = {
                let mut engine = self.engine.lend_mut();
                // Pushed in loops, not collected: a `Vec`'s `FromIterator` is a copy of its own
                // per element type, `push` the code every `Vec` of the type already has.
                let (mut events, mut actions) = (Vec::new(), Vec::new());
                while let Some(e) = engine.poll_event() {
                    events.push(e);
                }
                while let Some(a) = engine.poll_action() {
                    actions.push(a);
                }
                (events, actions)
            };
            if events.is_empty() && actions.is_empty() {
                break;
            }
            for event in &events {
                self.emit(event);
            }
            for action in actions {
                self.act(action);
            }
            rounds += 1;
            if rounds >= MAX_PUMP_ROUNDS {
                let again = self.clone();
                spawn(Box::pin(async move { again.pump() }));
                break;
            }
        }
        self.pumping.set(false);
        self.rearm();
    }

    fn emit(&self, event: &Event) {
        let mut listeners: Vec<Listener> = Vec::new();
        for (_, l) in self.listeners.lend().iter() {
            listeners.push(l.clone());
        }
        if listeners.is_empty() {
            return;
        }
        let info = match &event.kind {
            resile_core::EventKind::CallStarted { call, .. } => self
                .calls
                .lend()
                .get(call)
                .map(|s| (s.request.method.as_str(), s.url.clone())),
            _ => None,
        };
        for l in listeners {
            l(event, info.as_ref().map(|(m, u)| (*m, u.as_str())));
        }
    }

    fn act(self: &Rc<Self>, action: Action) {
        match action {
            Action::Send {
                call,
                attempt,
                headers:
                    AttemptHeaders {
                        idempotency_key,
                        request_id,
                        token,
                        ..
                    },
                ..
            } => {
                spawn(Box::pin(self.clone().attempt(
                    call,
                    attempt,
                    idempotency_key,
                    request_id,
                    token,
                )));
            }
            // The engine timed the attempt out, or another attempt of the call answered first:
            // abort its fetch; whatever it still reports is for an attempt the engine has
            // moved past, and is ignored.
            Action::Abort { call, attempt, .. } => {
                let controller = self.calls.lend_mut().get_mut(&call).and_then(|slot| {
                    let i = slot.inflight.iter().position(|(n, _)| *n == attempt)?;
                    Some(slot.inflight.swap_remove(i).1)
                });
                if let Some(c) = controller {
                    c.abort();
                }
            }
            Action::FetchToken { .. } => spawn(Box::pin(self.clone().fetch_token())),
            Action::Done {
                call,
                status,
                attempts,
            } => {
                let downloading = self
                    .calls
                    .lend()
                    .get(&call)
                    .is_some_and(|s| s.transfer.is_some());
                if downloading {
                    spawn(Box::pin(self.clone().read_body(call, status, attempts)));
                    return;
                }
                let Some(mut slot) = self.calls.lend_mut().remove(&call) else {
                    return;
                };
                slot.finish();
                let mut reply = slot.last.take().unwrap_or_default();
                reply.status = status;
                reply.attempts = attempts;
                reply.call = call.number();
                if let (Some(key), true) = (slot.keep_as.take(), (200..300).contains(&status)) {
                    let size = reply.body.len()
                        + reply
                            .headers
                            .iter()
                            .map(|(k, v)| k.len() + v.len())
                            .sum::<usize>();
                    self.last_good
                        .lend_mut()
                        .put(key, reply.clone(), size, js::now());
                }
                if let Some(settle) = slot.settle.take() {
                    settle.send(Ok(reply));
                }
            }
            Action::Fallback {
                call,
                failure,
                used,
            } => {
                let Some(mut slot) = self.calls.lend_mut().remove(&call) else {
                    return;
                };
                slot.finish();
                for (_, attempt) in slot.inflight.drain(..) {
                    attempt.abort();
                }
                // The engine falls back only for a call it was given a fallback for.
                let answer = match slot.stand_in.take() {
                    Some(mut reply) => {
                        reply.attempts = failure.attempts;
                        reply.call = call.number();
                        reply.fallback = Some((failure, used));
                        Ok(reply)
                    }
                    None => Err(CallError::Failed {
                        failure,
                        at: js::now(),
                        token_error: None,
                    }),
                };
                if let Some(settle) = slot.settle.take() {
                    settle.send(answer);
                }
            }
            Action::Fail { call, failure } => {
                let Some(mut slot) = self.calls.lend_mut().remove(&call) else {
                    return;
                };
                slot.finish();
                for (_, attempt) in slot.inflight.drain(..) {
                    attempt.abort();
                }
                let token_error = match failure.kind() {
                    resile_core::FailureKind::Auth => self.last_token_error.lend().clone(),
                    _ => None,
                };
                if let Some(settle) = slot.settle.take() {
                    settle.send(Err(CallError::Failed {
                        failure,
                        at: js::now(),
                        token_error,
                    }));
                }
            }
            _ => {}
        }
    }

    fn rearm(self: &Rc<Self>) {
        let next = self.engine.lend().poll_timeout();
        let mut armed = self.timer.lend_mut();
        let Some(at) = next else {
            *armed = None;
            return;
        };
        if matches!(&*armed, Some((t, _)) if *t == at) {
            return;
        }
        let weak: Weak<Inner> = Rc::downgrade(self);
        let timer = Timer::new(at - js::now(), move || {
            // Not here: firing drops this very timer. A task runs once the callback returned.
            let weak = weak.clone();
            spawn(Box::pin(async move {
                if let Some(inner) = weak.upgrade() {
                    inner.on_timer();
                }
            }));
        });
        *armed = Some((at, timer));
    }

    /// The caller gave up on `call`: the engine fails it, the attempt in flight is aborted.
    fn cancel(self: &Rc<Self>, call: CallId) {
        let now = js::now();
        self.engine.lend_mut().cancel(call, now);
        self.pump();
    }

    fn on_timer(self: &Rc<Self>) {
        let fired = self.timer.lend_mut().take();
        drop(fired);
        let now = js::now();
        self.engine.lend_mut().handle_timeout(now);
        self.pump();
    }

    async fn attempt(
        self: Rc<Self>,
        call: CallId,
        attempt: u32,
        key: Option<Uuid>,
        request_id: Option<Uuid>,
        token: Option<u32>,
    ) {
        let Some(spec) = self
            .calls
            .lend()
            .get(&call)
            .map(|s| (s.request.clone(), s.url.clone()))
        else {
            return;
        };
        let (spec, url) = spec;
        let judged = spec.retry_if.is_some();
        let guard = AbortGuard::new();
        let init = web_sys::RequestInit::new();
        init.set_signal(guard.signal().as_ref());
        let mut read = Read::Whole;
        if let Some(slot) = self.calls.lend_mut().get_mut(&call) {
            if let Some(t) = &slot.transfer {
                read = Read::Later { range: t.range() };
                // The browser's cache could keep a broken answer and take it up by itself, with
                // ranges of its own: the driver's resume is the only one.
                init.set_cache(web_sys::RequestCache::NoStore);
            }
            if !slot.inflight.is_empty() {
                // Another attempt of this request is out (a hedge): Chromium's HTTP cache would
                // hold this one back until the first completes (its cache lock on a URL being
                // fetched), so it bypasses the cache.
                init.set_cache(web_sys::RequestCache::NoStore);
            }
            if let Some(c) = &guard.controller {
                slot.inflight.push((attempt, c.clone()));
            }
        }
        let result = self
            .send(&spec, &url, key, request_id, token, init, read)
            .await;
        let mut stale = false;
        if let Some(slot) = self.calls.lend_mut().get_mut(&call) {
            // A download's call outlives its attempts: one the engine already aborted (a
            // hedge that lost) must not take the place of the answer whose body is read.
            // An attempt's number is its own (at most one entry), and the list's order is
            // not used (`abort_attempt` swap-removes too).
            let at = slot.inflight.iter().position(|(n, _)| *n == attempt);
            stale = slot.transfer.is_some() && at.is_none();
            if let Some(i) = at {
                slot.inflight.swap_remove(i);
            }
        }
        if stale {
            return;
        }
        let now = js::now();
        match result {
            Ok((mut reply, unread)) => {
                reply.request_id =
                    request_id.map_or_else(String::new, |id| id.text().as_str().to_owned());
                let headers = reply.headers.clone();
                let (status, hidden) = (reply.status, reply.cross_origin);
                match self.calls.lend_mut().get_mut(&call) {
                    Some(slot) => {
                        slot.last = Some(reply);
                        if let (Some(t), Some(response)) = (slot.transfer.as_mut(), unread) {
                            // Its fetch stays open while the body is read.
                            t.unread = Some(response);
                            t.fetch = Some(guard);
                        }
                    }
                    None => return,
                }
                let mut response = Response::new(status, &headers, js::wall());
                response.hints_may_be_hidden = hidden;
                let report = || {
                    self.engine.lend_mut().handle_attempt(
                        call,
                        attempt,
                        Outcome::Response(response),
                        now,
                    )
                };
                if judged {
                    // A JavaScript predicate sees every header the browser exposes.
                    crate::api::judging(&headers, report);
                } else {
                    report();
                }
            }
            Err(stage) => {
                let error = match stage {
                    Stage::Request => TransportError::Reset,
                    Stage::Body => TransportError::Truncated,
                };
                self.engine.lend_mut().handle_attempt(
                    call,
                    attempt,
                    Outcome::Transport(error),
                    now,
                );
            }
        }
        self.pump();
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        spec: &RequestSpec,
        url: &str,
        key: Option<Uuid>,
        request_id: Option<Uuid>,
        token: Option<u32>,
        init: web_sys::RequestInit,
        read: Read,
    ) -> Result<(Reply, Option<web_sys::Response>), Stage> {
        let headers = web_sys::Headers::new().map_err(|_| Stage::Request)?;
        let set = |k: &str, v: &str| headers.set(k, v).map_err(|_| Stage::Request);
        for (k, v) in self.options.headers.iter().chain(&spec.headers) {
            set(k, v)?;
        }
        match (&key, &spec.key) {
            (Some(k), _) => set("idempotency-key", &k.to_string())?,
            (None, IdempotencyKey::Explicit(k)) => set("idempotency-key", k)?,
            _ => {}
        }
        if let Some(id) = request_id {
            set("x-request-id", id.text().as_str())?;
        }
        if let Read::Later {
            range: Some((range, if_range)),
        } = &read
        {
            set("range", range)?;
            set("if-range", if_range)?;
        }
        if let Some(generation) = token {
            if let Some(t) = self.tokens.lend().get(generation) {
                set("authorization", &format!("Bearer {t}"))?;
            }
        }
        init.set_method(spec.method.as_str());
        init.set_headers(&headers);
        init.set_mode(web_sys::RequestMode::Cors);
        if let Some(body) = &spec.body {
            if let Some(value) = body.for_attempt().await? {
                init.set_body(&value);
            }
        }
        let request =
            web_sys::Request::new_with_str_and_init(url, &init).map_err(|_| Stage::Request)?;
        let response: web_sys::Response = JsFuture::from(js::fetch_request(&request))
            .await
            .map_err(|_| Stage::Request)?
            .dyn_into()
            .map_err(|_| Stage::Request)?;
        let mut reply = Reply {
            status: response.status(),
            url: response.url(),
            cross_origin: response.type_() == web_sys::ResponseType::Cors,
            ..Reply::default()
        };
        // `Array.from(headers)`: the [name, value] pairs, walked by index as the config's
        // objects are (js-sys's `try_iter` is a second way to walk a JS value, 0.6 KB).
        for entry in js_sys::Array::from(response.headers().as_ref()).iter() {
            let pair = js_sys::Array::from(&entry);
            if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                reply.headers.push((k, v));
            }
        }
        if let Read::Later { .. } = read {
            return Ok((reply, Some(response)));
        }
        reply.body = whole_body(&response).await?;
        Ok((reply, None))
    }

    /// Reads the body of download `call`'s latest answer (`status`, after `attempts`), which
    /// the engine handed over: to its end (the call succeeds with the bytes), or until it
    /// breaks (the engine decides the call's next attempt).
    async fn read_body(self: Rc<Self>, call: CallId, status: u16, attempts: u32) {
        let verdict = {
            let mut calls = self.calls.lend_mut();
            let Some(slot) = calls.get_mut(&call) else {
                return;
            };
            let last = slot.last.clone();
            let headers = last.as_ref().map(|r| r.headers.clone()).unwrap_or_default();
            let Some(t) = slot.transfer.as_mut() else {
                return;
            };
            let verdict = match t.download.as_mut() {
                Some(d) => d.judge(status, &headers),
                // The first full answer: the body starts, and its head is the call's.
                None if status == 200 => {
                    t.download = Some(Download::delivered_as(Delivery::Decoded, &headers));
                    t.head = last.clone();
                    Verdict::Continue
                }
                None => Verdict::NotTheBody,
            };
            match verdict {
                // The body again from its first byte: this answer's head is the call's now.
                Verdict::Restart { .. } => t.head = last,
                Verdict::NotTheBody => t.head = None,
                _ => {}
            }
            verdict
        };
        let response = match verdict {
            Verdict::Continue | Verdict::Restart { .. } => self.transfer_mut(call, |t| {
                if matches!(verdict, Verdict::Restart { .. }) {
                    t.body.clear();
                }
                t.unread.take()
            }),
            Verdict::Fail(error) => {
                self.settle(call, Err(CallError::Resume(error)));
                self.engine.lend_mut().cancel(call, js::now());
                self.pump();
                return;
            }
            // A final answer that is not the body (a 404, or a status the engine gave up
            // retrying): the call answers with it, as a plain request would.
            Verdict::NotTheBody => {
                let response = self.transfer_mut(call, |t| t.unread.take()).flatten();
                let body = match response {
                    Some(r) => whole_body(&r).await.unwrap_or_default(),
                    None => Vec::new(),
                };
                self.transfer_mut(call, |t| t.body = body);
                self.finish_download(call, status, attempts);
                return;
            }
        };
        let Some(response) = response.flatten() else {
            return;
        };
        let reader = response
            .body()
            .and_then(|stream| js::call_method(&stream, "getReader").ok());
        let Some(reader) = reader else {
            // An empty body (no stream at all).
            self.finish_download(call, status, attempts);
            return;
        };
        // A body that sends nothing for as long as an attempt may take is taken up as one that
        // broke, as a timeout.
        let idle =
            (self.engine.lend().config().retry.attempt_timeout_ms).map(Duration::from_millis);
        loop {
            // `None`: the body sent nothing for `idle`.
            let read = match js::call_method(&reader, "read") {
                Ok(p) => match idle {
                    Some(idle) => js::within(Promise::from(p), idle).await,
                    None => Some(JsFuture::from(Promise::from(p)).await),
                },
                Err(e) => Some(Err(e)),
            };
            let chunk = match read {
                Some(Ok(chunk)) => chunk,
                broke => {
                    let kind = match broke {
                        None => {
                            let _ = js::call_method(&reader, "cancel");
                            TransportError::Timeout
                        }
                        Some(_) => TransportError::Truncated,
                    };
                    // The body broke: the engine decides the call's next attempt.
                    self.transfer_mut(call, |t| t.fetch = None);
                    let _ = self.engine.lend_mut().resume(call, kind, js::now());
                    self.pump();
                    return;
                }
            };
            let done = js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))
                .ok()
                .and_then(|d| d.as_bool())
                .unwrap_or(true);
            if done {
                self.finish_download(call, status, attempts);
                return;
            }
            let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value"))
                .map(|v| Uint8Array::new(&v).to_vec())
                .unwrap_or_default();
            let kept = self.transfer_mut(call, |t| {
                if let Some(d) = t.download.as_mut() {
                    d.delivered(value.len() as u64);
                }
                t.body.extend_from_slice(&value);
            });
            if kept.is_none() {
                // The call ended meanwhile (cancelled, or its client went).
                let _ = js::call_method(&reader, "cancel");
                return;
            }
        }
    }

    /// Runs `f` on download `call`'s transfer, if the call is still open.
    fn transfer_mut<T>(&self, call: CallId, f: impl FnOnce(&mut Transfer) -> T) -> Option<T> {
        let mut calls = self.calls.lend_mut();
        calls.get_mut(&call)?.transfer.as_mut().map(f)
    }

    /// Download `call`'s body is whole: the call answers with it and ends.
    fn finish_download(self: &Rc<Self>, call: CallId, status: u16, attempts: u32) {
        let reply = {
            let mut calls = self.calls.lend_mut();
            let Some(slot) = calls.get_mut(&call) else {
                return;
            };
            let head = slot.transfer.as_mut().and_then(|t| t.head.take());
            let mut reply = head.unwrap_or_else(|| {
                let mut last = slot.last.take().unwrap_or_default();
                last.status = status;
                last
            });
            if let Some(t) = slot.transfer.as_mut() {
                reply.body = core::mem::take(&mut t.body);
                t.fetch = None;
            }
            reply.attempts = attempts;
            reply.call = call.number();
            reply
        };
        self.settle(call, Ok(reply));
        self.engine.lend_mut().body_read(call, js::now());
        self.pump();
    }

    /// Ends `call`'s slot with `answer`.
    fn settle(&self, call: CallId, answer: Result<Reply, CallError>) {
        let Some(mut slot) = self.calls.lend_mut().remove(&call) else {
            return;
        };
        slot.finish();
        if let Some(settle) = slot.settle.take() {
            settle.send(answer);
        }
    }

    async fn fetch_token(self: Rc<Self>) {
        let provider = self.options.token_provider.clone();
        let result = match provider {
            Some(p) => p().await,
            None => Err("a call needs an access token but the client has no tokenProvider".into()),
        };
        let result = result.and_then(|grant| {
            if resile_core::token::sendable(&grant.access_token) {
                Ok(grant)
            } else {
                Err(resile_core::token::UNSENDABLE_TOKEN.into())
            }
        });
        let now = js::now();
        match result {
            Ok(grant) => {
                *self.last_token_error.lend_mut() = None;
                let generation = self.engine.lend_mut().token_fetched(grant.expires_in, now);
                self.tokens
                    .lend_mut()
                    .insert(generation, grant.access_token);
            }
            Err(message) => {
                *self.last_token_error.lend_mut() = Some(message);
                self.engine.lend_mut().token_failed(now);
            }
        }
        self.pump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[derive(Default)]
    struct Woken(AtomicBool);

    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Polls `settled` once with a waker that records whether it was woken.
    fn poll(settled: &mut Settled, woken: &Arc<Woken>) -> Poll<Option<Result<Reply, CallError>>> {
        let waker = Waker::from(woken.clone());
        Pin::new(settled).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn an_answer_wakes_its_caller_and_is_handed_over_once() {
        let (settle, mut settled) = answer();
        let woken = Arc::new(Woken::default());
        assert!(poll(&mut settled, &woken).is_pending());
        settle.send(Ok(Reply {
            status: 204,
            ..Reply::default()
        }));
        assert!(woken.0.load(Ordering::SeqCst), "the caller is woken");
        match poll(&mut settled, &woken) {
            Poll::Ready(Some(Ok(reply))) => assert_eq!(reply.status, 204),
            _ => panic!("the answer sent"),
        }
    }

    #[test]
    fn a_driver_end_dropped_without_an_answer_ends_the_wait() {
        let (settle, mut settled) = answer();
        let woken = Arc::new(Woken::default());
        assert!(poll(&mut settled, &woken).is_pending());
        drop(settle);
        assert!(woken.0.load(Ordering::SeqCst), "the caller is woken");
        assert!(matches!(poll(&mut settled, &woken), Poll::Ready(None)));
    }
}
