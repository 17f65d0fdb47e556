//! A tower [`Layer`] and [`Service`] driven by resile's engine (feature `tower`).
//!
//! [`ResileService`] wraps any service of `http::Request` → `http::Response` (hyper-util's
//! client, a service of your own, a stack of tower-http layers) and sends each request as a
//! resile call: the engine decides every retry, wait and refusal exactly as it does for
//! [`Client`] (`Retry-After` in both forms, rate-limit hints, the retry budget, the breaker and
//! limiter per host, idempotency keys, the token), and the inner service performs each attempt.
//! Built from a `Client`, it shares that client's engine.
//!
//! ```no_run
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client as HyperClient;
//! use hyper_util::rt::TokioExecutor;
//! use resile::tower::{CallReport, ResileBody, ResileLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let resile = resile::Client::builder().build()?;
//! let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<ResileBody<Full<bytes::Bytes>>>();
//! let mut service = ServiceBuilder::new().layer(ResileLayer::new(&resile)).service(hyper);
//! let request = http::Request::get("http://api.example.com/v1/users/42").body(Full::default())?;
//! let response = service.ready().await?.call(request).await?;
//! let report = response.extensions().get::<CallReport>().expect("set by resile");
//! println!("{} after {} attempt(s)", response.status(), report.attempts);
//! # Ok(()) }
//! ```
//!
//! ## Per request
//!
//! - The URI must be absolute (`scheme://authority/...`), or carry a `Host` header (then the
//!   scheme is `http`): the engine's host is `scheme://authority`.
//! - The body is read up to the layer's [`body_limit`](ResileLayer::body_limit) (64 KiB by
//!   default) before the first attempt, and sent again from memory on every attempt. A longer
//!   body (or one whose size hint says so) is sent once, as it streams: a failure the engine
//!   would have retried ends the call with
//!   [`Why::BodyNotReplayable`](crate::Why::BodyNotReplayable).
//! - The inner service gets the request as a [`ResileBody`], with the engine's headers added
//!   (`X-Request-ID`, `Idempotency-Key` for writes, the token); a caller's own
//!   `Idempotency-Key` and `Authorization` are kept, as the reqwest-middleware integration
//!   does.
//! - A [`BodyFactory`] in the request's extensions makes the body again for every attempt
//!   (reopening a file, replaying a generator): the request's own body is not sent, and a
//!   streamed upload of any size can be retried without being held in memory.
//! - A [`CallOptions`] in the request's extensions sets the call's deadline, attempts and key
//!   policy (`IdempotencyKey::Off` for a write that must never be repeated).
//!
//! ## What comes back
//!
//! The final response, whatever its status, once the engine says it is final, with a
//! [`CallReport`] in its extensions; its body is not read. A failure is a [`crate::Error`]
//! (with [`Error::why`], [`Error::is_retryable`], ...). An error of the inner service is a
//! failed attempt, classified from its causes (`std::io::Error` kinds, then its text).
//!
//! ## Readiness
//!
//! [`ResileService::poll_ready`] is always ready: admission is the engine's (its concurrency
//! limit queues the call, its rate limit and breaker delay or refuse it, inside the call's
//! future). The inner service's readiness is awaited before *each attempt*, on the clone the
//! call took, and counts against the attempt's timeout; no capacity of the inner service is
//! held while the engine waits between attempts. Put a tower `ConcurrencyLimit` or `Buffer`
//! above the layer to push back on callers before a call starts.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::future::{self, BoxFuture};
use http::header::{HeaderMap, HeaderValue, HOST};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tower_layer::Layer;
use tower_service::Service;

use resile_core::{Outcome, TransportError, UuidText};

use crate::call_loop::{self, Exchange};
use crate::driver::{CallLog, SendOrder};
use crate::http_call::{Incoming, Latest};
use crate::telemetry::Target;
use crate::transport::{self, Attempt};
use crate::{Client, ClientBuilder, Error};

pub use crate::http_call::{CallOptions, CallReport};

/// What an inner service may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes of a request body read into memory to be sent again, unless set otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Makes a fresh request body for each attempt of a call through [`ResileService`]: put one
/// in the request's extensions and every attempt's body is made by it (the request's own body
/// is not sent), so the engine may retry a streamed upload as it retries one held in memory.
///
/// ```
/// use http_body_util::Full;
/// use resile::tower::BodyFactory;
///
/// let upload = BodyFactory::new(|| Full::new(bytes::Bytes::from_static(b"a,b\nc,d\n")));
/// let request = http::Request::put("http://api.example.com/v1/import")
///     .extension(upload)
///     .body(Full::<bytes::Bytes>::default())
///     .unwrap();
/// # let _ = request;
/// ```
pub struct BodyFactory<B>(Arc<dyn Fn() -> B + Send + Sync>);

