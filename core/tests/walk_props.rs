//! Properties of the walk's URL arithmetic and of the walk itself: total over any text, and a
//! walk over any sequence of pages ends, never asks for a cursor twice, and can always be
//! resumed from where it says.

use proptest::prelude::*;
use resile_core::paginate::url::{query_pairs, query_string, resolve, with_query};
use resile_core::paginate::{Body, PageReply, PageStyle, Resume, Step, Walk};
use resile_core::Instant;
use serde_json::json;

/// URL-shaped text: the characters the parsers split on, often.
fn urlish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z:/?#&=.%+ 0-9é\\[\\]@-]{0,40}",
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..12).prop_map(|f| f.concat()),
        any::<String>(),
    ]
}

const FRAGMENTS: &[&str] = &[
    "http:", "HTTPS:", "//", "/", "..", ".", "?", "#", "&", "=", "%", "%2", "%zz", "+", "a", "é",
    "h.test", "[::1]:80", "@", ":",
];

proptest! {
    #[test]
    fn url_arithmetic_is_total(base in urlish(), reference in urlish(), k in urlish(), v in urlish()) {
        let _ = resolve(&base, &reference);
        let _ = with_query(&base, &[(k.clone(), v.clone())]);
        let _ = query_pairs(&reference);
        let _ = Resume::new(&base, &reference, &PageStyle::Link);
        let _ = Resume::new(&base, &reference, &PageStyle::offset(3));
        for style in [PageStyle::Link, PageStyle::cursor("/n", "c"), PageStyle::page(2)] {
            let _ = Walk::resume(&base, style, None, &reference);
        }
    }

    /// Resolving gives an absolute URL or an error, and a path or query reference always
    /// resolves.
    #[test]
    fn resolved_references_are_absolute(reference in urlish()) {
        let resolved = resolve("https://h.test/a/b?q=1", &reference);
        if let Ok(url) = &resolved {
            prop_assert!(resolve(url, "").is_ok(), "{url}");
        }
        let relative = !reference.contains(':') && !reference.trim().starts_with("//");
        prop_assert!(!relative || resolved.is_ok(), "{reference}: {resolved:?}");
    }

    #[test]
    fn set_parameters_read_back(pairs in prop::collection::vec((".{0,12}", ".{0,12}"), 0..4)) {
        prop_assert_eq!(query_pairs(&query_string(&pairs)), pairs.clone());
        // With distinct names, setting them on a URL reads them back last, in order.
        let mut named: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs {
            if !k.is_empty() && !named.iter().any(|(n, _)| *n == k) {
                named.push((k, v));
            }
        }
        let url = with_query("https://h.test/i?keep=1", &named).unwrap();
        let back = query_pairs(&url);
        prop_assert_eq!(&back[back.len() - named.len()..], &named[..]);
    }

    /// Pages with random cursors (some repeated, some missing): the walk ends within the page
    /// bound, never requests one cursor twice, and resuming from any step's resume point asks
    /// for exactly the page the walk would have asked for.
    #[test]
    fn a_cursor_walk_ends_without_repeating_and_resumes_where_it_says(
        cursors in prop::collection::vec(prop::option::of(0u8..6), 0..12)
    ) {
        let style = PageStyle::cursor("/next", "c");
        let first = "https://h.test/items?x=1";
        let mut walk = Walk::new(first, style.clone(), Some("/items".into())).unwrap().max_pages(50);
        let (mut asked, mut pages) = (Vec::new(), cursors.iter());
        let now = Instant::ZERO;
        for _ in 0..100 {
            match walk.poll(now) {
                Step::Fetch(call) => {
                    let token = walk.resume_point().unwrap().token().to_string();
                    let resumed = Walk::resume(first, style.clone(), Some("/items".into()), &token);
                    let Step::Fetch(again) = resumed.unwrap().poll(now) else { panic!("{token}") };
                    prop_assert_eq!(&again.url, &call.url);
                    prop_assert!(!asked.contains(&call.url), "asked twice: {}", call.url);
                    asked.push(call.url);
                    let next = pages.next().copied().flatten();
                    let body = json!({"items": [1], "next": next.map(|c| format!("c{c}"))});
                    let reply = PageReply::new(200, &[("a", "b")], Body::Json(&body));
                    prop_assert!(walk.accept(reply).is_some());
                }
                Step::Done | Step::Fail(_) => break,
                Step::Wait { .. } => panic!("nothing refused"),
            }
        }
        prop_assert!(walk.is_finished() || walk.poll(now) == Step::Done);
        prop_assert!(asked.len() <= cursors.len() + 1);
    }
}
