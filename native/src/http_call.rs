//! A resile call for a request that arrives whole, as an `http` request: what the
//! reqwest-middleware integration and the tower service share. The engine's call from the
//! request's method and headers, the engine's reading of each response, the final answer, and
//! the report of what the engine did.

use std::time::Duration;

use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use resile_core::{
    CallSpec, Event, EventKind, Idempotency, IdempotencyKey, Outcome, TransportError,
};

use crate::driver::{CallLog, Shared};
use crate::transport::{HintHeaders, IDEMPOTENCY_KEY};
use crate::Error;

/// Settings of one request sent through an integration (`ResileMiddleware`, `ResileService`),
/// put in the request's extensions; without them the engine's configuration applies.
///
/// ```
/// use std::time::Duration;
/// use resile::IdempotencyKey;
/// # #[cfg(feature = "tower")]
/// use resile::tower::CallOptions;
/// # #[cfg(not(feature = "tower"))]
/// # use resile::middleware::CallOptions;
///
/// let options = CallOptions::default()
///     .deadline(Duration::from_secs(5))
///     .max_attempts(2)
///     .idempotency_key(IdempotencyKey::Off);
/// let mut request = http::Request::post("http://api.example.com/v1/orders").body(()).unwrap();
/// request.extensions_mut().insert(options);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct CallOptions {
    /// The call's deadline, instead of `retry.deadline_ms`.
    pub deadline: Option<Duration>,
    /// The call's attempts at most, instead of `retry.max_attempts`.
    pub max_attempts: Option<u32>,
    /// The call's `Idempotency-Key`; unset: the request's own header if it has one, else
    /// [`IdempotencyKey::Auto`].
    pub idempotency_key: Option<IdempotencyKey>,
    /// No access token on this call, even if the client has a token source.
    pub without_token: bool,
}

impl CallOptions {
    /// The defaults: the engine's deadline and attempts, the token, an automatic key.
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// No access token on this call, even if the client has a token source.
    pub fn without_token(mut self) -> Self {
        self.without_token = true;
        self
    }

    /// No engine-made `Idempotency-Key`: a POST or PATCH that may have been applied is then
    /// never repeated (the same as `idempotency_key(IdempotencyKey::Off)`).
    pub fn without_idempotency_key(self) -> Self {
        self.idempotency_key(IdempotencyKey::Off)
    }

    /// The call's deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The call's attempts at most.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The call's `Idempotency-Key` policy (`Explicit` sends that key on every attempt).
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

/// What the engine needs to know about a request before its first attempt.
pub(crate) struct Incoming {
    /// `scheme://authority`: the engine's host key.
    pub host: String,
    method: resile_core::Method,
    idempotency: Idempotency,
    /// The caller's own `Idempotency-Key`, sent on every attempt.
    pub explicit_key: Option<HeaderValue>,
    own_authorization: bool,
    without_token: bool,
    deadline: Option<Duration>,
    max_attempts: Option<u32>,
}

impl Incoming {
    pub(crate) fn new(
        method: &http::Method,
        host: String,
        headers: &HeaderMap,
        options: Option<&CallOptions>,
    ) -> Result<Self, Error> {
        let header = headers.get(IDEMPOTENCY_KEY).cloned();
        let key = options.and_then(|o| o.idempotency_key.as_ref());
        let (idempotency, explicit_key) = match (key, header) {
            (Some(IdempotencyKey::Explicit(own)), _) => {
                let value = HeaderValue::from_str(own).map_err(|_| Error::InvalidRequest {
                    message: "the Idempotency-Key is not a valid header value".into(),
                })?;
                (Idempotency::Provided, Some(value))
            }
            (Some(IdempotencyKey::Off), _) => (Idempotency::Off, None),
            (_, Some(own)) => (Idempotency::Provided, Some(own)),
            (_, None) => (Idempotency::Auto, None),
        };
        Ok(Incoming {
            host,
            // CONNECT and extension methods: treated as writes that are not safe to repeat.
            method: resile_core::Method::parse(method.as_str())
                .unwrap_or(resile_core::Method::Post),
            idempotency,
            explicit_key,
            own_authorization: headers.contains_key(AUTHORIZATION),
            without_token: options.is_some_and(|o| o.without_token),
            deadline: options.and_then(|o| o.deadline),
            max_attempts: options.and_then(|o| o.max_attempts),
        })
    }

    /// The engine's call: a caller's own key is `Provided`; a request with its own
    /// `Authorization` keeps it, others get the client's token when it has a source.
    pub(crate) fn spec(&self, shared: &Shared, replayable: bool) -> CallSpec<'_> {
        let mut spec = CallSpec::new(self.method, &self.host).idempotency(self.idempotency);
        spec.replayable = replayable;
        spec.own_authorization = self.own_authorization;
        spec.needs_token =
            shared.has_token_source && !self.own_authorization && !self.without_token;
        spec.deadline = self.deadline;
        spec.max_attempts = self.max_attempts;
        spec
    }
}

/// A response as an integration's stack hands it back: the engine reads its status and
/// headers, never its body.
pub(crate) trait Head {
    fn status(&self) -> u16;
    fn headers(&self) -> &HeaderMap;
}

#[cfg(feature = "reqwest-middleware")]
impl Head for reqwest::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

#[cfg(feature = "tower")]
impl<B> Head for http::Response<B> {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

/// The call's latest answer: what the engine is told about it, and what the call answers with
/// once the engine says it is final.
pub(crate) struct Latest<R>(Option<R>);

impl<R: Head> Latest<R> {
    pub(crate) fn new() -> Self {
        Latest(None)
    }

    /// Tells the engine what the response means (through `report`) and keeps it.
    pub(crate) fn received(&mut self, response: R, report: impl FnOnce(Outcome<'_>)) {
        {
            let hints = HintHeaders::new(response.headers());
            report(Outcome::Response(resile_core::Response::new(
                response.status(),
                &hints,
                hints.wall(),
            )));
        }
        self.0 = Some(response);
    }

    /// The latest attempt ended without a response.
    pub(crate) fn lost(&mut self) {
        self.0 = None;
    }

    pub(crate) fn status(&self) -> Option<u16> {
        self.0.as_ref().map(Head::status)
    }

    /// The final answer.
    pub(crate) fn answer(self) -> Result<R, Error> {
        self.0.ok_or_else(|| Error::Transport {
            kind: TransportError::Other,
            message: "the engine finished a call that has no response".into(),
        })
    }
}

/// What the engine did for one request through an integration (the reqwest-middleware
/// `ResileMiddleware`, the tower `ResileService`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CallReport {
    /// Attempts the engine started.
    pub attempts: u32,
    /// The `X-Request-ID` every attempt carried (empty if none was sent).
    pub request_id: String,
    /// The engine's events for this call, in order: its decision log.
    pub events: Vec<Event>,
}

impl CallReport {
    pub(crate) fn from_log(log: &CallLog, request_id: String) -> Self {
        let events = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let attempts = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::AttemptStarted { .. }))
            .count();
        CallReport {
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            request_id,
            events,
        }
    }

    /// The decision log as lines a person can read ([`Event::describe`]).
    pub fn decisions(&self) -> Vec<String> {
        self.events.iter().map(Event::describe).collect()
    }
}
