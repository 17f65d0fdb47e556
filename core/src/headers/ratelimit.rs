//! Rate-limit hints: what the server says about our remaining quota and when it refills.
//!
//! The user-facing rules live on [`parse_ratelimit`]; this module only implements them.

use core::cmp::Reverse;
use core::time::Duration;

use serde::Serialize;

use super::{find_unquoted, parse_u64, split_unquoted, trim_ows, unquote, Headers};
use crate::time::UnixTime;

/// Which family of headers a [`RateLimitHint`] was read from.
///
/// ```
/// use resile_core::headers::{parse_ratelimit, HintSource};
/// use resile_core::UnixTime;
///
/// let hint = parse_ratelimit(&[("RateLimit-Remaining", "3")], UnixTime::EPOCH).unwrap();
/// assert_eq!(hint.source, HintSource::IetfLegacy);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HintSource {
    /// `RateLimit` and `RateLimit-Policy` structured-field lists
    /// (draft-ietf-httpapi-ratelimit-headers-08 and later).
    Ietf,
    /// Earlier IETF drafts: a `RateLimit: limit=…, remaining=…, reset=…` dictionary, or separate
    /// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers.
    IetfLegacy,
    /// The de-facto `X-RateLimit-*` (or `X-Rate-Limit-*`) headers.
    XRateLimit,
}

/// What a response said about the client's rate limit. Every field is optional because servers
/// send any subset.
///
/// ```
/// use std::time::Duration;
/// use resile_core::headers::{parse_ratelimit, HintSource, RateLimitHint};
/// use resile_core::UnixTime;
///
/// let headers = [
///     ("RateLimit-Policy", r#""default";q=100;w=60"#),
///     ("RateLimit", r#""default";r=0;t=30"#),
/// ];
/// let hint = parse_ratelimit(&headers, UnixTime::EPOCH);
/// assert_eq!(
///     hint,
///     Some(RateLimitHint {
///         limit: Some(100),
///         remaining: Some(0),
///         reset: Some(Duration::from_secs(30)),
///         window: Some(Duration::from_secs(60)),
///         source: HintSource::Ietf,
///     })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitHint {
    /// The quota: how many units the window allows.
    pub limit: Option<u64>,
    /// How many units are left in the current window.
    pub remaining: Option<u64>,
    /// How long from `now` until the quota is refilled.
    pub reset: Option<Duration>,
    /// The length of the window the quota applies to.
    pub window: Option<Duration>,
    /// Which headers this was read from.
    pub source: HintSource,
}

impl RateLimitHint {
    fn empty(source: HintSource) -> Self {
        RateLimitHint {
            limit: None,
            remaining: None,
            reset: None,
            window: None,
            source,
        }
    }

    fn has_any(&self) -> bool {
        self.limit.is_some()
            || self.remaining.is_some()
            || self.reset.is_some()
            || self.window.is_some()
    }

    /// Whether this tells the client something about now rather than only about the policy.
    fn is_actionable(&self) -> bool {
        self.remaining.is_some() || self.reset.is_some()
    }
}

