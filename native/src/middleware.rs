//! A [`reqwest_middleware::Middleware`] driven by resile's engine (feature `reqwest-middleware`).
//!
//! [`ResileMiddleware`] puts a [`Client`]'s engine inside an existing reqwest-middleware stack:
//! the engine decides every retry, wait and refusal exactly as it does for the client
//! (`Retry-After` in both forms, rate-limit hints, the retry budget, the breaker and limiter per
//! host, idempotency keys, the token), and the rest of the stack performs each attempt. Built
//! from a `Client`, it shares that client's engine: one breaker, one budget, one set of learned
//! limits, one token for both.
//!
//! ```no_run
//! use reqwest_middleware::ClientBuilder;
//! use resile::middleware::{CallReport, ResileMiddleware};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let resile = resile::Client::builder().build()?;
//! let http = ClientBuilder::new(reqwest::Client::new())
//!     .with(ResileMiddleware::new(&resile))
//!     .build();
//! match http.get("https://api.example.com/v1/users/42").send().await {
//!     Ok(response) => {
//!         let report = response.extensions().get::<CallReport>().expect("set by resile");
//!         println!("{} after {} attempt(s)", response.status(), report.attempts);
//!     }
//!     Err(reqwest_middleware::Error::Middleware(e)) => match e.downcast_ref::<resile::Error>() {
//!         Some(e) => println!("resile gave up: {e} (why: {:?})", e.why()),
//!         None => println!("another middleware failed: {e}"),
//!     },
//!     Err(e) => println!("{e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! ## Per request
//!
//! - The engine's host is the URL's `scheme://authority`; its method, the request's.
//! - An `Idempotency-Key` header already on the request is the caller's own key
//!   (`Provided`), sent on every attempt; without one, POST and PATCH get the engine's key.
//! - The request can be sent again if [`reqwest::Request::try_clone`] can copy it. A streaming
//!   body cannot: it is sent once, and a failure the engine would have retried ends the call
//!   with [`Why::BodyNotReplayable`](crate::Why::BodyNotReplayable).
//! - A request with its own `Authorization` keeps it; otherwise, if the client has a token
//!   source, each attempt carries `Authorization: Bearer` with the engine's token.
//! - Every attempt carries the engine's `X-Request-ID` (one per call).
//!
//! ## What comes back
//!
//! - The final response, whatever its status, once the engine says it is final. Its body is
//!   not read: what the engine judges is the status and the headers.
//! - A [`CallReport`] (attempts, request id, the engine's decisions for this call) in the
//!   response's extensions, and in the request's [`Extensions`] either way (read it there with
//!   [`reqwest_middleware::ClientWithMiddleware::execute_with_extensions`], also after a
//!   failure).
//! - A failure as [`reqwest_middleware::Error::Middleware`] wrapping a [`crate::Error`]:
//!   downcast it for [`crate::Error::why`], [`crate::Error::is_retryable`] and the rest.
//!
//! The client's own request settings (base URL, default headers, redirects, response size
//! limits) belong to [`Client`]'s requests and do not apply here: the stack's
//! `reqwest::Client` sends the request.

use futures::future::{self, BoxFuture};
use http::Extensions;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tracing::Instrument;

use resile_core::{CallSpec, Event, EventKind, Idempotency, Outcome, TransportError, UuidText};

use crate::call_loop::{self, Exchange};
use crate::driver::{CallLog, SendOrder, Shared};
use crate::transport::{self, Attempt, HintHeaders, IDEMPOTENCY_KEY};
use crate::{Client, ClientBuilder, Error};

/// A reqwest-middleware [`Middleware`] that sends each request as a resile call; see the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct ResileMiddleware {
    client: Client,
}

impl ResileMiddleware {
    /// Driven by `client`'s engine: budget, breaker, limiter, learned limits and token are
    /// shared with the client and its clones.
    pub fn new(client: &Client) -> Self {
        ResileMiddleware {
            client: client.clone(),
        }
    }

    /// Driven by a new engine, configured by `builder`.
    ///
    /// ```
    /// let middleware = resile::middleware::ResileMiddleware::build(
    ///     resile::Client::builder().engine(resile::Config::default()),
    /// )
    /// .unwrap();
    /// assert_eq!(middleware.client().stats().calls, 0);
    /// ```
    pub fn build(builder: ClientBuilder) -> Result<Self, Error> {
        Ok(ResileMiddleware {
            client: builder.build()?,
        })
    }

    /// The client whose engine decides (for [`Client::stats`], [`Client::hosts`], ...).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl From<Client> for ResileMiddleware {
    fn from(client: Client) -> Self {
        ResileMiddleware { client }
    }
}

