//! The Rust client, the mirror of native `resile::Client`: the same names, methods and
//! signatures for what both targets can do, so one crate using resile compiles for the host and
//! for wasm32 (select the crate with `cfg(target_arch = "wasm32")`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), resile_wasm::Error> {
//! let client = resile_wasm::Client::builder()
//!     .base_url("https://api.example.com/v1/")
//!     .max_in_flight(8)
//!     .build()?;
//! let user: serde_json::Value = client.get_json("users/42").await?;
//! # let _ = user; Ok(()) }
//! ```

use std::fmt;
use std::rc::Rc;

use http::Method;
use resile_core::engine::HostView;
use resile_core::token::TokenView;
use resile_core::{Config, Event, Instant, Stats};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::driver::{CallError, Driver, Options};
use crate::error::Error;
use crate::events::ClientEvent;
use crate::request::RequestBuilder;

/// A resilient HTTP client over `fetch`: the resile engine decides retries, backoff, budget,
/// breaker, rate limits, tokens, idempotency and concurrency (at most `max_in_flight` attempts
/// at once; the engine queues the rest).
///
/// Cheap to clone: clones share the engine (breakers, budgets, limits and concurrency).
#[derive(Clone)]
pub struct Client {
    pub(crate) driver: Driver,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`].
///
/// ```no_run
/// let client = resile_wasm::Client::builder()
///     .base_url("http://127.0.0.1:8080/api/")
///     .default_header("x-tenant", "acme")
///     .max_in_flight(64)
///     .max_in_flight_per_host(6)
///     .engine({
///         let mut policy = resile_wasm::Config::default();
///         policy.retry.max_attempts = 3;
///         policy
///     })
///     .build()
///     .unwrap();
/// # drop(client);
/// ```
#[must_use]
#[derive(Default)]
pub struct ClientBuilder {
    engine: Config,
    options: Options,
    on_event: Option<EventCallback>,
}

/// What [`ClientBuilder::on_event`] keeps.
type EventCallback = Rc<dyn Fn(&ClientEvent)>;

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("max_in_flight", &self.options.max_in_flight)
            .field(
                "max_in_flight_per_host",
                &self.options.max_in_flight_per_host,
            )
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The engine's policy.
    pub fn engine(mut self, engine: Config) -> Self {
        self.engine = engine;
        self
    }

    /// Relative URLs resolve against this (else against the page). A base without a trailing
    /// slash gets one, as native's does, so `https://api.example/v1` + `items` is
    /// `https://api.example/v1/items`.
    pub fn base_url(mut self, base: impl Into<String>) -> Self {
        self.options.base_url = Some(base.into());
        self
    }

    /// A header sent with every request.
    pub fn default_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.options
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
        self.options.headers.push((name, value.into()));
        self
    }

    /// Logical calls in flight at once.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.options.max_in_flight = n;
        self
    }

    /// Logical calls in flight at once per host.
    pub fn max_in_flight_per_host(mut self, n: usize) -> Self {
        self.options.max_in_flight_per_host = Some(n);
        self
    }

    /// The engine's seed, to replay a run (default: `crypto.getRandomValues`).
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = Some(seed);
        self
    }

    /// Where access tokens come from; calls then carry one unless they opt out
    /// ([`RequestBuilder::without_token`], [`RequestBuilder::bearer`]).
    pub fn token_source(mut self, source: impl crate::TokenSource) -> Self {
        self.options.token_provider = Some(crate::token::provider(source));
        self
    }

    /// Called with every event, in order, after the engine decided (never while it is borrowed).
    pub fn on_event(mut self, callback: impl Fn(&ClientEvent) + 'static) -> Self {
        self.on_event = Some(Rc::new(callback));
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(mut self) -> Result<Client, Error> {
        if let Some(base) = self.options.base_url.take() {
            self.options.base_url =
                Some(
                    crate::driver::parse_base(&base).map_err(|message| Error::InvalidUrl {
                        url: crate::error::shown_url(&base),
                        message,
                    })?,
                );
        }
        let driver = Driver::new(self.engine, self.options)?;
        if let Some(callback) = self.on_event {
            driver.add_listener(Rc::new(move |event: &Event, _| {
                callback(&ClientEvent::Engine(event.clone()))
            }));
        }
        Ok(Client { driver })
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
    /// Never with the default configuration, which is valid; use [`Client::builder`] to get an
    /// error for a configuration of your own.
    pub fn new() -> Client {
        match Client::builder().build() {
            Ok(c) => c,
            Err(e) => panic!("resile_wasm::Client::new: {e}"),
        }
    }

    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: impl AsRef<str>) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url.as_ref().to_string())
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
    pub async fn get_json<T: DeserializeOwned>(&self, url: impl AsRef<str>) -> Result<T, Error> {
        self.get(url).send().await?.error_for_status()?.json()
    }

    /// POSTs `body` as JSON (with an automatic `Idempotency-Key`) and decodes a 2xx JSON reply.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        url: impl AsRef<str>,
        body: &B,
    ) -> Result<T, Error> {
        self.post(url)
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
    }

    /// The engine's running totals.
    pub fn stats(&self) -> Stats {
        self.driver.with_engine(|e| e.stats())
    }

    /// Every known host's breaker, budget, limiter and hold, now (instants on [`Client::now`]'s
    /// clock).
    pub fn hosts(&self) -> Vec<HostView> {
        let now = self.driver.now();
        self.driver.with_engine(|e| e.hosts(now))
    }

    /// The access token's state (never the secret).
    pub fn token(&self) -> TokenView {
        self.driver.with_engine(|e| e.token_view())
    }

    /// The engine's clock now (`performance.now()`).
    pub fn now(&self) -> Instant {
        self.driver.now()
    }

    /// The driver underneath, for the JavaScript API and tests.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }
}

impl CallError {
    /// The public error for this call of `method` to `url` (shown without its query or
    /// credentials), and when the engine decided it.
    pub fn into_error(self, method: &str, url: &str) -> (Error, Instant) {
        match self {
            CallError::Failed {
                failure,
                at,
                token_error,
            } => (
                Error::Failed {
                    failure,
                    request: crate::error::request_text(method, url),
                    detail: token_error,
                },
                at,
            ),
            CallError::Invalid(message) => (Error::InvalidRequest { message }, crate::js::now()),
            CallError::Resume(e) => (Error::Resume(e), crate::js::now()),
        }
    }
}
