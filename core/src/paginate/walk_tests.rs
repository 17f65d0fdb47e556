//! The walk, step by step: what it asks for, what it yields, where it would resume.

use core::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::time::Instant;
use crate::Why;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// One page as a server answers it.
struct Served {
    headers: Vec<(String, String)>,
    body: Value,
}

fn served(headers: &[(&str, &str)], body: Value) -> Served {
    Served {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body,
    }
}

/// Walks `pages` (answered in order, from the URL asked for) and returns, per page, the URL
/// fetched and the resume token before it, then the items and how the walk ended.
fn walk_through(mut walk: Walk, pages: &[Served]) -> (Vec<(String, String)>, Vec<Value>, Step) {
    let now = Instant::ZERO;
    let (mut asked, mut items) = (Vec::new(), Vec::new());
    let mut pages = pages.iter();
    loop {
        match walk.poll(now) {
            Step::Fetch(call) => {
                let token = walk
                    .resume_point()
                    .map(|r| r.token().to_string())
                    .unwrap_or_default();
                assert_eq!(
                    walk.resume_point().map(|r| r.url().to_string()),
                    Some(call.url.clone())
                );
                asked.push((call.url.clone(), token));
                let Some(page) = pages.next() else {
                    panic!("asked for {} past the last page", call.url)
                };
                let reply =
                    PageReply::new(200, &page.headers, Body::Json(&page.body)).url(&call.url);
                items.extend(walk.accept(reply).expect("a readable page"));
            }
            end @ (Step::Done | Step::Fail(_)) => return (asked, items, end),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn ids(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .map(|v| {
            v.get("id")
                .and_then(Value::as_u64)
                .or(v.as_u64())
                .unwrap_or(0)
        })
        .collect()
}

#[test]
fn every_style_asks_for_the_right_pages_and_knows_where_it_would_resume() {
    let first = "https://api.test/items?sort=id";
    let link = |to: &str| format!("<{to}>; rel=\"next\"");
    let l2 = link("/items?sort=id&after=2");
    let l4 = link("https://api.test/items?sort=id&after=4");
    // (style, items pointer, pages served, [(URL asked, resume token)])
    type Case<'a> = (
        PageStyle,
        Option<&'a str>,
        Vec<Served>,
        Vec<(&'a str, &'a str)>,
    );
    let table: Vec<Case<'_>> = vec![
        (
            PageStyle::Link,
            None,
            vec![
                served(&[("link", &l2)], json!([1, 2])),
                served(&[("Link", &l4)], json!([3, 4])),
                served(&[], json!([5])),
            ],
            vec![
                ("https://api.test/items?sort=id", "/items?sort=id"),
                (
                    "https://api.test/items?sort=id&after=2",
                    "/items?sort=id&after=2",
                ),
                (
                    "https://api.test/items?sort=id&after=4",
                    "/items?sort=id&after=4",
                ),
            ],
        ),
        (
            PageStyle::cursor("/meta/next", "cursor"),
            Some("/data"),
            vec![
                served(&[], json!({"data": [1, 2], "meta": {"next": "c/2 +"}})),
                served(&[], json!({"data": [3, 4], "meta": {"next": 4}})),
                served(&[], json!({"data": [5], "meta": {"next": ""}})),
            ],
            vec![
                ("https://api.test/items?sort=id", "?"),
                (
                    "https://api.test/items?sort=id&cursor=c%2F2+%2B",
                    "?cursor=c%2F2+%2B",
                ),
                ("https://api.test/items?sort=id&cursor=4", "?cursor=4"),
            ],
        ),
        (
            PageStyle::offset(2),
            None,
            vec![
                served(&[], json!([1, 2])),
                served(&[], json!([3, 4])),
                served(&[], json!([5])),
            ],
            vec![
                (
                    "https://api.test/items?sort=id&offset=0&limit=2",
                    "?offset=0&limit=2",
                ),
                (
                    "https://api.test/items?sort=id&offset=2&limit=2",
                    "?offset=2&limit=2",
                ),
                (
                    "https://api.test/items?sort=id&offset=4&limit=2",
                    "?offset=4&limit=2",
                ),
            ],
        ),
        (
            PageStyle::page(2),
            None,
            vec![
                served(&[("x-total-count", "5")], json!([1, 2])),
                served(&[("x-total-count", "5")], json!([3, 4])),
                served(&[("x-total-count", "5")], json!([5])),
            ],
            vec![
                (
                    "https://api.test/items?sort=id&page=1&per_page=2",
                    "?page=1&per_page=2",
                ),
                (
                    "https://api.test/items?sort=id&page=2&per_page=2",
                    "?page=2&per_page=2",
                ),
                (
                    "https://api.test/items?sort=id&page=3&per_page=2",
                    "?page=3&per_page=2",
                ),
            ],
        ),
    ];
    for (style, pointer, pages, want) in table {
        let name = format!("{style:?}");
        let walk = Walk::new(first, style, pointer.map(str::to_string)).unwrap();
        let (asked, items, end) = walk_through(walk, &pages);
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(u, t)| (u.to_string(), t.to_string()))
            .collect();
        assert_eq!(asked, want, "{name}");
        assert_eq!(ids(&items), [1, 2, 3, 4, 5], "{name}");
        assert_eq!(end, Step::Done, "{name}");
    }
}

