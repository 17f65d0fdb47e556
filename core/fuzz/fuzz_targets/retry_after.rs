//! `parse_retry_after` on any text at any time: it must not panic, and pure delay-seconds must
//! always parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resile_core::headers::parse_retry_after;
use resile_core::UnixTime;

fuzz_target!(|data: &[u8]| {
    let Some((now, value)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    let parsed = parse_retry_after(value, UnixTime::from_millis(u64::from_le_bytes(*now)));
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        assert!(parsed.is_some(), "delay-seconds {value:?} did not parse");
    }
});
