//! One attempt on the wire: build the request the engine ordered, follow redirects within the
//! attempt (dropping credentials when the origin changes), read the whole body under a cap, and
//! translate whatever went wrong into the engine's [`TransportError`]. No decisions: what an
//! outcome means is the engine's business.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use bytes::{Bytes, BytesMut};
use http::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE, LOCATION, PROXY_AUTHORIZATION,
};
use http::{Method, StatusCode, Version};
use url::Url;

use resile_core::headers::Headers;
use resile_core::time::UnixTime;
use resile_core::{Authorization, Problem, TransportError, UuidText};

use crate::body::BodyFactory;
use crate::driver::{SendOrder, Shared};

/// `Idempotency-Key`: the engine's key (or the caller's), the same on every attempt.
pub(crate) const IDEMPOTENCY_KEY: HeaderName =
    HeaderName::from_static(resile_core::engine::IDEMPOTENCY_KEY_HEADER);

/// `X-Request-ID`, the same on every attempt of a call.
const X_REQUEST_ID: HeaderName = HeaderName::from_static(resile_core::engine::REQUEST_ID_HEADER);

/// A UUID's text as a header value (the call's `X-Request-ID`, from the text the call's loop
/// formatted once for the call, [`crate::call_loop`]; an attempt's `Idempotency-Key`), in one
/// shared allocation: reqwest keeps a copy of the request's headers, and a value copied into a
/// plain buffer (`HeaderValue::from_bytes`) costs a second allocation when cloned.
pub(crate) fn uuid_value(text: &UuidText) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(Bytes::from_owner(*text.as_bytes())).ok()
}

/// The W3C trace context header.
const TRACEPARENT: &str = "traceparent";

/// Headers that carry credentials: never sent to another origin, never logged.
pub(crate) fn is_sensitive(name: &HeaderName) -> bool {
    name == AUTHORIZATION || name == COOKIE || name == PROXY_AUTHORIZATION
}

/// A request body.
pub(crate) enum PreparedBody {
    Empty,
    /// Sent again on every attempt.
    Bytes(Bytes),
    /// A one-shot stream: the first attempt takes it.
    Stream(Mutex<Option<reqwest::Body>>),
    /// A stream made afresh for every attempt and every 307/308 hop.
    Factory(BodyFactory),
}

impl PreparedBody {
    pub(crate) fn replayable(&self) -> bool {
        !matches!(self, PreparedBody::Stream(_))
    }

    /// The body sent again after a 307/308 (none for a one-shot stream).
    fn again(&self) -> Option<reqwest::Body> {
        match self {
            PreparedBody::Bytes(b) => Some(b.clone().into()),
            PreparedBody::Factory(f) => Some(f.make()),
            PreparedBody::Empty | PreparedBody::Stream(_) => None,
        }
    }
}

/// Everything about a call that does not change between attempts.
pub(crate) struct Prepared {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: PreparedBody,
    /// The caller's own `Idempotency-Key`, sent on every attempt (boxed: rarely given, and
    /// the request is kept in the call's future for as long as the call runs).
    pub explicit_key: Option<Box<HeaderValue>>,
}

/// The engine's host key of `url`: its origin, `scheme://host[:port]`. Sliced from the URL
/// as it is written (the URL parser already lower-cased and IDNA-encoded the host and dropped
/// a default port); only a URL with userinfo, which the origin leaves out, is serialized anew.
pub(crate) fn host_key(url: &Url) -> Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        Cow::Borrowed(&url[..url::Position::BeforePath])
    } else {
        Cow::Owned(url.origin().ascii_serialization())
    }
}

/// Bounds of one attempt.
#[derive(Copy, Clone)]
pub(crate) struct Limits {
    pub max_response_bytes: u64,
    pub max_redirects: u32,
}

/// A complete response (or one whose body was over the cap and left unread).
pub(crate) struct Received {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Where the answer came from, when redirects led away from the request's URL (boxed:
    /// most answers come from the request's own URL, and a `Received` is moved on every attempt).
    pub url: Option<Box<Url>>,
    pub version: Version,
    /// Why the answer cannot be handed to the caller (reported to the engine as such).
    pub problem: Option<Problem>,
    /// The unread body, for a streaming call (boxed: every other answer carries `None`).
    pub stream: Option<Box<reqwest::Response>>,
    /// The share of the client-wide buffer this body holds until the call hands it over.
    pub buffered: Option<OwnedSemaphorePermit>,
}