/// Reads the rate-limit headers of a response.
///
/// `now` is the wall-clock time the response arrived, used only for resets sent as Unix times.
/// Returns `None` when no usable rate-limit header is present.
///
/// # Header families
///
/// Three families of headers are read, in this order of preference:
///
/// 1. [`HintSource::Ietf`]: the structured fields of draft-ietf-httpapi-ratelimit-headers
///    (draft 08 and later):
///    ```text
///    RateLimit-Policy: "burst";q=100;w=60, "daily";q=1000;w=86400
///    RateLimit: "burst";r=50;t=30
///    ```
///    `r` is the remaining quota and `t` the seconds until it resets; `q` is the quota and `w`
///    the window in seconds. When `RateLimit` lists several quotas the most restrictive one is
///    used: the lowest `r`, and among equals the longest `t`. Its `limit` and `window` come from
///    the `RateLimit-Policy` member with the same name, or from the only policy when both
///    headers have exactly one member each.
/// 2. [`HintSource::IetfLegacy`]: earlier drafts, either one dictionary
///    (`RateLimit: limit=100, remaining=50, reset=5`) or separate `RateLimit-Limit`,
///    `RateLimit-Remaining` and `RateLimit-Reset` headers. A window comes from a `w` parameter
///    on the limit (`RateLimit-Limit: 100, 100;w=60`) or from an old-style
///    `RateLimit-Policy: 100;w=60` whose quota equals the limit.
/// 3. [`HintSource::XRateLimit`]: the de-facto `X-RateLimit-Limit`, `-Remaining` and `-Reset`
///    (GitHub and many others), or the same with `X-Rate-Limit-` (Twitter/X). A relative
///    `X-RateLimit-Reset-After` (Discord) is preferred to `-Reset` when both are present.
///
/// A family is used when it yields `remaining` or `reset`. If none does, the first family that
/// yields anything at all (say a lone `RateLimit-Policy`, which gives `limit` and `window` only)
/// is returned, and if there is nothing, `None`.
///
/// # Reading values
///
/// - Counts (`limit`, `remaining`) are whole non-negative numbers; anything else (`-1`, `1.5`,
///   `lots`) makes that field `None`. Numbers too large for a `u64` saturate.
/// - Seconds (`reset`, `window`) may carry a fraction (`1.5`, as Discord sends); it is kept to
///   the millisecond, rounded up.
/// - The structured-field syntax is read tolerantly: an item may be a string or a token, unknown
///   parameters are ignored, members that lack the required parameter or do not parse are
///   skipped, and commas or semicolons inside quoted strings do not split.
/// - Legacy and `X-` resets are not all relative: many servers (GitHub among them) send a Unix
///   time. A reset of at least 1 000 000 000 (2001-09-09 as a time, almost 32 years as a delay)
///   is taken as Unix seconds, and one of at least 1 000 000 000 000 as Unix milliseconds; both
///   are measured from `now`, and a time already past gives [`Duration::ZERO`]. Smaller values
///   are delays in seconds. The draft-08 `t` parameter is always a delay.
///
/// Nothing here caps the values; the caller decides how much of a server's wish to honour.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use resile_core::headers::{parse_ratelimit, HintSource};
/// use resile_core::UnixTime;
///
/// // GitHub sends the reset as a Unix time.
/// let now = UnixTime::from_secs(1_372_700_800);
/// let github = [
///     ("x-ratelimit-limit", "60"),
///     ("x-ratelimit-remaining", "0"),
///     ("x-ratelimit-reset", "1372700873"),
/// ];
/// let hint = parse_ratelimit(&github, now).unwrap();
/// assert_eq!(hint.source, HintSource::XRateLimit);
/// assert_eq!((hint.limit, hint.remaining), (Some(60), Some(0)));
/// assert_eq!(hint.reset, Some(Duration::from_secs(73)));
///
/// assert_eq!(parse_ratelimit(&[("X-RateLimit-Remaining", "many")], now), None);
/// ```
pub fn parse_ratelimit<H: Headers + ?Sized>(h: &H, now: UnixTime) -> Option<RateLimitHint> {
    // Most responses carry no rate-limit header at all: say so without a dozen look-ups.
    if !["ratelimit", "x-ratelimit", "x-rate-limit"]
        .iter()
        .any(|p| h.may_have_prefix(p))
    {
        return None;
    }
    let ratelimit = h.get("ratelimit");
    let policy = h.get("ratelimit-policy");
    let families: [&dyn Fn() -> Option<RateLimitHint>; 5] = [
        &|| ietf(ratelimit, policy),
        &|| ratelimit.and_then(|v| ietf_dictionary(v, policy, now)),
        &|| ietf_separate(h, policy, now),
        &|| x_ratelimit(h, &X_RATELIMIT, now),
        &|| x_ratelimit(h, &X_RATE_LIMIT, now),
    ];
    let mut fallback = None;
    for family in families {
        if let Some(hint) = family() {
            if hint.is_actionable() {
                return Some(hint);
            }
            fallback = fallback.or(Some(hint));
        }
    }
    fallback
}

