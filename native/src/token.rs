//! Access tokens: where they come from. When to fetch, how many fetches, what to do on a 401:
//! all of that is the engine's (single flight, early refresh, one forced refresh).
//!
//! A [`TokenSource`] only fetches. The client calls it when the engine asks
//! ([`resile_core::Action::FetchToken`]), at most one fetch at a time, and attaches the token of
//! the generation the engine names to each attempt.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{excerpt, Error};
use resile_core::Why;

pub use resile_core::token::{AccessToken, Secret};

/// What [`TokenSource::fetch`] returns: a boxed future, so the trait stays object safe.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken, Error>> + Send + 'a>>;

/// Fetches access tokens for a [`crate::Client`].
///
/// ```
/// use resile::{AccessToken, Error, Secret, TokenFuture, TokenSource};
///
/// /// Reads the token from an environment variable on every fetch.
/// struct FromEnv;
///
/// impl TokenSource for FromEnv {
///     fn fetch<'a>(&'a self, _http: &'a reqwest::Client) -> TokenFuture<'a> {
///         Box::pin(async move {
///             let secret = std::env::var("API_TOKEN").map_err(|_| Error::Auth {
///                 why: resile::Why::TokenFetchFailed,
///                 detail: Some("API_TOKEN is not set".into()),
///             })?;
///             Ok(AccessToken { secret: Secret::new(secret), expires_in: None })
///         })
///     }
/// }
///
/// let client = resile::Client::builder().token_source(FromEnv).build().unwrap();
/// # drop(client);
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a fresh token. `http` is the client's connection pool (no retries: the engine
    /// decides what a failed fetch means for the calls waiting on it).
    fn fetch<'a>(&'a self, http: &'a reqwest::Client) -> TokenFuture<'a>;
}

/// A fixed bearer token that never expires.
///
/// ```
/// let client = resile::Client::builder()
///     .token_source(resile::StaticBearer::new("s3cr3t"))
///     .build()
///     .unwrap();
/// assert!(!format!("{client:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, Debug)]
pub struct StaticBearer(pub Secret);

impl StaticBearer {
    /// A source that always answers `secret`.
    pub fn new(secret: impl Into<Secret>) -> Self {
        StaticBearer(secret.into())
    }
}

impl TokenSource for StaticBearer {
    fn fetch<'a>(&'a self, _http: &'a reqwest::Client) -> TokenFuture<'a> {
        let token = AccessToken {
            secret: self.0.clone(),
            expires_in: None,
        };
        Box::pin(async move { Ok(token) })
    }
}

/// How a client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-encoded id and secret (recommended by the RFC).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Form,
}

