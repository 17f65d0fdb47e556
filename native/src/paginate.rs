//! Paginated collections as a `futures::Stream`. The core's [`Paginator`] says which page comes
//! next and when to stop; each page is one engine call, with its retries.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::Value;

use resile_core::paginate::{PageRequest, PageStyle, Paginator};

use crate::client::Client;
use crate::error::{excerpt, Error};
use crate::request::resolve_url;
use crate::response::EXCERPT_BYTES;
use crate::transport::HintHeaders;

/// One page of a collection.
#[derive(Clone, Debug)]
pub struct Page {
    /// The URL that answered.
    pub url: Url,
    /// Its status (always 2xx).
    pub status: u16,
    /// Its headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Value,
    /// The items in it.
    pub items: Vec<Value>,
    /// Attempts the page took.
    pub attempts: u32,
}

/// A paginated collection, walked lazily: a `Stream` of its items as JSON values, or of typed
/// items ([`Paginate::items`]), or of whole pages ([`Paginate::pages`]).
///
/// Each page is fetched with retries like any call; the stream ends after the last page, and
/// ends with an error after a page that fails for good (nothing is skipped silently).
///
/// ```no_run
/// # async fn demo(client: resile::Client) -> Result<(), resile::Error> {
/// use futures::TryStreamExt;
/// use resile::PageStyle;
///
/// #[derive(serde::Deserialize)]
/// struct Item { id: u64 }
///
/// // {"items": [...], "next_cursor": "..."}, with ?cursor=... for the next page.
/// let ids: Vec<u64> = client
///     .paginate("https://api.example.com/items", PageStyle::cursor("/next_cursor", "cursor"), Some("/items"))
///     .items::<Item>()
///     .map_ok(|item| item.id)
///     .try_collect()
///     .await?;
///
/// // Link: <...>; rel="next" headers, the body an array.
/// let mut pages = client.paginate("https://api.example.com/events", PageStyle::Link, None).pages();
/// while let Some(page) = pages.try_next().await? {
///     println!("{} items from {}", page.items.len(), page.url);
/// }
/// # Ok::<(), resile::Error>(()) }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Paginate {
    setup: Option<Setup>,
    items: Option<BoxStream<'static, Result<Value, Error>>>,
}

struct Setup {
    client: Client,
    first: Result<Url, Error>,
    style: PageStyle,
    items_pointer: Option<String>,
    max_pages: Option<u64>,
}

struct Walk {
    client: Client,
    first: Url,
    last_url: Url,
    paginator: Paginator,
    pending_error: Option<Error>,
}

impl Paginate {
    pub(crate) fn new(
        client: Client,
        url: &str,
        style: PageStyle,
        items_pointer: Option<&str>,
    ) -> Self {
        let first = resolve_url(client.shared.base_url.as_ref(), url);
        Paginate {
            setup: Some(Setup {
                client,
                first,
                style,
                items_pointer: items_pointer.map(str::to_string),
                max_pages: None,
            }),
            items: None,
        }
    }

    /// A safety bound: more pages than this end the stream with an error (default one million).
    pub fn max_pages(mut self, max: u64) -> Self {
        if let Some(s) = self.setup.as_mut() {
            s.max_pages = Some(max);
        }
        self
    }

    /// The whole pages.
    pub fn pages(mut self) -> BoxStream<'static, Result<Page, Error>> {
        match self.setup.take() {
            Some(setup) => pages(setup),
            None => futures::stream::empty().boxed(),
        }
    }

    /// The items, decoded as `T`; an item that does not decode is an [`Error::Decode`] in its
    /// place (the walk goes on).
    pub fn items<T: DeserializeOwned + Send + 'static>(
        self,
    ) -> BoxStream<'static, Result<T, Error>> {
        self.pages()
            .flat_map(|page| {
                let decoded: Vec<Result<T, Error>> = match page {
                    Ok(page) => {
                        let status = page.status;
                        page.items
                            .into_iter()
                            .map(|item| {
                                serde_json::from_value::<T>(item.clone()).map_err(|e| {
                                    Error::Decode {
                                        status,
                                        excerpt: excerpt(
                                            item.to_string().as_bytes(),
                                            EXCERPT_BYTES,
                                        ),
                                        message: e.to_string(),
                                    }
                                })
                            })
                            .collect()
                    }
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(decoded)
            })
            .boxed()
    }
}

