//! The walk over a paginated collection, sans IO: every driver (the native stream, the browser
//! iterator, the simulator) runs this loop and only performs the page calls.
//!
//! ```text
//!   ┌─► poll(now) ─┬─► Fetch(PageCall)  make the call, then accept(reply) or failed(failure)
//!   │              ├─► Wait { until }   the host refuses for a while: sleep until then
//!   │              ├─► Fail(WalkError)  once, after the last page's items; says where to resume
//!   │              └─► Done             the collection is exhausted
//!   └──────────────── after each input, and after a wait
//! ```
//!
//! A page call is an ordinary engine call whose attempts and deadline come from the walk's
//! [`Allowance`](super::Allowance): the walk, not one page's attempt count, decides when to
//! give up. An error working out the *next* page (a repeated cursor) is held and served by the
//! next [`Walk::poll`], after the page's items. At every step [`Walk::resume_point`] says the
//! next request, so a walk that fails can be continued later with [`Walk::resume`].
//!
//! ```
//! use resile_core::paginate::{Body, PageReply, PageStyle, Step, Walk};
//! use resile_core::Instant;
//! use serde_json::json;
//!
//! let style = PageStyle::cursor("/next", "cursor");
//! let mut walk = Walk::new("https://api.test/items", style, Some("/items".into())).unwrap();
//! let now = Instant::ZERO;
//! let Step::Fetch(call) = walk.poll(now) else { panic!() };
//! assert_eq!(call.url, "https://api.test/items");
//! let page = json!({"items": [1, 2], "next": "b"});
//! let items = walk.accept(PageReply::new(200, &[("content-type", "application/json")], Body::Json(&page)));
//! assert_eq!(items.map(|i| i.len()), Some(2));
//! let Step::Fetch(call) = walk.poll(now) else { panic!() };
//! assert_eq!(call.url, "https://api.test/items?cursor=b");
//! assert_eq!(walk.resume_point().unwrap().token(), "?cursor=b");
//! let last = json!({"items": [3], "next": null});
//! walk.accept(PageReply::new(200, &[("x", "y")], Body::Json(&last)));
//! assert!(matches!(walk.poll(now), Step::Done));
//! ```

use core::time::Duration;

use serde_json::Value;
use thiserror::Error;

use super::allowance::{Allowance, WalkPolicy};
use super::next::{PageRequest, PaginateError, Paginator};
use super::resume::Resume;
use super::style::PageStyle;
use super::url::{origin, resolve, with_query, UrlError};
use crate::engine::Failure;
use crate::headers::Headers;
use crate::time::Instant;
use crate::why::Why;

/// What the driver does next.
#[derive(Clone, Debug, PartialEq)]
#[must_use = "a step says what the driver must do next"]
pub enum Step {
    /// Make this page call, then [`Walk::accept`] its response or [`Walk::failed`] its failure.
    Fetch(PageCall),
    /// Sleep until then, then poll again: the page is fetched again once the host may be
    /// called (its breaker open, a server's hold) or after the walk's backoff.
    Wait {
        /// When to poll again.
        until: Instant,
        /// Why the page's call failed ([`Why::BreakerOpen`], [`Why::BudgetExhausted`], ...).
        why: Why,
    },
    /// The walk stopped before its end; served once, then [`Step::Done`].
    Fail(WalkError),
    /// The collection is exhausted.
    Done,
}

/// One page call: a GET of `url`, with the walk's limits in its call spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageCall {
    /// The absolute URL to GET.
    pub url: String,
    /// The attempts this page may take (the call spec's `max_attempts`).
    pub max_attempts: u32,
    /// The time left of the walk's deadline (the call spec's `deadline`); `None`: the
    /// configured per-call deadline.
    pub deadline: Option<Duration>,
}

impl PageCall {
    /// `scheme://authority` of the page, the engine's host key.
    pub fn host(&self) -> String {
        origin(&self.url).unwrap_or_default()
    }
}

