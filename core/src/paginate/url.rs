//! The little URL arithmetic a walk needs, the same on every target: resolving a `Link` target
//! against the page that sent it (RFC 3986 §5.2), setting query parameters on the first URL
//! (`application/x-www-form-urlencoded`), and reading them back.
//!
//! These are total functions over text: a base that is not an absolute URL is a typed error,
//! never a panic. They do not normalise what they are not asked to touch: parameters the walk
//! does not set keep their bytes, so a signed query stays signed.
//!
//! ```
//! use resile_core::paginate::url::{origin, resolve, with_query};
//!
//! let base = "https://api.test/v1/items?page_size=2";
//! assert_eq!(resolve(base, "?after=2").unwrap(), "https://api.test/v1/items?after=2");
//! assert_eq!(resolve(base, "../users").unwrap(), "https://api.test/users");
//! let next = with_query(base, &[("cursor".into(), "a b&c".into())]).unwrap();
//! assert_eq!(next, "https://api.test/v1/items?page_size=2&cursor=a+b%26c");
//! assert_eq!(origin(base).unwrap(), "https://api.test");
//! ```

use thiserror::Error;

/// A URL the walk cannot work with.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The base is not an absolute `scheme://authority/...` URL.
    #[error("`{url}` is not an absolute URL (scheme://host/...)")]
    NotAbsolute {
        /// The text given.
        url: String,
    },
}

/// The parts of a URI reference (RFC 3986 appendix B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn split(text: &str) -> Parts<'_> {
    // The fragment never goes into a request.
    let text = text.split('#').next().unwrap_or_default();
    let (text, query) = match text.split_once('?') {
        Some((t, q)) => (t, Some(q)),
        None => (text, None),
    };
    let (scheme, rest) = match text.find([':', '/']) {
        Some(i) if text.as_bytes()[i] == b':' && is_scheme(&text[..i]) => {
            (Some(&text[..i]), &text[i + 1..])
        }
        _ => (None, text),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    Parts {
        scheme,
        authority,
        path,
        query,
    }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn absolute(url: &str) -> Result<Parts<'_>, UrlError> {
    let parts = split(url.trim());
    match (parts.scheme, parts.authority) {
        (Some(_), Some(a)) if !a.is_empty() => Ok(parts),
        _ => Err(UrlError::NotAbsolute {
            url: url.to_string(),
        }),
    }
}

/// `scheme://authority` of an absolute URL: the unit the engine keeps host state for.
pub fn origin(url: &str) -> Result<String, UrlError> {
    let p = absolute(url)?;
    Ok(format!(
        "{}://{}",
        p.scheme.unwrap_or_default().to_ascii_lowercase(),
        p.authority.unwrap_or_default()
    ))
}

/// The path and query of an absolute URL (`/items?after=2`), its target within its origin.
pub fn path_and_query(url: &str) -> Result<String, UrlError> {
    let p = absolute(url)?;
    let path = if p.path.is_empty() { "/" } else { p.path };
    Ok(match p.query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    })
}

