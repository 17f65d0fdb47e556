//! The client's configuration: the engine's policy plus what only the adapter knows (the pool,
//! timeouts of the HTTP stack, concurrency, limits).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::redact;

/// Everything a [`crate::Client`] is built from. Plain data (serde), with production-safe
/// defaults; checked once when the client is built, and an error names the field.
///
/// ```
/// let config: resile::ClientConfig = serde_json::from_str(r#"{
///     "base_url": "https://api.example.com/v1/",
///     "max_in_flight": 64,
///     "engine": { "retry": { "max_attempts": 3 } }
/// }"#).unwrap();
/// assert_eq!(config.engine.retry.max_attempts, 3);
/// let client = resile::Client::from_config(config).unwrap();
/// # drop(client);
/// ```
///
/// With [`crate::ClientBuilder::http_client`] the caller's `reqwest::Client` is the HTTP
/// stack, and its own settings stand in for `user_agent`, `connect_timeout_ms`,
/// `read_timeout_ms`, `pool_idle_timeout_ms`, `pool_max_idle_per_host`,
/// `root_certificates_pem` and `http2_prior_knowledge`; `recycle_pool_after` does not apply (a
/// caller's pool is never rebuilt). Everything else applies as usual.
///
/// `Debug` hides the values of credential headers in `default_headers` (see
/// [`crate::redact::is_secret_header`]) and the user info and secret query values of
/// `base_url`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// The engine's policy: retries, backoff, budget, breaker, rate limit, tokens.
    pub engine: resile_core::Config,
    /// Relative URLs (`"items"`, `"/v2/items"`) resolve against this. A base without a trailing
    /// slash gets one, so `https://api.example/v1` + `items` is `https://api.example/v1/items`.
    pub base_url: Option<String>,
    /// Headers sent with every request (a request's own header of the same name wins). They are
    /// dropped, like `Authorization`, when a redirect leaves the origin if their name is one of
    /// `authorization`, `cookie`, `proxy-authorization`.
    pub default_headers: BTreeMap<String, String>,
    /// The `User-Agent`. Default `resile/<version>`.
    pub user_agent: String,
    /// Time to open a TCP (and TLS) connection. `None`: no limit. Default 5 s.
    pub connect_timeout_ms: Option<u64>,
    /// Longest pause between two reads of a response. `None`: no limit (the engine's attempt
    /// timeout still applies). Default `None`.
    pub read_timeout_ms: Option<u64>,
    /// How long an idle pooled connection is kept. `None`: forever. Default 90 s.
    pub pool_idle_timeout_ms: Option<u64>,
    /// Idle connections kept per host. `None` (the default): as many as attempts may be in
    /// flight to one host (`max_in_flight_per_host`, else `max_in_flight`), so a steady load
    /// reuses its connections instead of opening new ones (and exhausting ports) while others
    /// sit closed.
    pub pool_max_idle_per_host: Option<usize>,
    /// Attempts in flight at once over the whole client (the engine's
    /// `concurrency.max_in_flight`, unless that is set). More calls queue in the engine, first
    /// come first served, for at most `engine.concurrency.max_queue_ms` (then
    /// [`Error::Overloaded`] with [`crate::Why::QueueTimeout`]); a call waiting out a backoff or
    /// a hold holds no slot. Default 512.
    pub max_in_flight: usize,
    /// Attempts in flight at once per host (`scheme://authority`), which also bounds the
    /// connections open to it. Default `None`: only the client-wide bound.
    pub max_in_flight_per_host: Option<usize>,
    /// The largest response body read; a larger one fails the call with
    /// [`Error::BodyTooLarge`]. Default 16 MiB.
    pub max_response_bytes: u64,
    /// Response bytes buffered at once across the whole client, by attempts reading their
    /// bodies (a body counts until its call hands it to the caller). An attempt that would go
    /// over waits for room, within its deadline. At least `max_response_bytes`. Default 256 MiB.
    /// For larger bodies, stream them: [`crate::RequestBuilder::send_streaming`].
    pub max_buffered_bytes: u64,
    /// Redirects followed within one attempt; `0` hands 3xx responses to the caller. A response
    /// that is still a redirect after this many fails the call with
    /// [`Error::TooManyRedirects`] (a redirect loop is an error, never a success). Default 10.
    pub max_redirects: u32,
    /// After this many connection failures in a row (refused, DNS, TLS, connect timeout), the
    /// connection pool is rebuilt once. `0`: never. Default 5.
    pub recycle_pool_after: u32,
    /// How many requests a batch ([`crate::Client::get_many`]) runs at once. Default 16.
    pub batch_concurrency: usize,
    /// Time limit for one access-token fetch. Default 10 s.
    pub token_fetch_timeout_ms: u64,
    /// The engine's seed (jitter, idempotency keys, request ids). `None`: from the OS, different
    /// for every client. Set it to replay a run.
    pub seed: Option<u64>,
    /// Query parameters whose values are hidden wherever the client prints or logs a URL, on
    /// top of [`crate::redact::SECRET_QUERY_PARAMS`] (`api_key`, `token`, `signature`, ...).
    /// Default empty.
    pub redact_query_params: Vec<String>,
    /// Last good responses kept for [`crate::Fallback::last_good`], at most. Default 256.
    pub fallback_store_entries: usize,
    /// Bytes (bodies and headers) of the last good responses kept, at most; a larger response
    /// is not kept. Default 8 MiB.
    pub fallback_store_bytes: u64,
    /// Fleet mode: the Redis server (`redis://[:password@]host:port[/db]`, feature `redis`)
    /// through which this client shares its hosts' rate limits, server holds and learned limits
    /// with the other instances of its fleet. The fleet's settings are `engine.fleet` (the
    /// defaults when unset: set `engine.fleet.size` to the number of instances). With it, the
    /// engine's `limit` is the whole fleet's limit. Default none. Printed without its password.
    pub redis_url: Option<String>,
    /// Certificate authorities HTTPS trusts on top of the crate's roots (see the crate's TLS
    /// features): each entry is PEM text with one or more `CERTIFICATE` blocks, such as a
    /// private CA's file (curl's `--cacert`; the CLI's too). The connection to a server whose
    /// chain ends in none of them fails with [`Error::Transport`] of kind
    /// [`resile_core::TransportError::Tls`], never retried. Needs a TLS feature. Default empty.
    pub root_certificates_pem: Vec<String>,
    /// Speak HTTP/2 from the first byte, without negotiating it (curl's
    /// `--http2-prior-knowledge`): for `http://` servers that speak h2c, such as gRPC-style
    /// services and sidecars. Over HTTPS the server must accept HTTP/2 in its ALPN. A server
    /// that cannot speak HTTP/2 then fails every call. Default `false` (HTTP/1.1 for
    /// `http://`, HTTP/2 where TLS negotiates it).
    pub http2_prior_knowledge: bool,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .default_headers
            .iter()
            .map(|(name, value)| (name.as_str(), redact::header_value(name, value)))
            .collect();
        let base_url = self
            .base_url
            .as_deref()
            .map(|u| redact::redact_url(u, &self.redact_query_params));
        f.debug_struct("ClientConfig")
            .field("engine", &self.engine)
            .field("base_url", &base_url)
            .field("default_headers", &headers)
            .field("user_agent", &self.user_agent)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("read_timeout_ms", &self.read_timeout_ms)
            .field("pool_idle_timeout_ms", &self.pool_idle_timeout_ms)
            .field("pool_max_idle_per_host", &self.pool_max_idle_per_host)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_in_flight_per_host", &self.max_in_flight_per_host)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_redirects", &self.max_redirects)
            .field("recycle_pool_after", &self.recycle_pool_after)
            .field("batch_concurrency", &self.batch_concurrency)
            .field("token_fetch_timeout_ms", &self.token_fetch_timeout_ms)
            .field("seed", &self.seed)
            .field("redact_query_params", &self.redact_query_params)
            .field("fallback_store_entries", &self.fallback_store_entries)
            .field("fallback_store_bytes", &self.fallback_store_bytes)
            .field(
                "redis_url",
                &self
                    .redis_url
                    .as_deref()
                    .map(|u| redact::redact_url(u, &self.redact_query_params)),
            )
            .field("root_certificates_pem", &self.root_certificates_pem.len())
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .finish()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            engine: resile_core::Config::default(),
            base_url: None,
            default_headers: BTreeMap::new(),
            user_agent: concat!("resile/", env!("CARGO_PKG_VERSION")).to_string(),
            connect_timeout_ms: Some(5_000),
            read_timeout_ms: None,
            pool_idle_timeout_ms: Some(90_000),
            pool_max_idle_per_host: None,
            max_in_flight: 512,
            max_in_flight_per_host: None,
            max_response_bytes: 16 << 20,
            max_buffered_bytes: 256 << 20,
            max_redirects: 10,
            recycle_pool_after: 5,
            batch_concurrency: 16,
            token_fetch_timeout_ms: 10_000,
            seed: None,
            redact_query_params: Vec::new(),
            fallback_store_entries: 256,
            fallback_store_bytes: 8 << 20,
            redis_url: None,
            root_certificates_pem: Vec::new(),
            http2_prior_knowledge: false,
        }
    }
}