/// A page body as the driver has it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Body<'a> {
    /// The raw bytes (the walk decodes them as JSON).
    Bytes(&'a [u8]),
    /// Already decoded.
    Json(&'a Value),
}

/// A response to a page call.
#[derive(Clone, Copy)]
pub struct PageReply<'a> {
    /// The URL that answered, after redirects (`None`: the one asked for). `Link` targets are
    /// resolved against it.
    pub url: Option<&'a str>,
    /// The status.
    pub status: u16,
    /// Its headers (`Link`, `X-Total-Count`).
    pub headers: &'a dyn Headers,
    /// Its body.
    pub body: Body<'a>,
    /// Attempts the call took (1 when unknown).
    pub attempts: u32,
}

impl<'a> PageReply<'a> {
    /// A reply from the URL asked for, after one attempt.
    pub fn new(status: u16, headers: &'a dyn Headers, body: Body<'a>) -> Self {
        PageReply {
            url: None,
            status,
            headers,
            body,
            attempts: 1,
        }
    }

    /// Sets the URL that answered.
    pub fn url(mut self, url: &'a str) -> Self {
        self.url = Some(url);
        self
    }

    /// Sets the attempts the call took.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }
}

/// When fetching a failed page again may work.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Again {
    /// Not by waiting: the request is refused for what it is (a 404, an unsafe repeat), or the
    /// page already had every attempt the walk could give it.
    Never,
    /// Once the host may be called again (an open breaker's end, a server's hold).
    At {
        /// When.
        at: Instant,
        /// Why the call failed.
        why: Why,
    },
    /// Later, when the walk chooses: the page's call ended on a limit of its own (the host's
    /// retry budget, the call's deadline) while the host was still failing.
    Later {
        /// Why the call failed.
        why: Why,
    },
}

/// What a failed page call allows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PageFailure {
    /// Attempts the call made.
    pub attempts: u32,
    /// When fetching the page again may work.
    pub again: Again,
}

impl PageFailure {
    /// The one rule, from the engine's reason for a failed call: whether it is retryable,
    /// when the host may be called again, and how many attempts it made. Drivers whose error
    /// type keeps these facts (rather than the [`Failure`]) call this.
    pub fn from_parts(why: Why, retryable: bool, retry_at: Option<Instant>, attempts: u32) -> Self {
        let again = match (retryable, retry_at, why) {
            (false, _, _) => Again::Never,
            (true, Some(at), why) => Again::At { at, why },
            (
                true,
                None,
                why @ (Why::BudgetExhausted | Why::DeadlineExceeded | Why::DeadlineWouldPass),
            ) => Again::Later { why },
            (true, None, _) => Again::Never,
        };
        PageFailure { attempts, again }
    }
}

impl From<&Failure> for PageFailure {
    fn from(f: &Failure) -> Self {
        PageFailure::from_parts(f.why, f.is_retryable(), f.retry_at, f.attempts)
    }
}

/// Why a walk stopped.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Stop {
    /// The page could not be followed (a repeated cursor, items not an array, too many pages).
    #[error(transparent)]
    Page(#[from] PaginateError),
    /// The page answered a status other than 2xx.
    #[error("the page answered {status}")]
    Status {
        /// The status.
        status: u16,
    },
    /// The page body is not JSON.
    #[error("the page is not JSON: {message}")]
    NotJson {
        /// What the parser said.
        message: String,
    },
    /// The page call failed for good (the driver holds its error).
    #[error("the page call failed after {attempts} attempt(s)")]
    Call {
        /// Attempts it made.
        attempts: u32,
    },
    /// The walk's deadline passed before the next page.
    #[error("the walk's deadline passed")]
    Deadline,
    /// The next link names nothing that can be requested (`mailto:x`, `//`).
    #[error("the next link `{target}` cannot be followed: {error}")]
    BadLink {
        /// The link as the server sent it.
        target: String,
        /// What is wrong with it.
        error: UrlError,
    },
}

/// A walk that stopped, with where to go on.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{stop} (after {items} item(s) in {pages} page(s))")]
pub struct WalkError {
    /// Why.
    pub stop: Stop,
    /// The next request, when there is one to make (none after a repeated cursor).
    pub resume: Option<Resume>,
    /// Pages taken in before it stopped.
    pub pages: u64,
    /// Items taken in before it stopped.
    pub items: u64,
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Ready,
    Waiting(Instant, Why),
    Failed(WalkError),
    Finished,
}

