//! Paginated collections: which page to ask for next, when to stop, and the whole walk.
//!
//! | module | decides |
//! |---|---|
//! | [`style`] | how a collection is paged ([`PageStyle`]) |
//! | `next` | the next request from the last page ([`Paginator`]), repeated cursors |
//! | [`walk`] | the walk every driver runs ([`Walk`]): next call, accept a page, pending error, resume point |
//! | `allowance` | the walk's shared retries and deadline ([`Allowance`], [`WalkPolicy`]) |
//! | `resume` | where a stopped walk goes on ([`Resume`]) |
//! | [`url`] | resolving `Link` targets and setting query parameters, the same on every target |
//!
//! Four styles, each a small state machine over what the last page said:
//!
//! | style | next request | stops when |
//! |---|---|---|
//! | [`PageStyle::Link`] | the `Link: <…>; rel="next"` target (RFC 8288) | no `next` link, or an empty page |
//! | [`PageStyle::Cursor`] | the cursor found at a JSON pointer, sent as a query parameter | the cursor is null, missing or empty, or an empty page |
//! | [`PageStyle::Offset`] | `offset += items seen`, `limit` fixed | a short or empty page |
//! | [`PageStyle::Page`] | `page += 1`, `per_page` fixed | an empty or short page, or `X-Total-Count` reached |
//!
//! A cursor or next link that comes back a second time is an error ([`PaginateError::Repeated`]),
//! not an endless loop. Offset and page styles over a collection that changes while paging can
//! skip or repeat items; that is the style's nature (the cursor and link styles, keyed by the
//! server, do not), so prefer them where the server offers them.
//!
//! ```
//! use resile_core::paginate::{PageRequest, PageStyle, Paginator};
//! use resile_core::headers::NoHeaders;
//! use serde_json::json;
//!
//! let mut p = Paginator::new(PageStyle::cursor("/next_cursor", "cursor"), Some("/items".into()));
//! assert_eq!(p.next_request(), Some(PageRequest::Query(vec![])));
//! let page = json!({"items": [1, 2], "next_cursor": "abc"});
//! assert_eq!(p.items(&page).unwrap().len(), 2);
//! p.advance(&NoHeaders, &page).unwrap();
//! assert_eq!(p.next_request(), Some(PageRequest::Query(vec![("cursor".into(), "abc".into())])));
//! p.advance(&NoHeaders, &json!({"items": [3], "next_cursor": null})).unwrap();
//! assert_eq!(p.next_request(), None);
//! ```

mod allowance;
mod next;
mod resume;
pub mod style;
pub mod url;
pub mod walk;
#[cfg(test)]
mod walk_tests;

pub use allowance::{Allowance, WalkPolicy};
pub use next::{PageRequest, PaginateError, Paginator};
pub use resume::Resume;
pub use style::PageStyle;
pub use walk::{Again, Body, PageCall, PageFailure, PageReply, Step, Stop, Walk, WalkError};