/// How an attempt ended, before the engine says what it means. `R` is what a response is to
/// whoever performed the attempt: a [`Received`] for the client, a `reqwest::Response` for the
/// middleware.
pub(crate) enum Attempt<R = Received> {
    Response(R),
    Failed {
        kind: TransportError,
        message: String,
    },
    /// The one-shot body was taken by an earlier attempt: this one cannot be sent.
    BodyGone,
}

/// What happens to a final answer's body.
pub(crate) enum BodyMode<'a> {
    /// Read in full (within `max_response_bytes`), counted against the client-wide
    /// `max_buffered_bytes` while it is read and until the call hands it over.
    Buffer(&'a Arc<Semaphore>),
    /// Left unread for the caller to stream ([`crate::RequestBuilder::send_streaming`]).
    Stream,
}

/// Runs one attempt. Its time limit is the engine's: the engine answers `Abort` when the
/// attempt's deadline passes, and the caller drops this future (and with it whatever the
/// attempt had buffered). `request_id` is the text of the call's `X-Request-ID`.
///
/// Two futures one after the other, in one place ([`AttemptFuture`]): the order and the
/// request in flight are gone from the attempt's future while its body is read.
pub(crate) fn attempt<'a>(
    http: reqwest::Client,
    req: &'a Prepared,
    order: SendOrder,
    request_id: Option<UuidText>,
    limits: Limits,
    mode: BodyMode<'a>,
) -> impl Future<Output = Attempt> + 'a {
    AttemptFuture::Exchange {
        exchange: exchange(http, req, order, request_id, limits),
        req,
        limits,
        mode,
        read: read_body,
    }
}

pin_project_lite::pin_project! {
    /// An attempt's two futures in one place: the exchange (the request and its redirects),
    /// then, for a body to buffer, its read, written over the exchange once it has answered.
    /// As `exchange(..).then(..)` it was the same size, but every answer and the body read's
    /// future were moved out through `Then`'s `Map`, `Flatten` and an `Either` of a `Ready`
    /// (about 0.3 k instructions of copies and polls per attempt).
    #[project = AttemptProj]
    #[project_replace = AttemptTaken]
    enum AttemptFuture<'a, E, R, B> {
        Exchange {
            #[pin]
            exchange: E,
            req: &'a Prepared,
            limits: Limits,
            mode: BodyMode<'a>,
            // `read_body`, named by a parameter (its future's type cannot be written).
            read: R,
        },
        Body {
            #[pin]
            body: B,
        },
        // Between the two, and once answered.
        Over,
    }
}

impl<'a, E, R, B> Future for AttemptFuture<'a, E, R, B>
where
    E: Future<Output = Result<(reqwest::Response, Option<Problem>), Attempt>>,
    R: FnOnce(reqwest::Response, &'a Url, u64, &'a Arc<Semaphore>) -> B,
    B: Future<Output = Attempt>,
{
    type Output = Attempt;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Attempt> {
        let answer = match self.as_mut().project() {
            AttemptProj::Exchange { exchange, .. } => ready!(exchange.poll(cx)),
            AttemptProj::Body { body } => return body.poll(cx),
            AttemptProj::Over => return Poll::Pending,
        };
        let AttemptTaken::Exchange {
            req,
            limits,
            mode,
            read,
            ..
        } = self.as_mut().project_replace(AttemptFuture::Over)
        else {
            return Poll::Pending;
        };
        let (response, problem) = match answer {
            Ok(answer) => answer,
            Err(failed) => return Poll::Ready(failed),
        };
        Poll::Ready(match (problem, mode) {
            (Some(problem), _) => {
                let mut received = head(&response, &req.url);
                received.problem = Some(problem);
                Attempt::Response(received)
            }
            (None, BodyMode::Stream) => {
                let mut received = head(&response, &req.url);
                received.stream = Some(Box::new(response));
                Attempt::Response(received)
            }
            (None, BodyMode::Buffer(buffer)) => {
                let body = read(response, &req.url, limits.max_response_bytes, buffer);
                self.as_mut().set(AttemptFuture::Body { body });
                let AttemptProj::Body { body } = self.project() else {
                    return Poll::Pending;
                };
                return body.poll(cx);
            }
        })
    }
}

/// The headers of one request of an attempt: the call's own, the attempt's X-Request-ID and
/// Idempotency-Key, and the token.
fn attempt_headers(req: &Prepared, (order, request_id): Sent<'_>) -> HeaderMap {
    let mut headers = req.headers.clone();
    let id = request_id.and_then(uuid_value);
    add_engine_headers(
        &mut headers,
        req.explicit_key.as_deref(),
        order,
        id.as_ref(),
    );
    headers
}

