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
//!   with [`Why::BodyNotReplayable`](crate::Why::BodyNotReplayable) — unless a
//!   [`BodyFactory`] in the request's extensions makes the body again: then every attempt's
//!   body is the factory's, and the call is retried like one with a body in memory.
//!
//! ```no_run
//! # async fn demo(http: reqwest_middleware::ClientWithMiddleware) -> Result<(), reqwest_middleware::Error> {
//! use resile::BodyFactory;
//!
//! // Chunks produced again for every attempt (a file reopened for each works the same way).
//! let parts: Vec<bytes::Bytes> = vec!["a,b\n".into(), "c,d\n".into()];
//! let upload = BodyFactory::new(move || {
//!     futures::stream::iter(parts.clone().into_iter().map(Ok::<_, std::io::Error>))
//! });
//! let response = http
//!     .put("https://api.example.com/uploads/report.csv")
//!     .with_extension(upload)
//!     .send()
//!     .await?;
//! # let _ = response; Ok(()) }
//! ```
//! - A request with its own `Authorization` keeps it; otherwise, if the client has a token
//!   source, each attempt carries `Authorization: Bearer` with the engine's token.
//! - Every attempt carries the engine's `X-Request-ID` (one per call).
//! - A [`CallOptions`] in the request's extensions
//!   (`reqwest_middleware::RequestBuilder::with_extension`) sets the call's deadline, attempts
//!   and key policy.
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
use reqwest::header::HeaderValue;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use resile_core::{Outcome, TransportError, UuidText};

use crate::body::BodyFactory;
use crate::call_loop::{self, Exchange};
use crate::driver::{CallLog, SendOrder};
use crate::http_call::{Incoming, Latest};
use crate::telemetry::Target;
use crate::transport::{self, Attempt};
use crate::{Client, ClientBuilder, Error};

pub use crate::http_call::{CallOptions, CallReport};

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

#[async_trait::async_trait]
impl Middleware for ResileMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let shared = &self.client.shared;
        let incoming = match Incoming::new(
            req.method(),
            req.url().origin().ascii_serialization(),
            req.headers(),
            extensions.get::<CallOptions>(),
        ) {
            Ok(incoming) => incoming,
            Err(e) => return Err(reqwest_middleware::Error::Middleware(anyhow::Error::new(e))),
        };
        let factory = extensions.get::<BodyFactory>().cloned();
        let replayable = factory.is_some() || req.try_clone().is_some();
        let spec = incoming.spec(shared, replayable);
        let url = req.url().to_string();
        let method = req.method().clone();
        let target = Target {
            method: method.as_str(),
            url: &url,
            redact: &shared.config.redact_query_params,
        };
        let span = tracing::info_span!(
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
            factory,
            explicit_key: incoming.explicit_key.clone(),
            next,
            extensions: &mut *extensions,
            request_id: &mut request_id,
            last: Latest::new(),
        };
        let result =
            call_loop::drive(shared, spec, target, span, Some(log.clone()), downstream).await;
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
    /// Makes each attempt's body, when the caller gave one.
    factory: Option<BodyFactory>,
    explicit_key: Option<HeaderValue>,
    next: Next<'n>,
    extensions: &'n mut Extensions,
    /// The call's `X-Request-ID`, for the report.
    request_id: &'r mut String,
    last: Latest<Response>,
}

/// Each attempt runs on its own copy of the caller's extensions (with hedging several are out
/// at once); the kept answer's copy is written back.
impl<'n> Exchange for Downstream<'n, '_> {
    type Received = (Response, Extensions);
    type Output = Response;
    type Attempt = BoxFuture<'n, Attempt<Self::Received>>;

    fn send(&mut self, order: SendOrder, request_id: Option<&UuidText>) -> Self::Attempt {
        let req = match (&self.factory, self.replayable) {
            (Some(factory), _) => self.template.as_ref().map(|t| with_body(t, factory)),
            (None, true) => self.template.as_ref().and_then(Request::try_clone),
            (None, false) => self.template.take(),
        };
        let Some(mut req) = req else {
            return Box::pin(future::ready(Attempt::BodyGone));
        };
        let id = request_id.and_then(transport::uuid_value);
        let key = self.explicit_key.as_ref();
        transport::add_engine_headers(req.headers_mut(), key, &order, id.as_ref());
        if let (true, Some(_), Some(id)) = (
            self.request_id.is_empty(),
            order.headers.request_id,
            request_id,
        ) {
            *self.request_id = id.as_str().to_owned();
        }
        let next: Next<'n> = self.next.clone();
        let mut extensions = self.extensions.clone();
        Box::pin(async move {
            match next.run(req, &mut extensions).await {
                Ok(response) => Attempt::Response((response, extensions)),
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

    fn received(
        &mut self,
        (response, extensions): Self::Received,
        report: impl FnOnce(Outcome<'_>),
    ) {
        *self.extensions = extensions;
        self.last.received(response, report);
    }

    fn lost(&mut self) {
        self.last.lost();
    }

    fn last_status(&self) -> Option<u16> {
        self.last.status()
    }

    fn done(self, _attempts: u32, _request_id: Option<UuidText>) -> Result<Response, Error> {
        self.last.answer()
    }
}

/// A copy of `template` whose body `factory` makes anew.
fn with_body(template: &Request, factory: &BodyFactory) -> Request {
    let mut req = Request::new(template.method().clone(), template.url().clone());
    *req.headers_mut() = template.headers().clone();
    *req.timeout_mut() = template.timeout().copied();
    *req.version_mut() = template.version();
    *req.body_mut() = Some(factory.make());
    req
}