#[test]
fn resuming_from_a_token_asks_for_the_same_page_and_goes_on() {
    let first = "https://api.test/items?sort=id";
    // (style, pointer, token, the page the resumed walk asks for, a last page)
    let table: Vec<(PageStyle, Option<&str>, &str, &str, Served)> = vec![
        (
            PageStyle::Link,
            None,
            "/items?sort=id&after=4",
            "https://api.test/items?sort=id&after=4",
            served(&[], json!([5])),
        ),
        (
            PageStyle::cursor("/next", "cursor"),
            Some("/items"),
            "?cursor=c%2F4",
            "https://api.test/items?sort=id&cursor=c%2F4",
            served(&[], json!({"items": [5], "next": null})),
        ),
        (
            PageStyle::offset(2),
            None,
            "?offset=4&limit=2",
            "https://api.test/items?sort=id&offset=4&limit=2",
            served(&[], json!([5])),
        ),
        (
            PageStyle::page(2),
            None,
            // A full URL works too: its parameters are read back.
            "https://api.test/items?sort=id&page=3&per_page=2",
            "https://api.test/items?sort=id&page=3&per_page=2",
            served(&[("x-total-count", "5")], json!([5])),
        ),
    ];
    for (style, pointer, token, want, last) in table {
        let name = format!("{style:?}");
        let walk = Walk::resume(first, style, pointer.map(str::to_string), token).unwrap();
        let (asked, items, end) = walk_through(walk, &[last]);
        assert_eq!(asked.first().map(|(u, _)| u.as_str()), Some(want), "{name}");
        assert_eq!(asked.len(), 1, "{name}: the page after it is the last");
        assert_eq!(ids(&items), [5], "{name}");
        assert_eq!(end, Step::Done, "{name}");
    }
}

#[test]
fn a_resumed_offset_walk_counts_from_where_it_resumed() {
    let walk = Walk::resume(
        "https://api.test/items",
        PageStyle::offset(2),
        None,
        "?offset=4&limit=2",
    )
    .unwrap();
    let pages = [served(&[], json!([5, 6])), served(&[], json!([7]))];
    let (asked, _, _) = walk_through(walk, &pages);
    assert_eq!(
        asked[1].0, "https://api.test/items?offset=6&limit=2",
        "the next offset follows the resumed one"
    );
}