/// The engine's order for an attempt, and the text of the call's `X-Request-ID`.
type Sent<'a> = (&'a SendOrder, Option<&'a UuidText>);

/// Adds what the engine decided for one attempt to a request's headers: X-Request-ID (the
/// call's value, `request_id`, when the engine gives the call one), the Idempotency-Key (the
/// caller's own, `explicit_key`, wins), the token on a token call, and the attempt's
/// `traceparent` when it has one.
pub(crate) fn add_engine_headers(
    headers: &mut HeaderMap,
    explicit_key: Option<&HeaderValue>,
    order: &SendOrder,
    request_id: Option<&HeaderValue>,
) {
    // The engine decides the attempt's headers; they are copied as they are.
    if let (Some(_), Some(id)) = (order.headers.request_id, request_id) {
        headers.insert(X_REQUEST_ID, id.clone());
    }
    if let Some(key) = order.headers.idempotency_key {
        if let Some(v) = uuid_value(&key.text()) {
            headers.insert(IDEMPOTENCY_KEY, v);
        }
    }
    // The attempt's own span under the caller's trace (feature `opentelemetry`); otherwise a
    // caller's own `traceparent` is sent as it is.
    if let Some(tp) = &order.traceparent {
        headers.insert(TRACEPARENT, HeaderValue::clone(tp));
    }
    // A caller's own key (`Idempotency::Provided`) is sent as given on every attempt.
    if let Some(key) = explicit_key {
        headers.insert(IDEMPOTENCY_KEY, key.clone());
    }
    // Only a token call carries the token; a caller's own Authorization is never replaced.
    if let (Authorization::Token, Some(token)) = (order.headers.authorization, &order.token) {
        // A token that is not a valid header value is not attached: the server's 401 then
        // lets the engine refresh it.
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
    }
}

/// Headers a 301/302/303 turned into a GET no longer sends.
const CONTENT_HEADERS: [HeaderName; 4] = [
    http::header::CONTENT_TYPE,
    http::header::CONTENT_LENGTH,
    http::header::CONTENT_ENCODING,
    http::header::TRANSFER_ENCODING,
];

/// Whether a header stays behind when a redirect leads to another origin: the credentials
/// (`Authorization`, `Cookie`, `Proxy-Authorization`), a value marked sensitive, and every
/// header whose value is never printed ([`crate::redact::is_secret_header`]: `X-Api-Key`,
/// `X-Auth-Token`, `Private-Token`, ...) — an API key is as much a credential as a bearer
/// token. The engine's own `Idempotency-Key` goes along: it names the operation, not the caller.
fn stays_within_origin(name: &HeaderName, value: &HeaderValue) -> bool {
    is_sensitive(name)
        || value.is_sensitive()
        || (name != IDEMPOTENCY_KEY && crate::redact::is_secret_header(name.as_str()))
}

/// Takes the headers that never follow a redirect to another origin off `headers`.
fn strip_credentials(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .iter()
        .filter(|(name, value)| stays_within_origin(name, value))
        .map(|(name, _)| name.clone())
        .collect();
    for name in &names {
        headers.remove(name);
    }
}

