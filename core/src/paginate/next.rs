//! Which page to ask for next, and when to stop: the [`Paginator`], a small state machine over
//! what the last page said (its headers and body).

use serde_json::Value;
use thiserror::Error;

use super::style::PageStyle;
use crate::headers::{find_rel, Headers};

/// What to request next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageRequest {
    /// This URL (from a `Link` header: resolve it against the last request's URL).
    Url(String),
    /// The first request's URL with these query parameters set (replacing same-named ones).
    Query(Vec<(String, String)>),
}

/// A page that cannot be followed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PaginateError {
    /// The same cursor or next link came back twice: following it would loop.
    #[error(
        "the server sent the same cursor or next link twice ({0}); stopping instead of looping"
    )]
    Repeated(String),
    /// The items are not a JSON array where they were expected.
    #[error("the page's items are not a JSON array at `{pointer}`")]
    ItemsNotArray {
        /// Where they were looked for (empty: the top level).
        pointer: String,
    },
    /// The cursor is neither a string, a number, nor null.
    #[error("the cursor at `{pointer}` is not a string or number")]
    BadCursor {
        /// Where it was.
        pointer: String,
    },
    /// More pages than the safety bound.
    #[error("more than {max} pages; raise the bound if the collection really is that large")]
    TooManyPages {
        /// The bound.
        max: u64,
    },
}

/// Pagination state.
#[derive(Clone, Debug)]
pub struct Paginator {
    style: PageStyle,
    items_pointer: Option<String>,
    next: Option<PageRequest>,
    /// Every cursor and link followed: a walk may be a million pages long, so a tree (a
    /// sorted vector's insert would move half of them each time).
    seen: Seen,
    pages: u64,
    items: u64,
    max_pages: u64,
}

impl Paginator {
    /// Starts before the first page. `items_pointer` says where the items are in a page body
    /// (`None`: the body is the array).
    pub fn new(style: PageStyle, items_pointer: Option<String>) -> Self {
        let first = match &style {
            PageStyle::Link | PageStyle::Cursor { .. } => PageRequest::Query(vec![]),
            PageStyle::Offset {
                limit,
                offset_param,
                limit_param,
            } => PageRequest::Query(vec![
                (offset_param.clone(), "0".into()),
                (limit_param.clone(), limit.to_string()),
            ]),
            PageStyle::Page {
                per_page,
                page_param,
                per_page_param,
            } => PageRequest::Query(vec![
                (page_param.clone(), "1".into()),
                (per_page_param.clone(), per_page.to_string()),
            ]),
        };
        Paginator {
            style,
            items_pointer,
            next: Some(first),
            seen: Seen::default(),
            pages: 0,
            items: 0,
            max_pages: 1_000_000,
        }
    }

    /// Sets the safety bound on pages (default one million).
    pub fn max_pages(mut self, max: u64) -> Self {
        self.max_pages = max.max(1);
        self
    }