impl<B> BodyFactory<B> {
    /// A factory that calls `make` for each attempt; each body it returns is sent once.
    pub fn new(make: impl Fn() -> B + Send + Sync + 'static) -> Self {
        BodyFactory(Arc::new(make))
    }
}

impl<B> Clone for BodyFactory<B> {
    fn clone(&self) -> Self {
        BodyFactory(self.0.clone())
    }
}

impl<B> fmt::Debug for BodyFactory<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyFactory")
    }
}

/// Wraps a service in a [`ResileService`]; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ResileLayer {
    client: Client,
    body_limit: usize,
}

impl ResileLayer {
    /// Driven by `client`'s engine: budget, breaker, limiter, learned limits and token are
    /// shared with the client and its clones.
    pub fn new(client: &Client) -> Self {
        ResileLayer {
            client: client.clone(),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Driven by a new engine, configured by `builder`.
    ///
    /// ```
    /// let layer = resile::tower::ResileLayer::build(resile::Client::builder()).unwrap();
    /// assert_eq!(layer.client().stats().calls, 0);
    /// ```
    pub fn build(builder: ClientBuilder) -> Result<Self, Error> {
        Ok(ResileLayer::new(&builder.build()?))
    }

    /// Request bodies up to `bytes` are kept in memory and sent again on a retry; longer ones
    /// are sent once ([`DEFAULT_BODY_LIMIT`] unless set).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The client whose engine decides (for [`Client::stats`], [`Client::hosts`], ...).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl<S> Layer<S> for ResileLayer {
    type Service = ResileService<S>;

    fn layer(&self, inner: S) -> ResileService<S> {
        ResileService {
            inner,
            client: self.client.clone(),
            body_limit: self.body_limit,
        }
    }
}

/// A service that sends each request through `S` as a resile call; see the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct ResileService<S> {
    inner: S,
    client: Client,
    body_limit: usize,
}

impl<S> ResileService<S> {
    /// `inner` driven by `client`'s engine, with [`DEFAULT_BODY_LIMIT`].
    pub fn new(inner: S, client: &Client) -> Self {
        ResileLayer::new(client).layer(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The client whose engine decides.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// An inner service that can perform the attempts of a call: any `Service` of
/// `http::Request<ResileBody<B>>` whose future is `Send` and whose error converts to a
/// [`BoxError`] (implemented for all of them).
pub trait Attempts<B, R>:
    Service<Request<ResileBody<B>>, Response = Response<R>, Error: Into<BoxError>, Future: Send> + Send
{
}

impl<S, B, R> Attempts<B, R> for S where
    S: Service<Request<ResileBody<B>>, Response = Response<R>, Error: Into<BoxError>, Future: Send>
        + Send
{
}

/// A request body [`ResileService`] can read and send: any `Send` body whose error converts
/// to a [`BoxError`] (implemented for all of them).
pub trait RequestBody: Body<Data: Send, Error: Into<BoxError>> + Send + 'static {}

impl<B> RequestBody for B where B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static {}

impl<S, B, R> Service<Request<B>> for ResileService<S>
where
    S: Service<Request<ResileBody<B>>, Response = Response<R>> + Attempts<B, R> + Clone + 'static,
    B: RequestBody,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Response<R>, Error>>;

    /// Always ready: see [Readiness](self#readiness).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Box::pin(run(
            self.client.clone(),
            self.inner.clone(),
            req,
            self.body_limit,
        ))
    }
}