/// Draft 08+: the most restrictive `RateLimit` member, joined with its `RateLimit-Policy`.
fn ietf(ratelimit: Option<&str>, policy: Option<&str>) -> Option<RateLimitHint> {
    let mut hint = RateLimitHint::empty(HintSource::Ietf);
    let chosen = match ratelimit.and_then(most_restrictive) {
        Some((quota, quotas)) => {
            hint.remaining = Some(quota.remaining);
            hint.reset = quota.reset;
            policy.and_then(|p| policy_named(p, quota.name, quotas == 1))
        }
        None => policy.and_then(strictest_policy),
    };
    if let Some(p) = chosen {
        hint.limit = p.quota;
        hint.window = p.window;
    }
    hint.has_any().then_some(hint)
}

/// Earlier drafts: `RateLimit: limit=100, remaining=50, reset=5`.
fn ietf_dictionary(value: &str, policy: Option<&str>, now: UnixTime) -> Option<RateLimitHint> {
    let mut hint = RateLimitHint::empty(HintSource::IetfLegacy);
    let mut limit_params = "";
    // Structured-field dictionaries let a later key overwrite an earlier one.
    for member in members(value) {
        let Entry::Pair { key, value, params } = member.entry() else {
            continue;
        };
        if key.eq_ignore_ascii_case("limit") {
            hint.limit = parse_count(value);
            limit_params = params;
        } else if key.eq_ignore_ascii_case("remaining") {
            hint.remaining = parse_count(value);
        } else if key.eq_ignore_ascii_case("reset") {
            hint.reset = parse_reset(value, now);
        }
    }
    if !hint.has_any() {
        return None;
    }
    hint.window = param(limit_params, "w")
        .and_then(parse_secs)
        .or_else(|| policy_window(policy, hint.limit));
    Some(hint)
}

/// Earlier drafts: separate `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
fn ietf_separate<H: Headers + ?Sized>(
    h: &H,
    policy: Option<&str>,
    now: UnixTime,
) -> Option<RateLimitHint> {
    let limit = h.get("ratelimit-limit");
    let mut hint = RateLimitHint {
        limit: limit.and_then(first_count),
        remaining: h.get("ratelimit-remaining").and_then(first_count),
        reset: h
            .get("ratelimit-reset")
            .and_then(first_item)
            .and_then(|v| parse_reset(v, now)),
        window: None,
        source: HintSource::IetfLegacy,
    };
    if !hint.has_any() {
        return None;
    }
    hint.window = limit
        .and_then(list_window)
        .or_else(|| policy_window(policy, hint.limit));
    Some(hint)
}

/// Header names of one `X-` spelling: limit, remaining, reset, reset-after.
type XNames = [&'static str; 4];

const X_RATELIMIT: XNames = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
];

const X_RATE_LIMIT: XNames = [
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "x-rate-limit-reset-after",
];

fn x_ratelimit<H: Headers + ?Sized>(h: &H, names: &XNames, now: UnixTime) -> Option<RateLimitHint> {
    let [limit, remaining, reset, reset_after] = *names;
    let limit = h.get(limit);
    let hint = RateLimitHint {
        limit: limit.and_then(first_count),
        remaining: h.get(remaining).and_then(first_count),
        reset: h
            .get(reset_after)
            .and_then(first_item)
            .and_then(parse_secs)
            .or_else(|| {
                h.get(reset)
                    .and_then(first_item)
                    .and_then(|v| parse_reset(v, now))
            }),
        window: limit.and_then(list_window),
        source: HintSource::XRateLimit,
    };
    hint.has_any().then_some(hint)
}