    /// Starts at `request` instead of the first page: a walk resumed where an earlier one
    /// stopped. Offset and page styles read their position back from its parameters (so
    /// [`Paginator::progress`] counts the pages or items before it as seen); a cursor or link
    /// is remembered, so a server that sends it again is still caught.
    pub fn resume_at(&mut self, request: PageRequest) {
        let number = |params: &[(String, String)], name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        };
        match (&self.style, &request) {
            (PageStyle::Offset { offset_param, .. }, PageRequest::Query(params)) => {
                self.items = number(params, offset_param).unwrap_or(0);
            }
            (PageStyle::Page { page_param, .. }, PageRequest::Query(params)) => {
                self.pages = number(params, page_param).unwrap_or(1).saturating_sub(1);
            }
            (PageStyle::Cursor { param, .. }, PageRequest::Query(params)) => {
                if let Some((_, cursor)) = params.iter().find(|(k, _)| k == param) {
                    self.seen.insert(cursor.clone());
                }
            }
            (PageStyle::Link, PageRequest::Url(url)) => {
                self.seen.insert(url.clone());
            }
            _ => {}
        }
        self.next = Some(request);
    }

    /// The style this paginator follows.
    pub fn style(&self) -> &PageStyle {
        &self.style
    }

    /// The next request, or `None` when the collection is exhausted.
    pub fn next_request(&self) -> Option<PageRequest> {
        self.next.clone()
    }

    /// Pages and items seen so far.
    pub fn progress(&self) -> (u64, u64) {
        (self.pages, self.items)
    }

    /// The items of a page body.
    pub fn items<'a>(&self, body: &'a Value) -> Result<&'a [Value], PaginateError> {
        let found = match &self.items_pointer {
            Some(p) => pointer(body, p),
            None => Some(body),
        };
        found
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .ok_or_else(|| PaginateError::ItemsNotArray {
                pointer: self.items_pointer.clone().unwrap_or_default(),
            })
    }

    /// Takes in a page: its items, and whether working out the next request failed. The page's
    /// items count either way (a page whose next cursor repeats is still a page, and its items
    /// come before the error); `Err` only when the page has no items to read.
    ///
    /// ```
    /// use resile_core::headers::NoHeaders;
    /// use resile_core::paginate::{PageStyle, PaginateError, Paginator};
    /// use serde_json::json;
    ///
    /// let mut p = Paginator::new(PageStyle::cursor("/next", "c"), Some("/items".into()));
    /// let (items, next) = p.accept(&NoHeaders, &json!({"items": [1], "next": "a"})).unwrap();
    /// assert_eq!((items.len(), next), (1, None));
    /// let (items, next) = p.accept(&NoHeaders, &json!({"items": [2], "next": "a"})).unwrap();
    /// assert_eq!(items, [json!(2)]);
    /// assert_eq!(next, Some(PaginateError::Repeated("a".into())));
    /// ```
    pub fn accept(
        &mut self,
        headers: &dyn Headers,
        body: &Value,
    ) -> Result<(Vec<Value>, Option<PaginateError>), PaginateError> {
        let items = self.items(body)?.to_vec();
        Ok((items, self.advance(headers, body).err()))
    }

    /// Takes in a page (its headers and body) and works out the next request.
    pub fn advance(&mut self, headers: &dyn Headers, body: &Value) -> Result<(), PaginateError> {
        let count = self.items(body)?.len() as u64;
        self.pages += 1;
        self.items += count;
        if self.pages >= self.max_pages {
            self.next = None;
            return Err(PaginateError::TooManyPages {
                max: self.max_pages,
            });
        }
        if count == 0 {
            self.next = None;
            return Ok(());
        }
        // Any error below leaves the paginator finished.
        self.next = None;
        let seen = &mut self.seen;
        let next = match &self.style {
            PageStyle::Link => match headers.get("link").and_then(|v| find_rel(v, "next")) {
                Some(url) => {
                    remember(seen, url)?;
                    Some(PageRequest::Url(url.to_string()))
                }
                None => None,
            },
            PageStyle::Cursor { pointer, param } => {
                let cursor = match self::pointer(body, pointer) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.is_empty() => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(_) => {
                        return Err(PaginateError::BadCursor {
                            pointer: pointer.clone(),
                        })
                    }
                };
                match cursor {
                    Some(c) => {
                        remember(seen, &c)?;
                        Some(PageRequest::Query(vec![(param.clone(), c)]))
                    }
                    None => None,
                }
            }
            PageStyle::Offset {
                limit,
                offset_param,
                limit_param,
            } => (count >= *limit).then(|| {
                PageRequest::Query(vec![
                    (offset_param.clone(), self.items.to_string()),
                    (limit_param.clone(), limit.to_string()),
                ])
            }),
            PageStyle::Page {
                per_page,
                page_param,
                per_page_param,
            } => {
                let total = headers
                    .get("x-total-count")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let more = count >= *per_page
                    && total.is_none_or(|t| self.pages.saturating_mul(*per_page) < t);
                more.then(|| {
                    PageRequest::Query(vec![
                        (page_param.clone(), (self.pages + 1).to_string()),
                        (per_page_param.clone(), per_page.to_string()),
                    ])
                })
            }
        };
        self.next = next;
        Ok(())
    }
}

