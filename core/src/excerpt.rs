//! Quoting a response body in an error message: the same bounded excerpt on every adapter.

/// How much of a body an error message quotes.
pub const EXCERPT_BYTES: usize = 512;

/// At most `max` bytes of `body` as text (invalid UTF-8 replaced), with `…` when cut.
///
/// ```
/// use resile_core::excerpt::excerpt;
/// assert_eq!(excerpt(b"abc", 512), "abc");
/// assert_eq!(excerpt("é".as_bytes(), 1), "\u{fffd}…");
/// ```
pub fn excerpt(body: &[u8], max: usize) -> String {
    let mut s = String::from_utf8_lossy(&body[..body.len().min(max)]).into_owned();
    if body.len() > max {
        s.push('…');
    }
    s
}
