//! The pieces the rate-limit parsers are made of: structured-field lists read tolerantly, and
//! the numbers inside them. Total functions: bad input gives `None`, never a panic.

use core::cmp::Reverse;
use core::time::Duration;

use super::super::{find_unquoted, parse_u64, split_unquoted, trim_ows, unquote};
use crate::time::UnixTime;

// ---- Structured-field lists, read tolerantly.

/// One list member: the item before the first `;`, and the parameters after it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member<'a> {
    pub(super) item: &'a str,
    pub(super) params: &'a str,
}

/// What a member is: an item of a list (`"name";k=v`), or a `key=value` dictionary member.
pub(super) enum Entry<'a> {
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
    pub(super) fn entry(self) -> Entry<'a> {
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
pub(super) fn members(value: &str) -> impl Iterator<Item = Member<'_>> {
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
pub(super) fn param<'a>(params: &'a str, key: &str) -> Option<&'a str> {
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
pub(super) fn first_item(value: &str) -> Option<&str> {
    members(value).next().map(|m| unquote(m.item))
}

pub(super) fn first_count(value: &str) -> Option<u64> {
    first_item(value).and_then(parse_count)
}

/// The first `w` parameter among the members of a limit list such as `100, 100;w=60`.
pub(super) fn list_window(value: &str) -> Option<Duration> {
    members(value).find_map(|m| param(m.params, "w").and_then(parse_secs))
}

/// A `RateLimit` member: a named quota with what is left of it.
pub(super) struct Quota<'a> {
    pub(super) name: &'a str,
    pub(super) remaining: u64,
    pub(super) reset: Option<Duration>,
}

/// The most restrictive valid member of a draft-08 `RateLimit` list, and how many valid members
/// there are.
pub(super) fn most_restrictive(value: &str) -> Option<(Quota<'_>, usize)> {
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
pub(super) struct Policy<'a> {
    pub(super) name: &'a str,
    pub(super) quota: Option<u64>,
    pub(super) window: Option<Duration>,
}

/// The members of a `RateLimit-Policy` list that say something. Besides the draft-08
/// `"name";q=100;w=60`, the older `100;w=60` (the quota as the item) is understood.
pub(super) fn policies(value: &str) -> impl Iterator<Item = Policy<'_>> {
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
pub(super) fn policy_named<'a>(
    value: &'a str,
    name: &str,
    single_quota: bool,
) -> Option<Policy<'a>> {
    policies(value).find(|p| p.name == name).or_else(|| {
        let mut all = policies(value);
        let only = all.next()?;
        (single_quota && all.next().is_none()).then_some(only)
    })
}

/// With no `RateLimit` to say which policy binds, the one allowing the lowest rate (quota per
/// window), or the lowest quota when a window is missing.
pub(super) fn strictest_policy(value: &str) -> Option<Policy<'_>> {
    policies(value).reduce(|best, p| if stricter(&p, &best) { p } else { best })
}

pub(super) fn stricter(a: &Policy, b: &Policy) -> bool {
    match (a.quota, a.window, b.quota, b.window) {
        (Some(qa), Some(wa), Some(qb), Some(wb)) => {
            u128::from(qa).saturating_mul(wb.as_millis())
                < u128::from(qb).saturating_mul(wa.as_millis())
        }
        _ => a.quota.unwrap_or(u64::MAX) < b.quota.unwrap_or(u64::MAX),
    }
}

/// The window of the old-style policy whose quota equals `limit`.
pub(super) fn policy_window(policy: Option<&str>, limit: Option<u64>) -> Option<Duration> {
    let limit = limit?;
    policies(policy?)
        .find(|p| p.quota == Some(limit))
        .and_then(|p| p.window)
}

// ---- Numbers.

pub(super) fn parse_count(value: &str) -> Option<u64> {
    parse_u64(trim_ows(value))
}

/// Seconds with an optional fraction, in whole milliseconds rounded up, saturating.
pub(super) fn parse_millis(value: &str) -> Option<u64> {
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

pub(super) fn parse_secs(value: &str) -> Option<Duration> {
    parse_millis(value).map(Duration::from_millis)
}

/// Values from this many seconds up are Unix times, not delays (see the module docs).
const EPOCH_SECONDS_FROM: u64 = 1_000_000_000;
/// Values from this many "seconds" up are Unix times in milliseconds.
const EPOCH_MILLIS_FROM: u64 = 1_000_000_000_000;

/// A legacy or `X-` reset: a delay in seconds, or a Unix time in seconds or milliseconds.
pub(super) fn parse_reset(value: &str, now: UnixTime) -> Option<Duration> {
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