async fn run<S, B, R>(
    client: Client,
    service: S,
    req: Request<B>,
    body_limit: usize,
) -> Result<Response<R>, Error>
where
    S: Attempts<B, R> + Clone + 'static,
    B: RequestBody,
    R: Send + 'static,
{
    let shared = &client.shared;
    let (mut parts, body) = req.into_parts();
    // Taken out: the attempts carry what it makes, not the factory.
    let factory = parts.extensions.remove::<BodyFactory<B>>();
    let host = origin(&parts)?;
    // What the attempts go to, whole, for their spans (a relative URI under its `Host`).
    let url = match parts.uri.scheme() {
        Some(_) => parts.uri.to_string(),
        None => format!("{host}{}", parts.uri),
    };
    let options = parts.extensions.get::<CallOptions>();
    let incoming = Incoming::new(&parts.method, host, &parts.headers, options)?;
    let body = match factory {
        // The request's own body is dropped unsent: every attempt's is made.
        Some(factory) => Source::Made(factory),
        None => Source::Read(Some(ResileBody::read(body, body_limit).await?)),
    };
    let replayable = match &body {
        Source::Made(_) => true,
        Source::Read(body) => matches!(
            body,
            Some(ResileBody {
                kind: Kind::Replay { .. }
            })
        ),
    };
    let spec = incoming.spec(shared, replayable);
    let method = parts.method.clone();
    let target = Target {
        method: method.as_str(),
        url: &url,
        redact: &shared.config.redact_query_params,
    };
    let span = tracing::info_span!(
        "resile.tower",
        method = %method,
        url = %crate::redact::redact_url(&url, target.redact),
        call = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    let log = CallLog::default();
    let downstream = Downstream {
        service,
        parts,
        body,
        explicit_key: incoming.explicit_key.clone(),
        log: log.clone(),
        last: Latest::new(),
    };
    call_loop::drive(shared, spec, target, span, Some(log), downstream).await
}

/// `scheme://authority` of the request, from its URI or its `Host` header.
fn origin(parts: &http::request::Parts) -> Result<String, Error> {
    let uri = &parts.uri;
    if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
        return Ok(format!("{scheme}://{authority}"));
    }
    match parts.headers.get(HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => Ok(format!("http://{host}")),
        None => Err(Error::InvalidUrl {
            url: uri.to_string(),
            message: "a request through ResileService needs an absolute URI or a Host header"
                .into(),
        }),
    }
}

/// The inner service, as the engine's transport: one call of a ready clone per attempt.
struct Downstream<S, B, R> {
    service: S,
    /// The request without its body, copied for each attempt.
    parts: http::request::Parts,
    /// Where each attempt's body comes from.
    body: Source<B>,
    explicit_key: Option<HeaderValue>,
    log: CallLog,
    last: Latest<Response<R>>,
}

/// Where the attempts' bodies come from.
enum Source<B> {
    /// The request's own body: a replayable one is copied for each attempt, a one-shot one
    /// taken by the first.
    Read(Option<ResileBody<B>>),
    /// The caller's [`BodyFactory`], called for each attempt.
    Made(BodyFactory<B>),
}

impl<S, B, R> Downstream<S, B, R> {
    fn request(&self, body: ResileBody<B>) -> Request<ResileBody<B>> {
        let mut req = Request::new(body);
        *req.method_mut() = self.parts.method.clone();
        *req.uri_mut() = self.parts.uri.clone();
        *req.version_mut() = self.parts.version;
        *req.headers_mut() = self.parts.headers.clone();
        *req.extensions_mut() = self.parts.extensions.clone();
        req
    }
}

