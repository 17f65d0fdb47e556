//! Paginated collections as a `futures::Stream`. The core's [`Walk`] decides everything (the
//! next page, its attempts and deadline from the walk's shared allowance, when to stop, where
//! to resume); this module only makes its page calls and sleeps when it says to.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use resile_core::paginate::{
    Again, Body, PageCall, PageFailure, PageReply, PageStyle, Step, Stop, Walk, WalkError,
    WalkPolicy,
};
use resile_core::{Instant, Why};

use crate::client::Client;
use crate::error::{excerpt, Error};
use crate::request::resolve_url;
use crate::response::{Response, EXCERPT_BYTES};
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
/// The walk is one logical operation: its pages share one retry allowance and one deadline
/// ([`Paginate::policy`], default [`WalkPolicy::default`]), so a long walk through a flaky
/// server does not end on one page's bad streak. A walk that still fails ends the stream with
/// [`Error::Walk`], whose [`Error::resume`] says where to go on ([`Paginate::resume`]); nothing
/// is skipped silently.
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
/// // Link: <...>; rel="next" headers, the body an array. A walk that stops says where to
/// // go on, and a later walk starts there.
/// let url = "https://api.example.com/events";
/// let mut pages = client.paginate(url, PageStyle::Link, None).pages();
/// loop {
///     match pages.try_next().await {
///         Ok(Some(page)) => println!("{} items from {}", page.items.len(), page.url),
///         Ok(None) => break,
///         Err(e) => match e.resume() {
///             Some(at) => {
///                 eprintln!("{e}; going on from {}", at.token());
///                 pages = client.paginate(url, PageStyle::Link, None).resume(at.token()).pages();
///             }
///             None => return Err(e),
///         },
///     }
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
    policy: WalkPolicy,
    resume: Option<String>,
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
                policy: WalkPolicy::default(),
                resume: None,
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

    /// The walk's shared retry allowance and deadline.
    pub fn policy(mut self, policy: WalkPolicy) -> Self {
        if let Some(s) = self.setup.as_mut() {
            s.policy = policy;
        }
        self
    }

    /// Starts where an earlier walk over the same URL stopped: the token of its
    /// [`Error::resume`] (`?cursor=...`, or a URL for link paging).
    pub fn resume(mut self, token: impl Into<String>) -> Self {
        if let Some(s) = self.setup.as_mut() {
            s.resume = Some(token.into());
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

/// A walk in progress: the core's walk, and what the adapter keeps to build its error.
struct Run {
    client: Client,
    walk: Walk,
    /// The first URL's userinfo, for the pages of its origin.
    userinfo: Option<Userinfo>,
    /// The last page call's error, or the response the walk did not take in.
    last: Option<Result<Response, Error>>,
}

/// The first URL's userinfo, lent to every page call of the same origin (where it becomes the
/// Basic credentials it stands for) and to no other: a next link, relative or absolute, that
/// stays on the origin keeps them; one that leaves it never carries them.
struct Userinfo {
    origin: url::Origin,
    username: String,
    password: Option<String>,
}

impl Userinfo {
    /// Takes the userinfo off `url`, so the walk (its resume points, its errors) never holds it.
    fn take(url: &mut Url) -> Option<Userinfo> {
        let (username, password) = crate::request::strip_userinfo(url)?;
        Some(Userinfo {
            origin: url.origin(),
            username,
            password,
        })
    }

    /// `page` with the userinfo when it is on the same origin and has none of its own.
    fn lend(&self, page: &str) -> Option<Url> {
        let mut url = Url::parse(page).ok()?;
        if crate::request::has_userinfo(&url) || url.origin() != self.origin {
            return None;
        }
        url.set_username(&self.username).ok()?;
        url.set_password(self.password.as_deref()).ok()?;
        Some(url)
    }
}

/// The core's walk for `setup`, from its first URL or its resume point, and the first URL's
/// userinfo.
fn walk_of(setup: Setup) -> Result<(Client, Walk, Option<Userinfo>), Error> {
    let mut first = setup.first?;
    let userinfo = Userinfo::take(&mut first);
    let invalid = |e: resile_core::paginate::url::UrlError| {
        let url = setup.resume.clone().unwrap_or_else(|| first.to_string());
        Error::invalid_url(&url, e.to_string())
    };
    let (style, items) = (setup.style, setup.items_pointer);
    let walk = match &setup.resume {
        Some(token) => Walk::resume(first.as_str(), style, items, token),
        None => Walk::new(first.as_str(), style, items),
    }
    .map_err(invalid)?
    .policy(setup.policy);
    let walk = match setup.max_pages {
        Some(max) => walk.max_pages(max),
        None => walk,
    };
    Ok((setup.client, walk, userinfo))
}

fn pages(setup: Setup) -> BoxStream<'static, Result<Page, Error>> {
    let (client, walk, userinfo) = match walk_of(setup) {
        Ok(w) => w,
        Err(e) => return futures::stream::iter([Err(e)]).boxed(),
    };
    let run = Run {
        client,
        walk,
        userinfo,
        last: None,
    };
    futures::stream::unfold(run, |mut run| async move {
        loop {
            match run.walk.poll(run.client.now()) {
                Step::Fetch(call) => {
                    if let Some(page) = run.fetch(call).await {
                        return Some((Ok(page), run));
                    }
                }
                Step::Wait { until, why } => {
                    let wait = until.saturating_duration_since(run.client.now());
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        why = ?why,
                        "the walk fetches the page again after a wait"
                    );
                    tokio::time::sleep(wait).await;
                }
                Step::Fail(e) => {
                    let error = run.error(e);
                    return Some((Err(error), run));
                }
                Step::Done => return None,
            }
        }
    })
    .boxed()
}

