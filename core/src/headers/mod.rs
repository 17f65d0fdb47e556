//! Total parsers for the response headers that steer retries, rate limits and pagination.
//!
//! Every parser here accepts any string, never panics, never allocates, and answers `None`
//! (or skips the malformed part) when the input makes no sense. None of them reads a clock: a
//! header that names a point in time (an HTTP-date, an epoch reset) is measured against the
//! `now` the caller passes in. Capping a server's wish (a `Retry-After` of a year) is policy and
//! is left to the caller.
//!
//! | Header | Parser |
//! |---|---|
//! | `Retry-After` | [`parse_retry_after`] |
//! | `RateLimit`, `RateLimit-Policy`, `RateLimit-*`, `X-RateLimit-*` | [`parse_ratelimit`] |
//! | `Link` | [`parse_links`], [`find_rel`] |
//!
//! Header maps come in through the [`Headers`] trait, so the parsers work the same on every
//! adapter's map type.
//!
//! ```
//! use resile_core::headers::{find_rel, parse_ratelimit, parse_retry_after, Headers};
//! use resile_core::UnixTime;
//!
//! let now = UnixTime::from_secs(1_700_000_000);
//! let response = [
//!     ("Retry-After", "7"),
//!     ("X-RateLimit-Remaining", "0"),
//!     ("Link", r#"<https://api.example.com/items?page=2>; rel="next""#),
//! ];
//! let wait = response.get("retry-after").and_then(|v| parse_retry_after(v, now));
//! assert_eq!(wait, Some(std::time::Duration::from_secs(7)));
//! assert_eq!(parse_ratelimit(&response, now).and_then(|h| h.remaining), Some(0));
//! let next = response.get("link").and_then(|v| find_rel(v, "next"));
//! assert_eq!(next, Some("https://api.example.com/items?page=2"));
//! ```

mod http_date;
mod link;
mod ratelimit;
mod retry_after;

pub(crate) use http_date::fmt_http_date;
pub use link::{find_rel, parse_links, Link, Links};
pub use ratelimit::{parse_ratelimit, HintSource, RateLimitHint};
pub use retry_after::{parse_retry_after, RETRY_AFTER_OUT_OF_RANGE};

/// Case-insensitive response header lookup the engine reads through.
///
/// Adapters implement it for their header maps. A header that occurs several times should be
/// answered as one value, the field lines joined with `", "` in order (RFC 9110 §5.3); that is
/// what makes a second `Link` line visible to [`parse_links`]. The implementations in this crate
/// for slices, arrays and vectors of pairs cannot join without allocating, so they answer the
/// **first** matching pair; join repeated fields before putting them in such a list.
///
/// On a slice `map.get(name)` means the inherent `<[T]>::get`, so call `Headers::get(map, name)`
/// there; arrays and vectors take `.get(name)` directly. A slice cannot become a
/// `&dyn Headers` (it is unsized) but `&&[..]` can, and the generic parsers take `&[..]` as is.
///
/// ```
/// use resile_core::headers::{Headers, NoHeaders};
///
/// let map = [("Content-Type", "text/plain"), ("RETRY-AFTER", "5")];
/// assert_eq!(map.get("retry-after"), Some("5"));
/// assert_eq!(map.get("link"), None);
/// assert_eq!(NoHeaders.get("retry-after"), None);
/// ```
pub trait Headers {
    /// The value of header `name` (given in lowercase ASCII), if present and valid text.
    ///
    /// ```
    /// use resile_core::headers::Headers;
    ///
    /// let owned = vec![("X-Trace".to_string(), "abc".to_string())];
    /// assert_eq!(owned.get("x-trace"), Some("abc"));
    /// ```
    fn get(&self, name: &str) -> Option<&str>;

    /// Whether a header whose name starts with `prefix` (lowercase ASCII) may be present. The
    /// parsers ask this before a dozen look-ups of a header family that most responses do not
    /// carry. The default says "maybe", which is always correct; a map that can tell cheaply
    /// answers exactly.
    ///
    /// ```
    /// use resile_core::headers::{Headers, NoHeaders};
    ///
    /// let map = [("X-RateLimit-Remaining", "3")];
    /// assert!(map.may_have_prefix("x-ratelimit"));
    /// assert!(!map.may_have_prefix("ratelimit"));
    /// assert!(!NoHeaders.may_have_prefix("ratelimit"));
    /// ```
    fn may_have_prefix(&self, prefix: &str) -> bool {
        let _ = prefix;
        true
    }

