//! Properties of the header parsers: they are total, and they read back what a well-behaved
//! server writes.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use resile_core::headers::{
    find_rel, parse_links, parse_ratelimit, parse_retry_after, HintSource, RateLimitHint,
};
use resile_core::UnixTime;

/// The last second `httpdate` can format (9999-12-31T23:59:59Z).
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// Strings made of the characters the parsers treat specially, so that random inputs hit the
/// interesting paths far more often than arbitrary unicode does.
fn interesting() -> impl Strategy<Value = String> {
    prop_oneof![
        "[<>;,=\"\\\\ \t0-9a-z.:*+-]{0,64}",
        // Header-shaped fragments, so that links, parameters and names repeat.
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..16).prop_map(|f| f.concat()),
        any::<String>(),
        "\\PC{0,64}",
    ]
}

const FRAGMENTS: &[&str] = &[
    "<", ">", ";", ",", "=", "\"", "\\", " ", "a", "b", "1", "</a>", "rel", "next", "r=", "q=",
    "t=", "w=", "limit=", "\"x\"",
];

const HEADER_NAMES: &[&str] = &[
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
];

fn header_map() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop::sample::select(HEADER_NAMES).prop_map(str::to_owned),
            interesting(),
        ),
        0..6,
    )
}

/// Wraps a rel list in a `rel` parameter, quoted when it must be (or when the coin says so).
fn rel_param(rels: &[String], quote: bool) -> String {
    if rels.len() == 1 && !quote {
        format!("rel={}", rels[0])
    } else {
        format!("rel=\"{}\"", rels.join(" "))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn retry_after_is_total(value in interesting(), now in any::<u64>()) {
        let _ = parse_retry_after(&value, UnixTime::from_millis(now));
    }

    #[test]
    fn ratelimit_is_total(headers in header_map(), now in any::<u64>()) {
        let now = UnixTime::from_millis(now);
        if let Some(hint) = parse_ratelimit(&headers, now) {
            // A hint is never empty.
            prop_assert!(
                hint.limit.is_some()
                    || hint.remaining.is_some()
                    || hint.reset.is_some()
                    || hint.window.is_some()
            );
        }
    }

    #[test]
    fn links_are_total_and_borrowed(value in interesting(), name in interesting()) {
        let range = value.as_ptr() as usize..=value.as_ptr() as usize + value.len();
        let mut count = 0;
        for link in parse_links(&value) {
            count += 1;
            prop_assert!(range.contains(&(link.target.as_ptr() as usize)));
            let _ = link.has_rel(&name);
            let _ = link.has_rel("next");
            for key in [name.as_str(), "a", "b", "rel"] {
                if let Some(v) = link.param(key) {
                    prop_assert!(range.contains(&(v.as_ptr() as usize)));
                }
            }
        }
        // Every link starts at its own `<`.
        prop_assert!(count <= value.matches('<').count());
        let _ = find_rel(&value, &name);
    }

    #[test]
    fn delay_seconds_round_trip(n in any::<u64>(), pad in "[ \t]{0,3}", zeros in "0{0,30}") {
        let now = UnixTime::from_secs(1_700_000_000);
        prop_assert_eq!(parse_retry_after(&n.to_string(), now), Some(Duration::from_secs(n)));
        let padded = format!("{pad}{zeros}{n}{pad}");
        prop_assert_eq!(parse_retry_after(&padded, now), Some(Duration::from_secs(n)));
    }

    #[test]
    fn too_many_digits_saturate(digits in "[1-9][0-9]{20,59}") {
        prop_assert_eq!(
            parse_retry_after(&digits, UnixTime::EPOCH),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn http_date_round_trip(
        now_secs in 0..LAST_HTTP_DATE,
        now_millis in 0u64..1000,
        d in 0u64..10_000_000,
    ) {
        let at = now_secs.saturating_add(d).min(LAST_HTTP_DATE);
        let value = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(at));
        let now = UnixTime::from_secs(now_secs);
        prop_assert_eq!(
            parse_retry_after(&value, now),
            Some(Duration::from_secs(at - now_secs)),
            "{}", value
        );
        // With a `now` between whole seconds the answer is exact to the millisecond.
        let now = UnixTime::from_millis(now_secs * 1000 + now_millis);
        prop_assert_eq!(
            parse_retry_after(&value, now),
            Some(Duration::from_millis((at * 1000).saturating_sub(now_secs * 1000 + now_millis)))
        );
    }

    #[test]
    fn past_http_dates_are_zero(at in 0..LAST_HTTP_DATE, ago in 0u64..10_000_000) {
        let value = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(at));
        let now = UnixTime::from_secs(at.saturating_add(ago));
        prop_assert_eq!(parse_retry_after(&value, now), Some(Duration::ZERO));
    }

    #[test]
    fn link_header_finds_next(
        links in prop::collection::vec(
            (
                "[a-zA-Z0-9/?&=:.,;%#_~+-]{0,24}",
                prop::collection::vec("(prev|last|first|self|nextish|alternate|n)", 1..3),
                any::<bool>(),
                prop::option::of("[a-z ,;=]{0,12}"),
                "[ \t]{0,2}",
            ),
            0..6,
        ),
        next_at in prop::option::of(0usize..6),
        next_spelling in "(next|Next|NEXT)",
    ) {
        let mut expected = None;
        let mut parts = Vec::new();
        for (i, (target, mut rels, quote, title, ws)) in links.into_iter().enumerate() {
            if next_at == Some(i) {
                rels.insert(rels.len() / 2, next_spelling.clone());
                expected.get_or_insert(target.clone());
            }
            let mut part = format!("<{target}>{ws};{ws}{}", rel_param(&rels, quote));
            if let Some(title) = title {
                part = format!("{part}{ws};{ws}title=\"{title}\"");
            }
            parts.push(part);
        }
        let value = parts.join(", ");
        prop_assert_eq!(find_rel(&value, "next"), expected.as_deref(), "{}", value);
        prop_assert_eq!(parse_links(&value).count(), parts.len());
    }

    #[test]
    fn x_ratelimit_round_trip(
        limit in any::<u64>(),
        remaining in any::<u64>(),
        delay in 0u64..1_000_000_000,
        epoch in prop::option::of(1_000_000_000u64..10_000_000_000),
    ) {
        let now = UnixTime::from_secs(1_700_000_000);
        let reset = epoch.unwrap_or(delay).to_string();
        let headers = [
            ("X-RateLimit-Limit", limit.to_string()),
            ("X-RateLimit-Remaining", remaining.to_string()),
            ("X-RateLimit-Reset", reset),
        ];
        let headers: Vec<(String, String)> =
            headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let want_reset = match epoch {
            Some(at) => now.until(UnixTime::from_secs(at)),
            None => Duration::from_secs(delay),
        };
        prop_assert_eq!(
            parse_ratelimit(&headers, now),
            Some(RateLimitHint {
                limit: Some(limit),
                remaining: Some(remaining),
                reset: Some(want_reset),
                window: None,
                source: HintSource::XRateLimit,
            })
        );
    }

    #[test]
    fn ietf_picks_the_most_restrictive(
        quotas in prop::collection::vec((0u64..5, prop::option::of(0u64..5)), 1..6),
    ) {
        let value = quotas
            .iter()
            .enumerate()
            .map(|(i, (r, t))| match t {
                Some(t) => format!("\"q{i}\";r={r};t={t}"),
                None => format!("\"q{i}\";r={r}"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let min_r = quotas.iter().map(|q| q.0).min().unwrap_or(0);
        let max_t = quotas.iter().filter(|q| q.0 == min_r).map(|q| q.1).max().flatten();
        let hint = parse_ratelimit(&[("RateLimit", value.as_str())], UnixTime::EPOCH);
        prop_assert_eq!(
            hint,
            Some(RateLimitHint {
                limit: None,
                remaining: Some(min_r),
                reset: max_t.map(Duration::from_secs),
                window: None,
                source: HintSource::Ietf,
            }),
            "{}", value
        );
    }
}

/// A map that only answers `get`, so `may_have_prefix` keeps its "maybe" default.
struct GetOnly<'a>(&'a [(String, String)]);

impl resile_core::headers::Headers for GetOnly<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        resile_core::headers::Headers::get(self.0, name)
    }
}

proptest! {
    /// The "no rate-limit header here" shortcut never changes an answer.
    #[test]
    fn the_prefix_shortcut_changes_nothing(map in header_map(), now in 0u64..4_000_000_000) {
        let now = resile_core::UnixTime::from_secs(now);
        prop_assert_eq!(
            resile_core::headers::parse_ratelimit(map.as_slice(), now),
            resile_core::headers::parse_ratelimit(&GetOnly(&map), now)
        );
    }
}

proptest! {
    /// One scan for several prefixes answers as one scan per prefix does.
    #[test]
    fn one_scan_for_all_prefixes_agrees_with_one_per_prefix(
        map in header_map(),
        picks in prop::collection::vec(prop::sample::select(HEADER_NAMES), 0..4),
        cut in 1usize..12,
    ) {
        use resile_core::headers::Headers;
        let prefixes: Vec<&str> = picks.iter().map(|n| &n[..cut.min(n.len())]).collect();
        let one_by_one = prefixes.iter().any(|p| map.as_slice().may_have_prefix(p));
        prop_assert_eq!(map.as_slice().may_have_any_prefix(&prefixes), one_by_one);
        prop_assert_eq!(GetOnly(&map).may_have_any_prefix(&prefixes), !prefixes.is_empty());
    }
}
