//! Request bodies made again for every attempt ([`crate::RequestBuilder::body_factory`], or a
//! [`BodyFactory`] in a request's extensions through [`crate::middleware::ResileMiddleware`]).
//!
//! A streamed body can be sent once: the bytes are gone when the attempt that carried them
//! fails. A factory makes the stream again — reopening a file, replaying a generator — so the
//! engine may retry the call (and a 307/308 may carry the body on) exactly as with a body held
//! in memory, without holding it in memory.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// Makes a fresh streamed body for each attempt of a call.
///
/// [`crate::RequestBuilder::body_factory`] makes one for the client's own requests. Through
/// the reqwest-middleware integration, put one in the request's extensions: every attempt's
/// body is then made by it (the request's own body is not sent), so a streamed upload can be
/// retried.
///
/// ```
/// use resile::BodyFactory;
///
/// let parts: Vec<bytes::Bytes> = vec!["a,b\n".into(), "c,d\n".into()];
/// let factory = BodyFactory::new(move || {
///     futures::stream::iter(parts.clone().into_iter().map(Ok::<_, std::io::Error>))
/// });
/// let mut extensions = http::Extensions::new();
/// extensions.insert(factory);
/// ```
#[derive(Clone)]
pub struct BodyFactory(Arc<dyn Fn() -> reqwest::Body + Send + Sync>);

impl fmt::Debug for BodyFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyFactory")
    }
}

impl BodyFactory {
    /// A factory that calls `make` for each attempt; each stream it returns is sent once.
    pub fn new<F, S>(make: F) -> Self
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
