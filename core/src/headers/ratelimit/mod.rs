//! Rate-limit hints: what the server says about our remaining quota and when it refills.
//!
//! The user-facing rules live on [`parse_ratelimit`]; this module only implements them.

use core::time::Duration;

use serde::Serialize;

use super::Headers;
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
#[inline]
pub fn parse_ratelimit<H: Headers + ?Sized>(h: &H, now: UnixTime) -> Option<RateLimitHint> {
    // Most responses carry no rate-limit header at all: say so in one scan of the map, without
    // a dozen look-ups.
    if !h.may_have_any_prefix(&["ratelimit", "x-ratelimit", "x-rate-limit"]) {
        return None;
    }
    parse_present(h, now)
}

/// [`parse_ratelimit`] once the map may carry a rate-limit header.
fn parse_present<H: Headers + ?Sized>(h: &H, now: UnixTime) -> Option<RateLimitHint> {
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

mod fields;
#[cfg(test)]
mod tests;

use fields::*;