fn bad(field: &str, message: impl Into<String>) -> Error {
    Error::Config {
        field: Some(field.to_string()),
        message: message.into(),
    }
}

impl ClientConfig {
    /// Reads a config from JSON; unknown fields are an error, missing ones take defaults. A
    /// value of the wrong type is an [`Error::ConfigParse`] with its full path and position.
    ///
    /// ```
    /// let e = resile::ClientConfig::from_json(r#"{"max_in_flight": 0}"#).unwrap_err();
    /// assert!(e.to_string().contains("max_in_flight"));
    /// let e = resile::ClientConfig::from_json(r#"{"engine":{"backoff":{"factor":"two"}}}"#).unwrap_err();
    /// assert!(matches!(&e, resile::Error::ConfigParse { field: Some(f), line: 1, .. } if f == "engine.backoff.factor"), "{e}");
    /// ```
    pub fn from_json(text: &str) -> Result<ClientConfig, Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut config: ClientConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = field_path(e.path());
            let inner = e.into_inner();
            let (line, column) = (inner.line(), inner.column());
            let text = inner.to_string();
            // serde_json appends the position; it is in the variant already.
            let message = match text.rfind(" at line ") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            Error::ConfigParse {
                field,
                line,
                column,
                message,
            }
        })?;
        if config.engine.preset.is_some() {
            // A preset lays the fields written next to it over its own: that needs the
            // engine section as written, not as serde filled it with defaults.
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| bad("engine", e.to_string()))?;
            config.set_engine_from_value(value.get("engine").cloned().unwrap_or_default())?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets the engine's policy from its section as written (JSON, or TOML turned into JSON),
    /// so a `preset` takes effect with the fields written next to it on top
    /// ([`resile_core::Config::from_value`]).
    ///
    /// ```
    /// let mut config = resile::ClientConfig::default();
    /// config
    ///     .set_engine_from_value(serde_json::json!({"preset": "aws-standard", "retry": {"max_attempts": 5}}))
    ///     .unwrap();
    /// assert_eq!(config.engine.retry.max_attempts, 5);
    /// assert_eq!(config.engine.backoff.cap_ms, 20_000);
    /// ```
    pub fn set_engine_from_value(&mut self, engine: serde_json::Value) -> Result<(), Error> {
        self.engine = resile_core::Config::from_value(engine)?;
        Ok(())
    }

    /// Checks every field; the error names the first one that is off.
    pub fn validate(&self) -> Result<(), Error> {
        self.engine.validate()?;
        match (&self.redis_url, &self.engine.fleet) {
            (None, Some(_)) => {
                return Err(bad(
                    "engine.fleet",
                    "fleet mode needs a store: set `redis_url` too",
                ))
            }
            (Some(_), _) if !cfg!(feature = "redis") => {
                return Err(bad(
                    "redis_url",
                    "this build of resile has no Redis support: enable the crate's `redis` feature",
                ))
            }
            _ => {}
        }
        if let Some(base) = &self.base_url {
            crate::request::parse_base(base).map_err(|e| bad("base_url", e.to_string()))?;
        }
        for (name, value) in &self.default_headers {
            if http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(bad(
                    "default_headers",
                    format!("`{name}` is not a valid header name"),
                ));
            }
            if http::header::HeaderValue::from_str(value).is_err() {
                return Err(bad(
                    "default_headers",
                    format!("the value of `{name}` is not a valid header value"),
                ));
            }
        }
        if http::header::HeaderValue::from_str(&self.user_agent).is_err() {
            return Err(bad("user_agent", "must be a valid header value"));
        }
        for (field, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("read_timeout_ms", self.read_timeout_ms),
            ("pool_idle_timeout_ms", self.pool_idle_timeout_ms),
        ] {
            if value == Some(0) {
                return Err(bad(field, "must be positive or null"));
            }
        }
        if self.max_in_flight == 0 || self.max_in_flight > 1 << 20 {
            return Err(bad(
                "max_in_flight",
                format!("is {}, must be in 1..=1048576", self.max_in_flight),
            ));
        }
        if let Some(n) = self.max_in_flight_per_host {
            if n == 0 || n > self.max_in_flight {
                return Err(bad(
                    "max_in_flight_per_host",
                    format!("is {n}, must be in 1..=max_in_flight or null"),
                ));
            }
        }
        if self.max_buffered_bytes < self.max_response_bytes || self.max_buffered_bytes > 1 << 50 {
            return Err(bad(
                "max_buffered_bytes",
                format!(
                    "is {}, must be at least max_response_bytes ({}) and at most 2^50",
                    self.max_buffered_bytes, self.max_response_bytes
                ),
            ));
        }
        if self.max_response_bytes == 0 {
            return Err(bad("max_response_bytes", "must be at least 1"));
        }
        if self.batch_concurrency == 0 {
            return Err(bad("batch_concurrency", "must be at least 1"));
        }
        if self.token_fetch_timeout_ms == 0 {
            return Err(bad("token_fetch_timeout_ms", "must be positive"));
        }
        if self.redact_query_params.iter().any(|p| p.is_empty()) {
            return Err(bad("redact_query_params", "names must not be empty"));
        }
        crate::tls::check(&self.root_certificates_pem)
            .map_err(|message| bad("root_certificates_pem", message))?;
        Ok(())
    }
}