/// The OAuth 2.0 client-credentials grant (RFC 6749 §4.4).
///
/// ```no_run
/// # async fn demo() -> Result<(), resile::Error> {
/// use resile::{ClientAuth, ClientCredentials, Secret};
///
/// let client = resile::Client::builder()
///     .base_url("https://api.example.com/")
///     .token_source(ClientCredentials {
///         token_url: "https://auth.example.com/oauth/token".into(),
///         client_id: "my-service".into(),
///         client_secret: Secret::new("from-a-vault"),
///         scope: Some("orders:read".into()),
///         auth: ClientAuth::Basic,
///     })
///     .build()?;
/// // Every call now carries a bearer token, fetched once and refreshed before it expires.
/// let orders: serde_json::Value = client.get_json("orders").await?;
/// # let _ = orders; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// The scope to ask for, if any.
    pub scope: Option<String>,
    /// How to send the credentials.
    pub auth: ClientAuth,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenErrorReply {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The largest token endpoint reply read.
const MAX_TOKEN_REPLY: usize = 64 * 1024;

fn auth_error(detail: String) -> Error {
    Error::Auth {
        why: Why::TokenFetchFailed,
        detail: Some(detail),
    }
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl ClientCredentials {
    /// A token endpoint's words with the client secret hidden, as sent or form-encoded: an
    /// error page that echoes the request (a debug page, an `error_description` quoting the
    /// form) must not put the secret into an error message.
    fn without_secret(&self, text: String) -> String {
        let secret = self.client_secret.expose();
        if secret.is_empty() {
            return text;
        }
        text.replace(secret, crate::redact::REDACTED)
            .replace(&form_encode(secret), crate::redact::REDACTED)
    }

    async fn fetch_token(&self, http: &reqwest::Client) -> Result<AccessToken, Error> {
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &self.scope {
                form.append_pair("scope", scope);
            }
            if self.auth == ClientAuth::Form {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", self.client_secret.expose());
            }
            form.finish()
        };
        let mut request = http
            .post(&self.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        if self.auth == ClientAuth::Basic {
            request = request.basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(self.client_secret.expose())),
            );
        }
        let mut response = request.body(form).send().await.map_err(|e| {
            auth_error(format!(
                "the token endpoint could not be reached: {}",
                crate::transport::error_text(&e)
            ))
        })?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            auth_error(format!(
                "the token reply broke off: {}",
                crate::transport::error_text(&e)
            ))
        })? {
            if body.len() + chunk.len() > MAX_TOKEN_REPLY {
                return Err(auth_error(format!(
                    "the token reply is larger than {MAX_TOKEN_REPLY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let reason = match serde_json::from_slice::<TokenErrorReply>(&body) {
                Ok(e) => match e.error_description {
                    Some(d) => format!("{}: {d}", e.error),
                    None => e.error,
                },
                Err(_) => excerpt(&body, 200),
            };
            return Err(auth_error(format!(
                "the token endpoint answered {}: {}",
                status.as_u16(),
                self.without_secret(reason)
            )));
        }
        let reply: TokenReply = serde_json::from_slice(&body).map_err(|e| {
            auth_error(format!(
                "the token reply is not an OAuth2 token response: {e}"
            ))
        })?;
        Ok(AccessToken {
            expires_in: lifetime(reply.expires_in.as_ref()),
            secret: Secret::new(reply.access_token),
        })
    }
}

/// A token reply's `expires_in`: seconds as a JSON number (RFC 6749 §5.1), fractions
/// included (`3599.7`), or the same as a string (Azure AD's v1 endpoint sends `"3599"`); a
/// lifetime too large to represent is as long as one can be. Anything else (negative, not a
/// number) says nothing of the lifetime: the token is used until a 401.
fn lifetime(expires_in: Option<&serde_json::Value>) -> Option<Duration> {
    let seconds = match expires_in? {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    // `as` saturates: 1e23 s is u64::MAX s.
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs(seconds as u64))
}

impl TokenSource for ClientCredentials {
    fn fetch<'a>(&'a self, http: &'a reqwest::Client) -> TokenFuture<'a> {
        Box::pin(self.fetch_token(http))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_is_read_as_token_endpoints_send_it() {
        let secs = |n| Some(Duration::from_secs(n));
        for (reply, expected) in [
            (r#"{"expires_in": 3600}"#, secs(3600)),
            (r#"{"expires_in": 3599.7}"#, secs(3599)),
            (r#"{"expires_in": "3599"}"#, secs(3599)),
            (r#"{"expires_in": " 60.5 "}"#, secs(60)),
            (r#"{"expires_in": 0}"#, secs(0)),
            (r#"{"expires_in": 18446744073709551615}"#, secs(u64::MAX)),
            (r#"{"expires_in": 1e23}"#, secs(u64::MAX)),
            (r#"{"expires_in": -5}"#, None),
            (r#"{"expires_in": "-5"}"#, None),
            (r#"{"expires_in": "soon"}"#, None),
            (r#"{"expires_in": "inf"}"#, None),
            (r#"{"expires_in": null}"#, None),
            (r#"{"expires_in": true}"#, None),
            (r#"{}"#, None),
        ] {
            let value: serde_json::Value = serde_json::from_str(reply).unwrap();
            assert_eq!(lifetime(value.get("expires_in")), expected, "{reply}");
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let cc = ClientCredentials {
            token_url: "http://127.0.0.1:1/oauth/token".into(),
            client_id: "id".into(),
            client_secret: Secret::new("topsecret"),
            scope: None,
            auth: ClientAuth::Form,
        };
        let token = AccessToken {
            secret: Secret::new("bearer-value"),
            expires_in: Some(Duration::from_secs(5)),
        };
        let text = format!("{cc:?} {token:?} {:?}", StaticBearer::new("static-secret"));
        for secret in ["topsecret", "bearer-value", "static-secret"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
