//! A final answer whose body the caller reads as it arrives ([`crate::RequestBuilder::send_streaming`]).

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use url::Url;

use crate::error::Error;
use crate::response::Response;
use crate::transport::classify_error;

/// A response the engine handed back, with its body still on the wire.
pub struct StreamingResponse {
    head: Response,
    body: reqwest::Response,
}

impl fmt::Debug for StreamingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingResponse")
            .field("status", &self.head.status())
            .field("attempts", &self.head.attempts())
            .finish_non_exhaustive()
    }
}

impl StreamingResponse {
    pub(crate) fn new(head: Response, body: reqwest::Response) -> Self {
        StreamingResponse { head, body }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.head.status()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    /// The URL of the final answer (after redirects).
    pub fn url(&self) -> &Url {
        self.head.url()
    }

    /// Attempts the call took.
    pub fn attempts(&self) -> u32 {
        self.head.attempts()
    }

    /// The `X-Request-ID` sent on every attempt.
    pub fn request_id(&self) -> &str {
        self.head.request_id()
    }

    /// The next chunk of the body; `None` at its end. A body that breaks off is an
    /// [`Error::Transport`] (truncated, reset or timed out): it is not retried.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.body.chunk().await.map_err(|e| Error::Transport {
            kind: classify_error(&e),
            message: crate::transport::error_text(&e),
        })
    }
}