impl Stream for Paginate {
    type Item = Result<Value, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.items.is_none() {
            let Some(setup) = self.setup.take() else {
                return Poll::Ready(None);
            };
            let items = pages(setup)
                .flat_map(|page| {
                    let items: Vec<Result<Value, Error>> = match page {
                        Ok(page) => page.items.into_iter().map(Ok).collect(),
                        Err(e) => vec![Err(e)],
                    };
                    futures::stream::iter(items)
                })
                .boxed();
            self.items = Some(items);
        }
        match self.items.as_mut() {
            Some(s) => s.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

fn pages(setup: Setup) -> BoxStream<'static, Result<Page, Error>> {
    let first = match setup.first {
        Ok(u) => u,
        Err(e) => return futures::stream::iter([Err(e)]).boxed(),
    };
    let mut paginator = Paginator::new(setup.style, setup.items_pointer);
    if let Some(max) = setup.max_pages {
        paginator = paginator.max_pages(max);
    }
    let walk = Walk {
        client: setup.client,
        last_url: first.clone(),
        first,
        paginator,
        pending_error: None,
    };
    futures::stream::unfold(Some(walk), |walk| async move {
        let mut walk = walk?;
        if let Some(e) = walk.pending_error.take() {
            return Some((Err(e), None));
        }
        let url = match walk.paginator.next_request()? {
            PageRequest::Url(next) => match walk.last_url.join(&next) {
                Ok(u) => u,
                Err(e) => {
                    let e = Error::InvalidUrl {
                        url: next,
                        message: e.to_string(),
                    };
                    return Some((Err(e), None));
                }
            },
            PageRequest::Query(params) => with_params(&walk.first, &params),
        };
        match fetch_page(&walk.client, url, &mut walk.paginator).await {
            Ok((page, advance_error)) => {
                walk.last_url = page.url.clone();
                walk.pending_error = advance_error;
                Some((Ok(page), Some(walk)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed()
}

/// One page; an error working out the next one comes second, after this page's items.
async fn fetch_page(
    client: &Client,
    url: Url,
    paginator: &mut Paginator,
) -> Result<(Page, Option<Error>), Error> {
    let response = client.get(url.as_str()).send().await?.error_for_status()?;
    let body: Value = response.json()?;
    let (items, advance) = paginator.accept(&HintHeaders::new(response.headers()), &body)?;
    let advance = advance.map(Error::from);
    let page = Page {
        url: response.url().clone(),
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        attempts: response.attempts(),
        items,
        body,
    };
    Ok((page, advance))
}

/// `first` with `params` set, replacing parameters of the same names.
fn with_params(first: &Url, params: &[(String, String)]) -> Url {
    let mut url = first.clone();
    let kept: Vec<(String, String)> = first
        .query_pairs()
        .filter(|(k, _)| !params.iter().any(|(name, _)| name == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if params.is_empty() {
        return url;
    }
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .extend_pairs(params.iter().map(|(k, v)| (k, v)));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_replace_same_names() {
        let first = Url::parse("http://h.test/items?limit=5&offset=99&x=1").unwrap();
        let next = with_params(
            &first,
            &[("offset".into(), "10".into()), ("limit".into(), "5".into())],
        );
        assert_eq!(next.as_str(), "http://h.test/items?x=1&offset=10&limit=5");
        assert_eq!(with_params(&first, &[]).as_str(), first.as_str());
    }
}
