//! The client: cheap to clone, one connection pool, one engine.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future;
use futures::StreamExt;
use http::{HeaderMap, Method, StatusCode, Version};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use tracing::Instrument;
use url::Url;

use resile_core::config::RequestIds;
use resile_core::engine::HostView;
use resile_core::paginate::PageStyle;
use resile_core::token::TokenView;
use resile_core::{CallId, CallSpec, Outcome, Stats, TransportError, UuidText};

use crate::call_loop::{self, Exchange, Running, Start};
use crate::config::ClientConfig;
use crate::control::{self, FallbackAnswer, JudgedHeaders, Stored};
use crate::driver::{CallGuard, EventCallback, SendOrder, Shared};
use crate::error::{excerpt, Error};
use crate::events::ClientEvent;
use crate::paginate::Paginate;
use crate::request::{redacted_url, resolve_url, CallOptions, RequestBuilder};
use crate::response::Response;
use crate::response::EXCERPT_BYTES;
use crate::stream::StreamingResponse;
use crate::telemetry::{self, Target};
use crate::token::TokenSource;
use crate::transport::{self, Attempt, BodyMode, HintHeaders, Limits, Prepared, Received};
use resile_core::Problem;

/// A resilient HTTP client: reqwest for the wire, the resile engine for every decision
/// (retries, backoff, budget, breaker, rate limits, tokens, idempotency).
///
/// Cheap to clone: clones share the connection pool, the engine (breakers, budgets and limits
/// per host) and the token. Build it inside a tokio runtime or outside; calls need one.
///
/// ```no_run
/// # async fn demo() -> Result<(), resile::Error> {
/// let client = resile::Client::builder().base_url("https://api.example.com/v1/").build()?;
/// let user: serde_json::Value = client.get_json("users/42").await?;
/// # let _ = user; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.shared.config;
        let headers: Vec<&String> = c.default_headers.keys().collect();
        f.debug_struct("Client")
            .field("base_url", &self.shared.base_url.as_ref().map(redacted_url))
            .field("default_headers", &headers)
            .field("max_in_flight", &c.max_in_flight)
            .field("token_source", &self.shared.has_token_source)
            .field("stats", &self.shared.stats())
            .finish_non_exhaustive()
    }
}

/// How a batch treats failures.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum BatchMode {
    /// Every request runs; each result stands alone.
    #[default]
    Partial,
    /// The first failure cancels the requests still running and fails the batch.
    AllOrNothing,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
///
/// let client = resile::Client::builder()
///     .base_url("http://127.0.0.1:8080/api/")
///     .default_header("x-tenant", "acme")
///     .connect_timeout(Duration::from_secs(2))
///     .max_in_flight(64)
///     .engine({
///         let mut policy = resile::Config::default();
///         policy.retry.max_attempts = 3;
///         policy
///     })
///     .build()
///     .unwrap();
/// assert_eq!(client.config().max_in_flight, 64);
/// ```
#[must_use]
#[derive(Default)]
pub struct ClientBuilder {
    config: ClientConfig,
    token_source: Option<Arc<dyn TokenSource>>,
    on_event: Option<EventCallback>,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("token_source", &self.token_source.is_some())
            .field("http_client", &self.http.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// The engine's policy.
    pub fn engine(mut self, engine: resile_core::Config) -> Self {
        self.config.engine = engine;
        self
    }

    /// Relative URLs resolve against this.
    pub fn base_url(mut self, base: impl Into<String>) -> Self {
        self.config.base_url = Some(base.into());
        self
    }

    /// A header sent with every request.
    pub fn default_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config
            .default_headers
            .insert(name.into(), value.into());
        self
    }