    /// Whether a header whose name starts with any of `prefixes` (lowercase ASCII) may be
    /// present: [`Headers::may_have_prefix`] for each by default; a map that can answer for all
    /// of them in one scan of its names does so.
    ///
    /// ```
    /// use resile_core::headers::{Headers, NoHeaders};
    ///
    /// let map = [("X-RateLimit-Remaining", "3")];
    /// assert!(map.may_have_any_prefix(&["ratelimit", "x-ratelimit"]));
    /// assert!(!map.may_have_any_prefix(&["ratelimit", "retry-after"]));
    /// assert!(!NoHeaders.may_have_any_prefix(&["ratelimit"]));
    /// ```
    fn may_have_any_prefix(&self, prefixes: &[&str]) -> bool {
        prefixes.iter().any(|p| self.may_have_prefix(p))
    }
}

/// Whether `name` starts with `prefix`, ignoring ASCII case.
pub fn has_prefix_ignore_case(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// An empty header map, for responses that carry none (or for callers that have none to give).
///
/// ```
/// use resile_core::headers::{parse_ratelimit, NoHeaders};
/// use resile_core::UnixTime;
///
/// assert_eq!(parse_ratelimit(&NoHeaders, UnixTime::EPOCH), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NoHeaders;

impl Headers for NoHeaders {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
    fn may_have_prefix(&self, _prefix: &str) -> bool {
        false
    }
    fn may_have_any_prefix(&self, _prefixes: &[&str]) -> bool {
        false
    }
}

impl<T: Headers + ?Sized> Headers for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
    fn may_have_prefix(&self, prefix: &str) -> bool {
        (**self).may_have_prefix(prefix)
    }
    fn may_have_any_prefix(&self, prefixes: &[&str]) -> bool {
        (**self).may_have_any_prefix(prefixes)
    }
}

impl Headers for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }
    fn may_have_prefix(&self, prefix: &str) -> bool {
        self.iter().any(|(k, _)| has_prefix_ignore_case(k, prefix))
    }
    fn may_have_any_prefix(&self, prefixes: &[&str]) -> bool {
        self.iter()
            .any(|(k, _)| prefixes.iter().any(|p| has_prefix_ignore_case(k, p)))
    }
}

impl<const N: usize> Headers for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), name)
    }
    fn may_have_prefix(&self, prefix: &str) -> bool {
        self.as_slice().may_have_prefix(prefix)
    }
    fn may_have_any_prefix(&self, prefixes: &[&str]) -> bool {
        self.as_slice().may_have_any_prefix(prefixes)
    }
}

impl Headers for Vec<(&str, &str)> {
    fn get(&self, name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), name)
    }
    fn may_have_prefix(&self, prefix: &str) -> bool {
        self.as_slice().may_have_prefix(prefix)
    }
    fn may_have_any_prefix(&self, prefixes: &[&str]) -> bool {
        self.as_slice().may_have_any_prefix(prefixes)
    }
}

impl Headers for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn may_have_prefix(&self, prefix: &str) -> bool {
        self.iter().any(|(k, _)| has_prefix_ignore_case(k, prefix))
    }
    fn may_have_any_prefix(&self, prefixes: &[&str]) -> bool {
        self.iter()
            .any(|(k, _)| prefixes.iter().any(|p| has_prefix_ignore_case(k, p)))
    }
}

impl<const N: usize> Headers for [(String, String); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), name)
    }
    fn may_have_prefix(&self, prefix: &str) -> bool {
        self.as_slice().may_have_prefix(prefix)
    }
    fn may_have_any_prefix(&self, prefixes: &[&str]) -> bool {
        self.as_slice().may_have_any_prefix(prefixes)
    }
}

impl Headers for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), name)
    }
    fn may_have_prefix(&self, prefix: &str) -> bool {
        self.as_slice().may_have_prefix(prefix)
    }
    fn may_have_any_prefix(&self, prefixes: &[&str]) -> bool {
        self.as_slice().may_have_any_prefix(prefixes)
    }
}

// ---- Scanning helpers shared by the parsers. All work on byte offsets of ASCII delimiters, so
// every slice boundary they produce is a char boundary.

/// `s` without leading and trailing optional whitespace (RFC 9110 OWS: SP and HTAB).
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// A non-empty run of ASCII digits, saturating at `u64::MAX` rather than failing.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        b.is_ascii_digit()
            .then(|| n.saturating_mul(10).saturating_add(u64::from(b - b'0')))
    })
}

