//! Request bodies made again for every attempt ([`crate::RequestBuilder::body_factory`]).
//!
//! A streamed body can be sent once: the bytes are gone when the attempt that carried them
//! fails. A factory makes the stream again — reopening a file, replaying a generator — so the
//! engine may retry the call (and a 307/308 may carry the body on) exactly as with a body held
//! in memory, without holding it in memory.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// Makes a fresh streamed body for one attempt.
#[derive(Clone)]
pub(crate) struct BodyFactory(Arc<dyn Fn() -> reqwest::Body + Send + Sync>);

impl fmt::Debug for BodyFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyFactory")
    }
}

impl BodyFactory {
    pub(crate) fn new<F, S>(make: F) -> Self
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: futures::TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        BodyFactory(Arc::new(move || reqwest::Body::wrap_stream(make())))
    }

    /// The body of one attempt (or one redirect hop of it).
    pub(crate) fn make(&self) -> reqwest::Body {
        (self.0)()
    }
}
