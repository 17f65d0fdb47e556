//! Building a request: URL, headers, body, and what the engine needs to know about it.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{self, Either};
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::Method;
use serde::Serialize;
use url::Url;

use resile_core::Idempotency;

use crate::body::BodyFactory;
use crate::client::Client;
use crate::control::{Fallback, RetryCheck, RetryIf};
use crate::error::Error;
pub(crate) use crate::redact::redacted_url;
use crate::response::Response;
use crate::stream::StreamingResponse;
use crate::transport::{is_sensitive, Prepared, PreparedBody};

/// Who supplies the `Idempotency-Key` header of a call (one type for both adapters).
pub use resile_core::IdempotencyKey;

/// A request to send through the engine. Made by [`Client::get`], [`Client::post`], ...
///
/// ```no_run
/// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
/// use std::time::Duration;
///
/// let order = client
///     .post("https://api.example.com/orders")
///     .json(&serde_json::json!({"sku": "A-1", "qty": 2}))
///     .header("x-tenant", "acme")
///     .deadline(Duration::from_secs(10))
///     .max_attempts(3)
///     .send()
///     .await?
///     .error_for_status()?;
/// # let _ = order; Ok(()) }
/// ```
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    method: Method,
    url: Result<Url, Error>,
    headers: HeaderMap,
    body: PreparedBody,
    error: Option<Error>,
    idempotency: IdempotencyKey,
    use_token: bool,
    deadline: Option<Duration>,
    max_attempts: Option<u32>,
    /// Boxed: most calls have none, and every call's future carries the field.
    fallback: Option<Box<Fallback>>,
    retry_if: Option<RetryIf>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &self.url.as_ref().map(redacted_url).ok())
            .field("headers", &names)
            .field(
                "idempotency",
                &matches!(self.idempotency, IdempotencyKey::Explicit(_)).then_some("explicit"),
            )
            .finish_non_exhaustive()
    }
}