/// The index of the `"` closing the quoted string opened at `open`, honouring `\` escapes.
fn closing_quote(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The first `sep` in `s` that is not inside a quoted string.
///
/// A `"` that is never closed is taken as an ordinary character, so one stray quote cannot
/// swallow the rest of a header. Once that has happened `quotes_dead` is set and later quotes
/// are ordinary too; this keeps the scan linear on inputs such as `"\"\"\"…`.
fn find_unquoted(s: &str, sep: u8, quotes_dead: &mut bool) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == sep {
            return Some(i);
        }
        if c == b'"' && !*quotes_dead {
            match closing_quote(b, i) {
                Some(close) => i = close,
                None => *quotes_dead = true,
            }
        }
        i += 1;
    }
    None
}

/// Pieces of `s` between the `sep`s that lie outside quoted strings (see [`find_unquoted`]).
#[derive(Debug, Clone)]
struct SplitUnquoted<'a> {
    rest: Option<&'a str>,
    sep: u8,
    quotes_dead: bool,
}

fn split_unquoted(s: &str, sep: u8) -> SplitUnquoted<'_> {
    SplitUnquoted {
        rest: Some(s),
        sep,
        quotes_dead: false,
    }
}

impl<'a> Iterator for SplitUnquoted<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match find_unquoted(s, self.sep, &mut self.quotes_dead) {
            Some(i) => {
                self.rest = s.get(i + 1..);
                s.get(..i)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// The text of a (trimmed) value: the raw inner text of a quoted string, escapes left as they
/// are, or the value itself. An unterminated quoted string yields everything after the quote.
fn unquote(v: &str) -> &str {
    match v.strip_prefix('"') {
        Some(inner) => match closing_quote(v.as_bytes(), 0) {
            Some(close) => v.get(1..close).unwrap_or(inner),
            None => inner,
        },
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn lookup_is_case_insensitive_and_first_wins() {
        let borrowed = [("Link", "a"), ("LINK", "b"), ("X-Other", "c")];
        assert_eq!(borrowed.get("link"), Some("a"));
        // On a slice, `.get` is the inherent slice method, so name the trait.
        assert_eq!(Headers::get(&borrowed[..], "x-other"), Some("c"));
        assert_eq!(borrowed.get("retry-after"), None);

        let owned: Vec<(String, String)> = vec![("Retry-After".into(), "3".into())];
        assert_eq!(owned.get("retry-after"), Some("3"));
        assert_eq!(Headers::get(owned.as_slice(), "retry-after"), Some("3"));
        assert_eq!((&&owned).get("retry-after"), Some("3"));

        let dynamic: &dyn Headers = &owned;
        assert_eq!(dynamic.get("RETRY-AFTER"), Some("3"));
        assert_eq!(NoHeaders.get("retry-after"), None);
    }

    #[test]
    fn digits_saturate() {
        let table: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("007", Some(7)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", Some(u64::MAX)),
            ("999999999999999999999999999999", Some(u64::MAX)),
            ("", None),
            ("+1", None),
            ("-1", None),
            ("1.0", None),
            (" 1", None),
            ("١", None),
        ];
        for &(input, want) in table {
            assert_eq!(parse_u64(input), want, "{input:?}");
        }
    }

    #[test]
    fn splitting_respects_quotes() {
        let parts: Vec<&str> = split_unquoted(r#"a="x,y", b, "c\",d""#, b',').collect();
        assert_eq!(parts, [r#"a="x,y""#, " b", r#" "c\",d""#]);

        // A stray quote is ordinary, so it does not swallow the rest.
        let parts: Vec<&str> = split_unquoted(r#"a="x, b, c"#, b',').collect();
        assert_eq!(parts, [r#"a="x"#, " b", " c"]);

        let parts: Vec<&str> = split_unquoted("", b',').collect();
        assert_eq!(parts, [""]);
        let parts: Vec<&str> = split_unquoted(",", b',').collect();
        assert_eq!(parts, ["", ""]);
    }

    #[test]
    fn unquoting() {
        let table: &[(&str, &str)] = &[
            ("next", "next"),
            (r#""next""#, "next"),
            (r#""a\"b""#, r#"a\"b"#),
            (r#""open"#, "open"),
            (r#""""#, ""),
            (r#"""#, ""),
            (r#""x" junk"#, "x"),
            (r#""\"#, r#"\"#),
        ];
        for &(input, want) in table {
            assert_eq!(unquote(input), want, "{input:?}");
        }
    }
}
