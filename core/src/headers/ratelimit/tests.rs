//! The rate-limit parsers against every header family, odd input included.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
use HintSource::{Ietf, IetfLegacy, XRateLimit};

const NOW_SECS: u64 = 1_700_000_000;

fn now() -> UnixTime {
    UnixTime::from_secs(NOW_SECS)
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn hint(
    source: HintSource,
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<Duration>,
    window: Option<Duration>,
) -> Option<RateLimitHint> {
    Some(RateLimitHint {
        limit,
        remaining,
        reset,
        window,
        source,
    })
}

/// A response's headers and the hint they should give.
type Case<'a> = (&'a [(&'a str, &'a str)], Option<RateLimitHint>);

fn check(table: &[Case]) {
    for (headers, want) in table {
        assert_eq!(parse_ratelimit(*headers, now()), *want, "{headers:?}");
    }
}

#[test]
fn ietf_structured() {
    check(&[
        (
            &[
                ("RateLimit", r#""default";r=50;t=30"#),
                ("RateLimit-Policy", r#""default";q=100;w=60"#),
            ],
            hint(Ietf, Some(100), Some(50), secs(30), secs(60)),
        ),
        (
            &[("RateLimit", r#""default";r=50;t=30"#)],
            hint(Ietf, None, Some(50), secs(30), None),
        ),
        (
            &[("RateLimit", "default;r=50")],
            hint(Ietf, None, Some(50), None, None),
        ),
        (
            &[("RateLimit", r#""default";t=30;r=0"#)],
            hint(Ietf, None, Some(0), secs(30), None),
        ),
        (
            &[("RateLimit", r#" "default" ; r = 5 ; t = 7 "#)],
            hint(Ietf, None, Some(5), secs(7), None),
        ),
        // Lowest remaining wins.
        (
            &[
                ("RateLimit", r#""a";r=10;t=5, "b";r=2;t=1, "c";r=3;t=100"#),
                (
                    "RateLimit-Policy",
                    r#""a";q=10;w=5, "b";q=20;w=60, "c";q=9"#,
                ),
            ],
            hint(Ietf, Some(20), Some(2), secs(1), secs(60)),
        ),
        // Ties go to the longest reset, and a missing reset is shortest.
        (
            &[
                (
                    "RateLimit",
                    r#""burst";r=5;t=1, "daily";r=5;t=3600, "x";r=5"#,
                ),
                (
                    "RateLimit-Policy",
                    r#""burst";q=100;w=60, "daily";q=1000;w=86400"#,
                ),
            ],
            hint(Ietf, Some(1000), Some(5), secs(3600), secs(86400)),
        ),
        // One quota and one policy with different names still pair up...
        (
            &[
                ("RateLimit", r#""a";r=1;t=2"#),
                ("RateLimit-Policy", r#""b";q=10;w=20"#),
            ],
            hint(Ietf, Some(10), Some(1), secs(2), secs(20)),
        ),
        // ...but not when there is a choice.
        (
            &[
                ("RateLimit", r#""a";r=1;t=2"#),
                ("RateLimit-Policy", r#""b";q=10;w=20, "c";q=5;w=20"#),
            ],
            hint(Ietf, None, Some(1), secs(2), None),
        ),
        // Bad members are skipped, unknown parameters ignored, quotes protect delimiters.
        (
            &[(
                "RateLimit",
                r#""x";r=-1;t=1, "y";r=abc, , "w";t=1, "z";pk=:cHJvamVjdDEyMw==:;note="a,b;r=0";r=7;t=2"#,
            )],
            hint(Ietf, None, Some(7), secs(2), None),
        ),
        // A bad reset leaves the member usable; a later duplicate parameter wins.
        (
            &[("RateLimit", r#""a";r=1;r=4;t=soon"#)],
            hint(Ietf, None, Some(4), None, None),
        ),
        (
            &[("RateLimit", r#""a";r=9;t=1.5"#)],
            hint(Ietf, None, Some(9), Some(Duration::from_millis(1500)), None),
        ),
        (&[("RateLimit", r#""a";r=1.5;t=1"#)], None),
        // A quote that is never closed is an ordinary character.
        (
            &[("RateLimit", r#""unterminated;r=1"#)],
            hint(Ietf, None, Some(1), None, None),
        ),
        (
            &[("RateLimit", r#""a";r=99999999999999999999999"#)],
            hint(Ietf, None, Some(u64::MAX), None, None),
        ),
    ]);
}

#[test]
fn ietf_policy_alone() {
    check(&[
        (
            &[("RateLimit-Policy", r#""default";q=100;w=60"#)],
            hint(Ietf, Some(100), None, None, secs(60)),
        ),
        // The lowest rate binds: 1000 a day is stricter than 100 a minute.
        (
            &[(
                "RateLimit-Policy",
                r#""burst";q=100;w=60, "daily";q=1000;w=86400"#,
            )],
            hint(Ietf, Some(1000), None, None, secs(86400)),
        ),
        (
            &[("RateLimit-Policy", r#""a";q=100, "b";q=50"#)],
            hint(Ietf, Some(50), None, None, None),
        ),
        // The old integer form; 50 a minute is stricter than 10 a second.
        (
            &[("RateLimit-Policy", "10;w=1, 50;w=60")],
            hint(Ietf, Some(50), None, None, secs(60)),
        ),
        (&[("RateLimit-Policy", r#""a";qu="requests""#)], None),
        // A policy alone loses to any family that says what is left.
        (
            &[
                ("RateLimit-Policy", r#""default";q=100;w=60"#),
                ("X-RateLimit-Remaining", "4"),
            ],
            hint(XRateLimit, None, Some(4), None, None),
        ),
    ]);
}

#[test]
fn ietf_dictionary_form() {
    check(&[
        (
            &[("RateLimit", "limit=100, remaining=50, reset=5")],
            hint(IetfLegacy, Some(100), Some(50), secs(5), None),
        ),
        (
            &[("ratelimit", "reset=5 ,LIMIT=100;w=60,remaining=0")],
            hint(IetfLegacy, Some(100), Some(0), secs(5), secs(60)),
        ),
        (
            &[
                ("RateLimit", "limit=100, remaining=50, reset=5"),
                ("RateLimit-Policy", "100;w=60"),
            ],
            hint(IetfLegacy, Some(100), Some(50), secs(5), secs(60)),
        ),
        (
            &[("RateLimit", "remaining=1, remaining=2, other=3")],
            hint(IetfLegacy, None, Some(2), None, None),
        ),
        (&[("RateLimit", "limit=-1, remaining=x, reset=")], None),
    ]);
}

#[test]
fn ietf_separate_headers() {
    check(&[
        (
            &[
                ("RateLimit-Limit", "100"),
                ("RateLimit-Remaining", "50"),
                ("RateLimit-Reset", "5"),
            ],
            hint(IetfLegacy, Some(100), Some(50), secs(5), None),
        ),
        (
            &[
                ("RateLimit-Limit", "10, 10;w=1, 50;w=60"),
                ("RateLimit-Remaining", " 9 "),
            ],
            hint(IetfLegacy, Some(10), Some(9), None, secs(1)),
        ),
        (
            &[
                ("RateLimit-Limit", "50"),
                ("RateLimit-Policy", "10;w=1, 50;w=60"),
                ("RateLimit-Reset", "1700000030"),
            ],
            hint(IetfLegacy, Some(50), None, secs(30), secs(60)),
        ),
        (
            &[("RateLimit-Remaining", "-3"), ("RateLimit-Reset", "1.0001")],
            hint(
                IetfLegacy,
                None,
                None,
                Some(Duration::from_millis(1001)),
                None,
            ),
        ),
    ]);
}

#[test]
fn x_ratelimit_headers() {
    check(&[
        // GitHub.
        (
            &[
                ("X-RateLimit-Limit", "5000"),
                ("X-RateLimit-Remaining", "4999"),
                ("X-RateLimit-Reset", "1700003600"),
                ("X-RateLimit-Used", "1"),
                ("X-RateLimit-Resource", "core"),
            ],
            hint(XRateLimit, Some(5000), Some(4999), secs(3600), None),
        ),
        // A reset already past.
        (
            &[("x-ratelimit-reset", "1699999999")],
            hint(XRateLimit, None, None, secs(0), None),
        ),
        // Delay seconds.
        (
            &[("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "30")],
            hint(XRateLimit, None, Some(0), secs(30), None),
        ),
        (
            &[("X-RateLimit-Reset", "999999999")],
            hint(XRateLimit, None, None, secs(999_999_999), None),
        ),
        // Unix milliseconds.
        (
            &[("X-RateLimit-Reset", "1700000002500")],
            hint(
                XRateLimit,
                None,
                None,
                Some(Duration::from_millis(2500)),
                None,
            ),
        ),
        // Discord: fractional Unix seconds, and a relative reset-after that wins.
        (
            &[("X-RateLimit-Reset", "1700000001.25")],
            hint(
                XRateLimit,
                None,
                None,
                Some(Duration::from_millis(1250)),
                None,
            ),
        ),
        (
            &[
                ("X-RateLimit-Limit", "5"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", "1700000099.000"),
                ("X-RateLimit-Reset-After", "64.57"),
            ],
            hint(
                XRateLimit,
                Some(5),
                Some(0),
                Some(Duration::from_millis(64_570)),
                None,
            ),
        ),
        // Twitter/X spelling.
        (
            &[
                ("x-rate-limit-limit", "15"),
                ("x-rate-limit-remaining", "14"),
                ("x-rate-limit-reset", "1700000900"),
            ],
            hint(XRateLimit, Some(15), Some(14), secs(900), None),
        ),
        (
            &[("X-RateLimit-Limit", "100, 100;w=60")],
            hint(XRateLimit, Some(100), None, None, secs(60)),
        ),
        // Saturation instead of failure.
        (
            &[("X-RateLimit-Reset", "99999999999999999999999999")],
            Some(RateLimitHint {
                reset: Some(now().until(UnixTime::from_millis(u64::MAX / 1000))),
                ..RateLimitHint::empty(XRateLimit)
            }),
        ),
        (
            &[
                ("X-RateLimit-Limit", "ten"),
                ("X-RateLimit-Remaining", "-1"),
                ("X-RateLimit-Reset", "+5"),
            ],
            None,
        ),
    ]);
}

#[test]
fn preference_order() {
    let all: &[(&str, &str)] = &[
        ("X-RateLimit-Remaining", "1"),
        ("RateLimit-Remaining", "2"),
        ("RateLimit", r#""q";r=3"#),
    ];
    check(&[
        (all, hint(Ietf, None, Some(3), None, None)),
        (&all[..2], hint(IetfLegacy, None, Some(2), None, None)),
        (&all[..1], hint(XRateLimit, None, Some(1), None, None)),
        // A family that fails to parse falls through to the next.
        (
            &[("RateLimit", "garbage"), ("X-RateLimit-Remaining", "1")],
            hint(XRateLimit, None, Some(1), None, None),
        ),
        // An X- spelling that says what is left beats one that gives only the limit...
        (
            &[("X-Rate-Limit-Remaining", "1"), ("X-RateLimit-Limit", "9")],
            hint(XRateLimit, None, Some(1), None, None),
        ),
        // ...and of two that do, `X-RateLimit-` is read first.
        (
            &[("X-Rate-Limit-Remaining", "1"), ("X-RateLimit-Reset", "9")],
            hint(XRateLimit, None, None, secs(9), None),
        ),
    ]);
}

#[test]
fn nothing_usable() {
    check(&[
        (&[], None),
        (&[("Content-Type", "text/plain")], None),
        (&[("RateLimit", "")], None),
        (&[("RateLimit", ",,,")], None),
        (&[("RateLimit", "\"a\";r=\"")], None),
        (&[("RateLimit-Policy", "")], None),
        (&[("X-RateLimit-Remaining", "")], None),
        (&[("X-RateLimit-Remaining", "1e3")], None),
    ]);
    assert_eq!(parse_ratelimit(&super::super::NoHeaders, now()), None);
}

#[test]
fn millis() {
    let table: &[(&str, Option<u64>)] = &[
        ("0", Some(0)),
        ("1", Some(1000)),
        ("1.5", Some(1500)),
        ("1.05", Some(1050)),
        ("1.0001", Some(1001)),
        ("1.0000", Some(1000)),
        ("0.001", Some(1)),
        (" 2 ", Some(2000)),
        ("18446744073709551615", Some(u64::MAX)),
        ("18446744073709551.615", Some(u64::MAX)),
        ("1.", None),
        (".5", None),
        ("1.5.5", None),
        ("1,5", None),
        ("-1", None),
        ("+1", None),
        ("", None),
        ("1.x", None),
    ];
    for &(input, want) in table {
        assert_eq!(parse_millis(input), want, "{input:?}");
    }
}