/// `value.pointer(at)` (RFC 6901: `/`-separated tokens, `~1` for `/` and `~0` for `~`), the
/// same answers without serde_json's two `str::replace` passes over every token: in the browser
/// module this is the only `replace` there is.
fn pointer<'a>(mut value: &'a Value, at: &str) -> Option<&'a Value> {
    if at.is_empty() {
        return Some(value);
    }
    for raw in at.strip_prefix('/')?.split('/') {
        let mut token = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            match (c, chars.clone().next()) {
                ('~', Some('1')) => token.push('/'),
                ('~', Some('0')) => token.push('~'),
                _ => {
                    token.push(c);
                    continue;
                }
            }
            chars.next();
        }
        value = match value {
            Value::Object(map) => map.get(&token)?,
            // An index as serde_json reads one: no sign, no leading zero.
            Value::Array(list)
                if !token.starts_with('+') && (token == "0" || !token.starts_with('0')) =>
            {
                list.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(value)
}

fn remember(seen: &mut Seen, token: &str) -> Result<(), PaginateError> {
    if seen.insert(token.to_string()) {
        Ok(())
    } else {
        Err(PaginateError::Repeated(token.to_string()))
    }
}

/// A set of strings in a tree. In the browser build the tree is serde_json's own map of a
/// JSON object's keys (`BTreeMap<String, Value>`, every value `null`), which the module has
/// anyway: a `BTreeSet<String>` is a second copy of the tree's code (≈ 4.5 KB). Natively it is
/// the set, which holds 32 bytes less per cursor.
#[derive(Clone, Default)]
struct Seen(
    #[cfg(target_arch = "wasm32")] serde_json::Map<String, Value>,
    #[cfg(not(target_arch = "wasm32"))] std::collections::BTreeSet<String>,
);

impl Seen {
    /// Adds `token`; false if it was there already.
    fn insert(&mut self, token: String) -> bool {
        #[cfg(target_arch = "wasm32")]
        return self.0.insert(token, Value::Null).is_none();
        #[cfg(not(target_arch = "wasm32"))]
        return self.0.insert(token);
    }
}

impl core::fmt::Debug for Seen {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        #[cfg(target_arch = "wasm32")]
        return f.debug_set().entries(self.0.keys()).finish();
        #[cfg(not(target_arch = "wasm32"))]
        return self.0.fmt(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::NoHeaders;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn link_style_follows_next_and_stops() {
        let mut p = Paginator::new(PageStyle::Link, None);
        let h = [(
            "Link",
            r#"<https://a.test/items?after=2>; rel="next", <https://a.test/items>; rel="first""#,
        )];
        p.advance(&h, &json!([1, 2])).unwrap();
        assert_eq!(
            p.next_request(),
            Some(PageRequest::Url("https://a.test/items?after=2".into()))
        );
        p.advance(&NoHeaders, &json!([3])).unwrap();
        assert_eq!(p.next_request(), None);
        assert_eq!(p.progress(), (2, 3));
    }

    #[test]
    fn repeated_link_or_cursor_is_an_error() {
        let mut p = Paginator::new(PageStyle::Link, None);
        let h = [("link", "<https://a.test/p2>; rel=next")];
        p.advance(&h, &json!([1])).unwrap();
        assert!(matches!(
            p.advance(&h, &json!([2])),
            Err(PaginateError::Repeated(_))
        ));
        assert_eq!(p.next_request(), None);

        let mut p = Paginator::new(PageStyle::cursor("/next", "c"), Some("/items".into()));
        p.advance(&NoHeaders, &json!({"items":[1], "next": "x"}))
            .unwrap();
        let again = p.advance(&NoHeaders, &json!({"items":[2], "next": "x"}));
        assert_eq!(again, Err(PaginateError::Repeated("x".into())));
    }

    #[test]
    fn offset_and_page_styles() {
        let mut p = Paginator::new(PageStyle::offset(2), None);
        assert_eq!(
            p.next_request(),
            Some(PageRequest::Query(vec![
                ("offset".into(), "0".into()),
                ("limit".into(), "2".into())
            ]))
        );
        p.advance(&NoHeaders, &json!([1, 2])).unwrap();
        assert_eq!(
            p.next_request(),
            Some(PageRequest::Query(vec![
                ("offset".into(), "2".into()),
                ("limit".into(), "2".into())
            ]))
        );
        p.advance(&NoHeaders, &json!([3])).unwrap();
        assert_eq!(p.next_request(), None, "a short page is the last");

        let mut p = Paginator::new(PageStyle::page(2), None);
        let total = [("X-Total-Count", "4")];
        p.advance(&total, &json!([1, 2])).unwrap();
        assert_eq!(
            p.next_request(),
            Some(PageRequest::Query(vec![
                ("page".into(), "2".into()),
                ("per_page".into(), "2".into())
            ]))
        );
        p.advance(&total, &json!([3, 4])).unwrap();
        assert_eq!(p.next_request(), None, "X-Total-Count reached");
    }

    #[test]
    fn bad_bodies_are_typed_errors() {
        let mut p = Paginator::new(PageStyle::cursor("/next", "c"), Some("/items".into()));
        assert!(matches!(
            p.advance(&NoHeaders, &json!({"data": []})),
            Err(PaginateError::ItemsNotArray { .. })
        ));
        assert!(matches!(
            p.advance(&NoHeaders, &json!({"items": [1], "next": {}})),
            Err(PaginateError::BadCursor { .. })
        ));
        let mut p = Paginator::new(PageStyle::offset(1), None).max_pages(3);
        p.advance(&NoHeaders, &json!([1])).unwrap();
        p.advance(&NoHeaders, &json!([1])).unwrap();
        assert_eq!(
            p.advance(&NoHeaders, &json!([1])),
            Err(PaginateError::TooManyPages { max: 3 })
        );
    }

    #[test]
    fn json_pointers_as_serde_json_reads_them() {
        let doc = json!({
            "a": {"b": [10, {"c": 1}]},
            "a/b": 2,
            "m~n": 3,
            "~1": 4,
            "": {"": 5},
            "0": 6,
            "~01": 7,
            "~": 8,
        });
        for at in [
            "",
            "/",
            "/a",
            "/a/b",
            "/a/b/0",
            "/a/b/1/c",
            "/a/b/2",
            "/a/b/01",
            "/a/b/+1",
            "/a/b/-1",
            "/a~1b",
            "/m~0n",
            "/~01",
            "/~001",
            "/~~1",
            "/~",
            "/~2",
            "//",
            "/0",
            "a",
            "/a/b/1/c/d",
            "/a/b/00",
            "/a/b/ 1",
            "/a/b/18446744073709551616",
        ] {
            assert_eq!(pointer(&doc, at), doc.pointer(at), "{at:?}");
        }
    }
}