/// Sends the request and follows redirects; the final answer, unread, or why there is none.
// The attempt's futures are `async` blocks: an `async fn` keeps its arguments twice.
#[allow(clippy::manual_async_fn)]
fn exchange<'a>(
    http: reqwest::Client,
    req: &'a Prepared,
    order: SendOrder,
    request_id: Option<UuidText>,
    limits: Limits,
) -> impl Future<Output = Result<(reqwest::Response, Option<Problem>), Attempt>> + 'a {
    async move {
        let streamed = !req.body.replayable();
        // Whether a 307/308 sends the body again (a 301/302/303 turns the request into a GET).
        let mut resend = true;
        let mut body: Option<reqwest::Body> = match &req.body {
            PreparedBody::Stream(slot) => {
                match slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    Some(b) => Some(b),
                    None => return Err(Attempt::BodyGone),
                }
            }
            other => other.again(),
        };
        let mut method = req.method.clone();
        // Where a redirect led; the request's own URL until then (not copied for the first hop;
        // boxed: most attempts follow none, and this future sizes the call's box).
        let mut redirected_to: Option<Box<Url>> = None;
        let (mut strip_content, mut cross_origin) = (false, false);
        let mut hops = 0;
        loop {
            let url = redirected_to.as_deref().unwrap_or(&req.url);
            // The request is made in a block of its own, so that it and its headers (moved into
            // reqwest's pending request) are not kept in this future while the answer is awaited.
            let sent = {
                // Built afresh for every hop (rather than cloned once more per request), with
                // what the redirects so far have taken away.
                let mut headers = attempt_headers(req, (&order, request_id.as_ref()));
                if strip_content {
                    for h in &CONTENT_HEADERS {
                        headers.remove(h);
                    }
                }
                if cross_origin {
                    strip_credentials(&mut headers);
                }
                // The headers are moved into the request whole, not copied into a second map.
                let mut request = match http.request(method.clone(), url.clone()).build() {
                    Ok(r) => r,
                    Err(e) => return Err(failed(&e)),
                };
                *request.headers_mut() = headers;
                *request.body_mut() = body.take();
                http.execute(request)
            };
            let response = match sent.await {
                Ok(r) => r,
                Err(e) => return Err(failed(&e)),
            };
            let next = (limits.max_redirects > 0)
                .then(|| redirect_target(&response))
                .flatten();
            let Some(next) = next else {
                // Not a redirect, or redirects are off (`max_redirects = 0`): this is the answer.
                return Ok((response, None));
            };
            if hops >= limits.max_redirects {
                // One more redirect than allowed (a loop ends here too): never hand a 3xx back as
                // if it were the answer.
                let problem = Problem::TooManyRedirects {
                    limit: limits.max_redirects,
                };
                return Ok((response, Some(problem)));
            }
            let status = response.status();
            let keeps_method = matches!(
                status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            );
            if keeps_method && streamed && method != Method::GET && method != Method::HEAD {
                // The stream went with the first request; it cannot follow a 307/308.
                return Ok((response, None));
            }
            drop(response);
            if !keeps_method && method != Method::HEAD {
                // 301, 302, 303: the next request is a GET without a body (as browsers and
                // reqwest do).
                method = Method::GET;
                resend = false;
                strip_content = true;
            }
            if next.origin() != url.origin() {
                // Credentials belong to the origin they were meant for, and stay off for every
                // later hop.
                cross_origin = true;
            }
            body = if resend { req.body.again() } else { None };
            redirected_to = Some(Box::new(next));
            hops += 1;
        }
    }
}

fn redirect_target(response: &reqwest::Response) -> Option<Url> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let next = response.url().join(location).ok()?;
    matches!(next.scheme(), "http" | "https").then_some(next)
}

/// Where a response came from, if not from the request's own URL.
fn redirected(response: &reqwest::Response, request_url: &Url) -> Option<Box<Url>> {
    (response.url() != request_url).then(|| Box::new(response.url().clone()))
}

/// A response's status line and headers, its body left unread.
fn head(response: &reqwest::Response, request_url: &Url) -> Received {
    head_with(response, response.headers().clone(), request_url)
}

/// A response's status line and headers, taken out of it (its body read, or left unread
/// and dropped).
fn taken_head(response: &mut reqwest::Response, request_url: &Url) -> Received {
    let headers = std::mem::take(response.headers_mut());
    head_with(response, headers, request_url)
}

/// A response's status line with `headers`, its own.
fn head_with(response: &reqwest::Response, headers: HeaderMap, request_url: &Url) -> Received {
    Received {
        status: response.status(),
        headers,
        body: Bytes::new(),
        url: redirected(response, request_url),
        version: response.version(),
        problem: None,
        stream: None,
        buffered: None,
    }
}

/// Takes `n` bytes of the client-wide buffer, waiting for them. A wait that never ends is
/// ended by the engine's attempt deadline, which drops the attempt and what it held.
///
/// Most takes find the bytes free: taken at once, here, and the future returned holds only
/// where the bytes go. Only a wait is boxed: a waiter's future is large, and the body's future
/// would carry it always.
fn take_buffer<'h>(
    buffer: &Arc<Semaphore>,
    held: &'h mut Option<OwnedSemaphorePermit>,
    n: u64,
) -> impl Future<Output = ()> + 'h {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    // The semaphore is never closed.
    let waiting = if n == 0 {
        None
    } else {
        match buffer.clone().try_acquire_many_owned(n) {
            Ok(p) => {
                hold(held, p);
                None
            }
            Err(_) => Some(Box::pin(buffer.clone().acquire_many_owned(n))),
        }
    };
    async move {
        if let Some(wait) = waiting {
            if let Ok(p) = wait.await {
                hold(held, p);
            }
        }
    }
}

