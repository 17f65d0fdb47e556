//! Where a walk goes on: the next request, as a full URL and as a short token a person can
//! pass back (`resile get URL --paginate ... --resume TOKEN`).
//!
//! The token is the smallest text that, with the walk's first URL, names the next request:
//! - cursor, offset and page styles: the parameters the walk sets, as a query (`?cursor=abc`,
//!   `?` for the first page); the rest of the first URL (other parameters, credentials in it)
//!   is not repeated;
//! - link style: the next URL, without its scheme and host when they are the first URL's
//!   (`/items?after=80`), else whole.
//!
//! ```
//! use resile_core::paginate::{PageRequest, PageStyle, Resume};
//!
//! let first = "https://api.test/items?limit=20";
//! let style = PageStyle::cursor("/next", "cursor");
//! let r = Resume::new(first, "https://api.test/items?limit=20&cursor=c%2F2", &style);
//! assert_eq!(r.token(), "?cursor=c%2F2");
//! assert_eq!(
//!     Resume::request(r.token(), first, &style).unwrap(),
//!     (first.to_string(), PageRequest::Query(vec![("cursor".into(), "c/2".into())]))
//! );
//!
//! let link = Resume::new(first, "https://api.test/items?after=80", &PageStyle::Link);
//! assert_eq!(link.token(), "/items?after=80");
//! ```

use super::next::PageRequest;
use super::style::PageStyle;
use super::url::{
    origin, pairs_named, path_and_query, query_pairs, query_string, resolve, UrlError,
};

/// The next request of a walk that stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    url: String,
    token: String,
}

impl Resume {
    /// The resume point of a walk that started at `first` and would request `next` (a full
    /// URL) next.
    pub fn new(first: &str, next: &str, style: &PageStyle) -> Self {
        let token = match style {
            PageStyle::Link => match (origin(first), origin(next), path_and_query(next)) {
                (Ok(a), Ok(b), Ok(target)) if a == b => target,
                _ => next.to_string(),
            },
            _ => {
                let names = style.params();
                let pairs = pairs_named(next, Some(&names));
                // `?` alone: no parameter set yet, the first page.
                match query_string(&pairs) {
                    q if q.is_empty() => "?".to_string(),
                    q => q,
                }
            }
        };
        Resume {
            url: next.to_string(),
            token,
        }
    }

    /// The next request, whole.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The short form (see the module docs).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// What a token means for a walk over `first` in `style`: the URL to set parameters on,
    /// and the next request. A token is a query (`?cursor=abc`) or a URL, absolute or relative
    /// to `first`; for the parameter styles a URL's own parameters are read back.
    pub fn request(
        token: &str,
        first: &str,
        style: &PageStyle,
    ) -> Result<(String, PageRequest), UrlError> {
        let token = token.trim();
        match style {
            PageStyle::Link => Ok((first.to_string(), PageRequest::Url(resolve(first, token)?))),
            _ if token.starts_with('?') => {
                Ok((first.to_string(), PageRequest::Query(query_pairs(token))))
            }
            _ => {
                let url = resolve(first, token)?;
                let names = style.params();
                let pairs = pairs_named(&url, Some(&names));
                Ok((url, PageRequest::Query(pairs)))
            }
        }
    }
}