    /// The `User-Agent`.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.config.user_agent = agent.into();
        self
    }

    /// Time to open a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout_ms = Some(millis(timeout));
        self
    }

    /// Longest pause between two reads of a response.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.config.read_timeout_ms = Some(millis(timeout));
        self
    }

    /// How long idle pooled connections are kept (`None`: forever).
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.pool_idle_timeout_ms = timeout.map(millis);
        self
    }

    /// Idle connections kept per host.
    pub fn pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.config.pool_max_idle_per_host = Some(n);
        self
    }

    /// Logical calls in flight at once.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n;
        self
    }

    /// Logical calls in flight at once per host.
    pub fn max_in_flight_per_host(mut self, n: usize) -> Self {
        self.config.max_in_flight_per_host = Some(n);
        self
    }

    /// The largest response body read.
    pub fn max_response_bytes(mut self, n: u64) -> Self {
        self.config.max_response_bytes = n;
        self
    }

    /// Redirects followed per attempt (`0`: none).
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.config.max_redirects = n;
        self
    }

    /// Rebuild the pool after this many connection failures in a row (`0`: never).
    pub fn recycle_pool_after(mut self, n: u32) -> Self {
        self.config.recycle_pool_after = n;
        self
    }

    /// Trusts a private certificate authority on top of the crate's roots: PEM text with one
    /// or more `CERTIFICATE` blocks (a CA's `.pem` or `.crt` file; curl's `--cacert`). Call it
    /// once per file. Text that holds no certificate fails [`ClientBuilder::build`] with
    /// [`Error::Config`] naming `root_certificates_pem`; a server whose chain ends in none of
    /// the roots fails its calls with [`Error::Transport`] of kind
    /// [`TransportError::Tls`](resile_core::TransportError::Tls), which is not retried.
    /// Needs a TLS feature; applies to the pool resile builds, not to a
    /// [`ClientBuilder::http_client`].
    ///
    /// ```
    /// # let pem = include_str!("../tests/tls/ca.pem");
    /// // let pem = std::fs::read("corp-ca.pem")?;
    /// let client = resile::Client::builder().add_root_certificate_pem(pem).build().unwrap();
    /// assert_eq!(client.config().root_certificates_pem.len(), 1);
    /// assert!(resile::Client::builder().add_root_certificate_pem("not a certificate").build().is_err());
    /// ```
    pub fn add_root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        let text = String::from_utf8_lossy(pem.as_ref()).into_owned();
        self.config.root_certificates_pem.push(text);
        self
    }

    /// Speaks HTTP/2 from the first byte to every server, without negotiating it (curl's
    /// `--http2-prior-knowledge`): for `http://` servers that speak h2c. Streams the server
    /// refuses unprocessed (`REFUSED_STREAM`, or a `GOAWAY` before them) are sent again at once
    /// by the engine, free of the budget and not failures of the host.
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.config.http2_prior_knowledge = true;
        self
    }

    /// Requests a batch runs at once.
    pub fn batch_concurrency(mut self, n: usize) -> Self {
        self.config.batch_concurrency = n;
        self
    }

    /// Bounds the last good responses kept for [`crate::Fallback::last_good`]: at most
    /// `max_entries` of at most `max_bytes` in all, the oldest going first.
    pub fn fallback_store(mut self, max_entries: usize, max_bytes: u64) -> Self {
        self.config.fallback_store_entries = max_entries;
        self.config.fallback_store_bytes = max_bytes;
        self
    }

    /// Whether calls carry a generated `X-Request-ID` (default [`RequestIds::Generate`]).
    /// [`RequestIds::Off`] sends none and costs nothing per call; [`Response::request_id`] is
    /// then empty. The same as `request_id` in the engine's config (`"request_id": "off"` in a
    /// config file); set it after [`ClientBuilder::engine`], which replaces the engine's config.
    ///
    /// ```
    /// let client = resile::Client::builder().request_ids(resile::RequestIds::Off).build().unwrap();
    /// assert_eq!(client.config().engine.request_id, resile::RequestIds::Off);
    /// ```
    pub fn request_ids(mut self, ids: RequestIds) -> Self {
        self.config.engine.request_id = ids;
        self
    }

    /// The engine's seed, to replay a run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// Where access tokens come from; calls then carry one unless they opt out.
    pub fn token_source(mut self, source: impl TokenSource) -> Self {
        self.token_source = Some(Arc::new(source));
        self
    }

    /// Called with every event, in order. It runs while the client's engine lock is held: keep
    /// it quick, and do not call the client from it ([`Client::stats`] is fine).
    pub fn on_event(mut self, callback: impl Fn(&ClientEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(callback));
        self
    }

    /// Sends every attempt (and token fetch) with the caller's own `reqwest::Client`: its
    /// proxies, root certificates, client certificate, TLS backend, DNS resolver, connection
    /// pool (shared with whatever else uses that client) and default headers.
    ///
    /// The engine still decides everything it decides for a client resile builds: retries,
    /// waits, the budget, the breaker, limits, tokens, idempotency keys, attempt timeouts and
    /// deadlines. What resile then no longer configures, because it belongs to the client
    /// handed in:
    ///
    /// - the connection pool: `pool_idle_timeout_ms`, `pool_max_idle_per_host`, and
    ///   `recycle_pool_after` (a caller's pool is never rebuilt: the engine's recycling is off);
    /// - the HTTP stack's timeouts, `connect_timeout_ms` and `read_timeout_ms`, and the
    ///   `user_agent` (each the client's own);
    /// - TLS, HTTP versions and proxies: this crate's TLS features,
    ///   [`ClientBuilder::add_root_certificate_pem`] and [`ClientBuilder::http2_prior_knowledge`]
    ///   do not apply to it (its own `tls_certs_merge`, `http2_prior_knowledge` do).
    ///
    /// Redirects: resile follows the 3xx answers that reach it (up to `max_redirects`), and
    /// never sends `Authorization`, `Cookie`, `Proxy-Authorization` or an API key (any header
    /// [`crate::redact::is_secret_header`] names: `X-Api-Key`, `X-Auth-Token`, ...) to another
    /// origin. A client that follows redirects itself (reqwest's default policy) drops only
    /// `Authorization`, `Cookie`, `Proxy-Authorization` and `WWW-Authenticate` when the host,
    /// port or scheme changes (an API key goes along); its own limit then applies, and resile
    /// sees only the final answer. Build it with `reqwest::redirect::Policy::none()` to let
    /// resile follow, and decide with `max_redirects`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let http = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .connect_timeout(Duration::from_secs(2))
    ///     // .proxy(reqwest::Proxy::all("http://proxy.internal:3128")?)
    ///     // .tls_certs_merge([reqwest::Certificate::from_pem(include_bytes!("corp-ca.pem"))?])
    ///     .build()
    ///     .unwrap();
    /// let client = resile::Client::builder()
    ///     .base_url("https://api.example.com/v1/")
    ///     .http_client(http)
    ///     .build()
    ///     .unwrap();
    /// # drop(client);
    /// ```
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let shared = Shared::new(self.config, self.token_source, self.on_event, self.http)?;
        Ok(Client { shared })
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with the default configuration.
    ///
    /// # Panics
    /// When the HTTP stack cannot be initialised (as `reqwest::Client::new` does); use
    /// [`Client::builder`] to get an error instead.
    pub fn new() -> Client {
        match Client::builder().build() {
            Ok(c) => c,
            Err(e) => panic!("resile::Client::new: {e}"),
        }
    }

    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client from a configuration.
    pub fn from_config(config: ClientConfig) -> Result<Client, Error> {
        Client::builder().config(config).build()
    }

    /// The base URL relative request URLs are joined to, as the client holds it (http or
    /// https, its path ending in `/`), or `None` without `base_url`.
    pub fn base_url(&self) -> Option<&Url> {
        self.shared.base_url.as_ref()
    }

    /// The configuration in force.
    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: impl AsRef<str>) -> RequestBuilder {
        let url = resolve_url(self.shared.base_url.as_ref(), url.as_ref());
        RequestBuilder::new(self.clone(), method, url)
    }

    /// A GET.
    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A POST (with an automatic `Idempotency-Key` unless told otherwise).
    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A PUT.
    pub fn put(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A PATCH (with an automatic `Idempotency-Key` unless told otherwise).
    pub fn patch(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// A DELETE.
    pub fn delete(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A HEAD.
    pub fn head(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// GETs `url` and decodes a 2xx JSON body; other statuses are [`Error::Status`], a body
    /// that does not decode is [`Error::Decode`].
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Item { id: u64, name: String }
    ///
    /// let item: Item = client.get_json("https://api.example.com/items/1").await?;
    /// # let _ = (item.id, item.name); Ok(()) }
    /// ```
    pub async fn get_json<T: DeserializeOwned>(&self, url: impl AsRef<str>) -> Result<T, Error> {
        self.get(url).send_json().await
    }

    /// POSTs `body` as JSON (with an automatic `Idempotency-Key`) and decodes a 2xx JSON reply.
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// let order: serde_json::Value =
    ///     client.post_json("https://api.example.com/orders", &serde_json::json!({"sku": "A-1"})).await?;
    /// # let _ = order; Ok(()) }
    /// ```
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        url: impl AsRef<str>,
        body: &B,
    ) -> Result<T, Error> {
        self.post(url).json(body).send_json().await
    }

    /// GETs every URL (at most `batch_concurrency` at once) and decodes each 2xx JSON body.
    ///
    /// With [`BatchMode::Partial`] the answer is always `Ok`, one result per URL in input order.
    /// With [`BatchMode::AllOrNothing`] the first failure cancels the requests still running
    /// (their engine calls end as cancelled) and is returned as the error.
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
    /// use resile::BatchMode;
    ///
    /// let urls = (1..=3).map(|i| format!("https://api.example.com/items/{i}"));
    /// let results = client.get_many::<serde_json::Value, _, _>(urls, BatchMode::Partial).await?;
    /// for r in results {
    ///     match r {
    ///         Ok(item) => println!("{item}"),
    ///         Err(e) => println!("failed: {e}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_many<T, I, U>(
        &self,
        urls: I,
        mode: BatchMode,
    ) -> Result<Vec<Result<T, Error>>, Error>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = U>,
        U: AsRef<str>,
    {
        let requests: Vec<RequestBuilder> = urls.into_iter().map(|u| self.get(u)).collect();
        let n = requests.len();
        let mut running = futures::stream::iter(requests.into_iter().enumerate().map(
            |(i, request)| async move {
                let result = match request.send().await {
                    Ok(r) => r.error_for_status().and_then(|r| r.json::<T>()),
                    Err(e) => Err(e),
                };
                (i, result)
            },
        ))
        .buffer_unordered(self.shared.config.batch_concurrency);
        let mut results: Vec<Option<Result<T, Error>>> = (0..n).map(|_| None).collect();
        while let Some((i, result)) = running.next().await {
            if mode == BatchMode::AllOrNothing {
                if let Err(e) = result {
                    // Dropping the stream drops the calls in flight: each cancels itself.
                    return Err(e);
                }
            }
            results[i] = Some(result);
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::Cancelled)))
            .collect())
    }

    /// [`Client::get_many`] in [`BatchMode::AllOrNothing`], unwrapped.
    pub async fn get_all<T, I, U>(&self, urls: I) -> Result<Vec<T>, Error>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = U>,
        U: AsRef<str>,
    {
        let results = self
            .get_many::<T, I, U>(urls, BatchMode::AllOrNothing)
            .await?;
        results.into_iter().collect()
    }

    /// Walks a paginated collection; see [`Paginate`].
    pub fn paginate(
        &self,
        url: impl AsRef<str>,
        style: PageStyle,
        items_pointer: Option<&str>,
    ) -> Paginate {
        Paginate::new(self.clone(), url.as_ref(), style, items_pointer)
    }

    /// The engine's running totals (safe to call from the event callback).
    ///
    /// ```
    /// let client = resile::Client::new();
    /// let stats = client.stats();
    /// assert_eq!((stats.calls, stats.attempts, stats.retries), (0, 0, 0));
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Every known host's breaker, budget, limiter and hold, now. Its instants count from the
    /// same origin as [`Client::now`]. Not for the event callback (it answers empty there).
    ///
    /// ```no_run
    /// # async fn demo(client: resile::Client) {
    /// for host in client.hosts() {
    ///     println!("{}: {:?}, {:.1} retries in the budget", host.host, host.breaker, host.budget_available);
    ///     if let Some(until) = host.held_until {
    ///         println!("  held for {:?} more", until - client.now());
    ///     }
    /// }
    /// # }
    /// ```
    pub fn hosts(&self) -> Vec<HostView> {
        self.shared.hosts()
    }

    /// The access token's state (never the secret).
    pub fn token(&self) -> TokenView {
        self.shared.token_view()
    }

    /// Calls started and not finished.
    pub fn active_calls(&self) -> usize {
        self.shared.active_calls()
    }

    /// The engine's clock now (the `Instant`s in events and [`HostView`]s count from the same
    /// origin).
    pub fn now(&self) -> resile_core::Instant {
        self.shared.now()
    }

    /// How many times the connection pool was rebuilt (never for a caller's
    /// [`ClientBuilder::http_client`]).
    pub fn pool_recycles(&self) -> u64 {
        self.shared.recycles()
    }

    // The entry points hand the call's future (`run_from`) what makes their answer, rather
    // than awaiting it in futures of their own (which would each hold it, and the request,
    // once more) or mapping it (a `Map` around it, one more state in every call's future).

    pub(crate) fn execute(
        self,
        req: Prepared,
        options: CallOptions,
    ) -> impl Future<Output = Result<Response, Error>> {
        self.run_from::<(), _>(req, options, None, false, Start::Fresh, |answer| {
            Ok(answer.response)
        })
    }

    /// Like [`Client::execute`], leaving the final answer's body unread for the caller.
    pub(crate) fn execute_streaming(
        self,
        req: Prepared,
        options: CallOptions,
    ) -> impl Future<Output = Result<StreamingResponse, Error>> {
        self.run_from::<(), _>(req, options, None, true, Start::Fresh, |answer| {
            StreamingResponse::from_answer(answer.response, answer.stream.map(|s| *s))
        })
    }

    /// Like [`Client::execute`], decoding a 2xx body as `T` *inside* the call: a body that
    /// does not decode is reported to the engine as unusable before it decides, so events,
    /// stats and the breaker agree with the [`Error::Decode`] the caller gets.
    pub(crate) fn execute_json<T: DeserializeOwned>(
        self,
        req: Prepared,
        options: CallOptions,
    ) -> impl Future<Output = Result<T, Error>> {
        let decode: Decoder<T> = resile_core::json_body::decode;
        self.run_from(req, options, Some(decode), false, Start::Fresh, |answer| {
            match answer.decoded {
                Some(v) => Ok(v),
                // A final non-2xx status: the engine handed it back as the answer.
                None => Err(answer
                    .response
                    .error_for_status()
                    .err()
                    .unwrap_or(Error::Status {
                        status: 0,
                        body_excerpt: String::new(),
                    })),
            }
        })
    }

    /// A download's call ([`Start::Download`]) or the next attempt of one
    /// ([`Start::Resumed`]): a streaming call that stays open on the engine while its body is
    /// read, and its id.
    pub(crate) async fn execute_download(
        self,
        req: Prepared,
        options: CallOptions,
        start: Start,
    ) -> Result<(StreamingResponse, CallId), Error> {
        let shared = self.shared.clone();
        let answer = self
            .run_from::<(), _>(req, options, None, true, start, Ok)
            .await?;
        let Some(call) = answer.call else {
            return Err(Error::Transport {
                kind: TransportError::Other,
                message: "a download's answer came from no call".into(),
            });
        };
        match StreamingResponse::from_answer(answer.response, answer.stream.map(|s| *s)) {
            Ok(response) => Ok((response, call)),
            Err(e) => {
                shared.cancel(call);
                Err(e)
            }
        }
    }

    /// The call's future, in two states that share their space: before its first poll it
    /// holds what the call was given (the request, its options, how it starts); the first
    /// poll starts the call on the engine and leaves the future that runs it, which holds
    /// the request and what the call's answer needs, and nothing of the options or the
    /// engine's spec (dead once the call has started, they would otherwise be kept, as an
    /// `async` block's captures are, for as long as the call runs).
    fn run_from<T, O>(
        self,
        req: Prepared,
        options: CallOptions,
        decode: Option<Decoder<T>>,
        stream: bool,
        start: Start,
        finish: impl FnOnce(Answer<T>) -> Result<O, Error>,
    ) -> impl Future<Output = Result<O, Error>> {
        CallFuture::Unstarted {
            start: move || {
                let shared = &self.shared;
                let download = matches!(start, Start::Download | Start::Resumed { .. });
                let host = transport::host_key(&req.url);
                let mut spec =
                    CallSpec::new(options.method, &host).idempotency(options.idempotency);
                spec.replayable = req.body.replayable();
                spec.needs_token = options.needs_token;
                spec.own_authorization = req.headers.contains_key(http::header::AUTHORIZATION);
                spec.deadline = options.deadline;
                spec.max_attempts = options.max_attempts;
                if let Some(f) = options.retry_if {
                    spec.predicate =
                        Some(control::predicate(f, &req.method, &req.url, &req.headers));
                }
                // Streaming calls hand back a live body: a stored one cannot stand in for it.
                let fallback = options.fallback.filter(|_| !stream);
                let key = fallback
                    .as_ref()
                    .map(|_| control::store_key(&req.method, &req.url));
                let stand_in = match (&fallback, &key) {
                    (Some(f), Some(k)) => f.resolve(shared, k).map(|(spec_fb, stored)| {
                        spec.fallback = Some(spec_fb);
                        Box::new(stored)
                    }),
                    _ => None,
                };
                let keep_as = key
                    .filter(|_| fallback.as_ref().is_some_and(|f| f.keeps_last_good()))
                    .map(Box::new);
                let judged = spec.predicate.is_some();
                let span = call_span(&req, &shared.config.redact_query_params);
                // Started in the caller's context, outside the call's own span: whether there is
                // a trace to carry on is the caller's.
                let call = telemetry::Call::start(target(&req, shared));
                let (id, orders) =
                    span.in_scope(|| call_loop::begin(shared, spec, start, &call, None))?;
                // Without the request borrowed, so that it moves into the call's running future.
                let call = call.detach();
                let run = async move {
                    let shared = &self.shared;
                    // Made in the same poll as the call was started (the first poll of this
                    // future follows at once): a caller who drops the future cancels the call.
                    let guard = CallGuard {
                        shared,
                        id,
                        live: true,
                    };
                    let call = call.attach(target(&req, shared));
                    // `call_loop::proceed`'s steps, written out: through it (the exchange made
                    // by a closure, and `proceed`'s own captures beside this block's) `send()`'s
                    // future was 536 B instead of 464 B, past the tokio task's 640-byte step.
                    // Waits for the first order without taking it: the loop takes it, so it is
                    // not kept here for as long as the call runs.
                    future::poll_fn(|cx| orders.poll_ready(cx)).await;
                    let exchange = Transport {
                        shared,
                        req: &req,
                        limits: Limits {
                            max_response_bytes: shared.config.max_response_bytes,
                            max_redirects: shared.config.max_redirects,
                        },
                        stream,
                        decode,
                        last: None,
                        decoded: None,
                        undecodable: None,
                        stand_in,
                        keep_as,
                        judged,
                        call: None,
                        download,
                        attempt: transport::attempt,
                    };
                    let result = Running::new(&call, guard, orders)
                        .attempts_boxed(exchange)
                        .await;
                    call.finish(result.is_ok());
                    // Taken from the request now the call is over, rather than copied for the
                    // answer.
                    finish(result?.from(req.url))
                };
                Ok(run.instrument(span))
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// A call's future: what starts the call at the first poll, then the future that runs it
    /// (in the same place: the two share their space), or the error that refused it.
    #[project = CallProj]
    #[project_replace = CallTaken]
    enum CallFuture<S, R: Future> {
        Unstarted { start: S },
        Running { #[pin] run: R },
        Refused { error: Option<Error> },
    }
}

impl<O, S, R> Future for CallFuture<S, R>
where
    S: FnOnce() -> Result<R, Error>,
    R: Future<Output = Result<O, Error>>,
{
    type Output = Result<O, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                CallProj::Running { run } => return run.poll(cx),
                // The error that refused the call; none once handed over (polled again).
                CallProj::Refused { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or(Error::Cancelled)))
                }
                CallProj::Unstarted { .. } => {}
            }
            // The first poll: the call starts, and the future that runs it takes the place.
            let taken = self
                .as_mut()
                .project_replace(CallFuture::Refused { error: None });
            if let CallTaken::Unstarted { start } = taken {
                match start() {
                    Ok(run) => self.as_mut().set(CallFuture::Running { run }),
                    Err(e) => self.as_mut().set(CallFuture::Refused { error: Some(e) }),
                }
            }
        }
    }
}