/// Adds `p` to the share of the buffer a body holds.
fn hold(held: &mut Option<OwnedSemaphorePermit>, p: OwnedSemaphorePermit) {
    match held {
        Some(h) => h.merge(p),
        None => *held = Some(p),
    }
}

#[allow(clippy::manual_async_fn)]
fn read_body<'a>(
    mut response: reqwest::Response,
    request_url: &'a Url,
    limit: u64,
    buffer: &'a Arc<Semaphore>,
) -> impl Future<Output = Attempt> + 'a {
    async move {
        // The answer's head is taken from the response once its body is read (or refused),
        // not before: kept beside the response across every wait for a chunk, it would size
        // the attempt's future, and with it the call's box, by a second copy of the head.
        let announced = response.content_length();
        if announced.is_some_and(|n| n > limit) {
            let mut received = taken_head(&mut response, request_url);
            received.problem = Some(Problem::BodyTooLarge { limit });
            return Attempt::Response(received);
        }
        let mut buffered: Option<OwnedSemaphorePermit> = None;
        // An announced length is taken at once (no partial holds); otherwise chunk by chunk.
        if let Some(n) = announced {
            take_buffer(buffer, &mut buffered, n).await;
        }
        // Most bodies arrive in one chunk: keep it as it is, and copy only when a second comes.
        let mut first: Option<Bytes> = None;
        let mut buf = BytesMut::new();
        let mut len = 0u64;
        loop {
            // The chunk is taken out in a `let`: a `match`'s scrutinee (the whole `Result`)
            // would be kept across the buffer's `await` below.
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    let kind = if e.is_timeout() {
                        TransportError::Timeout
                    } else {
                        body_error(io_kind(&e), &error_text(&e).to_ascii_lowercase())
                    };
                    return Attempt::Failed {
                        kind,
                        message: error_text(&e),
                    };
                }
            };
            len = len.saturating_add(chunk.len() as u64);
            if len > limit {
                drop(buffered);
                let mut received = taken_head(&mut response, request_url);
                received.problem = Some(Problem::BodyTooLarge { limit });
                return Attempt::Response(received);
            }
            if announced.is_none_or(|n| len > n) {
                let over = len - announced.unwrap_or(0).max(len - chunk.len() as u64);
                take_buffer(buffer, &mut buffered, over).await;
            }
            match first.take() {
                None if buf.is_empty() => first = Some(chunk),
                earlier => {
                    if let Some(earlier) = earlier {
                        let hint = response
                            .content_length()
                            .unwrap_or(len)
                            .min(limit)
                            .min(1 << 20);
                        buf.reserve(usize::try_from(hint).unwrap_or(0));
                        buf.extend_from_slice(&earlier);
                    }
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        let mut received = taken_head(&mut response, request_url);
        received.body = match first {
            Some(only) => only,
            None => buf.freeze(),
        };
        received.buffered = buffered;
        Attempt::Response(received)
    }
}

fn failed(e: &reqwest::Error) -> Attempt {
    let kind = classify_error(e);
    let mut message = error_text(e);
    if kind == TransportError::Unreadable && message.contains("frame with invalid size") {
        message.insert_str(0, NOT_HTTP2);
    }
    Attempt::Failed { kind, message }
}

/// What an HTTP/2 frame that does not parse at the start of a connection means, first in its
/// message.
const NOT_HTTP2: &str = "the server does not speak HTTP/2 (its answer is no HTTP/2 \
     frame: an HTTP/1.x server asked for h2c with prior knowledge?); ";