/// What the engine is told about a call.
#[derive(Clone)]
pub(crate) struct CallOptions {
    pub method: resile_core::Method,
    pub idempotency: Idempotency,
    pub needs_token: bool,
    pub deadline: Option<Duration>,
    pub max_attempts: Option<u32>,
    pub fallback: Option<Box<Fallback>>,
    pub retry_if: Option<RetryIf>,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: Method, url: Result<Url, Error>) -> Self {
        RequestBuilder {
            client,
            method,
            url,
            headers: HeaderMap::new(),
            body: PreparedBody::Empty,
            error: None,
            idempotency: IdempotencyKey::Auto,
            use_token: true,
            deadline: None,
            max_attempts: None,
            fallback: None,
            retry_if: None,
        }
    }

    fn fail(mut self, e: Error) -> Self {
        if self.error.is_none() {
            self.error = Some(e);
        }
        self
    }

    /// Adds a header (replacing one of the same name).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: fmt::Display,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: fmt::Display,
    {
        let name = match HeaderName::try_from(name) {
            Ok(n) => n,
            Err(e) => {
                return self.fail(Error::invalid_request(format!("invalid header name: {e}")))
            }
        };
        let mut value = match HeaderValue::try_from(value) {
            Ok(v) => v,
            Err(e) => {
                return self.fail(Error::invalid_request(format!(
                    "invalid value for header `{name}`: {e}"
                )))
            }
        };
        value.set_sensitive(is_sensitive(&name));
        self.headers.insert(name, value);
        self
    }

    /// Adds every header of `headers`, each value of a repeated one included; a name already
    /// set on this request takes the values `headers` has for it.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        overlay(&mut self.headers, headers);
        for (name, value) in self.headers.iter_mut() {
            value.set_sensitive(is_sensitive(name));
        }
        self
    }

    /// A JSON body (and `Content-Type: application/json` unless one is set).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                if !self.headers.contains_key(CONTENT_TYPE) {
                    self.headers
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                self.body = PreparedBody::Bytes(Bytes::from(bytes));
                self
            }
            Err(e) => self.fail(Error::invalid_request(format!(
                "the JSON body could not be serialized: {e}"
            ))),
        }
    }

    /// A body sent again as is on every attempt.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = PreparedBody::Bytes(body.into());
        self
    }

    /// A streamed body. It can be sent once: the engine does not retry the call after an attempt
    /// that failed ([`resile_core::Why::BodyNotReplayable`]); use
    /// [`RequestBuilder::body_factory`] for a stream that can be made again.
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>("a,b\n"), Ok("c,d\n")]);
    /// let response = client.put("https://api.example.com/upload.csv").body_stream(chunks).send().await?;
    /// # let _ = response; Ok(()) }
    /// ```
    pub fn body_stream<S>(mut self, stream: S) -> Self
    where
        S: futures::TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        self.body = PreparedBody::Stream(Mutex::new(Some(reqwest::Body::wrap_stream(stream))));
        self
    }

    /// A streamed body made again for every attempt by `make`, so the call can be retried (and
    /// follow a 307/308) like one with a body in memory, without holding the body in memory.
    /// `make` runs once per attempt; each stream it returns is sent once.
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// use futures::StreamExt;
    ///
    /// // Chunks produced on demand (a file reopened for each attempt works the same way).
    /// let parts: Vec<bytes::Bytes> = vec!["a,b\n".into(), "c,d\n".into()];
    /// let upload = client
    ///     .put("https://api.example.com/uploads/report.csv")
    ///     .body_factory(move || futures::stream::iter(parts.clone()).map(Ok::<_, std::io::Error>))
    ///     .send()
    ///     .await?;
    /// # let _ = upload; Ok(()) }
    /// ```
    pub fn body_factory<F, S>(mut self, make: F) -> Self
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: futures::TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        self.body = PreparedBody::Factory(BodyFactory::new(make));
        self
    }

    /// Adds query parameters (serialized like a form: a struct, a map, or a list of pairs).
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        let encoded = match serde_urlencoded::to_string(query) {
            Ok(q) => q,
            Err(e) => {
                return self.fail(Error::invalid_request(format!(
                    "the query could not be serialized: {e}"
                )))
            }
        };
        if let Ok(url) = &mut self.url {
            if !encoded.is_empty() {
                url.query_pairs_mut()
                    .extend_pairs(form_urlencoded::parse(encoded.as_bytes()));
            }
        }
        self
    }

    /// Sends this bearer token instead of the client's token source (which is then not used for
    /// this call).
    pub fn bearer(self, token: impl fmt::Display) -> Self {
        let mut this = self.header(AUTHORIZATION, format!("Bearer {token}"));
        this.use_token = false;
        this
    }

    /// Sends the call without the client's access token.
    pub fn without_token(mut self) -> Self {
        self.use_token = false;
        self
    }

    /// Who supplies the `Idempotency-Key` (default [`IdempotencyKey::Auto`]).
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency = key;
        self
    }

    /// The whole call's time limit, waits included (overrides `retry.deadline_ms`).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Attempts for this call, the first included (overrides `retry.max_attempts`).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// Answers with `fallback` instead of failing when the host is refused or the retries run
    /// out (see [`Fallback`] for exactly which failures).
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(Box::new(fallback));
        self
    }

    /// A retry predicate: it sees the request and each attempt's outcome (the response head,
    /// or the kind of transport failure) and may say retry, don't retry, or retry after a
    /// wait. It can only narrow what is safe: a write that may have been applied without an
    /// Idempotency-Key is still not repeated, and the attempts, the deadline, the budget, the
    /// breaker and the `Retry-After` cap still refuse. It runs under the client's lock: it must
    /// not call the client. A predicate that panics has no opinion.
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// use std::time::Duration;
    /// use resile::{RetryVerdict, Seen};
    ///
    /// let job = client
    ///     .get("https://api.example.com/jobs/7")
    ///     .retry_if(|check| match check.outcome {
    ///         // The job is not ready yet: ask again in a second.
    ///         Seen::Response { status: 409, .. } => RetryVerdict::RetryAfter(Duration::from_secs(1)),
    ///         // Never retry this endpoint's 503s: they mean "gone for the day".
    ///         Seen::Response { status: 503, .. } => RetryVerdict::DontRetry,
    ///         _ => RetryVerdict::Decide,
    ///     })
    ///     .send()
    ///     .await?;
    /// # let _ = job; Ok(()) }
    /// ```
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&RetryCheck<'_>) -> resile_core::RetryVerdict + Send + Sync + 'static,
    ) -> Self {
        self.retry_if = Some(std::sync::Arc::new(predicate));
        self
    }

    /// Sends the request, with the engine deciding retries, waits and failure.
    ///
    /// Statuses the engine takes as final (2xx, 3xx, and errors not worth repeating such as
    /// 404) come back as `Ok`; use [`Response::error_for_status`] or the typed helpers to turn
    /// non-2xx into an error. Dropping the future cancels the call.
    pub fn send(self) -> impl Future<Output = Result<Response, Error>> {
        // Built now, so the call's future does not carry the builder as well.
        match self.build() {
            Ok((client, prepared, options)) => Either::Left(client.execute(prepared, options)),
            Err(e) => Either::Right(future::ready(Err(e))),
        }
    }

    /// Sends the request and decodes a 2xx JSON body as `T`, as part of the call: a body that
    /// does not decode fails the call with [`Error::Decode`] (and the engine counts it as a
    /// failed call, not a success); any other final status is [`Error::Status`].
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// let order: serde_json::Value = client
    ///     .post("https://api.example.com/orders")
    ///     .json(&serde_json::json!({ "sku": "A-1" }))
    ///     .send_json()
    ///     .await?;
    /// # let _ = order; Ok(()) }
    /// ```
    pub fn send_json<T: serde::de::DeserializeOwned>(
        self,
    ) -> impl Future<Output = Result<T, Error>> {
        match self.build() {
            Ok((client, prepared, options)) => Either::Left(client.execute_json(prepared, options)),
            Err(e) => Either::Right(future::ready(Err(e))),
        }
    }

    /// Sends the request and hands back the final answer with its body unread, for bodies too
    /// large to hold in memory (downloads). Retries, waits, the breaker and the limits apply up
    /// to the response head; the body is the caller's to read, chunk by chunk, and is neither
    /// capped by `max_response_bytes` nor counted in `max_buffered_bytes`. A body that breaks
    /// off while it is read is an [`Error::Transport`] from the stream, not a retry.
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// let mut download = client.get("https://api.example.com/export").send_streaming().await?;
    /// let mut total = 0;
    /// while let Some(chunk) = download.chunk().await? {
    ///     total += chunk.len();
    /// }
    /// println!("{} bytes after {} attempt(s)", total, download.attempts());
    /// # Ok(()) }
    /// ```
    pub fn send_streaming(self) -> impl Future<Output = Result<StreamingResponse, Error>> {
        match self.build() {
            Ok((client, prepared, options)) => {
                Either::Left(client.execute_streaming(prepared, options))
            }
            Err(e) => Either::Right(future::ready(Err(e))),
        }
    }

    /// Sends a GET and hands back its body as it arrives, like
    /// [`RequestBuilder::send_streaming`], taking it up where it breaks: the next attempt asks
    /// for the rest with `Range: bytes=N-` and `If-Range` (the strong ETag, else the
    /// `Last-Modified` of the first answer), so the bytes already read are not fetched again.
    /// The download is one call, open until its body has been read to the end (or the
    /// response is dropped, which cancels it), and that attempt is the call's next one, the
    /// engine's to allow like any retry: it counts against `max_attempts`, the retry budget and
    /// the breaker, waits its backoff, carries the call's `X-Request-ID`, and the call's
    /// deadline (`retry.deadline_ms`, or [`RequestBuilder::deadline`], from the first attempt)
    /// still holds: a body that breaks after it has passed ends the download with
    /// [`Error::Timeout`]. A body that stalls, its connection open and silent for as long as an
    /// attempt may take (`retry.attempt_timeout_ms`; the client's `read_timeout` instead, when
    /// it sets one), is taken up the same way, as a break of kind
    /// [`resile_core::TransportError::Timeout`].
    ///
    /// The bytes handed over always belong to one version of the resource. A server that
    /// answers the range request with the whole body (it ignores `Range`, or the resource
    /// changed) starts the body again, which [`StreamingResponse::piece`] reports as
    /// [`crate::Piece::Restart`] (and [`StreamingResponse::chunk`] as [`Error::Resume`]); a 416
    /// or a partial answer that is not the range asked for is [`Error::Resume`]. Without a
    /// strong ETag or `Last-Modified` to resume against, the body is fetched again whole.
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// let mut download = client.get("https://files.example.com/big.iso").send_download().await?;
    /// let mut total = 0;
    /// while let Some(chunk) = download.chunk().await? {
    ///     total += chunk.len();
    /// }
    /// println!("{total} bytes after {} attempt(s)", download.attempts());
    /// # Ok(()) }
    /// ```
    pub async fn send_download(self) -> Result<StreamingResponse, Error> {
        let (client, prepared, options) = self.build()?;
        crate::resume::download(client, prepared, options).await
    }

    pub(crate) fn build(self) -> Result<(Client, Prepared, CallOptions), Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut url = self.url?;
        // The request's own headers win over the client's defaults; without defaults they are
        // the request's headers as they are, not copied.
        let defaults = &self.client.shared.default_headers;
        let mut headers = if defaults.is_empty() {
            self.headers
        } else {
            let mut headers = defaults.clone();
            overlay(&mut headers, self.headers);
            headers
        };
        if let Some(basic) = take_userinfo(&mut url) {
            // The caller's own Authorization wins, as curl's `-H` wins over `-u`.
            headers.entry(AUTHORIZATION).or_insert(basic);
        }
        let (idempotency, explicit_key) = match self.idempotency {
            IdempotencyKey::Auto => (Idempotency::Auto, None),
            IdempotencyKey::Off => (Idempotency::Off, None),
            IdempotencyKey::Explicit(key) => {
                let value = HeaderValue::from_str(&key).map_err(|_| Error::InvalidRequest {
                    message: "the Idempotency-Key is not a valid header value".into(),
                })?;
                (Idempotency::Provided, Some(value))
            }
        };
        let needs_token = self.use_token
            && self.client.shared.has_token_source
            && !headers.contains_key(AUTHORIZATION);
        // CONNECT and extension methods: treated as writes that are not safe to repeat.
        let method =
            resile_core::Method::parse(self.method.as_str()).unwrap_or(resile_core::Method::Post);
        let options = CallOptions {
            method,
            idempotency,
            needs_token,
            deadline: self.deadline,
            max_attempts: self.max_attempts,
            fallback: self.fallback,
            retry_if: self.retry_if,
        };
        let prepared = Prepared {
            method: self.method,
            url,
            headers,
            body: self.body,
            explicit_key: explicit_key.map(Box::new),
        };
        Ok((self.client, prepared, options))
    }
}