/// Each attempt calls its own clone of the inner service (with hedging several are out at
/// once), made ready first.
impl<S, B, R> Exchange for Downstream<S, B, R>
where
    S: Attempts<B, R> + Clone + 'static,
    B: RequestBody,
    R: Send + 'static,
{
    type Received = Response<R>;
    type Output = Response<R>;
    type Attempt = BoxFuture<'static, Attempt<Response<R>>>;

    fn send(&mut self, order: SendOrder, request_id: Option<&UuidText>) -> Self::Attempt {
        let body = match &mut self.body {
            Source::Made(factory) => ResileBody::once((factory.0)()),
            Source::Read(Some(ResileBody {
                kind: Kind::Replay { data, trailers },
            })) => ResileBody::replay(data.clone(), trailers.clone()),
            Source::Read(once) => match once.take() {
                Some(body) => body,
                None => return Box::pin(future::ready(Attempt::BodyGone)),
            },
        };
        let mut req = self.request(body);
        let id = request_id.and_then(transport::uuid_value);
        let key = self.explicit_key.as_ref();
        transport::add_engine_headers(req.headers_mut(), key, &order, id.as_ref());
        let mut service = self.service.clone();
        Box::pin(async move {
            if let Err(e) = future::poll_fn(|cx| service.poll_ready(cx)).await {
                return failed(e.into());
            }
            match service.call(req).await {
                Ok(response) => Attempt::Response(response),
                Err(e) => failed(e.into()),
            }
        })
    }

    fn received(&mut self, response: Response<R>, report: impl FnOnce(Outcome<'_>)) {
        self.last.received(response, report);
    }

    fn lost(&mut self) {
        self.last.lost();
    }

    fn last_status(&self) -> Option<u16> {
        self.last.status()
    }

    fn done(self, _attempts: u32, request_id: Option<UuidText>) -> Result<Response<R>, Error> {
        let mut response = self.last.answer()?;
        let request_id = request_id.map(|id| id.to_string()).unwrap_or_default();
        let report = CallReport::from_log(&self.log, request_id);
        response.extensions_mut().insert(report);
        Ok(response)
    }
}

/// An attempt the inner service failed: what the engine calls it, from its causes.
fn failed<T>(e: BoxError) -> Attempt<T> {
    let e: &(dyn std::error::Error + 'static) = &*e;
    // An inner service's error may quote the URL (reqwest's does): printed redacted.
    let message = crate::redact::redact_text(&transport::causes(Some(e)).join(": "), &[]);
    let text = message.to_ascii_lowercase();
    use std::io::ErrorKind::*;
    let kind = match transport::io_kind(e)
        .or_else(|| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind))
    {
        Some(ConnectionRefused) => TransportError::Connect,
        Some(TimedOut) => TransportError::Timeout,
        Some(k) if transport::is_reset(k) => TransportError::Reset,
        // The client's own table first: hyper's parse errors (an answer this client cannot
        // read, not repeated) and connections that broke.
        _ => transport::by_text(&text).unwrap_or_else(|| by_stage(&text)),
    };
    Attempt::Failed { kind, message }
}

/// What an inner service's error text says of the stage that failed, when the client's table
/// does not know it.
fn by_stage(text: &str) -> TransportError {
    if transport::is_dns(text) {
        TransportError::Dns
    } else if text.contains("(connect)") || text.contains("connect error") {
        // Only what says the connection was never made (hyper-util: "client error (Connect)");
        // "never sent" lets the engine repeat a write.
        TransportError::Connect
    } else if text.contains("timed out") || text.contains("deadline has elapsed") {
        TransportError::Timeout
    } else {
        TransportError::Other
    }
}

/// The body the inner service gets: the request's, read into memory to be sent again, or the
/// request's own stream (what was read of it first, then the rest), sent once.
#[derive(Debug)]
pub struct ResileBody<B> {
    kind: Kind<B>,
}

#[derive(Debug)]
enum Kind<B> {
    Replay {
        data: Bytes,
        trailers: Option<HeaderMap>,
    },
    Once {
        read: Bytes,
        rest: Pin<Box<B>>,
    },
}

impl<B> ResileBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    /// Reads `body` up to `limit` bytes: all of it (replayable), or the start of a longer one.
    async fn read(body: B, limit: usize) -> Result<Self, Error> {
        let mut body = Box::pin(body);
        let longer = body
            .size_hint()
            .lower()
            .gt(&u64::try_from(limit).unwrap_or(u64::MAX));
        if longer {
            return Ok(ResileBody::once_pinned(Bytes::new(), body));
        }
        let mut data = BytesMut::new();
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::InvalidRequest {
                message: format!("the request body could not be read: {}", e.into()),
            })?;
            match frame.into_data() {
                Ok(mut chunk) => {
                    data.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
                    if data.len() > limit {
                        return Ok(ResileBody::once_pinned(data.freeze(), body));
                    }
                }
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers = Some(t);
                    }
                }
            }
        }
        Ok(ResileBody::replay(data.freeze(), trailers))
    }
}

impl<B> ResileBody<B> {
    fn replay(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        ResileBody {
            kind: Kind::Replay { data, trailers },
        }
    }

    /// `read`, then the rest of `rest`, sent once.
    fn once_pinned(read: Bytes, rest: Pin<Box<B>>) -> Self {
        ResileBody {
            kind: Kind::Once { read, rest },
        }
    }

    /// `body` as it streams, sent once.
    fn once(body: B) -> Self {
        ResileBody::once_pinned(Bytes::new(), Box::pin(body))
    }
}

impl<B> Body for ResileBody<B>
where
    B: Body,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Replay { data, trailers } => {
                if !data.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(std::mem::take(data)))));
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
            Kind::Once { read, rest } => {
                if !read.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(std::mem::take(read)))));
                }
                rest.as_mut().poll_frame(cx).map(|frame| {
                    frame.map(|f| f.map(|f| f.map_data(|mut d| d.copy_to_bytes(d.remaining()))))
                })
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Replay { data, trailers } => data.is_empty() && trailers.is_none(),
            Kind::Once { read, rest } => read.is_empty() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Replay { data, .. } => SizeHint::with_exact(data.len() as u64),
            Kind::Once { read, rest } => {
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(read.len() as u64));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(read.len() as u64));
                }
                hint
            }
        }
    }
}