#[test]
fn a_repeated_cursor_is_served_after_the_items_of_its_page_without_a_resume_point() {
    let style = PageStyle::cursor("/next", "c");
    let mut walk = Walk::new("https://api.test/i", style, Some("/items".into())).unwrap();
    let now = Instant::ZERO;
    let pages = [
        json!({"items": [1], "next": "x"}),
        json!({"items": [2], "next": "x"}),
    ];
    for (i, page) in pages.iter().enumerate() {
        assert!(matches!(walk.poll(now), Step::Fetch(_)), "page {i}");
        let items = walk.accept(PageReply::new(200, &[("a", "b")], Body::Json(page)));
        assert_eq!(
            items,
            Some(vec![json!(i + 1)]),
            "page {i}'s items come first"
        );
    }
    assert_eq!(walk.resume_point(), None, "where to go on is unknown");
    match walk.poll(now) {
        Step::Fail(e) => {
            assert_eq!(e.stop, Stop::Page(PaginateError::Repeated("x".into())));
            assert_eq!((e.resume, e.pages, e.items), (None, 2, 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(walk.poll(now), Step::Done, "the error is served once");
    assert!(walk.is_finished());
}

#[test]
fn a_page_that_cannot_be_read_stops_the_walk_with_that_page_to_resume_from() {
    let first = "https://api.test/i";
    // (status, body, why it stops)
    type Case<'a> = (u16, Body<'a>, fn(&Stop) -> bool);
    let table: Vec<Case<'_>> = vec![
        (404, Body::Bytes(b"[1]"), |s| {
            *s == Stop::Status { status: 404 }
        }),
        (200, Body::Bytes(b"<html>"), |s| {
            matches!(s, Stop::NotJson { .. })
        }),
        (200, Body::Bytes(b"{\"data\":[]}"), |s| {
            matches!(s, Stop::Page(PaginateError::ItemsNotArray { .. }))
        }),
    ];
    for (status, body, why) in table {
        let mut walk =
            Walk::new(first, PageStyle::cursor("/n", "c"), Some("/items".into())).unwrap();
        let now = Instant::ZERO;
        assert!(matches!(walk.poll(now), Step::Fetch(_)));
        let reply = PageReply::new(status, &[("a", "b")], body).attempts(3);
        assert_eq!(walk.accept(reply), None, "{status}: nothing taken in");
        match walk.poll(now) {
            Step::Fail(e) => {
                assert!(why(&e.stop), "{:?}", e.stop);
                assert_eq!(
                    e.resume.map(|r| r.url().to_string()),
                    Some(first.to_string())
                );
                assert_eq!((e.pages, e.items), (0, 0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(walk.poll(now), Step::Done);
    }
}

fn fetch(walk: &mut Walk, now: Instant) -> PageCall {
    match walk.poll(now) {
        Step::Fetch(call) => call,
        other => panic!("expected a page call, got {other:?}"),
    }
}

fn page(walk: &mut Walk, attempts: u32, next: Option<&str>) {
    let body = json!({"items": [1], "next": next});
    let reply = PageReply::new(200, &[("a", "b")], Body::Json(&body)).attempts(attempts);
    assert!(walk.accept(reply).is_some());
}

#[test]
fn page_calls_get_what_the_walk_has_left() {
    let policy = WalkPolicy {
        retries: 4,
        deadline_ms: Some(10_000),
        ..WalkPolicy::default()
    };
    let style = PageStyle::cursor("/next", "c");
    let mut walk = Walk::new("https://api.test/i", style, Some("/items".into()))
        .unwrap()
        .policy(policy);
    let t0 = Instant::from_millis(1_000);
    let call = fetch(&mut walk, t0);
    assert_eq!(
        (call.max_attempts, call.deadline),
        (5, Some(Duration::from_secs(10)))
    );
    assert_eq!(call.host(), "https://api.test");
    // A page that took four attempts spent three retries and earned one back.
    page(&mut walk, 4, Some("a"));
    let call = fetch(&mut walk, t0 + Duration::from_secs(4));
    assert_eq!(
        (call.max_attempts, call.deadline),
        (3, Some(Duration::from_secs(6)))
    );
    page(&mut walk, 1, Some("b"));
    assert_eq!(walk.retries_left(), 3);
    match walk.poll(t0 + Duration::from_secs(10)) {
        Step::Fail(e) => {
            assert_eq!(e.stop, Stop::Deadline);
            assert_eq!(e.resume.map(|r| r.token().to_string()), Some("?c=b".into()));
        }
        other => panic!("the walk's deadline ends it: {other:?}"),
    }
}

#[test]
fn a_host_refusing_for_a_while_is_waited_for_and_the_page_fetched_again() {
    let style = PageStyle::cursor("/next", "c");
    let mut walk = Walk::new("https://api.test/i", style, Some("/items".into())).unwrap();
    let t0 = Instant::ZERO;
    let first = fetch(&mut walk, t0);
    // The breaker opened after five failed attempts; it half-opens in 5 s.
    let again = t0 + Duration::from_secs(5);
    walk.failed(
        PageFailure {
            attempts: 5,
            again: Again::At {
                at: again,
                why: Why::BreakerOpen,
            },
        },
        t0,
    );
    assert_eq!(
        walk.poll(t0),
        Step::Wait {
            until: again,
            why: Why::BreakerOpen
        }
    );
    assert_eq!(
        walk.poll(again.saturating_sub(Duration::from_millis(1))),
        Step::Wait {
            until: again,
            why: Why::BreakerOpen
        }
    );
    let retry = fetch(&mut walk, again);
    assert_eq!(retry.url, first.url, "the same page");
    assert_eq!(
        walk.retries_left(),
        10 - 4 - 1,
        "four retries and one refetch spent"
    );
    // Waits for one page add up: 5 s + 20 s + 40 s is over the 60 s a page may wait.
    let mut now = again;
    for (wait_s, waits) in [(20, true), (40, false)] {
        let at = now + Duration::from_secs(wait_s);
        walk.failed(
            PageFailure {
                attempts: 1,
                again: Again::At {
                    at,
                    why: Why::BreakerOpen,
                },
            },
            now,
        );
        match walk.poll(now) {
            Step::Wait { until, why } if waits => {
                assert_eq!(why, Why::BreakerOpen);
                assert_eq!(until, at);
                now = at;
                assert_eq!(fetch(&mut walk, now).url, first.url);
            }
            Step::Fail(e) if !waits => {
                assert_eq!(e.stop, Stop::Call { attempts: 1 });
                assert_eq!(
                    e.resume.map(|r| r.url().to_string()),
                    Some(first.url.clone())
                );
            }
            other => panic!("after a {wait_s} s refusal: {other:?}"),
        }
    }
}

#[test]
fn a_failure_that_waiting_cannot_cure_ends_the_walk_at_once() {
    let style = PageStyle::cursor("/next", "c");
    let mut walk = Walk::new("https://api.test/i", style, Some("/items".into())).unwrap();
    let now = Instant::ZERO;
    page_then(&mut walk, now);
    // Retries used up, a 404, a budget spent: no time to wait for.
    walk.failed(
        PageFailure {
            attempts: 11,
            again: Again::Never,
        },
        now,
    );
    match walk.poll(now) {
        Step::Fail(e) => {
            assert_eq!(e.stop, Stop::Call { attempts: 11 });
            assert_eq!(e.resume.map(|r| r.token().to_string()), Some("?c=a".into()));
            assert_eq!((e.pages, e.items), (1, 1));
        }
        other => panic!("{other:?}"),
    }
    // With no retries left, even a short refusal ends it.
    let mut walk = Walk::new("https://api.test/i", PageStyle::Link, None)
        .unwrap()
        .policy(WalkPolicy {
            retries: 0,
            ..WalkPolicy::default()
        });
    let _ = fetch(&mut walk, now);
    walk.failed(
        PageFailure {
            attempts: 1,
            again: Again::At {
                at: now + Duration::from_millis(10),
                why: Why::BreakerOpen,
            },
        },
        now,
    );
    assert!(matches!(walk.poll(now), Step::Fail(_)));
}

fn page_then(walk: &mut Walk, now: Instant) {
    let _ = fetch(walk, now);
    page(walk, 1, Some("a"));
    let _ = fetch(walk, now);
}

#[test]
fn link_targets_resolve_against_the_url_that_answered() {
    let mut walk = Walk::new("https://api.test/v1/items", PageStyle::Link, None).unwrap();
    let now = Instant::ZERO;
    let _ = fetch(&mut walk, now);
    let headers = [("link", "<page2>; rel=\"next\"")];
    let body = json!([1]);
    // Redirected to /v2/: the relative target is under /v2/.
    let reply = PageReply::new(200, &headers, Body::Json(&body)).url("https://api.test/v2/items");
    assert!(walk.accept(reply).is_some());
    assert_eq!(fetch(&mut walk, now).url, "https://api.test/v2/page2");
    assert_eq!(walk.resume_point().unwrap().token(), "/v2/page2");
}

#[test]
fn a_first_url_that_is_not_absolute_is_refused() {
    assert!(Walk::new("/items", PageStyle::Link, None).is_err());
    assert!(Walk::resume("items", PageStyle::Link, None, "?a=1").is_err());
}

#[test]
fn a_next_link_that_cannot_be_requested_stops_the_walk_after_its_page() {
    let mut walk = Walk::new("https://api.test/items", PageStyle::Link, None).unwrap();
    let now = Instant::ZERO;
    let _ = fetch(&mut walk, now);
    let headers = [("link", "<mailto:ops@api.test>; rel=\"next\"")];
    let body = json!([1, 2]);
    let items = walk.accept(PageReply::new(200, &headers, Body::Json(&body)));
    assert_eq!(
        items,
        Some(vec![json!(1), json!(2)]),
        "the page's items first"
    );
    match walk.poll(now) {
        Step::Fail(e) => {
            assert!(
                matches!(&e.stop, Stop::BadLink { target, .. } if target == "mailto:ops@api.test"),
                "{:?}",
                e.stop
            );
            assert_eq!(e.resume, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn which_failures_waiting_may_cure() {
    let t = Instant::from_millis(7);
    // (why, retryable, retry_at, again)
    let table = [
        (
            Why::BreakerOpen,
            true,
            Some(t),
            Again::At {
                at: t,
                why: Why::BreakerOpen,
            },
        ),
        (
            Why::BudgetExhausted,
            true,
            None,
            Again::Later {
                why: Why::BudgetExhausted,
            },
        ),
        (
            Why::DeadlineExceeded,
            true,
            None,
            Again::Later {
                why: Why::DeadlineExceeded,
            },
        ),
        (
            Why::DeadlineWouldPass,
            true,
            None,
            Again::Later {
                why: Why::DeadlineWouldPass,
            },
        ),
        (Why::MaxAttempts, true, None, Again::Never),
        (Why::NotRetryableStatus, false, None, Again::Never),
        (Why::NotIdempotent, false, Some(t), Again::Never),
    ];
    for (why, retryable, retry_at, again) in table {
        let f = PageFailure::from_parts(why, retryable, retry_at, 3);
        assert_eq!(f, PageFailure { attempts: 3, again }, "{why:?}");
    }
}

#[test]
fn a_page_stopped_by_a_limit_of_its_call_is_fetched_again_after_the_walks_backoff() {
    let style = PageStyle::cursor("/next", "c");
    let mut walk = Walk::new("https://api.test/i", style, Some("/items".into())).unwrap();
    let mut now = Instant::ZERO;
    let page_url = fetch(&mut walk, now).url;
    for backoff_s in [1, 2, 4] {
        walk.failed(
            PageFailure {
                attempts: 1,
                again: Again::Later {
                    why: Why::BudgetExhausted,
                },
            },
            now,
        );
        let until = now + Duration::from_secs(backoff_s);
        assert_eq!(
            walk.poll(now),
            Step::Wait {
                until,
                why: Why::BudgetExhausted
            }
        );
        now = until;
        assert_eq!(fetch(&mut walk, now).url, page_url);
    }
    page(&mut walk, 1, Some("a"));
    let _ = fetch(&mut walk, now);
    walk.failed(
        PageFailure {
            attempts: 1,
            again: Again::Later {
                why: Why::BudgetExhausted,
            },
        },
        now,
    );
    assert_eq!(
        walk.poll(now),
        Step::Wait {
            until: now + Duration::from_secs(1),
            why: Why::BudgetExhausted,
        },
        "a page that arrived starts the backoff over"
    );
}