/// A walk over a paginated collection (see the module docs).
#[derive(Clone, Debug)]
pub struct Walk {
    pages: Paginator,
    first: String,
    last: String,
    next: Option<String>,
    state: State,
    allowance: Allowance,
    max_wait: Duration,
    /// Time waited for the host since the last page arrived.
    waited: Duration,
    /// Times the page now due was fetched again.
    refetches: u32,
}

impl Walk {
    /// A walk from the first page at `first` (an absolute URL). `items` says where a page's
    /// items are (a JSON pointer; `None`: the body is the array).
    pub fn new(first: &str, style: PageStyle, items: Option<String>) -> Result<Self, UrlError> {
        let first = with_query(first, &[])?;
        let pages = Paginator::new(style, items);
        Ok(Walk::at(first, pages))
    }

    /// A walk over `first` that starts at a resume point's token (see [`Resume`]) instead of
    /// the first page.
    pub fn resume(
        first: &str,
        style: PageStyle,
        items: Option<String>,
        token: &str,
    ) -> Result<Self, UrlError> {
        let first = with_query(first, &[])?;
        let (base, request) = Resume::request(token, &first, &style)?;
        let mut pages = Paginator::new(style, items);
        pages.resume_at(request);
        Ok(Walk::at(base, pages))
    }

    fn at(first: String, pages: Paginator) -> Self {
        let mut walk = Walk {
            pages,
            last: first.clone(),
            first,
            next: None,
            state: State::Ready,
            allowance: Allowance::new(WalkPolicy::default()),
            max_wait: Duration::from_secs(60),
            waited: Duration::ZERO,
            refetches: 0,
        };
        walk.next = walk.pages.next_request().and_then(|r| walk.url_of(&r).ok());
        walk
    }

    /// Sets the safety bound on pages (default one million).
    pub fn max_pages(mut self, max: u64) -> Self {
        self.pages = self.pages.max_pages(max);
        self
    }

    /// Sets the walk's retry allowance and deadline (default [`WalkPolicy::default`]).
    pub fn policy(mut self, policy: WalkPolicy) -> Self {
        self.max_wait = Duration::from_millis(policy.max_wait_ms);
        self.allowance = Allowance::new(policy);
        self
    }

    /// What to do next at `now`. Until an input arrives (`accept`, `failed`) it says the same.
    pub fn poll(&mut self, now: Instant) -> Step {
        match core::mem::replace(&mut self.state, State::Ready) {
            State::Failed(e) => {
                self.state = State::Finished;
                return Step::Fail(e);
            }
            State::Finished => {
                self.state = State::Finished;
                return Step::Done;
            }
            State::Waiting(until, why) if now < until => {
                self.state = State::Waiting(until, why);
                return Step::Wait { until, why };
            }
            State::Waiting(..) | State::Ready => {}
        }
        let Some(url) = self.next.clone() else {
            self.state = State::Finished;
            return Step::Done;
        };
        match self.allowance.limits(now) {
            Some((max_attempts, deadline)) => Step::Fetch(PageCall {
                url,
                max_attempts,
                deadline,
            }),
            None => {
                self.state = State::Finished;
                Step::Fail(self.error(Stop::Deadline))
            }
        }
    }

