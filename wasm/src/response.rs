//! A final response, the mirror of native `resile::Response`: the engine said `Done`, and the
//! body is already read.

use std::fmt;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::driver::Reply;
use crate::error::Error;
use resile_core::excerpt::{excerpt, EXCERPT_BYTES};

/// A response the engine handed back: a success, or a final status such as 404.
///
/// The body was read in full before the engine decided, so a body cut short was a failed
/// attempt, not a broken response. Reading it here cannot fail.
///
/// ```no_run
/// # async fn demo(client: resile_wasm::Client) -> Result<(), resile_wasm::Error> {
/// let response = client.get("https://api.example.com/items/7").send().await?;
/// println!("{} after {} attempt(s), request id {}", response.status(), response.attempts(), response.request_id());
/// if response.status().is_success() {
///     let item: serde_json::Value = response.json()?;
///     # let _ = item;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    attempts: u32,
    request_id: String,
}

impl Response {
    pub(crate) fn from_reply(reply: Reply) -> Result<Response, Error> {
        let status = StatusCode::from_u16(reply.status).map_err(|_| Error::Status {
            status: reply.status,
            body_excerpt: excerpt(&reply.body, EXCERPT_BYTES),
        })?;
        let mut headers = HeaderMap::with_capacity(reply.headers.len());
        for (name, value) in &reply.headers {
            // The browser already refused anything that is not a valid header.
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                headers.append(n, v);
            }
        }
        Ok(Response {
            status,
            headers,
            body: Bytes::from(reply.body),
            attempts: reply.attempts,
            request_id: reply.request_id,
        })
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers JavaScript may read (cross-origin: those the server exposes).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Attempts the call made, this one included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The `X-Request-ID` sent with every attempt of the call.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The body (a cheap clone).
    pub fn bytes(&self) -> Bytes {
        self.body.clone()
    }

    /// The body, taken.
    pub fn into_bytes(self) -> Bytes {
        self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, whatever the status; [`Error::Decode`] when it does not decode. An
    /// empty body (a 204) reads as `null`: `()`, `Option<T>` and `serde_json::Value` take it.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        resile_core::json_body::decode(&self.body).map_err(|message| Error::Decode {
            status: self.status.as_u16(),
            excerpt: excerpt(&self.body, EXCERPT_BYTES),
            message,
        })
    }

    /// `Ok(self)` for a 2xx status, else [`Error::Status`] with the start of the body.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(Error::Status {
                status: self.status.as_u16(),
                body_excerpt: excerpt(&self.body, EXCERPT_BYTES),
            })
        }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers stay out: a response may set cookies.
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .field("request_id", &self.request_id)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}