// ---- Structured-field lists, read tolerantly.

/// One list member: the item before the first `;`, and the parameters after it.
#[derive(Debug, Clone, Copy)]
struct Member<'a> {
    item: &'a str,
    params: &'a str,
}

/// What a member is: an item of a list (`"name";k=v`), or a `key=value` dictionary member.
enum Entry<'a> {
    Item {
        name: &'a str,
        params: &'a str,
    },
    Pair {
        key: &'a str,
        value: &'a str,
        params: &'a str,
    },
}

impl<'a> Member<'a> {
    fn entry(self) -> Entry<'a> {
        if !self.item.starts_with('"') {
            if let Some((key, value)) = self.item.split_once('=') {
                return Entry::Pair {
                    key: trim_ows(key),
                    value: unquote(trim_ows(value)),
                    params: self.params,
                };
            }
        }
        Entry::Item {
            name: unquote(self.item),
            params: self.params,
        }
    }
}

/// The non-empty members of a comma-separated list.
fn members(value: &str) -> impl Iterator<Item = Member<'_>> {
    split_unquoted(value, b',').filter_map(|raw| {
        let raw = trim_ows(raw);
        if raw.is_empty() {
            return None;
        }
        let (item, params) = match find_unquoted(raw, b';', &mut false) {
            Some(i) => (raw.get(..i)?, raw.get(i + 1..)?),
            None => (raw, ""),
        };
        Some(Member {
            item: trim_ows(item),
            params,
        })
    })
}

/// The value of parameter `key` (the last one, as structured fields say), unquoted.
fn param<'a>(params: &'a str, key: &str) -> Option<&'a str> {
    split_unquoted(params, b';')
        .filter_map(|piece| {
            let piece = trim_ows(piece);
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            trim_ows(k)
                .eq_ignore_ascii_case(key)
                .then(|| unquote(trim_ows(v)))
        })
        .last()
}

/// The item of the first member, for single-valued headers that may carry parameters.
fn first_item(value: &str) -> Option<&str> {
    members(value).next().map(|m| unquote(m.item))
}

fn first_count(value: &str) -> Option<u64> {
    first_item(value).and_then(parse_count)
}

/// The first `w` parameter among the members of a limit list such as `100, 100;w=60`.
fn list_window(value: &str) -> Option<Duration> {
    members(value).find_map(|m| param(m.params, "w").and_then(parse_secs))
}

/// A `RateLimit` member: a named quota with what is left of it.
struct Quota<'a> {
    name: &'a str,
    remaining: u64,
    reset: Option<Duration>,
}

/// The most restrictive valid member of a draft-08 `RateLimit` list, and how many valid members
/// there are.
fn most_restrictive(value: &str) -> Option<(Quota<'_>, usize)> {
    let mut best: Option<Quota> = None;
    let mut count = 0;
    for member in members(value) {
        let Entry::Item { name, params } = member.entry() else {
            continue;
        };
        let Some(remaining) = param(params, "r").and_then(parse_count) else {
            continue;
        };
        let reset = param(params, "t").and_then(parse_secs);
        count += 1;
        // Lower remaining first; among equals the longer reset, with no reset as the shortest.
        let better = match &best {
            None => true,
            Some(b) => (remaining, Reverse(reset)) < (b.remaining, Reverse(b.reset)),
        };
        if better {
            best = Some(Quota {
                name,
                remaining,
                reset,
            });
        }
    }
    best.map(|b| (b, count))
}

/// A `RateLimit-Policy` member.
#[derive(Debug, Clone, Copy)]
struct Policy<'a> {
    name: &'a str,
    quota: Option<u64>,
    window: Option<Duration>,
}

