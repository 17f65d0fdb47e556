//! Server configuration.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// The largest collection the pagination routes will serve.
pub const MAX_COLLECTION: u64 = 1_000_000;

/// How a [`crate::start`]ed server behaves. Every field has a sensible default.
///
/// ```
/// let config = resile_chaos::ChaosConfig { seed: 7, ..Default::default() };
/// assert_eq!(config.port, 0);
/// assert_eq!(config.client_id, "demo");
/// ```
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Seed of every pseudo-random decision (`fail_rate`, token values).
    pub seed: u64,
    /// `expires_in` of tokens from `POST /oauth/token` unless the request overrides it.
    pub token_expires_in_secs: u64,
    /// The only client id accepted by `POST /oauth/token`.
    pub client_id: String,
    /// The secret that goes with [`ChaosConfig::client_id`].
    pub client_secret: String,
    /// Connections served at once; further ones wait in the accept queue.
    pub max_connections: usize,
    /// Serve this directory at `/www/...` and redirect `/` to `/www/index.html`.
    pub static_dir: Option<PathBuf>,
    /// Cap on every artificial delay: `/stall`, `/slow`, `delay_ms`.
    pub max_stall: Duration,
    /// Initial size of the paginated collection (at most [`MAX_COLLECTION`]).
    pub collection_size: u64,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Keep connections open between requests (HTTP/1.1 keep-alive). Off, every response
    /// closes its connection: a browser then never re-sends a request on its own after a
    /// scripted `reset` (it does so only on a reused connection), so the page sees the reset.
    pub keep_alive: bool,
    /// After this many requests a connection closes gracefully, as nginx's
    /// `keepalive_requests`: HTTP/1.1 after that response, HTTP/2 with a `GOAWAY`, so streams
    /// the client had sent past that request are refused unprocessed. `None` (the default): no
    /// limit.
    pub requests_per_connection: Option<u64>,
    /// Speak HTTP/1.x only, as a server without HTTP/2 (nginx without `http2`, Python's
    /// `http.server`): a client that speaks HTTP/2 from the first byte (h2c prior knowledge)
    /// gets an HTTP/1.1 error answer to its connection preface.
    pub http1_only: bool,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            port: 0,
            seed: 0,
            token_expires_in_secs: 3600,
            client_id: "demo".to_owned(),
            client_secret: "demo".to_owned(),
            max_connections: 1024,
            static_dir: None,
            max_stall: Duration::from_secs(30),
            collection_size: 10_000,
            max_body_bytes: 1 << 20,
            keep_alive: true,
            requests_per_connection: None,
            http1_only: false,
        }
    }
}

impl ChaosConfig {
    pub(crate) fn validate(&self) -> io::Result<()> {
        let invalid = |msg: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned()));
        if self.max_connections == 0 {
            return invalid("max_connections must be at least 1");
        }
        if self.collection_size > MAX_COLLECTION {
            return invalid("collection_size must be at most 1_000_000");
        }
        if self.requests_per_connection == Some(0) {
            return invalid("requests_per_connection must be at least 1");
        }
        if self.max_body_bytes == 0 {
            return invalid("max_body_bytes must be at least 1");
        }
        Ok(())
    }
}