/// What the call's telemetry says the call is.
fn target<'a>(req: &'a Prepared, shared: &'a Shared) -> Target<'a> {
    Target {
        method: req.method.as_str(),
        url: req.url.as_str(),
        redact: &shared.config.redact_query_params,
    }
}

/// The client's own attempts: reqwest on the wire, redirects and the body read by
/// [`transport::attempt`], a 2xx body decoded inside the call when there is a decoder.
struct Transport<'r, T, M> {
    shared: &'r Shared,
    req: &'r Prepared,
    limits: Limits,
    stream: bool,
    decode: Option<Decoder<T>>,
    last: Option<Received>,
    decoded: Option<T>,
    /// What the decoder said about the latest answer and the start of its body (boxed: kept
    /// only for a body that did not decode).
    undecodable: Option<Box<(String, String)>>,
    /// What the call answers with if the engine says it falls back (boxed: most calls have
    /// none).
    stand_in: Option<Box<Stored>>,
    /// The last-good key a good answer is kept under, for requests with that fallback (boxed:
    /// most calls have none, and the exchange is kept for as long as the call runs).
    #[allow(clippy::box_collection)]
    keep_as: Option<Box<String>>,
    /// The call has a retry predicate, which may read any response header.
    judged: bool,
    /// The engine's id of the call.
    call: Option<CallId>,
    /// A download ([`Start::Download`] or [`Start::Resumed`]): sent on the pool that never
    /// decodes ([`Shared::download_http`]).
    download: bool,
    /// Makes an attempt's future: [`transport::attempt`], whose type the call loop runs in
    /// place (unboxed) through this parameter, as an `async` block's type cannot be written.
    attempt: M,
}