impl Run {
    /// Makes one page call and feeds the walk; the page when the walk took it in.
    async fn fetch(&mut self, call: PageCall) -> Option<Page> {
        let lent = self.userinfo.as_ref().and_then(|u| u.lend(&call.url));
        let mut request = match lent {
            Some(url) => self.client.get(url.as_str()),
            None => self.client.get(call.url.as_str()),
        }
        .max_attempts(call.max_attempts);
        if let Some(deadline) = call.deadline {
            request = request.deadline(deadline);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let failure = page_failure(&e, &self.client);
                self.last = Some(Err(e));
                self.walk.failed(failure, self.client.now());
                return None;
            }
        };
        let bytes = response.bytes();
        let decoded = serde_json::from_slice::<Value>(&bytes).ok();
        let body = match &decoded {
            Some(v) => Body::Json(v),
            None => Body::Bytes(&bytes),
        };
        let headers = HintHeaders::new(response.headers());
        let reply = PageReply::new(response.status().as_u16(), &headers, body)
            .url(response.url().as_str())
            .attempts(response.attempts());
        let taken = self.walk.accept(reply);
        match (taken, decoded) {
            (Some(items), Some(body)) => Some(Page {
                url: response.url().clone(),
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                attempts: response.attempts(),
                items,
                body,
            }),
            _ => {
                self.last = Some(Ok(response));
                None
            }
        }
    }

    /// The client's error for a stopped walk: the cause as a single call would report it,
    /// with where to resume.
    fn error(&mut self, e: WalkError) -> Error {
        let last = self.last.take();
        let cause = match (e.stop, last) {
            (Stop::Call { .. }, Some(Err(error))) => error,
            (Stop::Status { status }, Some(Ok(r))) => Error::Status {
                status,
                body_excerpt: excerpt(&r.bytes(), EXCERPT_BYTES),
            },
            (Stop::NotJson { message }, Some(Ok(r))) => Error::Decode {
                status: r.status().as_u16(),
                excerpt: excerpt(&r.bytes(), EXCERPT_BYTES),
                message,
            },
            (Stop::Page(p), _) => Error::Pagination(p),
            (Stop::Deadline, _) => Error::Timeout {
                why: Why::DeadlineExceeded,
                attempts: 0,
                last: None,
                maybe_processed: false,
            },
            (Stop::BadLink { target, error }, _) => Error::invalid_url(&target, error.to_string()),
            (stop, _) => Error::invalid_request(stop),
        };
        Error::Walk {
            cause: Box::new(cause),
            resume: e.resume,
            pages: e.pages,
            items: e.items,
        }
    }
}

/// What the walk needs to know of a failed page call, by the core's one rule
/// ([`PageFailure::from_parts`]) over the facts the client's error keeps.
fn page_failure(e: &Error, client: &Client) -> PageFailure {
    let now: Instant = client.now();
    let retry_at = match e {
        Error::Unavailable {
            retry_at: Some(at), ..
        } => Some(
            now.saturating_add(
                at.duration_since(std::time::SystemTime::now())
                    .unwrap_or_default(),
            ),
        ),
        _ => None,
    };
    let attempts = match e {
        Error::Timeout { attempts, .. }
        | Error::RateLimited { attempts, .. }
        | Error::RetriesExhausted { attempts, .. }
        | Error::NotRetried { attempts, .. } => *attempts,
        _ => 1,
    };
    match e.why() {
        Some(why) => PageFailure::from_parts(why, e.is_retryable(), retry_at, attempts),
        None => PageFailure {
            attempts,
            again: Again::Never,
        },
    }
}
