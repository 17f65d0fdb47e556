//! A resile call for a request that arrives whole, as an `http` request: what the
//! reqwest-middleware integration and the tower service share. The engine's call from the
//! request's method and headers, the engine's reading of each response, the final answer, and
//! the report of what the engine did.

use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use resile_core::{CallSpec, Event, EventKind, Idempotency, Outcome, TransportError};

use crate::driver::{CallLog, Shared};
use crate::transport::{HintHeaders, IDEMPOTENCY_KEY};
use crate::Error;

/// What the engine needs to know about a request before its first attempt.
pub(crate) struct Incoming {
    /// `scheme://authority`: the engine's host key.
    pub host: String,
    method: resile_core::Method,
    /// The caller's own `Idempotency-Key`, sent on every attempt.
    pub explicit_key: Option<HeaderValue>,
    own_authorization: bool,
}

impl Incoming {
    pub(crate) fn new(method: &http::Method, host: String, headers: &HeaderMap) -> Self {
        Incoming {
            host,
            // CONNECT and extension methods: treated as writes that are not safe to repeat.
            method: resile_core::Method::parse(method.as_str())
                .unwrap_or(resile_core::Method::Post),
            explicit_key: headers.get(IDEMPOTENCY_KEY).cloned(),
            own_authorization: headers.contains_key(AUTHORIZATION),
        }
    }

    /// The engine's call: a caller's own key is `Provided`; a request with its own
    /// `Authorization` keeps it, others get the client's token when it has a source.
    pub(crate) fn spec(&self, shared: &Shared, replayable: bool) -> CallSpec<'_> {
        let idempotency = match self.explicit_key {
            Some(_) => Idempotency::Provided,
            None => Idempotency::Auto,
        };
        let mut spec = CallSpec::new(self.method, &self.host).idempotency(idempotency);
        spec.replayable = replayable;
        spec.own_authorization = self.own_authorization;
        spec.needs_token = shared.has_token_source && !self.own_authorization;
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
                Shared::wall(),
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
