//! `parse_links` and friends on any text: they must not panic, must terminate, and every slice
//! they hand out must borrow from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resile_core::headers::{find_rel, parse_links};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let start = value.as_ptr() as usize;
    let inside = |s: &str| (start..=start + value.len()).contains(&(s.as_ptr() as usize));
    let mut count = 0;
    for link in parse_links(value) {
        count += 1;
        assert!(inside(link.target));
        for name in ["rel", "title", "anchor", "type"] {
            if let Some(v) = link.param(name) {
                assert!(inside(v));
            }
        }
        let _ = link.has_rel("next");
    }
    assert!(count <= value.matches('<').count());
    if let Some(target) = find_rel(value, "next") {
        assert!(inside(target));
    }
});
