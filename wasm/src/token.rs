//! Access tokens for the Rust client: where they come from, the mirror of native
//! `resile::{TokenSource, StaticBearer, AccessToken, Secret}`. When to fetch, how many fetches
//! and what a 401 means are the engine's (single flight, early refresh, one forced refresh); a
//! source only fetches.
//!
//! One difference from native: a browser source gets no HTTP client to fetch with (it calls
//! `fetch` or anything else itself), so [`TokenSource::fetch`] takes only `&self`.

use core::future::Future;
use core::pin::Pin;
use std::rc::Rc;

use crate::driver::{Grant, TokenProvider};
use crate::error::Error;

pub use resile_core::token::{AccessToken, Secret};

/// What [`TokenSource::fetch`] returns: a boxed future, so the trait stays object safe.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken, Error>> + 'a>>;

/// Fetches access tokens for a [`crate::Client`] ([`crate::ClientBuilder::token_source`]).
pub trait TokenSource: 'static {
    /// Fetches a fresh token (no retries here: the engine decides what a failed fetch means
    /// for the calls waiting on it).
    fn fetch(&self) -> TokenFuture<'_>;
}

/// A fixed bearer token that never expires.
#[derive(Clone, Debug)]
pub struct StaticBearer(pub Secret);

impl StaticBearer {
    /// A source that always answers `secret`.
    pub fn new(secret: impl Into<Secret>) -> Self {
        StaticBearer(secret.into())
    }
}

impl TokenSource for StaticBearer {
    fn fetch(&self) -> TokenFuture<'_> {
        let token = AccessToken {
            secret: self.0.clone(),
            expires_in: None,
        };
        Box::pin(async move { Ok(token) })
    }
}

/// The driver's provider for a source: what it fetched, or what went wrong as text (kept as
/// the call's `detail` when the engine fails it for want of a token).
pub(crate) fn provider(source: impl TokenSource) -> TokenProvider {
    let source = Rc::new(source);
    Rc::new(move || {
        let source = source.clone();
        Box::pin(async move {
            match source.fetch().await {
                Ok(token) => Ok(Grant {
                    access_token: token.secret.expose().to_string(),
                    expires_in: token.expires_in,
                }),
                Err(e) => Err(format!("the token source failed: {e}")),
            }
        })
    })
}
