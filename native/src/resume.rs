//! Downloads that take up where they broke ([`crate::RequestBuilder::send_download`]).
//!
//! The rule is the core's ([`resile_core::resume`]): what the next attempt asks for (`Range`
//! and `If-Range` on a strong ETag or `Last-Modified`, or the whole body again) and what its
//! answer means (continue, restart, fail). The engine decides whether and when that attempt is
//! made ([`resile_core::Engine::resume`]): a download is one call, open while its body is read,
//! so the attempt for the rest is that call's next one, under its deadline and attempt count,
//! with its `X-Request-ID`, after its backoff, paid from the retry budget and counted by the
//! breaker. This module only carries the headers and the new body between the two.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT_ENCODING, IF_RANGE, RANGE};
use reqwest::{Method, Url};

use resile_core::headers::Headers;
use resile_core::resume::{Download, Plan, RestartWhy, Verdict};
use resile_core::TransportError;

use std::sync::Arc;
use std::time::Duration;

use resile_core::CallId;

use crate::call_loop::Start;
use crate::client::Client;
use crate::driver::Shared;
use crate::error::Error;
use crate::request::CallOptions;
use crate::stream::StreamingResponse;
use crate::transport::{Prepared, PreparedBody};

/// A piece of a download, in the order read ([`StreamingResponse::piece`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Piece {
    /// The next bytes of the body; the first of them is byte `offset` of the body.
    Bytes {
        /// Where `bytes` start in the body.
        offset: u64,
        /// The bytes.
        bytes: Bytes,
    },
    /// The server sent the body again from its first byte (it ignores `Range`, the resource
    /// changed, or it gave nothing to resume against): the `discard` bytes delivered so far
    /// are void, and the pieces that follow start again at offset 0.
    Restart {
        /// Bytes delivered before, now void.
        discard: u64,
        /// Why the body started again.
        why: RestartWhy,
    },
}

/// What a download needs to ask for the rest of its body.
pub(crate) struct Resumer {
    client: Client,
    method: Method,
    url: Url,
    headers: HeaderMap,
    explicit_key: Option<Box<HeaderValue>>,
    options: CallOptions,
    download: Download,
    call: OpenCall,
    /// The longest the body may send nothing before it is taken up as broken.
    idle: Option<Duration>,
}

/// The download's call, open on the engine while its body is read: read to its end it
/// succeeds; dropped before, it is cancelled.
struct OpenCall {
    shared: Arc<Shared>,
    id: CallId,
    open: bool,
}

impl OpenCall {
    /// The body was read to its end (or the answer is taken as it is).
    fn read(&mut self) {
        if std::mem::take(&mut self.open) {
            self.shared.body_read(self.id);
        }
    }

    /// The download cannot go on.
    fn give_up(&mut self) {
        if std::mem::take(&mut self.open) {
            self.shared.cancel(self.id);
        }
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        self.give_up();
    }
}

/// The head of an answer, as the core reads it.
struct Head<'a>(&'a HeaderMap);

impl Headers for Head<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends a GET whose body is handed over as it arrives and taken up where it breaks.
pub(crate) async fn download(
    client: Client,
    mut req: Prepared,
    options: CallOptions,
) -> Result<StreamingResponse, Error> {
    if req.method != Method::GET || !matches!(req.body, PreparedBody::Empty) {
        return Err(Error::InvalidRequest {
            message: "send_download resumes GETs without a body; use send_streaming".into(),
        });
    }
    // Offsets count the bytes as sent; a body decoded on the way would count others.
    if !req.headers.contains_key(ACCEPT_ENCODING) {
        req.headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    // A caller who asks for a range of their own gets that answer as it is.
    let own_range = req.headers.contains_key(RANGE);
    let (method, url) = (req.method.clone(), req.url.clone());
    let (headers, explicit_key) = (req.headers.clone(), req.explicit_key.clone());
    if own_range {
        return client.execute_streaming(req, options).await;
    }
    let (response, id) = client
        .clone()
        .execute_download(req, options.clone(), Start::Download)
        .await?;
    let mut call = OpenCall {
        shared: client.shared.clone(),
        id,
        open: true,
    };
    if response.status() != reqwest::StatusCode::OK {
        // Not a body to take up: the call ends with this answer, as a plain one would.
        call.read();
        return Ok(response);
    }
    let download = Download::start(&Head(response.headers()));
    // A body that stalls is taken up like one that broke, after as long as an attempt may
    // take; a `read_timeout` of the client's bounds every read itself (its error is a break).
    let config = &client.shared.config;
    let idle = match config.read_timeout_ms {
        Some(_) => None,
        None => config
            .engine
            .retry
            .attempt_timeout_ms
            .map(Duration::from_millis),
    };
    Ok(response.resumable(Box::new(Resumer {
        client,
        method,
        url,
        headers,
        explicit_key,
        options,
        download,
        call,
        idle,
    })))
}

impl Resumer {
    /// `n` more bytes were handed to the caller.
    pub(crate) fn delivered(&mut self, n: usize) {
        self.download.delivered(n as u64);
    }

    /// How long the body may send nothing before it is taken up as broken (`None`: no limit
    /// of the download's own).
    pub(crate) fn idle(&self) -> Option<Duration> {
        self.idle
    }

    /// The body was read to its end: the call succeeds.
    pub(crate) fn finished(&mut self) {
        self.call.read();
    }

    /// The body broke with `broke` (`message`: what the HTTP stack said): the call's next attempt for the rest, and what its answer
    /// means. `Continue` and `Restart` come with the new answer; otherwise the call ends.
    pub(crate) async fn take_up(
        &mut self,
        broke: TransportError,
        message: &str,
    ) -> Result<(StreamingResponse, Verdict), Error> {
        let taken = self.next_attempt(broke).await;
        if taken.is_err() {
            self.call.give_up();
        }
        taken.map_err(|e| e.with_break_message(broke, message))
    }

    async fn next_attempt(
        &mut self,
        broke: TransportError,
    ) -> Result<(StreamingResponse, Verdict), Error> {
        let mut headers = self.headers.clone();
        if let Plan::Resume { range, if_range } = self.download.plan() {
            for (name, value) in [(RANGE, range), (IF_RANGE, if_range)] {
                // The validator came from the server as a header value; it goes back as one.
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            }
        }
        let req = Prepared {
            method: self.method.clone(),
            url: self.url.clone(),
            headers,
            body: PreparedBody::Empty,
            explicit_key: self.explicit_key.clone(),
        };
        let start = Start::Resumed {
            call: self.call.id,
            broke,
        };
        let (next, _) = self
            .client
            .clone()
            .execute_download(req, self.options.clone(), start)
            .await?;
        match self
            .download
            .judge(next.status().as_u16(), &Head(next.headers()))
        {
            Verdict::Fail(error) => Err(Error::Resume { error }),
            // A final answer that is not the body (a 404, or a status the engine gave up
            // retrying is an error already): the download ends with it.
            Verdict::NotTheBody => Err(Error::Status {
                status: next.status().as_u16(),
                body_excerpt: String::new(),
            }),
            verdict => Ok((next, verdict)),
        }
    }
}