/// The reference `reference` (absolute, or relative like `?after=2`, `/items`, `../x`)
/// resolved against the absolute URL `base` (RFC 3986 §5.2.2, non-strict), without a
/// fragment. A result that is not a `scheme://authority` URL (`mailto:x`) is an error.
pub fn resolve(base: &str, reference: &str) -> Result<String, UrlError> {
    let b = absolute(base)?;
    let mut r = split(reference.trim());
    // RFC 3986 §5.2.2's non-strict reading, as browsers do: `http:g` against an http base
    // is relative.
    if r.authority.is_none()
        && r.scheme
            .zip(b.scheme)
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
    {
        r.scheme = None;
    }
    let (scheme, authority, path, query);
    if let Some(s) = r.scheme {
        scheme = s;
        authority = r.authority;
        path = remove_dots(r.path);
        query = r.query;
    } else {
        scheme = b.scheme.unwrap_or_default();
        if r.authority.is_some() {
            authority = r.authority;
            path = remove_dots(r.path);
            query = r.query;
        } else {
            authority = b.authority;
            if r.path.is_empty() {
                path = b.path.to_string();
                query = r.query.or(b.query);
            } else {
                path = if r.path.starts_with('/') {
                    remove_dots(r.path)
                } else {
                    remove_dots(&merge(&b, r.path))
                };
                query = r.query;
            }
        }
    }
    let mut out = String::with_capacity(base.len() + reference.len());
    out.push_str(scheme);
    out.push(':');
    if let Some(a) = authority {
        out.push_str("//");
        out.push_str(a);
        if !path.is_empty() && !path.starts_with('/') {
            out.push('/');
        }
    }
    out.push_str(if authority.is_some() && path.is_empty() {
        "/"
    } else {
        &path
    });
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    // A reference to something that is no `scheme://authority` URL (`mailto:x`) cannot be
    // requested.
    absolute(&out)?;
    Ok(out)
}

fn merge(base: &Parts<'_>, path: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        return format!("/{path}");
    }
    match base.path.rfind('/') {
        Some(i) => format!("{}{path}", &base.path[..=i]),
        None => path.to_string(),
    }
}

/// RFC 3986 §5.2.4, over whole segments.
fn remove_dots(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    // The segments walked with one look ahead (is this the last?), not collected first.
    let mut segments = path.split('/');
    if absolute {
        segments.next();
    }
    let mut next = segments.next();
    let mut trailing = false;
    while let Some(segment) = next {
        next = segments.next();
        trailing = false;
        match segment {
            "." => trailing = next.is_none(),
            ".." => {
                out.pop();
                trailing = next.is_none();
            }
            s => out.push(s),
        }
    }
    // Not `out.join("/")`: a join of `&str`s would be a second copy of the `String` joins below.
    let mut joined = String::with_capacity(path.len() + 1);
    for (i, segment) in out.iter().enumerate() {
        if absolute || i > 0 {
            joined.push('/');
        }
        joined.push_str(segment);
    }
    if trailing && !out.is_empty() {
        joined.push('/');
    }
    if absolute && out.is_empty() {
        joined.push('/');
    }
    joined
}

/// `url` with each of `params` set: pairs with the same names are dropped, the rest keep their
/// place and bytes, and `params` follow them, form-encoded. No parameters: `url` unchanged.
pub fn with_query(url: &str, params: &[(String, String)]) -> Result<String, UrlError> {
    absolute(url)?;
    let url = url.trim().split('#').next().unwrap_or_default();
    if params.is_empty() {
        return Ok(url.to_string());
    }
    let (before, query) = url.split_once('?').unwrap_or((url, ""));
    // Written into one string, not joined: `join` is a generic copy of its own (1 KB of the
    // browser build for this and `query_string`).
    let mut out = String::with_capacity(url.len() + 1);
    out.push_str(before);
    let mut sep = '?';
    for piece in query.split('&').filter(|piece| !piece.is_empty()) {
        let name = decode(piece.split('=').next().unwrap_or_default());
        if !params.iter().any(|(k, _)| *k == name) {
            out.push(sep);
            out.push_str(piece);
            sep = '&';
        }
    }
    for (k, v) in params {
        out.push(sep);
        push_pair(&mut out, k, v);
        sep = '&';
    }
    Ok(out)
}

/// `k=v`, both form-encoded, onto `out`.
fn push_pair(out: &mut String, k: &str, v: &str) {
    out.push_str(&encode(k));
    out.push('=');
    out.push_str(&encode(v));
}

/// The decoded query parameters of `url` (or of a bare query such as `?a=1&b=2`), in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    pairs_named(url, None)
}