/// The dotted path of a deserialization error (`engine.backoff.factor`); `None` at the top.
pub(crate) fn field_path(path: &serde_path_to_error::Path) -> Option<String> {
    let text = path.to_string();
    // A syntax error comes before its field: the path names it `?` (`engine.retry.?`).
    let text = text.trim_end_matches('?').trim_end_matches('.');
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_names_the_section_it_is_in_not_a_question_mark() {
        let text = "{\n \"engine\": {\n  \"retry\": {\"max_attempts\": 3,}\n }\n}\n";
        match ClientConfig::from_json(text) {
            Err(Error::ConfigParse { field, line, .. }) => {
                assert_eq!((field.as_deref(), line), (Some("engine.retry"), 3));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ClientConfig::from_json("{,}"),
            Err(Error::ConfigParse { field: None, .. })
        ));
    }

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = ClientConfig::default();
        c.validate().unwrap();
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(ClientConfig::from_json(&text).unwrap(), c);
        assert_eq!(ClientConfig::from_json("{}").unwrap(), c);
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases = [
            (r#"{"max_in_flight":0}"#, "max_in_flight"),
            (
                r#"{"max_in_flight":4,"max_in_flight_per_host":5}"#,
                "max_in_flight_per_host",
            ),
            (r#"{"max_response_bytes":0}"#, "max_response_bytes"),
            (r#"{"connect_timeout_ms":0}"#, "connect_timeout_ms"),
            (r#"{"base_url":"ftp://x"}"#, "base_url"),
            (r#"{"default_headers":{"bad name":"x"}}"#, "default_headers"),
            (r#"{"batch_concurrency":0}"#, "batch_concurrency"),
            (
                r#"{"engine":{"retry":{"max_attempts":0}}}"#,
                "retry.max_attempts",
            ),
        ];
        for (text, field) in cases {
            match ClientConfig::from_json(text) {
                Err(Error::Config { field: Some(f), .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: expected an error naming {field}, got {other:?}"),
            }
        }
        let unknown = ClientConfig::from_json(r#"{"retries":1}"#).unwrap_err();
        assert!(
            matches!(&unknown, Error::ConfigParse { message, .. } if message.contains("unknown field `retries`")),
            "{unknown:?}"
        );
        assert!(matches!(
            ClientConfig::from_json(r#"{"engine": "#),
            Err(Error::ConfigParse { line: 1, .. })
        ));
    }

    #[test]
    fn type_errors_name_the_full_path_and_the_position() {
        let cases = [
            (
                "{\"engine\":{\"backoff\":{\"factor\":\"two\"}}}",
                "engine.backoff.factor",
                1,
            ),
            ("{\n  \"max_in_flight\": -1\n}", "max_in_flight", 2),
            ("{\"max_in_flight\": \"lots\"}", "max_in_flight", 1),
            (
                "{\"engine\": {\n \"backoff\": {\n  \"jitter\": \"wild\"}}}",
                "engine.backoff.jitter",
                3,
            ),
        ];
        for (text, path, at_line) in cases {
            match ClientConfig::from_json(text) {
                Err(e @ Error::ConfigParse { .. }) => {
                    let Error::ConfigParse {
                        field,
                        line,
                        column,
                        ..
                    } = &e
                    else {
                        unreachable!()
                    };
                    assert_eq!(field.as_deref(), Some(path), "{text}");
                    assert_eq!(*line, at_line, "{text}");
                    assert!(*column > 0);
                    assert!(e.to_string().contains(path), "{e}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_preset_in_the_engine_section_takes_effect_under_the_fields_beside_it() {
        let c = ClientConfig::from_json(
            r#"{"engine":{"preset":"aws-standard","retry":{"max_attempts":5}},"max_in_flight":8}"#,
        )
        .unwrap();
        let aws = resile_core::Config::from_preset("aws-standard").unwrap();
        assert_eq!(c.engine.retry.max_attempts, 5, "the field written wins");
        assert_eq!(c.engine.backoff, aws.backoff, "the rest is the preset's");
        assert_eq!(c.max_in_flight, 8);
        let e = ClientConfig::from_json(r#"{"engine":{"preset":"bogus"}}"#).unwrap_err();
        assert!(e.to_string().contains("preset"), "{e}");
    }

    #[test]
    fn debug_hides_credential_headers_and_url_secrets() {
        let mut c = ClientConfig::default();
        for (name, value) in [
            ("Authorization", "Bearer sekrit-1"),
            ("Cookie", "sid=sekrit-2"),
            ("Proxy-Authorization", "Basic sekrit-3"),
            ("X-Api-Key", "sekrit-4"),
            ("X-Tenant", "acme"),
        ] {
            c.default_headers.insert(name.into(), value.into());
        }
        c.base_url = Some("https://me:sekrit-5@api.test/v1?tenant_code=sekrit-6".into());
        c.redact_query_params = vec!["tenant_code".into()];
        let shown = format!("{c:?}");
        assert!(!shown.contains("sekrit"), "{shown}");
        assert!(
            shown.contains("acme") && shown.contains("X-Api-Key"),
            "{shown}"
        );
    }
}
