//! Building a request, the mirror of native `resile::RequestBuilder`.

use core::time::Duration;
use std::fmt;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::Method;
use serde::Serialize;

use resile_core::CallEnd;

use crate::client::Client;
use crate::driver::{Body, RequestSpec};
use crate::error::Error;
use crate::response::Response;
use crate::translate::IdempotencyKey;

/// A request to send through the engine. Made by [`Client::get`], [`Client::post`], ...
///
/// ```no_run
/// # async fn demo(client: resile_wasm::Client) -> Result<(), resile_wasm::Error> {
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
    url: String,
    headers: HeaderMap,
    body: Option<Body>,
    query: Vec<(String, String)>,
    error: Option<Error>,
    idempotency: IdempotencyKey,
    use_token: bool,
    deadline: Option<Duration>,
    max_attempts: Option<u32>,
    signal: Option<web_sys::AbortSignal>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &crate::error::shown_url(&self.url))
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: Method, url: String) -> Self {
        RequestBuilder {
            client,
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            query: Vec::new(),
            error: None,
            idempotency: IdempotencyKey::Auto,
            use_token: true,
            deadline: None,
            max_attempts: None,
            signal: None,
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
        match HeaderValue::try_from(value) {
            Ok(v) => {
                self.headers.insert(name, v);
                self
            }
            Err(e) => self.fail(Error::invalid_request(format!(
                "invalid value for header `{name}`: {e}"
            ))),
        }
    }

    /// Adds every header of `headers`.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        for (name, value) in headers {
            if let Some(name) = name {
                self.headers.insert(name, value);
            }
        }
        self
    }

    /// A JSON body (and `Content-Type: application/json` unless one is set).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_string(body) {
            Ok(text) => {
                if !self.headers.contains_key(CONTENT_TYPE) {
                    self.headers
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                self.body = Some(Body::Text(text));
                self
            }
            Err(e) => self.fail(Error::invalid_request(format!(
                "the JSON body could not be serialized: {e}"
            ))),
        }
    }

    /// A body sent again as is on every attempt.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(Body::Bytes(body.into().to_vec()));
        self
    }

    /// Adds query parameters (serialized like a form: a struct, a map, or a list of pairs).
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        let pairs = serde_urlencoded::to_string(query)
            .map_err(|e| e.to_string())
            .and_then(|q| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(&q).map_err(|e| e.to_string())
            });
        match pairs {
            Ok(pairs) => {
                self.query.extend(pairs);
                self
            }
            Err(e) => self.fail(Error::invalid_request(format!(
                "the query could not be serialized: {e}"
            ))),
        }
    }

    /// Sends this bearer token instead of the client's token provider (which is then not used
    /// for this call).
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

    /// Cancels the call when `signal` aborts (browser only; dropping the future cancels too).
    pub fn signal(mut self, signal: web_sys::AbortSignal) -> Self {
        self.signal = Some(signal);
        self
    }

    /// Sends the request, with the engine deciding retries, waits and failure.
    ///
    /// Statuses the engine takes as final (2xx, 3xx, and errors not worth repeating such as
    /// 404) come back as `Ok`; use [`Response::error_for_status`] or the typed helpers to turn
    /// non-2xx into an error. Dropping the future cancels the call.
    pub async fn send(self) -> Result<Response, Error> {
        self.send_as(CallEnd::AtHead).await
    }

    /// Sends a GET whose body is read as it arrives and taken up where it breaks: the rest is
    /// asked for with `Range` / `If-Range` (on a strong ETag or `Last-Modified`) as the call's
    /// next attempt, under its deadline, attempts and request id; a server that ignores `Range`
    /// (or a changed resource) sends the body again, and only that one is kept. The response
    /// holds the whole body, as from [`RequestBuilder::send`]. A resumed answer that cannot be
    /// used (a 416, a partial answer that is not the range asked for) is [`Error::Resume`].
    ///
    /// ```no_run
    /// # async fn demo(client: resile_wasm::Client) -> Result<(), resile_wasm::Error> {
    /// let file = client.get("https://files.example.com/big.bin").send_download().await?;
    /// let bytes = file.error_for_status()?.bytes();
    /// # let _ = bytes; Ok(()) }
    /// ```
    pub async fn send_download(self) -> Result<Response, Error> {
        self.send_as(CallEnd::AfterBody).await
    }

    async fn send_as(self, ends: CallEnd) -> Result<Response, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let Some(method) = resile_core::Method::parse(self.method.as_str()) else {
            return Err(Error::invalid_request(format!(
                "`{}` is not a method this client sends",
                self.method
            )));
        };
        let driver = self.client.driver();
        let mut url = driver
            .resolve(&self.url)
            .map_err(|message| Error::InvalidUrl {
                url: crate::error::shown_url(&self.url),
                message,
            })?;
        if !self.query.is_empty() {
            url = crate::driver::append_query(&url, &self.query).map_err(|message| {
                Error::InvalidUrl {
                    url: crate::error::shown_url(&url),
                    message,
                }
            })?;
        }
        let mut spec = RequestSpec::new(method, url.clone());
        for (name, value) in &self.headers {
            let value = value.to_str().map_err(|_| {
                Error::invalid_request(format!(
                    "the value of header `{name}` is not visible ASCII, which fetch cannot send"
                ))
            })?;
            spec.headers.push((name.to_string(), value.to_string()));
        }
        spec.body = self.body;
        spec.key = self.idempotency;
        spec.deadline = self.deadline;
        spec.max_attempts = self.max_attempts;
        // A caller's own Authorization replaces the client's token, as on native.
        let own_auth = self.headers.contains_key(AUTHORIZATION);
        spec.token = (!self.use_token || own_auth).then_some(false);
        spec.signal = self.signal;
        spec.ends = ends;
        match driver.request(spec).await {
            Ok(reply) => Response::from_reply(reply),
            Err(e) => Err(e.into_error(method.as_str(), &url).0),
        }
    }
}