/// [`query_pairs`], only those whose decoded name is one of `names` (all of them with `None`).
/// The filter is here rather than a `retain` by each caller: one loop, no `retain` of its own.
pub(crate) fn pairs_named(url: &str, names: Option<&[&str]>) -> Vec<(String, String)> {
    let url = url.split('#').next().unwrap_or_default();
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let mut pairs = Vec::new();
    for piece in query.split('&').filter(|piece| !piece.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let k = decode(k);
        if names.is_none_or(|names| names.contains(&k.as_str())) {
            pairs.push((k, decode(v)));
        }
    }
    pairs
}

/// `params` as a query string, `?a=1&b=2` (empty without parameters).
pub fn query_string(params: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        push_pair(&mut out, k, v);
    }
    out
}

/// `application/x-www-form-urlencoded` byte serialisation (WHATWG URL §5.2).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn resolves_rfc3986_examples() {
        // RFC 3986 §5.4.1 and §5.4.2 (fragments dropped: they are never requested).
        let base = "http://a/b/c/d;p?q";
        let table = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("http://other.test/p?x=1", "http://other.test/p?x=1"),
        ];
        for (reference, want) in table {
            assert_eq!(resolve(base, reference).unwrap(), want, "{reference}");
        }
        assert_eq!(
            resolve("http://h.test", "?after=2").unwrap(),
            "http://h.test/?after=2"
        );
        // Non-strict: the base's own scheme without an authority is a relative reference.
        assert_eq!(resolve(base, "http:g").unwrap(), "http://a/b/c/g");
        assert_eq!(resolve(base, "HTTP:").unwrap(), "http://a/b/c/d;p?q");
        // What cannot be requested is refused.
        for reference in ["g:h", "mailto:x@y", "https:"] {
            assert!(resolve(base, reference).is_err(), "{reference}");
        }
    }

    #[test]
    fn a_base_that_is_not_absolute_is_an_error() {
        for base in ["/items", "items?x=1", "", "http:/x", "mailto:a@b"] {
            assert!(
                matches!(resolve(base, "?a=1"), Err(UrlError::NotAbsolute { .. })),
                "{base}"
            );
            assert!(with_query(base, &[]).is_err(), "{base}");
        }
    }

    #[test]
    fn query_parameters_replace_same_names_and_keep_the_rest() {
        let first = "http://h.test/items?limit=5&offset=99&x=%2F1#top";
        let next = with_query(
            first,
            &[("offset".into(), "10".into()), ("limit".into(), "5".into())],
        )
        .unwrap();
        assert_eq!(next, "http://h.test/items?x=%2F1&offset=10&limit=5");
        assert_eq!(
            with_query(first, &[]).unwrap(),
            "http://h.test/items?limit=5&offset=99&x=%2F1"
        );
        assert_eq!(
            with_query("http://h.test/i", &[("c".into(), "é/+=&".into())]).unwrap(),
            "http://h.test/i?c=%C3%A9%2F%2B%3D%26"
        );
        // Empty pieces go, every piece of a replaced name goes, the rest keep their bytes.
        assert_eq!(
            with_query(
                "http://h.test/i?&c=1&&d&c=2&e=%41",
                &[("c".into(), "3".into())]
            )
            .unwrap(),
            "http://h.test/i?d&e=%41&c=3"
        );
        assert_eq!(
            with_query("http://h.test/i?c=1", &[("c".into(), "2".into())]).unwrap(),
            "http://h.test/i?c=2"
        );
    }

    #[test]
    fn query_pairs_round_trip() {
        let params = vec![
            ("cursor".to_string(), "a b+c/é".to_string()),
            ("k".to_string(), String::new()),
        ];
        let q = query_string(&params);
        assert_eq!(q, "?cursor=a+b%2Bc%2F%C3%A9&k=");
        assert_eq!(query_pairs(&q), params);
        assert_eq!(
            query_pairs("http://h.test/?a=%zz&b&=c#f"),
            vec![
                ("a".into(), "%zz".into()),
                ("b".into(), String::new()),
                (String::new(), "c".into())
            ]
        );
        assert_eq!(query_string(&[]), "");
    }
}