    /// Takes in the response to the last [`Step::Fetch`]: returns the page's items, or `None`
    /// when the page cannot be taken in (a status other than 2xx, a body that is not JSON or
    /// has no items where they should be; the walk has nothing to fetch). An error, about this
    /// page or about following it, is served by the next [`Walk::poll`], after the items.
    pub fn accept(&mut self, reply: PageReply<'_>) -> Option<Vec<Value>> {
        let current = self.next.clone()?;
        if !(200..300).contains(&reply.status) {
            self.allowance.page_failed(reply.attempts);
            self.stop(Stop::Status {
                status: reply.status,
            });
            return None;
        }
        let decoded;
        let body = match reply.body {
            Body::Json(v) => v,
            Body::Bytes(bytes) => match serde_json::from_slice::<Value>(bytes) {
                Ok(v) => {
                    decoded = v;
                    &decoded
                }
                Err(e) => {
                    self.allowance.page_failed(reply.attempts);
                    self.stop(Stop::NotJson {
                        message: e.to_string(),
                    });
                    return None;
                }
            },
        };
        match self.pages.accept(reply.headers, body) {
            Err(e) => {
                self.stop(Stop::Page(e));
                None
            }
            Ok((items, pending)) => {
                self.allowance.page_arrived(reply.attempts);
                self.waited = Duration::ZERO;
                self.refetches = 0;
                self.last = reply
                    .url
                    .filter(|u| origin(u).is_ok())
                    .map_or(current, str::to_string);
                let next = self.pages.next_request();
                self.next = None;
                match (pending, next.map(|r| self.url_of(&r))) {
                    (Some(e), _) => self.stop(Stop::Page(e)),
                    (None, Some(Err(stop))) => self.stop(stop),
                    (None, Some(Ok(url))) => self.next = Some(url),
                    (None, None) => {}
                }
                Some(items)
            }
        }
    }

    /// Takes in the failure of the last [`Step::Fetch`]'s call. When waiting may cure it
    /// ([`Again::At`] the host's time, or [`Again::Later`] after the walk's own backoff: 1 s,
    /// doubling for each refetch of the same page), the walk has a retry left, and the wait
    /// keeps the time waited for this page within the policy's `max_wait_ms` and the walk's
    /// deadline, the next poll waits and fetches the page again; otherwise it serves
    /// [`Stop::Call`] with this page as the resume point.
    pub fn failed(&mut self, failure: PageFailure, now: Instant) {
        self.allowance.page_failed(failure.attempts);
        let at = match failure.again {
            Again::At { at, why } => Some((at.max(now), why)),
            Again::Later { why } => {
                Some((now.saturating_add(refetch_backoff(self.refetches)), why))
            }
            Again::Never => None,
        };
        let wait = at.map(|(at, why)| (at, why, at.saturating_duration_since(now)));
        match wait {
            Some((at, why, wait))
                if self.waited.saturating_add(wait) <= self.max_wait
                    && self.allowance.take_refetch(at) =>
            {
                self.waited = self.waited.saturating_add(wait);
                self.refetches = self.refetches.saturating_add(1);
                self.state = State::Waiting(at, why);
            }
            _ => self.stop(Stop::Call {
                attempts: failure.attempts,
            }),
        }
    }

    /// Where the walk goes on: the next request not yet taken in, or `None` when the
    /// collection is exhausted (or the next page is unknown, after a repeated cursor).
    pub fn resume_point(&self) -> Option<Resume> {
        self.next
            .as_deref()
            .map(|next| Resume::new(&self.first, next, self.pages.style()))
    }

    /// Pages and items taken in so far.
    pub fn progress(&self) -> (u64, u64) {
        self.pages.progress()
    }

    /// Retries the walk has left.
    pub fn retries_left(&self) -> u32 {
        self.allowance.retries_left()
    }

    /// Whether the walk has ended (its last step, `Done` or `Fail`, was served).
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Ends the walk now (the caller stopped early).
    pub fn finish(&mut self) {
        self.state = State::Finished;
    }

    fn stop(&mut self, stop: Stop) {
        self.state = State::Failed(self.error(stop));
    }

    fn error(&self, stop: Stop) -> WalkError {
        let (pages, items) = self.pages.progress();
        WalkError {
            stop,
            resume: self.resume_point(),
            pages,
            items,
        }
    }

    fn url_of(&self, request: &PageRequest) -> Result<String, Stop> {
        match request {
            PageRequest::Url(target) => {
                resolve(&self.last, target).map_err(|error| Stop::BadLink {
                    target: target.clone(),
                    error,
                })
            }
            // `first` is absolute, so this cannot fail.
            PageRequest::Query(params) => {
                Ok(with_query(&self.first, params).unwrap_or_else(|_| self.first.clone()))
            }
        }
    }
}

/// The walk's wait before fetching a page again after its call ended on a limit of its own:
/// 1 s, doubling per refetch of the same page (the policy's `max_wait_ms` bounds the sum).
fn refetch_backoff(refetches: u32) -> Duration {
    Duration::from_secs(1u64 << refetches.min(16))
}