/// The members of a `RateLimit-Policy` list that say something. Besides the draft-08
/// `"name";q=100;w=60`, the older `100;w=60` (the quota as the item) is understood.
fn policies(value: &str) -> impl Iterator<Item = Policy<'_>> {
    members(value).filter_map(|member| {
        let Entry::Item { name, params } = member.entry() else {
            return None;
        };
        let policy = Policy {
            name,
            quota: param(params, "q")
                .and_then(parse_count)
                .or_else(|| parse_count(name)),
            window: param(params, "w").and_then(parse_secs),
        };
        (policy.quota.is_some() || policy.window.is_some()).then_some(policy)
    })
}

/// The policy called `name`; failing that, the only policy if `single_quota` says the
/// `RateLimit` header had only one member to pair it with.
fn policy_named<'a>(value: &'a str, name: &str, single_quota: bool) -> Option<Policy<'a>> {
    policies(value).find(|p| p.name == name).or_else(|| {
        let mut all = policies(value);
        let only = all.next()?;
        (single_quota && all.next().is_none()).then_some(only)
    })
}

/// With no `RateLimit` to say which policy binds, the one allowing the lowest rate (quota per
/// window), or the lowest quota when a window is missing.
fn strictest_policy(value: &str) -> Option<Policy<'_>> {
    policies(value).reduce(|best, p| if stricter(&p, &best) { p } else { best })
}

fn stricter(a: &Policy, b: &Policy) -> bool {
    match (a.quota, a.window, b.quota, b.window) {
        (Some(qa), Some(wa), Some(qb), Some(wb)) => {
            u128::from(qa).saturating_mul(wb.as_millis())
                < u128::from(qb).saturating_mul(wa.as_millis())
        }
        _ => a.quota.unwrap_or(u64::MAX) < b.quota.unwrap_or(u64::MAX),
    }
}

/// The window of the old-style policy whose quota equals `limit`.
fn policy_window(policy: Option<&str>, limit: Option<u64>) -> Option<Duration> {
    let limit = limit?;
    policies(policy?)
        .find(|p| p.quota == Some(limit))
        .and_then(|p| p.window)
}

// ---- Numbers.

fn parse_count(value: &str) -> Option<u64> {
    parse_u64(trim_ows(value))
}

/// Seconds with an optional fraction, in whole milliseconds rounded up, saturating.
fn parse_millis(value: &str) -> Option<u64> {
    let value = trim_ows(value);
    let (whole, fraction) = match value.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (value, None),
    };
    let mut millis = parse_u64(whole)?.saturating_mul(1000);
    if let Some(f) = fraction {
        let digits = f.as_bytes();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut frac = 0;
        for i in 0..3 {
            frac = frac * 10 + digits.get(i).map_or(0, |d| u64::from(d - b'0'));
        }
        if digits.iter().skip(3).any(|&d| d != b'0') {
            frac += 1;
        }
        millis = millis.saturating_add(frac);
    }
    Some(millis)
}

fn parse_secs(value: &str) -> Option<Duration> {
    parse_millis(value).map(Duration::from_millis)
}

/// Values from this many seconds up are Unix times, not delays (see the module docs).
const EPOCH_SECONDS_FROM: u64 = 1_000_000_000;
/// Values from this many "seconds" up are Unix times in milliseconds.
const EPOCH_MILLIS_FROM: u64 = 1_000_000_000_000;

/// A legacy or `X-` reset: a delay in seconds, or a Unix time in seconds or milliseconds.
fn parse_reset(value: &str, now: UnixTime) -> Option<Duration> {
    let millis = parse_millis(value)?;
    let at = if millis >= EPOCH_MILLIS_FROM.saturating_mul(1000) {
        UnixTime::from_millis(millis / 1000)
    } else if millis >= EPOCH_SECONDS_FROM * 1000 {
        UnixTime::from_millis(millis)
    } else {
        return Some(Duration::from_millis(millis));
    };
    Some(now.until(at))
}

#[cfg(test)]
mod tests {
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
}
