//! Small pieces shared by the routes: query parameters, error replies, injected faults.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http_body::Frame;
use serde_json::json;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// A reply that is not the happy path: a status, a machine-readable code and a sentence.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response()
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// The query string, decoded. Unlike axum's `Query` it reports bad values with the name of
/// the parameter and what it should have been.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Params(pairs)
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn opt<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => raw.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "query parameter `{name}` must be {what}, got `{raw}`"
                ))
            }),
        }
    }

    pub fn num<T: FromStr>(&self, name: &str, default: T, what: &str) -> Result<T, ApiError> {
        Ok(self.opt(name, what)?.unwrap_or(default))
    }

    /// An unsigned integer within `[min, max]`.
    pub fn bounded(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        let what = format!("an integer in {min}..={max}");
        let value: u64 = self.num(name, default, &what)?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ApiError::bad_request(format!(
                "query parameter `{name}` must be {what}, got {value}"
            )))
        }
    }

    /// A probability in `[0, 1]`.
    pub fn fraction(&self, name: &str) -> Result<f64, ApiError> {
        let value: f64 = self.num(name, 0.0, "a number in 0..=1")?;
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(ApiError::bad_request(format!(
                "query parameter `{name}` must be in 0..=1, got {value}"
            )))
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "true" | "yes" | ""))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query()))
    }
}

/// A status code a route may be asked to answer with.
pub(crate) fn status_param(p: &Params, name: &str, default: u16) -> Result<StatusCode, ApiError> {
    let code = p.bounded(name, u64::from(default), 200, 599)?;
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| ApiError::bad_request(format!("`{code}` is not a status code")))
}

/// An HTTP-date at least `secs` seconds from now (rounded up to the whole second).
pub(crate) fn http_date_in(secs: u64) -> String {
    let target = SystemTime::now() + Duration::from_secs(secs);
    let whole = match target.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) if d.subsec_nanos() > 0 => {
            SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs() + 1)
        }
        _ => target,
    };
    httpdate::fmt_http_date(whole)
}

pub(crate) fn unix_now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Adds `Retry-After` from `retry_after=SECS`, `retry_after_date=SECS_FROM_NOW` or the
/// verbatim `retry_after_raw=TEXT` (for testing parsers against garbage).
pub(crate) fn retry_after_from(p: &Params, headers: &mut HeaderMap) -> Result<(), ApiError> {
    let value = if let Some(secs) = p.opt::<u64>("retry_after", "whole seconds")? {
        Some(secs.to_string())
    } else if let Some(secs) = p.opt::<u64>("retry_after_date", "whole seconds")? {
        Some(http_date_in(secs.min(10 * 365 * 86_400)))
    } else {
        p.get("retry_after_raw").map(str::to_owned)
    };
    if let Some(value) = value {
        let value = HeaderValue::from_str(&value)
            .map_err(|_| ApiError::bad_request("`retry_after_raw` is not a valid header value"))?;
        headers.insert(header::RETRY_AFTER, value);
    }
    Ok(())
}

pub(crate) fn set_header(headers: &mut HeaderMap, name: &'static str, value: impl fmt::Display) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Reset,
    /// HTTP/2: the stream is reset with `REFUSED_STREAM` (nothing processed); HTTP/1.1 has no
    /// such answer, and the connection closes as for [`Fault::Reset`].
    Refuse,
}

/// The response that makes the connection close without any reply.
pub(crate) fn reset_response() -> Response {
    let mut resp = Response::new(Body::empty());
    resp.extensions_mut().insert(Fault::Reset);
    resp
}

/// The response that makes an HTTP/2 stream refused unprocessed (`REFUSED_STREAM`).
pub(crate) fn refuse_response() -> Response {
    let mut resp = Response::new(Body::empty());
    resp.extensions_mut().insert(Fault::Refuse);
    resp
}

/// The error handed to hyper in place of a response; hyper then drops the connection.
#[derive(Debug)]
pub(crate) struct InjectedReset;

impl fmt::Display for InjectedReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset injected by resile-chaos")
    }
}

impl StdError for InjectedReset {}

/// A body that sends `sent` bytes of a response whose `Content-Length` promises `len`,
/// then breaks the connection. The short pause lets hyper flush what was sent first.
pub(crate) fn truncated_response(
    status: StatusCode,
    full: Bytes,
    sent: usize,
    content_type: &str,
) -> Response {
    let len = full.len();
    let body = Truncated {
        chunk: Some(full.slice(..sent.min(len))).filter(|c| !c.is_empty()),
        pause: Some(Box::pin(tokio::time::sleep(Duration::from_millis(20)))),
    };
    let mut resp = Response::new(Body::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

struct Truncated {
    chunk: Option<Bytes>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for Truncated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(chunk) = this.chunk.take() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(pause) = this.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            this.pause = None;
            return Poll::Ready(Some(Err("body truncated by resile-chaos".into())));
        }
        Poll::Ready(None)
    }
}