/// Puts `top`'s headers over `base`'s: a name in `top` has `top`'s values only (all of them,
/// in order), every other name keeps `base`'s.
fn overlay(base: &mut HeaderMap, top: HeaderMap) {
    let mut current = None;
    for (name, value) in top {
        if let Some(name) = name {
            base.remove(&name);
            current = Some(name);
        }
        // `HeaderMap`'s iterator names the first value of each header only.
        if let Some(name) = &current {
            base.append(name.clone(), value);
        }
    }
}

/// Takes a URL's userinfo (`https://user:pass@host/`) off it, as the Basic `Authorization` it
/// stands for, the way curl, xh and reqwest's own request builder send it. As a header it then
/// follows every credential rule: never to another origin, never printed; left in the URL it
/// would have been dropped unsent.
fn take_userinfo(url: &mut Url) -> Option<HeaderValue> {
    use base64::Engine as _;
    let (username, password) = strip_userinfo(url)?;
    let mut pair: Vec<u8> = percent_encoding::percent_decode_str(&username).collect();
    pair.push(b':');
    pair.extend(percent_encoding::percent_decode_str(
        password.as_deref().unwrap_or_default(),
    ));
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Whether `url` carries a user name or a password.
pub(crate) fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Takes a URL's user name and password (as written: percent-encoded) off it, when it has
/// either.
pub(crate) fn strip_userinfo(url: &mut Url) -> Option<(String, Option<String>)> {
    if !has_userinfo(url) {
        return None;
    }
    let taken = (
        url.username().to_string(),
        url.password().map(str::to_string),
    );
    // These fail only for a URL without a host, which has no userinfo.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(taken)
}

/// A base URL: http(s), with a trailing slash so relative paths append to it.
pub(crate) fn parse_base(base: &str) -> Result<Url, Error> {
    let invalid = |message: String| Error::invalid_url(base, message);
    let mut url = Url::parse(base).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid("only http and https URLs can be a base".into()));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// An absolute http(s) URL, or one relative to `base`.
pub(crate) fn resolve_url(base: Option<&Url>, input: &str) -> Result<Url, Error> {
    let invalid = |message: String| Error::invalid_url(input, message);
    let url = match Url::parse(input) {
        Ok(url) => url,
        Err(e) => match base {
            Some(base) => base.join(input).map_err(|e| invalid(e.to_string()))?,
            None if e == url::ParseError::RelativeUrlWithoutBase => {
                return Err(invalid(format!("{e} (set base_url to use relative URLs)")))
            }
            // An absolute URL that does not parse: a base would not help.
            None => return Err(invalid(e.to_string())),
        },
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "scheme `{}` is not supported; use http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_urls_error_shows_no_secret_even_in_debug() {
        for bad in [
            "ftp://me:hunter2@h.test/?token=t0p",
            "http://me:hunter2@[::1/?token=t0p",
        ] {
            for e in [
                resolve_url(None, bad).unwrap_err(),
                parse_base(bad).unwrap_err(),
            ] {
                let shown = format!("{e:?} {e}");
                assert!(
                    !shown.contains("hunter2") && !shown.contains("t0p"),
                    "{shown}"
                );
                assert!(matches!(e, Error::InvalidUrl { .. }), "{shown}");
            }
        }
    }

    #[test]
    fn relative_urls_resolve_against_the_base() {
        let base = parse_base("http://api.test/v1").unwrap();
        assert_eq!(base.as_str(), "http://api.test/v1/");
        let table = [
            ("items", "http://api.test/v1/items"),
            ("items?x=1", "http://api.test/v1/items?x=1"),
            ("/health", "http://api.test/health"),
            ("http://other.test/a", "http://other.test/a"),
        ];
        for (input, want) in table {
            assert_eq!(
                resolve_url(Some(&base), input).unwrap().as_str(),
                want,
                "{input}"
            );
        }
        assert!(matches!(
            resolve_url(None, "items"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            resolve_url(None, "ftp://x/y"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(parse_base("mailto:a@b").is_err());
    }
}