/// What the engine did for one request through [`ResileMiddleware`].
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
    fn from_log(log: &CallLog, request_id: String) -> Self {
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

#[async_trait::async_trait]
impl Middleware for ResileMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let shared = &self.client.shared;
        let host = transport::host_key(req.url()).into_owned();
        // CONNECT and extension methods: treated as writes that are not safe to repeat.
        let method =
            resile_core::Method::parse(req.method().as_str()).unwrap_or(resile_core::Method::Post);
        let explicit_key = req.headers().get(IDEMPOTENCY_KEY).cloned();
        let idempotency = match explicit_key {
            Some(_) => Idempotency::Provided,
            None => Idempotency::Auto,
        };
        let own_authorization = req.headers().contains_key(AUTHORIZATION);
        let replayable = req.try_clone().is_some();
        let mut spec = CallSpec::new(method, &host).idempotency(idempotency);
        spec.replayable = replayable;
        spec.own_authorization = own_authorization;
        spec.needs_token = shared.has_token_source && !own_authorization;
        let span = tracing::debug_span!(
            "resile.middleware",
            method = %req.method(),
            url = %crate::redact::redact_url(req.url().as_str(), &shared.config.redact_query_params),
            call = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        let log = CallLog::default();
        let mut request_id = String::new();
        let downstream = Downstream {
            template: Some(req),
            replayable,
            explicit_key,
            next,
            extensions: &mut *extensions,
            request_id: &mut request_id,
            last: None,
        };
        let result = call_loop::drive(shared, spec, Some(log.clone()), downstream)
            .instrument(span)
            .await;
        let report = CallReport::from_log(&log, request_id);
        extensions.insert(report.clone());
        match result {
            Ok(mut response) => {
                response.extensions_mut().insert(report);
                Ok(response)
            }
            Err(e) => Err(reqwest_middleware::Error::Middleware(anyhow::Error::new(e))),
        }
    }
}

/// The rest of the stack, as the engine's transport: one `next.run` per attempt.
struct Downstream<'n, 'r> {
    /// The caller's request; copied for each attempt, or taken by the only one.
    template: Option<Request>,
    replayable: bool,
    explicit_key: Option<HeaderValue>,
    next: Next<'n>,
    extensions: &'n mut Extensions,
    /// The call's `X-Request-ID`, for the report.
    request_id: &'r mut String,
    last: Option<Response>,
}

impl Exchange for Downstream<'_, '_> {
    type Received = Response;
    type Output = Response;

    fn send<'a>(&'a mut self, order: &'a SendOrder) -> BoxFuture<'a, Attempt<Response>> {
        let req = if self.replayable {
            self.template.as_ref().and_then(Request::try_clone)
        } else {
            self.template.take()
        };
        let Some(mut req) = req else {
            return Box::pin(future::ready(Attempt::BodyGone));
        };
        transport::add_engine_headers(req.headers_mut(), self.explicit_key.as_ref(), order);
        if let (true, Some(id)) = (self.request_id.is_empty(), order.headers.request_id) {
            *self.request_id = id.to_string();
        }
        let next: Next<'a> = self.next.clone();
        let run = next.run(req, &mut *self.extensions);
        Box::pin(async move {
            match run.await {
                Ok(response) => Attempt::Response(response),
                Err(reqwest_middleware::Error::Reqwest(e)) => Attempt::Failed {
                    kind: transport::classify_error(&e),
                    message: transport::error_text(&e),
                },
                Err(reqwest_middleware::Error::Middleware(e)) => Attempt::Failed {
                    kind: TransportError::Other,
                    message: format!("{e:#}"),
                },
            }
        })
    }

    fn received(&mut self, response: Response, report: impl FnOnce(Outcome<'_>)) {
        {
            let hints = HintHeaders::new(response.headers());
            report(Outcome::Response(resile_core::Response::new(
                response.status().as_u16(),
                &hints,
                Shared::wall(),
            )));
        }
        self.last = Some(response);
    }

    fn lost(&mut self) {
        self.last = None;
    }

    fn last_status(&self) -> Option<u16> {
        self.last.as_ref().map(|r| r.status().as_u16())
    }

    fn done(self, _attempts: u32, _request_id: Option<UuidText>) -> Result<Response, Error> {
        match self.last {
            Some(response) => Ok(response),
            None => Err(Error::Transport {
                kind: TransportError::Other,
                message: "the engine finished a call that has no response".into(),
            }),
        }
    }
}
