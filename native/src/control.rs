//! Fallbacks, breakers by hand and retry predicates: what the native client adds to the
//! engine's decisions (`resile_core::engine::{fallback, predicate}`, `resile_core::breaker`).
//!
//! - [`Fallback`]: a request's stand-in for when its host is refused or its retries run out.
//!   The engine decides whether it applies; the client holds the values and the last good
//!   responses (bounded by [`ClientBuilder::fallback_store`](crate::ClientBuilder::fallback_store)),
//!   and the [`Response`](crate::Response) says it is one ([`Response::fallback`](crate::Response::fallback)).
//! - [`BreakerOverride`]: a breaker held open ([`Client::isolate`]) or closed
//!   ([`Client::force_closed`]) until the handle is released or dropped;
//!   [`Client::reset_breaker`], [`Client::export_breakers`], [`Client::import_breakers`].
//! - [`RetryCheck`]: what a request's retry predicate ([`RequestBuilder::retry_if`](crate::RequestBuilder::retry_if))
//!   sees: the request's method, URL and headers, and the attempt's outcome.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url, Version};

use resile_core::breaker::{BreakerHold, BreakerSnapshot, HoldKind};
use resile_core::{
    Attempted, ControlError, Failure, FallbackSpec, FallbackUsed, FallbackWrites, Predicate,
    RetryPredicate, RetryVerdict, Seen, Why,
};

use crate::client::Client;
use crate::driver::Shared;
use crate::error::Error;

/// A request's fallback: the answer it gives instead of failing when its host is refused (an
/// open, half-open-busy or isolated breaker, a server hold past the deadline) or its retries
/// ran out (attempts, budget, deadline, a `Retry-After` over the cap). Other failures fail as
/// they would without one, and a write (POST, PATCH) whose last attempt may have been applied
/// fails too unless [`Fallback::allow_writes`] says otherwise. Not used by streaming calls.
///
/// ```no_run
/// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
/// use std::time::Duration;
/// use resile::Fallback;
///
/// let prices = client
///     .get("https://api.example.com/prices")
///     .fallback(Fallback::last_good(Duration::from_secs(300)))
///     .send()
///     .await?;
/// if let Some(f) = prices.fallback() {
///     println!("stale prices, because {}", f.why());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Fallback {
    source: Source,
    writes: FallbackWrites,
}

#[derive(Clone, Debug)]
enum Source {
    Value {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    LastGood {
        max_age: Duration,
    },
}

impl Fallback {
    /// Answer with this status and body.
    pub fn value(status: StatusCode, body: impl Into<Bytes>) -> Fallback {
        Fallback {
            source: Source::Value {
                status,
                headers: HeaderMap::new(),
                body: body.into(),
            },
            writes: FallbackWrites::Refuse,
        }
    }

    /// Answer 200 with `value` as a JSON body.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Fallback, Error> {
        let body = serde_json::to_vec(value).map_err(|e| Error::InvalidRequest {
            message: format!("the fallback value is not JSON: {e}"),
        })?;
        let mut f = Fallback::value(StatusCode::OK, body);
        if let Source::Value { headers, .. } = &mut f.source {
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static("application/json"),
            );
        }
        Ok(f)
    }

    /// Answer with the last 2xx response to the same method and URL, if it is at most
    /// `max_age` old when it is used. The responses of requests with this fallback are kept.
    pub fn last_good(max_age: Duration) -> Fallback {
        Fallback {
            source: Source::LastGood { max_age },
            writes: FallbackWrites::Refuse,
        }
    }

    /// Let a write whose last attempt may have been applied fall back too.
    pub fn allow_writes(mut self) -> Fallback {
        self.writes = FallbackWrites::Allow;
        self
    }

    pub(crate) fn keeps_last_good(&self) -> bool {
        matches!(self.source, Source::LastGood { .. })
    }

    /// The engine's spec, and the response it would answer with.
    pub(crate) fn resolve(&self, shared: &Shared, key: &str) -> Option<(FallbackSpec, Stored)> {
        let (spec, stored) = match &self.source {
            Source::Value {
                status,
                headers,
                body,
            } => (
                FallbackSpec::value(),
                Stored {
                    status: *status,
                    headers: headers.clone(),
                    body: body.clone(),
                    url: None,
                    version: Version::HTTP_11,
                },
            ),
            Source::LastGood { max_age } => {
                let store = shared.last_good();
                let (stored, at) = store.get(key)?;
                (FallbackSpec::stored(at, *max_age), stored.clone())
            }
        };
        Some((spec.writes(self.writes), stored))
    }
}

