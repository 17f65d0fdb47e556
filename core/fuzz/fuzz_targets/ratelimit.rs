//! `parse_ratelimit` on any set of rate-limit headers: it must not panic, and a hint it returns
//! is never empty.
//!
//! Input: 8 bytes of `now`, then lines; each line's first byte picks a header name (so the
//! fuzzer need not discover the names) and the rest is its value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resile_core::headers::parse_ratelimit;
use resile_core::UnixTime;

const NAMES: &[&str] = &[
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Reset-After",
    "X-Rate-Limit-Limit",
    "X-Rate-Limit-Remaining",
    "X-Rate-Limit-Reset",
    "X-Rate-Limit-Reset-After",
    "Retry-After",
];

fuzz_target!(|data: &[u8]| {
    let Some((now, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let headers: Vec<(&str, &str)> = rest
        .split('\n')
        .take(32)
        .filter_map(|line| {
            let (&pick, _) = line.as_bytes().split_first()?;
            let value = line.get(1..)?;
            Some((NAMES[usize::from(pick) % NAMES.len()], value))
        })
        .collect();
    if let Some(hint) = parse_ratelimit(&headers, UnixTime::from_millis(u64::from_le_bytes(*now))) {
        assert!(
            hint.limit.is_some()
                || hint.remaining.is_some()
                || hint.reset.is_some()
                || hint.window.is_some()
        );
    }
});