/// What the causes' text (lower-cased) says a failure was; the first fragment found wins.
/// hyper's parse errors and the decoders' errors are answers the server would send again;
/// the rest are connections that broke.
const BY_TEXT: &[(&str, TransportError)] = &[
    // hyper: the answer is not HTTP this client reads.
    ("message head is too large", TransportError::Unreadable),
    ("invalid http version parsed", TransportError::Unreadable),
    (
        "invalid http status-code parsed",
        TransportError::Unreadable,
    ),
    ("invalid http header parsed", TransportError::Unreadable),
    ("invalid content-length parsed", TransportError::Unreadable),
    (
        "invalid transfer-encoding parsed",
        TransportError::Unreadable,
    ),
    (
        "unexpected transfer-encoding parsed",
        TransportError::Unreadable,
    ),
    // h2: a header block so large it came in more CONTINUATION frames than h2 takes (the
    // head too large of HTTP/2), the same on every attempt.
    ("too_many_continuations", TransportError::Unreadable),
    // flate2 and compression-codecs: the body's content encoding does not decode.
    ("decompression error", TransportError::Unreadable),
    ("invalid gzip header", TransportError::Unreadable),
    ("crc computed does not match", TransportError::Unreadable),
    (
        "amount of bytes read does not match",
        TransportError::Unreadable,
    ),
    // h2: the server refused the stream before any processing (`REFUSED_STREAM`), or shut the
    // connection down gracefully (`GOAWAY` with `NO_ERROR`) before the stream: nothing was
    // processed, and the engine sends it again at once (reqwest's own resend of these is off
    // on the pool the client builds: `driver::build_http`).
    (
        "stream error received: refused stream before processing any application logic",
        TransportError::Refused,
    ),
    (
        "connection error received: not a result of an error",
        TransportError::Refused,
    ),
    // h2: the server's first bytes are no HTTP/2 frame (an HTTP/1.x answer read as a frame
    // header declares megabytes): a server that does not speak HTTP/2, asked for it with prior
    // knowledge. It answers the same way every time.
    ("frame with invalid size", TransportError::Unreadable),
    // hyper: the connection ended before the request was handed to it (a fresh connection the
    // server closed at once, as an HTTP/1.x-only server does on an HTTP/2 preface): the
    // request was never written, as with a connection that could not be made.
    ("(sendrequest): channel closed", TransportError::Connect),
    (
        "operation was canceled: connection closed",
        TransportError::Connect,
    ),
    // hyper: the pooled connection could not take the request (its dispatch was closed, or
    // busy with another), so the request was handed back unsent; hyper-util sends it again
    // itself on a reused connection, and this reaches the engine when that did not work.
    (
        "operation was canceled: connection was not ready",
        TransportError::Connect,
    ),
    // hyper: the connection broke.
    (
        "connection closed before message completed",
        TransportError::Reset,
    ),
    ("connection reset", TransportError::Reset),
    ("incomplete message", TransportError::Reset),
];

/// A connect-stage failure's text that is the TLS handshake refusing (rustls, OpenSSL): a
/// certificate, no protocol in common, a peer that does not speak TLS.
const TLS_TEXT: &[&str] = &[
    "invalid peer certificate",
    "received corrupt message",
    "peer is incompatible",
    "peer misbehaved",
    "received fatal alert",
    "certificate",
    "wrong version number",
    "tls",
    "ssl",
    "handshake",
];

pub(crate) fn by_text(text: &str) -> Option<TransportError> {
    BY_TEXT
        .iter()
        .find(|(fragment, _)| text.contains(fragment))
        .map(|&(_, kind)| kind)
}

/// A failure's text (lower-cased) that is the name not resolving (hyper-util's resolver,
/// the system's `getaddrinfo`).
pub(crate) fn is_dns(text: &str) -> bool {
    text.contains("dns error") || text.contains("failed to lookup address")
}

/// I/O errors of a connection that broke after it was made: the engine's `Reset`.
pub(crate) fn is_reset(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected
    )
}

/// I/O errors of a connection that broke or could not be made: worth another attempt,
/// whatever the layer above (TLS included) says.
fn broken_connection(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    is_reset(kind) || matches!(kind, ConnectionRefused | TimedOut)
}

/// The engine's name for what reqwest reports. Connect, DNS and TLS failures happen before the
/// request is written (never sent), and so does an HTTP/2 stream the server refused unprocessed;
/// everything later may have reached the server.
pub(crate) fn classify_error(e: &reqwest::Error) -> TransportError {
    let text = error_text(e).to_ascii_lowercase();
    let io = io_kind(e);
    if e.is_redirect() {
        // reqwest's own redirect policy gave up (a caller's client that follows redirects, in
        // the middleware or `http_client`): a loop or a chain that long answers the same way
        // on every attempt, and the request reached the server.
        TransportError::Unreadable
    } else if e.is_connect() {
        if is_dns(&text) {
            TransportError::Dns
        } else if !io.is_some_and(broken_connection) && TLS_TEXT.iter().any(|t| text.contains(t)) {
            TransportError::Tls
        } else {
            TransportError::Connect
        }
    } else if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_body() || e.is_decode() {
        body_error(io, &text)
    } else if let Some(kind) = by_text(&text) {
        kind
    } else if io.is_some_and(is_reset) {
        TransportError::Reset
    } else {
        TransportError::Other
    }
}