/// A response kept for a fallback.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that answered; `None` for a caller's value (the request's URL is used).
    pub url: Option<Url>,
    pub version: Version,
}

impl Stored {
    /// What it costs the store: its body and headers.
    pub(crate) fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        self.body.len() + headers
    }
}

/// The key of a request in the last-good store.
pub(crate) fn store_key(method: &Method, url: &Url) -> String {
    format!("{method} {url}")
}

/// How a response that is a fallback came to be: the failure it stands in for and which
/// fallback answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FallbackAnswer {
    pub(crate) failure: Failure,
    pub(crate) used: FallbackUsed,
}

impl FallbackAnswer {
    /// Why the call did not answer for itself.
    pub fn why(&self) -> Why {
        self.failure.why
    }

    /// The failure the fallback stands in for.
    pub fn failure(&self) -> &Failure {
        &self.failure
    }

    /// The caller's value, or the last good response (with its age).
    pub fn used(&self) -> FallbackUsed {
        self.used
    }
}

/// What a retry predicate sees of one attempt: the request, and how the attempt ended.
pub struct RetryCheck<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The request's URL.
    pub url: &'a Url,
    /// The request's headers (the client's defaults included).
    pub headers: &'a HeaderMap,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The response head (status and headers, `get` takes a lowercase name), or the kind of
    /// transport failure.
    pub outcome: Seen<'a>,
}

/// The headers a judged response shows the engine: the hint headers first (as every response
/// does), then any other header of the map, for the caller's predicate.
pub(crate) struct JudgedHeaders<'a> {
    pub hints: crate::transport::HintHeaders<'a>,
    pub map: &'a HeaderMap,
}

impl resile_core::headers::Headers for JudgedHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.hints
            .get(name)
            .or_else(|| self.map.get(name).and_then(|v| v.to_str().ok()))
    }

    fn may_have_prefix(&self, prefix: &str) -> bool {
        self.hints.may_have_prefix(prefix)
    }
}

/// A request's retry predicate, as [`RequestBuilder::retry_if`](crate::RequestBuilder::retry_if) takes it.
pub(crate) type RetryIf = Arc<dyn Fn(&RetryCheck<'_>) -> RetryVerdict + Send + Sync>;

/// The caller's predicate with the request it judges, as the engine asks it. A predicate that
/// panics has no opinion.
struct Judge {
    method: Method,
    url: Url,
    headers: HeaderMap,
    f: RetryIf,
}

impl RetryPredicate for Judge {
    fn judge(&self, a: &Attempted<'_>) -> RetryVerdict {
        let check = RetryCheck {
            method: &self.method,
            url: &self.url,
            headers: &self.headers,
            attempt: a.attempt,
            outcome: a.outcome,
        };
        catch_unwind(AssertUnwindSafe(|| (self.f)(&check))).unwrap_or_else(|_| {
            tracing::error!(target: "resile", "a retry predicate panicked; the engine decides");
            RetryVerdict::Decide
        })
    }
}

pub(crate) fn predicate(f: RetryIf, method: &Method, url: &Url, headers: &HeaderMap) -> Predicate {
    Predicate::new(Judge {
        method: method.clone(),
        url: url.clone(),
        headers: headers.clone(),
        f,
    })
}

/// A hold on one host's breaker: isolated (held open, calls fail fast with
/// [`Why::BreakerIsolated`]) or forced closed. Holds count; the breaker goes back to its own
/// rules when the last one is released ([`BreakerOverride::release`]) or dropped. When the
/// last isolation goes, the breaker is closed afresh.
#[must_use = "dropping the override releases it at once"]
pub struct BreakerOverride {
    shared: Arc<Shared>,
    hold: Option<BreakerHold>,
}

impl fmt::Debug for BreakerOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerOverride")
            .field("hold", &self.hold)
            .finish()
    }
}