impl<'r, T, M, F> Exchange for Transport<'r, T, M>
where
    M: Fn(reqwest::Client, &'r Prepared, SendOrder, Option<UuidText>, Limits, BodyMode<'r>) -> F,
    F: Future<Output = Attempt> + Send,
{
    type Received = Received;
    type Output = Answered<T>;
    type Attempt = F;

    fn send(&mut self, order: SendOrder, request_id: Option<&UuidText>) -> F {
        let shared: &'r Shared = self.shared;
        let mode = if self.stream {
            BodyMode::Stream
        } else {
            BodyMode::Buffer(&shared.buffer)
        };
        let http = if self.download {
            shared.download_http()
        } else {
            shared.http()
        };
        let (req, limits) = (self.req, self.limits);
        (self.attempt)(http, req, order, request_id.copied(), limits, mode)
    }

    fn received(&mut self, received: Received, report: impl FnOnce(Outcome<'_>)) {
        {
            let hints = HintHeaders::new(&received.headers);
            let wall = hints.wall();
            // A predicate may look at any header; other calls show the engine the hints only.
            let judged;
            let headers: &dyn resile_core::headers::Headers = if self.judged {
                judged = JudgedHeaders {
                    hints,
                    map: &received.headers,
                };
                &judged
            } else {
                &hints
            };
            let response = resile_core::Response::new(received.status.as_u16(), headers, wall);
            self.decoded = None;
            self.undecodable = None;
            let mut problem = received.problem;
            if let (None, Some(decode), true) = (problem, self.decode, received.status.is_success())
            {
                match decode(&received.body) {
                    Ok(v) => self.decoded = Some(v),
                    Err(message) => {
                        let quoted = excerpt(&received.body, EXCERPT_BYTES);
                        self.undecodable = Some(Box::new((message, quoted)));
                        problem = Some(Problem::Undecodable);
                    }
                }
            }
            report(match problem {
                Some(problem) => Outcome::Unusable(response, problem),
                None => Outcome::Response(response),
            });
        }
        self.last = Some(received);
    }

    fn lost(&mut self) {
        self.last = None;
    }

    fn opened(&mut self, id: CallId) {
        self.call = Some(id);
    }

    fn last_status(&self) -> Option<u16> {
        self.last.as_ref().map(|r| r.status.as_u16())
    }

    fn undecodable(&mut self) -> Option<(String, String)> {
        self.undecodable.take().map(|u| *u)
    }

    fn fallback(
        self,
        answer: FallbackAnswer,
        attempts: u32,
        request_id: Option<UuidText>,
    ) -> Option<Result<Answered<T>, Error>> {
        self.fall_back(answer, attempts, request_id)
    }

    fn done(self, attempts: u32, request_id: Option<UuidText>) -> Result<Answered<T>, Error> {
        let Some(mut r) = self.last else {
            return Err(Error::Transport {
                kind: TransportError::Other,
                message: "the engine finished a call that has no response".into(),
            });
        };
        let stream = r.stream.take();
        if let (Some(key), true) = (self.keep_as, r.status.is_success()) {
            let stored = Stored {
                status: r.status,
                headers: r.headers.clone(),
                body: r.body.clone(),
                url: Some(r.url.as_deref().unwrap_or(&self.req.url).clone()),
                version: r.version,
            };
            let size = stored.size();
            self.shared
                .last_good()
                .put(*key, stored, size, self.shared.now());
        }
        Ok(Answered {
            status: r.status,
            headers: r.headers,
            body: r.body,
            url: r.url,
            version: r.version,
            attempts,
            request_id,
            fallback: None,
            decoded: self.decoded,
            stream,
            call: self.call,
        })
    }
}

impl<T, M> Transport<'_, T, M> {
    /// The stand-in as the call's answer, its body decoded when the call decodes.
    fn fall_back(
        self,
        answer: FallbackAnswer,
        attempts: u32,
        request_id: Option<UuidText>,
    ) -> Option<Result<Answered<T>, Error>> {
        let stored = *self.stand_in?;
        let decoded = match (self.decode, stored.status.is_success()) {
            (Some(decode), true) => match decode(&stored.body) {
                Ok(v) => Some(v),
                Err(message) => {
                    return Some(Err(Error::Decode {
                        status: stored.status.as_u16(),
                        excerpt: excerpt(&stored.body, EXCERPT_BYTES),
                        message,
                    }))
                }
            },
            _ => None,
        };
        Some(Ok(Answered {
            status: stored.status,
            headers: stored.headers,
            body: stored.body,
            url: stored.url.map(Box::new),
            version: stored.version,
            attempts,
            request_id,
            fallback: Some(Box::new(answer)),
            decoded,
            stream: None,
            call: self.call,
        }))
    }
}