/// A body that could not be read: one the server sent malformed (a content encoding that does
/// not decode, a chunk that does not parse: hyper's and the decoders' invalid data or input)
/// is unreadable; otherwise it broke off (truncated: hyper's unexpected end of file).
fn body_error(io: Option<std::io::ErrorKind>, text: &str) -> TransportError {
    use std::io::ErrorKind::{InvalidData, InvalidInput};
    if matches!(io, Some(InvalidData | InvalidInput))
        || by_text(text) == Some(TransportError::Unreadable)
    {
        TransportError::Unreadable
    } else {
        TransportError::Truncated
    }
}

/// The kind of the first I/O error among an error's causes.
pub(crate) fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut depth = 0;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        depth += 1;
        if depth > 16 {
            break;
        }
        source = s.source();
    }
    None
}

/// What went wrong, from the error's causes, without the URL (a query may hold a secret).
pub(crate) fn error_text(e: &reqwest::Error) -> String {
    let parts = causes(std::error::Error::source(e));
    if parts.is_empty() {
        let what = if e.is_connect() {
            "connection failed"
        } else if e.is_timeout() {
            "timed out"
        } else if e.is_body() {
            "body error"
        } else if e.is_decode() {
            "decode error"
        } else if e.is_builder() {
            "request could not be built"
        } else {
            "request failed"
        };
        return what.to_string();
    }
    parts.join(": ")
}

/// The messages of an error chain from `first` on, each once, at most eight.
pub(crate) fn causes(first: Option<&(dyn std::error::Error + 'static)>) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut source = first;
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        if parts.len() >= 8 {
            break;
        }
        source = s.source();
    }
    parts
}

/// The headers the engine reads from a response (`Retry-After`, the rate-limit families,
/// `Link`, `X-Total-Count`), gathered in one pass over the map; repeated fields joined with
/// `", "`. Responses without hints cost no allocation, and the engine's look-ups do not hash.
pub(crate) struct HintHeaders<'a> {
    hints: Vec<(&'a str, Cow<'a, str>)>,
}

fn is_hint(name: &str) -> bool {
    // By the first letter: most of a response's headers are turned away at one comparison.
    match name.as_bytes().first() {
        Some(b'r') => name == "retry-after" || name.starts_with("ratelimit"),
        Some(b'l') => name == "link",
        // And by the two after `x-`: `X-Request-ID`, echoed by many servers, is turned away
        // there, not at two prefix comparisons.
        Some(b'x') => match name.as_bytes().get(2..4) {
            Some(b"ra") => name.starts_with("x-ratelimit") || name.starts_with("x-rate-limit"),
            Some(b"to") => name == "x-total-count",
            _ => false,
        },
        _ => false,
    }
}

impl<'a> HintHeaders<'a> {
    pub(crate) fn new(map: &'a HeaderMap) -> Self {
        let mut hints: Vec<(&'a str, Cow<'a, str>)> = Vec::new();
        // Each name once (`HeaderMap::keys` walks the entries alone, not every value's links):
        // a response without hints is turned away name by name at its first letter, and only
        // a hint's values are looked up.
        for name in map.keys() {
            if !is_hint(name.as_str()) {
                continue;
            }
            let mut values = map.get_all(name).iter().filter_map(|v| v.to_str().ok());
            let Some(first) = values.next() else { continue };
            let joined = match values.next() {
                None => Cow::Borrowed(first),
                Some(second) => {
                    let mut text = format!("{first}, {second}");
                    for more in values {
                        text.push_str(", ");
                        text.push_str(more);
                    }
                    Cow::Owned(text)
                }
            };
            hints.push((name.as_str(), joined));
        }
        HintHeaders { hints }
    }

    /// The wall clock as the engine needs it for a response with these hints: read only when
    /// a hint may be counted from it (a `Retry-After` HTTP-date, a rate-limit reset), the
    /// only places the engine reads [`resile_core::Response::wall`]; otherwise the epoch,
    /// which nothing reads (a clock read less for most responses).
    pub(crate) fn wall(&self) -> UnixTime {
        let dated = |name: &str| name != "link" && name != "x-total-count";
        if self.hints.iter().any(|(name, _)| dated(name)) {
            Shared::wall()
        } else {
            UnixTime::EPOCH
        }
    }
}

