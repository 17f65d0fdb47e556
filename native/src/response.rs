//! A final response: the engine said `Done`, and its body is already read.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};
use serde::de::DeserializeOwned;
use url::Url;

use resile_core::UuidText;

use crate::error::{excerpt, Error};

pub(crate) use resile_core::excerpt::EXCERPT_BYTES;

/// A response the engine handed back: a success, or a final status such as 404.
///
/// The body was read in full (within `max_response_bytes`) before the engine decided, so a
/// body cut short was a failed attempt, not a broken response. Reading it here cannot fail.
///
/// ```no_run
/// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
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
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) url: Url,
    pub(crate) version: Version,
    pub(crate) attempts: u32,
    pub(crate) request_id: Option<UuidText>,
    /// Boxed: only a fallen-back call has one, and the response is moved through every layer
    /// of the call's future on its way back (352 → 272 B).
    pub(crate) fallback: Option<Box<crate::FallbackAnswer>>,
}

impl Response {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The URL that answered (after redirects).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Attempts the call made, this one included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether this is the request's [`crate::Fallback`] rather than the server's answer, and
    /// if so why the call did not answer for itself.
    pub fn fallback(&self) -> Option<&crate::FallbackAnswer> {
        self.fallback.as_deref()
    }

    /// The `X-Request-ID` sent with every attempt of the call; empty when request ids are off
    /// ([`ClientBuilder::request_ids`](crate::ClientBuilder::request_ids)).
    pub fn request_id(&self) -> &str {
        self.request_id.as_ref().map_or("", UuidText::as_str)
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
            .field("url", &crate::request::redacted_url(&self.url))
            .field("attempts", &self.attempts)
            .field("request_id", &self.request_id())
            .field("body_len", &self.body.len())
            .field("fallback", &self.fallback.as_ref().map(|f| f.why()))
            .finish_non_exhaustive()
    }
}