/// What a call's exchange ends with: the response but for its URL, which the call takes from
/// its request once the call is over ([`Answered::from`]) unless redirects led elsewhere.
struct Answered<T> {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// Where the answer came from, if not from the request's URL (boxed, as in
    /// [`Received`]: most answers come from the request's own URL).
    url: Option<Box<Url>>,
    version: Version,
    attempts: u32,
    request_id: Option<UuidText>,
    /// Boxed, as in [`Response`]: only a fallen-back call has one.
    fallback: Option<Box<FallbackAnswer>>,
    decoded: Option<T>,
    /// The unread body of a streaming call (boxed, as in [`Received`]: every other answer
    /// carries `None`, and an answer is moved out of the call's future on its way back).
    stream: Option<Box<reqwest::Response>>,
    call: Option<CallId>,
}

impl<T> Answered<T> {
    /// The answer of a call sent to `request_url`.
    #[inline(always)]
    fn from(self, request_url: Url) -> Answer<T> {
        let response = Response {
            status: self.status,
            headers: self.headers,
            body: self.body,
            url: self.url.map_or(request_url, |u| *u),
            version: self.version,
            attempts: self.attempts,
            request_id: self.request_id,
            fallback: self.fallback,
        };
        Answer {
            response,
            decoded: self.decoded,
            stream: self.stream,
            call: self.call,
        }
    }
}

/// What a call ended with: the response, the body decoded inside the call, or the unread body
/// of a streaming call.
struct Answer<T> {
    response: Response,
    decoded: Option<T>,
    stream: Option<Box<reqwest::Response>>,
    /// The engine's id of the call.
    call: Option<CallId>,
}

/// Decodes a 2xx body inside the call (see [`Client::execute_json`]).
type Decoder<T> = fn(&[u8]) -> Result<T, String>;

fn call_span(req: &Prepared, redact: &[String]) -> tracing::Span {
    tracing::info_span!(
        "resile.call",
        method = %req.method,
        url = %crate::redact::redact_url(req.url.as_str(), redact),
        call = tracing::field::Empty,
        request_id = tracing::field::Empty,
    )
}