impl Headers for HintHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.hints
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    fn may_have_prefix(&self, prefix: &str) -> bool {
        self.hints.iter().any(|(n, _)| n.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_key_is_the_origin() {
        let urls = [
            "http://api.test/a/b?c=d#e",
            "https://API.Test:443/",
            "http://api.test:8080",
            "http://127.0.0.1:9/x",
            "http://[::1]:3000/x",
            "https://bücher.example/",
            "http://user:secret@api.test:81/x",
            "http://user@api.test/x",
        ];
        for input in urls {
            let url = Url::parse(input).unwrap();
            assert_eq!(
                host_key(&url),
                url.origin().ascii_serialization(),
                "{input}"
            );
        }
        let with_userinfo = Url::parse("http://user:secret@api.test:81/x").unwrap();
        assert!(!host_key(&with_userinfo).contains("secret"));
    }

    #[test]
    fn the_wall_clock_is_read_only_for_a_hint_counted_from_it() {
        let mut map = HeaderMap::new();
        assert_eq!(HintHeaders::new(&map).wall(), UnixTime::EPOCH);
        map.insert(
            "link",
            HeaderValue::from_static("<http://a.test/2>; rel=\"next\""),
        );
        map.insert("x-total-count", HeaderValue::from_static("7"));
        map.insert("content-type", HeaderValue::from_static("text/plain"));
        assert_eq!(HintHeaders::new(&map).wall(), UnixTime::EPOCH);
        let before = Shared::wall();
        for dated in [
            "retry-after",
            "ratelimit-reset",
            "x-ratelimit-reset",
            "x-rate-limit-reset",
        ] {
            let mut with = map.clone();
            with.insert(
                dated,
                HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"),
            );
            assert!(HintHeaders::new(&with).wall() >= before, "{dated}");
        }
    }

    #[test]
    fn http2_streams_refused_unprocessed_are_refusals() {
        // As reqwest words an HTTP/2 refusal (the causes joined by `error_text`, lower-cased).
        let refused = [
            "client error (sendrequest): http2 error: stream error received: refused stream \
             before processing any application logic",
            "client error (sendrequest): http2 error: connection error received: not a result \
             of an error",
        ];
        for text in refused {
            assert_eq!(by_text(text), Some(TransportError::Refused), "{text}");
        }
        // A stream the server reset for another reason may have been processed.
        let reset = "http2 error: stream error received: unexpected internal error encountered";
        assert_eq!(by_text(reset), None);
    }

    #[test]
    fn a_request_never_handed_to_a_connection_was_never_sent() {
        // As hyper words a request whose fresh connection ended before taking it (an
        // HTTP/1.x-only server closing on an HTTP/2 preface): never written, as a connect.
        for text in [
            "client error (sendrequest): channel closed",
            "client error (canceled): operation was canceled: connection closed",
            "client error (canceled): operation was canceled: connection was not ready",
        ] {
            assert_eq!(by_text(text), Some(TransportError::Connect), "{text}");
        }
        // An HTTP/1.x answer read as an HTTP/2 frame header: the same answer every time.
        let not_h2 = "client error (sendrequest): http2 error: connection error detected: frame \
                      with invalid size";
        assert_eq!(by_text(not_h2), Some(TransportError::Unreadable));
    }

    #[test]
    fn only_the_hint_families_are_hints() {
        let hints = [
            "retry-after",
            "link",
            "x-total-count",
            "ratelimit",
            "ratelimit-policy",
            "ratelimit-remaining",
            "x-ratelimit-remaining",
            "x-rate-limit-reset",
        ];
        for name in hints {
            assert!(is_hint(name), "{name}");
        }
        let others = [
            "",
            "r",
            "content-type",
            "retry-after-ms",
            "links",
            "location",
            "x-request-id",
            "x-total",
            "x-rate",
            "x",
            "x-r",
            "x-to",
        ];
        for name in others {
            assert!(!is_hint(name), "{name}");
        }
    }

    #[test]
    fn repeated_headers_are_joined() {
        let mut map = HeaderMap::new();
        map.append("link", HeaderValue::from_static("<a>; rel=\"first\""));
        map.append("link", HeaderValue::from_static("<b>; rel=\"next\""));
        map.append("link", HeaderValue::from_bytes(b"\xff").unwrap());
        map.append("link", HeaderValue::from_static("<c>; rel=\"last\""));
        map.insert("content-type", HeaderValue::from_static("text/plain"));
        map.insert("retry-after", HeaderValue::from_static("3"));
        map.insert(
            "x-ratelimit-remaining",
            HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        let h = HintHeaders::new(&map);
        assert_eq!(
            h.get("link"),
            Some("<a>; rel=\"first\", <b>; rel=\"next\", <c>; rel=\"last\"")
        );
        assert_eq!(h.get("content-type"), None);
        // A hint whose only value is not text is no hint.
        assert!(!h.may_have_prefix("x-ratelimit"));
        assert_eq!(h.get("retry-after"), Some("3"));
        assert_eq!(h.get("x-none"), None);
    }
}