impl BreakerOverride {
    /// The host (`scheme://authority`).
    pub fn host(&self) -> &str {
        self.hold.as_ref().map_or("", BreakerHold::host)
    }

    /// Isolated or forced closed.
    pub fn kind(&self) -> HoldKind {
        self.hold
            .as_ref()
            .map_or(HoldKind::Isolate, BreakerHold::kind)
    }

    /// Gives the hold back now.
    pub fn release(mut self) {
        if let Some(hold) = self.hold.take() {
            self.shared.release_breaker(hold);
        }
    }
}

impl Drop for BreakerOverride {
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            self.shared.release_breaker(hold);
        }
    }
}

impl Client {
    /// Holds the breaker of `url`'s host open: calls to it fail fast with
    /// [`Why::BreakerIsolated`] (or answer with their [`Fallback`]) until the override is
    /// released or dropped. The host is `scheme://authority`; a path is ignored, and a relative
    /// URL resolves against the base URL.
    ///
    /// ```
    /// # fn demo() -> Result<(), resile::Error> {
    /// let client = resile::Client::new();
    /// let maintenance = client.isolate("https://api.example.com")?;
    /// // ... calls to api.example.com fail fast ...
    /// maintenance.release();
    /// # Ok(()) }
    /// # demo().unwrap();
    /// ```
    pub fn isolate(&self, url: &str) -> Result<BreakerOverride, Error> {
        self.hold(url, HoldKind::Isolate)
    }

    /// Holds the breaker of `url`'s host closed: calls flow and nothing trips it until the
    /// override is released or dropped. An isolation wins over it.
    pub fn force_closed(&self, url: &str) -> Result<BreakerOverride, Error> {
        self.hold(url, HoldKind::ForceClosed)
    }

    /// Closes the breaker of `url`'s host now, with no trips and a fresh failure window.
    pub fn reset_breaker(&self, url: &str) -> Result<(), Error> {
        let host = self.host_of(url)?;
        self.shared.control(|e, now| e.reset_breaker(&host, now))
    }

    /// Every known host's breaker, with open times relative to now and the wall clock, to
    /// import into a later client ([`BreakerSnapshot::to_json`] / [`BreakerSnapshot::from_json`]).
    ///
    /// Not from inside the event callback, like every breaker control.
    pub fn export_breakers(&self) -> Result<BreakerSnapshot, Error> {
        self.shared.export_breakers()
    }

    /// Takes each host's breaker from `snapshot`, less the wall-clock time since it was
    /// exported; returns the number of hosts. A snapshot over `max_hosts` imports nothing.
    ///
    /// ```
    /// # fn demo() -> Result<(), resile::Error> {
    /// let before = resile::Client::new();
    /// let text = before.export_breakers()?.to_json();
    /// // ... a later process ...
    /// let after = resile::Client::new();
    /// let snapshot = resile::BreakerSnapshot::from_json(&text).map_err(resile::ControlError::from)?;
    /// after.import_breakers(&snapshot)?;
    /// # Ok(()) }
    /// # demo().unwrap();
    /// ```
    pub fn import_breakers(&self, snapshot: &BreakerSnapshot) -> Result<usize, Error> {
        let wall = Some(Shared::wall());
        self.shared
            .control(|e, now| e.import_breakers(snapshot, now, wall))
    }

    fn hold(&self, url: &str, kind: HoldKind) -> Result<BreakerOverride, Error> {
        let host = self.host_of(url)?;
        let hold = self
            .shared
            .control(|e, now| e.hold_breaker(&host, kind, now))?;
        Ok(BreakerOverride {
            shared: self.shared.clone(),
            hold: Some(hold),
        })
    }

    fn host_of(&self, url: &str) -> Result<String, Error> {
        let url = crate::request::resolve_url(self.shared.base_url.as_ref(), url)?;
        Ok(url.origin().ascii_serialization())
    }
}

impl From<ControlError> for Error {
    fn from(e: ControlError) -> Self {
        Error::BreakerControl(e)
    }
}
