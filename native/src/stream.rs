//! A final answer whose body the caller reads as it arrives ([`crate::RequestBuilder::send_streaming`]).

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use url::Url;

use resile_core::resume::{ResumeError, Verdict};
use resile_core::TransportError;

use crate::error::Error;
use crate::response::Response;
use crate::resume::{Piece, Resumer};
use crate::transport::classify_error;

/// A response the engine handed back, with its body still on the wire.
///
/// From [`crate::RequestBuilder::send_download`], a body that breaks is taken up where it
/// broke: [`StreamingResponse::piece`] says where each piece goes and when the server sent the
/// body again from its start; [`StreamingResponse::chunk`] hands over the bytes in order.
pub struct StreamingResponse {
    head: Response,
    body: reqwest::Response,
    /// Bytes of the body handed over so far.
    offset: u64,
    /// The most bytes the body may have ([`StreamingResponse::max_bytes`]).
    limit: Option<u64>,
    resume: Option<Box<Resumer>>,
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
    /// The answer of a streaming call: its head and its unread body.
    pub(crate) fn from_answer(
        head: Response,
        body: Option<reqwest::Response>,
    ) -> Result<Self, Error> {
        match body {
            Some(body) => Ok(StreamingResponse {
                head,
                body,
                offset: 0,
                limit: None,
                resume: None,
            }),
            None => Err(Error::Transport {
                kind: TransportError::Other,
                message: "the final answer of a streaming call had no body to stream".into(),
            }),
        }
    }

    /// Takes the body up where it breaks, with `resumer`.
    pub(crate) fn resumable(mut self, resumer: Box<Resumer>) -> Self {
        self.resume = Some(resumer);
        self
    }

    /// Caps the body at `limit` bytes, as curl's `--max-filesize` does (a streamed body has no
    /// cap of its own: `max_response_bytes` bounds buffered ones). A `Content-Length` over the
    /// cap fails here, before a byte is read; a body that grows past it (no length, or a server
    /// that sends more than it said) fails the read that would cross it, with its bytes not
    /// handed over. Both are [`Error::BodyTooLarge`], and a download's call ends with it
    /// (cancelled: its rest is not asked for). Offsets count from the body's first byte, so a
    /// resumed download is capped as a whole.
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// let mut download = client
    ///     .get("https://files.example.com/big.iso")
    ///     .send_download()
    ///     .await?
    ///     .max_bytes(4 << 30)?; // at most 4 GiB
    /// while let Some(chunk) = download.chunk().await? {
    ///     let _ = chunk;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn max_bytes(mut self, limit: u64) -> Result<Self, Error> {
        // As the buffered read asks it (`transport::read_body`): the length hyper read.
        let announced = self.body.content_length();
        if announced.is_some_and(|n| self.offset.saturating_add(n) > limit) {
            return Err(Error::BodyTooLarge { limit });
        }
        self.limit = Some(limit);
        Ok(self)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.head.status()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    /// The HTTP version of the answer.
    pub fn version(&self) -> reqwest::Version {
        self.head.version()
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
    /// [`Error::Transport`] (truncated, reset or timed out), unless the response came from
    /// [`crate::RequestBuilder::send_download`]: then the rest is asked for as the call's next
    /// attempt, and the bytes go on where they broke. Should the server send the body again
    /// from its start instead, this answers [`Error::Resume`] with
    /// [`ResumeError::Restarted`]: discard what was read, and the chunks that follow are the
    /// body from its first byte ([`StreamingResponse::piece`] says the same without an error).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        match self.piece().await? {
            None => Ok(None),
            Some(Piece::Bytes { bytes, .. }) => Ok(Some(bytes)),
            Some(Piece::Restart { discard, why }) => Err(Error::Resume {
                error: ResumeError::Restarted { discard, why },
            }),
        }
    }

    /// The next piece of the body: bytes with the offset they start at, or a restart of the
    /// body from its first byte; `None` at its end.
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// use resile::Piece;
    ///
    /// let mut download = client.get("https://files.example.com/big.iso").send_download().await?;
    /// let mut file: Vec<u8> = Vec::new();
    /// while let Some(piece) = download.piece().await? {
    ///     match piece {
    ///         Piece::Bytes { bytes, .. } => file.extend_from_slice(&bytes),
    ///         Piece::Restart { .. } => file.clear(),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn piece(&mut self) -> Result<Option<Piece>, Error> {
        loop {
            let idle = self.resume.as_ref().and_then(|r| r.idle());
            let read = match idle {
                // A download's body that stalls is taken up as one that broke.
                Some(idle) => tokio::time::timeout(idle, self.body.chunk()).await.ok(),
                None => Some(self.body.chunk().await),
            };
            let (kind, message) = match read {
                Some(Ok(Some(bytes))) => {
                    let offset = self.offset;
                    let end = offset.saturating_add(bytes.len() as u64);
                    if let Some(limit) = self.limit.filter(|&limit| end > limit) {
                        // The call ends here: its rest is not asked for, and every read
                        // after this one fails the same way (no byte past the gap is handed
                        // over).
                        self.resume = None;
                        self.offset = u64::MAX;
                        return Err(Error::BodyTooLarge { limit });
                    }
                    self.offset += bytes.len() as u64;
                    if let Some(r) = self.resume.as_mut() {
                        r.delivered(bytes.len());
                    }
                    return Ok(Some(Piece::Bytes { offset, bytes }));
                }
                Some(Ok(None)) => {
                    if let Some(r) = self.resume.as_mut() {
                        r.finished();
                    }
                    return Ok(None);
                }
                Some(Err(broke)) => (classify_error(&broke), crate::transport::error_text(&broke)),
                None => (
                    TransportError::Timeout,
                    stalled(idle.unwrap_or_default(), self.offset),
                ),
            };
            let Some(resumer) = self.resume.as_mut() else {
                return Err(Error::Transport { kind, message });
            };
            tracing::debug!(target: "resile", offset = self.offset, error = %message, "the body broke; taking it up");
            let (next, verdict) = resumer.take_up(kind, &message).await?;
            self.body = next.body;
            match verdict {
                Verdict::Restart { discard, why } => {
                    self.head = next.head;
                    self.offset = 0;
                    return Ok(Some(Piece::Restart { discard, why }));
                }
                _ => self.head.attempts = next.head.attempts,
            }
        }
    }
}

/// What a download's body that sent nothing for `idle` says when it is taken up.
fn stalled(idle: std::time::Duration, offset: u64) -> String {
    let ms = idle.as_millis();
    format!("the body stalled: no byte for {ms} ms after its first {offset} byte(s)")
}
